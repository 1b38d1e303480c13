"""Fixture pairs: ``tests/fixtures/<kind>/<case>.out`` is what a command printed,
``<case>.json`` what the parser must give for it, as
``{"command": "...", "records": [...], "problems": [[line, reason-substring], ...]}``
("command" and "problems" may be left out)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def cases(kind: str) -> list[tuple[str, Path, Path]]:
    folder = FIXTURES / kind
    return [(out.stem, out, out.with_suffix(".json")) for out in sorted(folder.glob("*.out"))]


def check_case(kind: str, out: Path, expected_file: Path) -> None:
    parser = importlib.import_module(f"grammar.{kind}")
    expected = json.loads(expected_file.read_text())
    result = parser.parse(out.read_text(), expected.get("command", ""))
    assert result.records == expected["records"]
    want_problems = expected.get("problems", [])
    assert len(result.problems) == len(want_problems), result.problems
    for problem, (line, reason) in zip(result.problems, want_problems):
        assert problem.line == line and reason in problem.reason, problem
