"""Every output kind stackdoc reads, and how a block of output finds its parser.

The order matters only for content sniffing (text with no command): kinds whose
``looks_like`` is most specific come first.

Each parser module keeps its own ``COMMANDS`` and ``FILES`` (grammar/base.py), but a
run that reads three kinds should not import thirteen modules (and compile all their
expressions) to learn which command is which. So the patterns are also kept as data,
in the project's own ``.cache/``, keyed on the content of every module in grammar/: a
command is recognised by compiling only the patterns it is tried against, and a parser
module is imported only when its kind is read (or when text with no command must be
sniffed by every kind).
"""
from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from grammar import commands
from grammar.digest import digest as content_digest

KIND_NAMES = (
    "iptables_save", "iptables_list", "ip_route", "route_n", "ip_addr", "ifconfig",
    "tcpdump", "sysctl", "oslo_log", "traceback", "dpkg_list", "service_status", "nova_manage",
    "cli_table", "cli_error", "ping", "netcat", "ssh", "mysql_client", "du", "processes", "df", "listening", "iscsiadm",
    "ini",
)

_GRAMMAR = Path(__file__).resolve().parent
PATTERN_CACHE = _GRAMMAR.parent / ".cache" / "kinds"


class _Parsers(Mapping):
    """The parser modules by kind, each imported on first use."""

    def __init__(self):
        self._imported: dict[str, ModuleType] = {}

    def __getitem__(self, kind: str) -> ModuleType:
        module = self._imported.get(kind)
        if module is None:
            if kind not in KIND_NAMES:
                raise KeyError(kind)
            module = self._imported[kind] = importlib.import_module(f"grammar.{kind}")
        return module

    def __iter__(self):
        return iter(KIND_NAMES)

    def __len__(self) -> int:
        return len(KIND_NAMES)


@functools.cache
def parsers() -> Mapping[str, ModuleType]:
    """The parser modules by kind, in ``KIND_NAMES`` order, imported when looked up."""
    return _Parsers()


class _Recognizer:
    """One kind's COMMANDS and FILES patterns, compiled when first tried."""

    def __init__(self, kind: str, commands_pattern, files_pattern):
        self.kind = kind
        self._sources = {"commands": commands_pattern, "files": files_pattern}
        self._compiled: dict = {}

    def _pattern(self, which: str):
        if which not in self._compiled:
            source = self._sources[which]
            self._compiled[which] = None if source is None else re.compile(source[0], source[1])
        return self._compiled[which]

    @property
    def commands(self):
        return self._pattern("commands")

    @property
    def files(self):
        return self._pattern("files")


def _source(pattern) -> list | None:
    return None if pattern is None else [pattern.pattern, int(pattern.flags)]


def _modules_digest() -> str:
    """What the patterns depend on: the kinds, every module of grammar/ (a pattern may
    be built from another module's pieces) and the Python that compiles them. A module
    is judged changed as Python judges its compiled code stale, by its size and
    modification time: reading and hashing all of grammar/ cost more than the patterns
    save."""
    stamps = []
    with os.scandir(_GRAMMAR) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                stat = entry.stat()
                stamps.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return content_digest(repr((KIND_NAMES, sys.version_info[:2], sorted(stamps))).encode()).hexdigest()


def _patterns_from_modules() -> list:
    return [[kind, _source(module.COMMANDS), _source(module.FILES)]
            for kind, module in ((k, parsers()[k]) for k in KIND_NAMES)]


def _read_cache(path: Path, digest: str) -> list | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["digest"] != digest or [row[0] for row in data["kinds"]] != list(KIND_NAMES):
            return None
        for _kind, commands_source, files_source in data["kinds"]:
            for source in (commands_source, files_source):
                if source is not None and not (isinstance(source[0], str)
                                               and isinstance(source[1], int)):
                    return None
        return data["kinds"]
    except Exception:  # absent, half-written by an older version, or corrupt: rebuild
        return None


def _write_cache(path: Path, digest: str, rows: list) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"digest": digest, "kinds": rows}), encoding="utf-8")
        partial.replace(path)   # whole or not at all, for a process reading it meanwhile
    except OSError:
        pass  # a cache that cannot be written is only slower


@functools.cache
def recognizers() -> tuple[_Recognizer, ...]:
    """Every kind's command and file patterns, in ``KIND_NAMES`` order."""
    digest = _modules_digest()
    path = PATTERN_CACHE / "patterns.json"
    rows = _read_cache(path, digest)
    if rows is None:
        rows = _patterns_from_modules()
        _write_cache(path, digest, rows)
    return tuple(_Recognizer(kind, commands_source, files_source)
                 for kind, commands_source, files_source in rows)


def kind_for_command(command: str) -> tuple[str | None, str | None]:
    """(kind, path read) for a command line; kind None when no parser knows it.

    The first stage of a pipeline decides: ``cat /etc/nova/nova.conf | grep -v '^#'``
    is nova's configuration, ``iptables -L -n | grep SNAT`` an iptables listing.
    """
    stages = commands.pipeline(command)
    if not stages:
        return None, None
    first = stages[0]
    paths = commands.read_paths(first)
    if paths:
        for recognizer in recognizers():
            if recognizer.files is not None and recognizer.files.search(paths[0]):
                return recognizer.kind, paths[0]
        return None, paths[0]
    for recognizer in recognizers():
        if recognizer.commands.search(first):
            return recognizer.kind, None
    return None, None


def kind_for_text(text: str) -> str | None:
    """The kind of text that came with no command, judged by its content."""
    for parser in parsers().values():
        try:
            if parser.looks_like(text):
                return parser.KIND
        except Exception:  # a sniffer must never stop the reading of evidence
            continue
    return None
