"""Facts computed on demand: what the kernel would do with one packet or destination
the rules ask about, answered from the one network model (kb/netmodel.py, kb/netfilter.py,
kb/walk.py) that the walk uses too.

A rule file asks for them like any other fact::

    back: {type: route_choice, node: $gw.node, destination: $fip.address}

When the patterns before it have matched, the compiled ruleset (kb/rulecompile.py) asks
``Answerer.answer("route_choice", {"node": ..., "destination": ...})``; the answer is
added to the diagnosis' facts and asserted into the engine, where the rule goes on
matching as written. So only the pairs some rule reaches are computed, never every node
against every floating IP.

``COMPUTED`` says, per fact type, which fields are the question (``keys``, given by the
pattern as constants or ``$name.field``) and which may be left out (``optional``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kb.addresses import address_int, is_global
from kb.facts import FactTable

FACT_TYPES = {
    "route_choice": {
        "doc": "the route NODE would use for DESTINATION (longest prefix, then lowest metric)",
        "fields": {"destination": "an address (the question)", "dev": "the interface it leaves by",
                   "via": "the next hop, or null", "prefix": "the route's destination (CIDR)",
                   "is_default": "true when it is the default route",
                   "described": "the route in words ('its default route via 10.0.0.1')",
                   "route_type": "unicast, blackhole, unreachable or prohibit"}},
    "forward_verdict": {
        "doc": "what NODE's filter FORWARD chain does with a new packet from SOURCE (protocol "
               "PROTO, arriving by IN) to the outside: the first rule that matches, else the policy",
        "fields": {"source": "the packet's source (the question)", "proto": "icmp, tcp or udp (the question)",
                   "in": "the interface it arrives by (the question; optional)",
                   "destination": "the outside address used (a captured one, else a stand-in)",
                   "out": "the interface its route leaves by", "verdict": "ACCEPT, DROP or REJECT",
                   "accepted": "true or false", "by_policy": "true when no rule matched",
                   "decided_by": "the deciding rule or policy, as printed"}},
    "source_nat": {
        "doc": "whether NODE's nat POSTROUTING translates a new packet from SOURCE leaving by OUT "
               "(answered only where NODE's nat table was shown)",
        "fields": {"source": "the packet's source (the question)", "out": "the out interface (the question)",
                   "translated": "true or false", "target": "SNAT, MASQUERADE ... or null",
                   "chain": "the chain of the translating rule, or null",
                   "to_address": "the address it translates to, or null"}},
    "walk_verdict": {
        "doc": "the packet walk of a probe about the floating IP FLOATING (kb/walk.py): the "
               "packet of the probe the evidence shows, if any (the VM's ping or nc -v to a "
               "global address; a node's probe of the floating IP), else a stand-in; NODE is "
               "where it went wrong, else the network node",
        "fields": {"kind": "vm-to-outside (the VM pings the outside) or outside-to-floating "
                           "(the gateway connects to the floating IP, tcp 22) (the question)",
                   "floating": "the floating IP (the question)",
                   "verdict": "delivered, dropped, no-route, private-source-leaves, reply-lost, "
                              "insufficient-info (it gets through only if what was not shown lets it)",
                   "failed": "true when the walk found the packet or its reply lost (not "
                             "delivered, not resting on what was not shown, and no captured "
                             "reply nor a probe of that packet that got through says otherwise)",
                   "refuted_by_capture": "true when the walk found it lost but a capture "
                                         "shows the reply: the observation wins",
                   "observed": "what a probe of this very packet (ping or nc -v from the "
                               "probe's source to its destination) printed last: answered, "
                               "no-answer, refused or unreachable; null when no probe was run",
                   "contradicted": "true when that probe's outcome contradicts the walk's verdict "
                                   "(the walk names the assumption it refutes in its summary)",
                   "failed_at": "the node where it went wrong, or null", "fixed": "the VM's address",
                   "source": "the probe's source", "destination": "the probe's destination",
                   "proto": "icmp or tcp", "port": "the port, or null",
                   "summary": "the walk's verdict in words", "assumed": "true when the verdict "
                   "rests on something the evidence did not show (a node's tables)"}},
}

COMPUTED = {
    "route_choice": {"keys": ("node", "destination"), "optional": ()},
    "forward_verdict": {"keys": ("node", "source", "proto", "in"), "optional": ("in",)},
    "source_nat": {"keys": ("node", "source", "out"), "optional": ()},
    "walk_verdict": {"keys": ("kind", "floating"), "optional": ()},
}

# A global address beyond every default route: the destination of a probe when no
# captured packet names the one the VM tried (a documentation address, never contacted).
STAND_IN_OUTSIDE = "192.0.2.200"
# Walks per network node for floating IPs no capture mentions: a node with 5,000 of them
# must not cost 10,000 walks per diagnosis. What is left out is said (Answerer.left_out).
WALKS_PER_NODE = 2
# Answers per diagnosis: each is a fact in an engine session (reliable only so far,
# kb/engine.MAX_FACTS) and a route lookup or a walk. Questions beyond are not answered,
# and the report says so.
MAX_ANSWERS = 40000
_PORTS = {"tcp": 22, "udp": 53}


@dataclass
class Answerer:
    """One diagnosis' answers; each question is computed once."""
    table: FactTable
    _model: object = None          # kb.netmodel.NetModel, built on the first question
    _memo: dict = field(default_factory=dict)
    _walked: dict = field(default_factory=dict)
    left_out: dict = field(default_factory=dict)
    _index: dict | None = None
    max_answers = MAX_ANSWERS              # a class attribute: not a field
    unanswered: dict = field(default_factory=dict)

    def _indexed(self) -> dict:
        """Floating IPs by address, and the outside address each source was seen
        sending to, built once (questions come by the thousand on a big node)."""
        if self._index is None:
            floating = {}
            for fip in self.table.of("floating_ip"):
                floating.setdefault(fip.get("address"), fip)
            sent_to, mentioned, replies = {}, set(), {}
            for packet in self.table.of("packet"):
                mentioned.update((packet.get("src"), packet.get("dst")))
                if "reply" in str(packet.get("icmp_type") or ""):
                    replies.setdefault(_key(packet.get("src")), []).append(packet)
                elif address_int(packet.get("dst")) is not None:
                    sent_to.setdefault(packet.get("src"), packet["dst"])
            self._index = {"floating": floating, "sent_to": sent_to, "mentioned": mentioned,
                           "replies": replies}
        return self._index

    @property
    def model(self):
        if self._model is None:
            from kb.netmodel import build_model   # only a diagnosis that asks pays for it
            self._model = build_model(self.table)
        return self._model

    def answer(self, fact_type: str, keys: dict) -> list[dict]:
        memo_key = (fact_type, tuple(sorted((k, repr(v)) for k, v in keys.items())))
        if memo_key not in self._memo:
            if len(self._memo) >= self.max_answers:
                self.unanswered[fact_type] = self.unanswered.get(fact_type, 0) + 1
                return []
            method = getattr(self, "_" + fact_type)
            self._memo[memo_key] = [f for f in method(**keys) if f is not None]
        return self._memo[memo_key]

    def forget_tables(self, nodes) -> None:
        """Done with these nodes: their compiled iptables tables go (built again if asked)."""
        if self._model is not None:
            self._model.forget_tables(nodes)

    def checkpoint(self):
        """What has been answered so far, for ``restore``."""
        return (len(self._memo), {node: set(done) for node, done in self._walked.items()},
                {node: set(done) for node, done in self.left_out.items()}, dict(self.unanswered))

    def restore(self, checkpoint) -> None:
        """Forget the answers given since the checkpoint (their facts are forgotten too)."""
        answered, self._walked, self.left_out, self.unanswered = checkpoint
        for key in list(self._memo)[answered:]:
            del self._memo[key]

    # -- routing ------------------------------------------------------------------------
    def _route_choice(self, node, destination):
        model_node = self.model.nodes.get(node)
        value = address_int(destination)
        if model_node is None or not model_node.routes_shown or value is None:
            return []
        route = model_node.lookup_route(value)
        if route is None or route.fact is None:
            return []
        via = route.via
        described = ("its default route" if route.is_default else f"its route to {route.destination}") \
            + (f" via {via}" if via else "")
        dev = model_node.out_device(route)
        return [self.table.derive(
            "route_choice", node, [route.fact],
            f"{node} sends packets for {destination} by {described}, out of {dev}",
            destination=destination, dev=dev, via=via, prefix=route.destination,
            is_default=route.is_default, described=described, route_type=route.route_type)]

    # -- netfilter ----------------------------------------------------------------------
    def _forward_verdict(self, node, source, proto, **optional):
        from kb.netfilter import evaluate, printed
        model_node = self.model.nodes.get(node)
        ruleset = model_node.tables.get("filter") if model_node else None
        if ruleset is None or "FORWARD" not in ruleset.chains:
            return []
        in_iface = optional.get("in")
        destination = self._outside_of(source)
        route = model_node.lookup_route(address_int(destination))
        out_iface = model_node.out_device(route) if route else None
        packet = _probe(source, destination, proto)
        verdict, rule, path = evaluate(ruleset, "FORWARD", packet, in_iface, out_iface,
                                       frozenset({"NEW"}))
        chain = ruleset.chains["FORWARD"]
        if verdict is None:
            verdict, decider, by_policy = chain.policy or "ACCEPT", chain.policy_fact, True
        else:
            decider, by_policy = rule.fact, False
        accepted = verdict not in ("DROP", "REJECT")
        verb = {"ACCEPT": "accepts", "DROP": "drops", "REJECT": "rejects"}.get(verdict, verdict.lower())
        sources = [decider] + [r.fact for r in path[:-1]] + ([route.fact] if route and route.fact else [])
        return [self.table.derive(
            "forward_verdict", node, sources,
            f"{node}'s FORWARD chain {verb} {packet.describe()}"
            + (f" arriving by {in_iface}" if in_iface else "")
            + (f" and leaving by {out_iface}" if out_iface else "")
            + (f" (its policy {verdict})" if by_policy else f" ({printed(decider)})"),
            source=source, proto=proto, destination=destination, out=out_iface, verdict=verdict,
            accepted=accepted, by_policy=by_policy, decided_by=printed(decider),
            **({"in": in_iface} if "in" in optional else {}))]

    def _source_nat(self, node, source, out):
        from kb.netfilter import SOURCE_NAT, evaluate, printed
        model_node = self.model.nodes.get(node)
        ruleset = model_node.tables.get("nat") if model_node else None
        if ruleset is None or "POSTROUTING" not in ruleset.chains:
            return []
        destination = self._outside_of(source)
        packet = _probe(source, destination, "icmp")
        verdict, rule, path = evaluate(ruleset, "POSTROUTING", packet, None, out, frozenset({"NEW"}))
        translated = verdict in SOURCE_NAT
        chain = ruleset.chains["POSTROUTING"]
        if translated:
            sources = [rule.fact] + [r.fact for r in path[:-1]]
            because = (f"{node} translates packets from {source} leaving by {out} "
                       f"({printed(rule.fact)} in {rule.chain})")
        else:
            sources = [chain.policy_fact] + ([rule.fact] if rule else [])
            because = (f"{node}'s nat POSTROUTING leaves the source of packets from {source} "
                       f"leaving by {out} as it is: no SNAT or MASQUERADE rule matches them")
        return [self.table.derive(
            "source_nat", node, sources, because, source=source, out=out, translated=translated,
            target=rule.target if translated else None, chain=rule.chain if translated else None,
            to_address=rule.fact.get("to_address") if translated else None)]

    def _outside_of(self, source) -> str:
        """The outside address a packet from ``source`` (or from the fixed address behind
        that floating IP) was seen going to, else the stand-in."""
        index = self._indexed()
        fip = index["floating"].get(source)
        return index["sent_to"].get(source) or (fip and index["sent_to"].get(fip.get("fixed"))) \
            or STAND_IN_OUTSIDE

    # -- packet walks -------------------------------------------------------------------
    def _walk_verdict(self, kind, floating):
        from kb.walk import WalkError, walk

        fip = self._indexed()["floating"].get(floating)
        if fip is None or not fip.get("fixed") or not fip.get("node"):
            return []
        network_node = fip["node"]
        mentioned = self._indexed()["mentioned"]
        if fip["fixed"] not in mentioned and floating not in mentioned:
            walked = self._walked.setdefault(network_node, set())
            if floating not in walked and len(walked) >= WALKS_PER_NODE:
                self.left_out.setdefault(network_node, set()).add(floating)
                return []
            walked.add(floating)
        if kind == "vm-to-outside":
            # the VM's own probe of the outside, when it ran one, is the packet walked
            probe = self._probe_from(fip["fixed"])
            source = fip["fixed"]
            if probe is not None:
                destination, proto, port = probe["target"], probe["protocol"], probe.get("port")
            else:
                destination, proto, port = self._outside_of(fip["fixed"]), "icmp", None
        elif kind == "outside-to-floating":
            inside = {network_node} | {owner[0] for owner in self.model.owners_of(fip["fixed"])}
            probe = self._probe_of(floating, besides=inside)
            if probe is not None:
                source, proto, port = probe["node"], probe["protocol"], probe.get("port")
            else:
                source, proto, port = self._upstream_gateway(network_node), "tcp", 22
            if source is None:
                return []
            destination = floating
        else:
            return []
        try:
            result = walk(self.table, source, destination, proto, port, model=self.model)
        except WalkError:
            return []
        sources = [self.table[i] for i in result.fact_ids if 0 <= i < len(self.table.facts)] \
            or [self.table[i] for i in fip.get("derived_from", [])[:1]]
        failed = result.verdict not in ("delivered", "insufficient-info")
        because = f"walk {kind} ({result.packet.describe()}): {result.summary}"
        seen = result.observation
        through = seen is not None and seen.outcome in ("answered", "refused")
        reply = self._observed_reply(destination, {source, fip["fixed"], floating}) if failed else None
        observed = []
        if seen is not None:
            because += f"; {seen.text}"
            observed.append(self.table[seen.fact_id])
        if reply is not None:
            because += (f"; but tcpdump on {reply.get('node')} saw the reply "
                        f"{reply.get('src')} > {reply.get('dst')}, so the walk rests on an "
                        f"assumption the capture refutes: "
                        + ("; ".join(result.assumptions) or "none it could name"))
        if through or reply is not None:
            # an observation outranks what the walk assumed: the packet got through, and
            # what stands is the observation: it alone is this fact's evidence
            failed = False
            sources = [fact for fact in observed if through] + ([reply] if reply else [])
        else:
            sources = sources + observed
        return [self.table.derive(
            "walk_verdict", result.node or network_node, sources, because,
            kind=kind, verdict=result.verdict, floating=floating, fixed=fip["fixed"],
            failed=failed, refuted_by_capture=reply is not None,
            observed=seen.outcome if seen else None, contradicted=bool(seen and not seen.agrees),
            source=source, destination=destination, proto=proto, port=port,
            failed_at=result.node, summary=result.summary, assumed=bool(result.assumptions))]

    def _probe_from(self, address) -> dict | None:
        """The last probe run on the node holding ``address`` towards the outside: a
        global address (one an upstream routes back)."""
        owners = self.model.owners_of(address)
        if not owners:
            return None
        probes = [f for f in self.table.of("reachability", owners[0][0])
                  if address_int(f.get("target")) is not None and is_global(f["target"])
                  and f.get("protocol") in ("icmp", "tcp")]
        return probes[-1] if probes else None

    def _probe_of(self, target, besides) -> dict | None:
        """The last probe of ``target`` run on a node of the evidence not in ``besides``
        (the network node and the VM: theirs do not come from outside)."""
        probes = [f for f in self.table.of("reachability")
                  if f.get("target") == target and isinstance(f.get("node"), str)
                  and f["node"] in self.model.nodes
                  and f.get("node") not in besides and f.get("protocol") in ("icmp", "tcp")]
        return probes[-1] if probes else None

    def _observed_reply(self, answering, addressed) -> dict | None:
        """A captured reply from ``answering`` to one of the ``addressed`` addresses."""
        for packet in self._indexed()["replies"].get(_key(answering), ()):
            if packet.get("dst") in addressed:
                return packet
        return None

    def _upstream_gateway(self, network_node) -> str | None:
        node = self.model.nodes.get(network_node)
        default = node.lookup_route(0) if node else None
        if default is None or not default.is_default or not default.via:
            return None
        owner = self.model.owner_of(default.via, besides=network_node)
        return owner[0] if owner else None

    def notes(self) -> list[str]:
        """What a limit left out, in words, for the report."""
        notes = [f"{len(addresses)} floating IPs of {node} were not walked (at most "
                 f"{WALKS_PER_NODE} per node beside those a capture mentions); findings about "
                 f"them are not confirmed by a walk"
                 for node, addresses in sorted(self.left_out.items(), key=lambda i: str(i[0]))]
        for fact_type, count in sorted(self.unanswered.items()):
            notes.append(f"{count} {fact_type} questions were not answered (at most "
                         f"{self.max_answers} answers per diagnosis); causes that rest on them "
                         f"were not judged")
        return notes


def _key(value):
    """A fact's field as a dict key (a malformed fact may hold a list)."""
    return value if isinstance(value, (str, int, float, type(None))) else repr(value)


def _probe(source, destination, proto):
    from kb.netfilter import ICMP_ECHO_REQUEST, Packet
    if proto in _PORTS:
        return Packet(source, destination, proto, 40000, _PORTS[proto])
    return Packet(source, destination, proto, icmp_type=ICMP_ECHO_REQUEST if proto == "icmp" else None)
