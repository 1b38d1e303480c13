"""net-tools' routing table: ``route -n``, ``route``, ``netstat -rn``.

Commands: ``route``, ``route -n``, ``route -ee``, ``route -n -A inet6``, ``netstat -rn`` /
``netstat -nr`` / ``netstat -r`` (also inside ``ip netns exec NS ...``).  ``route add``
and ``route del`` print nothing and are not matched.

The table is read by its header: ``route -n`` prints ``Flags Metric Ref Use Iface``,
``netstat -rn`` prints ``Flags MSS Window irtt Iface``, ``route -ee`` both, and IPv6
``Flag Met Ref Use If``.  Without a header (a cut transcript) the ``route -n`` layout
is assumed.  One record per row, the same ``route`` record as ``ip_route``::

    {"type": "route", "line": 3,
     "destination": "10.0.0.0/24",  # Destination + Genmask; "default" -> 0.0.0.0/0; a
                                    # network name (route without -n) stays a name:
                                    # "link-local/16"
     "via": "10.0.0.1" | None,      # Gateway; 0.0.0.0, "*", "-" and "::" -> None
     "dev": "eth0" | None,          # Iface; "*" (no device) and "-" -> None
     "proto": None, "scope": None, "src": None,   # net-tools does not show them
     "metric": 0 | None,            # Metric/Met column (netstat -rn has none)
     "table": "main" | None,        # /proc/net/route is the main table; IPv6 mixes
     "route_type": "unicast",       # "!" (reject) -> unreachable; Iface "*" without
                                    # "!" -> blackhole
     "flags": "UG"}

Worked example (``route -n`` on net01)::

    Kernel IP routing table
    Destination     Gateway         Genmask         Flags Metric Ref    Use Iface
    0.0.0.0         10.20.4.1       0.0.0.0         UG    0      0        0 ens3

gives ``{"type": "route", "line": 3, "destination": "0.0.0.0/0", "via": "10.20.4.1",
"dev": "ens3", "proto": None, "scope": None, "src": None, "metric": 0, "table": "main",
"route_type": "unicast", "flags": "UG"}``.
"""
from __future__ import annotations

import re
from itertools import islice
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, lark_cache, lark_problem

KIND = "route_n"
# The facts this kind gives: the same records as ip_route's, declared there (kb/schema.py).
FACT_TYPES = {"route": "grammar.ip_route"}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR).  `ip route` is not
# a `route` command, so a bare "route" word elsewhere must not match.
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
_END = r"\s*(?:$|[|;&>)])"
COMMANDS = re.compile(
    _COMMAND_START + r"(?:"
    # route with display options only: -n -e -ee -v -F -4 -6 -A inet6 --numeric ...
    r"route(?:\s+(?:-[nevF46]+|-A\s+inet6?|--(?:numeric|extend|verbose|fib|inet6?)))*" + _END
    # netstat with r among its short options (-rn, -nr, -r -n) or --route
    + r"|netstat(?:\s+-[a-zA-Z]+)*?\s+(?:-[a-zA-Z]*r[a-zA-Z]*|--route)(?:\s+-[a-zA-Z]+|\s+--\w+)*" + _END
    + r")"
)
FILES = None

_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
)

# The route -n layout, used when the header line is not in the text.
_DEFAULT_COLUMNS = ["Metric", "Ref", "Use", "Iface"]
_HEADER = re.compile(r"^Destination\s+(?:Gateway\s+Genmask|Next Hop)\s+Flags?\s")
_TITLE = re.compile(r"^Kernel IP(?:v6)? routing table\s*$")


def looks_like(text: str) -> bool:
    """True when the text opens with net-tools' title or column header."""
    lines = list(islice((line.strip() for line in text.split("\n") if line.strip()), 2))
    if not lines:
        return False
    if _TITLE.match(lines[0]):
        return len(lines) == 1 or bool(_HEADER.match(lines[1]))
    return bool(_HEADER.match(lines[0]))


class _Line(Transformer):
    """One line -> ("title" | "header" | "ipv4" | "ipv6", data)."""

    def title(self, children):
        return "title", str(children[0])

    def header(self, children):
        return "header", [str(c) for c in children]

    def next_hop_column(self, children):
        return "Next Hop"

    def ipv4_route(self, children):
        destination, gateway, netmask, flags, *fields = (str(c) for c in children)
        return "ipv4", {"destination": destination, "gateway": gateway, "netmask": netmask,
                        "flags": flags, "fields": fields}

    def ipv6_route(self, children):
        destination, gateway, flags, *fields = (str(c) for c in children)
        return "ipv6", {"destination": destination, "gateway": gateway, "netmask": None,
                        "flags": flags, "fields": fields}


_TRANSFORMER = _Line()

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _TRANSFORMER.transform(_PARSER.parse(line)))


def _prefix_length(netmask: str) -> int | None:
    """255.255.252.0 -> 22; None for a mask whose ones are not contiguous."""
    value = 0
    for octet in netmask.split("."):
        if int(octet) > 255:
            return None
        value = value * 256 + int(octet)
    length = bin(value).count("1")
    return length if value == (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF else None


def _record(number: int, kind: str, row: dict, columns: list[str]) -> dict | str:
    """The route record, or the reason the row cannot be read."""
    fields = row["fields"]
    if len(fields) != len(columns):
        return f"{len(fields)} fields after Flags where the header names {len(columns)}"
    by_column = dict(zip(columns, fields))
    if kind == "ipv4":
        length = _prefix_length(row["netmask"])
        if length is None:
            return f"netmask {row['netmask']!r} is not a prefix"
        destination = "0.0.0.0/0" if row["destination"] == "default" else (
            f"{row['destination']}/{length}")
        table = "main"
    else:
        destination, table = row["destination"], None
    gateway = row["gateway"]
    iface = by_column.get("Iface", by_column.get("If"))
    metric = by_column.get("Metric", by_column.get("Met"))
    if "!" in row["flags"]:
        route_type = "unreachable"
    elif iface == "*":
        route_type = "blackhole"
    else:
        route_type = "unicast"
    return {"type": "route", "line": number, "destination": destination,
            "via": None if gateway in ("0.0.0.0", "*", "-", "::") else gateway,
            "dev": None if iface in (None, "*", "-") else iface,
            "proto": None, "scope": None, "src": None,
            "metric": int(metric) if metric and re.fullmatch(r"-?\d+", metric) else None,
            "table": table, "route_type": route_type, "flags": row["flags"]}


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    columns = list(_DEFAULT_COLUMNS)
    # Numbered by "\n" alone, as the transcript reader counts lines.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        try:
            kind, data = _READ(line, "")
        except LarkError as error:
            result.problems.append(lark_problem(error, number - 1, number))
            continue
        if kind == "title":
            continue
        if kind == "header":
            flags_at = next((i for i, c in enumerate(data) if c in ("Flags", "Flag")), None)
            if flags_at is None:
                result.problems.append(Problem(number, "a header without a Flags column"))
                continue
            columns = data[flags_at + 1:]
            continue
        record = _record(number, kind, data, columns)
        if isinstance(record, str):
            result.problems.append(Problem(number, record))
        else:
            result.records.append(record)
    return result
