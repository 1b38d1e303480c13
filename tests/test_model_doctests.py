"""The worked examples in the network model's docstrings are run, so they cannot rot."""
import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["kb.addresses", "kb.services", "grammar.iptables_list"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
