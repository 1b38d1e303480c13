"""What listens on which TCP port, and which process: ``ss -ltn[p]``, ``ss -tlnp``,
``netstat -ltn[p]`` (also ``-tlnp``, ``-plnt``, ``-lntu``).

Forms read::

    State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
    LISTEN 0      128          0.0.0.0:9292      0.0.0.0:*    users:(("python3",pid=12400,fd=3))

    Active Internet connections (only servers)
    Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
    tcp        0      0 0.0.0.0:9292            0.0.0.0:*               LISTEN      12400/python3

Record (one per listening socket)::

    {"type": "listening", "line": int, "proto": "tcp" | "tcp6" | "udp" ..., "address": str,
     "port": int, "process": str | None, "pid": int | None}

``address`` is the local address without brackets (``0.0.0.0``, ``::``, ``*``,
``127.0.0.1``): a wildcard listens on every address of the node. ``process`` and
``pid`` come from ``-p`` (ss's first user, netstat's ``PID/Program name``), None
without it or where netstat prints ``-`` (another user's socket, not root).
Sockets in another state (``ss -tan``) are not listening and give no record.

Worked example, ``ss -ltnp`` with RabbitMQ on loopback only::

    LISTEN 0      5          127.0.0.1:5672      0.0.0.0:*    users:(("beam.smp",pid=811,fd=53))

gives ``{"proto": "tcp", "address": "127.0.0.1", "port": 5672, "process": "beam.smp",
"pid": 811}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, parsed_lines

KIND = "listening"
FACT_TYPES = {
    "listening": {
        "doc": "a socket listening on NODE (ss -ltnp, netstat -ltnp): which address and port, which process",
        "fields": {
            "proto": "tcp, tcp6, udp or udp6",
            "address": "the local address (0.0.0.0, ::, * for every address; 127.0.0.1 ...)",
            "port": "the port, a number",
            "process": "the process's name (with -p), or empty",
            "pid": "its process id (with -p), or empty",
        },
    },
}

COMMANDS = re.compile(r"^\s*(?:ss|netstat)\s+(?:-\S+\s+)*-[a-zA-Z]*l[a-zA-Z]*(?:\s|$)")
FILES = None
_LOOKS = re.compile(r"^(?:(?:Netid\s+)?State\s+Recv-Q\s+Send-Q\s+Local Address:Port|Active Internet connections"
                    r"|\((?:No info could be read for \"-p\"|Not all processes could be identified))")
_SS_USER = re.compile(r'\(\("([^"]*)",pid=(\d+)')


class _ToLine(Transformer):
    def ss_header(self, children):
        return ("header",)

    netstat_title = netstat_header = netstat_note = ss_header

    def ss_row(self, children):
        state, _recv, _send, local, _peer, users = children
        user = _SS_USER.search(str(users or ""))
        return ("row", str(state), None, str(local),
                user[1] if user else None, int(user[2]) if user else None)

    def netstat_row(self, children):
        proto, _recv, _send, local, _peer, state, program = children
        process = pid = None
        if program is not None and str(program) != "-":
            pid_text, _, name = str(program).strip().partition("/")
            pid, process = int(pid_text), name.strip() or None
        return ("row", str(state), str(proto), str(local), process, pid)


_PARSER = LazyLark(
    (Path(__file__).parent / "listening.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToLine(),
)


def _split(endpoint: str) -> tuple[str, int | None]:
    address, _, port = endpoint.rpartition(":")
    address = address.strip("[]").split("%")[0]
    return address, int(port) if port.isdigit() else None


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    udp_only = bool(re.search(r"\s-[a-zA-Z]*u", command)) and not re.search(r"\s-[a-zA-Z]*t", command)
    for lineno, parsed in parsed_lines(_PARSER, text, "a listening-socket", result.problems):
        if parsed[0] != "row":
            continue
        _, state, proto, local, process, pid = parsed
        if state not in ("LISTEN", "UNCONN"):
            continue
        address, port = _split(local)
        if port is None:
            result.problems.append(Problem(lineno, f"no port in {local!r}"))
            continue
        if proto is None:  # ss -l names no protocol: tcp (or udp with -u alone)
            proto = ("udp" if udp_only or state == "UNCONN" else "tcp") + ("6" if ":" in address else "")
        result.records.append({"type": "listening", "line": lineno, "proto": proto, "address": address,
                               "port": port, "process": process, "pid": pid})
    return result
