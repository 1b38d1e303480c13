"""INI configuration files and grep excerpts of them.

Commands: ``cat /etc/nova/nova.conf`` (cinder.conf, glance-api.conf, api-paste.ini,
neutron plugin .ini files, my.cnf ...), ``grep rabbit /etc/nova/nova.conf``,
``grep -n ...`` (``12:rabbit_host=10.0.0.3``), grep over several files
(``/etc/nova/nova.conf:rabbit_host=10.0.0.3``), ``grep -v '^#' FILE | grep -v '^$'``.
Not rabbitmq.config (an Erlang term) nor shell-style files.

The reading follows oslo.config's parser (what an OpenStack service itself sees):
``key = value`` and ``key=value`` (and ``key: value``, split at whichever of ``=`` and
``:`` comes first), the value stripped and a pair of quotes around it removed, ``#``
and ``;`` lines are comments, a line that starts with whitespace continues the
previous option's value (joined with a newline), and a blank line ends it.  An option
with no delimiter (MySQL's ``skip-name-resolve``) has the value None.

Record (one per option)::

    {"type": "config_option", "line": int, "file": "/etc/nova/nova.conf" | None,
     "section": "DEFAULT" | ... | None, "key": str, "value": str | None}

``file`` is the name grep printed before the line, None otherwise; ``section`` is None
for options seen before any section header (grep excerpts, which seldom show one).

Worked example: ``grep -H rabbit /etc/nova/nova.conf /etc/cinder/cinder.conf`` printing
``/etc/cinder/cinder.conf:rabbit_host = 10.0.0.3`` gives
``{"file": "/etc/cinder/cinder.conf", "section": None, "key": "rabbit_host",
"value": "10.0.0.3"}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, LineReadings, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "ini"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "config_option": {
        "doc": "an option of a configuration file on NODE (cat or grep of nova.conf, cinder.conf ...); the file is the fact's path",
        "fields": {
            "section": "the [section] it is in (DEFAULT ...), or empty in a grep excerpt",
            "key": "the option's name, e.g. glance_api_servers",
            "value": "its value as oslo.config reads it, or empty",
        },
    },
}

_NOT_INI = (
    # /etc files named *.conf that are not INI files (other kinds, or formats of
    # their own): name resolution, kernel, logging, PAM, web servers, fonts ...
    r"(?!(?:.*/)?(?:resolv|nsswitch|host|ld\.so|sysctl|ntp|chrony|rsyslog|syslog|logrotate"
    r"|pam|gai|mke2fs|fuse|nftables|sensors3|ucf|e2scrub|ca-certificates|debconf|deluser"
    r"|adduser|rabbitmq-env|dnsmasq|named|exports|krb5|sudo|libaudit|updatedb)\.conf$)"
    r"(?!(?:apache2|httpd|nginx|fonts|modprobe\.d|modules-load\.d|security|ld\.so\.conf\.d"
    r"|sysctl\.d|rsyslog\.d|logrotate\.d|ssh|selinux|ldap|dbus-1|udev|init|X11|tmpfiles\.d"
    r"|sudoers\.d|apt|dhcp|bind|named|network)/)"
)
FILES = re.compile(r"^/etc/" + _NOT_INI + r"\S+\.(?:conf|ini|cfg|cnf)$")
# cat/grep/head/tail/less on such a file (rabbitmq.config ends in ".config" and so is
# never matched).
COMMANDS = re.compile(
    r"^\s*(?:cat|grep|egrep|head|tail|less|more)\b[^|]*\s/etc/" + _NOT_INI
    + r"\S+\.(?:conf|ini|cfg|cnf)\b(?!\.)"
)

# Cheap shape checks for looks_like.
_SECTION = re.compile(r"^\[[^\]\n]+\]\s*(?:[#;].*)?$")
_OPTION = re.compile(r"^[A-Za-z_/][\w./-]*\s*[=:]")
_GREP_PREFIXED = re.compile(r"^(?:[^\s:=]*\.(?:conf|ini|cfg|cnf)[:-](?:\d+[:-])?|--$)")
_DIRECTIVE = re.compile(r"^!include")


class _ToLine(Transformer):
    def start(self, children):
        grep_file, grep_line, content = children
        if grep_file is not None:
            grep_file = str(grep_file)[:-1]
        return grep_file, content

    def section(self, children):
        return ("section", str(children[0])[1:-1].strip())

    def option(self, children):
        key, delimiter, value = children
        if delimiter is None:
            return ("option", str(key).strip(), None)
        value = "" if value is None else str(value).strip()
        # oslo.config drops one pair of matching quotes around the value.
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return ("option", str(key).strip(), value)

    def continuation(self, children):
        return ("continuation", str(children[0]).strip())


_PARSER = LazyLark(
    (Path(__file__).parent / "ini.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToLine(),
)

# Each distinct line read by lark once per process (base.LineReadings).
_READ = LineReadings(lambda line, _start: _PARSER.parse(line))


def looks_like(text: str) -> bool:
    """True when the first meaningful lines are a section header and options, or
    grep lines prefixed with a configuration file name."""
    lines = [l.rstrip() for l in head_lines(text, 40)]
    meaningful = [l for l in lines if l.strip() and not l.lstrip().startswith(("#", ";"))][:10]
    if not meaningful:
        return False
    if all(_GREP_PREFIXED.match(l) for l in meaningful) and any(l != "--" for l in meaningful):
        return True
    if not any(_SECTION.match(l) for l in meaningful):
        return False
    return all(_SECTION.match(l) or _OPTION.match(l) or _DIRECTIVE.match(l) for l in meaningful)


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    sections: dict[str | None, str | None] = {}
    # The option a continuation line would extend, per file; a blank line ends it.
    open_option: dict[str | None, dict | None] = {}
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.rstrip()
        if not line:
            open_option.clear()
            continue
        try:
            grep_file, content = _READ(line)
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, "an INI"))
            continue
        if content is None or not isinstance(content, tuple):
            if content is not None and content.type == "GREP_SEPARATOR":
                # grep skipped lines here, section headers perhaps among them.
                sections.clear()
                open_option.clear()
            # Otherwise nothing after a grep prefix, a comment, an !include line.
            continue
        kind = content[0]
        if kind == "section":
            sections[grep_file] = content[1]
            open_option[grep_file] = None
        elif kind == "option":
            record = {
                "type": "config_option",
                "line": lineno,
                "file": grep_file,
                "section": sections.get(grep_file),
                "key": content[1],
                "value": content[2],
            }
            result.records.append(record)
            open_option[grep_file] = record
        else:
            record = open_option.get(grep_file)
            if record is None:
                result.problems.append(Problem(
                    lineno, "indented line with no option before it to continue "
                    "(oslo.config refuses such a file)"))
                continue
            record["value"] = content[1] if not record["value"] else f"{record['value']}\n{content[1]}"
    return result
