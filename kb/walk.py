"""Walk a packet and its reply through a lab, hop by hop, as the kernels would.

Given the facts of a lab (a kb.facts.FactTable) and a packet - source, destination,
protocol, port - the walk follows the packet from the node that sends it (or where it
enters) to where it ends, and then the reply back:

* on each node the netfilter hooks in the kernel's order: raw and mangle where shown,
  nat PREROUTING (new connections only), the routing decision (local addresses, then the
  longest-prefix route), filter INPUT or (with ``ip_forward``) filter FORWARD, nat
  POSTROUTING; for a packet the node sends itself the route first, then the OUTPUT
  chains; user chains are entered and left by RETURN, the first matching rule decides,
  else the chain's policy;
* DNAT, SNAT, MASQUERADE and REDIRECT rewrite the packet and are remembered per node, so
  the reply is translated back (conntrack) instead of walking the nat table again;
* the next hop (the route's gateway, or the destination itself on a connected network)
  leads to the node that holds that address. A next hop nobody in the evidence holds is
  the edge of the lab: a packet with a non-global source leaving there gets no reply; one
  with a global source is assumed answered, and the reply walked back in.

Every step names the rule, policy, route or address that decided it (``fact_ids``, and
``evidence``: the printed lines), and says in the lab's own names what happened.
Where a node's table or setting was not in the evidence, the step says what was assumed.

    from kb.walk import walk
    result = walk(table, "10.20.4.5", "203.0.113.80", proto="icmp")
    result.verdict      # "delivered" | "dropped" | "no-route" | "private-source-leaves" | "reply-lost"
                        # | "insufficient-info": it gets through only if what was not shown lets it
    result.node         # where it went wrong (None when delivered)
    result.observation  # what a probe of this very packet printed, if the evidence has one
    for step in result.steps:
        print(step.node, step.stage, step.text)

For example, evidence from a network node ``net01`` alone, whose nova SNAT rules name
``-o ens4`` while its default route leaves by ``ens3``: the VM's ping enters net01 by its
bridge (assumed: the VM is not in the evidence), and at nat POSTROUTING gets the step::

    not translated: '-A nova-network-float-snat -s 10.20.4.5/32 -o ens4 -j SNAT
    --to-source 198.51.100.77' in nova-network-float-snat would SNAT 10.20.4.5 to
    198.51.100.77, but it leaves by ens3, rule wants ens4

then leaves the lab towards 10.20.0.1 with source 10.20.4.5: ``private-source-leaves``
at net01.

Observations outrank assumptions. When the evidence holds what a probe of this very
packet printed - ``ping`` or ``nc -v`` run on the sending node, to the same destination,
protocol and port (a ``reachability`` fact) - the walk sets it beside its verdict: the
observation *confirms* the walk, or *contradicts* it, and then the walk names what its
verdict rested on (the rule or route that decided it, and every assumption it made), one
of which the observation refutes. The verdict itself stays what the tables say, so the
two can be read side by side; the probe's last run counts (later evidence wins).

Rule files match walks as ``walk_verdict`` facts, which kb/queries.py computes by this
walk for the floating IPs the rules ask about.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from kb.addresses import address_int, is_global
from kb.facts import FactTable
from kb.netfilter import (BUILTIN_CHAINS, DESTINATION_NAT, ICMP_ECHO_REQUEST,  # noqa: F401
                          NAT_TARGETS, Packet, Rule, evaluate, orphan_chains, printed)
# Packet and evaluate are re-exported: a walk's callers build packets and may evaluate one
# chain (tests/test_walk_properties.py)
from kb.netmodel import NetModel, NodeModel, Route, build_model

VERDICTS = ("delivered", "dropped", "no-route", "private-source-leaves", "reply-lost",
            "insufficient-info")
MAX_HOPS = 32            # a routing loop ends here, as the TTL would end it
EPHEMERAL_PORT = 40000   # the client's source port, which no evidence shows


class WalkError(ValueError):
    """The packet cannot be placed in the lab (an address that is no address, or no
    node in the evidence that sends it or could receive it)."""


@dataclass
class Step:
    """One step of a walk: what a node did with the packet or its reply, and why."""
    direction: str            # "packet" or "reply"
    node: str | None
    stage: str                # "route", "nat POSTROUTING", "filter FORWARD", "next hop" ...
    text: str
    packet: Packet
    fact_ids: list[int] = field(default_factory=list)
    assumed: bool = False
    evidence: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"direction": self.direction, "node": self.node, "stage": self.stage,
                "text": self.text, "packet": self.packet.as_json(), "assumed": self.assumed,
                "evidence": self.evidence}


@dataclass
class WalkResult:
    """A walk's verdict, the steps that led to it and the assumptions it rests on."""
    verdict: str
    node: str | None
    summary: str
    steps: list[Step]
    assumptions: list[str]
    packet: Packet
    fact_ids: list[int] = field(default_factory=list)   # what decided the verdict
    observation: "Observation | None" = None

    def as_json(self) -> dict:
        out = {"verdict": self.verdict, "node": self.node, "summary": self.summary,
               "packet": self.packet.as_json(), "assumptions": self.assumptions,
               "steps": [s.as_json() for s in self.steps]}
        if self.observation is not None:
            out["observation"] = self.observation.as_json()
        return out


@dataclass
class Observation:
    """What a probe of the walked packet printed, set beside the walk's verdict."""
    tool: str                 # ping, nc ...
    outcome: str              # answered | no-answer | refused | unreachable
    agrees: bool              # the observation confirms the walk's verdict
    text: str                 # in words: what was observed, and what it says of the walk
    rested_on: list[str]      # what the verdict rested on, when the observation refutes it
    fact_id: int
    evidence: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"tool": self.tool, "outcome": self.outcome,
                "verdict": "confirms" if self.agrees else "contradicts", "text": self.text,
                "rested_on": self.rested_on, "evidence": self.evidence}


@dataclass
class _End:
    """Where one direction of the walk stopped."""
    kind: str                 # delivered | dropped | no-route | edge | absent-host | loop
    node: str | None
    packet: Packet
    dev: str | None = None
    via: str | None = None
    fact_ids: list[int] = field(default_factory=list)
    reason: str = ""


@dataclass
class _Connection:
    """What one node's conntrack remembers: the packet as it came and as it left."""
    before: Packet
    after: Packet


@dataclass
class _HookResult:
    """What one netfilter hook did with a packet: accepted or not, and by which rule."""
    accepted: bool
    decider: dict | None
    nat_rule: Rule | None = None


# --- the public entry points ---------------------------------------------------------

def walk(table: FactTable, source: str, destination: str, proto: str = "icmp",
         port: int | None = None, node: str | None = None,
         model: NetModel | None = None) -> WalkResult:
    """Follow a packet from ``source`` (an address, or the name of a node that sends it
    with the address its route picks) to ``destination``, and its reply back.

    ``node`` names the node where the packet starts when the evidence cannot tell.
    Raises WalkError when the packet cannot be placed in the lab."""
    model = model or build_model(table)
    walker = _Walker(table, model)
    return walker.run(source, destination, proto, port, node)


# --- the walker ----------------------------------------------------------------------

class _Walker:
    def __init__(self, table: FactTable, model: NetModel):
        self.table = table
        self.model = model
        self.steps: list[Step] = []
        self.assumptions: list[str] = []
        self.connections: dict[str, list[_Connection]] = {}
        self.direction = "packet"
        self.untranslated: list[str] = []
        self.sent_by: tuple | None = None   # (node, route, destination) of the last hop
        self.chosen_source: str | None = None  # when a node was named as the sender
        self.unshown: list[tuple[str, str]] = []  # (node, what) the packet passed unseen

    # -- recording ----------------------------------------------------------------
    def step(self, node, stage, text, packet, facts=(), assumed=False) -> None:
        ids = [f["fact_id"] for f in facts if f and "fact_id" in f]
        self.steps.append(Step(self.direction, node, stage, text, packet, ids, assumed))

    def assume(self, node, stage, text, packet) -> None:
        if text not in self.assumptions:
            self.assumptions.append(text)
        self.step(node, stage, "assumed: " + text, packet, assumed=True)

    def assume_unshown(self, node, stage, text, packet) -> None:
        """An assumption about a table or setting of a node the packet passes that the
        evidence did not show: a delivery that rests on one is not a delivery seen."""
        if (node, text) not in self.unshown:
            self.unshown.append((node, text))
        self.assume(node, stage, text, packet)

    # -- the whole walk -------------------------------------------------------------
    def run(self, source, destination, proto, port, node) -> WalkResult:
        proto = (proto or "icmp").lower()
        if address_int(destination) is None:
            raise WalkError(f"{destination!r} is not an IPv4 address")
        icmp_type = ICMP_ECHO_REQUEST if proto == "icmp" else None
        sport = EPHEMERAL_PORT if proto in ("tcp", "udp") else None
        dport = port if proto in ("tcp", "udp") else None
        if address_int(source) is None and source not in self.model.nodes:
            raise WalkError(f"{source!r} is neither an IPv4 address nor a node in the evidence")
        start_node, in_iface, local = self._place(source, destination, node)
        packet = Packet(source if address_int(source) is not None else None, destination, proto,
                        sport, dport, icmp_type)
        first = self._travel(packet, start_node, in_iface, local)
        original = replace(packet, src=packet.src or self.chosen_source)
        verdict, where, summary, facts = self._judge(first, original)
        if verdict == "delivered" and self.unshown:
            # every assumption lets the packet pass: a failure found despite them stands,
            # a delivery found thanks to them is not known (Batfish's INSUFFICIENT_INFO)
            verdict, where = "insufficient-info", self.unshown[0][0]
            summary += (", but only if what the evidence did not show lets it: "
                        + "; ".join(text for _, text in self.unshown))
        if verdict != "delivered" and self.untranslated:
            summary += " (not translated: " + "; ".join(dict.fromkeys(self.untranslated)) + ")"
        self._fill_evidence()
        observation = self._observation(start_node if local else None, original, verdict, where,
                                        facts)
        return WalkResult(verdict, where, summary, self.steps, self.assumptions, original, facts,
                          observation)

    # -- what was observed ------------------------------------------------------------
    def _observation(self, sender, packet: Packet, verdict, where, decided_by) -> Observation | None:
        """The last probe of this very packet the sender ran, judged against the verdict."""
        if sender is None:
            return None
        probes = [f for f in self.table.of("reachability", sender)
                  if f.get("target") == packet.dst and f.get("protocol") == packet.proto
                  and (packet.proto != "tcp" or _same_port(f.get("port"), packet.dport))]
        if not probes:
            return None
        probe = probes[-1]
        outcome = str(probe.get("outcome"))
        deciders = self._facts(decided_by)
        rejected = verdict == "dropped" and any(str(f.get("target")) == "REJECT" for f in deciders)
        gets_through = verdict in ("delivered", "insufficient-info")
        agrees = {"answered": gets_through, "refused": gets_through or rejected,
                  "no-answer": not gets_through, "unreachable": not gets_through}.get(outcome)
        if agrees is None:
            return None
        line = (probe.get("prov") or {})
        where = f" ({line.get('source')}:{line.get('line')})" if line.get("source") else ""
        said = {"answered": "got answers", "refused": "was refused (the host answered)",
                "no-answer": "got no answer", "unreachable": "was told it is unreachable"}[outcome]
        seen = (f"{probe.get('tool')} {probe.get('target')}"
                + (f" port {probe.get('port')}" if probe.get("port") else "")
                + f" on {sender} {said}: {probe.get('detail')}{where}")
        rested_on: list[str] = []
        if agrees:
            text = f"confirmed by an observation: {seen}"
            if verdict == "insufficient-info" and outcome in ("answered", "refused"):
                text += "; so what the evidence did not show does let it through"
        else:
            sender_route = self.sent_by[1] if self.sent_by and self.sent_by[0] != where else None
            if verdict in ("reply-lost", "no-route") and sender_route is not None \
                    and sender_route.is_default and sender_route.fact is not None:
                # the hop that sent it where it was lost decided as much as the loss did
                deciders = [sender_route.fact] + deciders
            if gets_through:
                deciders = []     # what it was delivered to decided nothing: the assumptions did
            rested_on = [f"{printed(f)} on {f.get('node')}" for f in deciders if f.get("prov")]
            # what the lab's edge and the nodes not shown were taken to do, first
            first = [s.text.removeprefix("assumed: ") for s in self.steps
                     if s.assumed and s.stage in ("outside", "start")] + [t for _, t in self.unshown]
            rested_on += [f"assumed: {text}" for text in dict.fromkeys(
                [t for t in first if t in self.assumptions] + self.assumptions)]
            shown = [f.get("prov") for f in deciders if f.get("prov")]
            earlier = bool(shown) and all(p.get("source") == line.get("source") and
                                          (line.get("line") or 0) < (p.get("line") or 0) for p in shown)
            what = (": " + "; ".join(rested_on) if rested_on else
                    " (it names no assumption: the evidence of some node is stale or missing)")
            if earlier:
                # printed before the tables that decided the walk: the lab may have changed
                text = (f"contradicted by an earlier observation: {seen}. It was printed before "
                        f"what decided the walk, so the lab may have changed since; if it has "
                        f"not, something the walk rested on is not so{what}")
            else:
                text = (f"contradicted by an observation: {seen}. The observation outranks the "
                        f"walk: something the walk rested on is not so{what}")
        return Observation(str(probe.get("tool")), outcome, agrees, text, rested_on,
                           probe["fact_id"], self.table.evidence([probe["fact_id"]]))

    def _place(self, source, destination, node) -> tuple[str, str | None, bool]:
        """The node the packet starts on, the interface it enters by (None when the node
        sends it itself), and whether the node sends it itself."""
        nodes = self.model.nodes
        if node is not None:
            if node not in nodes:
                raise WalkError(f"no evidence from a node named {node!r}")
            if source == node or nodes[node].holds(address_int(source)):
                return node, None, True
            route = nodes[node].lookup_route(address_int(source))
            iface = route.dev if route is not None and not route.via else None
            return node, iface, False
        if source in nodes:
            return source, None, True
        owners = self.model.owners_of(source)
        if owners:
            name, iface, fact = owners[0]
            return name, None, True
        # Behind a node's connected network (a VM's fixed address behind the network
        # node's bridge): the most specific network wins, then a node that forwards.
        holder = self._connected_holder(source)
        if holder is not None:
            name, route = holder
            self.assume(name, "start", f"{source} is not a node in the evidence; it is on "
                        f"{name}'s network {route.destination} ({route.dev}), so its packets "
                        f"enter {name} by {route.dev}", Packet(source, destination))
            return name, route.dev, False
        # From beyond the lab: it enters where the destination lives.
        owners = self.model.owners_of(destination)
        if owners:
            name, iface, fact = owners[0]
            self.assume(name, "start", f"{source} is outside the evidence; its packet is taken "
                        f"to reach {name} by {iface}, where {destination} is", Packet(source, destination))
            return name, iface, False
        holder = self._connected_holder(destination)
        if holder is not None:
            name, route = holder
            self.assume(name, "start", f"{source} is outside the evidence; its packet is taken "
                        f"to reach {name} by {route.dev}, whose network {route.destination} "
                        f"holds {destination}", Packet(source, destination))
            return name, route.dev, False
        raise WalkError(f"no node in the evidence holds {source} or {destination}, or has "
                        f"either on a connected network")

    def _connected_holder(self, address) -> tuple[str, Route] | None:
        value = address_int(address)
        best = None
        for name, node in sorted(self.model.nodes.items()):
            for route in node.routes:
                if route.via or route.is_default or (value & route.mask) != route.network:
                    continue
                key = (route.prefixlen, bool(node.ip_forward))
                if best is None or key > best[0]:
                    best = (key, (name, route))
        return best[1] if best else None

    def _judge(self, first: _End, original: Packet):
        """Turn where the packet (and then its reply) ended into a verdict."""
        if first.kind in ("dropped", "loop"):
            return "dropped", first.node, first.reason, first.fact_ids
        if first.kind == "no-route":
            return "no-route", first.node, first.reason, first.fact_ids
        reply_start = first.packet.reversed()
        if first.kind == "edge":
            if not is_global(first.packet.src):
                reason = (f"{first.node} sends {first.packet.describe()} to {first.via} by "
                          f"{first.dev}, out of the lab, with the non-global source "
                          f"{first.packet.src}: nobody outside routes a reply back to it")
                self.step(first.node, "verdict", reason, first.packet, self._facts(first.fact_ids))
                return "private-source-leaves", first.node, reason, first.fact_ids
            self.assume(first.node, "outside", f"the network beyond {first.via} delivers "
                        f"{first.packet.dst} and answers the global address {first.packet.src}",
                        first.packet)
        elif first.kind == "absent-host":
            self.assume(first.node, "outside", f"{first.packet.dst} is on {first.node}'s "
                        f"{first.dev} network but in no evidence; it is taken to answer",
                        first.packet)
        self.direction = "reply"
        if first.kind == "delivered":
            second = self._travel(reply_start, first.node, None, True)
        else:
            second = self._travel(reply_start, first.node, first.dev, False)
        if second.kind == "delivered":
            summary = (f"{original.describe()} gets through, and so does its reply "
                       f"{second.packet.describe()}")
            return "delivered", None, summary, second.fact_ids
        if second.kind in ("edge", "absent-host") and not self.model.owners_of(original.src) \
                and second.packet.dst == original.src:
            self.assume(second.node, "outside", f"the reply reaches {original.src}, which lies "
                        f"beyond {second.node}'s {second.dev}", second.packet)
            return "delivered", None, f"{original.describe()} gets through, and so does its reply", \
                second.fact_ids
        reason = second.reason or (f"the reply {second.packet.describe()} leaves {second.node} by "
                                   f"{second.dev} towards {second.via}, away from {original.src}")
        return "reply-lost", second.node, "reply lost: " + reason, second.fact_ids

    # -- one direction ----------------------------------------------------------------
    def _travel(self, packet: Packet, node: str, in_iface: str | None, local: bool) -> _End:
        self.sent_by = None
        seen = set()
        for _ in range(MAX_HOPS):
            key = (node, in_iface, packet, local)
            if key in seen:
                break
            seen.add(key)
            outcome = self._through(node, in_iface, packet, local)
            if isinstance(outcome, _End):
                return outcome
            node, in_iface, packet = outcome
            local = False
        reason = f"{packet.describe()} goes round in a loop that passes {node} again"
        self.step(node, "loop", reason, packet)
        return _End("loop", node, packet, reason=reason)

    def _through(self, name: str, in_iface: str | None, packet: Packet, local: bool):
        """One node: returns an _End, or (next node, its interface, packet) to go on."""
        node = self.model.nodes[name]
        connection = self._tracked(name, packet) if self.direction == "reply" else None
        new = self.direction == "packet" or (connection is None and packet.proto != "icmp")
        states = self._states(connection, new)
        before = packet

        if not local:
            for table_name in ("raw", "mangle"):
                result = self._hook(node, table_name, "PREROUTING", packet, in_iface, None, states)
                if not result.accepted:
                    return self._dropped(name, packet, result, f"{table_name} PREROUTING")
            if new:
                result = self._hook(node, "nat", "PREROUTING", packet, in_iface, None, states)
                packet = self._apply_nat(node, result, packet, in_iface, None, "nat PREROUTING")
            elif connection is not None and connection.before.src != connection.after.src:
                packet = replace(packet, dst=connection.before.src, dport=connection.before.sport)
                self.step(name, "conntrack", f"conntrack on {name} knows this reply: it undoes the "
                          f"source translation, so it is now for {packet.dst}", packet)
            held = node.holds(packet.dst_value)
            if held is not None:
                return self._deliver(node, packet, in_iface, states, new, before, held)
            if node.ip_forward is None:
                self.assume_unshown(name, "ip_forward", f"net.ipv4.ip_forward on {name} was not shown; "
                            f"taken as on, since the packet reached it to be forwarded", packet)
            elif not node.ip_forward:
                reason = (f"{name} does not forward ({node.ip_forward_fact['prov']['text'] if node.ip_forward_fact.get('prov') else 'net.ipv4.ip_forward = 0'}): "
                          f"{packet.describe()} arriving by {in_iface} is not for {name}, so it is dropped"
                          + self._how_it_came(name))
                self.step(name, "ip_forward", reason, packet, [node.ip_forward_fact])
                return _End("dropped", name, packet, fact_ids=[node.ip_forward_fact["fact_id"]], reason=reason)
        route = self._route(node, packet)
        if isinstance(route, _End):
            return route
        out_iface = node.out_device(route)
        if local:
            if packet.src is None:
                packet = replace(packet, src=node.pick_source(out_iface, route.via or packet.dst, route))
                self.chosen_source = packet.src
                before = packet
                self.step(name, "source", f"{name} sends from {packet.src}, the address it picks "
                          f"for {out_iface}", packet, [route.fact] if route.fact else [])
            for table_name, chain in (("raw", "OUTPUT"), ("mangle", "OUTPUT")):
                result = self._hook(node, table_name, chain, packet, None, out_iface, states)
                if not result.accepted:
                    return self._dropped(name, packet, result, f"{table_name} OUTPUT")
            if new:
                result = self._hook(node, "nat", "OUTPUT", packet, None, out_iface, states)
                rewritten = self._apply_nat(node, result, packet, None, out_iface, "nat OUTPUT")
                if rewritten.dst != packet.dst:
                    packet = rewritten
                    held = node.holds(packet.dst_value)
                    if held is not None:
                        return self._deliver(node, packet, None, states, new, before, held)
                    route = self._route(node, packet)
                    if isinstance(route, _End):
                        return route
                    out_iface = node.out_device(route)
                packet = rewritten
            result = self._hook(node, "filter", "OUTPUT", packet, None, out_iface, states)
            if not result.accepted:
                return self._dropped(name, packet, result, "filter OUTPUT")
        else:
            for table_name in ("mangle", "filter"):
                result = self._hook(node, table_name, "FORWARD", packet, in_iface, out_iface, states)
                if not result.accepted:
                    return self._dropped(name, packet, result, f"{table_name} FORWARD")
        result = self._hook(node, "mangle", "POSTROUTING", packet, in_iface, out_iface, states)
        if not result.accepted:
            return self._dropped(name, packet, result, "mangle POSTROUTING")
        if new:
            if "DNAT" not in states and before.dst != packet.dst:
                states = states | {"DNAT"}
            result = self._hook(node, "nat", "POSTROUTING", packet, in_iface, out_iface, states,
                                explain_misses=True)
            packet = self._apply_nat(node, result, packet, in_iface, out_iface, "nat POSTROUTING")
        elif connection is not None and connection.before.dst != connection.after.dst:
            packet = replace(packet, src=connection.before.dst, sport=connection.before.dport)
            self.step(name, "conntrack", f"conntrack on {name} knows this reply: it undoes the "
                      f"destination translation, so it now comes from {packet.src}", packet)
        if self.direction == "packet":
            self.connections.setdefault(name, []).append(_Connection(before, packet))
        return self._next_hop(node, route, out_iface, packet)

    # -- pieces of a node -----------------------------------------------------------
    def _tracked(self, name, packet) -> _Connection | None:
        for connection in self.connections.get(name, ()):
            after = connection.after
            if packet.src == after.dst and packet.dst == after.src and packet.proto == after.proto \
                    and packet.sport == after.dport and packet.dport == after.sport:
                return connection
        return None

    @staticmethod
    def _states(connection, new) -> frozenset:
        if new and connection is None:
            return frozenset({"NEW"})
        if connection is None:
            return frozenset({"INVALID"})
        states = {"ESTABLISHED"}
        if connection.before.dst != connection.after.dst:
            states.add("DNAT")
        if connection.before.src != connection.after.src:
            states.add("SNAT")
        return frozenset(states)

    def _route(self, node: NodeModel, packet: Packet):
        route = node.lookup_route(packet.dst_value)
        if route is None:
            if not node.routes_shown:
                self.assume_unshown(node.name, "route", f"{node.name}'s routing table was not shown; only "
                            f"the networks of its addresses were used", packet)
            reason = f"{node.name} has no route to {packet.dst}" + self._how_it_came(node.name)
            self.step(node.name, "route", reason, packet)
            return _End("no-route", node.name, packet, reason=reason)
        which = "its default route" if route.is_default else f"its route to {route.destination}"
        if route.fact is None:
            text = (f"{node.name} reaches {packet.dst} on its connected network "
                    f"{route.destination} ({route.dev}), taken from its addresses")
        else:
            text = f"{node.name} routes {packet.dst} by {which}: " + printed(route.fact)
        if route.route_type in ("blackhole", "unreachable", "prohibit"):
            reason = f"{node.name}'s route for {packet.dst} is of type {route.route_type}"
            self.step(node.name, "route", reason, packet, [route.fact])
            kind = "dropped" if route.route_type == "blackhole" else "no-route"
            return _End(kind, node.name, packet, fact_ids=_ids([route.fact]), reason=reason)
        self.step(node.name, "route", text, packet, [route.fact] if route.fact else [])
        return route

    def _how_it_came(self, name) -> str:
        """When a packet dies where another node's default route sent it, that node had
        no route of its own for the address: say so, it is usually the thing to fix."""
        if self.sent_by is None or self.sent_by[0] == name or not self.sent_by[1].is_default:
            return ""
        sender, route, destination = self.sent_by
        return (f"; {sender} sent it here by its default route ({printed(route.fact)}), "
                f"having no route of its own for {destination}")

    def _deliver(self, node, packet, in_iface, states, new, before, held) -> _End:
        for table_name in ("mangle", "filter"):
            result = self._hook(node, table_name, "INPUT", packet, in_iface, None, states)
            if not result.accepted:
                return self._dropped(node.name, packet, result, f"{table_name} INPUT")
        if new:
            result = self._hook(node, "nat", "INPUT", packet, in_iface, None, states)
            packet = self._apply_nat(node, result, packet, in_iface, None, "nat INPUT")
        if self.direction == "packet":
            self.connections.setdefault(node.name, []).append(_Connection(before, packet))
        self.step(node.name, "delivered", f"{packet.dst} is an address of {node.name} "
                  f"({held.ifname}): {packet.describe()} is delivered to it", packet, [held.fact])
        return _End("delivered", node.name, packet, fact_ids=_ids([held.fact]))

    def _dropped(self, name, packet, result: _HookResult, where) -> _End:
        decider = result.decider or {}
        what = "its policy" if decider.get("type") == "iptables_chain" else "the rule"
        reason = f"{where} on {name} drops {packet.describe()} ({what}: {printed(decider)})"
        return _End("dropped", name, packet, fact_ids=_ids([decider]), reason=reason)

    def _next_hop(self, node: NodeModel, route: Route, out_iface, packet: Packet):
        hop = route.via or packet.dst
        owner = self.model.owner_of(hop, besides=node.name)
        self.sent_by = (node.name, route, packet.dst)
        if owner is not None:
            peer, iface, fact = owner
            self.step(node.name, "next hop", f"{node.name} sends it out of {out_iface} to {hop}, "
                      f"which {peer} holds on {iface}", packet, [fact])
            return peer, iface, packet
        kind = "edge" if route.via else "absent-host"
        self.step(node.name, "next hop", f"{node.name} sends it out of {out_iface} to {hop}, "
                  f"which no node in the evidence holds", packet)
        return _End(kind, node.name, packet, dev=out_iface, via=hop, fact_ids=_ids([route.fact]))

    # -- netfilter ------------------------------------------------------------------
    def _hook(self, node: NodeModel, table_name, chain_name, packet, in_iface, out_iface, states,
              explain_misses=False) -> _HookResult:
        stage = f"{table_name} {chain_name}"
        ruleset = node.tables.get(table_name)
        if ruleset is None:
            if table_name in ("filter", "nat"):
                self.assume_unshown(node.name, stage, f"{node.name}'s {table_name} table was not "
                                    f"shown; taken as empty, accepting everything", packet)
            return _HookResult(True, None)
        chain = ruleset.chains.get(chain_name)
        if chain is None:
            if chain_name in BUILTIN_CHAINS.get(table_name, ()):
                self._assume_once(node.name, stage, f"{node.name}'s {table_name} {chain_name} chain "
                                  f"was not in the listing ({ruleset.command}); taken as empty, "
                                  f"policy ACCEPT", packet)
            return _HookResult(True, None)
        misses: list[tuple[Rule, str]] = []
        verdict, rule, path = evaluate(ruleset, chain_name, packet, in_iface, out_iface, states,
                                       misses if explain_misses else None,
                                       on_problem=lambda text: self._assume_once(node.name, stage, text, packet))
        jumps = [r.fact for r in path]
        if verdict is None and table_name == "nat":
            verdict, rule, path = self._orphans(node, ruleset, stage, packet, in_iface, out_iface,
                                                states, misses if explain_misses else None)
        if verdict is None:
            accepted = (chain.policy or "ACCEPT") != "DROP" and chain.policy != "REJECT"
            if chain.policy is None:
                self._assume_once(node.name, stage, f"the policy of {node.name}'s {stage} was not "
                                  f"shown; taken as ACCEPT", packet)
            if not (table_name == "nat" and not misses and not jumps and accepted):
                text = (f"{stage} on {node.name}: no rule matches"
                        + (f" (through {' > '.join([chain_name] + [r.target for r in path])})" if path else "")
                        + f"; the policy {chain.policy or 'ACCEPT'} "
                        + ("accepts" if accepted else "drops") + f" {packet.describe()}")
                self.step(node.name, stage, text, packet, jumps + [chain.policy_fact])
            self._explain_misses(node.name, stage, misses, packet)
            return _HookResult(accepted, chain.policy_fact)
        if verdict in NAT_TARGETS:
            self._explain_misses(node.name, stage, misses, packet)
            return _HookResult(True, rule.fact, rule)
        accepted = verdict not in ("DROP", "REJECT")
        self.step(node.name, stage, f"{stage} on {node.name}: " + ("accepted" if accepted else "DROPPED")
                  + f" by {printed(rule.fact)}"
                  + (f" (reached through {' > '.join([chain_name] + [r.target for r in path[:-1]])})"
                     if len(path) > 1 else ""), packet, jumps)
        if not accepted:
            self._explain_misses(node.name, stage, misses, packet)
        return _HookResult(accepted, rule.fact)

    def _orphans(self, node, ruleset, stage, packet, in_iface, out_iface, states, misses):
        """A cut listing: chains that are referenced but that no shown rule reaches. Their
        NAT rules of this hook's kind are tried as if reached from here, and said so."""
        kinds = {"SNAT", "MASQUERADE", "NETMAP"} if stage.endswith(("POSTROUTING", "INPUT")) \
            else DESTINATION_NAT
        for name in orphan_chains(ruleset):
            targets = ruleset.chains[name].targets()
            if not targets & kinds and not any(t in ruleset.chains for t in targets):
                continue
            found: list = []
            verdict, rule, path = evaluate(ruleset, name, packet, in_iface, out_iface, states, found)
            found = [(r, why) for r, why in found if r.target in kinds]
            if verdict in kinds or found:
                self._assume_once(node.name, stage, f"{node.name}'s {ruleset.table} listing shows "
                                  f"{name} as referenced, but no rule shown jumps to it (the listing "
                                  f"looks cut); it is taken to be reached from {stage}", packet)
            if verdict in kinds:
                return verdict, rule, path
            if misses is not None:
                misses.extend(found)
        return None, None, []

    def _explain_misses(self, name, stage, misses, packet) -> None:
        for rule, why in misses[:3]:
            self.untranslated.append(f"at {name}, {rule.chain}'s {rule.target} to "
                                     f"{rule.fact.get('to_address')} did not apply: {why}")
            self.step(name, stage, f"not translated: {printed(rule.fact)} in {rule.chain} would "
                      f"{rule.target} {packet.src} to {rule.fact.get('to_address')}, but {why}",
                      packet, [rule.fact])

    def _assume_once(self, node, stage, text, packet) -> None:
        if text not in self.assumptions:
            self.assume(node, stage, text, packet)

    def _apply_nat(self, node: NodeModel, result: _HookResult, packet, in_iface, out_iface, stage) -> Packet:
        rule = result.nat_rule
        if rule is None:
            return packet
        target = rule.target
        fact = rule.fact
        to_address, to_port = _first_of(fact.get("to_address")), _port_of(fact.get("to_port"))
        if target in ("DNAT", "REDIRECT"):
            if target == "REDIRECT":
                held = [a for a in node.addresses if a.ifname == in_iface] or node.addresses
                to_address = held[0].address if held else "127.0.0.1"
            if not to_address:
                return packet
            changed = replace(packet, dst=to_address, dport=to_port or packet.dport)
            verb = f"rewrites the destination to {changed.dst}"
        else:
            if target == "MASQUERADE":
                to_address = node.pick_source(out_iface, packet.dst)
            if not to_address:
                self._assume_once(node.name, stage, f"{printed(fact)}: the address to translate "
                                  f"to is unknown; the packet is left as it was", packet)
                return packet
            changed = replace(packet, src=to_address, sport=to_port or packet.sport)
            verb = f"rewrites the source to {changed.src}"
        self.step(node.name, stage, f"{stage} on {node.name}: {printed(fact)} ({rule.chain}) "
                  f"{verb}", changed, [fact])
        return changed

    def _facts(self, ids) -> list[dict]:
        return [self.table[i] for i in ids if 0 <= i < len(self.table.facts)]

    def _fill_evidence(self) -> None:
        for step in self.steps:
            step.evidence = self.table.evidence(step.fact_ids) if step.fact_ids else []


# --- small helpers -----------------------------------------------------------------

def _ids(facts) -> list[int]:
    return [f["fact_id"] for f in facts if f and "fact_id" in f]


def _same_port(given, port) -> bool:
    try:
        return int(given) == int(port)
    except (TypeError, ValueError):
        return False


def _first_of(text) -> str | None:
    if not text:
        return None
    return str(text).split("-")[0].split(":")[0]


def _port_of(text) -> int | None:
    if not text:
        return None
    try:
        return int(str(text).split("-")[0].split(":")[0])
    except ValueError:
        return None
