"""Compiled code kept between runs of the command line: regular expressions, and the
methods dataclasses write for their classes.

A diagnosis of a short transcript spends a third of its time compiling regular
expressions: the parsers' own, and above all lark's lexers (a contextual lexer compiles
one alternation of terminals per parser state). Python parses and assembles each
expression in pure Python, every run, before handing the result (a list of integers)
to its C matcher. ``enable()`` keeps those lists in the project's own ``.cache/re/``,
one file per Python and regex engine version, so that a later run hands them straight
to the matcher: the same engine gets the same code, only sooner.

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
import os
import sys
import types
import zlib
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "re"
MAX_ENTRIES = 4000   # patterns made from the input (rules' ``matches:``) must not grow it forever

_table: dict = {}
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
    return CACHE_DIR / f"{version}.marshal"


def _load(path: Path) -> dict:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    checksum, payload = data[:4], data[4:]
    if zlib.crc32(payload).to_bytes(4, "big") != checksum:
        return {}
    try:
        table = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return {}
    return table if isinstance(table, dict) else {}


def _save(path: Path) -> None:
    if not _added:
        return
    try:
        payload = marshal.dumps(_table)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(zlib.crc32(payload).to_bytes(4, "big") + payload)
        partial.replace(path)   # whole or not at all, whoever reads it meanwhile
    except (OSError, ValueError):
        pass  # a cache that cannot be written is only slower


def _compile(pattern, flags=0):
    """``re._compiler.compile`` for a pattern given as text, with its code remembered."""
    global _added
    if not isinstance(pattern, (str, bytes)) or flags & _compiler.SRE_FLAG_DEBUG:
        return _original(pattern, flags)
    key = (pattern, int(flags))
    stored = _table.get(key)
    if stored is not None:
        try:
            return _sre.compile(pattern, *marshal.loads(stored))
        except Exception:   # not code this engine accepts: compile it afresh
            del _table[key]
    parsed = _parser.parse(pattern, flags)
    code = [int(op) for op in _compiler._code(parsed, flags)]   # plain ints: marshal takes no subclass
    groupindex = dict(parsed.state.groupdict)
    indexgroup = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    entry = (int(flags | parsed.state.flags), code, parsed.state.groups - 1, groupindex,
             tuple(indexgroup))
    compiled = _sre.compile(pattern, *entry)
    if len(_table) < MAX_ENTRIES:
        try:
            _table[key] = marshal.dumps(entry)   # decoded only when its pattern is compiled
            _added += 1
        except ValueError:
            pass   # a group name marshal cannot keep: compiled afresh every run
    return compiled


def _exec(source, globals=None, locals=None, /):
    """``exec`` as the dataclasses module calls it, with the code of a source text
    compiled once. ``dont_inherit``: compiled as dataclasses' own ``exec`` compiles it,
    without this module's ``from __future__`` flags."""
    global _added
    if not isinstance(source, str):
        return exec(source, globals, locals)
    code = None
    stored = _table.get(source)
    if stored is not None:
        try:
            code = marshal.loads(stored)
        except Exception:
            code = None
    if not isinstance(code, types.CodeType):
        code = compile(source, "<string>", "exec", dont_inherit=True)
        if len(_table) < MAX_ENTRIES:
            _table[source] = marshal.dumps(code)
            _added += 1
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
    global _original
    if _original is not None:
        return True
    path = _cache_file()
    if path is None or not callable(getattr(_compiler, "_code", None)):
        return False
    _table.update(_load(path))
    _original = _compiler.compile
    _compiler.compile = _compile
    _patch_dataclasses()
    atexit.register(_save, path)
    return True
