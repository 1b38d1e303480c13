"""Compiled code kept between runs of the command line: regular expressions, and the
methods dataclasses write for their classes.

A diagnosis of a short transcript spends a third of its time compiling regular
expressions: the parsers' own, and above all lark's lexers (a contextual lexer compiles
one alternation of terminals per parser state). Python parses and assembles each
expression in pure Python, every run, before handing the result (a list of integers)
to its C matcher. ``enable()`` keeps those lists in the project's own ``.cache/re/``,
one file per Python and regex engine version, so that a later run hands them straight
to the matcher: the same engine gets the same code, only sooner. The file is indexed:
a run reads the index whole and only the entries it looks up (earlier runs of other
commands and inputs may have kept thousands).

Dataclasses are the same story: each ``@dataclass`` writes the source of its
``__init__``, ``__repr__``, ``__eq__`` ... and compiles it, every run (some thirty
classes on a diagnosis's path: a tenth of a short one). The compiled code of each
source text is kept in the same file, so a later run only executes it.

Only ``python app.py`` turns it on (tests and the chat server compile as Python
always does). The file is written whole or not at all (a rename), checked by its
checksum when read, and ignored when absent, corrupt or from another Python; the regex
engine still validates every code it is handed, and an entry that is not code is
compiled afresh.
"""
from __future__ import annotations

import atexit
import marshal
import mmap
import os
import sys
import types
import zlib
from collections.abc import Mapping
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "re"
MAX_ENTRIES = 4000   # patterns made from the input (rules' ``matches:``) must not grow it forever

_table: dict = {}     # entries compiled or looked up by this process: key -> marshalled entry
_stored: "Mapping" = {}   # the file's entries (a _StoredTable), decoded one by one when asked
_added = 0
_original = None


try:   # the internals this relies on; enable() does nothing where they differ
    import _sre
    from re import _compiler, _parser
except ImportError:
    _sre = _compiler = _parser = None


def _cache_file() -> Path | None:
    try:
        version = f"{sys.implementation.cache_tag}-{sys.hexversion:x}-{_sre.MAGIC}-{_sre.CODESIZE}"
    except (ImportError, AttributeError):
        return None
    return CACHE_DIR / f"{version}-indexed.marshal"


def _digest(key) -> tuple:
    """A short name for a key (a pattern and its flags, or a source text): the index
    holds these, not the keys (some patterns are lexers' alternations of kilobytes)."""
    text, flags = key if isinstance(key, tuple) else (key, -1)
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    return (type(text).__name__, flags, len(data), zlib.crc32(data))


class _StoredTable(Mapping):
    """The entries of a cache file: an index (digest -> offset, length, checksum) read
    whole, each entry read and checked only when its key is looked up. A run needs a few
    hundred of the thousands of entries earlier runs (and other commands) kept.

    The file: the index's checksum, its length and the entries' length (4 bytes each),
    the index, the entries, each ``marshal.dumps((key, value))``."""

    def __init__(self, data: bytes, index: dict, start: int):
        self._data, self._index, self._start = data, index, start

    @classmethod
    def read(cls, path: Path) -> "_StoredTable | dict":
        try:
            # mapped, not read: a run touches the index and the few entries it looks up,
            # and each page of a 1.6 MB buffer read whole would cost a fault (~4 us)
            with open(path, "rb") as handle:
                data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            checksum = data[:4]
            length, entries = int.from_bytes(data[4:8], "big"), int.from_bytes(data[8:12], "big")
            index_bytes = data[12:12 + length]
            if (len(data) != 12 + length + entries
                    or zlib.crc32(index_bytes).to_bytes(4, "big") != checksum):
                return {}   # cut short, grown, or not this format
            index = marshal.loads(index_bytes)
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return cls(data, index, 12 + length) if isinstance(index, dict) else {}

    def raw(self, digest) -> bytes | None:
        """An entry as stored, checked against its checksum."""
        try:
            offset, length, checksum = self._index[digest]
        except (KeyError, TypeError, ValueError):
            return None
        entry = self._data[self._start + offset:self._start + offset + length]
        return entry if len(entry) == length and zlib.crc32(entry) == checksum else None

    def get(self, key, default=None):
        entry = self.raw(_digest(key))
        try:
            stored_key, value = marshal.loads(entry) if entry is not None else (None, None)
        except (EOFError, ValueError, TypeError):
            return default
        return value if stored_key == key and isinstance(value, bytes) else default

    def __getitem__(self, key):
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self):
        for digest in self._index:
            entry = self.raw(digest)
            try:
                key, _value = marshal.loads(entry) if entry is not None else (None, None)
            except (EOFError, ValueError, TypeError):
                continue
            if key is not None:
                yield key

    def __len__(self) -> int:
        return len(self._index)


def _load(path: Path) -> "Mapping":
    return _StoredTable.read(path)


def _lookup(key) -> bytes | None:
    value = _table.get(key)
    return value if value is not None else _stored.get(key)


def _keep(key, value: bytes) -> None:
    global _added
    if len(_table) + len(_stored) < MAX_ENTRIES:
        _table[key] = value
        _added += 1


def _save(path: Path) -> None:
    """The file's entries and this run's new ones, written whole (a rename)."""
    if not _added:
        return
    try:
        entries: dict = {}
        if isinstance(_stored, _StoredTable):
            for digest in _stored._index:
                entry = _stored.raw(digest)
                if entry is not None:
                    entries[digest] = entry
        for key, value in _table.items():
            entries[_digest(key)] = marshal.dumps((key, value))
        index, blobs, offset = {}, [], 0
        for digest, entry in entries.items():
            index[digest] = (offset, len(entry), zlib.crc32(entry))
            blobs.append(entry)
            offset += len(entry)
        index_bytes = marshal.dumps(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(zlib.crc32(index_bytes).to_bytes(4, "big")
                            + len(index_bytes).to_bytes(4, "big") + offset.to_bytes(4, "big")
                            + index_bytes + b"".join(blobs))
        partial.replace(path)   # whole or not at all, whoever reads it meanwhile
    except (OSError, ValueError):
        pass  # a cache that cannot be written is only slower


def _compile(pattern, flags=0):
    """``re._compiler.compile`` for a pattern given as text, with its code remembered."""
    if not isinstance(pattern, (str, bytes)) or flags & _compiler.SRE_FLAG_DEBUG:
        return _original(pattern, flags)
    key = (pattern, int(flags))
    stored = _lookup(key)
    if stored is not None:
        try:
            return _sre.compile(pattern, *marshal.loads(stored))
        except Exception:   # not code this engine accepts: compile it afresh
            _table.pop(key, None)
    parsed = _parser.parse(pattern, flags)
    code = [int(op) for op in _compiler._code(parsed, flags)]   # plain ints: marshal takes no subclass
    groupindex = dict(parsed.state.groupdict)
    indexgroup = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    entry = (int(flags | parsed.state.flags), code, parsed.state.groups - 1, groupindex,
             tuple(indexgroup))
    compiled = _sre.compile(pattern, *entry)
    try:
        _keep(key, marshal.dumps(entry))   # decoded only when its pattern is compiled
    except ValueError:
        pass   # a group name marshal cannot keep: compiled afresh every run
    return compiled


def _exec(source, globals=None, locals=None, /):
    """``exec`` as the dataclasses module calls it, with the code of a source text
    compiled once. ``dont_inherit``: compiled as dataclasses' own ``exec`` compiles it,
    without this module's ``from __future__`` flags."""
    if not isinstance(source, str):
        return exec(source, globals, locals)
    code = None
    stored = _lookup(source)
    if stored is not None:
        try:
            code = marshal.loads(stored)
        except Exception:
            code = None
    if not isinstance(code, types.CodeType):
        code = compile(source, "<string>", "exec", dont_inherit=True)
        _keep(source, marshal.dumps(code))
    return exec(code, globals, locals)


def _patch_dataclasses() -> None:
    """Let dataclasses' ``exec`` (a name it looks up in its module, then in builtins)
    be ``_exec``; where its generator does not call ``exec`` by that name, nothing."""
    import dataclasses
    create = getattr(dataclasses, "_create_fn", None)
    if create is not None and "exec" in create.__code__.co_names:
        dataclasses.exec = _exec


def enable() -> bool:
    """Serve this process's regex compilations and dataclass methods from the cache
    (and add to it at exit). False, and nothing changed, where this Python's regex
    internals are not the ones this module knows."""
    global _original, _stored
    if _original is not None:
        return True
    path = _cache_file()
    if path is None or not callable(getattr(_compiler, "_code", None)):
        return False
    _stored = _load(path)
    _original = _compiler.compile
    _compiler.compile = _compile
    _patch_dataclasses()
    atexit.register(_save, path)
    return True
