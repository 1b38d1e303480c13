"""Properties of the walk over generated rule sets (hypothesis): it always ends (chain
loops are reported, not followed), never raises, and its indexed first-match evaluation
decides exactly as a brute-force linear scan of every rule does."""
import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grammar.iptables_list import new_rule_fields
from kb.facts import FactTable
from kb.netmodel import build_model
from kb.walk import VERDICTS, Packet, WalkError, evaluate, walk

ADDRESSES = ["10.1.0.5", "10.1.0.6", "10.2.0.9", "192.0.2.7", "198.51.100.3"]
CIDRS = ["0.0.0.0/0", "10.1.0.0/16", "10.1.0.5/32", "10.1.0.6/32", "10.2.0.9/32",
         "192.0.2.0/24", "198.51.100.3/32"]
IFACES = [None, "eth0", "eth1", "eth+"]
USER_CHAINS = ["c1", "c2", "c3"]
TARGETS = ["ACCEPT", "DROP", "REJECT", "RETURN", "LOG", "DNAT", "SNAT", "MASQUERADE", *USER_CHAINS]
STATES = frozenset({"NEW"})
_rarely = st.sampled_from([False, False, False, True])

rule_strategy = st.fixed_dictionaries({
    "chain": st.sampled_from(["PREROUTING", *USER_CHAINS]),
    "target": st.sampled_from(TARGETS),
    # Weighted towards "matches anything" so that many rules can decide a packet, and
    # towards exact /32 addresses, which the index files apart from the rest.
    "protocol": st.sampled_from(["all", "all", "all", "tcp", "udp", "icmp", "!tcp"]),
    "source": st.sampled_from(CIDRS), "source_negated": _rarely,
    "destination": st.sampled_from(CIDRS), "destination_negated": _rarely,
    "in": st.sampled_from([None, None, None, *IFACES]), "in_negated": _rarely,
    "dport": st.sampled_from([None, None, None, "22", "1024:65535", "22,80", "!22"]),
    "ctstate": st.sampled_from([None, None, ["NEW"], ["ESTABLISHED", "RELATED"]]),
    "to_address": st.sampled_from([None, "10.1.0.6", "192.0.2.7"]),
})
packet_strategy = st.builds(  # noqa: E731
    lambda src, dst, proto, port, iface: Packet(src, dst, proto, 40000 if proto != "icmp" else None,
                                                port if proto != "icmp" else None,
                                                8 if proto == "icmp" else None), 
    st.sampled_from(ADDRESSES), st.sampled_from(ADDRESSES), st.sampled_from(["tcp", "udp", "icmp"]),
    st.sampled_from([22, 80, 5000]), st.none())


def _table(rules, policy="ACCEPT") -> FactTable:
    table = FactTable()
    prov = {"node": "r1", "command": "iptables-save", "source": "gen", "line": 0, "text": ""}
    table.add({"type": "iptables_chain", "table": "nat", "chain": "PREROUTING", "policy": policy,
               "node": "r1", "prov": dict(prov)})
    for name in USER_CHAINS:
        table.add({"type": "iptables_chain", "table": "nat", "chain": name, "policy": None,
                   "node": "r1", "prov": dict(prov)})
    for line, spec in enumerate(rules, 1):
        fact = new_rule_fields()
        fact.update(spec, table="nat", node="r1", line=line)
        if fact["dport"] is not None and fact["protocol"] not in ("tcp", "udp"):
            fact["protocol"] = "tcp"
        fact["prov"] = dict(prov, line=line, text=f"rule {line}")
        table.add(fact)
    return table


# --- the reference: a plain linear scan, written from iptables' documented semantics ---

def _net_match(cidr, negated, address):
    return (ipaddress.ip_address(address) in ipaddress.ip_network(cidr)) != negated


def _iface_match(wanted, negated, actual):
    if wanted is None:
        return True
    hit = actual is not None and (actual.startswith(wanted[:-1]) if wanted.endswith("+") else actual == wanted)
    return hit != negated


def _port_match(spec, port):
    if spec is None:
        return True
    negated = spec.startswith("!")
    hit = False
    for part in spec.lstrip("!").split(","):
        low, _, high = part.partition(":")
        hit |= port is not None and int(low) <= port <= int(high or low)
    return hit != negated


def _reference_matches(fact, packet, in_iface):
    proto = fact["protocol"]
    if proto != "all" and (packet.proto == proto.lstrip("!")) == proto.startswith("!"):
        return False
    return (_net_match(fact["source"], fact["source_negated"], packet.src)
            and _net_match(fact["destination"], fact["destination_negated"], packet.dst)
            and _iface_match(fact["in"], fact["in_negated"], in_iface)
            and _port_match(fact["dport"], packet.dport)
            and (fact["ctstate"] is None or bool(set(fact["ctstate"]) & STATES)))


def reference(table, packet, in_iface):
    """(target, fact) that decides, or (None, None) for the policy; loops not followed."""
    rules = [f for f in table.of("iptables_rule")]
    chains = {f["chain"] for f in table.of("iptables_chain")}

    def run(chain, active):
        for fact in (f for f in rules if f["chain"] == chain):
            if not _reference_matches(fact, packet, in_iface):
                continue
            target = fact["target"]
            if target in ("ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE"):
                return target, fact
            if target == "RETURN":
                return "RETURN", fact
            if target in chains and target not in active:
                verdict, decider = run(target, active | {target})
                if verdict not in (None, "RETURN"):
                    return verdict, decider
        return None, None

    verdict, decider = run("PREROUTING", {"PREROUTING"})
    return (None, None) if verdict == "RETURN" else (verdict, decider)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_strategy, max_size=14), packet_strategy, st.sampled_from(["eth0", "eth1", "br0"]))
def test_indexed_first_match_equals_the_linear_scan(rules, packet, in_iface):
    table = _table(rules)
    ruleset = build_model(table).nodes["r1"].tables["nat"]
    problems = []
    verdict, rule, path = evaluate(ruleset, "PREROUTING", packet, in_iface, None, STATES,
                                   on_problem=problems.append)
    expected, decider = reference(table, packet, in_iface)
    assert verdict == expected
    assert (rule.fact["fact_id"] if rule else None) == (decider["fact_id"] if decider else None)
    if rule is not None:
        assert path[-1] is rule


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3))
def test_chain_loops_end_and_are_reported(length):
    # c1 -> c2 -> ... -> c1: the kernel would refuse it; the walk must end and say so
    chain_names = USER_CHAINS[:length]
    rules = [{"chain": "PREROUTING", "target": "c1"}]
    for index, name in enumerate(chain_names):
        rules.append({"chain": name, "target": chain_names[(index + 1) % length]})
    specs = []
    for spec in rules:
        full = {"protocol": "all", "source": "0.0.0.0/0", "source_negated": False,
                "destination": "0.0.0.0/0", "destination_negated": False, "in": None,
                "in_negated": False, "dport": None, "ctstate": None, "to_address": None}
        full.update(spec)
        specs.append(full)
    ruleset = build_model(_table(specs)).nodes["r1"].tables["nat"]
    problems = []
    verdict, rule, _ = evaluate(ruleset, "PREROUTING", Packet("10.1.0.5", "10.2.0.9"), "eth0", None,
                                STATES, on_problem=problems.append)
    assert verdict is None and rule is None
    assert any("chain loop" in text for text in problems)


addresses_strategy = st.lists(st.tuples(st.sampled_from(["r1", "r2"]), st.sampled_from(["eth0", "eth1"]),
                                        st.sampled_from(["10.1.0.1/24", "10.1.0.2/24", "192.0.2.1/24",
                                                         "192.0.2.2/24", "10.2.0.1/16"])),
                              min_size=1, max_size=5)
routes_strategy = st.lists(st.tuples(st.sampled_from(["r1", "r2"]),
                                     st.sampled_from(["0.0.0.0/0", "10.1.0.0/24", "192.0.2.0/24", "10.2.0.0/16"]),
                                     st.sampled_from([None, "10.1.0.1", "10.1.0.2", "192.0.2.1", "192.0.2.2"]),
                                     st.sampled_from(["eth0", "eth1"])), max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses_strategy, routes_strategy, st.lists(rule_strategy, max_size=8),
       st.sampled_from(ADDRESSES + ["10.1.0.1", "192.0.2.2", "r1", "r2"]),
       st.sampled_from(ADDRESSES + ["10.1.0.2", "192.0.2.1"]), st.sampled_from(["icmp", "tcp"]))
def test_a_walk_through_any_small_lab_ends_with_a_verdict(addresses, routes, rules, source, destination, proto):
    table = _table(rules)
    prov = {"node": None, "command": "ip", "source": "gen", "line": 0, "text": ""}
    for node, ifname, cidr in addresses:
        address, prefixlen = cidr.split("/")
        table.add({"type": "address", "node": node, "ifname": ifname, "family": "inet",
                   "address": address, "prefixlen": int(prefixlen), "cidr": cidr, "prov": dict(prov, node=node)})
    for node, destination_net, via, dev in routes:
        table.add({"type": "route", "node": node, "destination": destination_net, "via": via, "dev": dev,
                   "src": None, "metric": None, "table": "main", "route_type": "unicast",
                   "prov": dict(prov, node=node)})
    for node in ("r1", "r2"):
        table.add({"type": "sysctl", "node": node, "key": "net.ipv4.ip_forward", "value": "1",
                   "prov": dict(prov, node=node)})
    try:
        result = walk(table, source, destination, proto, 22 if proto == "tcp" else None)
    except WalkError:
        return
    assert result.verdict in VERDICTS
    assert (result.node is None) == (result.verdict == "delivered")
    assert result.steps and len(result.steps) < 2000
