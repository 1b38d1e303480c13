"""What OpenBSD netcat (``nc -v``, ``nc -zv``) says about a TCP connection attempt.

Forms read (netcat-openbsd 1.2xx)::

    Connection to 192.0.2.20 2222 port [tcp/*] succeeded!
    nc: connect to 192.0.2.20 port 22 (tcp) failed: Connection refused
    nc: connect to 192.0.2.20 port 22 (tcp) timed out: Operation now in progress
    nc: connect to 203.0.113.5 port 22 (tcp) failed: Network is unreachable

Each gives a ``reachability`` record (declared in grammar/ping.py) with ``tool`` nc,
``protocol`` tcp, the target and port, and ``outcome`` answered, refused, no-answer
(timed out: the SYN or its answer was dropped on the way, e.g. by a security group) or
unreachable (no route, host unreachable).
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, parsed_lines

KIND = "netcat"
FACT_TYPES = {"reachability": "grammar.ping"}
COMMANDS = re.compile(r"^\s*(?:nc|netcat|ncat)\s+(?:\S+\s+)*-\w*v")
FILES = None

_LOOKS = re.compile(r"^(?:Connection to \S+ \d+ port \[[^\]]*\] succeeded!|nc: connect to \S+ port \d+ )")


class _ToRecord(Transformer):
    def start(self, children):
        return children[0]

    def succeeded(self, children):
        return (str(children[0]), int(children[1]), "answered", "succeeded")

    def failed(self, children):
        reason = str(children[-1]).strip()
        outcome = "refused" if "refused" in reason.lower() else "unreachable"
        return (str(children[0]), int(children[1]), outcome, reason)

    def timed_out(self, children):
        return (str(children[0]), int(children[1]), "no-answer", "timed out")

    def lookup_failed(self, children):
        return ("lookup", str(children[0]))


_PARSER = LazyLark((Path(__file__).parent / "netcat.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", transformer=_ToRecord())


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    for lineno, parsed in parsed_lines(_PARSER, text, "a netcat", result.problems):
        if parsed[0] == "lookup":
            result.problems.append(Problem(lineno, f"the host name did not resolve: {parsed[1]}"))
            continue
        host, port, outcome, detail = parsed
        result.records.append({"type": "reachability", "line": lineno, "tool": "nc", "target": host,
                               "port": port, "protocol": "tcp", "outcome": outcome, "detail": detail})
    return result
