"""Evidence from files, directories (recursively) and standard input.

Where no prompt names the node, it comes from ``--node``, else from the directory that
holds the file: ``evidence/net01/iptables.txt`` is evidence from ``net01``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from grammar.transcript import Evidence, read_transcript

# Directory names that say where a file was put, not which node it came from.
_NOT_NODE_NAMES = {"", ".", "..", "/", "tmp", "temp", "var", "home", "root", "evidence",
                   "downloads", "desktop", "documents", "examples", "fixtures"}


class InputError(Exception):
    """Input that cannot be used at all (a path that does not exist ...)."""


@dataclass
class Source:
    name: str
    text: str
    node: str | None


def _decode(data: bytes) -> str:
    # A binary file keeps its NUL bytes so the transcript reader can say what it is.
    return data.decode("utf-8", errors="replace")


def sources(paths: list[str], node: str | None = None, stdin=None) -> list[Source]:
    found: list[Source] = []
    for given in paths:
        if given == "-":
            stream = stdin if stdin is not None else sys.stdin
            data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
            text = _decode(data) if isinstance(data, bytes) else data
            found.append(Source("<stdin>", text, node))
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise InputError(f"{given}: the directory holds no files")
            for file in files:
                holder = file.parent.name if file.parent != path else path.resolve().name
                found.append(Source(str(file), _read(file), node or _node_name(holder)))
        elif path.is_file():
            holder = path.parent.name if path.parent != Path(".") else ""
            found.append(Source(str(path), _read(path), node or _node_name(holder)))
        elif path.exists():
            raise InputError(f"{given}: not a regular file or directory")
        else:
            raise InputError(f"{given}: no such file or directory")
    return found


def _read(path: Path) -> str:
    try:
        return _decode(path.read_bytes())
    except OSError as error:
        raise InputError(f"{path}: cannot be read: {error.strerror or error}") from None


def _node_name(directory: str) -> str | None:
    return None if directory.lower() in _NOT_NODE_NAMES else directory


def read_evidence(paths: list[str], node: str | None = None, stdin=None) -> Evidence:
    evidence = Evidence()
    for source in sources(paths, node, stdin):
        evidence.extend(read_transcript(source.text, source.name, source.node))
    return evidence
