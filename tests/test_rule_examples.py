"""Each rule file's worked examples are its own tests: the evidence it names must give
the causes it expects, and never the ones it rules out."""
from pathlib import Path

import pytest

from collectors.files import read_evidence
from kb.diagnose import default_rulebook, diagnose

EXAMPLES = [(cause.cause, Path(cause.path).parent, example)
            for cause in default_rulebook().causes for example in cause.examples]


@pytest.mark.parametrize("cause, folder, example", EXAMPLES,
                         ids=[f"{c}:{e['evidence']}" for c, _, e in EXAMPLES])
def test_worked_example(cause, folder, example):
    evidence = read_evidence([str(folder / example["evidence"])], node=example.get("node"))
    found = {finding.cause for finding in diagnose(evidence).findings}
    assert set(example["expect"]) <= found
    assert not set(example.get("expect_not", [])) & found


def test_every_cause_with_seed_evidence_has_a_worked_example():
    with_examples = {cause for cause, _, _ in EXAMPLES}
    assert {"fip-snat-wrong-interface", "fip-upstream-no-return-route",
            "cinder-glance-endpoint", "cinder-qemu-img-missing"} <= with_examples
