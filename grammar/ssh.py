"""What the OpenSSH client (``ssh -v``, and ssh's own errors without ``-v``) says about
reaching a host.

Forms read (OpenSSH 6.6 of Ubuntu 14.04 to 9.2 of Debian 12)::

    OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026
    debug1: Connecting to 198.51.100.2 [198.51.100.2] port 22.
    debug1: Connection established.
    debug1: connect to address 198.51.100.2 port 22: Connection timed out
    ssh: connect to host 198.51.100.2 port 22: Connection timed out
    root@198.51.100.2: Permission denied (publickey).
    Authenticated to 198.51.100.2 ([198.51.100.2]:22) using "publickey".
    debug1: Authentication succeeded (publickey).                  (OpenSSH 6)

Every other ``debug1:`` line is part of the run and says nothing more about reaching the
host; after the login, what the remote command printed is its own (not read).

Each run gives one ``reachability`` record (declared in grammar/ping.py) with ``tool``
ssh, ``protocol`` tcp, ``target`` the address ssh connected to (``[A]`` of "Connecting
to", else the host it names, else the command's), ``port``, and ``outcome``:
``answered`` (the TCP connection was made: whatever happened to the login next, the host
and its sshd answer), ``refused`` (Connection refused: the host answers, nothing listens),
``no-answer`` (timed out: the SYN or its answer was dropped on the way, e.g. by a security
group or a firewall) or ``unreachable`` (No route to host, Network is unreachable).
``detail`` says what was printed: the failure's reason, or for a connection what became of
the login (``Connection established; Permission denied (publickey)``).

Worked example, ``ssh -v root@198.51.100.2`` with port 22 dropped by iptables::

    debug1: Connecting to 198.51.100.2 [198.51.100.2] port 22.
    debug1: connect to address 198.51.100.2 port 22: Connection timed out
    ssh: connect to host 198.51.100.2 port 22: Connection timed out

gives ``{"tool": "ssh", "target": "198.51.100.2", "port": 22, "protocol": "tcp",
"outcome": "no-answer", "detail": "Connection timed out"}`` (line 3).
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "ssh"
FACT_TYPES = {"reachability": "grammar.ping"}
# ssh -v (any option cluster holding v); a plain `ssh host command` prints the remote
# command's output, which is sniffed by its content instead.
COMMANDS = re.compile(r"^\s*ssh\s+(?:\S+\s+)*-[a-zA-Z]*v")
FILES = None

_LOOKS = re.compile(r"^(?:OpenSSH_\d\S*[ ,].*\bOpenSSL |debug1: (?:Reading configuration data|Connecting to) "
                    r"|ssh: connect to host \S+ port \d+: |ssh: Could not resolve hostname "
                    r"|\S+@\S+: Permission denied \(|Warning: Permanently added ')")
# ssh's options that take a value (ssh(1), OpenSSH 9.2)
_VALUED = set("BbcDEeFIiJLlmOopQRSWw")


class _ToLine(Transformer):
    def version(self, _children):
        return ("version",)

    def connecting(self, children):
        _key, host, address, port = children
        return ("connecting", str(host), str(address), int(port))

    def established(self, _children):
        return ("established",)

    def address_failed(self, children):
        _key, address, port, reason = children
        return ("address_failed", str(address), int(port), str(reason).strip())

    def host_failed(self, children):
        host, port, reason = children
        return ("host_failed", str(host), int(port), str(reason).strip())

    def resolve_failed(self, children):
        return ("resolve_failed", str(children[0]).removeprefix("ssh: ").strip())

    def denied(self, children):
        who, methods = children
        host = str(who).rstrip(":").rpartition("@")[2] if who is not None else None
        return ("login", host, f"Permission denied {methods}")

    def authenticated(self, children):
        host, address, port, method = children
        return ("login", str(address), f"authenticated ({str(method)[1:-1]})")

    def auth_succeeded(self, children):
        return ("login", None, f"authenticated {str(children[1])}")

    def closed(self, children):
        return ("closed", str(children[0]).strip())

    no_banner = closed

    def debug_other(self, _children):
        return ("skip",)

    note = debug_other


_PARSER = LazyLark((Path(__file__).parent / "ssh.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", maybe_placeholders=True,
                   transformer=_ToLine())

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _PARSER.parse(line))


def _outcome(reason: str) -> str:
    lowered = reason.lower()
    if "refused" in lowered:
        return "refused"
    if "timed out" in lowered:
        return "no-answer"
    return "unreachable"


def _destination(command: str) -> tuple[str | None, int]:
    """The host and port an ssh command line names (``ssh -p 2222 root@host cmd``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words or words[0] != "ssh":
        return None, 22
    port, host, index = 22, None, 1
    while index < len(words):
        word = words[index]
        if word.startswith("-") and len(word) > 1:
            letters = word[1:]
            for position, letter in enumerate(letters):
                if letter in _VALUED:
                    value = letters[position + 1:] or (words[index + 1] if index + 1 < len(words) else "")
                    if not letters[position + 1:]:
                        index += 1
                    if letter == "p" and value.isdigit():
                        port = int(value)
                    break
            index += 1
            continue
        host = word.rpartition("@")[2]
        break
    return host, port


def _record(line: int, target: str, port: int, outcome: str, detail: str) -> dict:
    return {"type": "reachability", "line": line, "tool": "ssh", "target": target, "port": port,
            "protocol": "tcp", "outcome": outcome, "detail": detail}


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    command_host, command_port = _destination(command.strip())
    target, port = command_host, command_port
    connection: dict | None = None   # the run's connection, once established
    logged_in = False                # after the login, lines are the remote command's

    def finish() -> None:
        nonlocal connection, logged_in
        if connection is not None:
            result.records.append(connection)
        connection, logged_in = None, False

    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            parsed = _READ(line, "")
        except LarkError as error:
            if not logged_in:
                result.problems.append(line_problem(lineno, error, "an ssh"))
            continue
        tag = parsed[0]
        if tag == "version":
            finish()
            target, port = command_host, command_port
        elif tag == "connecting":
            finish()
            target, port = parsed[2], parsed[3]
        elif tag == "established":
            if target is None:
                result.problems.append(Problem(lineno, "a connection established, but to no host named"))
                continue
            connection = _record(lineno, target, port, "answered", "Connection established")
        elif tag == "address_failed":
            target, port = parsed[1], parsed[2]  # ssh may try the host's next address
        elif tag == "host_failed":
            _, host, failed_port, reason = parsed
            if target is None or connection is not None:
                target = host
            result.records.append(_record(lineno, target, failed_port, _outcome(reason), reason))
            connection = None
        elif tag == "resolve_failed":
            result.problems.append(Problem(lineno, f"the host name did not resolve: {parsed[1]}"))
        elif tag in ("login", "closed"):
            if connection is None:  # without -v: the login's answer is all there is
                host = parsed[1] if tag == "login" else None
                where = host or target
                if where is None:
                    result.problems.append(Problem(lineno, f"{parsed[-1]}, but no host is named"))
                    continue
                connection = _record(lineno, where, port, "answered", parsed[-1])
            else:
                connection["detail"] = f"Connection established; {parsed[-1]}"
            logged_in = tag == "login" and parsed[-1].startswith("authenticated")
    finish()
    return result
