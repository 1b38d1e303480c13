"""grammar/values.py: the quick acceptance of addresses and networks never lets through
a value the full check refuses, and a value seen again gets the same answer."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grammar import values

_PIECES = st.sampled_from(["0", "1", "00", "01", "10", "25", "255", "256", "300", "999", "1000",
                           ".", "/", "32", "33", "8", "٣", "a", " ", "\x00", ":", "-"])
_VALUES = st.lists(_PIECES, min_size=1, max_size=9).map("".join)


@settings(max_examples=2000, deadline=None)
@given(_VALUES)
def test_a_value_accepted_quickly_is_one_the_full_check_accepts(value):
    if values._surely_address(value):
        assert values._address_problem(value) is None
    if values._surely_network(value):
        assert values._network_value_problem(value) is None


def test_the_same_verdicts_on_a_value_seen_again():
    records = [{"type": "rule", "source": source, "to_address": to}
               for source, to in [("10.0.0.0/8", "192.0.2.1"), ("10.0.0.0/33", "192.0.2.1"),
                                  ("10.0.0.0/8", "192.0.2.300"), ("01.0.0.0/8", "192.0.2.1")]]
    first = [values.invalid_value(record) for record in records]
    assert first == [values.invalid_value(record) for record in records]
    assert first[0] is None and all(first[1:])
    assert "'10.0.0.0/33'" in first[1] and "'192.0.2.300'" in first[2]
