"""Every output kind stackdoc reads, and how a block of output finds its parser.

The order matters only for content sniffing (text with no command): kinds whose
``looks_like`` is most specific come first.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType

from grammar import commands

KIND_NAMES = (
    "iptables_save", "iptables_list", "ip_route", "route_n", "ip_addr", "ifconfig",
    "tcpdump", "sysctl", "oslo_log", "traceback", "dpkg_list", "service_status", "nova_manage",
    "cli_table", "cli_error", "ping", "netcat",
    "ini",
)



@functools.cache
def parsers() -> dict[str, ModuleType]:
    """The parser modules by kind, imported on first use (each compiles its grammar)."""
    return {name: importlib.import_module(f"grammar.{name}") for name in KIND_NAMES}


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
        for parser in parsers().values():
            if parser.FILES is not None and parser.FILES.search(paths[0]):
                return parser.KIND, paths[0]
        return None, paths[0]
    for parser in parsers().values():
        if parser.COMMANDS.search(first):
            return parser.KIND, None
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
