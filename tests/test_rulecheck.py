"""Rule and symptom files are checked against the fact schema: each deliberately broken
file in tests/fixtures/rulecheck/ gives exactly its problem, with its code, file:line and
suggestion; the schema is what the parsers really give; FACTS.md is up to date."""
import importlib
import json
import shutil
from pathlib import Path

import pytest

import app
from kb.rulebook import RuleFileError, load_rulebook
from kb.rulecheck import (CAUSE_ROUTE_KEYS, CODES, CONCEPT_KEYS, GATHERED_KEYS, STEP_KEYS,
                          SYMPTOM_KEYS, RuleCheckError, check_documents, check_folder)
from kb.schema import IMPLICIT_FIELDS, facts_markdown, module_schema, read_declaration

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
BROKEN = Path(__file__).resolve().parent / "fixtures" / "rulecheck"

# fixture -> (code, line, what the message says, what the suggestion says)
CASES = {
    "SD100-not-yaml.yaml": ("SD100", 7, "not valid YAML", "indentation"),
    "SD101-key-twice.yaml": ("SD101", 4, "'title' is given twice", "keep one of them"),
    "SD102-not-a-rule-file.yaml": ("SD102", 2, "needs 'cause:', 'infer:' or 'symptom:'", "did you mean 'cause'?"),
    "SD103-unknown-key.yaml": ("SD103", 13, "unknown key 'fixes'", "did you mean 'fix'?"),
    "SD104-missing-key.yaml": ("SD104", 5, "a cause needs 'fix:'", "add 'fix:'"),
    "SD105-wrong-kind.yaml": ("SD105", 5, "'when:' is a mapping", "{route: {type: default_route}}"),
    "SD106-bad-id.yaml": ("SD106", 2, "'Demo_Broker_Down'", "broker-address-wrong"),
    "SD107-defined-twice.yaml": ("SD107", 2, "also defined in", "rename one"),
    "SD108-collect-unknown-key.yaml": ("SD108", 5, "unknown key 'comands'", "rules/collect.yaml"),
    "SD109-intents-bad-pattern.yml": ("SD109", 7, "intent hint: bad pattern '(can i have a (hint|clue)'",
                                      "rules/intents.yml"),
    "SD200-unknown-fact-type.yaml": ("SD200", 6, "unknown fact type 'servce_status'", "did you mean 'service_status'?"),
    "SD201-unknown-field.yaml": ("SD201", 6, "service_status has no field 'runing'", "did you mean 'running'?"),
    "SD202-unbound-reference.yaml": ("SD202", 7, "'brokr' is not bound", "did you mean 'broker'?"),
    "SD203-bad-condition.yaml": ("SD203", 6, "unknown operator 'gtt'", "did you mean 'gt'?"),
    "SD203-operator-in-operator.yaml": ("SD203", 6, "state: 'not' compares with a value or $name.field, "
                                        "not with {matches: ...}", "no other: {type: ..., state: {matches:"),
    "SD204-not-joined.yaml": ("SD204", 7, "'conf' is not joined", "node: $first.node"),
    "SD205-bound-twice.yaml": ("SD205", 14, "'broker' is bound twice", "another name"),
    "SD206-engine-key.yaml": ("SD206", 6, "'id' is the engine's own key", "fact_id"),
    "SD207-concludes-a-parsed-type.yaml": ("SD207", 7, "'route' is a fact the code produces",
                                           "a type of its own, e.g. route_inferred"),
    "SD300-unbound-placeholder.yaml": ("SD300", 3, "{brokr.node} in 'title:'", "did you mean 'broker'?"),
    "SD301-unknown-placeholder-field.yaml": ("SD301", 4, "service_status has no field 'nodes'", "did you mean 'node'?"),
    "SD302-malformed-placeholder.yaml": ("SD302", 7, "{broker} in 'explanation:' is not {name.field}", "{broker.node}"),
    "SD303-evidence-unbound.yaml": ("SD303", 13, "evidence names 'conf'", "known: broker"),
    "SD310-bad-status.yaml": ("SD310", 13, "status 'establised'", "did you mean 'established'?"),
    "SD311-possible-undecided.yaml": ("SD311", 13, "must say what decides it", "decide_by:"),
    "SD312-short-ladder.yaml": ("SD312", 9, "at least three hints", "the bottom-out answer"),
    "SD400-missing-evidence.yaml": ("SD400", 14, "'../examples/seed-network-node.tx' does not exist",
                                    "did you mean '../examples/seed-network-node.txt'?"),
    "SD401-unknown-expected-cause.yaml": ("SD401", 16, "no cause file defines 'fip-snat-wrong-interfac'",
                                          "did you mean 'fip-snat-wrong-interface'?"),
    "SD402-bad-expected-status.yaml": ("SD402", 15, "'establishd'", "did you mean 'established'?"),
    "SD403-unknown-example-kind.yaml": ("SD403", 15, "kind 'positiv'", "did you mean 'positive'?"),
    "SD404-kind-disagrees.yaml": ("SD404", 15, "a healthy example expects nothing and rules its cause out",
                                  "expect_not: [demo-broker-down]"),
    "SD500-symptom-unknown-cause.yaml": ("SD500", 16, "'fip-snat-wrong-interfaces'",
                                         "did you mean 'fip-snat-wrong-interface'?"),
    "SD501-symptom-unknown-step.yaml": ("SD501", 17, "step 'broker-state'", "did you mean 'broker-status'?"),
    "SD502-unknown-symptom.yaml": ("SD502", 13, "'vm-cannot-reach-internt'",
                                   "did you mean 'vm-cannot-reach-internet'?"),
    "SD901-tutor-refuses.yaml": ("SD901", 8, "unknown role 'moon'", ""),
}


def _rules_with(tmp_path, fixture: str) -> Path:
    """The shipped rules, plus one broken file beside them (sorted last)."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "zz-broken").mkdir()
    shutil.copy(BROKEN / fixture, rules / "zz-broken" / fixture)
    return rules


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_each_broken_file_gives_exactly_its_problem(tmp_path, fixture):
    code, line, message, suggestion = CASES[fixture]
    rules = _rules_with(tmp_path, fixture)
    problems = app.rule_problems(rules)
    assert [(Path(p.path).name, p.line, p.code) for p in problems] == [(fixture, line, code)]
    assert message in problems[0].message
    assert suggestion in problems[0].fix
    assert str(problems[0]).startswith(f"{rules / 'zz-broken' / fixture}:{line}: {code} ")


def test_every_code_has_its_broken_file():
    named = {name.split("-", 1)[0] for name in CASES}
    on_disk = {path.name.split("-", 1)[0] for path in [*BROKEN.glob("*.yaml"), *BROKEN.glob("*.yml")]}
    assert named == on_disk == set(CODES) - {"SD900"}
    for name, (code, *_rest) in CASES.items():
        assert name.startswith(code)


def test_what_only_the_loader_refuses_is_reported_with_its_own_code(tmp_path, monkeypatch):
    import kb.rulebook

    def refuse(folders):
        raise RuleFileError(str(Path(folders[0]) / "x.yaml"), 3, "something new is wrong")
    monkeypatch.setattr(kb.rulebook, "load_rulebook", refuse)
    problems = app.rule_problems(RULES)
    assert [(p.code, p.line, p.message) for p in problems] == [("SD900", 3, "something new is wrong")]


def test_the_shipped_rules_have_no_problem():
    assert check_folder(RULES) == []
    assert app.rule_problems(RULES) == []


def test_loading_a_rulebook_stops_at_the_first_problem_with_its_code(tmp_path):
    rules = _rules_with(tmp_path, "SD201-unknown-field.yaml")
    with pytest.raises(RuleCheckError) as raised:
        load_rulebook([str(rules)])
    assert raised.value.code == "SD201" and raised.value.line == 6
    assert str(raised.value) == (f"{rules / 'zz-broken' / 'SD201-unknown-field.yaml'}:6: SD201 "
                                 "service_status has no field 'runing'; did you mean 'running'?")


def test_every_problem_of_a_folder_is_reported_not_only_the_first(tmp_path):
    rules = _rules_with(tmp_path, "SD200-unknown-fact-type.yaml")
    second = (BROKEN / "SD310-bad-status.yaml").read_text().replace("demo-broker-down", "demo-other")
    (rules / "zz-broken" / "second.yaml").write_text(second)
    assert sorted(p.code for p in check_folder(rules)) == ["SD200", "SD310"]


# --- the schema is what the code really produces ----------------------------------------

PARSER_FIXTURES = ROOT / "tests" / "fixtures"
# What the transcript reader takes out of a record: the line becomes prov, a grep'd
# file name becomes the fact's path.
READER_KEYS = {"type", "line", "end_line", "file"}


@pytest.mark.parametrize("kind", sorted(p.name for p in PARSER_FIXTURES.iterdir()
                                        if (ROOT / "grammar" / f"{p.name}.lark").exists()))
def test_a_parser_gives_only_the_fields_its_fact_types_declare(kind):
    schema = module_schema()
    parser = importlib.import_module(f"grammar.{kind}")
    declared = read_declaration((ROOT / "grammar" / f"{kind}.py").read_text(), kind)
    seen = set()
    for out in sorted((PARSER_FIXTURES / kind).glob("*.out")):
        expected = out.with_suffix(".json")
        command = json.loads(expected.read_text()).get("command", "") if expected.exists() else ""
        for record in parser.parse(out.read_text(errors="replace"), command).records:
            assert record["type"] in declared, (out.name, record["type"])
            extra = set(record) - READER_KEYS - set(schema.types[record["type"]].fields)
            assert not extra, (out.name, record["type"], extra)
            seen.add(record["type"])
    assert seen, f"no fixture of {kind} gave a record"


def test_derived_and_concluded_facts_match_their_declarations():
    from collectors.files import read_evidence
    from kb.diagnose import default_rulebook, diagnose
    schema = app.schema_of(default_rulebook())
    table = diagnose(read_evidence([str(RULES / "examples" / "seed-lab-as-found")])).table
    kept = {"fact_id", "prov", "derived_from"}
    types = set()
    for fact in table.facts:
        assert fact["type"] in schema, fact["type"]
        assert not set(fact) - kept - set(schema.fields(fact["type"])), fact
        types.add(fact["type"])
    assert {"gateway_of", "walk_verdict", "snat_scope", "route", "iptables_rule"} <= types


def test_implicit_fields_are_not_declared_again():
    for fact_type in module_schema().types.values():
        assert not set(fact_type.fields) & set(IMPLICIT_FIELDS), fact_type.name


def test_facts_md_is_up_to_date():
    from kb.diagnose import default_rulebook
    expected = facts_markdown(app.schema_of(default_rulebook()))
    assert (RULES / "FACTS.md").read_text() == expected, \
        "rules/FACTS.md is stale: run python app.py rules facts --write"
    assert "### `service_status`" in expected and "| `running` | true when it runs |" in expected
    assert "### `gateway_of`" in expected and "from `$owner.node`" in expected


def test_the_symptom_file_shape_is_the_tutors():
    from tutor import symptoms
    assert (SYMPTOM_KEYS, STEP_KEYS, CAUSE_ROUTE_KEYS, GATHERED_KEYS, CONCEPT_KEYS) == (
        symptoms.SYMPTOM_KEYS, symptoms.STEP_KEYS, symptoms.CAUSE_ROUTE_KEYS,
        symptoms.GATHERED_KEYS, symptoms.CONCEPT_KEYS)


def test_the_instructors_readme_lists_every_code():
    readme = (RULES / "README.md").read_text()
    for code, title in CODES.items():
        assert f"| `{code}` | {title} |" in readme, code


# --- nothing an instructor writes crashes the check ---------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_KEYS = st.sampled_from(["cause", "infer", "symptom", "when", "cases", "title", "fix", "hints",
                         "examples", "evidence", "expect", "type", "node", "steps", "causes",
                         "route", "gathered", "fact", "where", "conclude", "because", "status",
                         "questions", "ask", "confirmed_by", "no x", "a", "$a.node", "{a.node}"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), _KEYS, st.text(max_size=12))
_YAMLISH = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(_KEYS, _YAMLISH, max_size=6), min_size=1, max_size=3))
def test_any_document_gives_problems_never_an_exception(documents):
    problems = check_documents([(f"rules/x{i}.yaml", d) for i, d in enumerate(documents)])
    assert all(p.code in CODES for p in problems)


@pytest.mark.parametrize("fixture", sorted(set(CASES) - {"SD107-defined-twice.yaml",     # the loader's own
                                                          "SD109-intents-bad-pattern.yml",  # the tutor's
                                                          "SD901-tutor-refuses.yaml"}))
def test_loading_rules_reports_the_same_code_as_the_check(tmp_path, fixture):
    code, line, message, suggestion = CASES[fixture]
    rules = _rules_with(tmp_path, fixture)
    with pytest.raises(RuleCheckError) as raised:
        load_rulebook([str(rules)])
    assert (raised.value.code, raised.value.line) == (code, line)
    assert message in str(raised.value) and suggestion in str(raised.value)


def test_a_placeholder_in_a_long_text_is_told_by_its_own_line(tmp_path):
    rules = _rules_with(tmp_path, "SD200-unknown-fact-type.yaml")
    path = rules / "zz-broken" / "SD200-unknown-fact-type.yaml"
    text = path.read_text().replace("servce_status", "service_status").replace(
        'explanation: "{broker.service} on {broker.node} says: {broker.state}"',
        "explanation: >-\n  {broker.service} on {broker.node}\n  says {broker.stat}\n  and so on")
    path.write_text(text)
    lines = text.splitlines()
    where = next(number for number, line in enumerate(lines, 1) if "{broker.stat}" in line)
    assert where == next(n for n, line in enumerate(lines, 1) if line.startswith("explanation:")) + 2
    problems = check_folder(rules)
    assert [(p.code, p.line) for p in problems] == [("SD301", where)]
    assert problems[0].fix == "did you mean 'state'?"
