"""Python tracebacks printed by a command (a client, a script, a service started by hand).

Command: anything written in Python that dies, e.g. ``elasticluster list-templates``,
``python manage.py ...``, ``nova-manage db sync``.  The output around the traceback
(log lines, prompts the command printed) is not this kind's business and is not a
problem; only a traceback that cannot be read is.

Record (one per traceback)::

    {"type": "traceback", "line": 1, "end_line": 23,
     "frames": [{"file": str, "line": int, "function": str | None, "code": str | None}],
     "exception_type": str | None, "exception_message": str | None,
     "causes": [{"exception_type": str | None, "exception_message": str | None}],
     "python_version": "2.6" | None}

``frames`` and ``exception_*`` describe the last traceback of a chain (the one that was
finally raised); ``causes`` lists the earlier ones of a Python 3 chain ("During handling
of the above exception, another exception occurred:"), first printed first, and is
``[]`` for a lone traceback.  ``function`` is None for a SyntaxError frame, ``code`` for
a frame with no source (a module inside a zipped egg).  ``python_version`` comes from
the frame paths (``lib/python2.6/``, ``-py2.6.egg``).

Worked example::

    Traceback (most recent call last):
      File "/root/elasticluster/bin/elasticluster", line 8, in <module>
        load_entry_point('elasticluster==1.0.2', 'console_scripts', 'elasticluster')()
      File "/root/elasticluster/lib/python2.6/site-packages/setuptools-0.6c11-py2.6.egg/pkg_resources.py", line 318, in load_entry_point
      ...
    ImportError: No module named argparse

gives ``exception_type "ImportError"``, ``exception_message "No module named argparse"``,
``python_version "2.6"``, and the second frame's ``code`` is None.

The module also serves grammar/oslo_log.py: ``read_lines`` reads the traceback text
an OpenStack service log carries on its TRACE lines.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError, Transformer

from grammar.base import LazyLark, ParseResult, Problem, keeps_readings, lark_cache, lark_problem, text_lines

KIND = "traceback"
# The facts this kind gives, each field in words (collected by kb/schema.py into
# rules/FACTS.md; node, type and prov are on every fact).
FACT_TYPES = {
    "traceback": {
        "doc": "a Python traceback a command printed on NODE",
        "fields": {
            "exception_type": "the exception finally raised, e.g. ImportError",
            "exception_message": "its message",
            "causes": "the earlier exceptions of a Python 3 chain",
            "frames": "the frames (file, line, function, code), for explanations",
            "python_version": "the Python version the frame paths show (2.6 ...), or empty",
        },
    },
}

# A traceback has no command of its own: any Python program can print one, between
# other output of its own.  Claiming "python ..." would hand a script's real output
# (a routing table, a config) to this kind; so no command is claimed, and the
# transcript reader finds tracebacks by content (looks_like).
COMMANDS = re.compile(r"(?!)")
FILES = None

HEADER = "Traceback (most recent call last):"
CHAIN_NOTES = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
_FRAME_START = re.compile(r'\s*File "[^"]*", line \d+')
# lib/python2.6/site-packages, /usr/lib64/python3.6/, setuptools-0.6c11-py2.6.egg
_PY_VERSION = re.compile(r"(?:/python|-py)(\d\.\d+)(?:/|\.egg)")
# Under a 3.11+ source line Python marks the failing expression with ^ and ~.
_CARETS = re.compile(r"^[\s^~]+$")


class _ToTraceback(Transformer):
    """Turns the parse tree of one block into plain dicts."""

    def start(self, children):
        return [c for c in children if isinstance(c, dict)]

    def traceback(self, children):
        frames = [c for c in children[1:-1] if c is not None]
        exception = children[-1] or {"exception_type": None, "exception_message": None}
        return {"frames": frames, **exception}

    def frame(self, children):
        if children[0].type == "REPEAT_NOTE":
            return None  # "[Previous line repeated N more times]" adds no frame
        match = re.match(r'  File "([^"]*)", line (\d+)(?:, in (.*))?$', str(children[0]))
        code = next((c for c in children[1:] if not _CARETS.match(c)), None)
        return {"file": match[1], "line": int(match[2]), "function": match[3], "code": code}

    def source_line(self, children):
        return str(children[0]).strip()

    def exception(self, children):
        type_, message = children
        if message is not None:
            message = str(message)[1:].strip()
        return {"exception_type": str(type_), "exception_message": message}


_PARSER = LazyLark(
    (Path(__file__).parent / "traceback.lark").read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    lexer="contextual",
    maybe_placeholders=True,
    transformer=_ToTraceback(),
)


def _is_frame_part(text: str) -> bool:
    # Frame lines and their source lines are indented; so is the 3.11 caret line.
    return text.startswith("  ") and text.strip() != ""


def _next_nonblank(texts: list[str], i: int) -> int:
    while i < len(texts) and not texts[i].strip():
        i += 1
    return i


def block_extent(texts: list[str], start: int) -> tuple[int, int | None]:
    """Where the traceback whose header is ``texts[start]`` ends.

    Returns ``(end, exception_index)``: ``texts[start:end]`` is the block and
    ``exception_index`` the index of its final exception line, or None when the text
    stops (or another traceback starts) before one.
    """
    i = start + 1
    while True:
        while i < len(texts):
            if _is_frame_part(texts[i]):
                i += 1
                continue
            # A blank line inside the frames (a wrapped paste) when frames follow it.
            following = _next_nonblank(texts, i)
            if following > i and following < len(texts) and _is_frame_part(texts[following]):
                i = following
                continue
            break
        if i >= len(texts) or texts[i].strip() == HEADER:
            return i, None
        exception_index = i
        note = _next_nonblank(texts, i + 1)
        if note < len(texts) and texts[note].strip() in CHAIN_NOTES:
            header = _next_nonblank(texts, note + 1)
            if header < len(texts) and texts[header].strip() == HEADER:
                i = header + 1
                continue
        return exception_index + 1, exception_index


# Blocks read before, by their text: a service logs the same traceback each time the
# same thing fails (a broker down, a database refusing), and a block reads the same
# wherever it is. Bounded: text of endless distinct tracebacks starts it afresh.
_read_before: dict[str, list[dict]] = {}
_MAX_BLOCKS_KEPT = 1024
keeps_readings(_read_before.clear)


def read_block(texts: list[str], linenos: list[int]) -> tuple[dict | None, list[Problem]]:
    """Parse one traceback block (``texts``, dedented, from its header on).

    ``linenos`` gives each text's line number in the caller's input, for problems.
    Returns the traceback's fields (without type/line) or None when the block could
    not be read, and the problems met.
    """
    problems: list[Problem] = []
    block = "\n".join(texts) + "\n"
    try:
        parts = _read_before.get(block) or _PARSER.parse(block)
    except LarkError as error:
        problem = lark_problem(error)
        if problem.reason == "the text ends too early":
            index = len(linenos) - 1
        else:
            index = min(max(problem.line - 1, 0), len(linenos) - 1)
        column = problem.column if (problem.column or 0) > 0 else None
        problems.append(Problem(linenos[index], "traceback: " + problem.reason, column))
        # A line cut or mangled in a paste: read what comes before it, which is often
        # most of the traceback.
        try:
            parts = _PARSER.parse("\n".join(texts[:index]) + "\n") if index > 0 else None
        except LarkError:
            parts = None
        if not parts:
            return None, problems
    else:
        if len(_read_before) >= _MAX_BLOCKS_KEPT:
            _read_before.clear()
        _read_before[block] = parts
    last = parts[-1]
    version = None
    for part in parts:
        for frame in part["frames"]:
            found = _PY_VERSION.search(frame["file"])
            if found:
                version = found[1]
                break
        if version:
            break
    fields = {
        "frames": [dict(frame) for frame in last["frames"]],   # each record its own
        "exception_type": last["exception_type"],
        "exception_message": last["exception_message"],
        "causes": [
            {"exception_type": p["exception_type"], "exception_message": p["exception_message"]}
            for p in parts[:-1]
        ],
        "python_version": version,
    }
    return fields, problems


def read_lines(texts: list[str], linenos: list[int]) -> tuple[dict | None, list[Problem]]:
    """Read traceback text carried by log continuation lines.

    Unlike a command's output, everything handed here belongs to the exception: lines
    after the exception line continue its message (an oslo.messaging RemoteError
    carries the remote traceback in its message).  Text with no traceback header is
    taken as a bare exception line.
    """
    first = _next_nonblank(texts, 0)
    if first >= len(texts):
        return None, []
    if texts[first].startswith("  ") and texts[first].strip() != HEADER:
        # An excerpt that starts inside the traceback: read it from its first frame
        # line as if the header were there (source lines of a frame whose "File" line
        # was cut off tell nothing and are skipped).
        while first < len(texts) and texts[first].startswith("  ") and not _FRAME_START.match(texts[first]):
            first += 1
        texts = [HEADER, *texts[first:]]
        linenos = [linenos[min(first, len(linenos) - 1)], *linenos[first:]]
        first = 0
    if texts[first].strip() != HEADER:
        match = re.match(r"([A-Za-z_][\w.]*)(?::\s?(.*))?$", texts[first].strip())
        fields = {"frames": [], "exception_type": None, "exception_message": None,
                  "causes": [], "python_version": None}
        if match:
            fields["exception_type"] = match[1]
            fields["exception_message"] = match[2]
        return fields, []
    end, exception_index = block_extent(texts, first)
    fields, problems = read_block(texts[first:end], linenos[first:end])
    if fields is None:
        return None, problems
    rest = [t.rstrip() for t in texts[end:]]
    while rest and not rest[-1].strip():
        rest.pop()
    if rest and exception_index is not None:
        message = fields["exception_message"] or ""
        fields["exception_message"] = "\n".join([message, *rest]) if message else "\n".join(rest)
    return fields, problems


def looks_like(text: str) -> bool:
    """True when a traceback header is followed by a frame line."""
    if HEADER not in text:     # most texts sniffed are not tracebacks: no line to walk
        return False
    lines = text_lines(text)
    for i, line in enumerate(lines):
        if line.strip() == HEADER:
            following = _next_nonblank(lines, i + 1)
            if following < len(lines) and _FRAME_START.match(lines[following]):
                return True
    return False


def parse(text: str, command: str = "") -> ParseResult:
    """Find every traceback in ``text`` and read it; other text is left alone."""
    result = ParseResult()
    lines = text_lines(text)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != HEADER:
            i += 1
            continue
        # Tracebacks pasted inside other text are often indented as a whole.
        indent = len(line) - len(line.lstrip())
        texts = [t[indent:] if not t[:indent].strip() else t for t in lines[i:]]
        end, exception_index = block_extent(texts, 0)
        linenos = list(range(i + 1, i + end + 1))
        fields, problems = read_block(texts[:end], linenos)
        result.problems.extend(problems)
        if fields is not None:
            if exception_index is None:
                result.problems.append(
                    Problem(i + end, "traceback ends before its exception line (truncated?)")
                )
            result.records.append({"type": "traceback", "line": i + 1, "end_line": i + end, **fields})
        i += max(end, 1)
    return result
