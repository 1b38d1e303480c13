"""Kernel parameters: ``sysctl`` output, sysctl.conf files and ``/proc/sys`` reads.

Commands: ``sysctl -a``, ``sysctl net.ipv4.ip_forward``, ``sysctl -w
net.ipv4.ip_forward=1`` (echoes the new setting), ``sysctl -p [FILE]``, ``sysctl
--system``, ``sysctl -n KEY...`` (values only).  Files (read with cat, grep, ...):
``/proc/sys/...`` (the value alone: ``cat /proc/sys/net/ipv4/ip_forward`` prints
``0``; ``grep . /proc/sys/net/ipv4/conf/*/rp_filter`` prints ``path:value``),
``/etc/sysctl.conf`` and ``sysctl.d/*.conf`` (``key=value`` lines, ``#``/``;``
comments).

Records::

    {"type": "sysctl", "line": 1, "key": "net.ipv4.ip_forward", "value": "1"}

The key is always dotted: sysctl's slashed form (``net/ipv4/ip_forward``) and a
``/proc/sys`` path become ``net.ipv4.ip_forward`` (a dot inside a component, as in
``eth0.100``, becomes ``/``, as sysctl itself shows it), and the leading ``-`` of an
ignore-if-missing conf line is dropped.  Where the text has only values (``sysctl -n``,
``cat /proc/sys/...``), the keys are the command's, in order, or the file names that
``head``/``tail`` print (``==> /proc/sys/... <==``); a value from a glob (``cat
/proc/sys/net/ipv4/conf/*/rp_filter``) cannot be told apart and is a problem.  The value is the text
after ``=``, blanks around it trimmed (``"32768\\t60999"``).

An error about a key (``sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables:
No such file or directory``, the br_netfilter module not loaded) is a fact, not a
problem: ``{"type": "sysctl_error", "line": n, "key":
"net.bridge.bridge-nf-call-iptables", "message": "cannot stat
/proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory"}`` (key None
when the message names none; ``cat: /etc/sysctl.conf: Permission denied`` too).

Worked example, ``sysctl -w net.ipv4.ip_forward=1`` printing ``net.ipv4.ip_forward = 1``,
gives ``{"type": "sysctl", "line": 1, "key": "net.ipv4.ip_forward", "value": "1"}``.
"""
from __future__ import annotations

import re
from itertools import islice
import shlex
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, lark_cache, lark_problem

KIND = "sysctl"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "sysctl": {
        "doc": "a kernel parameter of NODE (sysctl, /proc/sys, sysctl.conf)",
        "fields": {
            "key": "the dotted key, e.g. net.ipv4.ip_forward",
            "value": "its value as text, e.g. 1",
        },
    },
    "sysctl_error": {
        "doc": "sysctl on NODE could not read a key (e.g. a module not loaded)",
        "fields": {"key": "the key named, or empty", "message": "the message as printed"},
    },
}

# Where a command starts: the line start, after a shell separator, or after a
# wrapper (sudo, watch -n 2, ip netns exec NS, docker exec CTR).
_COMMAND_START = (
    r"(?:^|[;&|(]\s*|\bexec\s+(?:-\S+\s+)*\S+\s+(?:--\s+)?"
    r"|\b(?:sudo|watch|time|nice|timeout(?:\s+-\S+)*\s+\S+)\s+(?:-\S+\s+(?:\d+\s+)?)*)"
)
# Every sysctl run prints settings or errors, but for its help and version.
COMMANDS = re.compile(_COMMAND_START + r"sysctl(?!\s+(?:-h|--help|-V|--version)\b)(?=\s|$|[|;&>)])")
FILES = re.compile(r"^/proc/sys/|(?:^|/)sysctl\.conf$|(?:^|/)sysctl\.d/")

_PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=["line", "bare_value"],
    maybe_placeholders=True,
)

_TOP_LEVEL = r"(?:net|kernel|vm|fs|dev|user|abi|crypto|debug|sunrpc)"
_SETTING_LINE = re.compile(r"^-?" + _TOP_LEVEL + r"[./][\w./:-]*\s*=")
_KEY_LIKE = re.compile(r"^-?[a-z][\w-]*(?:[./][\w:-]+)+\s*=")
_PROC_LINE = re.compile(r"^/proc/sys/[^\s:]+:")
_PROC_PATH = re.compile(r"/proc/sys/[^\s:'\"]+")
_GLOB = re.compile(r"[*?\[]")
_QUOTED_KEY = re.compile(r"""["']([^"']+)["']""")


def looks_like(text: str) -> bool:
    """True when the first lines that are not comments are all key = value settings
    (or sysctl's own errors) and one is under a kernel top-level (net., kernel., ...),
    or when they are `grep . /proc/sys/...` lines."""
    lines = list(islice((line.strip() for line in text.split("\n")
                         if line.strip() and not line.lstrip().startswith(("#", ";"))), 6))
    if lines and all(_PROC_LINE.match(line) for line in lines):
        return True
    return (bool(lines) and all(_KEY_LIKE.match(line) or line.startswith("sysctl: ")
                                for line in lines)
            and any(_SETTING_LINE.match(line) for line in lines))


def normalize_key(key: str) -> str:
    """-net/ipv4/conf/eth0.100/rp_filter -> net.ipv4.conf.eth0/100.rp_filter"""
    key = key.lstrip("-")
    if "/" in key:
        # sysctl's own rule: in the slashed form '/' and '.' swap places
        key = key.translate(str.maketrans("/.", "./"))
    return key


def key_from_path(path: str) -> str:
    """/proc/sys/net/ipv4/ip_forward -> net.ipv4.ip_forward"""
    return normalize_key(path[len("/proc/sys/"):].strip("/"))


class _Line(Transformer):
    """One line -> (what it is, data)."""

    def setting(self, children):
        key, value = children
        return "setting", {"key": normalize_key(str(key)), "value": str(value) if value else ""}

    def comment(self, children):
        return "comment", None

    def applying(self, children):
        return "comment", None

    def error_message(self, children):
        text = str(children[0])
        message = text.partition(": ")[2]
        path = _PROC_PATH.search(text)
        if path:
            key = key_from_path(path.group(0))
        else:
            quoted = _QUOTED_KEY.search(message)
            key = normalize_key(quoted.group(1)) if quoted else None
        return "error", {"key": key, "message": message}

    def proc_value(self, children):
        path, value = children
        return "setting", {"key": key_from_path(str(path)), "value": str(value) if value else ""}

    def file_line(self, children):
        return children[1]

    def value(self, children):
        return "value", str(children[0])

    def file_banner(self, children):
        path = str(children[0])[len("==> "):-len(" <==")]
        return "banner", key_from_path(path) if path.startswith("/proc/sys/") else None


_TRANSFORMER = _Line()

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, start: _TRANSFORMER.transform(_PARSER.parse(line, start=start)))


def _command_keys(command: str) -> tuple[bool, list[str]]:
    """Whether the text holds bare values, and the keys they belong to, in order."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = words[: next((i for i, w in enumerate(words) if w in ("|", ";", "&&", "||")), len(words))]
    if "sysctl" in words:
        args = words[words.index("sysctl") + 1:]
        bare = any(re.fullmatch(r"-[a-zA-Z]*n[a-zA-Z]*|--values", a) for a in args)
        if any(a in ("-p", "--load", "--system") or a.startswith("--load=") for a in args):
            return bare, []  # the arguments are files, not keys
        keys, skip = [], False
        for arg in args:
            if skip:
                skip = False
            elif arg in ("-r", "--pattern"):
                skip = True  # its value is a pattern, not a key
            elif not arg.startswith("-"):
                keys.append(normalize_key(arg.split("=", 1)[0]))
        return bare, keys
    for reader in ("cat", "head", "tail", "less", "more"):
        if reader in words:
            paths = [w for w in words[words.index(reader) + 1:] if w.startswith("/proc/sys/")]
            if paths:
                return True, [key_from_path(p) for p in paths]
    return False, []


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    bare, keys = _command_keys(command)
    banner_key = None  # the file `head`/`tail` just named
    # Numbered by "\n" alone, as the transcript reader counts lines.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        try:
            kind, data = _READ(line, "bare_value" if bare else "line")
        except LarkError as error:
            result.problems.append(lark_problem(error, number - 1, number))
            continue
        if kind == "setting":
            result.records.append({"type": "sysctl", "line": number, **data})
        elif kind == "error":
            if data["key"] in keys:
                keys.remove(data["key"])  # its value will not come
            result.records.append({"type": "sysctl_error", "line": number, **data})
        elif kind == "banner":
            if data in keys:
                keys.remove(data)
            banner_key = data
        elif kind == "value":
            if banner_key:
                key = banner_key
            elif keys and _GLOB.search(keys[0]):
                key = keys[0]  # a glob stands for every value that follows
            else:
                key = keys.pop(0) if keys else None
            banner_key = None
            if key is None:
                result.problems.append(Problem(number, "a value whose key the command does not name"))
            elif _GLOB.search(key):
                result.problems.append(Problem(
                    number, f"a value of one of the keys {key} matches; the output does not say which"))
            else:
                result.records.append({"type": "sysctl", "line": number, "key": key, "value": data})
        # comments and "* Applying ..." lines are read and let go
    return result
