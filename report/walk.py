"""A packet walk as text or JSON (``python app.py walk``).

Text is the explanation a student can follow, one numbered step per decision, each with
the evidence line that made it; JSON is one object ``{"verdict": V, "node": N,
"summary": ..., "steps": [...]}``, with ``"observation"`` when a probe of the very
packet (``ping``/``nc -v`` on the sending node) is in the evidence: whether it
``confirms`` or ``contradicts`` the verdict, and what the verdict rested on.

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
import textwrap

from kb.walk import WalkResult


def render_walk(result: WalkResult, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), indent=2) + "\n"
    return render_text(result)


def render_text(result: WalkResult) -> str:
    where = f" at {result.node}" if result.node else ""
    seen = result.observation
    judged = "" if seen is None else (", confirmed by what was observed" if seen.agrees
                                      else ", CONTRADICTED by what was observed")
    lines = [f"walk: {result.packet.describe()}",
             f"verdict: {result.verdict}{where}{judged}",
             *textwrap.wrap(result.summary, 88, initial_indent="  ", subsequent_indent="  ")]
    if seen is not None:
        lines += textwrap.wrap(seen.text, 88, initial_indent="  ", subsequent_indent="    ",
                               break_on_hyphens=False)
    lines.append("")
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
