"""``ip route`` output: the kernel routing table as iproute2 prints it.

Commands: ``ip route``, ``ip r``, ``ip ro show``, ``ip -4 route list``, ``ip -6 route``,
``ip route show table main``, ``ip route get ADDR`` (one route and an indented
``cache`` line), also inside ``ip netns exec NS ...`` or ``ip -n NS route``.  Commands
that change the table (``ip route add/del/replace/flush``) print nothing and are not
matched.

One record per route (a multipath route gives one record per ``nexthop`` line), every
key always present::

    {"type": "route", "line": 1,
     "destination": "0.0.0.0/0",   # "default" -> 0.0.0.0/0 (::/0 for IPv6); a bare
                                   # address gets /32 or /128
     "via": "10.0.0.1" | None, "dev": "eth0" | None, "proto": "kernel" | None,
     "scope": "link" | None, "src": "10.0.0.7" | None, "metric": 100 | None,
     "table": "main",              # as printed; iproute2 leaves out the table it
                                   # lists (main unless the command names one)
     "route_type": "unicast",      # or local, broadcast, blackhole, unreachable, ...
     "flags": "onlink,linkdown" | None}   # route/next-hop flag words, and for
                                          # `ip route get` the cache's <...> flags

An error printed instead of routes (``RTNETLINK answers: Network is unreachable``,
``Cannot find device "eth9"``) is read as ``{"type": "route_error", "line": n,
"message": "Network is unreachable"}``.

Worked example (Ubuntu 14.04's iproute2 printed two spaces between attributes)::

    default via 10.0.0.1 dev eth0
    10.0.0.0/24 dev eth0  proto kernel  scope link  src 10.0.0.7

gives ``{"type": "route", "line": 1, "destination": "0.0.0.0/0", "via": "10.0.0.1",
"dev": "eth0", "proto": None, "scope": None, "src": None, "metric": None, "table": "main",
"route_type": "unicast", "flags": None}`` and ``{"type": "route", "line": 2,
"destination": "10.0.0.0/24", "via": None, "dev": "eth0", "proto": "kernel",
"scope": "link", "src": "10.0.0.7", "metric": None, "table": "main",
"route_type": "unicast", "flags": None}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import ParseResult, Problem, lark_problem, lark_cache, LazyLark

KIND = "ip_route"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "route": {
        "doc": "a route of NODE's routing table (ip route, route -n, netstat -rn)",
        "fields": {
            "destination": "the network as CIDR (default -> 0.0.0.0/0)",
            "via": "the next hop, or empty for a connected network",
            "dev": "the interface it leaves by",
            "proto": "how it was made (kernel, static ...), or empty",
            "scope": "link, host, or empty",
            "src": "the preferred source address, or empty",
            "metric": "the metric, a number, or empty",
            "table": "the routing table (main unless another is listed)",
            "route_type": "unicast, local, broadcast, blackhole, unreachable ...",
            "flags": "the flags as printed (UG; onlink ...), or empty",
        },
    },
    "route_error": {
        "doc": "NODE's ip route printed an error instead of routes",
        "fields": {"message": "the message, e.g. Network is unreachable"},
    },
}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR, timeout 5).
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
# Global `ip` options that may stand before the object; -n/-netns/-f/-family/-rc
# take an argument.  -j/-json print JSON, a different kind of output.
_IP_OPTIONS = (
    r"(?:-(?:n|netns|f|family|rc|rcvbuf)\s+\S+\s+"
    r"|-(?!j(?:son)?\b|b(?:atch)?\b)[\w-]+\s+)*"
)
# `ip r`, `ip ro`, ... `ip route`; then nothing, a listing sub-command (any prefix of
# show/list, or lst) or get.  `ip rule` and `ip route add` do not match.
COMMANDS = re.compile(
    _COMMAND_START + r"ip\s+" + _IP_OPTIONS + r"r(?:o(?:u(?:te?)?)?)?"
    r"(?:\s*$|\s*[|;&>)]|\s+(?:s(?:h(?:ow?)?)?|l(?:i(?:st?)?)?|lst|g(?:et?)?)(?:\s|$))"
)
FILES = None

_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    maybe_placeholders=True,
)

# A line looks like a route when it starts like one and names a gateway, device or
# attribute right after the destination.
_ROUTE_LINE = re.compile(
    r"^(?:(?:unicast|local|broadcast|multicast|anycast|blackhole|unreachable|prohibit"
    r"|throw|nat)\s+)?(?:default|\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?"
    r"|[0-9a-fA-F]*:[0-9a-fA-F:]*(?:/\d{1,3})?)"
    r"(?:\s+(?:via|dev|proto|scope|src|from|metric|table|error|pref)\s|\s*$)"
)
_CONTINUATION = re.compile(r"^\s+(?:nexthop|cache)\b")


def looks_like(text: str) -> bool:
    """True when the first non-blank lines are all routes (or nexthop/cache lines) and
    one names a device or gateway (a lone address is other tools' output too)."""
    lines = [line for line in text.split("\n") if line.strip()][:8]
    if not lines or not _ROUTE_LINE.match(lines[0].strip()):
        return False
    return (all(_ROUTE_LINE.match(line.strip()) or _CONTINUATION.match(line) for line in lines)
            and any(re.search(r"\s(?:dev|via)\s", line) for line in lines))


class _Line(Transformer):
    """Turns one parsed line into ("route" | "nexthop" | "cache" | "error", data)."""

    def route(self, children):
        route_type, destination, *attributes = children
        return "route", {"route_type": str(route_type) if route_type else "unicast",
                         "destination": destination, "attributes": attributes}

    def default_destination(self, children):
        return None  # "default": the family is settled once the attributes are known

    def prefix_destination(self, children):
        return str(children[0])

    def nexthop(self, children):
        return "nexthop", {"attributes": children}

    def cache(self, children):
        cache_flags, *attributes = children
        flags = [f for f in str(cache_flags or "").strip("<>").split(",") if f]
        return "cache", {"attributes": attributes + [("flag", f) for f in flags]}

    def error_message(self, children):
        text = str(children[0]).strip()
        for prefix in ("RTNETLINK answers:", "Error:"):
            if text.startswith(prefix):
                text = text[len(prefix):].strip()
        return "error", text

    def via(self, children):
        return "via", str(children[-1])

    def dev(self, children):
        return "dev", str(children[0])

    def proto(self, children):
        return "proto", str(children[0])

    def scope(self, children):
        return "scope", str(children[0])

    def src(self, children):
        return "src", str(children[0])

    def source_prefix(self, children):
        return "from", str(children[0])

    def metric(self, children):
        return "metric", int(children[0])

    def table(self, children):
        return "table", str(children[0])

    def option(self, children):
        key, _lock, value = children
        return str(key), str(value)

    def flag(self, children):
        return "flag", str(children[0])


_TRANSFORMER = _Line()
_COMMAND_TABLE = re.compile(r"\btable\s+(\S+)")
_COMMAND_FAMILY6 = re.compile(r"(?:^|\s)-(?:6|f(?:amily)?\s+inet6)\b")


def _new_record(line: int, route: dict, table: str | None) -> dict:
    return {"type": "route", "line": line, "destination": route["destination"],
            "via": None, "dev": None, "proto": None, "scope": None, "src": None,
            "metric": None, "table": table, "route_type": route["route_type"],
            "flags": None}


def _apply(record: dict, attributes: list) -> None:
    """Copy the attributes the record keeps; the rest (pref, uid, weight...) are read
    and let go."""
    for key, value in attributes:
        if key == "flag":
            record["flags"] = f"{record['flags']},{value}" if record["flags"] else value
        elif key in ("via", "dev", "proto", "scope", "src", "metric", "table"):
            record[key] = value


def _settle_destination(record: dict, ipv6_command: bool) -> None:
    destination = record["destination"]
    if destination is None:
        addresses = [record["via"] or "", record["src"] or ""]
        ipv6 = ipv6_command or any(":" in a for a in addresses)
        record["destination"] = "::/0" if ipv6 else "0.0.0.0/0"
    elif "/" not in destination:
        record["destination"] = destination + ("/128" if ":" in destination else "/32")


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    table_match = _COMMAND_TABLE.search(command)
    command_table = table_match.group(1) if table_match else None
    if command_table in (None, "all", "0"):
        # iproute2 prints "table X" unless X is the table being listed, which is main
        # by default; with "table all" it prints it for every table but main.
        command_table = "main"
    ipv6_command = bool(_COMMAND_FAMILY6.search(command))

    header: tuple[int, dict] | None = None  # the last route line, for nexthop/cache
    header_used = False  # whether its nexthop lines already gave its records

    def flush_header():
        if header is not None and not header_used:
            line, route = header
            record = _new_record(line, route, command_table)
            _apply(record, route["attributes"])
            _settle_destination(record, ipv6_command)
            result.records.append(record)

    # Numbered by "\n" alone, as the transcript reader counts lines (splitlines()
    # would also break at form feeds and other separators).
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        try:
            kind, data = _TRANSFORMER.transform(_PARSER.parse(line))
        except LarkError as error:
            result.problems.append(lark_problem(error, number - 1, number))
            continue
        if kind == "route":
            flush_header()
            header, header_used = (number, data), False
        elif kind == "nexthop":
            if header is None:
                result.problems.append(Problem(number, "a nexthop line with no route before it"))
                continue
            line_no, route = header
            record = _new_record(line_no, route, command_table)
            _apply(record, route["attributes"])
            _apply(record, data["attributes"])
            _settle_destination(record, ipv6_command)
            result.records.append(record)
            header_used = True
        elif kind == "cache":
            if header is None or header_used:
                result.problems.append(Problem(number, "a cache line with no route before it"))
                continue
            header[1]["attributes"].extend(data["attributes"])
        else:
            flush_header()
            header = None
            result.records.append({"type": "route_error", "line": number, "message": data})
    flush_header()
    result.records.sort(key=lambda r: r["line"])
    return result
