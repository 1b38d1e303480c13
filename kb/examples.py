"""Worked examples: each rule file's own tests, evidence in, expected findings out.

A cause file's ``examples:`` name evidence beside the rules and what it must show::

    examples:
      - evidence: ../examples/seed-network-node.txt       # a file or a folder, or a list
        node: network-node                                # where no prompt says (optional)
        expect:
          - {cause: fip-snat-wrong-interface, status: established, node: network-node}
          - cinder-qemu-img-missing                       # found, whatever its status
        expect_not: [fip-upstream-no-return-route]        # must not be found

An expectation with a status fails when the cause is found with the other status: an
example expecting ``established`` fails on ``possible``. ``python app.py rules test``
runs them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors.files import InputError, read_evidence
from kb.diagnose import diagnose
from kb.rulebook import Rulebook


@dataclass(frozen=True)
class Expectation:
    cause: str
    status: str | None = None     # None: any status
    node: str | None = None       # None: any node

    def describe(self) -> str:
        return self.cause + (f" [{self.status}]" if self.status else "") + \
            (f" on {self.node}" if self.node else "")

    def met_by(self, finding) -> bool:
        return finding.cause == self.cause and self.status in (None, finding.status) \
            and self.node in (None, finding.node)


@dataclass
class ExampleResult:
    cause: str                    # the cause file the example belongs to
    path: str                     # that file
    line: int | None              # where the example starts in it
    evidence: list[str]           # as written in the file
    failures: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        return f"{self.cause}: {', '.join(self.evidence)}"


def expectations(items) -> list[Expectation]:
    """``expect:`` items: a cause id, or ``{cause, status, node}``."""
    found = []
    for item in items or []:
        if isinstance(item, dict):
            found.append(Expectation(str(item.get("cause")), item.get("status"), item.get("node")))
        else:
            found.append(Expectation(str(item)))
    return found


def run_example(rulebook: Rulebook, cause, example: dict) -> ExampleResult:
    given = example.get("evidence")
    evidence_paths = given if isinstance(given, list) else [given]
    lines = getattr(example, "lines", None) or {}
    result = ExampleResult(cause.cause, cause.path, min(lines.values()) if lines else None,
                           [str(p) for p in evidence_paths])
    folder = Path(cause.path).parent
    try:
        evidence = read_evidence([str(folder / p) for p in evidence_paths], node=example.get("node"))
    except InputError as error:
        result.failures.append(f"its evidence cannot be read: {error}")
        return result
    findings = diagnose(evidence, rulebook=rulebook).findings
    result.found = [f"{f.cause} [{f.status}]" + (f" on {f.node}" if f.node else "") for f in findings]
    for expected in expectations(example.get("expect")):
        if any(expected.met_by(f) for f in findings):
            continue
        same = [f for f in findings if f.cause == expected.cause]
        if same:
            seen = ", ".join(f"{f.status}" + (f" on {f.node}" if f.node else "") for f in same)
            result.failures.append(f"expected {expected.describe()}, found {seen}")
        else:
            result.failures.append(f"expected {expected.describe()}, not found")
    for unwanted in expectations(example.get("expect_not")):
        hits = [f for f in findings if unwanted.met_by(f)]
        if hits:
            result.failures.append(f"found {unwanted.describe()}, which the example rules out")
    return result


def run_examples(rulebook: Rulebook, causes=None) -> list[ExampleResult]:
    """Every worked example of the rulebook, or of the named causes only."""
    wanted = set(causes or [])
    return [run_example(rulebook, cause, example)
            for cause in rulebook.causes if not wanted or cause.cause in wanted
            for example in cause.examples]
