"""grammar/compact.py: a fact made compact is the same dict, field for field."""
import copy
import json
import pickle

from grammar.compact import COMPILE_AT, compact
from grammar.transcript import read_transcript


RULE = ("root@gw01:~# iptables -t nat -L -n -v\n"
        "Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)\n"
        " pkts bytes target     prot opt in     out     source               destination\n"
        "    0     0 MASQUERADE  all  --  *      wan0    10.0.0.0/24          0.0.0.0/0\n")


def test_a_compact_fact_equals_its_fields_in_order():
    fields = {"type": "route", "destination": "0.0.0.0/0", "via": "192.0.2.1", "in": None,
              "node": "gw", "prov": {"line": 3}}
    source = dict(fields)
    assert compact(source) is source          # names seen once: not worth compiling yet
    for _ in range(COMPILE_AT):
        source = dict(fields)
        fact = compact(source)
    assert fact is not source                 # made anew, its names shared
    assert type(fact) is dict
    assert fact == fields and list(fact) == list(fields)
    fact["fact_id"] = 12                       # what kb/facts.py adds
    assert list(fact)[-1] == "fact_id" and fact["fact_id"] == 12
    assert json.loads(json.dumps(fact)) == fact
    assert pickle.loads(pickle.dumps(fact)) == fact == copy.deepcopy(fact) == dict(fact)
    del fact["via"]
    assert "via" not in fact and fact.get("via") is None


def test_fields_that_cannot_be_shared_are_left_as_they_are():
    many = {f"field{number}": number for number in range(40)}
    assert compact(many) is many
    odd = {"type": "x", 3: "a number for a name", "__class__": "not an attribute"}
    assert compact(odd) is odd


def test_facts_read_from_a_transcript_are_plain_dicts_with_their_provenance():
    evidence = read_transcript(RULE, "gw.txt")
    rules = [f for f in evidence.facts if f["type"] == "iptables_rule"]
    assert [(r["target"], r["out"], r["source"]) for r in rules] == [("MASQUERADE", "wan0", "10.0.0.0/24")]
    assert all(type(f) is dict and type(f["prov"]) is dict for f in evidence.facts)
    assert rules[0]["prov"] == {"node": "gw01", "command": "iptables -t nat -L -n -v",
                                "source": "gw.txt", "line": 4,
                                "text": "0     0 MASQUERADE  all  --  *      wan0    10.0.0.0/24          0.0.0.0/0"}
    assert "path" not in rules[0]          # output of no file
    assert json.loads(json.dumps(evidence.facts)) == evidence.facts
