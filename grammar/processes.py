"""Which processes run: ``ps aux``, ``ps -ef``, ``ps ax``, ``ps -e`` (alone or piped
through ``grep``), ``pgrep -l`` / ``pgrep -a`` / ``pgrep -fl``.

Forms read (procps 3.3 of 2014 to procps-ng 4.0)::

    USER   PID %CPU %MEM    VSZ   RSS TTY  STAT START   TIME COMMAND
    nova  2156  1.2  2.1 431824 86652 ?    Ssl  09:12   0:31 /usr/bin/python /usr/bin/nova-compute --config-file=/etc/nova/nova.conf
    UID    PID  PPID  C STIME TTY          TIME CMD
    nova  2156     1  1 09:12 ?        00:00:31 /usr/bin/python /usr/bin/nova-compute --config-file=/etc/nova/nova.conf
    2156 nova-compute                                  (pgrep -l)
    2156 /usr/bin/python /usr/bin/nova-compute ...     (pgrep -a)

``ps aux`` on a terminal cuts its lines at the terminal's width (``ps auxww`` does not):
a line cut before the script's name names the interpreter only.

The form comes from the command (``ps aux``, ``ps -ef`` ...), else from ps's header,
else from the line's shape. Records::

    {"type": "process", "line": int, "pid": int, "user": str | None, "program": str,
     "command": str}
    {"type": "process_search", "line": int, "tool": "pgrep" | "ps", "pattern": str,
     "found": int, "service": str | None}

``program`` is the name the process goes by: for a script run by its interpreter
(``/usr/bin/python /usr/bin/nova-compute ...``) the script's name, else the program's
(``/usr/sbin/mysqld`` is mysqld, ``[kthreadd]`` is kthreadd); pgrep -l prints it itself
(cut to 15 characters by the kernel, as ``nova-consoleaut``). A search (``pgrep P``, or
``ps ... | grep P``) also gives ``process_search``: the pattern and how many processes
matched it. The grep's own process (``grep nova-network``, which ps lists while the pipe
runs) is the search, not a match: it is neither counted nor a ``process``. So ``ps aux |
grep nova-network`` printing only grep's own line says that no nova-network runs.

Worked example, ``pgrep -l nova-network`` printing nothing gives ``{"type":
"process_search", "tool": "pgrep", "pattern": "nova-network", "found": 0, "service":
"nova-network"}``.
"""
from __future__ import annotations

import re
from pathlib import Path

from grammar.lark_runtime import LarkError

from grammar import commands
from grammar.base import LazyLark, ParseResult, Problem, head_lines, lark_cache, line_problem, text_lines

KIND = "processes"
FACT_TYPES = {
    "process": {
        "doc": "a process running on NODE (ps aux, ps -ef, pgrep -l/-a)",
        "fields": {
            "pid": "its process id",
            "user": "the user it runs as, or empty (pgrep)",
            "program": "the name it goes by: a script's name when an interpreter runs it "
                       "(/usr/bin/python /usr/bin/nova-compute is nova-compute), else the program's",
            "command": "its command line as printed (pgrep -l: its name)",
        },
    },
    "process_search": {
        "doc": "a search for processes on NODE (pgrep PATTERN, ps ... | grep PATTERN) and how many it found",
        "fields": {
            "tool": "pgrep or ps",
            "pattern": "what was searched for",
            "found": "how many processes matched (the grep itself not counted)",
            "service": "the service the pattern names, by the one name service_state uses "
                       "(openstack-nova-compute is nova-compute, beam or rabbit is rabbitmq-server, "
                       "mysqld and mariadbd are mysql), or empty",
        },
    },
}

COMMANDS = re.compile(r"^\s*(?:ps(?:\s|$)|pgrep\s)")
FILES = None
# pgrep prints nothing when nothing matches: that is the answer.
READS_EMPTY_OUTPUT = True

_LOOKS = re.compile(r"^\s*(?:USER\s+PID\s+%CPU\s+%MEM|UID\s+PID\s+PPID\s+C\s+STIME|PID\s+TTY\s+(?:STAT\s+)?TIME\s+(?:CMD|COMMAND))")
_HEADER_FORM = (("aux_row", re.compile(r"^USER\s+PID\s+%CPU")), ("ef_row", re.compile(r"^UID\s+PID\s+PPID")),
                ("ax_row", re.compile(r"^PID\s+TTY\s+STAT\s+TIME")), ("e_row", re.compile(r"^PID\s+TTY\s+TIME")))
_INTERPRETER = re.compile(r"^(?:python[0-9.]*|perl[0-9.]*|ruby[0-9.]*)$")
# a search pattern, and the service it names (as kb's service_state names services)
_SERVICE_OF_PATTERN = ((re.compile(r"(?:openstack-)?(keystone)(?:-all)?"), 1),
                       (re.compile(r"(?:openstack-)?((?:nova|glance|cinder|neutron)-[a-z-]*[a-z])"), 1),
                       (re.compile(r"(?:rabbit|beam)[\w.-]*"), "rabbitmq-server"),
                       (re.compile(r"mysqld?|mariadbd?"), "mysql"))
_STARTS = ["aux_row", "ef_row", "ax_row", "e_row", "pgrep_row", "header"]

_PARSER = LazyLark((Path(__file__).parent / "processes.lark").read_text(), parser="lalr",
                   cache=lark_cache(__file__), lexer="contextual", start=_STARTS)


def program_of(command: str) -> str:
    """The name a process goes by, from its command line."""
    words = command.split()
    if not words:
        return ""
    first = words[0]
    if first.startswith("[") and first.endswith("]"):
        return first[1:-1]
    name = first.rsplit("/", 1)[-1].lstrip("-").rstrip(":")
    if _INTERPRETER.match(name):
        for position, word in enumerate(words[1:], start=1):
            if word == "-c":      # code on the command line: the interpreter is all there is
                return name
            if word == "-m" and position + 1 < len(words):
                return words[position + 1]
            if not word.startswith("-"):
                return word.rsplit("/", 1)[-1]
    return name


def service_of(pattern: str) -> str | None:
    """The service a search pattern names: nova-compute, rabbitmq-server, mysql ...
    (``[n]ova-compute``, the trick that keeps grep from finding itself, is nova-compute)."""
    pattern = re.sub(r"\[(\w)\]", r"\1", pattern.strip("'\""))
    for expression, name in _SERVICE_OF_PATTERN:
        found = expression.fullmatch(pattern)
        if found:
            return found[name] if isinstance(name, int) else name
    return None


def _form_of_command(stage: str) -> str | None:
    """Which columns ps prints for these options: BSD ``aux`` / ``ax``, UNIX ``-ef`` / ``-e``
    (``-aux`` is read as ``aux`` by procps), ``custom`` for ``-o``/``o``."""
    words = commands.words(stage)
    if not words:
        return None
    if words[0] == "pgrep":
        return "pgrep_row"
    unix = "".join(w[1:] for w in words[1:] if w.startswith("-") and not w.startswith("--"))
    bsd = words[1] if len(words) > 1 and words[1].isalpha() else ""
    letters = unix + bsd
    if "o" in letters:
        return "custom"
    if "u" in bsd or ("u" in unix and "x" in unix):
        return "aux_row"
    if "f" in unix and ("e" in unix or "A" in unix):
        return "ef_row"
    if "x" in bsd:
        return "ax_row"
    if "e" in unix or "A" in unix:
        return "e_row"
    return None


def _form_of_shape(line: str) -> str | None:
    fields = line.split()
    if len(fields) >= 11 and fields[1].isdigit() and re.fullmatch(r"\d+[.,]\d+", fields[2]):
        return "aux_row"
    if len(fields) >= 8 and fields[1].isdigit() and fields[2].isdigit():
        return "ef_row"
    return None


def _search(command: str) -> tuple[str, str] | None:
    """(tool, pattern) of a search: pgrep's pattern, or the first grep after ps."""
    stages = commands.pipeline(command)
    if not stages:
        return None
    first = commands.words(stages[0])
    if first and first[0] == "pgrep":
        rest = [w for w in first[1:] if not w.startswith("-")]
        return ("pgrep", rest[-1]) if rest else None
    for stage in stages[1:]:
        words = commands.words(stage)
        if words and words[0] in commands.GREPS:
            options = [w for w in words[1:] if w.startswith("-")]
            if any("v" in o for o in options if not o.startswith("--")):
                continue
            rest = [w for w in words[1:] if not w.startswith("-")]
            if rest:
                return "ps", rest[0]
    return None


def looks_like(text: str) -> bool:
    lines = [l for l in head_lines(text, 5) if l.strip()]
    return bool(lines) and bool(_LOOKS.match(lines[0]))


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    stages = commands.pipeline(command) if command.strip() else []
    form = _form_of_command(stages[0]) if stages else None
    if form == "custom":
        result.problems.append(Problem(1, "ps -o chooses its own columns: stackdoc reads ps aux, ps -ef, "
                                          "ps ax, ps -e and pgrep -l/-a"))
        return result
    search = _search(command) if command.strip() else None
    found, first_line = 0, None
    for lineno, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line:
            continue
        header = next((f for f, pattern in _HEADER_FORM if pattern.match(line)), None)
        if header:
            form = header if form != "pgrep_row" else form
            continue
        start = form or _form_of_shape(line)
        if start is None:
            result.problems.append(Problem(lineno, "a process line whose form is not known: "
                                                   "give the ps command that printed it"))
            continue
        try:
            tree = _PARSER.parse(line, start=start)
        except LarkError as error:
            result.problems.append(line_problem(lineno, error, f"a {start.replace('_row', '')} process"))
            continue
        tokens = tree.children
        pid = int(tokens[1] if start in ("aux_row", "ef_row") else tokens[0])
        user = str(tokens[0]) if start in ("aux_row", "ef_row") else None
        process_command = str(tokens[-1]).strip()
        if search and search[0] == "ps" and _is_the_search(process_command, search[1]):
            continue
        first_line = first_line or lineno
        found += 1
        result.records.append({"type": "process", "line": lineno, "pid": pid, "user": user,
                               "program": program_of(process_command), "command": process_command})
    if search:
        result.records.append({"type": "process_search", "line": first_line or 1, "tool": search[0],
                               "pattern": search[1], "found": found, "service": service_of(search[1])})
    return result


def _is_the_search(process_command: str, pattern: str) -> bool:
    words = process_command.split()
    return bool(words) and words[0].rsplit("/", 1)[-1] in commands.GREPS and pattern in words[1:]
