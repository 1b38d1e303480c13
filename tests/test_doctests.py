"""The examples in docstrings are run, so they never rot (as insights-core's parsers do)."""
import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("grammar", "kb", "report", "tutor", "web", "collectors", "lab", "benchmarks")
MODULES = sorted(f"{path.parent.name}.{path.stem}" for package in PACKAGES
                 for path in (ROOT / package).glob("*.py")
                 if ">>> " in path.read_text(encoding="utf-8"))


def test_the_modules_with_examples_are_found():
    assert {"grammar.commands", "kb.schema", "kb.rulecheck"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    source = (ROOT / name.replace(".", "/")).with_suffix(".py").read_text(encoding="utf-8")
    skipped = source.count("# doctest: +SKIP")   # needs root or a lab: shown, not run
    assert result.attempted + skipped > 0, f"{name} shows '>>> ' but no example ran"
    assert result.failed == 0, f"{result.failed} of {name}'s examples fail (run python -m doctest -v)"
