"""Combiners: the facts rules reason over, derived in plain Python from parsed facts.

Rules should not wade through 20,000 iptables lines or do prefix arithmetic; a
combiner reads the parsed facts of each node and states what they add up to, in the
seed's own terms: which interface the SNAT for the fixed range applies to, which
addresses are floating IPs, where a node's default route leaves, which route a node
would use for an address, which interface faces another node, whether a node
masquerades or forwards for an address. Each derived fact names the facts it came
from and says, in a sentence, why it holds.

Nothing here knows a lab's names: nodes, interfaces and ranges all come from the facts.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from kb.facts import FactTable
from kb.services import canonical_service, project_of, service_for_log
from kb.walk import walk_verdicts

# The facts the combiners derive, each field in words (kb/schema.py collects them into
# rules/FACTS.md; node, type, because and derived_from are on every derived fact).
FACT_TYPES = {
    "default_route": {
        "doc": "the default route NODE uses (the best of its default routes)",
        "fields": {"dev": "the interface it leaves by", "via": "the next hop, or empty"},
    },
    "owns_address": {
        "doc": "NODE holds an address (from ip addr, ifconfig, or a route's src)",
        "fields": {"address": "the address", "ifname": "the interface holding it"},
    },
    "faces": {
        "doc": "NODE reaches another node directly on one of its connected networks",
        "fields": {"peer": "the other node", "dev": "NODE's interface towards it",
                   "peer_address": "the other node's address in that network"},
    },
    "snat_scope": {
        "doc": "nova-network's SNAT on NODE applies only to packets leaving by one interface",
        "fields": {"chain": "the SNAT rule's chain (nova-network-snat ...)",
                   "scope": "fixed (the fixed range's rule) or floating (a floating IP's rule)",
                   "source": "the source the rule translates, as CIDR",
                   "out": "the interface a packet must leave by for it to apply",
                   "to_address": "the address it translates to"},
    },
    "floating_ip": {
        "doc": "an address NODE serves as a floating IP",
        "fields": {"address": "the floating IP", "fixed": "the fixed address it stands for, or empty",
                   "private": "true when nothing outside routes it back",
                   "range": "the network the floating IPs live in, as CIDR (address/32 when unknown)"},
    },
    "route_choice": {
        "doc": "the route NODE would send packets for a floating IP by",
        "fields": {"destination": "the floating IP", "dev": "the interface it leaves by",
                   "via": "the next hop, or empty", "prefix": "the route's destination, as CIDR",
                   "is_default": "true when it is the default route",
                   "described": "the route in words (its default route via X, its route to N)"},
    },
    "nat_shown": {
        "doc": "NODE's nat table was shown (so an absent nat rule is really absent)",
        "fields": {"table_name": "nat"},
    },
    "masquerades": {
        "doc": "NODE translates packets from a floating IP leaving by its default route",
        "fields": {"address": "the floating IP", "dev": "the interface they leave by"},
    },
    "ip_forward": {
        "doc": "whether NODE forwards packets at all (net.ipv4.ip_forward)",
        "fields": {"enabled": "true when forwarding is on"},
    },
    "forward_verdict": {
        "doc": "what NODE's FORWARD chain does with new packets from a floating IP",
        "fields": {"address": "the floating IP", "verdict": "ACCEPT, DROP or REJECT",
                   "accepted": "true when they are let through",
                   "by_policy": "true when the chain's policy decides (no rule matched)"},
    },
    "untranslated_packet": {
        "doc": "a capture on NODE saw a fixed (private) address leave untranslated",
        "fields": {"iface": "the interface it was seen on", "src": "the fixed address",
                   "range": "the fixed range it belongs to, as CIDR"},
    },
    "floating_packet": {
        "doc": "a capture on NODE saw packets from a floating IP",
        "fields": {"iface": "the interface they were seen on", "src": "the floating IP"},
    },
    "glance_unreachable": {
        "doc": "cinder on NODE could not reach glance (its log says where it looked)",
        "fields": {"host": "the host cinder tried", "port": "the port cinder tried",
                   "service": "the cinder service whose log says so (cinder-api ...)",
                   "refused": "true when the connection was refused",
                   "loopback": "true when cinder looked on the node itself (localhost, 127.x)"},
    },
    "glance_setting": {
        "doc": "cinder.conf on NODE sets glance_api_servers",
        "fields": {"value": "its value"},
    },
}

_METADATA_ADDRESS = "169.254.169.254/32"
_NOVA_CHAIN = re.compile(r"^nova-")


@lru_cache(maxsize=65536)
def network(text):
    """An IPv4/IPv6 network for an address or CIDR string; None for a hostname."""
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def covers(outer: str | None, inner: str | None) -> bool:
    a, b = network(outer), network(inner)
    return a is not None and b is not None and a.version == b.version and b.subnet_of(a)


def is_private(address: str) -> bool:
    net = network(address)
    # "Private" as a router sees it: no one outside routes it back (RFC 1918, CGNAT,
    # the documentation ranges a lab uses as its "public" side).
    return net is not None and not net.is_global and not net.is_loopback


def _host(cidr: str | None) -> str | None:
    net = network(cidr)
    if net is None or net.prefixlen != net.max_prefixlen:
        return None
    return str(net.network_address)


# --- routing -------------------------------------------------------------------------

def _routes(table: FactTable, node) -> list[dict]:
    return [r for r in table.of("route", node)
            if (r.get("table") in (None, "main", "254"))
            and r.get("route_type") in (None, "unicast")
            and network(r.get("destination")) is not None]


def default_routes(table: FactTable) -> None:
    for node in table.nodes("route"):
        defaults = [r for r in _routes(table, node) if r["destination"] in ("0.0.0.0/0", "default")]
        if not defaults:
            continue
        best = min(defaults, key=lambda r: r.get("metric") or 0)
        table.derive("default_route", node, [best],
                     f"{node}'s default route leaves by {best.get('dev')}"
                     + (f" via {best['via']}" if best.get("via") else ""),
                     dev=best.get("dev"), via=best.get("via"))


def route_for(table: FactTable, node, address: str) -> dict | None:
    """The route a node would use for an address: longest prefix, then lowest metric."""
    target = network(address)
    if target is None:
        return None
    best = None
    for route in _routes(table, node):
        net = network(route["destination"])
        if net.version != target.version or not target.subnet_of(net):
            continue
        key = (net.prefixlen, -(route.get("metric") or 0))
        if best is None or key > best[0]:
            best = (key, route)
    return best[1] if best else None


def owned_addresses(table: FactTable) -> None:
    """Which node owns which address: from ``ip addr``, and from the ``src`` of routes
    (the kernel only gives a route a source address the node holds)."""
    seen = set()
    for fact in table.of("address"):
        if fact.get("family") not in (None, "inet", "inet6") or not fact.get("address"):
            continue
        key = (fact.get("node"), fact["address"])
        if key not in seen:
            seen.add(key)
            table.derive("owns_address", fact.get("node"), [fact],
                         f"{fact.get('node')} holds {fact['address']} on {fact.get('ifname')}",
                         address=fact["address"], ifname=fact.get("ifname"))
    for route in table.of("route"):
        src = route.get("src")
        key = (route.get("node"), src)
        if src and key not in seen:
            seen.add(key)
            table.derive("owns_address", route.get("node"), [route],
                         f"{route.get('node')} holds {src} (the source of its route to "
                         f"{route.get('destination')} on {route.get('dev')})",
                         address=src, ifname=route.get("dev"))


def facing_interfaces(table: FactTable) -> None:
    """For each pair of nodes: the interface of one whose connected network holds an
    address of the other (the gateway's br1 faces the network node's 10.0.0.7)."""
    owners = table.of("owns_address")
    for node in table.nodes("route"):
        connected = [r for r in _routes(table, node) if not r.get("via")
                     and r["destination"] not in ("0.0.0.0/0", "default")]
        done = set()
        for owner in owners:
            peer = owner.get("node")
            if peer == node or peer is None:
                continue
            for route in connected:
                if covers(route["destination"], owner["address"]) and (peer, route.get("dev")) not in done:
                    done.add((peer, route.get("dev")))
                    table.derive("faces", node, [route, owner],
                                 f"{node} reaches {peer} ({owner['address']}) directly on "
                                 f"{route.get('dev')}, whose network is {route['destination']}",
                                 peer=peer, dev=route.get("dev"), peer_address=owner["address"])


# --- nova-network's NAT ----------------------------------------------------------------

def _nat_rules(table: FactTable, node=...) -> list[dict]:
    return [r for r in table.of("iptables_rule", node) if r.get("table") == "nat"]


def snat_scopes(table: FactTable) -> None:
    """nova-network's SNAT rules that name an out interface: they translate the VMs'
    addresses only for packets leaving by that interface (its public_interface)."""
    candidates = [r for r in _nat_rules(table) if r.get("target") == "SNAT"
                  and str(r.get("chain") or "").endswith("snat") and r.get("out")
                  and not r.get("out_negated")]
    # One float-snat rule per floating IP says the same as the fixed range's rule: keep
    # those only on a node whose fixed-range rule was not shown.
    with_fixed = {r.get("node") for r in candidates if not str(r["chain"]).endswith("float-snat")}
    for rule in candidates:
        chain = str(rule["chain"])
        scope = "floating" if chain.endswith("float-snat") else "fixed"
        if scope == "floating" and rule.get("node") in with_fixed:
            continue
        table.derive("snat_scope", rule.get("node"), [rule],
                     f"on {rule.get('node')}, {chain} translates {rule.get('source')} to "
                     f"{rule.get('to_address')} only for packets leaving by {rule['out']}",
                     chain=chain, scope=scope, source=rule.get("source"), out=rule["out"],
                     to_address=rule.get("to_address"))


def floating_ips(table: FactTable) -> None:
    """The floating IPs a network node serves: the targets of its float-snat SNAT
    rules, the single addresses its DNAT rules rewrite, and the /32 addresses that
    nova-network binds on the public interface."""
    found: dict[tuple, list[dict]] = {}
    fixed_of: dict[tuple, str] = {}
    for rule in _nat_rules(table):
        chain = str(rule.get("chain") or "")
        node = rule.get("node")
        if rule.get("target") == "SNAT" and chain.endswith("float-snat") and rule.get("to_address"):
            key = (node, rule["to_address"])
            found.setdefault(key, []).append(rule)
            fixed_of.setdefault(key, _host(rule.get("source")))
        elif rule.get("target") == "DNAT" and _NOVA_CHAIN.match(chain) and not rule.get("dport"):
            address = _host(rule.get("destination"))
            if address and rule.get("destination") != _METADATA_ADDRESS and rule.get("to_address"):
                key = (node, address)
                found.setdefault(key, []).append(rule)
                fixed_of.setdefault(key, rule["to_address"])
    nova_network_nodes = {r.get("node") for r in _nat_rules(table) if _NOVA_CHAIN.match(str(r.get("chain")))}
    nova_network_nodes |= {s.get("node") for s in table.of("service_status")
                           if canonical_service(s.get("service")) == "nova-network"}
    for fact in table.of("address"):
        if fact.get("node") in nova_network_nodes and fact.get("family") in (None, "inet") \
                and fact.get("prefixlen") == 32 and not str(fact.get("address", "")).startswith("127."):
            found.setdefault((fact.get("node"), fact["address"]), []).append(fact)
    for (node, address), sources in found.items():
        private = is_private(address)
        home = _floating_range(table, node, address)
        table.derive("floating_ip", node, sources + ([home] if home else []),
                     f"{address} is a floating IP served by {node}"
                     + (f" for {fixed_of[(node, address)]}" if fixed_of.get((node, address)) else "")
                     + (f", in its public network {home['destination']} on {home.get('dev')}" if home else ""),
                     address=address, fixed=fixed_of.get((node, address)), private=private,
                     range=home["destination"] if home else f"{address}/32")


def _floating_range(table: FactTable, node, address: str) -> dict | None:
    """The network the floating IPs live in: the serving node's connected route (wider
    than a single address) that holds the floating IP."""
    best = None
    for route in _routes(table, node):
        net = network(route["destination"])
        if route.get("via") or net.prefixlen in (0, net.max_prefixlen) or not covers(route["destination"], address):
            continue
        if best is None or net.prefixlen > network(best["destination"]).prefixlen:
            best = route
    return best


def return_routes(table: FactTable) -> None:
    """For every node whose routes are known and every floating IP: the route that node
    would send a reply to the floating IP by."""
    floating = {f["address"]: f for f in table.of("floating_ip")}
    for node in table.nodes("route"):
        for address, fip in floating.items():
            route = route_for(table, node, address)
            if route is None:
                continue
            is_default = route["destination"] in ("0.0.0.0/0", "default")
            described = ("its default route" if is_default else f"its route to {route['destination']}") \
                + (f" via {route['via']}" if route.get("via") else "")
            table.derive("route_choice", node, [route],
                         f"{node} sends packets for {address} by {described}, out of {route.get('dev')}",
                         destination=address, dev=route.get("dev"), via=route.get("via"),
                         prefix=route["destination"], is_default=is_default, described=described)


def _chain_policies(table: FactTable, node, table_name: str) -> dict[str, dict]:
    return {c["chain"]: c for c in table.of("iptables_chain", node) if c.get("table") == table_name}


def masquerades(table: FactTable) -> None:
    """Where a node's nat table was shown: does any SNAT/MASQUERADE rule reachable from
    POSTROUTING translate a floating IP's packets leaving by the default route?"""
    floating = table.of("floating_ip")
    for default in table.of("default_route"):
        node = default.get("node")
        chains = _chain_policies(table, node, "nat")
        if "POSTROUTING" not in chains:
            continue
        table.derive("nat_shown", node, [chains["POSTROUTING"]],
                     f"{node}'s nat table was shown", table_name="nat")
        rules = _nat_rules(table, node)
        reachable = _reachable_chains(rules, "POSTROUTING")
        # Translating rules by the prefix length and network of their source, first rule
        # first: a floating IP then costs one lookup per distinct prefix length, not a
        # scan of every rule (a network node holds thousands of SNAT rules).
        by_prefix: dict[int, dict] = {}
        for rule in rules:
            if rule.get("chain") in reachable and rule.get("target") in ("MASQUERADE", "SNAT") \
                    and not rule.get("source_negated") and not rule.get("out_negated") \
                    and rule.get("out") in (None, default.get("dev")):
                source = network(rule.get("source"))
                if source is not None:
                    by_prefix.setdefault(source.prefixlen, {}).setdefault(source, rule)
        for fip in floating:
            address = network(fip["address"])
            if address is None:
                continue
            for prefixlen, sources in by_prefix.items():
                if prefixlen > address.prefixlen:
                    continue
                rule = sources.get(address.supernet(new_prefix=prefixlen))
                if rule is not None and rule.get("source") is not None and network(rule["source"]).version == address.version:
                    table.derive("masquerades", node, [rule, default],
                                 f"{node} translates packets from {fip['address']} leaving by "
                                 f"{default.get('dev')} ({rule.get('target')} in {rule.get('chain')})",
                                 address=fip["address"], dev=default.get("dev"))
                    break


def _reachable_chains(rules: list[dict], start: str) -> set[str]:
    jumps: dict[str, set[str]] = {}
    for rule in rules:
        jumps.setdefault(rule.get("chain"), set()).add(rule.get("target"))
    reachable, stack = set(), [start]
    while stack:
        chain = stack.pop()
        if chain in reachable:
            continue
        reachable.add(chain)
        stack.extend(t for t in jumps.get(chain, ()) if t in jumps or t not in _VERDICTS)
    return reachable


_VERDICTS = {"ACCEPT", "DROP", "REJECT", "RETURN", "MASQUERADE", "SNAT", "DNAT", "LOG",
             "REDIRECT", "MARK", "CONNMARK", "CHECKSUM", "QUEUE", "NFQUEUE", None}


def forwarding(table: FactTable) -> None:
    """Whether a node forwards a floating IP's new packets towards its default route:
    the first FORWARD rule that matches decides, else the chain's policy; and whether
    ip_forward is off."""
    for fact in table.of("sysctl"):
        if fact.get("key") == "net.ipv4.ip_forward":
            enabled = str(fact.get("value")).strip() != "0"
            table.derive("ip_forward", fact.get("node"), [fact],
                         f"net.ipv4.ip_forward is {fact.get('value')} on {fact.get('node')}",
                         enabled=enabled)
    floating = table.of("floating_ip")
    for default in table.of("default_route"):
        node = default.get("node")
        chains = _chain_policies(table, node, "filter")
        if "FORWARD" not in chains:
            continue
        rules = [r for r in table.of("iptables_rule", node) if r.get("table") == "filter"]
        for fip in floating:
            in_devs = [f.get("dev") for f in table.of("faces", node) if f.get("peer") == fip.get("node")]
            packet = {"source": fip["address"], "in": in_devs[0] if in_devs else None,
                      "out": default.get("dev")}
            verdict, decider = _first_match(rules, chains, "FORWARD", packet)
            table.derive("forward_verdict", node, [decider, default],
                         f"{node}'s FORWARD chain {_verb(verdict)} new packets from "
                         f"{fip['address']} leaving by {default.get('dev')}"
                         + (" (its policy)" if decider.get("type") == "iptables_chain" else ""),
                         address=fip["address"], verdict=verdict,
                         accepted=verdict == "ACCEPT", by_policy=decider.get("type") == "iptables_chain")


def _verb(verdict: str) -> str:
    return {"ACCEPT": "accepts", "DROP": "drops", "REJECT": "rejects"}.get(verdict, verdict.lower())


def _first_match(rules, chains, chain, packet, depth=0):
    """First-match through a chain and the user chains it jumps to."""
    if depth > 16:
        return "DROP", chains.get(chain, {"type": "iptables_chain"})
    for rule in rules:
        if rule.get("chain") != chain or not _matches(rule, packet):
            continue
        target = rule.get("target")
        if target in ("ACCEPT", "DROP", "REJECT"):
            return target, rule
        if target == "RETURN":
            break
        if target in chains and target not in ("FORWARD",):
            verdict, decider = _first_match(rules, chains, target, packet, depth + 1)
            if verdict is not None:
                return verdict, decider
    if depth:
        return None, None
    policy = chains.get(chain, {})
    return policy.get("policy") or "ACCEPT", policy


def _matches(rule: dict, packet: dict) -> bool:
    """Does a rule match a new packet from an address to anywhere outside?"""
    if rule.get("protocol") not in (None, "all"):
        return False
    if rule.get("ctstate") or rule.get("state"):
        states = set(rule.get("ctstate") or rule.get("state") or [])
        negated = rule.get("ctstate_negated")
        if ("NEW" in states) == bool(negated):
            return False
    if not _address_matches(rule.get("source"), packet["source"], rule.get("source_negated")):
        return False
    if rule.get("destination") not in (None, "0.0.0.0/0") and not rule.get("destination_negated"):
        return False  # a rule for one destination says nothing about the whole outside
    for direction in ("in", "out"):
        wanted = rule.get(direction)
        if wanted and (packet[direction] is None or (wanted == packet[direction]) == bool(rule.get(f"{direction}_negated"))):
            return False
    return True


def _address_matches(rule_address, address, negated) -> bool:
    if rule_address in (None, "0.0.0.0/0"):
        return not negated
    return covers(rule_address, address) != bool(negated)


# --- what tcpdump saw ---------------------------------------------------------------------

def captured_packets(table: FactTable) -> None:
    """Packets that show a cause at work: fixed addresses leaving a node by an interface
    its SNAT does not cover, and floating IPs arriving somewhere."""
    scopes = table.of("snat_scope")
    floating = {f["address"] for f in table.of("floating_ip")}
    done = set()
    for packet in table.of("packet"):
        node, iface, src = packet.get("node"), packet.get("iface"), packet.get("src")
        for scope in scopes:
            if scope.get("node") == node and iface and iface != scope.get("out") \
                    and covers(scope.get("source"), src) and (node, iface, scope["source"]) not in done:
                done.add((node, iface, scope["source"]))
                table.derive("untranslated_packet", node, [packet],
                             f"tcpdump on {node} saw {src} (in {scope['source']}) leave by {iface} untranslated",
                             iface=iface, src=src, range=scope["source"])
        if src in floating and (node, iface, src) not in done:
            done.add((node, iface, src))
            table.derive("floating_packet", node, [packet],
                         f"tcpdump on {node} saw packets from the floating IP {src} on {iface}",
                         iface=iface, src=src)


# --- cinder <-> glance ---------------------------------------------------------------

_GLANCE_SERVER = re.compile(r"Error contacting glance server '(?P<host>[^':]+):(?P<port>\d+)'")
_GLANCE_HTTP = re.compile(r"Error communicating with https?://(?P<host>[^:/\s]+):(?P<port>\d+)")
_REFUSED = re.compile(r"ECONNREFUSED|Connection refused|Errno 111")


def glance_failures(table: FactTable) -> None:
    """cinder failing to reach glance, and where it looked for it."""
    for entry in table.of("log_entry"):
        text = " ".join(str(entry.get(k) or "") for k in ("message", "exception_message"))
        match = _GLANCE_SERVER.search(text) or _GLANCE_HTTP.search(text)
        if not match:
            continue
        service = (service_for_log(entry.get("path")) or service_for_log(entry["prov"]["source"])
                   or _service_from_logger(entry.get("logger")))
        if project_of(service) not in (None, "cinder"):
            continue
        host = match.group("host")
        loopback = host == "localhost" or host.startswith("127.")
        table.derive("glance_unreachable", entry.get("node"), [entry],
                     f"{service or 'cinder'} on {entry.get('node')} could not reach glance at "
                     f"{host}:{match.group('port')}",
                     host=host, port=match.group("port"), service=service or "cinder",
                     refused=bool(_REFUSED.search(text)), loopback=loopback)
    for option in table.of("config_option"):
        if option.get("key") == "glance_api_servers" and "cinder" in str(option.get("path") or "cinder"):
            table.derive("glance_setting", option.get("node"), [option],
                         f"cinder.conf on {option.get('node')} sets glance_api_servers={option.get('value')}",
                         value=option.get("value"))


def _service_from_logger(logger: str | None) -> str | None:
    if not logger:
        return None
    return logger.split(".", 1)[0]


COMBINERS = (
    default_routes, owned_addresses, facing_interfaces, snat_scopes, floating_ips,
    return_routes, masquerades, forwarding, captured_packets, glance_failures,
    walk_verdicts,  # last: kb.walk reads the floating_ip and packet facts derived above
)


def combine(table: FactTable) -> None:
    for combiner in COMBINERS:
        combiner(table)
