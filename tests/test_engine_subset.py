"""A diagnosis registers with durable-rules only the rules its evidence can fire
(kb/rulecompile.compiled with ``present``): the findings must be those every rule gives."""
import json
from pathlib import Path

import pytest

from collectors.files import read_evidence
from kb import diagnose as kb_diagnose
from kb import rulecompile
from kb.diagnose import RULES_DIR, default_rulebook, diagnose
from kb.queries import COMPUTED
from kb.rulebook import load_rulebook
from report.render import render

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = sorted(RULES_DIR.glob("examples/seed-*.txt")) + sorted(
    path for path in (ROOT / "tests" / "fixtures" / "labs").iterdir() if path.is_dir())


def _engine(rulebook, present=None):
    return rulecompile.compiled(rulebook, kb_diagnose._on_cause, kb_diagnose._on_inference,
                                kb_diagnose._on_query, COMPUTED, kb_diagnose._on_overrule,
                                present=present)


@pytest.mark.parametrize("path", EVIDENCE, ids=lambda path: path.name)
def test_the_rules_the_evidence_can_fire_find_what_every_rule_finds(path, monkeypatch):
    subset = render(diagnose(read_evidence([path], node=None)), "json")
    every = kb_diagnose.compiled
    monkeypatch.setattr(kb_diagnose, "compiled",
                        lambda *args, present=None, **kwargs: every(*args, **kwargs))
    assert render(diagnose(read_evidence([path], node=None)), "json") == subset
    assert json.loads(subset)["facts"] > 0


def test_a_rule_that_needs_an_inferred_fact_is_kept_when_the_inference_can_fire():
    rules = rulecompile.plan(default_rulebook(), COMPUTED)
    makers: dict = {}
    for rule in rules:
        if rule.makes:
            makers.setdefault(rule.makes, []).append(rule)
    # a cause resting on a conclusion only one inference draws
    cause, inference = next((rule, makers[made][0]) for rule in rules if rule.kind == "cause"
                            for made in sorted(rule.needs)
                            if len(makers.get(made, ())) == 1 and makers[made][0].kind == "infer"
                            and made not in makers[made][0].needs)
    made = inference.makes
    evidence = (cause.needs - {made}) | inference.needs
    assert made not in evidence
    assert {cause.name, inference.name} <= set(rulecompile.can_fire(rules, evidence))
    # without what the inference needs, neither can fire (the rest of the cause's types still in)
    missing = sorted(inference.needs - cause.needs)
    if missing:
        fired = rulecompile.can_fire(rules, evidence - {missing[0]})
        assert inference.name not in fired and cause.name not in fired
    assert cause.name not in rulecompile.can_fire(rules, cause.needs - {made})


def test_absent_types_leave_their_rules_out_and_the_engines_are_bounded(monkeypatch):
    rulebook = load_rulebook((str(RULES_DIR),))   # its own engines, none registered yet
    every = _engine(rulebook)
    few = _engine(rulebook, present=["route", "default_route"])
    assert set(few.actions) < set(every.actions)
    assert _engine(rulebook, present=["default_route", "route"]) is few
    assert _engine(rulebook, present=[]) is not every
    monkeypatch.setattr(rulecompile, "MAX_ENGINES_PER_RULEBOOK", len(rulebook._engines))
    # past the bound, evidence of yet other types gets the engine of every rule
    rules = rulecompile.plan(rulebook, COMPUTED)
    other = next([fact_type] for fact_type in sorted(rulebook.fact_types())
                 if tuple(rulecompile.can_fire(rules, [fact_type])) not in rulebook._engines)
    assert _engine(rulebook, present=other) is every
