"""Terminal transcripts into facts.

A transcript is what a person saw in a terminal: prompt lines naming the node and the
command, each followed by what the command printed. Text with no prompt at all is
evidence too; its kind is recognised from its content.

Each block of output goes to the parser of its kind (grammar/kinds.py), and every
record that parser returns becomes a *fact*: the record's fields, the node, the file
path the output came from (``path``, only for ``cat``/``tail``/``grep`` of a file) and
``prov``, the provenance that lets a conclusion show its evidence::

    {"type": "route", "destination": "0.0.0.0/0", "via": "10.20.0.1", "dev": "ens3", ...,
     "node": "net01",
     "prov": {"node": "net01", "command": "ip route", "source": "lab.txt",
              "line": 12, "text": "default via 10.20.0.1 dev ens3"}}

Commands that change a node (``sed -i`` on a config, ``service X restart``,
``iptables -A`` ...) become ``state_change`` facts, so the knowledge base can tell
which earlier evidence they made stale. What cannot be read becomes an ``unparsed``
entry naming the block and the reason; the rest is still read.
"""
from __future__ import annotations

import functools
import re
from bisect import bisect_left
from sys import intern
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grammar import commands, kinds
from grammar.base import LazyLark, lark_cache
from grammar.compact import can_share, record_maker, values_maker
from grammar.base import Problem
from grammar.redact import redact
from grammar.lark_runtime import LarkError, Transformer
from grammar.values import checker as values_checker, invalid_value

_PROMPT_GRAMMAR = LazyLark(Path(__file__).with_name("prompt.lark").read_text(),
                           parser="lalr", lexer="contextual", cache=lark_cache("prompt"))
# Cheap test before the grammar is asked: prompts hold "user@host" and "#"/"$", or
# start with "$ ". Keeps a 20,000-line listing from costing 20,000 parses.
_PROMPT_CANDIDATE = re.compile(r"^[ \t]*(?:\(\S+\))?(?:\[?[A-Za-z_][\w.-]*@[A-Za-z0-9][\w.-]*[: ][^\n#$]{0,200}?[#$](?:[ \t]|$)|\$(?:[ \t]|$))")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
MAX_PROBLEMS_PER_BLOCK = 5
# What the collectors write where a node, or some of its commands, could not be
# collected (collectors/collect.py: <node>/unreachable.txt, <node>/collect-problems.txt),
# one line per problem: "stackdoc collect: <host>: <the collector's reason>".
_COLLECT_NOTE = re.compile(r"^stackdoc collect: (?P<host>\S(?:.*?\S)?): (?P<reason>\S.*)$")
# The facts the reader itself makes (each parser declares its own; kb/schema.py
# collects them all). kb/timeline.py uses these and sets them aside before rules run.
FACT_TYPES = {
    "state_change": {
        "doc": "a command that changed NODE, so earlier evidence about its target may be stale",
        "fields": {
            "change": "config, service, iptables, routes, addresses, sysctl or packages",
            "target": "what it changed: a file path, a service, a table, a key, or empty",
        },
    },
}


class _PromptFields(Transformer):
    def start(self, children):
        fields = {"host": None, "user": None, "command": ""}
        for child in children:
            if isinstance(child, dict):
                fields.update(child)
            elif getattr(child, "type", None) == "COMMAND":
                fields["command"] = str(child).strip()
        return fields

    def virtualenv(self, children):
        return {"virtualenv": str(children[0])}

    def debian_prompt(self, children):
        return {"user": str(children[0]), "host": str(children[1])}

    def rhel_prompt(self, children):
        return {"user": str(children[0]), "host": str(children[1])}

    def bare_prompt(self, children):
        return {}


_PROMPT_FIELDS = _PromptFields()


# A prompt up to the command: what comes back on every command a node was given. Only
# a head that lark's own parse split there is trusted (``_PROMPT_HEADS``).
_PROMPT_HEAD = re.compile(r"(?:\(\S+\))?(?:\[?[A-Za-z_][\w.-]*@[A-Za-z0-9][\w.-]*[: ][^\n#$]{0,200}?[#$]|\$)[ \t]*")
# head -> the fields lark gave for it (without the command); bounded like a shape cache
_PROMPT_HEADS: dict[str, dict] = {}
_MAX_PROMPT_HEADS = 4096


def parse_prompt(line: str) -> dict | None:
    """``{"host": ..., "user": ..., "command": ...}`` for a prompt line, else None.

    A transcript gives one node many commands: the prompt before them is parsed by lark
    once. Its head (up to the sigil and the blanks after it) is kept with lark's fields
    when lark's COMMAND starts right after it; a later line with the same head is that
    head and its command (no terminal of the prompt's grammar can reach past the sigil,
    so the command after it cannot change how the head lexes)."""
    if not _PROMPT_CANDIDATE.match(line):
        return None
    text = line.strip()
    head = _PROMPT_HEAD.match(text)
    if head is not None:
        known = _PROMPT_HEADS.get(head.group())
        if known is not None:
            return dict(known, command=text[head.end():].strip())
    try:
        tree = _PROMPT_GRAMMAR.parse(text)
    except LarkError:
        return None
    fields = _PROMPT_FIELDS.transform(tree)
    if head is not None and _command_start(tree, len(text)) == head.end():
        if len(_PROMPT_HEADS) >= _MAX_PROMPT_HEADS:
            _PROMPT_HEADS.clear()
        _PROMPT_HEADS[head.group()] = {key: value for key, value in fields.items() if key != "command"}
    return fields


def _command_start(tree, end: int) -> int:
    """Where lark's COMMAND token starts (``end`` when the line has no command)."""
    for child in tree.children:
        if getattr(child, "type", None) == "COMMAND":
            return child.start_pos
    return end


@dataclass
class Block:
    """One command and what it printed, or a run of text with no command."""

    source: str
    node: str | None
    command: str | None
    prompt_line: int | None
    first_line: int
    lines: list[str]
    # For text with no command, or a part of a command's output that is another kind
    # (a traceback after a table): its kind, once judged from its content (None: unknown).
    kind: str | None = None
    judged: bool = False


@dataclass
class Evidence:
    """The facts read from some text, and what of it could not be read."""
    facts: list[dict] = field(default_factory=list)
    unparsed: list[dict] = field(default_factory=list)
    parsed_count: int = 0
    # sources in the order they were written, where that is known (a chat's messages):
    # a change in one makes the evidence of the earlier ones stale (kb/timeline.py)
    source_order: list[str] = field(default_factory=list)

    def extend(self, other: "Evidence") -> None:
        self.facts.extend(other.facts)
        self.unparsed.extend(other.unparsed)
        self.parsed_count += other.parsed_count


def clean(text: str) -> str:
    """Terminal text as a person read it: no colour codes, no carriage returns."""
    text = _ANSI.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_blocks(text: str, source: str, default_node: str | None = None) -> list[Block]:
    """The text's blocks, its secrets already masked (grammar/redact.py)."""
    return _blocks(clean(text), source, default_node)


def _blocks(cleaned: str, source: str, default_node: str | None) -> list[Block]:
    """split_blocks of a text already cleaned."""
    text = redact(cleaned)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    prompts = _prompts(text, lines)
    starts = sorted(prompts)      # the prompt lines' indexes
    blocks: list[Block] = []
    i = starts[0] if starts else len(lines)
    if i:                         # text before the first prompt, or with none
        blocks.extend(_text_blocks(lines[:i], 1, source, default_node))
    while i < len(lines):
        prompt = prompts[i]
        prompt_line = i + 1
        indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        command = prompt["command"]
        i += 1
        # A command continued with a trailing backslash goes on over the next lines.
        while command.endswith("\\") and i < len(lines):
            command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        output_start = i
        following = bisect_left(starts, i)
        i = starts[following] if following < len(starts) else len(lines)
        output = [line[len(indent):] if line.startswith(indent) else line
                  for line in lines[output_start:i]] if indent else lines[output_start:i]
        blocks.append(Block(source, prompt["host"] or default_node, commands.strip_wrappers(command),
                            prompt_line, output_start + 1, output))
    return blocks


def _prompts(text: str, lines: list[str]) -> dict[int, dict]:
    """The prompt lines among ``text``'s ``lines``, by index: a prompt holds "$", or "@"
    and "#" (_PROMPT_CANDIDATE), and only lines holding them are asked (found in the
    whole text at once: a long output has none or few)."""
    candidates = set(_lines_holding(text, "$"))
    candidates.update(index for index in _lines_holding(text, "#") if "@" in lines[index])
    found = {}
    for index in candidates:
        prompt = parse_prompt(lines[index])
        if prompt is not None:
            found[index] = prompt
    return found


def _lines_holding(text: str, mark: str) -> list[int]:
    """The indexes of the lines of ``text`` (split at "\\n") holding ``mark``."""
    found = []
    line, start = 0, 0
    at = text.find(mark)
    while at >= 0:
        line += text.count("\n", start, at)
        found.append(line)
        end = text.find("\n", at)
        if end < 0:
            break
        line, start = line + 1, end + 1
        at = text.find(mark, start)
    return found


def _text_blocks(lines: list[str], start: int, source: str, node: str | None) -> list[Block]:
    """Text with no prompt, cut into paragraphs of one kind each.

    Paragraphs (runs between blank lines) that are recognised as the same kind are
    read together: an iptables listing has a blank line between chains.
    """
    paragraphs: list[tuple[int, list[str]]] = []
    current: list[str] = []
    current_start = start
    for offset, line in enumerate(lines):
        if line.strip():
            if not current:
                current_start = start + offset
            current.append(line)
        elif current:
            paragraphs.append((current_start, current))
            current = []
    if current:
        paragraphs.append((current_start, current))

    blocks: list[Block] = []
    previous_kind = None
    for first, paragraph in paragraphs:
        body = _dedent(paragraph)
        kind = kinds.kind_for_text("\n".join(body))
        if blocks and kind is not None and kind == previous_kind:
            last = blocks[-1]
            gap = first - (last.first_line + len(last.lines))
            last.lines.extend([""] * gap + body)
            continue
        blocks.append(Block(source, node, None, None, first, body, kind=kind, judged=True))
        previous_kind = kind
    return blocks


def _dedent(lines: list[str]) -> list[str]:
    widths = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(widths) if widths else 0
    return [line[cut:] for line in lines]


def read_block(block: Block) -> Evidence:
    """The facts of one block; whatever goes wrong in it is that block's ``unparsed``
    entry, and the other blocks are still read."""
    try:
        return _read_block(block)
    except Exception as error:  # a bug of ours in one block must not hide the rest
        evidence = Evidence()
        evidence.unparsed.append(_unparsed(
            block, block.prompt_line or block.first_line,
            f"this block could not be read ({type(error).__name__}: {error})"))
        return evidence


def _read_block(block: Block) -> Evidence:
    evidence = Evidence()
    lines = block.lines
    path = None
    if block.command and block.judged:
        _, path, _ = _command_reading(block.command)
        kind = block.kind          # its command's changes were taken with the first part
    elif block.command:
        kind, path, changes = _command_reading(block.command)
        for change in changes:
            evidence.facts.append(dict(change, type="state_change", node=block.node,
                                       prov=_prov(block, block.prompt_line, _prompt_text(block))))
        if kind is None and _holds_text(lines):
            kind = kinds.kind_for_text("\n".join(lines))
    else:
        kind = block.kind if block.judged else kinds.kind_for_text("\n".join(lines))

    if not _holds_text(lines) and not (kind and getattr(kinds.parsers()[kind], "READS_EMPTY_OUTPUT", False)):
        return evidence
    if kind is None and block.command:
        # Output stackdoc does not read may still hold text it does (a log pasted after
        # `nova boot`): read its paragraphs as text with no command.
        unread_at = None
        for part in _text_blocks(block.lines, block.first_line, block.source, block.node):
            if part.kind is None:
                unread_at = unread_at or part.first_line
            else:
                evidence.extend(_read_block(part))
        if unread_at is not None:
            evidence.unparsed.append(_unparsed(block, unread_at, _unknown_reason(block, path)))
        return evidence
    if kind is None:
        evidence.unparsed.append(_unparsed(block, block.first_line, _unknown_reason(block, path)))
        return evidence

    parser = kinds.parsers()[kind]
    each_record = getattr(parser, "each_record", None)
    try:
        if each_record is None:
            result = parser.parse("\n".join(lines), block.command or "")
            records, parse_problems = result.records, result.problems
        else:
            # Each record is made a fact before the parser reads the next line (see
            # grammar/base.py): its records are never all held at once.
            parse_problems = []
            facts, value_problems = _facts_of(
                block, path, each_record(lines, block.command or "", parse_problems),
                getattr(parser, "RECORD_FIELDS", None))
    except Exception as error:  # a parser bug must not hide the rest of the evidence
        evidence.unparsed.append(_unparsed(
            block, block.first_line, f"the {kind} reader failed: {type(error).__name__}: {error}"))
        return evidence
    if each_record is None:
        facts, value_problems = _facts_of(block, path, records, getattr(parser, "RECORD_FIELDS", None))

    if parse_problems:
        split = _split_where_another_kind_starts(block, kind, parse_problems)
        if split:
            for part in split:
                evidence.extend(_read_block(part))
            return evidence

    evidence.facts.extend(facts)
    evidence.parsed_count += len(facts)
    problems = parse_problems + value_problems
    problems.sort(key=lambda problem: problem.line)
    for problem in problems[:MAX_PROBLEMS_PER_BLOCK]:
        reason = f"{kind.replace('_', ' ')}: {problem.reason}"
        if problem.column:
            reason += f" (column {problem.column})"
        evidence.unparsed.append(_unparsed(block, block.first_line + problem.line - 1, reason))
    if len(problems) > MAX_PROBLEMS_PER_BLOCK:
        evidence.unparsed.append(_unparsed(
            block, block.first_line + problems[MAX_PROBLEMS_PER_BLOCK].line - 1,
            f"{kind.replace('_', ' ')}: {len(problems) - MAX_PROBLEMS_PER_BLOCK} more lines "
            "could not be read"))
    return evidence


def _holds_text(lines: list[str]) -> bool:
    """Whether any line is not blank (what ``"\\n".join(lines).strip()`` tells, without
    the copy)."""
    return any(not line.isspace() for line in lines if line)


def _facts_of(block: Block, path: str | None, records,
              layouts: dict[str, tuple] | None = None) -> tuple[list[dict], list[Problem]]:
    """The facts of a block's records, and a problem for each record holding a value
    no kernel would print (grammar/values.py). ``layouts``: the parser's RECORD_FIELDS
    (grammar/base.py)."""
    facts: list[dict] = []
    problems: list[Problem] = []
    # This loop runs once per record (20,000 times for a large nat table): what does
    # not change from record to record is looked up once, before it.
    lines, node, source = block.lines, block.node, block.source
    command = intern(block.command) if block.command else block.command   # every node's
    last_index = max(len(lines) - 1, 0)
    first_line = block.first_line
    line_numbers = _line_numbers()
    again = _ran_before(node, command, (source, block.prompt_line))
    # What checks a record and makes its fact: by its type where the parser says the
    # type fixes its fields (a lookup instead of reading the names of each), else by
    # its names (one kind's records come in thousands).
    by_type: dict[str, tuple] = {}
    by_names: dict[tuple, Callable] = {}
    for record in records:
        known = by_type.get(record["type"]) if layouts else None
        if known is None:
            check, make = invalid_value, None
            names = tuple(record)
        else:
            check, make = known
        bad_value = check(record)
        if bad_value:
            problems.append(Problem(line=record.get("line", 1) or 1, reason=bad_value))
            continue
        relative = record.get("line", 1) or 1
        line_index = relative - 1 if 0 < relative <= last_index + 1 else (0 if relative < 1 else last_index)
        number = first_line + line_index
        prov = _provenance(node, command, source, line_numbers.setdefault(number, number),
                           intern(lines[line_index].strip()) if lines else "")
        if make is None:
            make = by_names.get(names)
            if make is None:
                make, lasting = _fact_maker(names, path, again)
                if lasting:
                    by_names[names] = make
                    if layouts and layouts.get(record["type"]) == names:
                        by_type[record["type"]] = (values_checker(names), make)
        facts.append(make(record, node, prov))
    return facts, problems


def _fact_maker(names: tuple, path: str | None, again: bool) -> tuple[Callable, bool]:
    """``make(record, node, prov)``, the fact of a record of these field names read from
    ``path``, and whether it is the one to use for the block's later records of these
    names (see compact.record_maker)."""
    if "file" in names:      # the record names its file: decided record by record
        return functools.partial(_fact_of_file_record, path, again), True
    return _maker_for(names, path, again)


def _maker_for(names: tuple, read_from: str | None, again: bool) -> tuple[Callable, bool]:
    place = len(_PLACE_IN_BLOCK.intersection(names))
    if not can_share(len(names) - place + (2 if read_from is None else 3)):
        return functools.partial(_handed_over, read_from), True
    # A new dict of the fields a fact keeps, in less memory (grammar/compact.py):
    # the record, its place in the block taken out, would keep a slot for each field
    # taken out and grow again for the fields added here and the fact's number.
    if read_from is None:    # most output is no file's: no field to say so
        return record_maker(names, _PLACE_IN_BLOCK, _WITHOUT_PATH, again)
    make, compiled = record_maker(names, _PLACE_IN_BLOCK, _WITH_PATH, again)
    return functools.partial(_fact_with_path, make, read_from), compiled


def _fact_with_path(make: Callable, read_from: str, record: dict, node, prov: dict) -> dict:
    return make(record, node, read_from, prov)


def _fact_of_file_record(path: str | None, again: bool, record: dict, node, prov: dict) -> dict:
    make, _ = _maker_for(tuple(record), record.get("file") or path, again)
    return make(record, node, prov)


def _handed_over(read_from: str | None, record: dict, node, prov: dict) -> dict:
    """The record as the fact, its place in the block taken out: as large a dict
    whatever is done (a record of too many fields to share), it is not copied."""
    fact = record
    fact.pop("line", None), fact.pop("end_line", None), fact.pop("file", None)
    fact["node"] = node
    if read_from is not None:
        fact["path"] = read_from
    fact["prov"] = prov
    return fact


# A fact's provenance, key-sharing (grammar/compact.py): one per fact.
_provenance = values_maker(("node", "command", "source", "line", "text"))
# What a parser's record says of where it sits in its block; the fact says it in ``prov``.
_PLACE_IN_BLOCK = frozenset({"line", "end_line", "file"})
# the fields a fact is given after its record's
_WITHOUT_PATH, _WITH_PATH = ("node", "prov"), ("node", "path", "prov")
# One int object per line number, shared by the provenance of every file's line of that
# number (Python makes a new one, 32 bytes, for each number above 256); bounded.
_LINE_NUMBERS: dict[int, int] = {}
_MAX_LINE_NUMBERS = 1 << 16


# (node, command) of the outputs read: a command run again (a listing after a change, a
# transcript pasted twice) prints much of what it printed before, and its facts' texts
# are interned to be held once with the earlier ones'; bounded.
_COMMANDS_READ: dict[tuple, tuple] = {}


def _ran_before(node: str | None, command: str | None, run: tuple) -> bool:
    """Whether ``command`` was read on ``node`` from another run than ``run`` (its
    source and prompt line: the parts of one long output are one run)."""
    key = (node, command)
    first = _COMMANDS_READ.get(key)
    if first is not None:
        return first != run
    if len(_COMMANDS_READ) >= _MAX_LINE_NUMBERS:
        _COMMANDS_READ.clear()
    _COMMANDS_READ[key] = run
    return False


def _line_numbers() -> dict[int, int]:
    if len(_LINE_NUMBERS) > _MAX_LINE_NUMBERS:
        _LINE_NUMBERS.clear()
    return _LINE_NUMBERS


@functools.lru_cache(maxsize=1024)
def _command_reading(command: str) -> tuple[str | None, str | None, tuple[dict, ...]]:
    """(kind, path read, state changes) of a command line, each judged once: a lab's
    commands come back on every node and in every capture (the changes are only read)."""
    kind, path = kinds.kind_for_command(command)
    return kind, path, tuple(commands.state_changes(command))


# What a command may print instead of (or after) its usual output: it crashed, or its
# client failed. Any other kind inside a command's output is more likely a misreading.
_INSTEAD_OF_OUTPUT = frozenset({"traceback", "cli_error"})


def _split_where_another_kind_starts(block: Block, kind: str, problems) -> list[Block] | None:
    """Text with no prompt may run one command's output into the next with no blank
    line between (a capture, then a routing table), and a command may print something
    else than its usual output (a traceback where `nova list` prints a table). Where a
    run of lines this kind cannot read is recognisably another kind, cut there: the
    lines before, the run, and the lines after are read on their own, a command's parts
    still under its command."""
    unreadable = {p.line for p in problems}
    lines = block.lines
    for problem in problems:
        start = problem.line
        end = start
        while True:   # a run goes on across blank lines (a chained traceback's parts)
            following = end + 1
            while following <= len(lines) and not lines[following - 1].strip():
                following += 1
            if following not in unreadable:
                break
            end = following
        whole = start == 1 and end >= len(lines)
        if whole and block.command is None:
            return None  # nothing of this kind was read: no smaller part to try
        run = block.lines[start - 1:end]
        run_kind = kinds.kind_for_text("\n".join(run))
        if run_kind is None or run_kind == kind:
            continue
        if block.command is not None and run_kind not in _INSTEAD_OF_OUTPUT:
            continue   # a command's unreadable lines are its own, unless it crashed or failed
        parts = [(0, start - 1, kind), (start - 1, end, run_kind), (end, len(block.lines), kind)]
        if block.command is None:
            return [Block(block.source, block.node, None, None, block.first_line + a, block.lines[a:b])
                    for a, b, _ in parts if any(line.strip() for line in block.lines[a:b])]
        return [Block(block.source, block.node, block.command, block.prompt_line, block.first_line + a,
                      block.lines[a:b], kind=part_kind, judged=True)
                for a, b, part_kind in parts if any(line.strip() for line in block.lines[a:b])]
    return None


def _prompt_text(block: Block) -> str:
    return f"{block.command}"


def _prov(block: Block, line: int | None, text: str) -> dict:
    return {"node": block.node, "command": block.command, "source": block.source,
            "line": line, "text": text}


def _unparsed(block: Block, line: int, reason: str) -> dict:
    return {"node": block.node, "command": block.command, "source": block.source,
            "line": line, "reason": reason}


def _unknown_reason(block: Block, path: str | None) -> str:
    if path:
        return f"stackdoc does not know what kind of file {path} is"
    if block.command:
        program = block.command.split()[0] if block.command.split() else block.command
        return f"stackdoc does not read the output of {program!r}"
    return "not recognised as the output of any command stackdoc reads"


def read_transcript(text: str, source: str, node: str | None = None) -> Evidence:
    """Every fact in one transcript; ``node`` names the node where no prompt does."""
    evidence = Evidence()
    if "\x00" in text:
        evidence.unparsed.append({"node": node, "command": None, "source": source, "line": 1,
                                  "reason": "binary data, not terminal text"})
        return evidence
    if not text or text.isspace():
        evidence.unparsed.append({"node": node, "command": None, "source": source, "line": 1,
                                  "reason": "empty: there is nothing to read"})
        return evidence
    cleaned = clean(text)
    notes = _collect_notes(cleaned, source)
    if notes is not None:
        evidence.unparsed.extend(notes)
        return evidence
    for block in _blocks(cleaned, source, node):
        evidence.extend(read_block(block))
    return evidence


def _collect_notes(cleaned: str, source: str) -> list[dict] | None:
    """A collector's note on what it could not collect, as unparsed entries with its own
    reasons and the host each names; None when the (cleaned) text is not such a note.
    Most text is not: its first line that is not blank already tells, and the rest of
    a long output is not looked at."""
    notes = []
    start, number = 0, 1
    while start <= len(cleaned):
        end = cleaned.find("\n", start)
        if end < 0:
            end = len(cleaned)
        line = cleaned[start:end]
        if line and not line.isspace():
            match = _COLLECT_NOTE.match(line)
            if match is None:
                return None
            notes.append({"node": match["host"], "command": None, "source": source, "line": number,
                          "reason": f"collector: {match['reason']}"})
        start, number = end + 1, number + 1
    return notes or None
