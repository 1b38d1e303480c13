"""The contract every output-kind parser in grammar/ keeps.

A parser module is named for the output kind it reads (``ip_route.py``) and sits
beside its grammar (``ip_route.lark``); its fixtures live in
``tests/fixtures/ip_route/`` and its tests in ``tests/test_ip_route.py``.

Each module exports:

``KIND``
    the kind's name, equal to the module name.
``COMMANDS``
    a compiled regex that matches (``.search``) the command lines whose output is this
    kind, e.g. ``ip route`` / ``ip r s`` / ``ip -4 route show``; ``sudo`` is already
    stripped by the transcript reader.
``FILES``
    a compiled regex matched against a path read with cat/tail/head/grep/less, or None.
``looks_like(text) -> bool``
    cheap content sniffing for text with no prompt: True when the first lines are
    clearly this kind.
``parse(text, command="") -> ParseResult``
    records (plain dicts, JSON-compatible values) and the problems met. A line that
    cannot be read is a problem; the rest of the text is still read.

and may export:

``each_record(lines, command="", problems=None)``
    ``parse``'s records, one at a time, from the text's lines (``text.split("\n")``),
    each problem appended to ``problems`` as it is met. The transcript reader then
    makes each record a fact before the next line is read, so that a long output's
    records are never all held at once (a line-by-line parser's records are large
    dicts: 16 MB for a 20,000-rule listing).
``RECORD_FIELDS``
    ``{record type: field names}`` for types whose every record has exactly these
    fields, in this order: the reader then knows a record's layout by its type (a
    20,000-rule listing's rules are not each asked for their names).

Every record has ``type`` (the fact type, e.g. ``route``) and ``line``: the 1-based
line number inside ``text`` where it starts. The transcript reader adds the node,
command, source file and absolute line, so parsers never need to know them.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from grammar import lark_runtime
from grammar.digest import digest as content_digest
from grammar.lark_runtime import LARK_CACHE, LarkError


class LazyLark:
    """A lark parser built on its first use, with the arguments ``Lark`` takes: a run
    that reads only routes and a listing never builds the other grammars (building one,
    even from the cache, compiles its lexer's expressions)."""

    def __init__(self, *args, **options):
        self._args, self._options, self._parser = args, options, None

    def __getattr__(self, name):
        if self._parser is None:
            self._parser = _built(self._args, self._options)
        return getattr(self._parser, name)


def _built(args, options):
    """``Lark(*args, **options)`` of ``lark_runtime``, kept whole in the ``cache=`` file
    (``_save_parser``): lark's own cache keeps only the analysed grammar, and loading it
    rebuilds thousands of objects and a lexer per parser state in Python (a fifth of a
    short diagnosis). The file is written under another name and renamed, so that a
    process starting meanwhile reads it whole or not at all; one that cannot be read
    (absent, corrupt, from another lark) is replaced."""
    options = dict(options)
    cache = options.pop("cache", False)
    live = {k: v for k, v in options.items() if k in lark_runtime._LOAD_ALLOWED_OPTIONS}
    if not isinstance(cache, str):
        return _compiled(args, options, live)
    cache = _content_named(cache, args, options)
    try:
        with open(cache, "rb") as handle:
            return _load_parser(handle, live)
    except Exception:
        pass
    parser = _compiled(args, options, live)
    partial = f"{cache}.{os.getpid()}.tmp"
    try:
        with open(partial, "wb") as handle:
            _save_parser(handle, parser, live)
        os.replace(partial, cache)
    except (OSError, pickle.PicklingError):
        with contextlib.suppress(OSError):
            os.unlink(partial)   # a cache that cannot be written is only slower
    return parser


def _compiled(args, options, live):
    """lark proper analyses the grammar and builds its tables, as lark's standalone tool
    does; they are loaded into ``lark_runtime``'s classes with the options a load takes
    (the transformer ...), as lark's own cache and that tool load them."""
    from lark import Lark
    from lark.grammar import Rule
    from lark.lexer import TerminalDef
    building = {k: v for k, v in options.items() if k != "transformer"}
    data, memo = Lark(*args, **building).memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items()
                       if k not in lark_runtime._LOAD_ALLOWED_OPTIONS}   # as lark's own save
    return lark_runtime.Lark._load_from_dict(data, memo, **live)


# A parser is pickled whole but for what belongs to this process, which the file names
# instead: modules, lark_runtime's module-level objects (kept by identity: a pickle would
# copy them), the options lark lets a load give (the transformer ...), and the callbacks
# made from the transformer's methods, made again from the live transformer on load (an
# edited transformer is never served the callbacks of the old one).
_CALLBACKS, _UNUSED = ("callbacks",), ("unused",)


def _runtime_global(name: str):
    return getattr(lark_runtime, name)


def _save_parser(handle, parser, live: dict) -> None:
    named_globals = {id(value): name for name, value in vars(lark_runtime).items()
                     if not isinstance(value, (type, types.FunctionType, types.ModuleType))}
    references = {id(value): ("option", name) for name, value in live.items()
                  if value is not None and not isinstance(value, (bool, int, str))}
    references[id(parser._callbacks)] = _CALLBACKS
    references[id(parser._parse_tree_builder)] = _UNUSED

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return references.get(id(obj))

        def reducer_override(self, obj):   # pickled once, then by pickle's memo
            if isinstance(obj, types.ModuleType):
                return importlib.import_module, (obj.__name__,)
            if not isinstance(obj, type) and id(obj) in named_globals:
                return _runtime_global, (named_globals[id(obj)],)
            return NotImplemented

    Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(parser)


def _load_parser(handle, live: dict):
    callbacks: dict = {}

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            if pid == _CALLBACKS:
                return callbacks
            if pid == _UNUSED:
                return None
            if pid[0] == "option" and pid[1] in live:
                return live[pid[1]]
            raise pickle.UnpicklingError(f"unknown reference {pid!r}")

    parser = Unpickler(handle).load()
    if not isinstance(parser, lark_runtime.Lark):
        raise pickle.UnpicklingError("not a lark parser")
    parser._prepare_callbacks()            # from the live transformer
    callbacks.update(parser._callbacks)    # the dict the parse tables were pickled with
    parser._callbacks = callbacks
    return parser


def lark_cache(module_file: str) -> str | bool:
    """The ``cache=`` option for the grammar beside ``module_file`` (or named so); False
    where the directory cannot be made. lark checks a cache file against the grammar
    and options it is given; ``LazyLark`` keeps one file per grammar content instead."""
    try:
        LARK_CACHE.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(LARK_CACHE / (Path(module_file).stem + ".lark-cache"))


def _content_named(cache: str, args, options) -> str:
    """The cache file for this grammar text, these options, this lark and this Python:
    an edited grammar never meets (nor overwrites) the cache of another."""
    described = sorted((name, type(value).__qualname__ if name in _OBJECT_OPTIONS else repr(value))
                       for name, value in options.items())
    key = content_digest(repr((args, described, lark_runtime.__version__, sys.version_info[:2],
                               _CACHE_FORMAT)).encode())
    return cache.removesuffix(".lark-cache") + f"-{key.hexdigest()[:16]}.lark-cache"


# What the cache files hold (lark's own save, then the parser whole, now of lark_runtime's classes)
_CACHE_FORMAT = "whole-parser-2"

# Options whose value is an object (its class is what shapes the parser)
_OBJECT_OPTIONS = {"transformer", "postlex", "lexer_callbacks", "edit_terminals", "_plugins"}


@dataclass(frozen=True)
class Problem:
    """A part of the text that could not be read: where, and why."""

    line: int
    reason: str
    column: int | None = None


@dataclass
class ParseResult:
    """What a parser gives: its records, and a problem for each line it could not read."""
    records: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def lark_problem(error, line_offset: int = 0, last_line: int | None = None) -> Problem:
    """Turn a lark exception into a Problem with its line and column.

    ``line_offset`` is where the parsed text starts (for line-by-line parsers). lark
    reports an unexpected end of input at line -1: that problem is on ``last_line``
    when given, else on the parsed text's first line."""
    line = getattr(error, "line", None)
    if not isinstance(line, int) or line < 1:
        line = last_line - line_offset if last_line else 1
    column = getattr(error, "column", None)
    token = getattr(error, "token", None)
    if token is not None and getattr(token, "type", None) == "$END":
        reason = "the text ends too early"
    elif token is not None:
        reason = f"unexpected {str(token)!r}"
    else:
        char = getattr(error, "char", None)
        reason = f"unexpected character {char!r}" if char else str(error).splitlines()[0]
    return Problem(line=line + line_offset, reason=reason, column=column)


def text_lines(text: str) -> list[str]:
    """The text's lines, split at newlines only (so that line numbers match what an
    editor shows even when the text holds form feeds or other odd characters)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# What the parsers keep of the lines they read, for the process (LineReadings and the
# like): each forgets it when asked, so that a measurement of reading can start afresh.
_FORGETTERS: list = []


def keeps_readings(forget) -> None:
    """Register ``forget()``, which empties what a parser keeps of the lines it read."""
    _FORGETTERS.append(forget)


def forget_readings() -> None:
    """Every parser reads the next text as a fresh process would (benchmarks/)."""
    for forget in _FORGETTERS:
        forget()


class LineReadings:
    """A line-by-line parser's reading of each distinct line, kept for the process: output
    repeats whole lines (every node's same answers, every unit's same journal lines), and
    lark reads a line the same wherever it is. ``read(line, start)`` must depend on
    nothing but its arguments. Lark's error for a line that is no line of the kind is
    kept too (and raised again): such lines repeat as much. The readings are shared
    between the lines that gave them: callers read them and never change them. Bounded
    (it starts afresh when full), so text of endless distinct lines cannot grow it."""

    def __init__(self, read, max_lines: int = 8192):
        self.read = read
        self.max_lines = max_lines
        self.readings: dict[tuple[str, str], object] = {}
        keeps_readings(self.readings.clear)

    def __call__(self, line: str, start: str = ""):
        key = (start, line)
        reading = self.readings.get(key)
        if reading is None:
            try:
                reading = self.read(line, start)
            except LarkError as error:
                reading = _Unreadable(error)
            if len(self.readings) >= self.max_lines:
                self.readings.clear()
            self.readings[key] = reading
        if type(reading) is _Unreadable:
            raise reading.error.with_traceback(None)
        return reading


class _Unreadable:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


def head_lines(text: str, count: int) -> list[str]:
    """``text_lines(text)[:count]`` without splitting the rest of the text: a sniffer
    looks at the first lines of a text that may be thousands of lines long."""
    lines = text.split("\n", count)
    if len(lines) <= count and lines[-1] == "":    # the whole text, ending in a newline
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines[:count]]


def line_problem(lineno: int, error, what: str) -> Problem:
    """The problem of one line a line-by-line parser could not read:
    ``not a WHAT line: <lark's reason>``, at that line, with lark's column."""
    problem = lark_problem(error)
    return Problem(lineno, f"not {what} line: {problem.reason}", problem_column(problem))


def parsed_lines(parser, text: str, what: str, problems: list[Problem]):
    """(line number, parse) of each non-blank line of ``text``, stripped, that the
    line-by-line ``parser`` reads; a line it cannot read is a problem in ``problems``
    (``line_problem``), and the others are still read."""
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            parsed = parser.parse(line)
        except LarkError as error:
            problems.append(line_problem(lineno, error, what))
            continue
        yield lineno, parsed


def problem_column(problem: Problem) -> int | None:
    """A problem's column, or None where lark gave -1 (the text ended before the token)."""
    return problem.column if (problem.column or 0) > 0 else None
