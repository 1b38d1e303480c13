"""Filesystems and how full they are: ``df``, ``df -h``, ``df -k``, ``df -P``, ``df -T``,
``df -i``, ``df PATH...`` (coreutils; busybox prints the same columns).

Forms read (the columns come from the header; only "Mounted on" may hold spaces)::

    Filesystem      Size  Used Avail Use% Mounted on
    tmpfs           1.0M  1.0M     0 100% /var/lib/nova/instances

df wraps a row whose filesystem name is too long for its column (without ``-P``): the
name on one line, the numbers on the next; both halves make one record.

Record (one per filesystem row)::

    {"type": "filesystem", "line": int, "filesystem": str, "fstype": str | None,
     "size": str, "used": str, "available": str, "use_percent": int | None,
     "mounted_on": str, "inodes": bool}

``size``/``used``/``available`` are as printed (``1.0M``, ``264212084`` 1K-blocks);
``use_percent`` is None where df prints ``-``; ``inodes`` is true for ``df -i``.
``df: PATH: No such file or directory`` is a problem naming its line.

Worked example, ``df -h /var/lib/nova/instances`` on a full filesystem::

    Filesystem      Size  Used Avail Use% Mounted on
    tmpfs           1.0M  1.0M     0 100% /var/lib/nova/instances

gives ``{"filesystem": "tmpfs", "size": "1.0M", "used": "1.0M", "available": "0",
"use_percent": 100, "mounted_on": "/var/lib/nova/instances", ...}`` (line 2).
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "df"
FACT_TYPES = {
    "filesystem": {
        "doc": "a filesystem mounted on NODE and how full it is (df)",
        "fields": {
            "filesystem": "the device or filesystem name (/dev/sda1, tmpfs ...)",
            "fstype": "its type (df -T), or empty",
            "size": "its size as printed (1.0M, 264212084 1K-blocks ...)",
            "used": "the space used, as printed",
            "available": "the space left, as printed",
            "use_percent": "Use% as a number (100 when full), or empty",
            "mounted_on": "its mount point",
            "inodes": "true when the numbers count inodes (df -i)",
        },
    },
}

COMMANDS = re.compile(r"^\s*df(?:\s|$)")
FILES = None
_HEADER = re.compile(r"^Filesystem\s+(?:Type\s+)?(?:Size|1K-blocks|1k-blocks|\d+[KMG]?-blocks|1024-blocks|Inodes)\s")


class _ToLine(Transformer):
    def header(self, children):
        return ("header", str(children[1]))

    def typed_row(self, children):
        name, fstype, size, used, available, percent, mount = children
        return ("row", str(name), str(fstype), str(size), str(used), str(available), str(percent),
                str(mount).rstrip())

    def named_row(self, children):
        word, size, used, available, percent, mount = children
        return ("named", str(word), str(size), str(used), str(available), str(percent),
                str(mount).rstrip())

    def numbers(self, children):
        size, used, available, percent, mount = children
        return ("numbers", None, str(size), str(used), str(available), str(percent),
                str(mount).rstrip())

    def name_only(self, children):
        return ("name", str(children[0]))

    def error(self, children):
        return ("error", str(children[0]))


_PARSER = LazyLark(
    (Path(__file__).parent / "df.lark").read_text(),
    parser="lalr",
    lexer="contextual",
    cache=lark_cache(__file__),
    transformer=_ToLine(),
)


def _percent(text: str) -> int | None:
    return int(text[:-1]) if text.endswith("%") else None


def _record(line, name, fstype, size, used, available, percent, mount, inodes) -> dict:
    return {"type": "filesystem", "line": line, "filesystem": name, "fstype": fstype, "size": size,
            "used": used, "available": available, "use_percent": _percent(percent),
            "mounted_on": mount, "inodes": inodes}


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_HEADER.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    inodes = bool(re.search(r"\s-\w*i|--inodes", command))
    wrapped: tuple[int, str] | None = None   # (line, name) of a row whose numbers follow
    for lineno, raw in enumerate(text_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            tag, *fields = _PARSER.parse(raw.strip())
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "a df"))
            wrapped = None
            continue
        if tag == "header":
            inodes = inodes or fields[0].lstrip().startswith("Inodes") or " Inodes " in raw
            continue
        if tag == "error":
            result.problems.append(Problem(lineno, fields[0]))
            continue
        if tag == "named":
            # a name and the numbers: a whole row, or after a name alone on the line
            # before, the type and numbers of that wrapped df -T row
            tag, fields = ("numbers", fields) if wrapped is not None else ("row", [fields[0], None, *fields[1:]])
        if tag == "name":
            if wrapped is not None:
                result.problems.append(Problem(wrapped[0], f"filesystem {wrapped[1]} has no numbers after it"))
            wrapped = (lineno, fields[0])
            continue
        if tag == "numbers":
            if wrapped is None:
                result.problems.append(Problem(lineno, "numbers with no filesystem name before them"))
                continue
            result.records.append(_record(wrapped[0], wrapped[1], *fields, inodes))
            wrapped = None
            continue
        if wrapped is not None:
            result.problems.append(Problem(wrapped[0], f"filesystem {wrapped[1]} has no numbers after it"))
            wrapped = None
        result.records.append(_record(lineno, *fields, inodes))
    if wrapped is not None:
        result.problems.append(Problem(wrapped[0], f"filesystem {wrapped[1]} has no numbers after it (output cut?)"))
    return result
