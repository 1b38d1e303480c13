"""The tables the OpenStack command-line clients print, and what they say about the lab.

The clients print with prettytable: novaclient's ``utils.print_list`` and
``print_dict`` (left-aligned), keystoneclient's ``print_list`` (centred, and with
``print_empty=False``: a listing with no rows prints an empty line, not a table), and
the ``openstack`` client's cliff table formatter. A table is recognised by its header,
so a table pasted without its command is read too:

===========================================  ================================================
header                                       facts
===========================================  ================================================
Binary Host Zone Status State Updated_at     ``nova_service`` (nova service-list; openstack
                                             compute service list: ... Updated At)
ID Name Status ... Networks                  ``server`` (nova list, openstack server list)
Property Value (nova show)                   ``server``: id, name, status, ``<net> network``;
                                             ``server_group`` per security group
IP Protocol From Port To Port IP Range       ``secgroup_rule`` (nova secgroup-list-rules G)
                                             and ``secgroup_shown``
Ip Server Id Fixed Ip Pool                   ``nova_floating`` (nova floating-ip-list)
id name user_id tenant_id                    ``keystone_role`` and ``user_roles`` (keystone
                                             user-role-list)
id name enabled email / id name enabled      ``keystone_user`` / ``keystone_tenant``
ID IP Protocol ... Port Range Direction      ``secgroup_rule`` (ingress only) and
                                             ``secgroup_shown`` (openstack security group
                                             rule list G)
ID Floating IP Address Fixed IP Address      ``nova_floating`` (openstack floating ip list)
Role User Group Project ...                  ``keystone_role`` and ``user_roles`` (openstack
                                             role assignment list; glance@Default is glance)
ID Name                                      ``keystone_user`` (openstack user list)
===========================================  ================================================

``keystone user-role-list --user U --tenant T`` printing an empty line gives
``user_roles`` with no role: the user has none on that tenant; so does ``openstack role
assignment list --user U --project P``, which prints an empty line too.

Worked example (novaclient 2.17's ``nova list``)::

    | 9a8b7c6d-... | test-vm | ACTIVE | -          | Running     | novanetwork=10.20.4.5, 203.0.113.40 |

gives ``{"type": "server", "uuid": "9a8b7c6d-...", "name": "test-vm", "status": "ACTIVE",
"network": "novanetwork", "addresses": "10.20.4.5, 203.0.113.40", "address_count": 2}``.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar import cli_error
from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, lark_problem, problem_column, text_lines

KIND = "cli_table"
FACT_TYPES = {
    "nova_service": "grammar.nova_manage",
    "nova_floating": "grammar.nova_manage",
    "server": {
        "doc": "an instance as nova list / nova show / openstack server list on NODE shows it "
               "(one fact per network it is on)",
        "fields": {
            "uuid": "its id, or empty",
            "name": "its name",
            "status": "ACTIVE, BUILD, ERROR, SHUTOFF ...",
            "network": "the network's label, or empty when it has no address",
            "addresses": "its addresses on that network, as printed (fixed first, then floating)",
            "address_count": "how many addresses it has on that network: 1 is its fixed address alone",
        },
    },
    "server_group": {
        "doc": "a security group an instance is in (nova show / openstack server show on NODE)",
        "fields": {"uuid": "the instance's id", "name": "the instance's name", "group": "the group's name",
                   "groups": "how many security groups the instance is in (they admit together)"},
    },
    "secgroup_rule": {
        "doc": "a rule admitting traffic into a security group (nova secgroup-list-rules GROUP, "
               "openstack security group rule list GROUP on NODE; egress rules admit nothing in and are left out)",
        "fields": {
            "group": "the group listed (from the command), or empty",
            "protocol": "tcp, udp or icmp (any: every protocol, an openstack client rule with none)",
            "from_port": "the first port (icmp: the type, -1 any), a number",
            "to_port": "the last port (icmp: the code, -1 any), a number",
            "cidr": "the source range it admits, or empty",
            "source_group": "the group it admits, or empty",
        },
    },
    "secgroup_shown": {
        "doc": "the rules of security group GROUP were listed on NODE (whatever they are)",
        "fields": {"group": "the group listed (from the command), or empty", "rules": "how many rules it has"},
    },
    "keystone_role": {
        "doc": "a role a user holds on a tenant (keystone user-role-list, openstack role assignment list on NODE)",
        "fields": {"role": "the role's name (admin, _member_ ...)", "role_id": "its id",
                   "user": "the user as the row names it (its id; its name with openstack ... --names)",
                   "tenant": "the tenant (project) as the row names it"},
    },
    "user_roles": {
        "doc": "keystone user-role-list (or openstack role assignment list) on NODE listed USER's roles on "
               "TENANT (an empty line: none)",
        "fields": {
            "user": "the user as the command names it (--user/--user-id), or as the rows do",
            "tenant": "the tenant as the command names it (--tenant/--tenant-id), or as the rows do, or empty",
            "roles": "the roles' names, comma-separated, or empty",
            "count": "how many roles",
            "admin": "true when one of them is admin",
        },
    },
    "keystone_user": {
        "doc": "a user keystone knows (keystone user-list, openstack user list on NODE)",
        "fields": {"user_id": "its id", "name": "its name",
                   "enabled": "true when enabled, or empty (openstack user list has no Enabled column)"},
    },
    "keystone_tenant": {
        "doc": "a tenant (project) keystone knows (keystone tenant-list on NODE)",
        "fields": {"tenant_id": "its id", "name": "its name", "enabled": "true when enabled"},
    },
}

COMMANDS = re.compile(
    r"^\s*(?:nova\s+(?:--\S+(?:\s+[^-\s]\S*)?\s+)*(?:service-list|list|show|secgroup-list-rules|floating-ip-list)\b"
    r"|keystone\s+(?:--\S+(?:\s+[^-\s]\S*)?\s+)*(?:user-list|tenant-list|user-role-list|role-list)\b"
    r"|openstack\s+(?:--\S+(?:\s+[^-\s]\S*)?\s+)*(?:compute\s+service\s+list|server\s+(?:list|show)"
    r"|user\s+list|project\s+list|security\s+group\s+rule\s+list|floating\s+ip\s+list"
    r"|role\s+assignment\s+list)\b)")
FILES = None
# keystoneclient's empty listing is an empty line: its absence of roles is the fact.
READS_EMPTY_OUTPUT = True

_BORDER = re.compile(r"^\+(?:-+\+)+\s*$")


class _ToLine(Transformer):
    def start(self, children):
        return children[0]

    def border(self, _children):
        return ("border",)

    def row(self, children):
        return ("row", [str(c).strip() for c in children if c.type == "CELL"])


_PARSER = LazyLark(
    (Path(__file__).parent / "cli_table.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    transformer=_ToLine(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _PARSER.parse(line))


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 10) if l.strip()]
    return len(lines) >= 3 and bool(_BORDER.match(lines[0])) and lines[1].lstrip().startswith("|")


def _option(command: str, *names: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for index, word in enumerate(words):
        for name in names:
            if word == name and index + 1 < len(words):
                return words[index + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def _positional_after(command: str, verb: str) -> str | None:
    words = command.split()
    if verb in words:
        rest = [w for w in words[words.index(verb) + 1:] if not w.startswith("-")]
        return rest[0] if rest else None
    return None


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "-", "None") else value


def _int(value: str):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip().lower())


def _servers(row: dict) -> list[dict]:
    networks = row.get("networks") or ""
    base = {"type": "server", "uuid": _none(row.get("id")), "name": row.get("name"), "status": row.get("status")}
    found = []
    # novaclient: "private=10.0.0.2, 172.16.1.5; other=..."; openstack: "private=10.0.0.2, 172.16.1.5"
    for part in filter(None, (p.strip() for p in networks.split(";"))):
        label, _, addresses = part.partition("=")
        listed = [a.strip() for a in addresses.split(",") if a.strip()]
        found.append({**base, "network": label.strip(), "addresses": ", ".join(listed),
                      "address_count": len(listed)})
    return found or [{**base, "network": None, "addresses": None, "address_count": 0}]


# novaclient 2.17 joins the names ("default, web"); the openstack client prints one
# "name='default'" per group, a wrapped row each.
_GROUP_NAME = re.compile(r"name='([^']*)'")


def _server_groups(props: dict) -> list[dict]:
    line, value = props["security_groups"]
    names = [n for n in dict.fromkeys(_GROUP_NAME.findall(value) or [n.strip() for n in value.split(",")])
             if _none(n)]
    return [{"type": "server_group", "line": line, "uuid": props["id"][1],
             "name": props.get("name", (0, None))[1], "group": name, "groups": len(names)}
            for name in names]


def _records(header: list[str], rows: list[tuple[int, list[str]]], command: str) -> list[dict] | None:
    """The facts of one table; None when its columns are none stackdoc reads."""
    keys = [_key(h) for h in header]
    columns = set(keys)
    records = []
    dict_rows = [(line, dict(zip(keys, cells))) for line, cells in rows]
    if {"binary", "host", "zone", "status", "state"} <= columns:
        for line, row in dict_rows:
            records.append({"type": "nova_service", "line": line, "service": row["binary"],
                            "host": row["host"], "zone": row["zone"],
                            "enabled": row["status"].lower() == "enabled",
                            "alive": row["state"].lower() == "up",
                            "updated": _none(row.get("updated_at"))})
    elif {"id", "name", "status", "networks"} <= columns:
        for line, row in dict_rows:
            records.extend({**r, "line": line} for r in _servers(row))
    elif columns == {"property", "value"} or columns == {"field", "value"}:
        props = {row.get("property", row.get("field")): (line, row["value"]) for line, row in dict_rows}
        is_server = (re.search(r"\bnova\b.*\bshow\b|\bserver\s+show\b", command)
                     or any(str(k).endswith(" network") or str(k).startswith("OS-EXT-SRV-ATTR") for k in props))
        if is_server and "id" in props and "status" in props:
            networks = "; ".join(f"{k[:-len(' network')]}={v}" for k, (_l, v) in props.items()
                                 if k.endswith(" network"))
            if "addresses" in props:  # openstack server show
                networks = props["addresses"][1]
            line = props["id"][0]
            records.extend({**r, "line": line} for r in _servers(
                {"id": props["id"][1], "name": props.get("name", (0, None))[1],
                 "status": props["status"][1], "networks": networks}))
            if "security_groups" in props:
                records.extend(_server_groups(props))
        else:
            return None  # another object's properties (a volume, an image ...)
    elif {"ip_protocol", "from_port", "to_port"} <= columns:
        group = _positional_after(command, "secgroup-list-rules")
        for line, row in dict_rows:
            records.append({"type": "secgroup_rule", "line": line, "group": group,
                            "protocol": row["ip_protocol"].lower(), "from_port": _int(row["from_port"]),
                            "to_port": _int(row["to_port"]), "cidr": _none(row.get("ip_range")),
                            "source_group": _none(row.get("source_group"))})
        records.append({"type": "secgroup_shown", "line": rows[0][0] if rows else 1, "group": group,
                        "rules": len(rows)})
    elif {"ip_protocol", "port_range", "direction"} <= columns:   # openstack security group rule list
        group = _positional_after(command, "list") if re.search(r"\brule\s+list\b", command) else None
        ingress = [(line, row) for line, row in dict_rows if row["direction"].lower() == "ingress"]
        for line, row in ingress:  # egress rules admit nothing in
            low, high = _port_range(row["port_range"], row["ip_protocol"])
            records.append({"type": "secgroup_rule", "line": line, "group": group,
                            "protocol": (_none(row["ip_protocol"]) or "any").lower(), "from_port": low,
                            "to_port": high, "cidr": _none(row.get("ip_range")),
                            "source_group": _none(row.get("remote_security_group"))})
        records.append({"type": "secgroup_shown", "line": rows[0][0] if rows else 1, "group": group,
                        "rules": len(ingress)})
    elif {"floating_ip_address", "fixed_ip_address"} <= columns:   # openstack floating ip list
        for line, row in dict_rows:
            records.append({"type": "nova_floating", "line": line, "address": row["floating_ip_address"],
                            "project": _none(row.get("project")), "instance": None,  # a port, not an instance
                            "pool": _none(row.get("floating_network")), "interface": None,
                            "assigned": _none(row.get("fixed_ip_address")) is not None})
    elif {"role", "user", "project"} <= columns:   # openstack role assignment list
        records.extend(_role_assignments(command, dict_rows))
    elif columns == {"id", "name"} and re.search(r"\b(?:user|project)\s+list\b", command):
        fact_type, key = (("keystone_user", "user_id") if re.search(r"\buser\s+list\b", command)
                          else ("keystone_tenant", "tenant_id"))
        for line, row in dict_rows:   # openstack user list / project list: no Enabled column
            records.append({"type": fact_type, "line": line, key: row["id"], "name": row["name"],
                            "enabled": None})
    elif {"ip", "fixed_ip", "pool"} <= columns:
        for line, row in dict_rows:
            records.append({"type": "nova_floating", "line": line, "address": row["ip"], "project": None,
                            "instance": _none(row.get("server_id") or row.get("instance_id")),
                            "pool": row["pool"], "interface": None,
                            "assigned": _none(row.get("fixed_ip")) is not None})
    elif {"id", "name", "user_id", "tenant_id"} <= columns:
        for line, row in dict_rows:
            records.append({"type": "keystone_role", "line": line, "role": row["name"], "role_id": row["id"],
                            "user": row["user_id"], "tenant": row["tenant_id"]})
        records.append(_user_roles(command, [r for _l, r in dict_rows], rows[0][0] if rows else 1))
    elif {"id", "name", "enabled"} <= columns:
        fact_type = "keystone_user" if "email" in columns or "user" in command else "keystone_tenant"
        for line, row in dict_rows:
            records.append({"type": fact_type, "line": line, ("user_id" if fact_type == "keystone_user" else "tenant_id"): row["id"], "name": row["name"],
                            "enabled": row["enabled"].lower() == "true"})
    else:
        return None
    return records


def _port_range(text: str, protocol: str) -> tuple[int | None, int | None]:
    """The openstack client's Port Range (22:22, 1:65535, empty) as from and to ports;
    empty is every port (icmp: every type and code, -1 as nova says)."""
    found = re.fullmatch(r"\s*(\d+):(\d+)\s*", text or "")
    if found:
        return int(found[1]), int(found[2])
    if (protocol or "").lower() in ("tcp", "udp"):
        return 1, 65535
    return -1, -1


def _unscoped(name: str | None) -> str | None:
    """glance@Default -> glance (the openstack client names a user or project with --names)."""
    name = _none(name)
    return None if name is None else name.rsplit("@", 1)[0]


def _role_assignments(command: str, dict_rows: list[tuple[int, dict]]) -> list[dict]:
    """keystone_role per row, and user_roles per user and project (as keystone user-role-list)."""
    records, by_pair = [], {}
    for line, row in dict_rows:
        user, project = _unscoped(row.get("user")), _unscoped(row.get("project"))
        if user is None or project is None:
            continue  # a group's or a domain's assignment
        records.append({"type": "keystone_role", "line": line, "role": row["role"], "role_id": None,
                        "user": user, "tenant": project})
        by_pair.setdefault((user, project), (line, []))[1].append(row["role"])
    for (user, project), (line, roles) in by_pair.items():
        names = sorted(roles)
        records.append({"type": "user_roles", "line": line, "user": user, "tenant": project,
                        "roles": ", ".join(names), "count": len(names), "admin": "admin" in names})
    return records


def _user_roles(command: str, rows: list[dict], line: int) -> dict:
    user = _option(command, "--user", "--user-id", "--user_id") or (rows[0]["user_id"] if rows else None)
    tenant = (_option(command, "--tenant", "--tenant-id", "--tenant_id")
              or (rows[0]["tenant_id"] if rows else None))
    names = sorted(r["name"] for r in rows)
    return {"type": "user_roles", "line": line, "user": user, "tenant": tenant,
            "roles": ", ".join(names), "count": len(names), "admin": "admin" in names}


def parse(text: str, command: str = "") -> ParseResult:
    if cli_error.looks_like(text):
        return cli_error.parse(text, command)  # the command failed: no table, its error
    result = ParseResult()
    lines = text_lines(text)
    if not any(line.strip() for line in lines):
        if re.search(r"\buser-role-list\b", command):
            result.records.append(_user_roles(command, [], 1))
        elif re.search(r"\brole\s+assignment\s+list\b", command) and _option(command, "--user"):
            # the openstack client prints an empty line, too, for no assignment
            result.records.append({"type": "user_roles", "line": 1, "user": _option(command, "--user"),
                                   "tenant": _option(command, "--project"), "roles": "", "count": 0,
                                   "admin": False})
        return result
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    borders = 0

    def close() -> None:
        nonlocal header, rows, borders, header_line
        if header is not None:
            records = _records(header, rows, command)
            if records is None:
                records = []
                result.problems.append(Problem(header_line, "a table whose columns ("
                                               + ", ".join(header) + ") stackdoc does not read"))
            result.records.extend(records)
        header, rows, borders = None, [], 0

    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            close()
            continue
        try:
            parsed = _READ(line, "")
        except LarkError as error:
            problem = lark_problem(error)
            result.problems.append(Problem(lineno, f"not a line of a table: {problem.reason}",
                                           problem_column(problem)))
            continue
        if parsed[0] == "border":
            borders += 1
            if borders == 3:  # the closing border: a new table may follow
                close()
            continue
        cells = parsed[1]
        if header is None:
            if borders != 1:
                result.problems.append(Problem(lineno, "a table row with no header border above it"))
                continue
            header, header_line = cells, lineno
        elif len(cells) != len(header):
            result.problems.append(Problem(lineno, f"a row of {len(cells)} cells in a table of {len(header)} columns"))
        elif rows and not cells[0] and header[0].lower() in ("property", "field"):
            rows[-1][1][1] += " " + cells[1]  # prettytable wraps a long value onto the next row
        else:
            rows.append((lineno, list(cells)))   # a row of its own: a wrapped value is added to it
    close()
    return result
