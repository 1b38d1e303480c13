"""Observations outrank assumptions (issue 8, item 5).

A ping that got replies or an open connection is a fact: the walk of that very packet
says whether the observation confirms or contradicts it (and, when it contradicts, what
the walk rested on), and a floating-IP cause whose rule file says ``unless:`` such a
probe got through yields - it becomes possible, the observation named - when the probe
was not run *before* the cause's evidence.

The evidence is real: one terminal session across the namespace lab's nodes, with a fault
planted or mended outside the transcript between the state commands and the probes
(tests/fixtures/observations/make_fixtures.py). The last tests build that lab live (root).
"""
import itertools
import json
import re
from pathlib import Path

import pytest

from grammar.transcript import Evidence, read_transcript
from kb.diagnose import current_facts, diagnose
from kb.rulebook import RuleFileError, load_rule_text
from kb.walk import walk
from report.walk import render_walk

HERE = Path(__file__).parent / "fixtures" / "observations"
VM, FIXED, OUTSIDE, FLOATING, GATEWAY = "vm01", "10.20.4.5", "203.0.113.80", "198.51.100.77", "gw01"


def _text(case: str) -> str:
    return (HERE / f"{case}.txt").read_text()


def _evidence(*parts: tuple[str, str], ordered: bool = True) -> Evidence:
    """Evidence from (source, text) parts; ``ordered``: the parts were written in this
    order (a chat's messages), else side by side (files in a folder)."""
    evidence = Evidence()
    for source, text in parts:
        evidence.extend(read_transcript(text, source))
        if ordered:
            evidence.source_order.append(source)
    return evidence


def _table(case: str):
    table, _ = current_facts(_evidence((f"{case}.txt", _text(case))))
    return table


def _blocks(text: str) -> list[str]:
    """A session's commands, each with its prompt line and what it printed."""
    return [b for b in re.split(r"(?m)^(?=root@|\[root@)", text) if b]


def _finding(diagnosis, cause):
    found = [f for f in diagnosis.findings if f.cause == cause]
    assert len(found) == 1, [(f.cause, f.status) for f in diagnosis.findings]
    return found[0]


def test_the_fixtures_say_what_the_kernel_did():
    """The captures are what the probes did, not what a parser would like."""
    meta = json.loads((HERE / "no-return-route-mended-unseen.json").read_text())
    assert meta["order"] == ["plant", "state", "mend", "probes"]
    assert all(p["succeeded"] for p in meta["probes"].values())
    meta = json.loads((HERE / "no-return-route-broken.json").read_text())
    assert not any(p["succeeded"] for p in meta["probes"].values())


# --- the walk ----------------------------------------------------------------------

def test_a_later_ping_that_got_answers_contradicts_the_walk_and_names_what_it_rested_on():
    result = walk(_table("no-return-route-mended-unseen"), FIXED, OUTSIDE)
    assert result.verdict == "reply-lost"           # what the tables shown say
    seen = result.observation
    assert (seen.tool, seen.outcome, seen.agrees) == ("ping", "answered", False)
    # the route that sent the reply away is what the observation refutes
    assert f"'default via 192.0.2.1 dev wan0' on {GATEWAY}" in seen.rested_on
    assert seen.evidence[0]["command"].startswith("ping ") and seen.evidence[0]["node"] == VM
    text = render_walk(result)
    assert text.splitlines()[1] == "verdict: reply-lost at ext-host, CONTRADICTED by what was observed"
    assert "contradicted by an observation: ping 203.0.113.80 on vm01 got answers: 2 packets" in text
    assert "something the walk rested on is not so: 'default via 192.0.2.1 dev wan0' on gw01" \
        in " ".join(text.split())
    out = json.loads(render_walk(result, "json"))
    assert out["observation"]["verdict"] == "contradicts" and out["observation"]["outcome"] == "answered"


def test_a_ping_printed_before_the_tables_that_decided_the_walk_says_the_lab_may_have_changed():
    result = walk(_table("no-return-route-broken-after-ping"), FIXED, OUTSIDE)
    assert result.verdict == "reply-lost" and not result.observation.agrees
    assert result.observation.text.startswith("contradicted by an earlier observation: ping ")
    assert "the lab may have changed since" in result.observation.text
    later = walk(_table("no-return-route-mended-unseen"), FIXED, OUTSIDE).observation
    assert "may have changed" not in later.text and "The observation outranks the walk" in later.text


def test_a_ping_that_got_no_answer_confirms_the_walk():
    result = walk(_table("no-return-route-broken"), FIXED, OUTSIDE)
    assert result.verdict == "reply-lost"
    assert (result.observation.outcome, result.observation.agrees) == ("no-answer", True)
    assert result.observation.rested_on == []
    assert "verdict: reply-lost at ext-host, confirmed by what was observed" in render_walk(result)


def test_an_open_connection_is_matched_by_port_and_source_node():
    mended, broken = _table("no-return-route-mended-unseen"), _table("no-return-route-broken")
    result = walk(mended, GATEWAY, FLOATING, "tcp", 22)
    assert result.verdict == "dropped"
    assert (result.observation.tool, result.observation.outcome, result.observation.agrees) == \
        ("nc", "answered", False)
    result = walk(broken, GATEWAY, FLOATING, "tcp", 22)
    assert (result.observation.outcome, result.observation.agrees) == ("no-answer", True)
    # another port, or another sender, is another packet: nothing was observed of it
    assert walk(mended, GATEWAY, FLOATING, "tcp", 2222).observation is None
    assert walk(mended, FIXED, OUTSIDE, "tcp", 22).observation is None


def test_the_healthy_lab_is_delivered_and_the_ping_confirms_it():
    result = walk(_table("healthy"), FIXED, OUTSIDE)
    assert result.verdict == "delivered"
    assert (result.observation.outcome, result.observation.agrees) == ("answered", True)


def test_a_ping_that_got_answers_settles_what_insufficient_info_rested_on():
    """net01's filter table not shown (no iptables -L FORWARD, no iptables-save): the walk
    says insufficient-info, and the VM's ping that got answers shows what was not shown
    lets it through."""
    kept = [b for b in _blocks(_text("healthy")) if b.startswith(f"root@{VM}")
            or (b.startswith("root@net01") and "FORWARD" not in b.split("\n")[0]
                and "iptables-save" not in b.split("\n")[0])]
    table, _ = current_facts(_evidence(("partial.txt", "".join(kept))))
    result = walk(table, FIXED, OUTSIDE)
    assert result.verdict == "insufficient-info" and result.node == "net01"
    assert result.observation.agrees
    assert "what the evidence did not show does let it through" in result.observation.text


def test_a_failed_ping_refutes_what_the_walk_assumed_of_the_nodes_not_shown():
    """The broken lab without the gateway's and the outside host's commands: the walk takes
    the network beyond net01's gateway to answer, and delivers; the VM's ping got no
    answer, so that assumption is the first thing it names."""
    kept = [b for b in _blocks(_text("no-return-route-broken"))
            if not b.startswith((f"[root@{GATEWAY}", "root@ext-host"))]
    table, _ = current_facts(_evidence(("partial.txt", "".join(kept))))
    result = walk(table, FIXED, OUTSIDE)
    assert result.verdict == "delivered"
    seen = result.observation
    assert (seen.outcome, seen.agrees) == ("no-answer", False)
    assert seen.rested_on[0] == ("assumed: the network beyond 10.20.0.1 delivers 203.0.113.80 "
                                 "and answers the global address 198.51.100.77")


def test_without_a_probe_the_walk_says_nothing_observed():
    kept = [b for b in _blocks(_text("healthy")) if " ping " not in b.split("\n")[0]
            and " nc " not in b.split("\n")[0]]
    table, _ = current_facts(_evidence(("state.txt", "".join(kept))))
    result = walk(table, FIXED, OUTSIDE)
    assert result.observation is None and "observation" not in result.as_json()
    assert "what was observed" not in render_walk(result)


# --- findings ------------------------------------------------------------------------

@pytest.mark.parametrize("case, cause, node", [
    ("no-return-route-mended-unseen", "fip-upstream-no-return-route", GATEWAY),
    ("forward-blocked-mended-unseen", "fip-upstream-forward-blocked", GATEWAY),
    ("snat-wrong-interface-mended-unseen", "fip-snat-wrong-interface", "net01"),
])
def test_a_cause_yields_to_a_later_probe_that_got_through(case, cause, node):
    finding = _finding(diagnose(_evidence((f"{case}.txt", _text(case)))), cause)
    assert (finding.status, finding.node) == ("possible", node)
    assert finding.overruled_by and all(f"{case}.txt:" in said for said in finding.overruled_by)
    assert f"'ping -c 2 -i 0.2 -W 1 {OUTSIDE}' on {VM}" in finding.overruled_by[0]
    assert "2 packets transmitted, 2 received" in finding.overruled_by[0]
    assert "But what was observed after (some of) this evidence outranks it" in finding.explanation
    assert finding.decide_by[0].startswith("Observed after (some of) this evidence: ")
    assert any(line["command"].startswith("ping ") for line in finding.evidence)
    out = finding.as_json()
    assert out["status"] == "possible" and out["overruled_by"] == finding.overruled_by


def test_a_probe_that_got_through_before_the_fault_was_shown_does_not_overrule_it():
    """The ping answered, then the route was removed: the tables shown after it stand."""
    diagnosis = diagnose(_evidence(("session.txt", _text("no-return-route-broken-after-ping"))))
    finding = _finding(diagnosis, "fip-upstream-no-return-route")
    assert finding.status == "established" and finding.overruled_by == []
    assert "outranks" not in finding.explanation


def test_a_probe_that_failed_leaves_the_cause_established():
    finding = _finding(diagnose(_evidence(("s.txt", _text("no-return-route-broken")))),
                       "fip-upstream-no-return-route")
    assert finding.status == "established" and finding.overruled_by == []


def _split_at_probes(case):
    """The session as two messages: the state commands, then the probes."""
    blocks = _blocks(_text(case))
    first_probe = next(i for i, b in enumerate(blocks)
                       if b.split("\n")[0].split("# ", 1)[1].startswith(("ping", "nc")))
    return "".join(blocks[:first_probe]), "".join(blocks[first_probe:])


def test_the_timeline_between_messages_decides_whether_the_probe_came_after():
    state, probes = _split_at_probes("no-return-route-mended-unseen")
    cause = "fip-upstream-no-return-route"
    # the probes pasted after the state: they outrank it
    later = diagnose(_evidence(("message-1", state), ("message-2", probes)))
    assert _finding(later, cause).status == "possible"
    # the same probes pasted first: the state shown after them stands
    earlier = diagnose(_evidence(("message-1", probes), ("message-2", state)))
    assert _finding(earlier, cause).status == "established"
    # a node's tables shown again after the probes: the gateway's route, shown before the
    # probes, may be what changed since, so the observation still outranks it
    again = next(b for b in _blocks(state) if b.startswith("root@net01:~# ip route"))
    mixed = diagnose(_evidence(("message-1", state), ("message-2", probes), ("message-3", again)))
    assert _finding(mixed, cause).status == "possible"
    # files side by side have no order: nothing says the probe came first, so it counts
    beside = diagnose(_evidence(("gw01.txt", state), ("vm01.txt", probes), ordered=False))
    assert _finding(beside, cause).status == "possible"


# --- the rule language -------------------------------------------------------------

_CAUSE = """\
cause: demo-path-broken
title: "{path.node} has no way back"
node: "{path.node}"
when:
  path: {type: return_path}
unless:
  - %s
explanation: "x"
fix: ["y"]
hints: ["a", "b", "c"]
"""


def test_unless_is_read_as_patterns_joined_to_the_case():
    cause = load_rule_text(_CAUSE % "seen: {type: walk_verdict, kind: vm-to-outside, "
                                     "floating: $path.source, observed: answered}", "demo.yaml")
    (case,) = cause.cases
    ((pattern,),) = case.unless
    assert pattern.name == "seen" and pattern.fact_type == "walk_verdict"
    assert ("floating", "eq", ("path", "source")) in pattern.conditions


@pytest.mark.parametrize("item, problem", [
    ("path: {type: walk_verdict, kind: vm-to-outside, floating: $path.source}", "already bound"),
    ("seen: {type: reachability, outcome: answered}", "not joined to an earlier one"),
    ("seen: {type: walk_verdict, kind: vm-to-outside, floating: $nothing.source}", "not bound"),
])
def test_a_wrong_unless_is_an_error_naming_its_line(item, problem):
    with pytest.raises(RuleFileError) as error:
        load_rule_text(_CAUSE % item, "demo.yaml")
    assert error.value.line == 7 and problem in error.value.message


def test_rules_check_names_a_misspelt_unless_pattern_with_its_code_and_line(tmp_path):
    """`rules check` reads unless: against the fact schema, like when: and confirmed_by:."""
    import shutil

    from kb.rulecheck import check_folder
    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).resolve().parent.parent / "rules", rules)
    path = rules / "floating-ips" / "fip-upstream-no-return-route.yaml"
    text = path.read_text()
    wrong = "floating: $path.source, observd: answered}"
    path.write_text(text.replace("floating: $path.source, observed: answered}", wrong, 1))
    line = next(number for number, text in enumerate(path.read_text().split("\n"), 1) if wrong in text)
    (problem,) = check_folder(rules)
    assert (problem.code, problem.line, Path(problem.path).name) == \
        ("SD201", line, "fip-upstream-no-return-route.yaml")
    assert "walk_verdict has no field 'observd'; did you mean 'observed'?" in str(problem)


def test_unless_in_a_rule_file_that_is_not_a_list_is_an_error():
    text = _CAUSE.replace("unless:\n  - %s", "unless: {seen: {type: reachability}}")
    with pytest.raises(RuleFileError) as error:
        load_rule_text(text, "demo.yaml")
    assert "'unless:' is a list" in error.value.message and error.value.line == 6


# --- the namespace lab, live ---------------------------------------------------------

def _lab():
    netns = pytest.importorskip("lab.netns")
    ok, reason = netns.available()
    if not ok:
        pytest.skip(reason)
    from lab import capture, testbed
    return capture, testbed


@pytest.mark.root
@pytest.mark.parametrize("order, status, agrees", [
    (("plant", "state", "probes"), "established", True),
    (("plant", "state", "mend", "probes"), "possible", False),
    (("probes", "plant", "state"), "established", False),
])
def test_live_the_lab_mended_or_broken_behind_the_students_back(order, status, agrees):
    capture, testbed = _lab()
    fault = "gateway_no_return_route"
    with testbed.Testbed(names=testbed.OTHER) as tb:
        text, _ = capture.record_session(tb, order, fault)
    evidence = _evidence(("live.txt", text))
    table, _ = current_facts(evidence)
    result = walk(table, FIXED, OUTSIDE)
    assert result.verdict == "reply-lost" and result.observation.agrees is agrees
    finding = _finding(diagnose(evidence), "fip-upstream-no-return-route")
    assert finding.status == status
    assert bool(finding.overruled_by) == (status == "possible")


@pytest.mark.root
def test_live_the_healthy_lab_is_confirmed_by_its_probes():
    capture, testbed = _lab()
    with testbed.Testbed(names=testbed.OTHER) as tb:
        text, _ = capture.record_session(tb, ("state", "probes"), None)
    evidence = _evidence(("live.txt", text))
    table, _ = current_facts(evidence)
    for result in (walk(table, FIXED, OUTSIDE), walk(table, GATEWAY, FLOATING, "tcp", 22)):
        assert result.verdict == "delivered" and result.observation.agrees
    assert diagnose(evidence).findings == []


# --- the chat --------------------------------------------------------------------------

@pytest.fixture
def tutor(tmp_path):
    from tutor.conversation import Tutor
    from tutor.store import Store
    store = Store(str(tmp_path / "tutor.db"))
    yield Tutor(store)
    store.close()


def _probe_part(case, tool):
    """The session's probe of ``tool`` (ping from the VM, nc from the gateway)."""
    return next(b for b in _blocks(_text(case)) if b.split("\n")[0].split("# ", 1)[1].startswith(tool))


@pytest.mark.parametrize("tool", ["ping", "nc"])
def test_the_chat_says_a_later_probe_that_got_through_overrules_the_tables(tutor, tool):
    state, _ = _split_at_probes("no-return-route-mended-unseen")
    session = tutor.start()
    tutor.respond(session, "my VM cannot ping the outside")
    before = tutor.respond(session, state)
    assert "outranks" not in before.reply
    after = tutor.respond(session, _probe_part("no-return-route-mended-unseen", tool))
    assert "**What you observed outranks what the tables said.**" in after.reply
    assert "gw01 has no route back to the floating IP 198.51.100.77" in after.reply
    assert ("2 packets transmitted, 2 received" if tool == "ping" else "succeeded") in after.reply
    assert "Your fix worked" not in after.reply
    # its question is no longer one the facts answer: the tutor does not ask it again
    assert "**Question:**" not in after.reply


def test_the_chat_says_nothing_of_the_kind_when_the_probe_fails_too(tutor):
    state, _ = _split_at_probes("no-return-route-broken")
    session = tutor.start()
    tutor.respond(session, "my VM cannot ping the outside")
    tutor.respond(session, state)
    after = tutor.respond(session, _probe_part("no-return-route-broken", "ping"))
    assert "outranks" not in after.reply


SEED_FAULTS = ("snat_wrong_interface", "gateway_no_return_route", "gateway_no_masquerade",
               "gateway_forward_blocked")


@pytest.mark.root
@pytest.mark.parametrize("faults", [frozenset(c) for size in range(len(SEED_FAULTS) + 1)
                                    for c in itertools.combinations(SEED_FAULTS, size)],
                         ids=lambda faults: "+".join(sorted(faults)) or "healthy")
def test_live_every_fault_combination_the_probes_confirm_the_walk_and_overrule_nothing(faults):
    """The course's session on every combination of its faults (lab.capture.record_case,
    one file per node): the walk agrees with the kernel, so the probe of each walked packet
    confirms it; and no finding is overruled - a probe that got through (the gateway's nc
    to the floating IP while only the VM's way out is broken) is not of the traffic any
    cause found stops."""
    capture, testbed = _lab()
    from lab.testbed import GATEWAY_TO_FLOATING, VM_TO_OUTSIDE
    with testbed.Testbed(faults=faults, names=testbed.OTHER) as tb:
        record = capture.record_case(tb)
    evidence = _evidence(*((f"live/{host}", t.text) for host, t in record.transcripts.items()),
                         ordered=False)
    table, _ = current_facts(evidence)
    for probe, result in ((VM_TO_OUTSIDE, walk(table, FIXED, OUTSIDE)),
                          (GATEWAY_TO_FLOATING, walk(table, GATEWAY, FLOATING, "tcp", 22))):
        seen = result.observation
        assert seen is not None and seen.agrees, (probe, result.verdict, seen and seen.text)
        assert (seen.outcome == "answered") == record.probes[probe].succeeded
    assert all(not f.overruled_by for f in diagnose(evidence).findings)
