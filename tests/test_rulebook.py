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


# --- 'matches:' judged in Python, as durable-rules' $mt judges it ----------------------------

def _values_seen(rulebook) -> dict[tuple[str, str], set]:
    """Per (fact type, field) a rule matches on: the values the worked examples' facts
    hold, and near misses of each (a prefix, a suffix, a line break inside)."""
    from grammar.transcript import read_transcript
    wanted = {(p.fact_type, fld) for cause in rulebook.causes for case in cause.cases
              for p in case.patterns for fld, op, _ in p.conditions if op == "matches"}
    wanted |= {(p.fact_type, fld) for rule in rulebook.inferences for p in rule.patterns
               for fld, op, _ in p.conditions if op == "matches"}
    values = {key: {"", "x", "nova-network\n", 7, True, None} for key in wanted}
    for path in sorted((RULES_DIR / "examples").glob("*")):
        if path.is_file():
            for fact in read_transcript(path.read_text(errors="replace"), str(path)).facts:
                for fact_type, fld in wanted:
                    if fact.get("type") == fact_type and isinstance(fact.get(fld), str):
                        value = fact[fld]
                        values[(fact_type, fld)] |= {value, "x" + value, value + "x",
                                                     value[:1] + "\n" + value[1:]}
    return values


def test_matches_conditions_are_judged_as_durable_rules_judges_them():
    from kb.diagnose import default_rulebook
    from kb.engine import Engine
    from kb.rulecompile import matched_field, matcher
    rulebook = default_rulebook()
    values = _values_seen(rulebook)
    regexes = {(p.fact_type, fld, value) for cause in rulebook.causes for case in cause.cases
               for p in case.patterns for fld, op, value in p.conditions if op == "matches"}
    regexes |= {(p.fact_type, fld, value) for rule in rulebook.inferences for p in rule.patterns
                for fld, op, value in p.conditions if op == "matches"}
    assert len(regexes) >= 10
    prepare = matcher(rulebook)
    rules, facts, number = {}, [], 0
    for index, (fact_type, fld, regex) in enumerate(sorted(regexes)):
        rules[f"mt{index}"] = {"all": [{"m": {"$and": [{"type": fact_type}, {"$mt": {fld: regex}}]}}],
                               "run": (lambda i: lambda session, c: session.emit((i, c.m.fact_id)))(index)}
    for (fact_type, fld), seen in sorted(values.items()):
        for value in sorted(seen, key=repr):
            number += 1
            facts.append({"type": fact_type, fld: value, "fact_id": number})
    engine = Engine(rules, identity=f"matches-{sorted(regexes)}", name_hint="matches_test")
    with engine.session() as session:
        session.assert_facts(facts)
        by_durable = set(session.outputs)
    by_python = set()
    for index, (fact_type, fld, regex) in enumerate(sorted(regexes)):
        for fact in facts:
            if fact["type"] == fact_type and fld in fact and prepare(dict(fact))[matched_field(fld, regex)]:
                by_python.add((index, fact["fact_id"]))
    assert len(by_durable) >= 10 and len(facts) - len(by_durable) >= 10
    assert by_python == by_durable
