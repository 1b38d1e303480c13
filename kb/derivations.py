"""Neutral facts about the lab, derived once per diagnosis from the parsed facts, each
in time linear in the evidence: where a node's default route leaves, which node holds
which address, what nova-network's SNAT rules say, which addresses are floating IPs,
whether a node forwards, which tables were shown, what a capture saw, what a log says.

They state what the evidence shows, not what is wrong: which conditions make a cause
is said in the rule files alone (rules/**.yaml). Facts that depend on a packet or a
destination (the route chosen for it, the rule it meets in a chain, a packet walk) are
not made here for every pair: kb/queries.py answers them when a rule asks.

Each derived fact names the facts it came from and says, in a sentence, why it holds.
Nothing here knows a lab's names: nodes, interfaces and ranges all come from the facts.
"""
from __future__ import annotations

import re
from itertools import compress, groupby, repeat
from operator import eq, itemgetter

from kb.addresses import address_int, cidr, covers, is_private_int, network_ints
from kb import logsays, storage
from kb.facts import FactTable
from kb.services import canonical_service, project_of, service_for_log

FACT_TYPES = {
    "default_route": {
        "doc": "the route NODE sends traffic for the outside by (its lowest-metric default route)",
        "fields": {"dev": "the interface it leaves by", "via": "the gateway address, or null"}},
    "owns_address": {
        "doc": "NODE holds ADDRESS (from ip addr / ifconfig, or the src of one of its routes)",
        "fields": {"address": "an IPv4 or IPv6 address", "ifname": "the interface holding it"}},
    "snat_scope": {
        "doc": "a SNAT rule of nova-network on NODE that names an out interface: it translates "
               "SOURCE only for packets leaving by OUT",
        "fields": {"chain": "the rule's chain", "scope": "fixed (the fixed range's rule) or floating",
                   "source": "the addresses it translates (CIDR)", "out": "the out interface",
                   "to_address": "the address it translates to"}},
    "floating_ip": {
        "doc": "ADDRESS is a floating IP NODE serves (a float-snat SNAT target, a nova DNAT of one "
               "address, or a /32 bound by nova-network). Floating IPs alike (same node, same "
               "network, both private or both not) form a class: the lowest stands for the others "
               "(ALIKE counts them), and any the evidence names by itself is a fact of its own",
        "fields": {"address": "the floating IP", "fixed": "the fixed address behind it, or null",
                   "private": "true when no upstream routes it back (RFC 1918, RFC 6598, "
                              "link-local, loopback)",
                   "range": "the connected network of NODE that holds it (or ADDRESS/32)",
                   "alike": "how many more floating IPs of its class it stands for"}},
    "ip_forward": {
        "doc": "whether NODE forwards IPv4 packets (net.ipv4.ip_forward or "
               "net.ipv4.conf.all.forwarding; the last one shown)",
        "fields": {"enabled": "true or false", "key": "the sysctl key shown", "value": "its value"}},
    "table_shown": {
        "doc": "NODE's iptables TABLE was shown (a listing or iptables-save)",
        "fields": {"table": "filter, nat, mangle or raw"}},
    "untranslated_packet": {
        "doc": "tcpdump on NODE saw a packet from RANGE (a SNAT rule's source) on IFACE, an "
               "interface the rule does not name",
        "fields": {"iface": "the interface captured", "src": "the packet's source",
                   "range": "the SNAT rule's source range"}},
    "arrival": {
        "doc": "tcpdump on NODE saw a packet from SRC to DST on IFACE, DST not an address of "
               "NODE: a packet passing through (one fact per node, interface and source)",
        "fields": {"iface": "the interface captured", "src": "the packet's source",
                   "dst": "its destination", "src_on_link": "true when SRC lies in a network "
                   "NODE has on IFACE, false when it does not, null when IFACE's networks "
                   "were not shown",
                   "to_node": "true when the frame was addressed to NODE's own MAC on IFACE "
                              "(tcpdump -e and ip addr), false when to another, null when unknown"}},
    "floating_packet": {
        "doc": "tcpdump on NODE saw a packet from the floating IP SRC on IFACE",
        "fields": {"iface": "the interface captured", "src": "the floating IP"}},
    "glance_unreachable": {
        "doc": "cinder on NODE could not reach glance at HOST:PORT (its log)",
        "fields": {"host": "the host cinder tried", "port": "its port", "service": "the cinder service",
                   "refused": "true when the connection was refused",
                   "loopback": "true when HOST is the node itself (localhost, 127.x)",
                   "host_node": "the node the evidence shows holding HOST, or empty"}},
    "glance_setting": {
        "doc": "cinder.conf on NODE sets glance_api_servers",
        "fields": {"value": "the option's value"}},
    "instance_address": {
        "doc": "an instance holds ADDRESS, as nova list / nova show / openstack server list on NODE "
               "shows it (one fact per address)",
        "fields": {"instance": "the instance's name", "uuid": "its id, or empty",
                   "network": "the network the address is on",
                   "address": "the address",
                   "floating": "false for the first address of the network (the fixed one), true "
                               "for those listed after it (floating IPs)"}},
    "floating_home": {
        "doc": "where the floating IPs nova lists (nova-manage floating list) sit among NODE's "
               "networks, NODE's addresses being shown: one fact per pool and holding "
               "interface, the lowest ADDRESS standing for the others (ALIKE counts them)",
        "fields": {"address": "the lowest floating IP of the class",
                   "pool": "their pool",
                   "ifname": "the interface whose network holds them, or empty when none does",
                   "network": "that network (CIDR), or empty",
                   "alike": "how many more floating IPs of the class it stands for"}},
    "token_refused": {
        "doc": "the auth_token middleware of a service on NODE could not get keystone to "
               "validate a token (\"Authorization failed for token\", \"Unexpected response "
               "from keystone service\"): its log",
        "fields": {"service": "the service whose log it is, or empty when the log's name does not say",
                   "project": "its project (nova, glance, cinder ...): by convention the keystone "
                              "user it authenticates as, or empty",
                   "message": "the message"}},
    "service_state": {
        "doc": "the latest state NODE's init system or service tool shows for SERVICE, by its "
               "one name whatever the distribution calls it (openstack-nova-compute, "
               "nova-compute.service and nova-compute are nova-compute; mysqld and mariadb "
               "are mysql; a rabbit node is rabbitmq-server)",
        "fields": {"service": "the service's one name (nova-compute, glance-api, mysql ...)",
                   "running": "true when it runs",
                   "installed": "false when the tool says there is no such service on NODE "
                                "(unrecognized service, unit not found, unknown job)",
                   "state": "the state as printed"}},
}

_METADATA_ADDRESS = "169.254.169.254/32"
_FORWARDING_KEYS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")


def _host(cidr) -> str | None:
    """The one address a /32 names; None for a wider network or no address."""
    if cidr.__class__ is str and cidr.endswith("/32"):
        # the usual form (iptables prints every single address so): no prefix to read
        address = cidr[:-3]
        return address if address_int(address) is not None else None
    ints = network_ints(cidr)
    if ints is None or ints[2] != 32:
        return None
    return str(cidr).split("/")[0]


def _main_routes(table: FactTable, node) -> list[dict]:
    return [r for r in table.of("route", node)
            if r.get("table") in (None, "main", "254") and r.get("route_type") in (None, "unicast")
            and network_ints(r.get("destination")) is not None]


# --- routes and addresses ------------------------------------------------------------

def default_routes(table: FactTable) -> None:
    by_node: dict = {}
    for route in table.of("route"):
        if route.get("destination") in ("0.0.0.0/0", "default") \
                and route.get("table") in (None, "main", "254") \
                and route.get("route_type") in (None, "unicast"):
            by_node.setdefault(route.get("node"), []).append(route)
    for node, defaults in by_node.items():
        best = min(defaults, key=lambda r: r.get("metric") or 0)
        table.derive("default_route", node, [best],
                     f"{node}'s default route leaves by {best.get('dev')}"
                     + (f" via {best['via']}" if best.get("via") else ""),
                     dev=best.get("dev"), via=best.get("via"))


def owned_addresses(table: FactTable) -> None:
    """From ``ip addr``, and from the ``src`` of routes (the kernel only gives a route a
    source address the node holds)."""
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


def forwarding(table: FactTable) -> None:
    latest: dict = {}
    for fact in table.of("sysctl"):
        if fact.get("key") in _FORWARDING_KEYS:
            latest[fact.get("node")] = fact
    for node, fact in latest.items():
        table.derive("ip_forward", node, [fact], f"{fact['key']} is {fact.get('value')} on {node}",
                     enabled=str(fact.get("value")).strip() != "0", key=fact["key"],
                     value=str(fact.get("value")).strip())


def tables_shown(table: FactTable) -> None:
    seen = set()
    for fact in table.of("iptables_chain"):
        key = (fact.get("node"), fact.get("table") or "filter")
        if key not in seen:
            seen.add(key)
            table.derive("table_shown", key[0], [fact], f"{key[0]}'s {key[1]} table was shown",
                         table=key[1])


# --- nova-network's NAT --------------------------------------------------------------

class _RulesRead:
    """What the NAT derivations read of the iptables rules, sorted out in one pass: a
    large nat table has 20,000 rules (four per floating IP), which three passes read
    before. A listing prints a chain's rules together, so the rules come in runs of one
    node, table and chain (found by C code, a tenth of what a loop of Python costs per
    rule); what depends on the chain is asked once per run, and per rule only what is
    its own (its target, its addresses)."""

    def __init__(self, table: FactTable):
        # (node, chain, its SNAT rules that name an out interface) per run of a chain
        # of a nat table whose name ends in "snat"
        self.snat_runs: list[tuple] = []
        self.outside_nova: list[dict] = []    # rules of chains that are not nova's own
        self.nova_nodes: set = set()          # nodes with nova chains in a nat table
        # (node, address) -> the rules that show ADDRESS as a floating IP of NODE (a
        # float-snat SNAT target, a nova DNAT of one address), in the order shown
        self.floating: dict[tuple, list[dict]] = {}
        for (node, table_name, chain), run in _runs(table.of("iptables_rule")):
            if chain.__class__ is not str:
                chain = str(chain or "")
            nova = chain.startswith("nova-")
            if not nova:
                self.outside_nova += run
            if table_name != "nat":
                continue
            if nova:
                self.nova_nodes.add(node)
            targets = list(map(dict.get, run, repeat("target")))
            if chain.endswith("snat"):
                self.snat_runs.append((node, chain, [
                    rule for rule in compress(run, map(eq, targets, repeat("SNAT")))
                    if rule.get("out") and not rule.get("out_negated")]))
            if chain.endswith("float-snat"):
                for rule in compress(run, map(eq, targets, repeat("SNAT"))):
                    self._floating(node, rule.get("to_address"), rule)
            elif nova:
                for rule in compress(run, map(eq, targets, repeat("DNAT"))):
                    if rule.get("dport") or not rule.get("to_address"):
                        continue
                    destination = rule.get("destination")
                    if destination.__class__ is str and destination.endswith("/32"):
                        address = destination[:-3]     # checked by _floating, where new
                    else:
                        address = _host(destination)
                    if address and destination != _METADATA_ADDRESS:
                        self._floating(node, address, rule)

    def _floating(self, node, address, rule: dict) -> None:
        # the address is checked the first time a rule names it
        sources = self.floating.get((node, address))
        if sources is not None:
            sources.append(rule)
        elif address_int(address) is not None:
            self.floating[node, address] = [rule]


def _runs(rules: list[dict]):
    """(node, table, chain) and the rules of each run of them, in order."""
    try:
        keys = list(map(_NODE_TABLE_CHAIN, rules))
    except KeyError:      # a rule without one of them (made by hand): the slow way
        keys = [(rule.get("node"), rule.get("table"), rule.get("chain")) for rule in rules]
    for key, run in groupby(zip(keys, rules), key=_FIRST):
        yield key, list(map(_SECOND, run))


_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_NODE_TABLE_CHAIN = itemgetter("node", "table", "chain")


def nova_nat(table: FactTable) -> None:
    rules = _RulesRead(table)
    snat_scopes(table, rules)
    floating_ips(table, rules)


def snat_scopes(table: FactTable, rules: _RulesRead) -> None:
    # One float-snat rule per floating IP says the same as the fixed range's rule: keep
    # those only on a node whose fixed-range rule was not shown.
    with_fixed = {node for node, chain, snat in rules.snat_runs
                  if snat and not chain.endswith("float-snat")}
    for node, chain, snat in rules.snat_runs:
        scope = "floating" if chain.endswith("float-snat") else "fixed"
        if scope == "floating" and node in with_fixed:
            continue
        for rule in snat:
            table.derive("snat_scope", node, [rule],
                         f"on {node}, {chain} translates {rule.get('source')} to "
                         f"{rule.get('to_address')} only for packets leaving by {rule['out']}",
                         chain=chain, scope=scope, source=rule.get("source"), out=rule["out"],
                         to_address=rule.get("to_address"))


def floating_ips(table: FactTable, rules: _RulesRead) -> None:
    found = rules.floating
    nova_network_nodes = rules.nova_nodes | {s.get("node") for s in table.of("service_status")
                                             if canonical_service(s.get("service")) == "nova-network"}
    for fact in table.of("address"):
        if fact.get("node") in nova_network_nodes and fact.get("family") in (None, "inet") \
                and fact.get("prefixlen") == 32 and address_int(fact.get("address")) is not None \
                and not str(fact["address"]).startswith("127."):
            found.setdefault((fact.get("node"), fact["address"]), []).append(fact)
    homes = _connected_networks(table, {node for node, _ in found})
    named = _named_addresses(table, rules)
    classes: dict[tuple, list[tuple]] = {}
    # once per floating IP (5,000 on a large node): its address as a number, once
    for (node, address), sources in found.items():
        value = address_int(address)
        routes = homes.get(node)
        home = _home_of(routes, value) if routes else None
        classes.setdefault((node, home["destination"] if home else None, is_private_int(value)),
                           []).append((value, address, sources, home))
    for (node, _, private), members in classes.items():
        members.sort(key=_BY_VALUE)
        # One floating IP stands for the others of its class; any the evidence names by
        # itself (a capture, a rule or route for that one address) stands for itself.
        shown = [members[0]] + [m for m in members[1:] if m[1] in named]
        alike = len(members) - len(shown)
        for index, (_, address, sources, home) in enumerate(shown):
            fixed = _fixed_address(sources[0])
            others = alike if index == 0 else 0
            table.derive("floating_ip", node, sources + ([home] if home else []),
                         f"{address} is a floating IP served by {node}"
                         + (f" for {fixed}" if fixed else "")
                         + (f", in its public network {home['destination']} on {home.get('dev')}" if home else "")
                         + (f"; it stands for {others} more alike" if others else ""),
                         address=address, fixed=fixed, private=private,
                         range=home["destination"] if home else f"{address}/32", alike=others)


_BY_VALUE = itemgetter(0)


def _fixed_address(first: dict) -> str | None:
    """The fixed address behind a floating IP, as the first fact that showed the floating
    IP says it: a float-snat rule's source, a DNAT rule's target (none from ip addr)."""
    if first.get("type") != "iptables_rule":
        return None
    return _host(first.get("source")) if first.get("target") == "SNAT" else first["to_address"]


def _named_addresses(table: FactTable, rules: _RulesRead) -> set[str]:
    """Addresses the evidence names one by one outside nova's own NAT rules: in captured
    packets, and as a /32 in another rule or a route."""
    named = set()
    for packet in table.of("packet"):
        named.update((packet.get("src"), packet.get("dst")))
    for rule in rules.outside_nova:
        named.update(filter(None, (_host(rule.get("source")), _host(rule.get("destination")))))
    for route in table.of("route"):
        named.add(_host(route.get("destination")))
    return named


def _connected_networks(table: FactTable, nodes) -> dict:
    """Per node, its connected routes wider than one address, longest prefix first."""
    out = {}
    for node in nodes:
        routes = []
        for route in _main_routes(table, node):
            ints = network_ints(route["destination"])
            if not route.get("via") and 0 < ints[2] < 32:
                routes.append((ints, route))
        out[node] = sorted(routes, key=lambda item: -item[0][2])
    return out


def _home_of(routes, value: int) -> dict | None:
    """The connected route (longest prefix first) whose network holds the address ``value``."""
    for (network, mask, _), route in routes:
        if (value & mask) == network:
            return route
    return None


# --- what tcpdump saw -----------------------------------------------------------------

def captured_packets(table: FactTable) -> None:
    scopes_by_node: dict = {}
    for scope in table.of("snat_scope"):
        scopes_by_node.setdefault(scope.get("node"), []).append(scope)
    floating = {f["address"] for f in table.of("floating_ip")}
    done = set()
    for packet in table.of("packet"):
        node, iface, src = packet.get("node"), packet.get("iface"), packet.get("src")
        value = address_int(src)
        for scope in scopes_by_node.get(node, ()):
            source = network_ints(scope.get("source"))
            if iface and iface != scope.get("out") and source and value is not None \
                    and (value & source[1]) == source[0] and (node, iface, scope["source"]) not in done:
                done.add((node, iface, scope["source"]))
                table.derive("untranslated_packet", node, [packet],
                             f"tcpdump on {node} saw {src} (in {scope['source']}) leave by {iface} untranslated",
                             iface=iface, src=src, range=scope["source"])
        if src in floating and (node, iface, src) not in done:
            done.add((node, iface, src))
            table.derive("floating_packet", node, [packet],
                         f"tcpdump on {node} saw packets from the floating IP {src} on {iface}",
                         iface=iface, src=src)


def arrivals(table: FactTable) -> None:
    owned = {(f.get("node"), f.get("address")) for f in table.of("owns_address")}
    macs: dict = {}
    for interface in table.of("interface"):
        if interface.get("mac"):
            macs.setdefault((interface.get("node"), interface.get("ifname")), set()).add(interface["mac"])
    links: dict = {}
    for route in table.of("route"):
        ints = network_ints(route.get("destination"))
        if ints and not route.get("via") and 0 < ints[2] < 32:
            links.setdefault((route.get("node"), route.get("dev")), set()).add(ints)
    for address in table.of("address"):
        ints = network_ints(f"{address.get('address')}/{address.get('prefixlen')}")
        if ints and 0 < ints[2] < 32:
            links.setdefault((address.get("node"), address.get("ifname")), set()).add(ints)
    done = set()
    for packet in table.of("packet"):
        node, iface, src, dst = packet.get("node"), packet.get("iface"), packet.get("src"), packet.get("dst")
        value = address_int(src)
        if value is None or address_int(dst) is None or (node, dst) in owned \
                or "reply" in str(packet.get("icmp_type") or ""):
            continue
        mine = macs.get((node, iface))
        to_node = None if not packet.get("dst_mac") or mine is None else packet["dst_mac"].lower() in mine
        if (node, iface, src, to_node) in done:
            continue
        done.add((node, iface, src, to_node))
        networks = links.get((node, iface))
        on_link = None if networks is None else any((value & mask) == net for net, mask, _ in networks)
        table.derive("arrival", node, [packet], f"tcpdump on {node} saw {src} > {dst} on {iface}"
                     + (", addressed to its own MAC there" if to_node else ""),
                     iface=iface, src=src, dst=dst, src_on_link=on_link, to_node=to_node)


# --- cinder <-> glance ---------------------------------------------------------------

_GLANCE_SERVER = re.compile(r"Error contacting glance server '(?P<host>[^':]+):(?P<port>\d+)'")
_GLANCE_HTTP = re.compile(r"Error communicating with https?://(?P<host>[^:/\s]+):(?P<port>\d+)")
_REFUSED = re.compile(r"ECONNREFUSED|Connection refused|Errno 111")


def glance_failures(table: FactTable) -> None:
    holder: dict = {}
    for fact in table.of("owns_address"):
        holder.setdefault(fact.get("address"), fact.get("node"))
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
                     refused=bool(_REFUSED.search(text)), loopback=loopback,
                     host_node=entry.get("node") if loopback else holder.get(host))
    for option in table.of("config_option"):
        if option.get("key") == "glance_api_servers" and "cinder" in str(option.get("path") or "cinder"):
            table.derive("glance_setting", option.get("node"), [option],
                         f"cinder.conf on {option.get('node')} sets glance_api_servers={option.get('value')}",
                         value=option.get("value"))


def floating_homes(table: FactTable) -> None:
    for node in table.nodes("nova_floating"):
        # An address wider than /32: the /32s are the floating IPs nova-network bound.
        networks = [a for a in table.of("address", node)
                    if (network_ints(a.get("cidr")) or (0, 0, 32))[2] < 32]
        if not networks:
            continue  # NODE's addresses were not shown: nothing to say where they sit
        classes: dict[tuple, list] = {}
        for listed in table.of("nova_floating", node):
            holders = [a for a in networks if covers(a.get("cidr"), listed.get("address"))]
            holder = max(holders, key=lambda a: network_ints(a["cidr"])[2]) if holders else None
            classes.setdefault((listed.get("pool"), holder and holder["ifname"]), []).append((listed, holder))
        for (pool, ifname), members in classes.items():
            members.sort(key=lambda member: address_int(member[0].get("address")) or 0)
            first, holder = members[0]
            network = holder and cidr(network_ints(holder["cidr"])[0], network_ints(holder["cidr"])[2])
            table.derive("floating_home", node, [first] + ([holder] if holder else []),
                         f"{first.get('address')} (pool {pool}) "
                         + (f"lies in {network} on {ifname} of {node}" if holder
                            else f"lies in none of {node}'s networks"),
                         address=first.get("address"), pool=pool, ifname=ifname or "",
                         network=network or "", alike=len(members) - 1)


# --- instances -------------------------------------------------------------------

def instance_addresses(table: FactTable) -> None:
    """One fact per address of an instance: a probe names one address, while nova's
    tables print them together ("10.20.4.5, 203.0.113.40", the fixed one first)."""
    done = set()
    for server in table.of("server"):
        listed = [a.strip() for a in str(server.get("addresses") or "").split(",") if a.strip()]
        for index, address in enumerate(listed):
            key = (server.get("node"), server.get("uuid") or server.get("name"), address)
            if address_int(address) is None or key in done:
                continue
            done.add(key)
            table.derive("instance_address", server.get("node"), [server],
                         f"{server.get('name')} holds {address} on {server.get('network')}"
                         + (" (a floating IP)" if index else ""),
                         instance=server.get("name"), uuid=server.get("uuid"),
                         network=server.get("network"), address=address, floating=index > 0)


_TOKEN_REFUSED = re.compile(r"Authorization failed for token|Unexpected response from keystone service")


def token_refusals(table: FactTable) -> None:
    for entry in table.of("log_entry"):
        message = str(entry.get("message") or "")
        if not _TOKEN_REFUSED.search(message):
            continue
        service = (service_for_log(entry.get("path")) or service_for_log(entry["prov"]["source"]))
        table.derive("token_refused", entry.get("node"), [entry],
                     f"the log of {service or 'a service'} on {entry.get('node')} says: {message}",
                     service=service, project=project_of(service), message=message)


# --- services ---------------------------------------------------------------------

# What a service tool says when NODE has no such service at all: the student asked the
# wrong node, which says nothing about whether the service runs where it lives.
_NOT_INSTALLED_STATES = {"unrecognized service", "not-found", "unknown job"}


def service_states(table: FactTable) -> None:
    latest: dict[tuple, dict] = {}
    for status in table.of("service_status"):
        name = str(status.get("service") or "")
        # rabbitmqctl names the Erlang node (rabbit@controller), not the service.
        service = "rabbitmq-server" if "@" in name else canonical_service(name)
        latest[(status.get("node"), service)] = status  # a restart prints stop, then start
    for (node, service), status in latest.items():
        running = bool(status.get("running"))
        table.derive("service_state", node, [status],
                     f"{node} says {status.get('service')} {status.get('state')}",
                     service=service, running=running, state=status.get("state"),
                     installed=status.get("state") not in _NOT_INSTALLED_STATES)


def _service_from_logger(logger: str | None) -> str | None:
    if not logger:
        return None
    return logger.split(".", 1)[0]


DERIVATIONS = (default_routes, owned_addresses, forwarding, tables_shown, nova_nat, captured_packets, arrivals, glance_failures, service_states,
               token_refusals, floating_homes, instance_addresses, *logsays.DERIVATIONS, *storage.DERIVATIONS)


def derive_all(table: FactTable) -> None:
    for derivation in DERIVATIONS:
        derivation(table)
