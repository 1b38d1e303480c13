"""A transcript is a timeline: a change on a node makes earlier evidence about the
thing it changed stale. Later evidence wins.

Order is known only inside one source (a file, a paste): two files in a directory
have no order between them, so a change in one never makes the other stale.

    sed -i ... /etc/nova/nova.conf     -> earlier options read from that file
    service nova-network restart       -> earlier status of nova-network, and the
                                          iptables rules in its chains (it rewrites them)
    iptables -A/-D/-F/-P ... [-t T]    -> earlier rules and chains of table T
    route add/del, ip route add ...    -> earlier routes
    ip addr add, ifconfig X ADDR       -> earlier addresses, interfaces and routes
    sysctl -w K=V                      -> earlier value of K
    apt-get install P                  -> earlier package state of P
"""
from __future__ import annotations

from kb.services import canonical_service

# iptables truncates nova's wrapped chain prefix (the binary name) to 16 characters.
_CHAIN_PREFIX_LENGTH = 16


def stale_facts(facts: list[dict]) -> dict[int, dict]:
    """fact index -> the state_change fact that made it stale."""
    changes = [(i, f) for i, f in enumerate(facts) if f["type"] == "state_change"]
    stale: dict[int, dict] = {}
    if not changes:
        return stale
    for index, fact in enumerate(facts):
        if fact["type"] == "state_change":
            continue
        prov = fact.get("prov") or {}
        for _, change in changes:
            change_prov = change["prov"]
            if (change_prov["source"] == prov.get("source")
                    and change.get("node") == fact.get("node")
                    and (change_prov["line"] or 0) > (prov.get("line") or 0)
                    and _affects(change, fact)):
                stale[index] = change
                break
    return stale


def _affects(change: dict, fact: dict) -> bool:
    kind, target, fact_type = change["change"], change.get("target"), fact["type"]
    if kind == "config":
        return fact_type == "config_option" and fact.get("path") == target
    if kind == "service":
        if fact_type == "service_status":
            return canonical_service(fact.get("service")) == canonical_service(target)
        if fact_type in {"iptables_rule", "iptables_chain"}:
            prefix = (target or "")[:_CHAIN_PREFIX_LENGTH] + "-"
            return str(fact.get("chain", "")).startswith(prefix)
        return False
    if kind == "iptables":
        return fact_type in {"iptables_rule", "iptables_chain"} and (
            target is None or fact.get("table") == target)
    if kind == "routes":
        return fact_type == "route"
    if kind == "addresses":
        return fact_type in {"address", "interface"}
    if kind == "sysctl":
        return fact_type == "sysctl" and (target is None or fact.get("key") == target)
    if kind == "packages":
        return fact_type == "package" and fact.get("name") == target
    return False
