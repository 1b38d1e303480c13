"""A chain listed again makes the earlier listing of it stale (kb/timeline.py): judged
run by run of a chain where it was listed once, fact by fact otherwise; both must say
what the definition says, fact by fact."""
import random

import pytest

from kb import timeline
from kb.timeline import stale_facts


def _fact(kind, node, table, chain, source, line):
    fact = {"type": kind, "node": node, "table": table, "chain": chain}
    if source is not None:
        fact["prov"] = {"node": node, "command": "iptables -L -t " + str(table), "source": source,
                        "line": line, "text": "..."}
    return fact


def _by_definition(facts, source_order):
    """Stale: a header of the same node, table and chain, the last of its source, not the
    fact itself, printed after it (later in the same source, or in a later source)."""
    position = {source: number for number, source in enumerate(source_order)}
    last: dict = {}
    for fact in facts:
        if fact["type"] == "iptables_chain":
            prov = fact.get("prov") or {}
            key = (fact["node"], fact["table"], fact["chain"], prov.get("source"))
            if key not in last or (prov.get("line") or 0) >= (last[key]["prov"].get("line") or 0):
                last[key] = fact

    def after(header, fact):
        h, f = header["prov"], fact.get("prov") or {}
        if h["source"] == f.get("source"):
            return (h["line"] or 0) > (f.get("line") or 0)
        return h["source"] in position and f.get("source") in position \
            and position[h["source"]] > position[f.get("source")]

    return {index for index, fact in enumerate(facts)
            if fact["type"] in ("iptables_chain", "iptables_rule")
            and any(header is not fact and (header["node"], header["table"], header["chain"])
                   == (fact["node"], fact["table"], fact["chain"]) and after(header, fact)
                   for header in last.values())}


def _listings(seed):
    """Listings of a few chains on two nodes, in two files, some chains listed twice, a
    rule now and then without its header or its provenance, other facts between."""
    rng = random.Random(seed)
    facts, lines = [], {"a.txt": 0, "b.txt": 0}
    for _ in range(rng.randint(1, 8)):
        source = rng.choice(["a.txt", "b.txt"])
        node, table = rng.choice(["net01", "gw01"]), rng.choice(["nat", "filter"])
        for chain in rng.sample(["PREROUTING", "nova-network-snat", "FORWARD"], rng.randint(1, 3)):
            lines[source] += 1
            if rng.random() < 0.9:
                facts.append(_fact("iptables_chain", node, table, chain, source, lines[source]))
            for _ in range(rng.randint(0, 4)):
                lines[source] += rng.choice([1, 1, 1, -3])     # now and then printed out of order
                facts.append(_fact("iptables_rule", node, table, chain,
                                   None if rng.random() < 0.05 else source, lines[source]))
            if rng.random() < 0.2:
                facts.append({"type": "route", "node": node, "prov": {"source": source, "line": 0}})
    return facts


@pytest.mark.parametrize("judged_whole_from", [1, timeline._RUN_JUDGED_WHOLE])
@pytest.mark.parametrize("seed", range(300))
def test_what_a_later_listing_makes_stale_is_what_the_definition_says(seed, judged_whole_from, monkeypatch):
    # runs of any length judged whole where they can be, and only the long ones
    monkeypatch.setattr(timeline, "_RUN_JUDGED_WHOLE", judged_whole_from)
    facts = _listings(seed)
    for order in ((), ("a.txt", "b.txt"), ("b.txt", "a.txt")):
        assert set(stale_facts(facts, order)) == _by_definition(facts, order), order


def test_a_nat_table_listed_twice_leaves_only_the_second_listing():
    first = [_fact("iptables_chain", "net01", "nat", "POSTROUTING", "t.txt", 1)] + [
        _fact("iptables_rule", "net01", "nat", "POSTROUTING", "t.txt", line) for line in (2, 3)]
    second = [_fact("iptables_chain", "net01", "nat", "POSTROUTING", "t.txt", 10),
              _fact("iptables_rule", "net01", "nat", "POSTROUTING", "t.txt", 11)]
    stale = stale_facts(first + second)
    assert sorted(stale) == [0, 1, 2]
    assert {change["prov"]["line"] for change in stale.values()} == {10}
    # listed once, in one file: nothing is stale; in two files of no known order neither
    assert stale_facts(second) == {}
    moved = [dict(fact, prov=dict(fact["prov"], source="u.txt")) for fact in second]
    assert stale_facts(first + moved) == {}
    assert sorted(stale_facts(first + moved, ("t.txt", "u.txt"))) == [0, 1, 2]
