"""Compiled code kept between runs of the command line: regular expressions, and the
methods dataclasses write for their classes.

A diagnosis of a short transcript spends a third of its time compiling regular
expressions: the parsers' own, and above all lark's lexers (a contextual lexer compiles
one alternation of terminals per parser state). Python parses and assembles each
expression in pure Python, every run, before handing the result (a list of integers)
to its C matcher. ``enable()`` keeps those lists in the project's own ``.cache/re/``,
one file per Python and regex engine version, so that a later run hands them straight
to the matcher: the same engine gets the same code, only sooner. The file is indexed:
a run searches the index where it lies in the mapped file and reads only the entries it
looks up (earlier runs of other commands and inputs may have kept thousands).

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
from array import array
from bisect import bisect_left
from collections.abc import Mapping
from pathlib import Path

from grammar.digest import digest

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
        version = (f"{sys.implementation.cache_tag}-{sys.hexversion:x}-{_sre.MAGIC}-{_sre.CODESIZE}"
                   f"-{sys.byteorder}")
    except (ImportError, AttributeError):
        return None
    return CACHE_DIR / f"{version}-sorted.bin"


def _digest(key) -> int:
    """A 64-bit name for a key (a pattern and its flags, or a source text): the index holds
    these, not the keys (some patterns are lexers' alternations of kilobytes). Two keys
    of one name cost a compilation, never a wrong entry: an entry holds its whole key."""
    text, flags = key if isinstance(key, tuple) else (key, -1)
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    named = digest(f"{type(text).__name__}:{flags}:".encode(), size=8)
    named.update(data)
    return int.from_bytes(named.digest(), sys.byteorder)


_MAGIC = b"rx\x00\x01"   # this format; the header is 16 bytes, so the index's numbers are aligned


class _StoredTable(Mapping):
    """The entries of a cache file: a sorted index of their names, searched where it lies
    in the mapped file, and each entry read and checked only when its key is looked up.
    A run needs a few hundred of the thousands of entries earlier runs (and other
    commands) kept; an index made Python objects, read whole, cost a run 200 page faults.

    The file: ``_MAGIC``, the index's checksum, the number of entries and the entries'
    length (4 bytes each), the entries' names (``_digest``, 8 bytes each, ascending), their places
    (8 bytes each: offset << 32 | length), then the entries, each its checksum (4 bytes)
    and ``marshal.dumps((key, value))``. Numbers of 8 bytes are in this machine's byte
    order (the file's name says which)."""

    def __init__(self, data, names, places, start: int):
        self._data, self._names, self._places, self._start = data, names, places, start

    @classmethod
    def read(cls, path: Path) -> "_StoredTable | dict":
        try:
            # mapped, not read: a run touches the pages of the index it searches and of
            # the few entries it looks up (each page read would cost a fault, ~4 us)
            with open(path, "rb") as handle:
                data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            magic, checksum = data[:4], data[4:8]
            count, entries = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
            start = 16 + 16 * count
            if (magic != _MAGIC or len(data) != start + entries
                    or zlib.crc32(data[16:start]).to_bytes(4, "big") != checksum):
                return {}   # cut short, grown, or not this format
            index = memoryview(data)[16:start]
            names, places = index[:8 * count].cast("Q"), index[8 * count:].cast("Q")
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return cls(data, names, places, start)

    def raw(self, name: int) -> bytes | None:
        """The entry of that name as stored, checked against its checksum."""
        at = bisect_left(self._names, name)
        return self._entry(at) if at < len(self._names) and self._names[at] == name else None

    def _entry(self, at: int) -> bytes | None:
        place = self._places[at]
        offset, length = self._start + (place >> 32), place & 0xFFFFFFFF
        entry = self._data[offset:offset + length]
        if len(entry) != length or length < 4 or zlib.crc32(entry[4:]).to_bytes(4, "big") != entry[:4]:
            return None
        return entry[4:]

    def entries(self):
        """(name, entry) of every entry that passes its checksum."""
        for at, name in enumerate(self._names):
            entry = self._entry(at)
            if entry is not None:
                yield name, entry

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
        for _name, entry in self.entries():
            try:
                key, _value = marshal.loads(entry)
            except (EOFError, ValueError, TypeError):
                continue
            yield key

    def __len__(self) -> int:
        return len(self._names)


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
        entries = dict(_stored.entries()) if isinstance(_stored, _StoredTable) else {}
        for key, value in _table.items():
            entries[_digest(key)] = marshal.dumps((key, value))
        names, places, blobs, offset = array("Q"), array("Q"), [], 0
        for name in sorted(entries):
            entry = entries[name]
            blobs.append(zlib.crc32(entry).to_bytes(4, "big") + entry)
            names.append(name)
            places.append(offset << 32 | len(blobs[-1]))
            offset += len(blobs[-1])
        index = names.tobytes() + places.tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(_MAGIC + zlib.crc32(index).to_bytes(4, "big") + len(names).to_bytes(4, "big")
                            + offset.to_bytes(4, "big") + index + b"".join(blobs))
        partial.replace(path)   # whole or not at all, whoever reads it meanwhile
    except (OSError, ValueError, OverflowError):
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
