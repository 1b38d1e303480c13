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

Where one node's table was shown more than once (``iptables -L -t nat`` and
``iptables-save``, or ``iptables -L FORWARD`` alone), the most complete listing is used:
the one naming the most chains, ``iptables-save`` before ``iptables -L`` when equal,
the later one when still equal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat

from kb.addresses import ALL_ONES, address_int, int_address, network_ints
from kb.facts import FactTable
from kb.netfilter import Chain, Ruleset

_ROUTE_TYPES = (None, "unicast", "blackhole", "unreachable", "prohibit")


# --- addresses and routes ------------------------------------------------------------

@dataclass
class Address:
    """An address a node holds, on one of its interfaces."""
    address: str
    value: int
    ifname: str | None
    prefixlen: int | None
    fact: dict


@dataclass
class Route:
    """One route of a node's routing table, its destination as network and mask."""
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


class Tables(dict):
    """A node's iptables tables by name, each built from its listing when first asked
    for: a diagnosis that asks only for routes never compiles a 20,000-rule nat table."""

    def __init__(self):
        super().__init__()
        self._pending: dict = {}
        self._builders: dict = {}  # of the tables built, to build again once forgotten
        self.resolve = None        # host name -> address values, for rules that print names
        # what sorts the evidence's rules into listings, on the first question about a
        # table (one for every node: a diagnosis that asks only for routes never reads
        # the rules of a 20,000-rule nat table at all)
        self.listings = None

    def defer(self, name: str, build) -> None:
        self._pending[name] = build

    def _listed(self) -> None:
        if self.listings is not None:
            self.listings()

    def _built(self, name) -> None:
        self._listed()
        build = self._pending.pop(name, None)
        if build is not None:
            ruleset = build()
            for chain in ruleset.chains.values():
                chain.resolve = self.resolve
            dict.__setitem__(self, name, ruleset)
            self._builders[name] = build

    def forget(self) -> None:
        """Let the tables built from listings go, to be built again when asked for: a
        diagnosis done with the nodes of one part of the evidence keeps no compiled
        rules of theirs while it reasons about the next (kb/diagnose.py)."""
        for name, build in self._builders.items():
            dict.pop(self, name, None)
            self._pending[name] = build
        self._builders.clear()

    def get(self, name, default=None):
        self._built(name)
        return super().get(name, default)

    def __getitem__(self, name):
        self._built(name)
        return super().__getitem__(name)

    def __contains__(self, name) -> bool:
        self._listed()
        return name in self._pending or super().__contains__(name)

    def _all(self) -> None:
        self._listed()
        for name in list(self._pending):
            self._built(name)

    def values(self):
        self._all()
        return super().values()

    def items(self):
        self._all()
        return super().items()

    def __iter__(self):
        self._all()
        return super().__iter__()


@dataclass
class NodeModel:
    """What the evidence shows of one node's addresses, routes and forwarding."""
    name: str
    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    routes_shown: bool = False
    ip_forward: bool | None = None
    ip_forward_fact: dict | None = None
    tables: "Tables" = field(default_factory=lambda: Tables())

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
    """Every node's model, and which node holds which address."""
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

    def forget_tables(self, names) -> None:
        """The compiled tables of these nodes let go (``Tables.forget``)."""
        for name in names:
            node = self.nodes.get(name)
            if node is not None:
                node.tables.forget()

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
                ints = network_ints(f"{address.address}/{address.prefixlen}")
                if ints is None:
                    continue
                model.routes.append(Route(f"{int_address(ints[0])}/{ints[2]}", ints[0],
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
    # iptables prints a host name for an address it could resolve: a node's name stands
    # for that node's addresses, looked up when the rule is first compiled
    for model in nodes.values():
        model.tables.resolve = net.addresses_of_node
    return net


def _add_rulesets(table: FactTable, node) -> None:
    """Every node with iptables facts gets its Tables, whose listings are sorted out
    when some node's tables are first asked about."""
    chains, rules = table.of("iptables_chain"), table.of("iptables_rule")
    models = [node(name) for name in dict.fromkeys(map(dict.get, chains + rules, repeat("node")))
              if name is not None]

    def listings():
        for model in models:
            model.tables.listings = None
        _sort_listings(chains, rules, node)
    for model in models:
        model.tables.listings = listings


def _sort_listings(chains: list[dict], rules: list[dict], node) -> None:
    # One pass over every rule (20,000 in a large nat table), grouped by node, table and
    # listing at once; then the listings of each node's table, in the order first seen.
    by_listing: dict[tuple, list[dict]] = {}
    for fact in chains + rules:
        name = fact.get("node")
        if name is None:
            continue
        prov = fact.get("prov") or _NO_PROVENANCE
        key = (name, fact.get("table") or "filter", prov.get("source"), prov.get("command"))
        group = by_listing.get(key)
        if group is None:
            by_listing[key] = [fact]
        else:
            group.append(fact)
    listings: dict[tuple, dict[tuple, list[dict]]] = {}
    for (name, table_name, source, command), facts in by_listing.items():
        listings.setdefault((name, table_name), {})[source, command] = facts
    for (name, table_name), groups in listings.items():
        node(name).tables.defer(table_name, lambda groups=groups, table_name=table_name:
                                _ruleset(table_name, groups))


_NO_PROVENANCE: dict = {}


def _ruleset(table_name: str, groups: dict[tuple, list[dict]]) -> Ruleset:
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
            chain.add_fact(fact)
    return ruleset


