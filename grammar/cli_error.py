"""The errors the OpenStack command-line clients print, and what they say went wrong.

Forms read (from the clients' own ``main()``): novaclient 2.17 (Icehouse)
``ERROR: <message>`` where an HTTP error reads ``<message> (HTTP <code>) (Request-ID:
<id>)``; novaclient 2.18 on ``ERROR (<ExceptionClass>): <message>``; keystoneclient's
``Authorization Failed: <message>`` and ``Unable to establish connection to <url>``.

Record, one per error::

    {"type": "cli_error", "line": int, "tool": str | None, "error": str, "http_status": int | None,
     "exception": str | None, "message": str, "host": str | None, "port": int | None}

``error`` says what happened: ``unauthorized`` (HTTP 401 from the service, or credentials
refused), ``forbidden`` (403), ``refused`` (nothing listens where the client connected:
``host`` and ``port`` say where), ``no-floating-ips`` (nova has none left to give: "No
more floating ips available", "No more floating ips in pool P", "Zero floating ips
available"), ``no-valid-host`` (the scheduler found no compute node), ``command`` (the
client refused the command line itself), or ``other``. Worked example: ``ERROR:
Unauthorized (HTTP 401)`` after ``nova list`` gives ``{"tool": "nova", "error":
"unauthorized", "http_status": 401, "message": "Unauthorized"}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, head_lines, lark_cache, line_problem, text_lines

KIND = "cli_error"
FACT_TYPES = {
    "cli_error": {
        "doc": "an error an OpenStack client printed on NODE",
        "fields": {
            "tool": "the client (nova, keystone, glance, cinder, openstack), from the command, or empty",
            "error": "unauthorized, forbidden, refused, no-floating-ips, no-valid-host, command or other",
            "http_status": "the HTTP status it names, a number, or empty",
            "exception": "the exception class it names (novaclient 2.18 on), or empty",
            "message": "the message, without the HTTP status and request id",
            "host": "for a refused connection: the host it tried, or empty",
            "port": "for a refused connection: the port it tried, or empty",
        },
    },
}
# Never chosen by command (the table kinds own the clients' commands and hand an error
# over to this parser); an error pasted alone is recognised by its content.
COMMANDS = re.compile(r"(?!)")
FILES = None

_LOOKS = re.compile(r"^(?:ERROR(?: \(\w+\))?: |Authorization Failed: |Unable to establish connection to )")
_HTTP = re.compile(r"\s*\(HTTP (\d{3})\)")
_REQUEST_ID = re.compile(r"\s*\(Request-ID: [^)]*\)")
_POOL = re.compile(r"host='([^']+)', port=(\d+)")
_URL = re.compile(r"https?://([^:/\s]+)(?::(\d+))?")
_TOOL = re.compile(r"^\s*(nova|keystone|glance|cinder|neutron|openstack|heat|swift)\b")


class _ToLine(Transformer):
    def start(self, children):
        return children[0]

    def error_line(self, children):
        exception = None if children[1] is None else str(children[1]).strip("()")
        return (exception, str(children[-1]).strip())

    def auth_failed(self, children):
        return ("AuthorizationFailure", str(children[-1]).strip())

    def no_connection(self, children):
        return ("ConnectionRefused", f"Unable to establish connection to {children[-1]}")


_PARSER = LazyLark((Path(__file__).parent / "cli_error.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", maybe_placeholders=True,
                   transformer=_ToLine())


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return len(lines) <= 3 and bool(lines) and bool(_LOOKS.match(lines[0]))


def _classify(exception: str | None, message: str, status: int | None) -> str:
    lower = message.lower()
    if "no more floating ips" in lower or "zero floating ips" in lower:
        return "no-floating-ips"
    if "no valid host" in lower:
        return "no-valid-host"
    if status == 401 or exception in ("Unauthorized", "AuthorizationFailure") or "invalid openstack" in lower \
            and "credentials" in lower:
        return "unauthorized"
    if status == 403 or exception == "Forbidden":
        return "forbidden"
    if "connection refused" in lower or "errno 111" in lower or "unable to establish connection" in lower \
            or exception in ("ConnectionRefused", "ConnectionError"):
        return "refused"
    if exception == "CommandError":
        return "command"
    return "other"


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    tool = _TOOL.match(command)
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            exception, message = _PARSER.parse(line)
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "a client error"))
            continue
        found = _HTTP.search(message)
        status = int(found[1]) if found else None
        bare = _REQUEST_ID.sub("", _HTTP.sub("", message)).strip()
        kind = _classify(exception, bare, status)
        host = port = None
        if kind == "refused":
            where = _POOL.search(bare) or _URL.search(bare)
            if where:
                host, port = where[1], int(where[2]) if where[2] else None
        result.records.append({"type": "cli_error", "line": lineno, "tool": tool[1] if tool else None,
                               "error": kind, "http_status": status, "exception": exception,
                               "message": bare, "host": host, "port": port})
    return result
