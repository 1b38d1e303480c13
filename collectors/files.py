"""Evidence from files, directories (recursively) and standard input.

Where no prompt names the node, it comes from ``--node``, else from the directory that
holds the file: ``evidence/net01/iptables.txt`` is evidence from ``net01``.

Reading is bounded and never trusts the file system:

- files are read in chunks, and a binary file is recognised from its first bytes
  (``BINARY_SNIFF_BYTES``) without reading the rest; each file is read into facts
  before the next is read (``each_source``), so one file's text is held at a time;
- all the evidence of one run together may hold at most ``MAX_INPUT_BYTES``: beyond
  that, ``InputTooLarge`` (exit 2) says so before the memory is spent;
- a directory tree is walked with a stack, not recursion, so any depth is fine; links
  to directories are not followed (no loops), and hidden entries are skipped;
- a file or directory that cannot be read is an ``unparsed`` entry of its own, and the
  rest is still diagnosed; FIFOs and devices inside a directory are skipped (reading
  one could block forever), though one given by name (``<(ssh node ip route)``) is read;
- names that are not UTF-8 are shown with their bytes escaped (``\\xff``), so every
  output, JSON included, stays valid text.
"""
from __future__ import annotations

import codecs
import os
import stat
import sys
from dataclasses import dataclass

from grammar.transcript import Evidence, read_transcript

# All the evidence of one run; far beyond any lab's transcripts and logs, well within
# what one diagnosis can hold in memory.
MAX_INPUT_BYTES = 64 * 1024 * 1024
BINARY_SNIFF_BYTES = 8192
READ_CHUNK_BYTES = 1024 * 1024

# Directory names that say where a file was put, not which node it came from.
_NOT_NODE_NAMES = {"", ".", "..", "/", "tmp", "temp", "var", "home", "root", "evidence",
                   "downloads", "desktop", "documents", "examples", "fixtures"}


class InputError(Exception):
    """Input that cannot be used at all (a path that does not exist ...)."""


class InputTooLarge(InputError):
    """More evidence than one run reads."""


@dataclass
class Source:
    """One file or standard input given to read: its name as shown, its text, its node."""
    name: str
    text: str | None
    node: str | None
    # Why the source could not be read (then ``text`` is None).
    problem: str | None = None


def display_name(path: str | bytes) -> str:
    """A path as text that any output can hold: bytes that are not UTF-8 as ``\\xNN``."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


class _Budget:
    """What is left of ``MAX_INPUT_BYTES`` for this run."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, count: int, name: str) -> None:
        self.used += count
        if self.used > self.limit:
            raise InputTooLarge(
                f"{name}: the evidence is larger than {self.limit // (1024 * 1024)} MB in all, "
                "more than one diagnosis reads; give the files that matter (the commands' "
                "output and the logs around the problem)")


def _read_stream(stream, name: str, budget: _Budget, head=None) -> tuple[str | None, str | None]:
    """(text, None) or (None, why not) from a stream, in chunks; ``head`` is what was
    already read of it."""
    if head is None:
        head = stream.read(BINARY_SNIFF_BYTES)
    if isinstance(head, str):  # a text stream (io.StringIO in tests)
        text = head + stream.read(max(budget.limit - budget.used, 0) + 1)
        budget.take(len(text.encode("utf-8", errors="surrogatepass")), name)
        return text, None
    if b"\x00" in head:
        return None, "binary data, not terminal text"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    budget.take(len(head), name)
    parts = [decoder.decode(head)]
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        budget.take(len(chunk), name)
        parts.append(decoder.decode(chunk))
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts), None


def _read_file(path: str, budget: _Budget) -> tuple[str | None, str | None]:
    name = display_name(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(BINARY_SNIFF_BYTES)
            if b"\x00" in head:
                return None, "binary data, not terminal text"
            size = os.fstat(handle.fileno()).st_size
            if size > budget.limit - budget.used:
                budget.take(size, name)  # raises before the rest is read
            return _read_stream(handle, name, budget, head)
    except InputTooLarge:
        raise
    except OSError as error:
        return None, f"cannot be read: {error.strerror or error}"


def _walk(root: str):
    """(path, None) for each regular file under root, (path, why) for each entry that
    cannot be read; sorted, hidden entries skipped, iterative (no depth limit)."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: os.fsencode(entry.name))
        except OSError as error:
            yield directory, f"directory cannot be read: {error.strerror or error}"
            continue
        subdirectories = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.path)
                elif entry.is_file(follow_symlinks=True):
                    yield entry.path, None
            except OSError as error:
                yield entry.path, f"cannot be read: {error.strerror or error}"
        stack.extend(reversed(subdirectories))


def sources(paths: list[str], node: str | None = None, stdin=None,
            max_bytes: int | None = None) -> list[Source]:
    return list(each_source(paths, node, stdin, max_bytes))


def each_source(paths: list[str], node: str | None = None, stdin=None,
                max_bytes: int | None = None):
    """The sources one after another: a caller that is done with one before it asks for
    the next holds one file's text at a time, not the whole folder's."""
    budget = _Budget(MAX_INPUT_BYTES if max_bytes is None else max_bytes)
    for given in paths:
        if given == "-":
            stream = stdin if stdin is not None else sys.stdin
            stream = getattr(stream, "buffer", stream)
            text, problem = _read_stream(stream, "<stdin>", budget)
            yield Source("<stdin>", text, node, problem)
            continue
        name = display_name(given)
        try:
            mode = os.stat(given).st_mode
        except FileNotFoundError:
            raise InputError(f"{name}: no such file or directory") from None
        except OSError as error:
            raise InputError(f"{name}: cannot be read: {error.strerror or error}") from None
        if stat.S_ISDIR(mode):
            yield from _directory_sources(given, node, budget)
        elif stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            holder = os.path.basename(os.path.dirname(given))
            text, problem = _read_file(given, budget)
            yield Source(name, text, node or _node_name(display_name(holder)), problem)
        else:
            raise InputError(f"{name}: not a regular file or directory")


def _directory_sources(root: str, node: str | None, budget: _Budget):
    found = 0
    root_name = os.path.basename(os.path.abspath(root))
    for path, problem in _walk(root):
        parent = os.path.dirname(path)
        holder = os.path.basename(parent) if os.path.abspath(parent) != os.path.abspath(root) \
            else root_name
        source_node = node or _node_name(display_name(holder))
        if problem is None:
            text, problem = _read_file(path, budget)
        else:
            text = None
        found += 1
        yield Source(display_name(path), text, source_node, problem)
    if not found:
        raise InputError(f"{display_name(root)}: the directory holds no files")
    return found


def _node_name(directory: str) -> str | None:
    return None if directory.lower() in _NOT_NODE_NAMES else directory


def read_evidence(paths: list[str], node: str | None = None, stdin=None) -> Evidence:
    evidence = Evidence()
    for source in each_source(paths, node, stdin):      # each file's text let go once read
        if source.problem is not None:
            evidence.unparsed.append({"node": source.node, "command": None,
                                      "source": source.name, "line": None,
                                      "reason": source.problem})
            continue
        evidence.extend(read_transcript(source.text, source.name, source.node))
    return evidence
