"""Small Markdown helpers: text from rules and evidence shown literally."""
from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def md(text: str) -> str:
    """Text from rules and evidence, shown literally in Markdown (no emphasis, no links)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def code(text: str) -> str:
    return str(text).replace("`", "'")


def fence(text: str) -> str:
    mark = "```"
    while mark in text:
        mark += "`"
    return f"{mark}\n{text}\n{mark}"


def join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def evidence_lines(finding) -> str:
    lines = []
    for line in finding.evidence:
        where = f"{line.get('node') or '?'}$ {line.get('command') or '(pasted text)'}"
        lines.append(f"[{where}]  {line.get('text')}")
    return "\n".join(lines) or "(no lines)"
