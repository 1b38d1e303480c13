"""Rule files: the shipped ones load, and every mistake an instructor can make is
reported with the file, the line and what is wrong."""
import textwrap

import pytest

from kb.diagnose import RULES_DIR
from kb.rulebook import RuleFileError, load_rule_text, load_rulebook
from kb.rulecompile import compile_patterns

GOOD = textwrap.dedent("""\
    cause: demo-cause
    title: "{a.node} is broken"
    node: "{a.node}"
    when:
      a: {type: thing}
      b: {type: other, node: $a.node, dev: {not: $a.dev}}
    explanation: "{a.node} and {b.dev}"
    fix: ["fix {a.node}"]
    hints: ["look at {a.node}", "compare {a.dev}", "the answer"]
    """)


def test_the_shipped_rules_load_with_a_ladder_of_hints_for_every_cause():
    rulebook = load_rulebook([RULES_DIR])
    ids = {cause.cause for cause in rulebook.causes}
    assert {"fip-snat-wrong-interface", "fip-upstream-no-return-route",
            "fip-upstream-no-masquerade", "fip-upstream-forward-blocked",
            "cinder-glance-endpoint", "cinder-qemu-img-missing"} <= ids
    for cause in rulebook.causes:
        assert len(cause.hints) >= 3, cause.cause


def test_a_good_rule_compiles_to_a_join_on_the_bound_fact():
    cause = load_rule_text(GOOD, "demo.yaml")
    conditions = compile_patterns(cause.cases[0].patterns)
    assert conditions == [
        {"a": {"type": "thing"}},
        {"b": {"$and": [{"type": "other"}, {"node": {"a": "node"}}, {"$neq": {"dev": {"a": "dev"}}}]}},
    ]


def test_an_absence_waits_for_all_evidence():
    rule = GOOD.replace("  b: {type: other", "  no b: {type: other")
    rule = rule.replace("{b.dev}", "{a.dev}")
    cause = load_rule_text(rule, "demo.yaml")
    conditions = compile_patterns(cause.cases[0].patterns)
    assert conditions[1] == {"evidence_in": {"type": "evidence_complete"}}
    assert "b$not" in conditions[2]


@pytest.mark.parametrize("change, line, message", [
    (("explanation:", "explantion:"), 7, "unknown key 'explantion'"),
    (("hints: [\"look at {a.node}\", \"compare {a.dev}\", \"the answer\"]", "hints: [\"only one\"]"), 9,
     "at least three hints"),
    (("dev: {not: $a.dev}", "dev: {not: $c.dev}"), 6, "'c' is not bound"),
    (("b: {type: other, node: $a.node, dev: {not: $a.dev}}", "b: {type: other}"), 6,
     "not joined to an earlier one"),
    (("title: \"{a.node} is broken\"", "title: \"{x.node} is broken\""), 2, "{x.node} is not name.field"),
    (("  a: {type: thing}", "  a: {type: thing, message: {matches: '.*\\d+.*'}}"), 5, "[0-9]"),
    (("  a: {type: thing}", "  a: {type: thing, id: 3}"), 5, "engine's own key"),
    (("  a: {type: thing}", "  a: {type: thing, dev: {like: x}}"), 5, "unknown operator 'like'"),
    (("  a: {type: thing}", "  s: {type: thing}"), 5, "not a usable name"),
    (("fix: [\"fix {a.node}\"]", "fix: [\"fix {a.node}\"]\nfix: [\"again\"]"), 9, "given twice"),
    (("when:", "when: [oops"), None, "not valid YAML"),
])
def test_mistakes_name_the_line_and_what_is_wrong(change, line, message):
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(RuleFileError) as raised:
        load_rule_text(text, "demo.yaml")
    assert message in str(raised.value)
    if line is not None:
        assert raised.value.line == line, str(raised.value)
    assert str(raised.value).startswith("demo.yaml")


def test_a_possible_cause_must_say_what_decides_it():
    text = GOOD.replace("explanation:", "status: possible\nexplanation:")
    with pytest.raises(RuleFileError, match="decide_by"):
        load_rule_text(text, "demo.yaml")


def test_an_absence_cannot_come_first():
    text = GOOD.replace("  a: {type: thing}", "  no a: {type: thing}")
    with pytest.raises(RuleFileError, match="cannot come first"):
        load_rule_text(text, "demo.yaml")


def test_two_files_for_one_cause_are_refused(tmp_path):
    (tmp_path / "one.yaml").write_text(GOOD)
    (tmp_path / "two.yaml").write_text(GOOD)
    with pytest.raises(RuleFileError, match="also defined in"):
        load_rulebook([tmp_path])


def test_an_inference_concludes_a_fact_from_bound_values():
    rules = load_rule_text(textwrap.dedent("""\
        infer:
          - name: gateway
            when:
              route: {type: default_route}
              owner: {type: owns_address, address: $route.via}
            conclude: {type: gateway_of, node: $owner.node, for_node: $route.node}
            because: "{route.node} goes via {owner.node}"
        """), "infer.yaml")
    assert rules[0].conclude == {"type": "gateway_of", "node": "$owner.node", "for_node": "$route.node"}
    with pytest.raises(RuleFileError, match="'nobody' is not bound"):
        load_rule_text(textwrap.dedent("""\
            infer:
              - name: gateway
                when:
                  route: {type: default_route}
                conclude: {type: gateway_of, node: $nobody.node}
                because: "x"
            """), "infer.yaml")


def test_a_confirmation_adds_a_case_whose_evidence_includes_it():
    text = GOOD + textwrap.dedent("""\
        confirmed_by:
          - c: {type: capture, node: $a.node}
        """)
    cause = load_rule_text(text, "demo.yaml")
    assert len(cause.cases) == 2
    assert [p.name for p in cause.cases[1].patterns] == ["a", "b", "c"]
    assert cause.cases[1].texts["evidence"] == ["a", "b", "c"]
    with pytest.raises(RuleFileError, match="'b' is already bound"):
        load_rule_text(GOOD + "confirmed_by:\n  - b: {type: capture, node: $a.node}\n", "demo.yaml")


def test_a_finding_confirmed_by_a_packet_walk_shows_the_walk_in_its_reasoning():
    from collectors.files import read_evidence
    from kb.diagnose import diagnose
    labs = RULES_DIR.parent / "tests" / "fixtures" / "labs" / "other-gateway-forward-blocked"
    finding = diagnose(read_evidence(sorted(str(p) for p in labs.glob("*.txt")))).findings[0]
    assert any(step.startswith("walk vm-to-outside") and "FORWARD on gw01 drops" in step
               for step in finding.reasoning)


def test_an_expected_value_may_carry_feedback_for_when_it_is_missing():
    text = GOOD + textwrap.dedent("""\
        questions:
          - ask: "which interfaces?"
            expect:
              - value: "{a.dev}"
                missing: "look at {a.node}'s rule"
              - "{b.dev}"
        """)
    question = load_rule_text(text, "demo.yaml").questions[0]
    assert question.expect == ["{a.dev}", "{b.dev}"]
    assert question.missing == ["look at {a.node}'s rule", None]
    with pytest.raises(RuleFileError, match="is not name.field"):
        load_rule_text(text.replace("look at {a.node}", "look at {z.node}"), "demo.yaml")


COMPUTED_RULE = textwrap.dedent("""\
    cause: demo-computed
    title: "{fip.address} is routed by {back.dev}"
    when:
      fip: {type: floating_ip}
      back: {type: route_choice, node: $fip.node, destination: $fip.address}
    explanation: "{back.described}"
    fix: ["route {fip.range}"]
    hints: ["look at {fip.node}", "compare {back.dev}", "the answer"]
    """)


def test_a_computed_fact_is_asked_with_the_values_bound_before_it():
    from kb.queries import COMPUTED
    from kb.rulecompile import questions
    cause = load_rule_text(COMPUTED_RULE, "demo.yaml")
    (question,) = questions(cause.cases[0].patterns, COMPUTED, "demo.yaml")
    assert question.fact_type == "route_choice"
    assert question.values({"fip": {"node": "net01", "address": "198.51.100.77"}}) == \
        {"node": "net01", "destination": "198.51.100.77"}
    assert compile_patterns(question.before) == [{"fip": {"type": "floating_ip"}}]


@pytest.mark.parametrize("change, line, message", [
    (("  back: {type: route_choice, node: $fip.node, destination: $fip.address}",
      "  back: {type: route_choice, node: $fip.node}"), 5,
     "'back': a route_choice fact is computed for given node, destination; say which destination"),
    (("  fip: {type: floating_ip}\n  back: {type: route_choice, node: $fip.node, destination: $fip.address}",
      "  back: {type: route_choice, node: net01, destination: 10.0.0.1}\n  fip: {type: floating_ip, node: $back.node}"), 4,
     "'route_choice' is computed for the facts the patterns before it bind; it cannot be the first pattern"),
])
def test_a_computed_fact_asked_wrongly_is_an_error_with_its_line(change, line, message):
    from kb.queries import COMPUTED
    from kb.rulecompile import questions
    text = COMPUTED_RULE.replace(*change)
    assert text != COMPUTED_RULE
    cause = load_rule_text(text, "demo.yaml")
    with pytest.raises(RuleFileError) as error:
        questions(cause.cases[0].patterns, COMPUTED, "demo.yaml")
    assert error.value.line == line and message in str(error.value)


# --- compiling only the rules the evidence can reach ----------------------------------------

CHAIN = textwrap.dedent("""\
    infer:
      - name: a router of a node
        when:
          route: {type: default_route}
        conclude: {type: router_of, node: $route.node, via: $route.via}
        because: "{route.node} routes via {route.via}"
    """)


def _chain_cause(cause: str, first: str) -> str:
    return textwrap.dedent(f"""\
        cause: {cause}
        title: "{{a.node}}"
        node: "{{a.node}}"
        when:
          a: {{type: {first}}}
          nothing: {{type: service_status, node: $a.node}}
        explanation: "x"
        fix: ["y"]
        hints: ["1", "2", "3"]
        """)


def test_only_rules_whose_facts_can_be_present_are_compiled(tmp_path):
    from kb.queries import COMPUTED
    from kb.rulecompile import reachable
    (tmp_path / "chain.yaml").write_text(CHAIN)
    (tmp_path / "routed.yaml").write_text(_chain_cause("routed", "router_of").replace(
        "  nothing: {type: service_status, node: $a.node}\n", "  none: {type: route_choice, node: $a.node, destination: $a.via}\n"))
    (tmp_path / "mystery.yaml").write_text(_chain_cause("mysterious", "router_of"))
    (tmp_path / "absent.yaml").write_text(_chain_cause("absent-ok", "router_of").replace(
        "nothing: {", "no nothing: {"))
    rulebook = load_rulebook([tmp_path])
    inferences, cases = reachable(rulebook, {"default_route"}, COMPUTED)
    # concluded by a reachable inference, computed, or asked to be absent: compiled;
    # a fact type nothing asserts or concludes: not
    assert inferences == {0}
    assert cases == {("routed", 0), ("absent-ok", 0)}
    assert reachable(rulebook, {"address"}, COMPUTED) == (set(), set())


def _findings(rulebook, path):
    from grammar.transcript import read_transcript
    from kb.diagnose import diagnose
    evidence = read_transcript(path.read_text(), str(path))
    return sorted((f.cause, f.status, f.node, f.title, tuple(f.reasoning))
                  for f in diagnose(evidence, rulebook=rulebook).findings)


def test_the_rules_the_evidence_reaches_find_what_the_whole_rulebook_finds(monkeypatch):
    """Every worked example of the shipped rules, diagnosed with the rules its facts can
    reach and with every rule compiled: the same findings, statuses and reasoning."""
    from kb import rulecompile
    from kb.diagnose import default_rulebook
    rulebook = default_rulebook()
    paths = sorted({(RULES_DIR / cause.path).parent / example["evidence"] if isinstance(example["evidence"], str)
                    else None for cause in rulebook.causes for example in cause.examples} - {None})
    paths = [p.resolve() for p in paths if p.is_file()]
    assert len(paths) >= 10
    reached = {path: _findings(rulebook, path) for path in paths}
    assert sum(1 for found in reached.values() if found) >= 10
    everything = (set(range(len(rulebook.inferences))),
                  {(c.cause, n) for c in rulebook.causes for n in range(len(c.cases))})
    monkeypatch.setattr(rulecompile, "reachable", lambda *args: everything)
    assert {path: _findings(rulebook, path) for path in paths} == reached


def test_past_its_limit_of_partial_engines_a_rulebook_uses_its_whole_engine(monkeypatch, tmp_path):
    from kb import rulecompile
    from kb.diagnose import default_rulebook
    rulebook = default_rulebook()
    seed = RULES_DIR / "examples" / "seed-network-node.txt"
    expected = _findings(rulebook, seed)
    monkeypatch.setattr(rulecompile, "MAX_PARTIAL_ENGINES", len(rulebook.__dict__.get("_partial_engines", {})))
    before = dict(rulebook.__dict__.get("_partial_engines", {}))
    gateway_only = tmp_path / "gateway.txt"
    gateway_only.write_text("root@gw01:~# ip route\ndefault via 198.51.100.1 dev eth0\n")
    assert _findings(rulebook, gateway_only) == []
    assert rulebook.__dict__.get("_partial_engines", {}) == before      # none added
    assert _findings(rulebook, seed) == expected
