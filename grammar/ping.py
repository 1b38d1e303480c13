"""What ``ping`` (iputils) says about reaching an address.

Forms read: the ``PING host (address) ...`` header, replies (``64 bytes from ...``),
ICMP errors (``From 10.0.0.1 icmp_seq=1 Destination Host Unreachable``), the statistics
(``3 packets transmitted, 0 received, 100% packet loss``), and the errors ping prints
before sending anything (``ping: connect: Network is unreachable``).

Record, one per ping run::

    {"type": "reachability", "line": int, "tool": "ping", "target": str, "port": None,
     "protocol": "icmp", "outcome": str, "detail": str}

``outcome`` is ``answered`` (at least one reply), ``no-answer`` (every request lost:
dropped on the way, or filtered), ``unreachable`` (a router or the sender said it cannot
be reached: ICMP errors, or ``Network is unreachable`` before sending), or ``refused``
(never for ping). Worked example: ``ping -c 3 192.0.2.20`` printing ``3 packets
transmitted, 0 received, 100% packet loss`` gives ``{"target": "192.0.2.20",
"outcome": "no-answer", "detail": "3 packets transmitted, 0 received"}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, parsed_lines

KIND = "ping"
FACT_TYPES = {
    "reachability": {
        "doc": "what a probe run on NODE (ping, nc -v, ssh -v) says about reaching TARGET",
        "fields": {
            "tool": "ping, nc or ssh",
            "target": "the address or host probed",
            "port": "the port tried (tcp), or empty for ping",
            "protocol": "icmp or tcp",
            "outcome": "answered (replies, connected), no-answer (timed out, every packet lost), "
                       "refused (a RST: the host answers, nothing listens) or unreachable "
                       "(no route, an ICMP error)",
            "detail": "what the tool printed that says so",
        },
    },
}
COMMANDS = re.compile(r"^\s*ping\s")
FILES = None

_LOOKS = re.compile(r"^PING \S+ \(\S+\) \d+\(\d+\) bytes of data\.$|^ping: connect: ")
_TARGET = re.compile(r"(\S+)\s*$")


class _ToLine(Transformer):
    def start(self, children):
        return children[0]

    def header(self, children):
        return ("header", str(children[0]))

    def reply(self, _children):
        return ("reply",)

    def icmp_error(self, children):
        return ("error", str(children[-1]))

    def stats_title(self, children):
        return ("skip",)

    def stats(self, children):
        return ("stats", int(children[0]), int(children[1]))

    def rtt(self, _children):
        return ("skip",)

    def connect_error(self, children):
        return ("connect_error", str(children[0]).strip())


_PARSER = LazyLark((Path(__file__).parent / "ping.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", transformer=_ToLine())


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def _record(line, target, outcome, detail) -> dict:
    return {"type": "reachability", "line": line, "tool": "ping", "target": target, "port": None,
            "protocol": "icmp", "outcome": outcome, "detail": detail}


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    found = _TARGET.search(command.strip()) if command.strip() else None
    target = found[1] if found else None
    start_line, replies, error = None, 0, None
    for lineno, parsed in parsed_lines(_PARSER, text, "a ping", result.problems):
        tag = parsed[0]
        if tag == "header":
            target, start_line, replies, error = parsed[1], lineno, 0, None
        elif tag == "reply":
            replies += 1
        elif tag == "error":
            error = error or parsed[1]
        elif tag == "connect_error":
            outcome = "unreachable" if "unreachable" in parsed[1].lower() else "no-answer"
            if target is None:
                result.problems.append(Problem(lineno, "ping failed but no target is named"))
            else:
                result.records.append(_record(lineno, target, outcome, parsed[1]))
        elif tag == "stats":
            sent, received = parsed[1], parsed[2]
            if target is None:
                result.problems.append(Problem(lineno, "ping statistics with no PING line naming the target"))
                continue
            if received or replies:
                outcome, detail = "answered", f"{sent} packets transmitted, {received} received"
            elif error:
                outcome, detail = "unreachable", error
            else:
                outcome, detail = "no-answer", f"{sent} packets transmitted, 0 received"
            result.records.append(_record(start_line or lineno, target, outcome, detail))
            start_line = None
    return result
