"""What the ``mysql`` client says when it cannot connect or log in.

A student checks a service's database credentials by hand: ``mysql -u nova -p -h
controller nova``. MySQL's answer tells a refused login from a server that does not
answer at all. Forms read (MySQL 5.5, Ubuntu 14.04, 2014; MariaDB 10.11, Debian 12)::

    ERROR 1045 (28000): Access denied for user 'nova'@'localhost' (using password: YES)
    ERROR 1044 (42000): Access denied for user 'nova'@'%' to database 'keystone'
    ERROR 1049 (42000): Unknown database 'nova'
    ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/var/run/mysqld/mysqld.sock' (2)
    ERROR 2003 (HY000): Can't connect to MySQL server on '10.0.0.11' (111)        MySQL 5.5
    ERROR 2002 (HY000): Can't connect to server on '127.0.0.1' (115)              MariaDB 10.11
    ERROR 2005 (HY000): Unknown MySQL server host 'db-nowhere' (-2)

MariaDB's client reports a refused TCP connection as 2002 with errno 115 (its connect is
non-blocking: EINPROGRESS, then the refusal), where MySQL said 2003 with 111
(ECONNREFUSED); both are ``refused``. Any other output (a query's result, a table) is the
answer of a server that let the client in, and gives no record; the password warning of
MySQL 5.6 on is skipped.

Record, one per error line::

    {"type": "db_client_error", "line": int, "tool": "mysql", "code": int, "sqlstate": str | None,
     "error": str, "user": str | None, "client": str | None, "using_password": "YES" | "NO" | None,
     "database": str | None, "server": str | None, "local": bool, "loopback": bool,
     "errno": int | None,
     "message": str, "service": "mysql"}

``error`` is ``access-denied`` (1045: the server runs and refuses the credentials),
``database-denied`` (1044), ``unknown-database`` (1049), ``refused`` (nothing listens where
the client went), ``timed-out`` (no answer: dropped on the way), ``unreachable`` (no
route), ``no-socket`` (no server made the local socket: none runs on this node, or it
uses another path), ``unknown-host``, ``connection-lost`` or ``other``. ``server`` is the
host the client tried (from the message, else the command's ``-h``; ``localhost`` for the
local socket), ``local`` is true for the local socket, ``loopback`` for any way to the
node itself (the socket, localhost, 127.x, ::1).

Worked example: ``mysql -u nova -p -h 10.0.0.11 nova`` printing ``ERROR 2003 (HY000):
Can't connect to MySQL server on '10.0.0.11' (111)`` gives ``{"code": 2003, "error":
"refused", "server": "10.0.0.11", "local": False, "errno": 111, "user": "nova"}``.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, head_lines, lark_cache, line_problem, text_lines

KIND = "mysql_client"
FACT_TYPES = {
    "db_client_error": {
        "doc": "the mysql client on NODE could not connect to a database server or log in to it",
        "fields": {
            "tool": "mysql or mariadb, from the command",
            "code": "MySQL's error number (1045, 2002, 2003 ...)",
            "sqlstate": "its SQLSTATE (28000, HY000 ...), or empty",
            "error": "access-denied (1045: the server runs and refuses the credentials), database-denied, "
                     "unknown-database, refused (nothing listens there), timed-out, unreachable, no-socket "
                     "(no server made the local socket), unknown-host, connection-lost or other",
            "user": "the database user (the message's, else the command's -u), or empty",
            "client": "for access-denied: the client host the server saw, or empty",
            "using_password": "for access-denied: YES or NO, as printed",
            "database": "the database named (the message's, else the command's), or empty",
            "server": "the host the client tried (localhost for the local socket), or empty",
            "local": "true when it went through the local socket (no -h, or -h localhost)",
            "loopback": "true when the server it tried is this node itself (the local socket, localhost, "
                        "127.x, ::1)",
            "errno": "the system error number it printed (111 refused, 110 timed out, 2 no such file ...), or empty",
            "message": "the message as printed",
            "service": "the service the client talks to, by the one name service_state uses: mysql",
        },
    },
}

COMMANDS = re.compile(r"^\s*(?:mysql|mariadb)(?:\s|$)")
FILES = None
_LOOKS = re.compile(r"^ERROR \d{4} \([0-9A-Z]{5}\)(?: at line \d+)?: "
                    r"(?:Access denied for user|Can't connect to|Unknown (?:MySQL |MariaDB )?server host|Unknown database)",
                    re.IGNORECASE)
_LOOPBACK = re.compile(r"localhost|127(?:\.\d+){3}|::1|\[::1\]")
_ERRNO_ERROR = {111: "refused", 115: "refused", 110: "timed-out", 113: "unreachable", 101: "unreachable"}
# the client's options that take a value (mysql --help)
_VALUED = set("uhPSDep")


class _ToLine(Transformer):
    def error(self, children):
        code, sqlstate, _at_line, message = children
        return ("error", int(str(code).split()[1]), None if sqlstate is None else str(sqlstate).strip("()"), message)

    def message(self, children):
        child = children[0]
        if not isinstance(child, dict):  # OTHER_MESSAGE
            return {"error": "other"}
        return child

    def user_denied(self, children):
        _key, user, client, yes_no = children
        return {"error": "access-denied", "user": _unquote(user), "client": _unquote(client),
                "using_password": str(yes_no)}

    def database_denied(self, children):
        _key, user, client, database = children
        return {"error": "database-denied", "user": _unquote(user), "client": _unquote(client),
                "database": _unquote(database)}

    def socket_failed(self, children):
        _key, socket, errno = children
        return {"error": "no-socket" if errno == 2 else _ERRNO_ERROR.get(errno, "refused"),
                "server": "localhost", "local": True, "errno": errno, "socket": _unquote(socket)}

    def host_failed(self, children):
        _key, server, errno = children
        host = _unquote(server)
        if re.fullmatch(r"[^:]+:\d+", host):  # MySQL 8: 'host:3306'
            host = host.rsplit(":", 1)[0]
        return {"error": _ERRNO_ERROR.get(errno, "other"), "server": host, "errno": errno}

    def unknown_host(self, children):
        _key, server, errno = children
        return {"error": "unknown-host", "server": _unquote(server), "errno": errno}

    def unknown_database(self, children):
        return {"error": "unknown-database", "database": _unquote(children[1])}

    def connection_lost(self, _children):
        return {"error": "connection-lost"}

    def errno(self, children):
        return int(children[0])

    def warning(self, _children):
        return ("skip",)


def _unquote(token) -> str:
    return str(token)[1:-1]


_PARSER = LazyLark((Path(__file__).parent / "mysql_client.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", maybe_placeholders=True,
                   transformer=_ToLine())


def _command_options(command: str) -> dict:
    """What a mysql command line names: its tool, -u user, -h host, database."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    found: dict = {"tool": words[0] if words else "mysql", "user": None, "host": None, "database": None}
    index = 1
    while index < len(words):
        word = words[index]
        long = re.fullmatch(r"--(user|host|database)=(.*)", word)
        if long:
            found["database" if long[1] == "database" else long[1]] = long[2]
        elif word in ("--user", "--host", "--database") and index + 1 < len(words):
            found[word[2:]] = words[index + 1]
            index += 1
        elif word.startswith("--"):
            pass
        elif word.startswith("-") and len(word) > 1:
            letter, rest = word[1], word[2:]
            if letter in _VALUED:
                value = rest
                if not rest and letter != "p":  # -p alone asks for the password
                    value = words[index + 1] if index + 1 < len(words) else ""
                    index += 1
                if letter == "u":
                    found["user"] = value
                elif letter == "h":
                    found["host"] = value
                elif letter == "D":
                    found["database"] = value
        elif found["database"] is None:
            found["database"] = word
        index += 1
    return found


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0].strip()))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    options = _command_options(command.strip())
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line.startswith(("ERROR", "Warning:", "mysql: [Warning]")):
            continue  # a query's result: the server let the client in
        try:
            parsed = _PARSER.parse(line)
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "a mysql client error"))
            continue
        if parsed[0] != "error":
            continue
        _, code, sqlstate, said = parsed
        local = said.get("local")
        if local is None:
            local = options["host"] in (None, "localhost") and said["error"] not in ("unknown-host",) \
                and "server" not in said
        record = {
            "type": "db_client_error", "line": lineno,
            "tool": options["tool"] if options["tool"] in ("mysql", "mariadb") else "mysql",
            "code": code, "sqlstate": sqlstate, "error": said["error"],
            "user": said.get("user") or options["user"], "client": said.get("client"),
            "using_password": said.get("using_password"),
            "database": said.get("database") or options["database"],
            "server": said.get("server") or options["host"] or ("localhost" if local else None),
            "local": bool(local), "errno": said.get("errno"),
            "message": line.split(": ", 1)[1] if ": " in line else line,
            "service": "mysql",  # MariaDB's server too: kb names both mysql
        }
        record["loopback"] = bool(local) or bool(_LOOPBACK.fullmatch(record["server"] or ""))
        result.records.append(record)
    return result
