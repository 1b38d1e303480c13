"""Installed packages: dpkg's list and status, and rpm's query.

Commands: ``dpkg -l [PKG...]``, ``dpkg-query -l``, ``dpkg -l | grep qemu`` (rows with
no header), ``dpkg -s PKG`` / ``dpkg-query -s PKG`` (``Package:`` / ``Status:`` /
``Version:`` stanzas), ``rpm -q PKG...`` and ``rpm -qa``, together with what they say
about a package that is not there::

    dpkg-query: no packages found matching qemu-utils
    dpkg-query: package 'qemu-utils' is not installed and no information is available
    package qemu-img is not installed

Record (one per package named)::

    {"type": "package", "line": int, "name": str,
     "status": "ii" | "rc" | "un" | ... | None, "installed": bool,
     "version": str | None, "arch": str | None, "description": str | None}

``status`` is dpkg's two or three letters (desired state, package state, ``R`` when a
reinstall is required); a ``dpkg -s`` ``Status:`` line is turned into the same letters
(``install ok installed`` -> ``ii``).  ``installed`` is true when the package's files
are in place and configured: state ``i``, or ``W``/``t`` (only triggers pending), or an
rpm NVRA line.  rpm has no status letters (None).  A name printed with its
architecture (``libc6:amd64``) gives ``name`` ``libc6``.  ``<none>`` and
``(no description available)`` (dpkg's ``un`` rows) become None.

Worked example, ``dpkg -l python3 qemu-utils`` on Debian 12::

    dpkg-query: no packages found matching qemu-utils
    Desired=Unknown/Install/Remove/Purge/Hold
    ...
    ii  python3        3.11.2-1+b1  amd64        interactive high-level object-oriented language (default python3 version)

gives ``{"name": "qemu-utils", "status": None, "installed": False, ...}`` (line 1) and
``{"name": "python3", "status": "ii", "installed": True, "version": "3.11.2-1+b1",
"arch": "amd64", ...}`` (line 7).
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Token, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "dpkg_list"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "package": {
        "doc": "a package NODE's package manager (dpkg, rpm) reports on",
        "fields": {
            "name": "the package's name (without :arch)",
            "status": "dpkg's status letters (ii, rc, un ...), or empty for rpm",
            "installed": "true when its files are in place and configured",
            "version": "the version, or empty",
            "arch": "the architecture, or empty",
            "description": "the one-line description, or empty",
        },
    },
}

# dpkg -l / -s (and dpkg-query's long options), rpm -q / -qa (not -ql, -qi, -qf ...,
# which print other things).
COMMANDS = re.compile(
    r"^\s*(?:dpkg(?:-query)?\s+(?:-l\b|--list\b|-s\b|--status\b)"
    r"|rpm\s+(?:-q|-qa|--query)(?=\s|$))"
)
FILES = None

_WANT = {"unknown": "u", "install": "i", "hold": "h", "deinstall": "r", "purge": "p"}
_STATE = {
    "not-installed": "n", "config-files": "c", "half-installed": "H", "unpacked": "U",
    "half-configured": "F", "triggers-awaited": "W", "triggers-pending": "t", "installed": "i",
}
# Package states with the files in place and configured (only triggers may be pending).
_INSTALLED_STATES = "iWt"
# rpm -q's default format is %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.
_RPM_ARCHES = (
    "x86_64", "noarch", "i686", "i586", "i386", "aarch64", "ppc64le", "ppc64", "s390x", "armv7hl", "src",
)
_LOOKS = re.compile(
    r"^(?:Desired=Unknown/Install|\|\|/ Name|[uihrp][ncHUFWti]R?\s+\S+\s+\S+"
    r"|dpkg-query: no packages found matching|dpkg-query: package '|Package: \S+$"
    r"|package \S+ is not installed$)"
)


class _ToLine(Transformer):
    """One line as a tagged tuple; the driver below makes the records."""

    def start(self, children):
        child = children[0]
        if isinstance(child, Token):  # DPKG_INFO_HINT
            return ("hint",)
        return child

    def legend(self, children):
        token = children[0]
        return ("legend", token.type, "Architecture" in token)

    def package_row(self, children):
        state, name, version, arch, description = children
        return ("row", str(state), str(name), str(version),
                None if arch is None else str(arch), None if description is None else str(description))

    def not_found(self, children):
        return ("missing", str(children[1]))

    def not_installed(self, children):
        return ("missing", str(children[1]))

    def status_field(self, children):
        _, want, error, state = children
        letters = _WANT[str(want)] + _STATE[str(state)] + ("R" if "reinstreq" in error else "")
        return ("status", letters)

    def field(self, children):
        name, value = children
        return ("field", str(name)[:-1], None if value is None else str(value).strip())

    def continuation(self, children):
        return ("continuation",)

    def rpm_package(self, children):
        nvra = str(children[0])
        arch = None
        for candidate in _RPM_ARCHES:
            if nvra.endswith("." + candidate):
                arch, nvra = candidate, nvra[: -len(candidate) - 1]
                break
        name, version, release = nvra.rsplit("-", 2)
        return ("rpm", name, f"{version}-{release}", arch)

    def rpm_not_installed(self, children):
        return ("missing", str(children[1]))


_PARSER = LazyLark(
    (Path(__file__).parent / "dpkg_list.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToLine(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _PARSER.parse(line))


def _none(value: str | None) -> str | None:
    return None if value in (None, "<none>", "(no description available)") else value


def _record(line: int, name: str, status: str | None, installed: bool,
            version: str | None = None, arch: str | None = None, description: str | None = None) -> dict:
    return {"type": "package", "line": line, "name": name, "status": status, "installed": installed,
            "version": version, "arch": arch, "description": description}


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 10) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    has_arch_column: bool | None = None  # known once dpkg -l's column titles are seen
    stanza: dict | None = None  # the dpkg -s record being filled
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.rstrip()
        if not line:
            stanza = None
            continue
        try:
            parsed = _READ(line, "")
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "a package"))
            continue
        tag = parsed[0]
        if tag == "legend":
            if parsed[1] == "COLUMN_TITLES":
                has_arch_column = parsed[2]
        elif tag == "row":
            _, state, name, version, arch, description = parsed
            if arch is not None and has_arch_column is False:
                # A table without the Architecture column: the word is the description's.
                description = arch if description is None else f"{arch} {description}"
                arch = None
            if ":" in name:
                name, qualifier = name.split(":", 1)
                arch = arch or qualifier
            result.records.append(_record(
                lineno, name, state, state[1] in _INSTALLED_STATES,
                _none(version), _none(arch), _none(description)))
        elif tag == "missing":
            stanza = None
            result.records.append(_record(lineno, parsed[1], None, False))
        elif tag == "rpm":
            _, name, version, arch = parsed
            result.records.append(_record(lineno, name, None, True, version, arch))
        elif tag == "field":
            _, key, value = parsed
            if key == "Package":
                stanza = _record(lineno, value or "", None, False)
                result.records.append(stanza)
            elif stanza is None:
                result.problems.append(Problem(lineno, f"{key}: field outside a dpkg -s stanza"))
            elif key == "Version":
                stanza["version"] = value
            elif key == "Architecture":
                stanza["arch"] = value
            elif key == "Description":
                stanza["description"] = value
        elif tag == "status":
            if stanza is None:
                result.problems.append(Problem(lineno, "Status: field outside a dpkg -s stanza"))
            else:
                stanza["status"] = parsed[1]
                stanza["installed"] = parsed[1][1] in _INSTALLED_STATES
        # "hint" and "continuation" lines carry nothing for the record.
    return result
