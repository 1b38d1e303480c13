"""nova-manage's own listings: ``nova-manage service list`` and ``nova-manage floating list``.

Their print formats are nova/cmd/manage.py's (Icehouse to Mitaka)::

    print_format = "%-16s %-36s %-16s %-10s %-5s %-10s"   # Binary Host Zone Status State Updated_At
    art = (alive and ":-)") or "XXX"                     # the service's heartbeat is recent, or not
    print("%s\\t%s\\t%s\\t%s\\t%s" % (project_id, address, instance_uuid, pool, interface))
    print(_("No floating IP addresses have been defined."))

A service row says whether nova's service group still hears the service (``:-)``) or
not (``XXX``: stopped, hung, or unable to reach the broker or the database), and whether
the scheduler may use it (``enabled``/``disabled``). A floating row's ``interface`` is
the one given to ``nova-manage floating create --interface`` (or ``public_interface``
when it ran); nova binds the address on ``public_interface or interface``.

Records::

    {"type": "nova_service", "line": int, "service": str, "host": str, "zone": str,
     "enabled": bool, "alive": bool, "updated": str | None}
    {"type": "nova_floating", "line": int, "address": str, "project": str | None,
     "instance": str | None, "pool": str, "interface": str, "assigned": bool}
    {"type": "floating_pool_empty", "line": int, "message": str}

Worked example::

    nova-network     net01                                internal         enabled    XXX   2014-05-20 12:34:56

gives ``{"service": "nova-network", "host": "net01", "zone": "internal", "enabled": True,
"alive": False, "updated": "2014-05-20 12:34:56"}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, lark_problem, problem_column, text_lines

KIND = "nova_manage"
FACT_TYPES = {
    "nova_service": {
        "doc": "a nova service as nova's service list shows it (nova-manage service list, nova service-list, openstack compute service list), as seen from NODE",
        "fields": {
            "service": "the service, nova's Binary column (nova-compute, nova-network, nova-scheduler ...)",
            "host": "the host it runs on, as nova names it",
            "zone": "its availability zone",
            "enabled": "true when the scheduler may use it (enabled), false when disabled",
            "alive": "true when nova hears its heartbeat (:-), up), false when not (XXX, down)",
            "updated": "when it last reported, as printed, or empty",
        },
    },
    "nova_floating": {
        "doc": "a floating IP nova knows (nova-manage floating list), as seen from NODE",
        "fields": {
            "address": "the floating IP",
            "project": "the project holding it, or empty",
            "instance": "the instance it is associated with, or empty",
            "pool": "its pool",
            "interface": "the interface it was created for (--interface), used only while public_interface is empty",
            "assigned": "true when it is associated with an instance",
        },
    },
    "floating_pool_empty": {
        "doc": "nova-manage floating list on NODE says no floating IP is defined",
        "fields": {"message": "the message as printed"},
    },
}

COMMANDS = re.compile(r"^\s*nova-manage\s+(?:--\S+(?:\s+[^-\s]\S*)?\s+)*(?:service|floating)\s+list\b")
FILES = None

_LOOKS = re.compile(r"^Binary\s+Host\s+Zone\s+Status\s+State\s+Updated_At\s*$"
                    r"|^No floating IP addresses have been defined\.$"
                    r"|^\S+\t\d+\.\d+\.\d+\.\d+\t\S+\t\S+\t\S+$")


def _none(value: str) -> str | None:
    value = value.strip()
    return None if value == "None" else value


class _ToRecord(Transformer):
    def service_line(self, children):
        return children[0]

    def floating_line(self, children):
        return children[0]

    def service_header(self, _children):
        return None

    def service_row(self, children):
        binary, host, zone, enabled, alive, updated = (str(c) for c in children)
        return {"type": "nova_service", "service": binary, "host": host, "zone": zone,
                "enabled": enabled == "enabled", "alive": alive == ":-)", "updated": _none(updated)}

    def floating_row(self, children):
        project, address, instance, pool, interface = (str(c).strip() for c in children if c.type == "FIELD")
        return {"type": "nova_floating", "address": address, "project": _none(project),
                "instance": _none(instance), "pool": pool, "interface": interface,
                "assigned": _none(instance) is not None}

    def no_floating(self, children):
        return {"type": "floating_pool_empty", "message": str(children[0])}

    def manage_error(self, children):
        return ("error", str(children[0]))


_PARSER = LazyLark(
    (Path(__file__).parent / "nova_manage.lark").read_text(),
    parser="lalr",
    start=["service_line", "floating_line"],
    cache=lark_cache(__file__),
    lexer="contextual",
    transformer=_ToRecord(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, start: _PARSER.parse(line, start=start))


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 10) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.rstrip(" \r")
        if not line.strip():
            continue
        start = "floating_line" if "\t" in line else "service_line"
        try:
            parsed = _READ(line, start)
        except LarkError as error:
            problem = lark_problem(error)
            what = "floating IP" if start == "floating_line" else "service"
            result.problems.append(Problem(lineno, f"not a nova-manage {what} line: {problem.reason}",
                                           problem_column(problem)))
            continue
        if parsed is None:
            continue
        if isinstance(parsed, tuple):
            result.problems.append(Problem(lineno, f"nova-manage failed: {parsed[1]}"))
            continue
        result.records.append({**parsed, "line": lineno})
    return result
