"""OpenStack service logs written by oslo.log (and, up to Juno, openstack.common.log).

Command: ``cat|tail|head|grep|less /var/log/<project>/<service>.log`` (nova, cinder,
glance, keystone, neutron, heat, ...).  Lines follow oslo.log's default formats
(see grammar/oslo_log.lark)::

    <date> <time>.<ms> <pid> <LEVEL> <logger> [<request context>] [instance: <uuid>] <message>

Exception output is written one line per traceback line, each behind the exception
prefix: ``... <pid> TRACE <logger> <text>`` up to Juno, ``... <pid> ERROR <logger>
<text>`` since (the same time, pid and logger as the entry, and no request context).
Those lines are folded into the entry they follow.

Record (one per log entry)::

    {"type": "log_entry", "line": int, "end_line": int,
     "time": "2014-08-28 16:22:33.781", "pid": int | None, "level": "ERROR",
     "logger": "cinder.image.glance", "request_id": "req-..." | None,
     "context": raw text inside [...] | None, "message": str,
     "traceback": [{"file", "line", "function", "code"}] | None,
     "exception_type": str | None, "exception_message": str | None,
     "causes": [{"exception_type", "exception_message"}]}

``context`` is None for ``[-]`` (no request) and for exception lines.  With two request
ids (``[req-<global> req-<local> ...]``, Pike on) ``request_id`` is the service's own,
the second.  ``exception_*`` come from the traceback's last line; ``causes`` lists the
earlier exceptions of a Python 3 chain ([] otherwise).  An ``[instance: ...]`` prefix
stays part of ``message``.

Worked example (Icehouse cinder-api.log)::

    2014-08-28 16:22:33.781 3966 ERROR cinder.image.glance [req-e19de3f2-... df77... cacb... - - -] Error contacting glance server '10.0.0.8:9292' for 'get', done trying.
    2014-08-28 16:22:33.781 3966 TRACE cinder.image.glance Traceback (most recent call last):
    2014-08-28 16:22:33.781 3966 TRACE cinder.image.glance   File "/usr/lib/python2.7/dist-packages/cinder/image/glance.py", line 158, in call
    2014-08-28 16:22:33.781 3966 TRACE cinder.image.glance     return getattr(client.images, method)(*args, **kwargs)
    ...
    2014-08-28 16:22:33.781 3966 TRACE cinder.image.glance CommunicationError: Error communicating with http://10.0.0.8:9292 [Errno 111] ECONNREFUSED

is one record: level ERROR, request_id ``req-e19de3f2-...``, four frames,
exception_type ``CommunicationError``.

A line that is not a log line is a problem.  Python's logging writes a message that
contains newlines as they are, so such a line right after an entry is most likely the
rest of its message: it is appended to that message (and still reported).
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, Problem, head_lines, keeps_readings, lark_cache, lark_problem, text_lines
from grammar.traceback import HEADER, read_lines

KIND = "oslo_log"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "log_entry": {
        "doc": "an entry of an OpenStack service's log on NODE (oslo.log format), with its traceback",
        "fields": {
            "time": "the date and time as printed",
            "pid": "the process id, or empty",
            "level": "DEBUG, INFO, WARNING, ERROR, CRITICAL, TRACE",
            "logger": "the logger's name, e.g. cinder.image.glance",
            "request_id": "the service's own request id, or empty",
            "context": "the text inside the request context's brackets, or empty",
            "message": "the message",
            "exception_type": "the exception its traceback ends with, or empty",
            "exception_message": "that exception's message, or empty",
            "causes": "the earlier exceptions of a chain",
            "traceback": "the traceback's frames (file, line, function, code), for explanations",
        },
    },
}

_PROJECTS = (
    r"(?:nova|cinder|glance|keystone|neutron|quantum|heat|horizon|swift|ceilometer|aodh|gnocchi"
    r"|placement|octavia|ironic|manila|barbican|designate|trove|sahara|magnum|zun|senlin|mistral"
    r"|murano|watcher|masakari|cloudkitty|panko|blazar)"
)
# A service log: /var/log/<project>/<service>.log (rotated: .log.1, .log.2.gz), also
# where Kolla and TripleO containers write them.
FILES = re.compile(
    r"^/var/log/(?:kolla/|containers/)?" + _PROJECTS + r"/[^/]+\.log(?:\.\d+)?(?:\.gz)?$"
)
# Reading such a file is found through FILES; the commands that print a service's log
# without naming a file are the container runtimes' "logs".
COMMANDS = re.compile(
    r"^\s*(?:docker|podman)\s+logs\s+(?:-\S+\s+(?:\d+\s+)?)*\S*" + _PROJECTS
)

# A request id as oslo.context makes it: req-<uuid>.
_REQUEST_ID = re.compile(r"^req-[0-9a-fA-F-]+$")
# The first line of a log entry: date and time at the start (cheap pre-check for looks_like).
_ENTRY_START = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?(?: \d+)? "
    r"(?:TRACE|DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL|FATAL) \S"
)


class _ToLine(Transformer):
    """One log line as a tuple (its header still whole); the driver below splits the
    header and turns lines into entries."""

    def line(self, children):
        header, context, instance, text = children
        return (str(header), None if context is None else str(context),
                None if instance is None else str(instance), None if text is None else str(text))

    def line_by_field(self, children):
        timestamp, pid, level, logger, context, instance, text = children
        return (
            str(timestamp),
            int(pid) if pid is not None else None,
            str(level)[1:],
            str(logger)[1:],
            None if context is None else str(context),
            None if instance is None else str(instance),
            None if text is None else str(text),
        )


_PARSER = LazyLark(
    (Path(__file__).parent / "oslo_log.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    start=["line", "line_by_field"],
    transformer=_ToLine(),
)


class _Lines:
    """Log lines read by the grammar, each distinct line after its timestamp once.

    A service repeats itself: a broker it cannot reach, a periodic task that fails, the
    same traceback each time, from the same process, differing only in the time. lark
    lexes a line left to right and no terminal looks back, so what follows the
    timestamp (lark's TIMESTAMP, matched at the line's start) reads the same whatever
    time precedes it: a line whose rest was read before takes that reading. A line that
    is no log line (a message's second line, a traceback's body) comes back just as
    often: lark's error for it is kept too."""

    MAX_LINES = 8192   # starts afresh when full: text of endless distinct lines cannot grow it

    def __init__(self):
        self.readings: dict[str, tuple] = {}
        self.unreadable: dict[str, LarkError] = {}
        self._timestamp = self._header = None

    def _terminals(self):
        def terminal(name):
            return _PARSER.get_terminal(name).pattern.to_regexp()
        self._timestamp = re.compile(terminal("TIMESTAMP"))
        # the HEADER terminal's parts, in the grammar's order, each a group
        self._header = re.compile("({})({})?({})({})".format(
            *(terminal(name) for name in ("TIMESTAMP", "PID", "LEVEL", "LOGGER"))))

    def read(self, line: str) -> tuple:
        """(time, pid, level, logger, context, instance, text); lark's error where the
        line is not a log line."""
        if self._timestamp is None:
            self._terminals()
        stamp = self._timestamp.match(line)
        if stamp is not None:
            known = self.readings.get(line[stamp.end():])
            if known is not None:
                return (stamp.group(), *known)
        else:
            error = self.unreadable.get(line)
            if error is not None:
                raise error.with_traceback(None)
        try:
            header, context, instance, text = _PARSER.parse(line, start="line")
        except LarkError:
            # field by field, to say where the line stops being a log line (it raises)
            try:
                return _PARSER.parse(line, start="line_by_field")
            except LarkError as error:
                if stamp is None:
                    if len(self.unreadable) >= self.MAX_LINES:
                        self.unreadable.clear()
                    self.unreadable[line] = error
                raise
        time, pid, level, logger = self._header.fullmatch(header).groups()
        reading = (int(pid) if pid is not None else None, level[1:], logger[1:], context, instance, text)
        if len(self.readings) >= self.MAX_LINES:
            self.readings.clear()
        self.readings[line[len(time):]] = reading
        return (time, *reading)


_LINES = _Lines()
keeps_readings(lambda: (_LINES.readings.clear(), _LINES.unreadable.clear()))


def _request_id(context: str | None) -> str | None:
    if not context:
        return None
    words = context.split()
    # [req-<global> req-<local> ...] and [None req-<local> ...]: the second is ours.
    if len(words) > 1 and _REQUEST_ID.match(words[1]) and (
        _REQUEST_ID.match(words[0]) or words[0] in ("None", "-")
    ):
        return words[1]
    if _REQUEST_ID.match(words[0]):
        return words[0]
    return None


class _Entry:
    """An entry being read: its record and the exception lines seen so far."""

    __slots__ = ("record", "trace_texts", "trace_linenos", "last_line")

    def __init__(self, record: dict):
        self.record = record
        self.trace_texts: list[str] = []
        self.trace_linenos: list[int] = []
        self.last_line = record["line"]


def _body(context, instance, text) -> str:
    """The line's text after the logger name, as written (the separating space dropped)."""
    return ((context or "") + (instance or "") + (text or ""))[1:]


def _continues(entry: _Entry, time, pid, level, logger, context) -> bool:
    """Is this line exception output belonging to ``entry``?"""
    record = entry.record
    if pid != record["pid"] or logger != record["logger"]:
        return False
    if level == "TRACE":
        return True
    # Since Kilo the exception prefix is "... ERROR <logger> ", stamped with the entry's
    # own time; only the prefix lacks a request context ("[-]" otherwise).  Once inside
    # the exception, a line whose text starts with "[" still belongs to it.
    return level == "ERROR" and time == record["time"] and (context is None or bool(entry.trace_texts))


def _finish(entry: _Entry, problems: list[Problem]) -> dict:
    record = entry.record
    record["end_line"] = entry.last_line
    if entry.trace_texts:
        fields, found = read_lines(entry.trace_texts, entry.trace_linenos)
        problems.extend(found)
        if fields is not None:
            record["traceback"] = fields["frames"]
            record["exception_type"] = fields["exception_type"]
            record["exception_message"] = fields["exception_message"]
            record["causes"] = fields["causes"]
    return record


def _is_text(line: str) -> bool:
    """No control characters but tabs: not binary junk."""
    return not any(ch < " " and ch != "\t" or ch == "\x7f" for ch in line)


def looks_like(text: str) -> bool:
    """True when most of the first non-blank lines are oslo.log lines."""
    lines = [line for line in head_lines(text, 20) if line.strip()][:10]
    if not lines:
        return False
    # A command that logs to the terminal (rally, nova-manage) may print a line or two
    # of its own first: most lines, not all, must be log lines.
    hits = sum(1 for line in lines if _ENTRY_START.match(line))
    return hits * 2 > len(lines)


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    entry: _Entry | None = None
    previous_blank = False
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            previous_blank = True
            continue
        try:
            time, pid, level, logger, context, instance, text_ = _LINES.read(line)
        except LarkError as error:
            problem = lark_problem(error)
            # Inside an exception the line is more likely a mangled exception line
            # (a paste that lost characters) than message text: only report it.
            if entry is not None and not previous_blank and not entry.trace_texts and _is_text(line):
                record = entry.record
                record["message"] = f"{record['message']}\n{line}"
                entry.last_line = lineno
                result.problems.append(Problem(
                    lineno,
                    f"not an oslo.log line (kept as part of the message of the entry at line "
                    f"{record['line']}): {problem.reason}",
                    problem.column if (problem.column or 0) > 0 else None,
                ))
            else:
                result.problems.append(Problem(lineno, f"not an oslo.log line: {problem.reason}",
                                               problem.column if (problem.column or 0) > 0 else None))
            previous_blank = False
            continue
        previous_blank = False
        if entry is not None and _continues(entry, time, pid, level, logger, context):
            entry.trace_texts.append(_body(context, instance, text_) if context else (text_ or " ")[1:])
            entry.trace_linenos.append(lineno)
            entry.last_line = lineno
            continue
        if entry is not None:
            result.records.append(_finish(entry, result.problems))
        message = _body(None, instance, text_)
        entry = _Entry({
            "type": "log_entry",
            "line": lineno,
            "end_line": lineno,
            "time": time,
            "pid": pid,
            "level": level,
            "logger": logger,
            "request_id": _request_id(context[2:-1] if context else None),
            "context": None if context is None or context[2:-1].strip() == "-" else context[2:-1],
            "message": message,
            "traceback": None,
            "exception_type": None,
            "exception_message": None,
            "causes": [],
        })
        # An excerpt can start inside an exception, its entry cut off: a TRACE line, or
        # an exception-prefix line (ERROR and no request context) holding the traceback
        # header or an indented traceback line.
        body = (text_ or " ")[1:]
        if level == "TRACE" or (
            level == "ERROR" and context is None and (body.strip() == HEADER or body.startswith("  "))
        ):
            entry.trace_texts.append((text_ or " ")[1:])
            entry.trace_linenos.append(lineno)
    if entry is not None:
        result.records.append(_finish(entry, result.problems))
    return result
