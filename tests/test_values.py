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


_FIELD_VALUES = st.one_of(st.none(), st.just(""), st.booleans(), st.integers(-5, 70000), _VALUES,
                          st.sampled_from(["anywhere", "any", "default", "fe80::1", "22,80", "!22",
                                           "1024:65535", "10.0.0.7-10.0.0.9", "0.0.0.0/0"]))
_FIELDS = ("type", "address", "via", "src", "dst", "broadcast", "peer", "to_address", "cidr",
           "destination", "source", "dport", "sport", "to_port", "protocol", "prefixlen", "family")


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_FIELDS), unique=True, min_size=1).flatmap(
    lambda names: st.tuples(st.just(tuple(names)), st.lists(
        st.fixed_dictionaries({name: _FIELD_VALUES if name not in ("protocol", "family") else
                               st.sampled_from(["icmp", "ICMP", "tcp", "inet6", "inet", None])
                               for name in names}), min_size=1, max_size=4))))
def test_a_checker_compiled_for_some_fields_says_what_invalid_value_says(case):
    names, records = case
    check = values.checker(names)
    for record in records:
        record = {name: record[name] for name in names}       # in the names' order
        assert check(record) == values.invalid_value(record)


def test_a_listings_rules_checked_by_their_compiled_checker_are_judged_alike():
    from grammar import iptables_list
    rule = dict.fromkeys(iptables_list.RULE_KEYS)
    check = values.checker(iptables_list.RULE_KEYS)
    for changes in ({"source": "10.0.0.0/33"}, {"to_address": "192.0.2.300"}, {"dport": "70000"},
                    {"dport": "70000", "protocol": "icmp"}, {"destination": "10.0.0.0/8"}):
        record = dict(rule, **changes)
        assert check(record) == values.invalid_value(record)
    assert check(dict(rule, source="10.0.0.0/33")) and check(dict(rule, source="10.0.0.0/8")) is None
