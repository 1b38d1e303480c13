"""How much space paths take: ``du``, ``du -s``, ``du -h``, ``du -sch``, ``du -h
--max-depth=1`` (what fills ``/var/lib/nova/instances``).

Forms read (GNU coreutils): a size, a tab (spaces once pasted from a terminal), a path;
``total`` for ``-c``'s sum; and du's errors (``du: cannot access 'P': No such file or
directory``, ``du: cannot read directory 'P': Permission denied``), which are problems
of the reading, not facts.

Record, one per path::

    {"type": "disk_usage", "line": int, "location": str, "size": str, "kbytes": float | None,
     "total": bool, "largest": bool}

``location`` is the path measured (not ``path``: every fact's ``path`` is the file its
evidence was read from). ``size`` is as printed; ``kbytes`` the same in KiB: ``-h`` sizes are powers of 1024
(``6.1M`` is 6246.4), plain numbers are du's 1K blocks (or bytes with ``-b``, MiB with
``-m``; None with another ``-B``). ``largest`` marks the biggest of the paths this du
listed that is not the sum of others: ``total`` and a folder whose sub-folders are
listed too (``du --max-depth=1`` ends with the folder itself) are left out of that
comparison, so it names what fills the folder; when such a folder holds more outside the
sub-folders listed than the biggest of them (``--max-depth`` lists folders, not the files
beside them), what fills it was not listed and nothing is marked.

Worked example, ``du -sh /var/lib/nova/instances/*`` on a compute node whose instances
filesystem someone filled::

    6.1M	/var/lib/nova/instances/5b1e7f52-8a47-4c55-9f3e-2f0d7c61a0e4
    12M	/var/lib/nova/instances/_base
    46M	/var/lib/nova/instances/fill.img

gives three records; the third is ``{"location": "/var/lib/nova/instances/fill.img",
"size": "46M", "kbytes": 47104.0, "largest": True, "total": False}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, parsed_lines

KIND = "du"
FACT_TYPES = {
    "disk_usage": {
        "doc": "how much space a path takes on NODE (du)",
        "fields": {
            "location": "the file or folder measured (with what it holds), or total for du -c's sum",
            "size": "its size as printed (46M, 47100 ...)",
            "kbytes": "the same in KiB, a number, or empty where the unit is not known",
            "total": "true for du -c's total line",
            "largest": "true for the biggest path this du listed that is not a sum of others "
                       "(not total, not a folder whose sub-folders are listed too): what fills it",
        },
    },
}

COMMANDS = re.compile(r"^\s*du(?:\s|$)")
FILES = None
_LOOKS = re.compile(r"^(?:\d+(?:[.,]\d+)?[KMGTPEZY]?\t/\S*|du: cannot (?:access|read directory) ')")
_UNITS = {"": 1, "K": 1, "M": 1024, "G": 1024 ** 2, "T": 1024 ** 3, "P": 1024 ** 4, "E": 1024 ** 5}


class _ToLine(Transformer):
    def usage(self, children):
        return ("usage", str(children[0]), str(children[1]).strip())

    def error(self, children):
        return ("error", str(children[0]).removeprefix("du: "))


_PARSER = LazyLark((Path(__file__).parent / "du.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", transformer=_ToLine())


def _block_unit(command: str) -> float | None:
    """KiB per printed unit for plain numbers: 1K blocks unless -b, -m or -B say otherwise."""
    options = " ".join(w for w in command.split()[1:] if w.startswith("-"))
    if re.search(r"(?:^|\s)-[a-zA-Z]*b|--bytes", options):
        return 1 / 1024
    if re.search(r"(?:^|\s)-[a-zA-Z]*m", options):
        return 1024.0
    if re.search(r"(?:^|\s)-[a-zA-Z]*B|--block-size|--apparent-size", options):
        return None
    return 1.0


def _kbytes(size: str, block_unit: float | None) -> float | None:
    found = re.fullmatch(r"(\d+(?:[.,]\d+)?)([KMGTPEZY]?)", size)
    if not found:
        return None
    number = float(found[1].replace(",", "."))
    if found[2]:
        return number * _UNITS.get(found[2], 1024 ** 6)
    return None if block_unit is None else number * block_unit


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    block_unit = _block_unit(command)
    for lineno, parsed in parsed_lines(_PARSER, text, "a du", result.problems):
        if parsed[0] == "error":
            result.problems.append(Problem(lineno, f"du could not read a path: {parsed[1]}"))
            continue
        _, size, path = parsed
        result.records.append({"type": "disk_usage", "line": lineno, "location": path, "size": size,
                               "kbytes": _kbytes(size, block_unit), "total": path == "total",
                               "largest": False})
    _mark_largest(result.records)
    return result


def _mark_largest(records: list[dict]) -> None:
    paths = [r["location"].rstrip("/") for r in records if not r["total"]]
    candidates = [r for r in records if not r["total"] and r["kbytes"] is not None
                  and not any(p.startswith(r["location"].rstrip("/") + "/") for p in paths)]
    if not candidates:
        return
    biggest = max(candidates, key=lambda r: r["kbytes"])
    # A listed folder holding more, outside the sub-folders listed, than the biggest of
    # them (du --max-depth=1 lists folders, not the files beside them): what fills it
    # was not listed, and nothing is marked.
    for folder in records:
        prefix = folder["location"].rstrip("/") + "/"
        if folder["total"] or folder["kbytes"] is None or not biggest["location"].startswith(prefix):
            continue
        inside = sum(r["kbytes"] or 0 for r in records
                     if r["location"].startswith(prefix) and "/" not in r["location"][len(prefix):].rstrip("/"))
        if folder["kbytes"] - inside > biggest["kbytes"]:
            return
    biggest["largest"] = True
