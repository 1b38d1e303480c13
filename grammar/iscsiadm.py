"""open-iscsi's ``iscsiadm``: sessions, targets, and its errors.

Commands: ``iscsiadm -m session``, ``iscsiadm -m node [-T T -p P] [--login|--rescan]``,
``iscsiadm -m discovery -t sendtargets -p P`` (also ``-t st``). Forms read::

    tcp: [1] 10.0.0.5:3260,1 iqn.2010-10.org.openstack:volume-6d6c... (non-flash)
    10.0.0.5:3260,1 iqn.2010-10.org.openstack:volume-6d6c...
    iscsiadm: No session found.

Records::

    {"type": "iscsi_session", "line": int, "portal": str, "port": int, "target": str}
    {"type": "iscsi_target", "line": int, "portal": str, "port": int, "target": str}
    {"type": "iscsiadm_error", "line": int, "message": str, "reason": str,
     "portal": str | None}

``iscsi_session`` is a logged-in session (``-m session``); ``iscsi_target`` a target
a portal offers (discovery) or a node record. ``reason`` names the error:
``no-session`` ("No session found."), ``no-active-sessions``, ``no-records``,
``refused`` ("cannot make connection to H: Connection refused"), ``no-route``,
``timed-out`` ("connect to H timed out"), ``login-failed``, ``no-portals``,
``daemon-unreachable`` ("can not connect to iSCSI daemon"), ``driver-missing``,
``discovery-failed``, or ``other``. ``portal`` is the address the message names, if any.
iscsiadm exits 21 (ISCSI_ERR_NO_OBJS_FOUND) on the first three.

Lines of other programs that iscsiadm's own calls print (systemd, libkmod) are read as
problems naming their line.

Worked example, ``iscsiadm -m node -T iqn.2010-10.org.openstack:volume-0b1f... -p
127.0.0.1:3260 --rescan`` with no session (Debian 12, open-iscsi 2.1.8)::

    iscsiadm: No session found.

gives ``{"type": "iscsiadm_error", "message": "No session found.", "reason": "no-session",
"portal": None}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, head_lines, lark_cache, line_problem, text_lines

KIND = "iscsiadm"
FACT_TYPES = {
    "iscsi_session": {
        "doc": "an iSCSI session NODE is logged in to (iscsiadm -m session)",
        "fields": {"portal": "the portal's address", "port": "its port", "target": "the target's IQN"}},
    "iscsi_target": {
        "doc": "an iSCSI target a portal offers NODE (iscsiadm discovery), or a node record",
        "fields": {"portal": "the portal's address", "port": "its port", "target": "the target's IQN"}},
    "iscsiadm_error": {
        "doc": "an error iscsiadm printed on NODE",
        "fields": {"message": "the message, without 'iscsiadm: '",
                   "reason": "no-session, no-active-sessions, no-records, refused, no-route, timed-out, "
                             "login-failed, no-portals, daemon-unreachable, driver-missing, "
                             "discovery-failed or other",
                   "portal": "the address the message names, or empty"}},
}

COMMANDS = re.compile(r"^\s*iscsiadm\b")
FILES = None

_REASONS = (
    ("no-session", re.compile(r"^No session found")),
    ("no-active-sessions", re.compile(r"^No active sessions")),
    ("no-records", re.compile(r"^No records found")),
    ("refused", re.compile(r"Connection refused")),
    ("no-route", re.compile(r"No route to host|Network is unreachable")),
    ("timed-out", re.compile(r"timed out")),
    ("login-failed", re.compile(r"[Ll]ogin (?:failed|I/O error)|login retries")),
    ("no-portals", re.compile(r"^No portals found")),
    ("daemon-unreachable", re.compile(r"can not connect to iSCSI daemon")),
    ("driver-missing", re.compile(r"driver .* not (?:loaded|found)|Could not insert module|driver not found")),
    ("discovery-failed", re.compile(r"[Dd]iscovery")),
)
_ADDRESS = re.compile(r"(?:to|connect to|portal:?)\s+\[?((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]+)\]?")
_LOOKS = re.compile(r"^(?:iscsiadm: |[a-z_]+: \[\d+\] \S+:\d+,-?\d+ (?:iqn|eui|naa)\.)")


class _ToLine(Transformer):
    def session(self, children):
        _transport, _sid, portal, target, _flash = children
        return ("iscsi_session", str(portal), str(target))

    def node_record(self, children):
        return ("iscsi_target", str(children[0]), str(children[1]))

    def message(self, children):
        return ("message", str(children[0])[len("iscsiadm: "):].strip())


_PARSER = LazyLark(
    (Path(__file__).parent / "iscsiadm.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToLine(),
)


def _portal(text: str) -> tuple[str, int]:
    address_port = text.rsplit(",", 1)[0]
    address, _, port = address_port.rpartition(":")
    return address.strip("[]"), int(port)


def _reason(message: str) -> str:
    return next((name for name, pattern in _REASONS if pattern.search(message)), "other")


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    for lineno, raw in enumerate(text_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            tag, *fields = _PARSER.parse(raw.strip())
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "an iscsiadm"))
            continue
        if tag == "message":
            message = fields[0]
            named = _ADDRESS.search(message)
            result.records.append({"type": "iscsiadm_error", "line": lineno, "message": message,
                                   "reason": _reason(message), "portal": named[1] if named else None})
            continue
        portal, port = _portal(fields[0])
        result.records.append({"type": tag, "line": lineno, "portal": portal, "port": port,
                               "target": fields[1]})
    return result
