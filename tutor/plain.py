"""Facts in plain words, each with the evidence line it stands on.

This is what the side panel ("what we know") lists and what a reply says about a paste.
It states what the evidence shows, never which cause it adds up to: connecting the
facts is the student's work.
"""
from __future__ import annotations

from collections import OrderedDict

_MAX_LOG_MESSAGE = 160


def _line_of(table, fact) -> dict | None:
    if fact.get("prov"):
        return dict(fact["prov"])
    lines = table.evidence([fact["fact_id"]])
    return lines[0] if lines else None


def _item(text: str, table, fact, key) -> dict:
    evidence = _line_of(table, fact)
    return {"key": key, "text": text, "node": fact.get("node"),
            "evidence": ({k: evidence.get(k) for k in ("node", "command", "line", "text")}
                         if evidence else None)}


def known_facts(table, fact_ids: set[int] | None = None) -> list[dict]:
    """Plain statements about the facts (all, or those whose ids are given)."""
    def wanted(fact):
        return fact_ids is None or fact["fact_id"] in fact_ids

    items: "OrderedDict[tuple, dict]" = OrderedDict()

    # packets: one line per node, interface, source and destination
    for packet in table.of("packet"):
        if not wanted(packet):
            continue
        what = packet.get("icmp_type") or (packet.get("protocol") or "packet")
        if packet.get("dport"):
            what = f"{packet.get('protocol') or 'tcp'} to port {packet['dport']}"
        key = ("packet", packet.get("node"), packet.get("iface"), packet.get("src"), packet.get("dst"), what)
        if key not in items:
            items[key] = _item(f"tcpdump on {packet.get('node') or 'this node'} ({packet.get('iface') or 'any interface'}) "
                               f"saw {what} from {packet.get('src')} to {packet.get('dst')}",
                               table, packet, key)
    seen_ifaces = {(p.get("node"), p.get("iface")) for p in table.of("packet")}
    for capture in table.of("capture"):
        if not wanted(capture) or (capture.get("node"), capture.get("iface")) in seen_ifaces:
            continue
        key = ("capture", capture.get("node"), capture.get("iface"))
        items.setdefault(key, _item(f"tcpdump on {capture.get('node') or 'this node'} listened on "
                                    f"{capture.get('iface')} and caught no packet",
                                    table, capture, key))
    for route in table.of("default_route"):
        if fact_ids is not None and not set(route.get("derived_from", [])) & fact_ids:
            continue
        key = ("default_route", route.get("node"))
        items[key] = _item(route["because"], table, table[route["derived_from"][0]], key)
    for fact_type in ("gateway_of", "floating_ip", "ip_forward", "glance_unreachable", "glance_setting"):
        for fact in table.of(fact_type):
            if fact_ids is not None and not set(fact.get("derived_from", [])) & fact_ids:
                continue
            key = (fact_type, fact.get("node"), fact.get("address") or fact.get("host") or fact.get("for_node"))
            items.setdefault(key, _item(fact["because"], table, fact, key))
    for rule in table.of("iptables_rule"):
        if not wanted(rule) or rule.get("target") not in ("SNAT", "DNAT", "MASQUERADE"):
            continue
        if rule.get("to_address") and str(rule.get("destination")) == "169.254.169.254/32":
            continue  # the metadata service's redirect: not about the packet's path
        key = ("nat", rule.get("node"), rule.get("chain"), rule.get("source"), rule.get("destination"),
               rule.get("to_address"))
        source = rule.get("source") or "anywhere"
        destination = rule.get("destination") or "anywhere"
        to = f", to {rule['to_address']}" if rule.get("to_address") else ""
        items.setdefault(key, _item(f"{rule.get('node')} has a {rule['target']} rule in {rule.get('chain')}: "
                                    f"from {source} to {destination}{to}", table, rule, key))
    for chain in table.of("iptables_chain"):
        if not wanted(chain) or chain.get("chain") != "FORWARD" or not chain.get("policy"):
            continue
        key = ("forward_policy", chain.get("node"))
        items.setdefault(key, _item(f"{chain.get('node')}'s FORWARD chain policy is {chain['policy']}",
                                    table, chain, key))
    for entry in table.of("log_entry"):
        if not wanted(entry) or entry.get("level") not in ("ERROR", "CRITICAL"):
            continue
        message = " ".join(str(entry.get("message") or "").split())
        if len(message) > _MAX_LOG_MESSAGE:
            message = message[:_MAX_LOG_MESSAGE - 1] + "…"
        key = ("log", entry.get("node"), message)
        items.setdefault(key, _item(f"{entry.get('node') or 'the log'}: {entry.get('level')} "
                                    f"from {entry.get('logger') or 'a service'}: {message}", table, entry, key))
    for status in table.of("service_status"):
        if not wanted(status):
            continue
        key = ("service", status.get("node"), status.get("service"))
        state = "running" if status.get("running") else "not running"
        items[key] = _item(f"{status.get('service')} is {state} on {status.get('node')}", table, status, key)
    for fact in table.of("package"):
        if not wanted(fact):
            continue
        key = ("package", fact.get("node"), fact.get("name"))
        state = "installed" if fact.get("installed") else "not installed"
        items.setdefault(key, _item(f"{fact.get('name')} is {state} on {fact.get('node')}", table, fact, key))
    for option in table.of("config_option"):
        if not wanted(option):
            continue
        key = ("option", option.get("node"), option.get("path"), option.get("section"), option.get("key"))
        items[key] = _item(f"{option.get('path') or 'a config file'} on {option.get('node')} sets "
                           f"{option.get('key')} = {option.get('value')}", table, option, key)
    out = list(items.values())
    for item in out:
        item["key"] = "|".join(str(k) for k in item["key"])
    return out
