"""The engine wrapper against each sharp edge of durable-rules (shared/durable-rules.md)."""
import subprocess
import sys
import textwrap
import uuid

import pytest

from kb import engine as kb_engine
from kb.engine import ActionError, Engine, EngineLimit


def _rulebook(**extra):
    """SNAT-vs-default-route join, an absence rule, a chained rule, and a crashing rule."""
    def on_mismatch(session, c):
        session.emit({"rule": "mismatch", "node": c.snat.node, "dev": c.route.dev})
        session.derive(c, {"type": "mismatch", "node": c.snat.node})

    def on_chained(session, c):
        session.emit({"rule": "chained", "node": c.m.node})

    def on_absent(session, c):
        session.emit({"rule": "no-masquerade", "node": c.fip.node})

    def on_boom(session, c):
        raise ZeroDivisionError("boom")

    rules = {
        "mismatch": {"all": [
            {"snat": {"type": "snat_scope"}},
            {"route": {"$and": [{"type": "default_route"}, {"node": {"snat": "node"}},
                                {"$neq": {"dev": {"snat": "out"}}}]}}],
            "run": on_mismatch},
        "chained": {"all": [{"m": {"type": "mismatch"}}], "run": on_chained},
        "absent": {"all": [
            {"fip": {"type": "floating_ip"}},
            {"done": {"type": "evidence_complete"}},
            {"masq$not": {"$and": [{"type": "masquerade"}, {"node": {"fip": "node"}}]}}],
            "run": on_absent},
        "boom": {"all": [{"m": {"type": "boom"}}], "run": on_boom},
    }
    rules.update(extra)
    return rules


@pytest.fixture(scope="module")
def rulebook():
    return Engine(_rulebook(), identity="test-engine-rulebook")


def test_join_fires_only_for_the_node_whose_route_leaves_elsewhere(rulebook):
    with rulebook.session() as session:
        session.assert_facts([
            {"type": "snat_scope", "node": "net01", "out": "ens4"},
            {"type": "default_route", "node": "net01", "dev": "ens3"},
            {"type": "snat_scope", "node": "net02", "out": "ens4"},
            {"type": "default_route", "node": "net02", "dev": "ens4"},
        ])
        found = [o for o in session.outputs if o["rule"] == "mismatch"]
    assert found == [{"rule": "mismatch", "node": "net01", "dev": "ens3"}]


def test_conclusions_chain_into_other_rules(rulebook):
    with rulebook.session() as session:
        session.assert_facts([{"type": "snat_scope", "node": "n", "out": "eth1"},
                              {"type": "default_route", "node": "n", "dev": "eth0"}])
        assert {"rule": "chained", "node": "n"} in session.outputs


@pytest.mark.parametrize("order", ["masquerade-first", "floating-first"])
def test_absence_is_judged_only_when_all_evidence_is_in(rulebook, order):
    facts = [{"type": "floating_ip", "node": "gw"}, {"type": "masquerade", "node": "gw"}]
    if order == "floating-first":
        facts.reverse()
    with rulebook.session() as session:
        session.assert_facts(facts)
        outputs = session.complete()
    assert not [o for o in outputs if o["rule"] == "no-masquerade"]

    with rulebook.session() as session:
        session.assert_facts([{"type": "floating_ip", "node": "gw"}])
        assert session.outputs == []  # nothing claimed before the evidence is complete
        assert session.complete() == [{"rule": "no-masquerade", "node": "gw"}]


def test_sessions_do_not_see_each_others_facts(rulebook):
    with rulebook.session() as first, rulebook.session() as second:
        first.assert_facts([{"type": "snat_scope", "node": "n", "out": "eth1"}])
        second.assert_facts([{"type": "default_route", "node": "n", "dev": "eth0"}])
        assert first.outputs == [] and second.outputs == []
        first.assert_facts([{"type": "default_route", "node": "n", "dev": "eth0"}])
        assert first.outputs[0] == {"rule": "mismatch", "node": "n", "dev": "eth0"}
        assert second.outputs == []


def test_an_error_inside_an_action_reaches_the_caller(rulebook):
    with rulebook.session() as session:
        with pytest.raises(ActionError, match="ZeroDivisionError: boom"):
            session.assert_facts([{"type": "boom"}])


def test_duplicates_and_unobserved_facts_are_accepted_quietly(rulebook):
    with rulebook.session() as session:
        fact = {"type": "snat_scope", "node": "n", "out": "eth1"}
        session.assert_facts([fact, dict(reversed(list(fact.items()))), fact])
        session.assert_facts([{"type": "nothing_asks_about_this", "x": 1}])
        session.assert_facts([{"type": "default_route", "node": "n", "dev": "eth0"}])
        # the same fact three times (in any key order) is one fact: the join fires once
        assert session.outputs == [{"rule": "mismatch", "node": "n", "dev": "eth0"},
                                   {"rule": "chained", "node": "n"}]


@pytest.mark.parametrize("key", ["id", "sid", "$and"])
def test_engine_keys_are_refused_in_facts(rulebook, key):
    with rulebook.session() as session:
        with pytest.raises(ValueError, match="reserved"):
            session.assert_facts([{"type": "snat_scope", key: 1}])


def test_a_session_refuses_more_facts_than_joins_stay_reliable_for(rulebook, monkeypatch):
    monkeypatch.setattr(kb_engine, "MAX_FACTS", 10)
    with rulebook.session() as session:
        with pytest.raises(EngineLimit, match="more than 10 facts"):
            session.assert_facts({"type": "x", "n": i} for i in range(11))


def test_open_sessions_are_capped_below_the_engines_1024(rulebook, monkeypatch):
    monkeypatch.setattr(kb_engine, "MAX_SESSIONS", 3)
    sessions = [rulebook.session() for _ in range(3)]
    try:
        with pytest.raises(EngineLimit, match="already open"):
            rulebook.session()
    finally:
        for session in sessions:
            session.close()


def test_many_more_sessions_than_1024_run_when_each_is_closed(rulebook):
    fired = 0
    for number in range(1100):
        with rulebook.session() as session:
            session.assert_facts([{"type": "snat_scope", "node": f"n{number}", "out": "eth1"},
                                  {"type": "default_route", "node": f"n{number}", "dev": "eth0"}])
            fired += session.outputs[:1] == [{"rule": "mismatch", "node": f"n{number}", "dev": "eth0"}]
    assert fired == 1100   # every session still joins, long after the engine's 1024th


def test_the_same_rulebook_is_registered_once():
    assert Engine(_rulebook(), identity="test-engine-rulebook") is Engine(
        _rulebook(), identity="test-engine-rulebook")


def test_closing_a_session_holding_half_a_join_does_not_crash_the_process():
    # durable-rules segfaults on delete_state in a session where no action fired; run
    # it in a child process so that a crash fails this test instead of the whole run.
    script = textwrap.dedent(f"""
        from kb.engine import Engine
        rules = {{"join": {{"all": [
            {{"a": {{"type": "left"}}}},
            {{"b": {{"$and": [{{"type": "right"}}, {{"k": {{"a": "k"}}}}]}}}}],
            "run": lambda session, c: None}}}}
        engine = Engine(rules, identity="half-join-{uuid.uuid4().hex}")
        for _ in range(200):
            session = engine.session()
            session.assert_facts([{{"type": "left", "k": 1}}])
            session.close()
        print("closed cleanly")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert done.returncode == 0, done.stderr
    assert "closed cleanly" in done.stdout
