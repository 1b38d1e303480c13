"""lark as a parse needs it: the LALR parser and its lexers, ``Token``, ``Tree``,
``Transformer``, ``v_args``, ``Discard`` and lark's exceptions, without lark's grammar
compiler.

``import lark`` brings the grammar compiler too, and what it imports (tempfile, getpass,
hashlib, pkgutil, the Earley and CYK parsers): 7 % of a short diagnosis's instructions, spent
on every run although each parser is built once and kept in the project's cache
(``base.LazyLark``). lark has a tool for this, its standalone generator
(``lark.tools.standalone``), which writes the parse-time sections of lark's own modules as
one module. That code is written once per installed lark into ``.cache/lark/``, kept
compiled beside it, and run in this module's namespace: lark's classes are
``grammar.lark_runtime.Token`` and so on, which a pickled parser names (and a later run
imports by that name). Parsers are built by lark proper and loaded into these classes
(``base._built``); every grammar module takes its ``Transformer``, ``Token`` and
exceptions from here, so a parse makes only objects of the classes its transformer knows.
"""
from __future__ import annotations

import importlib.util
import marshal
import os
import sys
import types
import zlib
from pathlib import Path

# A directory the project owns, never a shared temporary one (base.py keeps the parsers here)
LARK_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "lark"


def _runtime_key() -> str:
    """Names this lark installation and this Python's bytecode without importing lark:
    an upgraded lark, or another Python, gets its code extracted and compiled again."""
    spec = importlib.util.find_spec("lark")
    if spec is None or spec.origin is None:
        raise ImportError("lark is not installed (pip install -r requirements.txt)")
    found = os.stat(spec.origin)
    identity = repr((spec.origin, found.st_mtime_ns, found.st_size, importlib.util.MAGIC_NUMBER))
    return f"{sys.implementation.cache_tag}-{zlib.crc32(identity.encode()):08x}"


def _runtime_source() -> str:
    """lark's standalone tool's output, less the one grammar's tables it ends with (each
    parser's tables are kept in its own cache file): the tool writes its code, then
    ``import pickle, zlib, base64``, the tables, and ``Shift = 0`` / ``Reduce = 1``, the
    values its serialized tables hold for lark's two actions (kept here for that reason)."""
    from lark import Lark, __version__
    from lark.tools.standalone import gen_standalone

    written: list[str] = []
    gen_standalone(Lark('start: "a"', parser="lalr"),
                   output=lambda *parts: written.append(" ".join(map(str, parts))))
    if "import pickle, zlib, base64" not in written:
        raise ImportError(f"lark {__version__}'s standalone tool wrote its code in a form "
                          "stackdoc does not know: install the lark requirements.txt names")
    tables_start = written.index("import pickle, zlib, base64")
    return "\n".join(written[:tables_start] + ["Shift = 0", "Reduce = 1", ""])


def _runtime_code():
    """The compiled code, from the cache, or extracted and compiled now and kept; written
    under another name and renamed, so a process starting meanwhile reads it whole or not
    at all. A cache that cannot be written is only slower."""
    source_path = LARK_CACHE / f"runtime-{_runtime_key()}.py"
    code_path = source_path.with_suffix(".code")
    try:
        code = marshal.loads(code_path.read_bytes())
        if isinstance(code, types.CodeType):
            return code
    except (OSError, EOFError, ValueError, TypeError):
        pass
    source = _runtime_source()
    code = compile(source, str(source_path), "exec", dont_inherit=True)
    try:
        LARK_CACHE.mkdir(parents=True, exist_ok=True)
        for path, content in ((source_path, source.encode()), (code_path, marshal.dumps(code))):
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(content)
            os.replace(partial, path)
    except OSError:
        pass
    return code


exec(_runtime_code(), globals())
