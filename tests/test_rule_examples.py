"""Each rule file's worked examples are its own tests: the evidence it names must give
the findings it expects, with their status and node, and never the ones it rules out."""
from pathlib import Path

import pytest

from kb.diagnose import RULES_DIR, default_rulebook
from kb.examples import expectations, run_example

RULEBOOK = default_rulebook()
EXAMPLES = [(cause, example) for cause in RULEBOOK.causes for example in cause.examples]


@pytest.mark.parametrize("cause, example", EXAMPLES,
                         ids=[f"{c.cause}:{e['evidence']}" for c, e in EXAMPLES])
def test_worked_example(cause, example):
    result = run_example(RULEBOOK, cause, example)
    assert result.failures == [], result.found


def test_every_cause_file_in_the_rules_folder_has_an_example_stating_its_status():
    cause_files = sorted(str(p) for p in Path(RULES_DIR).rglob("*.yaml")
                         if p.read_text().lstrip("# \n").startswith("cause:")
                         or "\ncause:" in p.read_text())
    assert sorted(cause.path for cause in RULEBOOK.causes) == cause_files
    for cause in RULEBOOK.causes:
        own = [e for example in cause.examples for e in expectations(example["expect"])
               if e.cause == cause.cause]
        assert own, f"{cause.cause} has no worked example that expects it"
        assert all(e.status in ("established", "possible") for e in own), cause.cause


def _example(cause_id, evidence, expect, **more):
    return {"evidence": evidence, "expect": expect, **more}


def test_a_cause_found_with_another_status_fails_the_example():
    cause = RULEBOOK.cause("cinder-glance-endpoint")
    # the log alone fits two causes: the finding is possible, not established
    example = _example(cause.cause, "../examples/seed-cinder-api.log",
                       [{"cause": cause.cause, "status": "established"}], node="volume-node")
    assert run_example(RULEBOOK, cause, example).failures == [
        "expected cinder-glance-endpoint [established], found possible on volume-node"]
    example["expect"] = [{"cause": cause.cause, "status": "possible"}]
    assert run_example(RULEBOOK, cause, example).passed


def test_a_finding_on_another_node_or_missing_or_ruled_out_fails_the_example():
    cause = RULEBOOK.cause("fip-snat-wrong-interface")
    evidence = "../examples/lab-snat-wrong-interface"
    wrong_node = _example(cause.cause, evidence, [{"cause": cause.cause, "node": "gw01"}])
    assert run_example(RULEBOOK, cause, wrong_node).failures == [
        "expected fip-snat-wrong-interface on gw01, found established on net01"]
    missing = _example(cause.cause, "../examples/lab-healthy", [cause.cause])
    assert run_example(RULEBOOK, cause, missing).failures == [
        "expected fip-snat-wrong-interface, not found"]
    ruled_out = _example(cause.cause, evidence, [], expect_not=[cause.cause])
    assert run_example(RULEBOOK, cause, ruled_out).failures == [
        "found fip-snat-wrong-interface, which the example rules out"]


def test_evidence_that_cannot_be_read_fails_the_example_with_why():
    cause = RULEBOOK.cause("cinder-qemu-img-missing")
    result = run_example(RULEBOOK, cause, _example(cause.cause, "../examples/nowhere.log", [cause.cause]))
    assert not result.passed and "cannot be read" in result.failures[0]
    assert "nowhere.log" in result.failures[0]
