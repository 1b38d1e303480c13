"""The diagnosis and the walk cannot disagree: over generated labs (hypothesis) every
computed fact a rule relies on (kb/queries.py: the FORWARD verdict, the source NAT at
POSTROUTING, the route chosen) is what the packet walk (kb/walk.py) did at that node.

The lab: a network node n1 holding a floating IP, its gateway g1 (FORWARD policy and
rules, a MASQUERADE rule or none, a route back to the floating range or none, forwarding
on or off by either sysctl key), and an outside host o1, all drawn at random."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grammar.iptables_list import new_rule_fields
from kb.derivations import derive_all
from kb.facts import FactTable
from kb.queries import Answerer
from kb.walk import walk

FLOATING = "198.51.100.77"
OUTSIDE = "203.0.113.80"
GATEWAY_LINK, GATEWAY_UPLINK = "br-mgmt", "wan0"

forward_rule = st.fixed_dictionaries({
    "protocol": st.sampled_from(["all", "icmp", "tcp", "!icmp"]),
    "source": st.sampled_from(["0.0.0.0/0", "198.51.100.64/26", "198.51.100.77/32", "10.9.0.0/16"]),
    "in": st.sampled_from([None, GATEWAY_LINK, GATEWAY_UPLINK, "br+"]),
    "out": st.sampled_from([None, GATEWAY_LINK, GATEWAY_UPLINK]),
    "ctstate": st.sampled_from([None, ["NEW"], ["ESTABLISHED", "RELATED"]]),
    "target": st.sampled_from(["ACCEPT", "DROP", "REJECT", "LOG"]),
})
lab = st.fixed_dictionaries({
    "policy": st.sampled_from(["ACCEPT", "DROP"]),
    "forward_rules": st.lists(forward_rule, max_size=4),
    "masquerade_out": st.sampled_from([None, GATEWAY_UPLINK, GATEWAY_LINK]),
    "masquerade_source": st.sampled_from(["198.51.100.64/26", "10.9.0.0/16", "0.0.0.0/0"]),
    "return_route": st.booleans(),
    "forwarding": st.sampled_from([("net.ipv4.ip_forward", "1"), ("net.ipv4.ip_forward", "0"),
                                   ("net.ipv4.conf.all.forwarding", "0"),
                                   ("net.ipv4.conf.all.forwarding", "1")]),
    "outside_routes_back": st.booleans(),
})


def _build(spec) -> FactTable:
    table = FactTable()
    line = iter(range(1, 10_000))

    def prov(node, command):
        return {"node": node, "command": command, "source": f"gen/{node}", "line": next(line), "text": ""}

    def address(node, ifname, cidr):
        addr, prefixlen = cidr.split("/")
        table.add({"type": "address", "node": node, "ifname": ifname, "family": "inet",
                   "address": addr, "prefixlen": int(prefixlen), "prov": prov(node, "ip addr")})

    def route(node, destination, dev, via=None):
        table.add({"type": "route", "node": node, "destination": destination, "via": via, "dev": dev,
                   "src": None, "metric": None, "table": "main", "route_type": "unicast",
                   "prov": prov(node, "ip route")})

    def chain(node, table_name, name, policy):
        table.add({"type": "iptables_chain", "node": node, "table": table_name, "chain": name,
                   "policy": policy, "references": None, "prov": prov(node, "iptables-save")})

    def rule(node, table_name, name, **fields):
        fact = new_rule_fields()
        fact.update(fields, node=node, table=table_name, chain=name, type="iptables_rule")
        fact["prov"] = prov(node, "iptables-save")
        table.add(fact)

    address("n1", "ens3", "10.20.0.11/24")
    address("n1", "ens3", f"{FLOATING}/32")
    route("n1", "default", "ens3", "10.20.0.1")
    route("n1", "10.20.0.0/24", "ens3")
    address("g1", GATEWAY_LINK, "10.20.0.1/24")
    address("g1", GATEWAY_UPLINK, "192.0.2.2/24")
    route("g1", "default", GATEWAY_UPLINK, "192.0.2.1")
    route("g1", "10.20.0.0/24", GATEWAY_LINK)
    route("g1", "192.0.2.0/24", GATEWAY_UPLINK)
    if spec["return_route"]:
        route("g1", "198.51.100.64/26", GATEWAY_LINK)
    key, value = spec["forwarding"]
    table.add({"type": "sysctl", "node": "g1", "key": key, "value": value, "prov": prov("g1", "sysctl")})
    chain("g1", "filter", "FORWARD", spec["policy"])
    for fields in spec["forward_rules"]:
        rule("g1", "filter", "FORWARD", **fields)
    chain("g1", "nat", "POSTROUTING", "ACCEPT")
    if spec["masquerade_out"]:
        rule("g1", "nat", "POSTROUTING", target="MASQUERADE", source=spec["masquerade_source"],
             out=spec["masquerade_out"])
    address("o1", "ens3", "192.0.2.1/24")
    address("o1", "lo", f"{OUTSIDE}/32")
    route("o1", "192.0.2.0/24", "ens3")
    if spec["outside_routes_back"]:
        route("o1", "default", "ens3", "192.0.2.2")
    for node in ("n1", "o1"):
        table.add({"type": "sysctl", "node": node, "key": "net.ipv4.ip_forward", "value": "1",
                   "prov": prov(node, "sysctl")})
    # the outside address the VM pinged, as tcpdump on n1 would show it
    table.add({"type": "packet", "node": "n1", "iface": "ens3", "src": FLOATING, "dst": OUTSIDE,
               "protocol": "icmp", "icmp_type": "echo request", "prov": prov("n1", "tcpdump")})
    derive_all(table)
    return table


def _steps(result, node, stage, direction="packet"):
    return [s for s in result.steps if s.node == node and s.stage == stage and s.direction == direction]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lab)
def test_what_the_rules_are_told_is_what_the_walk_did(spec):
    table = _build(spec)
    answers = Answerer(table)
    result = walk(table, FLOATING, OUTSIDE, "icmp")
    forwarding_on = spec["forwarding"][1] == "1"

    # forwarding, from either sysctl key
    (ip_forward,) = [f for f in table.of("ip_forward") if f["node"] == "g1"]
    assert ip_forward["enabled"] == forwarding_on
    if not forwarding_on:
        assert (result.verdict, result.node) == ("dropped", "g1")
        assert _steps(result, "g1", "ip_forward")
        return

    # the FORWARD verdict a rule reads is the one the walk met at g1
    (verdict,) = answers.answer("forward_verdict", {"node": "g1", "source": FLOATING, "proto": "icmp",
                                                    "in": GATEWAY_LINK})
    dropped_in_forward = result.verdict == "dropped" and result.node == "g1" \
        and "filter FORWARD" in result.summary
    assert verdict["accepted"] == (not dropped_in_forward), result.summary
    if not verdict["accepted"]:
        return

    # the source NAT a rule reads is the translation the walk made at g1
    (nat,) = answers.answer("source_nat", {"node": "g1", "source": FLOATING, "out": GATEWAY_UPLINK})
    rewritten = [s for s in _steps(result, "g1", "nat POSTROUTING") if "rewrites the source" in s.text]
    assert nat["translated"] == bool(rewritten), result.summary

    # the route a rule reads for the reply is the one the walk's reply took at g1
    (back,) = answers.answer("route_choice", {"node": "g1", "destination": FLOATING})
    assert back["dev"] == (GATEWAY_LINK if spec["return_route"] else GATEWAY_UPLINK)
    reply_hops = [s for s in result.steps if s.direction == "reply" and s.node == "g1"
                  and s.stage == "next hop" and s.packet.dst == FLOATING]
    for hop in reply_hops:
        assert f"out of {back['dev']} " in hop.text
    if result.verdict == "delivered":
        assert back["dev"] == GATEWAY_LINK and (nat["translated"] or spec["outside_routes_back"])
