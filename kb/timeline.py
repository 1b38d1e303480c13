"""A transcript is a timeline: a change on a node makes earlier evidence about the
thing it changed stale. Later evidence wins.

Order is known inside one source (a file, a paste), and between sources only where
the evidence says in which order they were written (``source_order``: a chat's
messages, one after another). Two files in a directory have no order between them, so
a change in one never makes the other stale.

    sed -i ... /etc/nova/nova.conf     -> earlier options read from that file
    service nova-network restart       -> earlier status of nova-network, the iptables
                                          rules in its chains (it rewrites them), and
                                          its log's earlier entries (they tell of the
                                          process that was stopped)
    iptables -A/-D/-F/-P ... [-t T]    -> earlier rules and chains of table T
    route add/del, ip route add ...    -> earlier routes
    ip addr add, ifconfig X ADDR       -> earlier addresses, interfaces and routes
    sysctl -w K=V                      -> earlier value of K
    apt-get install P                  -> earlier package state of P
    iptables -L / -S, iptables-save    -> an earlier listing of the same chain
"""
from __future__ import annotations

from itertools import compress, groupby, repeat
from operator import eq, itemgetter

from kb.services import canonical_service, service_for_log

# iptables truncates nova's wrapped chain prefix (the binary name) to 16 characters.
_CHAIN_PREFIX_LENGTH = 16


def stale_facts(facts: list[dict], source_order=()) -> dict[int, dict]:
    """fact index -> the state_change fact that made it stale. ``source_order`` lists
    sources in the order they were written, where that is known (a chat's messages)."""
    # a change only makes its own node's evidence stale: a folder of a thousand nodes
    # compares each fact with its node's changes, not with every change
    changes: dict = {}
    types = list(map(_TYPE, facts))      # by C code: a large nat table lists 20,000 rules
    if "state_change" in types:
        for fact in compress(facts, map(eq, types, repeat("state_change"))):
            changes.setdefault(_node_key(fact.get("node")), []).append(fact)
    stale: dict[int, dict] = {}
    position = {source: number for number, source in enumerate(source_order)}
    if changes:
        for index, fact in enumerate(facts):
            if fact["type"] == "state_change":
                continue
            prov = fact.get("prov") or {}
            for change in changes.get(_node_key(fact.get("node")), ()):
                if _comes_after(change["prov"], prov, position) and _affects(change, fact):
                    stale[index] = change
                    break
    _relisted(facts, types, position, stale)
    return stale


def _relisted(facts: list[dict], types: list[str], position: dict, stale: dict[int, dict]) -> None:
    """A chain listed again (iptables -L, -S, iptables-save) is the chain as it is by
    then: the earlier listing's header and rules of that chain are stale. (Each listing
    prints a chain's header before its rules; a transcript that shows the nat table a
    hundred times holds one nat table, not a hundred copies of every rule.)"""
    # the headers and rules (``types``: each fact's), found by C code
    listed = list(compress(range(len(facts)), map(_LISTED.__contains__, types)))
    latest: dict[tuple, dict] = {}       # (node, table, chain) -> source -> its last header
    for index in listed:
        fact = facts[index]
        if fact["type"] == "iptables_chain":
            prov = fact.get("prov") or {}
            by_source = latest.setdefault(_chain_key(fact), {})
            known = by_source.get(prov.get("source"))
            if known is None or (prov.get("line") or 0) >= (known["prov"].get("line") or 0):
                by_source[prov.get("source")] = fact
    if not latest:
        return
    # per chain: (header, its source, its line) of each source's last listing of it
    headers_of = {key: [(header, header["prov"].get("source"), header["prov"].get("line") or 0)
                        for header in by_source.values()]
                  for key, by_source in latest.items()}
    listings: dict[tuple, dict] = {}
    # A listing prints a chain's header, then its rules: one run of facts of that chain,
    # judged at once where no header of the chain comes after any of them (a chain
    # listed once), else fact by fact.
    for key, run in _chain_runs(facts, listed):
        try:
            headers = headers_of.get(key)
        except TypeError:
            headers = headers_of.get(_chain_key(facts[run[0]]))
        if headers is None:
            continue
        # a run that an earlier listing printed is seen to be so at its first fact; a
        # short one (a lab's few rules per chain) costs less fact by fact than judged whole
        first = facts[run[0]].get("prov") or _NO_PROVENANCE
        if len(run) >= _RUN_JUDGED_WHOLE and not _after(headers, first) and _none_after(
                headers, [facts[index].get("prov") or _NO_PROVENANCE for index in run], position):
            continue
        for index in run:
            fact = facts[index]
            prov = fact.get("prov") or {}
            source, line = prov.get("source"), prov.get("line") or 0
            for header, header_source, header_line in headers:
                if header is fact or not (header_line > line if header_source == source
                                          else _comes_after(header["prov"], prov, position)):
                    continue
                if index not in stale:
                    where = (_node_key(header.get("node")), header_source, header["prov"]["command"])
                    stale[index] = listings.setdefault(where, {
                        "type": "state_change", "change": "listing", "target": header.get("table"),
                        "node": header.get("node"), "prov": header["prov"]})
                break


def _chain_runs(facts: list[dict], listed: list[int]):
    """(node, table, chain) and the indices of each run of facts of it, in order."""
    try:
        keys = [_CHAIN_OF(facts[index]) for index in listed]
    except KeyError:      # a fact without one of them (made by hand)
        keys = [(facts[i].get("node"), facts[i].get("table"), facts[i].get("chain")) for i in listed]
    for key, run in groupby(zip(keys, listed), key=_FIRST):
        yield key, list(map(_SECOND, run))


def _after(headers: list[tuple], prov: dict) -> bool:
    """Whether a header comes later in the source that printed ``prov``."""
    source, line = prov.get("source"), prov.get("line") or 0
    for _, header_source, header_line in headers:
        if header_source == source and header_line > line:
            return True
    return False


def _none_after(headers: list[tuple], provs: list[dict], position: dict) -> bool:
    """Whether no header comes after any fact of a run (their provenances), when the
    run was printed in one source (else False: the caller looks fact by fact)."""
    sources = set(map(dict.get, provs, repeat("source")))
    lines = list(map(dict.get, provs, repeat("line")))
    if len(sources) != 1 or None in lines:
        return False
    source, first = sources.pop(), min(lines)
    for header, header_source, header_line in headers:
        if header_source == source:
            if header_line > first:
                return False
        elif _comes_after(header["prov"], provs[0], position):
            return False
    return True


_NO_PROVENANCE: dict = {}
_RUN_JUDGED_WHOLE = 32
_TYPE, _FIRST, _SECOND = itemgetter("type"), itemgetter(0), itemgetter(1)
_CHAIN_OF = itemgetter("node", "table", "chain")


_LISTED = {"iptables_rule", "iptables_chain"}


def _chain_key(fact: dict) -> tuple:
    return _node_key(fact.get("node")), _node_key(fact.get("table")), _node_key(fact.get("chain"))


def _node_key(node):
    """A node's name as a dict key (a malformed fact may hold a list there)."""
    try:
        hash(node)
    except TypeError:
        return repr(node)
    return node


def _comes_after(change: dict, prov: dict, position: dict) -> bool:
    if change["source"] == prov.get("source"):
        return (change["line"] or 0) > (prov.get("line") or 0)
    later, earlier = position.get(change["source"]), position.get(prov.get("source"))
    return later is not None and earlier is not None and later > earlier


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
        if fact_type == "log_entry":
            service = service_for_log(fact.get("path"))
            return service is not None and service == canonical_service(target)
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
