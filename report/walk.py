"""``python app.py walk``: follow a packet and its reply through a lab's evidence.

    python app.py walk evidence/ --from 10.20.4.5 --to 203.0.113.80
    python app.py walk evidence/ --from gw01 --to 198.51.100.77 --proto tcp --port 22 --format json

``--from`` is an address (the node holding it sends the packet; an address on a node's
connected network, like a VM's fixed IP behind the network node's bridge, enters that
node) or the name of a node (it sends from the address its route picks, as ``nc`` or
``ping`` without ``-I`` would).

Text output is the explanation a student can follow, one numbered step per decision, each
with the evidence line that made it; ``--format json`` prints one object
``{"verdict": V, "node": N, "summary": ..., "steps": [...]}``. Exit status: 0 when the
packet and its reply get through, 1 otherwise, 2 for unusable input.

Example (evidence from a network node ``net01`` alone, a VM 10.20.4.5 pinging out)::

    $ python app.py walk net01.txt --from 10.20.4.5 --to 203.0.113.80
    walk: icmp echo request 10.20.4.5 > 203.0.113.80
    verdict: private-source-leaves at net01
    ...
      5. [net01] nat POSTROUTING: not translated: '-A nova-network-float-snat -s 10.20.4.5/32 -o
           ens4 -j SNAT --to-source 198.51.100.77' in nova-network-float-snat would SNAT 10.20.4.5
           to 198.51.100.77, but it leaves by ens3, rule wants ens4
           evidence: net01.txt:173 (iptables-save)
"""
from __future__ import annotations

import json
import sys
import textwrap

from collectors.files import InputError, read_evidence
from kb.diagnose import current_facts
from kb.walk import WalkError, WalkResult, walk


def run_walk(args) -> int:
    try:
        evidence = read_evidence(args.paths, node=getattr(args, "node", None))
    except InputError as error:
        print(f"stackdoc: {error}", file=sys.stderr)
        return 2
    if not evidence.facts:
        print("stackdoc: nothing in the input could be read as evidence", file=sys.stderr)
        return 2
    table, _stale = current_facts(evidence)
    port = getattr(args, "port", None)
    proto = getattr(args, "proto", None) or "icmp"
    if proto in ("tcp", "udp") and port is None:
        print(f"stackdoc: --proto {proto} needs --port", file=sys.stderr)
        return 2
    # --node says where prompt-less evidence came from; where the packet starts comes
    # from --from (kb.walk places it), so it is not passed on.
    try:
        result = walk(table, args.source, args.destination, proto, port)
    except WalkError as error:
        hint = ""
        if not any(fact.get("node") for fact in table.facts):
            hint = " (no prompt in the evidence names a node: say which with --node NAME)"
        print(f"stackdoc: cannot walk this packet: {error}{hint}", file=sys.stderr)
        return 2
    if getattr(args, "format", "text") == "json":
        sys.stdout.write(json.dumps(result.as_json(), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 0 if result.verdict == "delivered" else 1


def render_text(result: WalkResult) -> str:
    where = f" at {result.node}" if result.node else ""
    lines = [f"walk: {result.packet.describe()}",
             f"verdict: {result.verdict}{where}",
             *textwrap.wrap(result.summary, 88, initial_indent="  ", subsequent_indent="  "), ""]
    direction = None
    for number, step in enumerate(result.steps, 1):
        if step.direction != direction:
            direction = step.direction
            lines.append("the packet:" if direction == "packet" else "the reply:")
        head = f"{number:3d}. [{step.node}] {step.stage}: "
        text = step.text
        if text.startswith(f"{step.stage} on {step.node}: "):
            text = text[len(f"{step.stage} on {step.node}: "):]
        lines.extend(textwrap.wrap(head + text, 96, subsequent_indent=" " * 7))
        for line in step.evidence[:4]:
            lines.append(f"       evidence: {line['source']}:{line['line']} ({line['command']})")
    if result.assumptions:
        lines += ["", "assumed (not in the evidence):"]
        for text in result.assumptions:
            lines.extend(textwrap.wrap("- " + text, 96, subsequent_indent="  "))
    return "\n".join(lines) + "\n"
