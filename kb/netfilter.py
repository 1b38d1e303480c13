"""netfilter as the kernel evaluates it: one table's chains, their rules compiled from
``iptables -L``/``iptables-save`` facts, and the first rule that decides a packet.

This is the one evaluator: the packet walk (kb/walk.py) and the facts the rules ask
about (kb/queries.py: which rule a packet meets in FORWARD, whether it is translated
at POSTROUTING) both call ``evaluate``, so the diagnosis and the walk cannot disagree.

    ruleset = node.tables["filter"]                      # a Ruleset (kb/netmodel.py)
    target, rule, path = evaluate(ruleset, "FORWARD", Packet("198.51.100.77",
                                  "203.0.113.80", "icmp", icmp_type=8),
                                  "br-mgmt", "wan0", frozenset({"NEW"}))
    # target None: no rule decided; the chain's policy does

Rules are indexed so that a lookup does not scan a 20,000-rule nat table: a rule that
matches one exact destination (nova's per-floating-IP DNAT) is filed under that address,
one that matches one exact source (its per-VM SNAT) under that source, the rest in a
"generic" list; ``Chain.candidates(src, dst)`` merges the three lists by rule position,
so the first rule that matches is the same one a linear scan would find.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from kb.addresses import ALL_ONES, address_int, network_ints

BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
MAX_CHAIN_DEPTH = 64     # deeper than any ruleset the kernel accepts
ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
NAT_TARGETS = {"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"}
FINAL_TARGETS = {"ACCEPT", "DROP", "REJECT"}
SOURCE_NAT = {"SNAT", "MASQUERADE", "NETMAP"}
DESTINATION_NAT = {"DNAT", "REDIRECT"}


@dataclass(frozen=True)
class Packet:
    """A packet as netfilter and routing see it."""
    src: str | None
    dst: str
    proto: str = "icmp"
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None

    @property
    def src_value(self):
        return address_int(self.src)

    @property
    def dst_value(self):
        return address_int(self.dst)

    def describe(self) -> str:
        if self.proto in ("tcp", "udp"):
            return f"{self.proto} {self.src}:{self.sport} > {self.dst}:{self.dport}"
        if self.proto == "icmp":
            kind = {ICMP_ECHO_REQUEST: "echo request", ICMP_ECHO_REPLY: "echo reply"}.get(
                self.icmp_type, f"type {self.icmp_type}")
            return f"icmp {kind} {self.src} > {self.dst}"
        return f"{self.proto} {self.src} > {self.dst}"

    def as_json(self) -> dict:
        return {"src": self.src, "dst": self.dst, "proto": self.proto,
                "sport": self.sport, "dport": self.dport}

    def reversed(self) -> "Packet":
        icmp = ICMP_ECHO_REPLY if self.icmp_type == ICMP_ECHO_REQUEST else self.icmp_type
        return Packet(self.dst, self.src, self.proto, self.dport, self.sport, icmp)


@dataclass
class PortMatch:
    """A rule's port test: port ranges, or anything outside them."""
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
    """An iptables rule as the kernel tests it, from its fact."""
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
    """A chain's rules, kept as the facts that printed them and compiled one by one when
    a packet first meets them: a walk through a 20,000-rule nat table compiles the few
    rules it looks at, not the table."""
    name: str
    policy: str | None = None
    policy_fact: dict | None = None
    references: int | None = None
    facts: list[dict] = field(default_factory=list)
    by_destination: dict[int, list[int]] = field(default_factory=dict)
    by_source: dict[int, list[int]] = field(default_factory=dict)
    generic: list[int] = field(default_factory=list)
    resolve: object = None          # host name -> frozenset of address values, or None
    _compiled: dict[int, Rule] = field(default_factory=dict)

    def add_fact(self, fact: dict) -> None:
        index = len(self.facts)
        self.facts.append(fact)
        destination = _exact_address(fact.get("destination"), fact.get("destination_negated"))
        if destination is not None:
            self.by_destination.setdefault(destination, []).append(index)
            return
        source = _exact_address(fact.get("source"), fact.get("source_negated"))
        if source is not None:
            self.by_source.setdefault(source, []).append(index)
        else:
            self.generic.append(index)

    def rule(self, index: int) -> Rule:
        rule = self._compiled.get(index)
        if rule is None:
            rule = compile_rule(self.facts[index], index)
            if self.resolve is not None:
                for side in (rule.source, rule.destination):
                    if side.unresolved is not None:
                        values = self.resolve(side.unresolved)
                        if values is not None:
                            side.host_values, side.unresolved = values, None
            self._compiled[index] = rule
        return rule

    @property
    def rules(self) -> list[Rule]:
        return [self.rule(i) for i in range(len(self.facts))]

    def targets(self) -> set[str]:
        return {str(f.get("target") or "") for f in self.facts}

    def candidates(self, src: int | None, dst: int | None):
        """The rules that could match a packet from src to dst, in chain order. Every
        rule left out names another exact source or destination, so it cannot match."""
        by_dst = self.by_destination.get(dst, ()) if dst is not None else ()
        by_src = self.by_source.get(src, ()) if src is not None else ()
        if not by_dst and not by_src:
            return (self.rule(i) for i in self.generic)
        return (self.rule(i) for i in heapq.merge(self.generic, by_dst, by_src))


def _exact_address(text, negated) -> int | None:
    """The one address a rule's side names (``10.0.0.5`` or ``10.0.0.5/32``), else None."""
    if negated or not isinstance(text, str):
        return None
    return address_int(text[:-3] if text.endswith("/32") else text)


@dataclass
class Ruleset:
    """One table of one node, from one listing."""
    table: str
    command: str
    chains: dict[str, Chain] = field(default_factory=dict)


def orphan_chains(ruleset: Ruleset) -> list[str]:
    """User chains the listing says are referenced (``(1 references)``) but that no shown
    rule jumps to: the listing was cut, or a jump was left out of it."""
    jumped = set().union(*(chain.targets() for chain in ruleset.chains.values()))
    builtin = set(BUILTIN_CHAINS.get(ruleset.table, ()))
    return [name for name, chain in ruleset.chains.items()
            if name not in builtin and name not in jumped and (chain.references or 0) > 0]




def compile_rule(fact: dict, position: int = 0) -> Rule:
    protocol = str(fact.get("protocol") or "all")
    negated = protocol.startswith("!")
    protocol = protocol.lstrip("!").strip()
    states = fact.get("ctstate")
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



# --- first-match evaluation of one hook --------------------------------------------

def evaluate(ruleset, chain_name, packet, in_iface, out_iface, states, misses=None,
             on_problem=None):
    """The first rule that decides a packet in ``chain_name`` of ``ruleset``, following
    jumps into user chains and RETURNs as iptables does.

    Returns (target, rule, path): target is ACCEPT/DROP/REJECT or a NAT target, or None
    when the chain ran out (the caller applies the policy); path is the jump rules taken
    and then the deciding rule. Non-terminating targets (LOG, MARK ...) are passed by.
    A jump back into a chain being walked (a loop, which the kernel itself refuses) is
    reported through ``on_problem`` and not taken. ``misses`` collects NAT rules that
    fail on nothing but an interface - the reason a translation did not happen."""
    path: list[Rule] = []
    active: list[str] = []

    def run(name, depth):
        chain = ruleset.chains.get(name)
        if chain is None:
            return None, None
        active.append(name)
        try:
            for rule in chain.candidates(packet.src_value, packet.dst_value):
                why = rule.mismatch(packet, in_iface, out_iface, states)
                if why is not None:
                    if misses is not None and rule.target in NAT_TARGETS and \
                            (why.startswith("it leaves by") or why.startswith("it arrived by")):
                        misses.append((rule, why))
                    continue
                if rule.unknown_match and on_problem:
                    on_problem(f"{printed(rule.fact)}: the match '{rule.unknown_match}' cannot be "
                               f"checked from the evidence; taken as matching")
                target = rule.target
                if target in FINAL_TARGETS or target in NAT_TARGETS:
                    path.append(rule)
                    return target, rule
                if target == "RETURN":
                    return "RETURN", rule
                if target in ruleset.chains:
                    if target in active or depth >= MAX_CHAIN_DEPTH:
                        if on_problem:
                            on_problem(f"{printed(rule.fact)} jumps back into {target}, a chain "
                                       f"loop the kernel would refuse; the jump is not taken")
                        continue
                    path.append(rule)
                    verdict, decider = run(target, depth + 1)
                    if verdict is not None and verdict != "RETURN":
                        return verdict, decider
                    path.pop()
                    continue
                if target not in _PASSING_TARGETS and on_problem and target:
                    on_problem(f"{printed(rule.fact)} jumps to {target}, a chain not in the "
                               f"listing; taken as returning without a verdict")
            return None, None
        finally:
            active.pop()

    verdict, decider = run(chain_name, 0)
    if verdict == "RETURN":
        verdict, decider = None, None
    return verdict, decider, list(path)


_PASSING_TARGETS = {"LOG", "MARK", "CONNMARK", "CHECKSUM", "TCPMSS", "TOS", "DSCP", "TTL",
                    "NOTRACK", "CT", "ULOG", "NFLOG", "AUDIT", "CLASSIFY", "TRACE", "SET"}



def printed(fact: dict | None) -> str:
    """A rule, policy or route as the evidence printed it."""
    if not fact:
        return "(not shown)"
    prov = fact.get("prov") or {}
    text = prov.get("text")
    if text:
        return f"'{' '.join(text.split())}'"
    return f"'{fact.get('chain')} {fact.get('target') or fact.get('policy')}'"

