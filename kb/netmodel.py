"""A per-node model of a lab's network, built once from facts, for walking packets.

The walk (kb/walk.py) asks the same questions on every hop: which addresses does this
node hold, which route would it pick, does it forward, which rule of a chain matches
first. This module answers them from the facts of ``ip addr``, ``ip route``/``route
-n``, ``sysctl`` and ``iptables -L``/``iptables-save``, and remembers for every answer
the fact that gave it (so each step of a walk can show its evidence line).

    from kb.netmodel import build_model
    model = build_model(table)                  # table: a kb.facts.FactTable
    node = model.nodes["net01"]
    node.lookup_route(address_int("203.0.113.10"))  # -> Route (longest prefix) or None
    model.owner_of("10.20.0.1")                 # -> ("gw01", "br-mgmt", fact) or None
    chain = node.tables["nat"].chains["PREROUTING"]

Rules are indexed so that a lookup does not scan a 20,000-rule nat table: a rule that
matches one exact destination (nova's per-floating-IP DNAT) is filed under that address,
one that matches one exact source (its per-VM SNAT) under that source, the rest in a
"generic" list; ``Chain.candidates(src, dst)`` merges the three lists by rule position,
so the first rule that matches is the same one a linear scan would find.

Where one node's table was shown more than once (``iptables -L -t nat`` and
``iptables-save``, or ``iptables -L FORWARD`` alone), the most complete listing is used:
the one naming the most chains, ``iptables-save`` before ``iptables -L`` when equal,
the later one when still equal.
"""
from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

from kb.facts import FactTable

BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
ALL_ONES = 0xFFFFFFFF
_ROUTE_TYPES = (None, "unicast", "blackhole", "unreachable", "prohibit")


@lru_cache(maxsize=262144)
def address_int(text) -> int | None:
    """An IPv4 address as an int; None for anything else (IPv6, a host name)."""
    try:
        return int(ipaddress.IPv4Address(text))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


@lru_cache(maxsize=262144)
def network_ints(text) -> tuple[int, int, int] | None:
    """(network, mask, prefix length) of an IPv4 CIDR or address; None otherwise."""
    if not isinstance(text, str):
        return None
    if text in ("default", "0.0.0.0/0"):
        return 0, 0, 0
    try:
        net = ipaddress.IPv4Network(text, strict=False)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        return None
    return int(net.network_address), int(net.netmask), net.prefixlen


def int_address(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def is_global(address: str) -> bool:
    """Whether the Internet routes replies to this address (RFC 1918, shared space,
    documentation and benchmarking ranges all do not)."""
    try:
        return ipaddress.IPv4Address(address).is_global
    except ValueError:
        return False


# --- addresses and routes ------------------------------------------------------------

@dataclass
class Address:
    address: str
    value: int
    ifname: str | None
    prefixlen: int | None
    fact: dict


@dataclass
class Route:
    destination: str
    network: int
    mask: int
    prefixlen: int
    via: str | None
    dev: str | None
    src: str | None
    metric: int
    route_type: str
    fact: dict | None          # None for a connected network inferred from an address

    @property
    def is_default(self) -> bool:
        return self.prefixlen == 0


# --- rules ---------------------------------------------------------------------------

@dataclass
class PortMatch:
    ranges: tuple[tuple[int, int], ...]
    negated: bool

    def matches(self, port: int | None) -> bool:
        if port is None:
            return False
        inside = any(low <= port <= high for low, high in self.ranges)
        return inside != self.negated


def _port_match(text) -> PortMatch | None | bool:
    """None when the rule names no port; False when it names one we cannot read."""
    if text in (None, ""):
        return None
    text = str(text).strip()
    negated = text.startswith("!")
    ranges = []
    for part in text.lstrip("!").strip().split(","):
        low, _, high = part.partition(":")
        try:
            ranges.append((int(low or 0), int(high or (low if not _ else 65535))))
        except ValueError:
            return False
    return PortMatch(tuple(ranges), negated)


@dataclass
class AddressMatch:
    """One side (source or destination) of a rule: a CIDR, or a host name iptables
    printed instead of an address (resolved to a node's addresses when it names one)."""
    network: int = 0
    mask: int = 0
    negated: bool = False
    host_values: frozenset | None = None   # a host name resolved to addresses
    unresolved: str | None = None          # a host name nobody in the evidence answers to

    @property
    def any(self) -> bool:
        return self.mask == 0 and self.host_values is None and self.unresolved is None \
            and not self.negated

    @property
    def exact(self) -> int | None:
        """The one address this matches, if it is a plain /32."""
        if self.mask == ALL_ONES and not self.negated and self.host_values is None:
            return self.network
        return None

    def matches(self, value: int | None) -> bool:
        if self.unresolved is not None:
            return False
        if value is None:
            return self.any
        if self.host_values is not None:
            inside = value in self.host_values
        else:
            inside = (value & self.mask) == self.network
        return inside != self.negated


@dataclass
class Rule:
    position: int
    fact: dict
    target: str
    protocol: str | None           # None: any protocol
    protocol_negated: bool
    in_iface: str | None
    in_negated: bool
    out_iface: str | None
    out_negated: bool
    source: AddressMatch
    destination: AddressMatch
    sport: PortMatch | None | bool
    dport: PortMatch | None | bool
    states: frozenset | None
    states_negated: bool
    icmp_type: str | None
    unknown_match: str             # match text nobody could read ("" when none)

    @property
    def chain(self) -> str:
        return self.fact.get("chain")

    def mismatch(self, packet, in_iface, out_iface, states) -> str | None:
        """Why this rule does not match the packet (None when it matches). The reason is
        a short phrase the walk can show: "it leaves by ens3, rule wants ens4"."""
        if self.protocol is not None and (packet.proto == self.protocol) == self.protocol_negated:
            return f"protocol is {packet.proto}, rule wants {'!' if self.protocol_negated else ''}{self.protocol}"
        if not self.source.matches(packet.src_value):
            return f"source {packet.src} is not {self.fact.get('source')}" \
                if self.source.unresolved is None else \
                f"source {self.fact.get('source')} is a name no node in the evidence has"
        if not self.destination.matches(packet.dst_value):
            return f"destination {packet.dst} is not {self.fact.get('destination')}" \
                if self.destination.unresolved is None else \
                f"destination {self.fact.get('destination')} is a name no node in the evidence has"
        if self.in_iface is not None and _iface_matches(self.in_iface, in_iface) == self.in_negated:
            return (f"it arrived by {in_iface or 'no interface (sent by the node itself)'}, "
                    f"rule wants {'!' if self.in_negated else ''}{self.in_iface}")
        if self.out_iface is not None and _iface_matches(self.out_iface, out_iface) == self.out_negated:
            return (f"it leaves by {out_iface or '(not yet routed)'}, "
                    f"rule wants {'!' if self.out_negated else ''}{self.out_iface}")
        if self.sport is not None and (self.sport is False or not self.sport.matches(packet.sport)):
            return f"source port {packet.sport} is not {self.fact.get('sport')}"
        if self.dport is not None and (self.dport is False or not self.dport.matches(packet.dport)):
            return f"destination port {packet.dport} is not {self.fact.get('dport')}"
        if self.states is not None and bool(self.states & states) == self.states_negated:
            return (f"connection state is {','.join(sorted(states))}, rule wants "
                    f"{'!' if self.states_negated else ''}{','.join(sorted(self.states))}")
        if self.icmp_type is not None and not _icmp_matches(self.icmp_type, packet):
            return f"ICMP type {packet.icmp_type} is not {self.icmp_type}"
        return None


def _iface_matches(wanted: str, actual: str | None) -> bool:
    if actual is None:
        return False
    if wanted.endswith("+"):
        return actual.startswith(wanted[:-1])
    return wanted == actual


def _icmp_matches(wanted: str, packet) -> bool:
    if packet.proto != "icmp":
        return False
    negated = wanted.startswith("!")
    kind = wanted.lstrip("!").strip()
    if kind == "any":
        inside = True
    else:
        inside = kind.split("/")[0] == str(packet.icmp_type)
    return inside != negated


@dataclass
class Chain:
    name: str
    policy: str | None = None
    policy_fact: dict | None = None
    references: int | None = None
    rules: list[Rule] = field(default_factory=list)
    by_destination: dict[int, list[int]] = field(default_factory=dict)
    by_source: dict[int, list[int]] = field(default_factory=dict)
    generic: list[int] = field(default_factory=list)

    def add(self, rule: Rule) -> None:
        index = len(self.rules)
        self.rules.append(rule)
        if rule.destination.exact is not None:
            self.by_destination.setdefault(rule.destination.exact, []).append(index)
        elif rule.source.exact is not None:
            self.by_source.setdefault(rule.source.exact, []).append(index)
        else:
            self.generic.append(index)

    def candidates(self, src: int | None, dst: int | None):
        """The rules that could match a packet from src to dst, in chain order. Every
        rule left out names another exact source or destination, so it cannot match."""
        by_dst = self.by_destination.get(dst, ()) if dst is not None else ()
        by_src = self.by_source.get(src, ()) if src is not None else ()
        if not by_dst and not by_src:
            return (self.rules[i] for i in self.generic)
        return (self.rules[i] for i in heapq.merge(self.generic, by_dst, by_src))


@dataclass
class Ruleset:
    """One table of one node, from one listing."""
    table: str
    command: str
    chains: dict[str, Chain] = field(default_factory=dict)


def orphan_chains(ruleset: Ruleset) -> list[str]:
    """User chains the listing says are referenced (``(1 references)``) but that no shown
    rule jumps to: the listing was cut, or a jump was left out of it."""
    jumped = {rule.target for chain in ruleset.chains.values() for rule in chain.rules}
    builtin = set(BUILTIN_CHAINS.get(ruleset.table, ()))
    return [name for name, chain in ruleset.chains.items()
            if name not in builtin and name not in jumped and (chain.references or 0) > 0]


@dataclass
class NodeModel:
    name: str
    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    routes_shown: bool = False
    ip_forward: bool | None = None
    ip_forward_fact: dict | None = None
    tables: dict[str, Ruleset] = field(default_factory=dict)

    def holds(self, value: int | None) -> Address | None:
        if value is None:
            return None
        for address in self.addresses:
            if address.value == value:
                return address
        if value >> 24 == 127 and self.addresses:
            return Address(int_address(value), value, "lo", 8, {})
        return None

    def lookup_route(self, value: int | None) -> Route | None:
        """Longest prefix, then lowest metric, as the kernel's main table does."""
        if value is None:
            return None
        best = None
        for route in self.routes:
            if (value & route.mask) != route.network:
                continue
            key = (route.prefixlen, -route.metric)
            if best is None or key > best[0]:
                best = (key, route)
        return best[1] if best else None

    def out_device(self, route: Route) -> str | None:
        """A route printed without ``dev`` leaves where its gateway is reached."""
        if route.dev or not route.via:
            return route.dev
        onward = self.lookup_route(address_int(route.via))
        return onward.dev if onward and onward is not route else None

    def pick_source(self, dev: str | None, toward: str | None, route: Route | None = None) -> str | None:
        """The source address the kernel would give a packet it sends: the route's
        ``src``, else an address on the out interface in the next hop's network, else
        the first address on that interface, else any address the node holds."""
        if route is not None and route.src:
            return route.src
        toward_value = address_int(toward)
        on_dev = [a for a in self.addresses if a.ifname == dev and a.value >> 24 != 127]
        for address in on_dev:
            if toward_value is not None and address.prefixlen is not None:
                mask = (ALL_ONES << (32 - address.prefixlen)) & ALL_ONES
                if (address.value & mask) == (toward_value & mask) and address.prefixlen < 32:
                    return address.address
        wider = [a for a in on_dev if a.prefixlen != 32] or on_dev
        if wider:
            return wider[0].address
        others = [a for a in self.addresses if a.value >> 24 != 127]
        return others[0].address if others else None


@dataclass
class NetModel:
    nodes: dict[str, NodeModel]
    _owners: dict[int, list[tuple[str, str | None, dict]]] = field(default_factory=dict)

    def owners_of(self, address: str | int | None) -> list[tuple[str, str | None, dict]]:
        value = address if isinstance(address, int) else address_int(address)
        if value is None or value >> 24 == 127:
            return []
        return self._owners.get(value, [])

    def owner_of(self, address, besides: str | None = None):
        """(node, interface, fact) of a node other than ``besides`` holding the address."""
        for owner in self.owners_of(address):
            if owner[0] != besides:
                return owner
        return None

    def addresses_of_node(self, name: str) -> frozenset | None:
        node = self.nodes.get(name)
        if node is None or not node.addresses:
            return None
        return frozenset(a.value for a in node.addresses)


# --- building ------------------------------------------------------------------------

def build_model(table: FactTable) -> NetModel:
    nodes: dict[str, NodeModel] = {}

    def node(name) -> NodeModel:
        if name not in nodes:
            nodes[name] = NodeModel(name)
        return nodes[name]

    seen_addresses = set()
    for fact in table.of("address"):
        if fact.get("family") not in (None, "inet") or fact.get("node") is None:
            continue
        value = address_int(fact.get("address"))
        if value is None or (fact["node"], value) in seen_addresses:
            continue
        seen_addresses.add((fact["node"], value))
        node(fact["node"]).addresses.append(
            Address(fact["address"], value, fact.get("ifname"), fact.get("prefixlen"), fact))
    # A route's src is an address the node holds (the kernel allows no other).
    for fact in table.of("route"):
        value = address_int(fact.get("src"))
        if fact.get("node") is not None and value is not None and (fact["node"], value) not in seen_addresses:
            seen_addresses.add((fact["node"], value))
            node(fact["node"]).addresses.append(Address(fact["src"], value, fact.get("dev"), None, fact))

    for fact in table.of("route"):
        if fact.get("node") is None or fact.get("table") not in (None, "main", "254") \
                or fact.get("route_type") not in _ROUTE_TYPES:
            continue
        ints = network_ints(fact.get("destination"))
        if ints is None:
            continue
        model = node(fact["node"])
        model.routes_shown = True
        model.routes.append(Route(fact["destination"], ints[0], ints[1], ints[2], fact.get("via"),
                                  fact.get("dev"), fact.get("src"), int(fact.get("metric") or 0),
                                  fact.get("route_type") or "unicast", fact))
    for model in nodes.values():
        if not model.routes_shown:
            # No routing table in the evidence: the connected networks of its addresses
            # are the only routes it surely has.
            for address in model.addresses:
                if address.prefixlen is None or address.value >> 24 == 127:
                    continue
                cidr = f"{address.address}/{address.prefixlen}"
                ints = network_ints(cidr)
                model.routes.append(Route(str(ipaddress.IPv4Network(cidr, strict=False)), ints[0],
                                          ints[1], ints[2], None, address.ifname, address.address,
                                          0, "unicast", None))

    for fact in table.of("sysctl"):
        if fact.get("key") in ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding") \
                and fact.get("node") is not None:
            model = node(fact["node"])
            model.ip_forward = str(fact.get("value")).strip() != "0"
            model.ip_forward_fact = fact

    _add_rulesets(table, node)
    owners: dict[int, list] = {}
    for model in nodes.values():
        for address in model.addresses:
            owners.setdefault(address.value, []).append((model.name, address.ifname, address.fact))
    net = NetModel(nodes, owners)
    for model in nodes.values():
        for ruleset in model.tables.values():
            for chain in ruleset.chains.values():
                for rule in chain.rules:
                    for side in (rule.source, rule.destination):
                        if side.unresolved is not None:
                            values = net.addresses_of_node(side.unresolved)
                            if values is not None:
                                side.host_values, side.unresolved = values, None
    return net


def _add_rulesets(table: FactTable, node) -> None:
    listings: dict[tuple, dict[tuple, list[dict]]] = {}
    for fact in table.of("iptables_chain") + table.of("iptables_rule"):
        if fact.get("node") is None:
            continue
        prov = fact.get("prov") or {}
        key = (fact["node"], fact.get("table") or "filter")
        listings.setdefault(key, {}).setdefault((prov.get("source"), prov.get("command")), []).append(fact)
    for (name, table_name), groups in listings.items():
        def completeness(item):
            (source, command), facts = item
            chains = {f.get("chain") for f in facts}
            last_id = max(f.get("fact_id", 0) for f in facts)
            return len(chains), str(command or "").startswith("iptables-save"), last_id
        (source, command), facts = max(groups.items(), key=completeness)
        facts.sort(key=lambda f: f.get("fact_id", 0))
        ruleset = Ruleset(table_name, str(command))
        for fact in facts:
            chain = ruleset.chains.setdefault(fact["chain"], Chain(fact["chain"]))
            if fact["type"] == "iptables_chain":
                if fact.get("policy"):
                    chain.policy, chain.policy_fact = fact["policy"], fact
                chain.references = fact.get("references")
            else:
                chain.add(compile_rule(fact, len(chain.rules)))
        node(name).tables[table_name] = ruleset


def compile_rule(fact: dict, position: int = 0) -> Rule:
    protocol = str(fact.get("protocol") or "all")
    negated = protocol.startswith("!")
    protocol = protocol.lstrip("!").strip()
    states = fact.get("ctstate") or fact.get("state")
    if isinstance(states, str):
        states = states.split(",")
    return Rule(
        position=position, fact=fact, target=str(fact.get("target") or ""),
        protocol=None if protocol in ("all", "0", "") else protocol, protocol_negated=negated,
        in_iface=fact.get("in"), in_negated=bool(fact.get("in_negated")),
        out_iface=fact.get("out"), out_negated=bool(fact.get("out_negated")),
        source=_address_match(fact.get("source"), fact.get("source_negated")),
        destination=_address_match(fact.get("destination"), fact.get("destination_negated")),
        sport=_port_match(fact.get("sport")), dport=_port_match(fact.get("dport")),
        states=frozenset(s.strip().upper() for s in states) if states else None,
        states_negated=bool(fact.get("ctstate_negated")) if fact.get("ctstate") else False,
        icmp_type=fact.get("icmp_type"),
        unknown_match=str(fact.get("extra") or ""),
    )


def _address_match(text, negated) -> AddressMatch:
    if text in (None, "", "0.0.0.0/0"):
        return AddressMatch(negated=bool(negated)) if negated else AddressMatch()
    ints = network_ints(text)
    if ints is None:
        host = str(text).split("/")[0]
        return AddressMatch(negated=bool(negated), unresolved=host)
    return AddressMatch(ints[0], ints[1], bool(negated))
