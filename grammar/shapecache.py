"""A shape cache: parse each *kind* of line once with lark, fill the rest from a template.

Machine output such as ``iptables -L`` or ``iptables-save`` repeats a handful of line
layouts thousands of times; only addresses and numbers change. Parsing every line with
lark costs ~60 µs; filling a template costs ~2 µs. This module is generic: any
line-oriented parser whose transformer reports where each output value came from can use
it.

Shape
    A line's *shape* is the line with every slot replaced by one placeholder, plus the
    kind of each slot (IPv4 address/CIDR, standalone integer, and, when asked, scaled
    counter such as ``15K``), with whitespace runs collapsed. A slot must stand alone:
    digits inside a word (``eth1``, ``0x1``, ``1024-65535``, ``nova-compute-inst-3``),
    in a list (``22,80``) and MAC octets are not slots::

        "    0     0 SNAT  all  --  any  ens4  10.20.4.3  anywhere  to:203.0.113.10"
        -> "# # SNAT all -- any ens4 # anywhere to:#", kinds (int, int, ipv4, ipv4)
           values ["0", "0", "10.20.4.3", "203.0.113.10"]

    Whitespace: a line with no character that can open a whitespace-holding token
    (quotes, ``/*``) has every run collapsed (C-level ``str.split``, the fast path); a
    line with one keeps single spaces and collapses only runs of two or more, so that a
    comment's words stay part of the shape and the line can still be cached.

Provenance
    The transformer builds every value that depends on the text as
    ``Derived(build, *parts)``: ``build`` is a plain function of the parts' texts and each
    part is a lark ``Token`` (with ``start_pos``/``end_pos``) or a constant string.
    Values that do not depend on the text (``True`` for a ``!`` that is present, a list of
    nothing) may be given directly.

Template
    The first line of a shape is parsed by lark for real and its fields are resolved
    directly. When the shape comes back, a template is compiled from that first parse:
    every token part becomes either "slot i" (its span is exactly a slot's span) or a
    constant (it touches no slot). A shape whose used tokens straddle a slot, hold a slot
    among other text, or hold whitespace whose length the shape does not keep is marked
    uncacheable and always parsed by lark. Later lines of a cached shape are filled by one
    generated function call.

Soundness rules for a transformer that uses this cache (the property tests check them):
  * terminals that can hold a slot accept every IPv4/integer alike (``\\d+``, not
    ``\\d{1,3}``), so lines of one shape lex and parse alike;
  * everything that depends on a token's text happens inside ``Derived.build``; code
    outside may only compare a token with words no slot can spell (``"LOG"``, ``"--dport"``).

Worked example::

    cache = ShapeCache(parse_fields)        # parse_fields(line, start) -> {field: Derived|value}
    cache.fields("    0     0 SNAT ... to:203.0.113.10", "counted_rule")   # lark, parse kept
    cache.fields("    7   420 SNAT ... to:203.0.113.11", "counted_rule")   # template compiled, filled
    cache.fields("    9   540 SNAT ... to:203.0.113.12", "counted_rule")   # template filled
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

# Lines holding these characters bypass the cache, so "\x01".join(...) below can never
# make two different lines look alike.
_SLOT_MARK = "\x01"
_SPACE_RUN_MARK = "\x02"

# The slot pattern starts with the first digit and looks behind it: a leading look-behind
# would be tried at every character of the line and costs far more.
_BEFORE_SLOT = (
    r"(?<![\w.,/-]\d)"              # not inside a word, a dotted number, a list or a range
    r"(?<!:[0-9A-Fa-f]{2}:\d)"      # not the middle or end of a MAC address
)
_AFTER_SLOT = r"(?![\w.,/-])(?!:[0-9A-Fa-f]{2}:)"

# The body of each kind of slot after its first digit, by the kind's name in a shape.
_SLOT_BODIES = {
    "...": r"\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?",   # an IPv4 address, its prefix
    "K": r"\d*[KMGT]",                                               # a scaled counter
    "": r"\d*",                                                      # an integer
}
_DIGIT = re.compile(r"\d")
# A digit right after one of these never starts a slot (_BEFORE_SLOT).
_NEVER_BEFORE_SLOT = re.compile(r"[\w.,/-]")
_SLOT_DIGIT_OR_SPACE = re.compile(r"[\d\s]")
_SPACE_RUN = re.compile(r"  +")
# A slot's text less its digits (and an address's prefix length): what kind of slot it
# is, "..." (IPv4), "K" (scaled counter: K, M, G or T) or "" (integer).
_SLOT_KIND = str.maketrans({**{digit: None for digit in "0123456789/"}, "M": "K", "G": "K", "T": "K"})


class SlotScanner:
    """Finds the slots of a line and computes its shape.

    ``whitespace_tokens_start_with``: the characters that can open a token holding
    whitespace (quotes, comments). A line without them is shaped with every whitespace
    run collapsed (fast, C-level ``str.split``); a line with them keeps single spaces
    and collapses only runs of two or more, so that such tokens can still be cached.
    Either way a template whose tokens hold whitespace the shape does not pin down is
    refused, so this setting only affects speed, never the records. Whitespace here is
    ``str.isspace`` (what ``str.split()`` splits on): a grammar using this cache must
    ignore exactly that (``%ignore /\\s+/``).
    """

    def __init__(self, scaled_counters: bool = False,
                 whitespace_tokens_start_with: tuple[str, ...] = ('"', "'", "`", "/*")):
        # One split() gives the text between slots and the slots: an IPv4 address (with
        # its prefix), a scaled counter (when asked), or an integer. Which of the three
        # a slot is shows in its own text (_SLOT_KIND).
        scaled = "|" + _SLOT_BODIES["K"] if scaled_counters else ""
        self.pattern = re.compile(
            r"(\d" + _BEFORE_SLOT + "(?:" + _SLOT_BODIES["..."] + scaled + "|" + _SLOT_BODIES[""]
            + ")" + _AFTER_SLOT + ")")
        self.scaled_counters = scaled_counters
        self.openers = whitespace_tokens_start_with
        # "a in line or b in line ..." written out is twice as fast as a loop, and this
        # runs for every line.
        self._holds_opener = _any_in(whitespace_tokens_start_with)
        # A line holding an opener is shaped another way; a shape's pattern (see
        # line_pattern) cannot make one up between its constant text, whitespace and
        # slots, unless the opener could overlap a slot or whitespace: the pattern
        # itself refuses lines holding those.
        spanning = [o for o in whitespace_tokens_start_with if _may_span_a_slot(o)]
        self._refuse_openers = "(?![\\s\\S]*(?:" + "|".join(map(re.escape, spanning)) + "))" if spanning else ""

    def shape(self, line: str) -> tuple[tuple, list[str]] | None:
        """(shape key, slot values), or None when the line cannot use the cache."""
        if _SLOT_MARK in line or _SPACE_RUN_MARK in line:
            return None
        exact_spaces = self._holds_opener(line)
        if exact_spaces:
            text = _SPACE_RUN.sub(_SPACE_RUN_MARK, line)
        else:
            text = " ".join(line.split())
        parts = self.pattern.split(text)
        values = parts[1::2]
        # the kind of each slot: "..." an IPv4 address, "K" a scaled counter, "" an integer
        key = (exact_spaces, _SLOT_MARK.join(parts[::2]),
               _SLOT_MARK.join(values).translate(_SLOT_KIND))
        return key, values

    def spans(self, line: str) -> list[tuple[int, int]]:
        """Where each slot is in the line, in the order of ``shape``'s values."""
        return [match.span() for match in self.pattern.finditer(line)]

    def line_pattern(self, shape: tuple) -> Callable[[str], Any] | None:
        """A regular expression's ``fullmatch`` that matches a line only if the line has
        this shape, its groups being the line's slot values; None where no such
        expression is sure (the caller then computes the shape of each line).

        Why a match proves the shape: the pattern is the shape's constant text word for
        word, a whitespace run wherever the shape has a space (re's ``\\s`` is exactly
        ``str.isspace``), and at each slot the body of that slot's kind. The scanner's
        look-arounds are judged here, once, from the constant text beside the slot:
        past it lie only whitespace, a line's end or another slot, and none of them
        holds a ``:``, so only a MAC address's octet (``:ab:``) spanning a short slot
        is left for the pattern to test. A slot's extent is then fixed by the constant
        text after it (it ends before the first character outside ``[\\w.,/-]``, and
        the three kinds cannot match the same text), so the scanner finds the same slot
        there. It finds none elsewhere only if no digit of the constant text can start
        one: the pattern is refused for a shape where a digit of its constant text
        follows a space or starts the line (one following a word character, ``.``,
        ``,``, ``/``, ``-`` or a slot can never start a slot, whatever the slots around
        it hold). A shape that keeps exact spaces (the line holds a quote or a comment)
        is refused too, and a line holding such an opener never matches: its text
        would be in the constant text, unless the opener can overlap a slot or a
        whitespace run, and the pattern looks for those openers (see __init__).
        """
        exact_spaces, constants, kinds = shape
        if exact_spaces:
            return None
        constants = constants.split(_SLOT_MARK)
        kinds = kinds.split(_SLOT_MARK) if len(constants) > 1 else []
        last = len(constants) - 1
        pieces = [self._refuse_openers, _SPACES]
        for index, constant in enumerate(constants):
            for found in _DIGIT.finditer(constant):
                at = found.start()
                if at == 0 and index == 0:
                    return None
                if at > 0 and not _NEVER_BEFORE_SLOT.match(constant[at - 1]):
                    return None
            pieces.append(_SPACE_RUN_PATTERN.join(re.escape(word) for word in constant.split(" ")))
            if index < len(kinds):
                kind = kinds[index]
                around = _slot_surroundings(constant, index == 0, constants[index + 1], index + 1 == last)
                if kind not in _SLOT_BODIES or (kind == "K" and not self.scaled_counters) or around is None:
                    return None
                body = (r"\d" + _SLOT_BODIES[kind]).replace(r"\d", _DIGIT_PATTERN)
                pieces.append(around[0] + "(" + body + ")" + around[1])
        pieces.append(_SPACES)
        return re.compile("".join(pieces)).fullmatch


# A line pattern's whitespace, ``\s+`` and ``\s*``, written for speed: a space is tried
# before the rest of ``\s``, a run's spaces are read by one fast loop (a listing's
# columns are padded with tens of them), and a run is taken whole, never given back
# (possessive), since only a word, a slot or the line's end follows one, none of them
# whitespace. The same lines match.
_SPACE_RUN_PATTERN = r"[ \s][ ]*+\s*+"
_SPACES = r"[ ]*+\s*+"
# ``\d`` likewise: an ASCII digit is told before Unicode's tables are asked
_DIGIT_PATTERN = r"[0-9\d]"
_MAC_OCTET_BEFORE = re.compile(r":[0-9A-Fa-f]{2}:\Z")
_MAC_OCTET_AFTER = re.compile(r":[0-9A-Fa-f]{2}:")


def _slot_surroundings(before: str, at_start: bool, after: str, at_end: bool) -> tuple[str, str] | None:
    """The scanner's look-arounds for a slot between these constant texts of a shape
    (single-spaced; ``at_start``/``at_end``: the line begins/ends there), judged from
    the texts: None when no slot can stand there, else the look-behind and look-ahead
    still to test, "" for one the texts decide. Only a MAC address's octet (":ab:")
    can reach past the constant text, across a short slot beside it."""
    behind = ahead = ""
    if before:
        last = before[-1]
        if last != " ":
            if _NEVER_BEFORE_SLOT.match(last) or _MAC_OCTET_BEFORE.search(before):
                return None
            if last == ":" and len(before) < 4 and not at_start:
                behind = r"(?<!:[0-9A-Fa-f]{2}:)"
    elif not at_start:
        return None           # right after another slot
    if after:
        first = after[0]
        if first != " ":
            if _NEVER_BEFORE_SLOT.match(first) or _MAC_OCTET_AFTER.match(after):
                return None
            if first == ":" and len(after) < 4 and not at_end:
                ahead = r"(?!:[0-9A-Fa-f]{2}:)"
    elif not at_end:
        return None           # right before another slot
    return behind, ahead


def _may_span_a_slot(text: str) -> bool:
    """Whether ``text`` could occur in a line across a slot or a whitespace run, where
    a shape's constant text does not rule it out (a slot holds digits, and ``.`` or
    ``/`` always before a digit, K, M, G or T always after one)."""
    return bool(_SLOT_DIGIT_OR_SPACE.search(text)) or text.endswith((".", "/")) \
        or text.startswith(("K", "M", "G", "T"))


def _any_in(words) -> Callable[[str], bool]:
    return eval("lambda line: " + (" or ".join(f"{w!r} in line" for w in words) or "False"))


class Derived:
    """A value computed from parts of the line: ``build(*texts_of_parts)``."""

    __slots__ = ("build", "parts")

    def __init__(self, build: Callable[..., Any], *parts: Any):
        self.build = build
        self.parts = parts

    def value(self) -> Any:
        return self.build(*[str(part) for part in self.parts])

    def __repr__(self) -> str:
        return f"Derived({getattr(self.build, '__name__', self.build)}, {self.parts!r})"


def identity(text: str) -> str:
    """The part's text unchanged (compiled templates inline it)."""
    return text


def resolve(fields: dict) -> dict:
    """The uncached path: evaluate every Derived field of a lark parse."""
    return {name: value.value() if isinstance(value, Derived) else copy.copy(value)
            for name, value in fields.items()}


# The sighting of a shape at which its template is compiled.
COMPILE_AT = 4


class Uncacheable(Exception):
    """The first parse of a shape cannot be turned into a template."""


def compile_template(fields: dict, spans: list[tuple[int, int]],
                     exact_spaces: bool = True, kinds: list[str] | None = None) -> Callable[[list[str]], dict]:
    """A function slot-values -> fields that gives what ``resolve`` gives for every line of
    this shape; raises Uncacheable when the tokens do not line up with the slots.
    ``exact_spaces`` says whether the shape kept single spaces (see SlotScanner);
    ``kinds``, the kind of each slot ("..." an IPv4 address, "K" a scaled counter, ""
    an integer): a build whose ``for_slot_kind`` names a simpler function for the kind
    of its one part, a slot, is given that function instead (it must return the same
    for every text a slot of that kind can hold). A build of one part may carry its
    body as an expression, ``inline`` (``"{0}"`` standing for the part), written in the
    template instead of a call."""
    slot_of_span = {span: index for index, span in enumerate(spans)}
    namespace: dict[str, Any] = {}
    # The record starts as a copy of its constant fields (every key in its place, the
    # others None until set): one C-level copy instead of a load per constant.
    base: dict[str, Any] = {}
    entries: list[tuple[str, str]] = []     # (field, expression) set after the copy

    def constant(value: Any) -> str | None:
        """None when the value can stand in ``base`` (immutable), else its expression."""
        if not isinstance(value, (list, dict, set)):
            return None
        name = f"c{len(namespace)}"
        namespace[name] = value
        return f"copy({name})"

    def set_constant(name: str, value: Any) -> None:
        expression = constant(value)
        base[name] = value if expression is None else None
        if expression is not None:
            entries.append((name, expression))

    def part_code(part: Any) -> tuple[str, bool]:
        """(expression, depends on a slot)."""
        if not hasattr(part, "start_pos"):
            return repr(str(part)), False
        start, end = part.start_pos, part.end_pos
        slot = slot_of_span.get((start, end))
        if slot is not None:
            return f"v[{slot}]", True
        for slot_start, slot_end in spans:
            if start < slot_end and slot_start < end:
                raise Uncacheable(f"token {str(part)!r} holds a slot among other text")
        text = str(part)
        if (exact_spaces and "  " in text) or (not exact_spaces and _has_whitespace(text)):
            # The shape does not say how long this whitespace is: lines of this shape
            # may differ here.
            raise Uncacheable(f"token {text!r} holds whitespace the shape does not keep")
        return repr(text), False

    for name, value in fields.items():
        if not isinstance(value, Derived):
            set_constant(name, value)
            continue
        codes = [part_code(part) for part in value.parts]
        if not any(uses_slot for _, uses_slot in codes):
            try:
                fixed = value.value()
            except Exception as error:
                # Raised now it would come before the errors of earlier fields: let lark's
                # path raise them in their order.
                raise Uncacheable(f"{name} cannot be computed: {error!r}") from None
            set_constant(name, fixed)
            continue
        base[name] = None
        build = value.build
        if kinds and len(value.parts) == 1 and hasattr(build, "for_slot_kind"):
            part = value.parts[0]
            build = build.for_slot_kind.get(kinds[slot_of_span[part.start_pos, part.end_pos]], build)
        if build is identity and len(codes) == 1:
            entries.append((name, codes[0][0]))
        elif len(codes) == 1 and hasattr(build, "inline"):
            # the build's own expression written in place of a call of it
            entries.append((name, build.inline.format(codes[0][0])))
        else:
            builder = f"f{len(namespace)}"
            namespace[builder] = build
            arguments = ", ".join(code for code, _ in codes)
            entries.append((name, f"{builder}({arguments})"))
    namespace["copy"] = copy.copy
    namespace["base"] = base
    # The expressions run in the fields' order, as resolve() computes them (a build that
    # raises raises for the same field).
    source = "def fill(v):\n    r = base.copy()\n" + "".join(
        f"    r[{name!r}] = {expression}\n" for name, expression in entries) + "    return r\n"
    exec(compile(source, "<shape template>", "exec"), namespace)
    return namespace["fill"]


def _has_whitespace(text: str) -> bool:
    return len(text.split()) != 1 or text != text.strip()


_UNCACHEABLE = object()


class ShapeCache:
    """Cache from (start symbol, shape) to a compiled template.

    A parser keeps one for the life of the process, so a chat server that reads the same
    kinds of listings again parses no line shape twice; ``max_shapes`` bounds it (it
    starts afresh when full), so text crafted to have endless shapes cannot grow it.

    ``parse_fields(line, start)`` must return the field dict with Derived values, or raise
    (lark's exceptions) for an unreadable line; errors are not cached and propagate. It
    must depend on nothing but the line and the start symbol.
    """

    def __init__(self, parse_fields: Callable[[str, str], dict], scanner: SlotScanner | None = None,
                 max_shapes: int = 4096):
        self.parse_fields = parse_fields
        self.scanner = scanner or SlotScanner()
        self.max_shapes = max_shapes
        self.templates: dict[tuple, Any] = {}
        self.lark_parses = 0
        self.template_fills = 0
        # start symbol -> the template it last used (one with a line pattern); template
        # -> the template used after it, the last time
        self._last: dict[str, Any] = {}
        self._following: dict[Any, Any] = {}

    def fields(self, line: str, start: str) -> dict:
        # Machine output comes in runs of a shape (a nat table's 5,000 DNAT rules) or
        # in a round of shapes (nova's two float-snat rules per floating IP): the
        # template that followed the last one used from this start symbol, then the last
        # one itself, is tried first, by a pattern that matches only lines of its shape
        # (SlotScanner.line_pattern) and gives their slot values without computing it.
        last = self._last.get(start)
        if last is not None:
            guess = self._following.get(last, last)
            matched = guess.line_pattern(line)
            if matched is None and guess is not last:
                guess = last
                matched = last.line_pattern(line)
                if matched is not None:
                    self._following[last] = last
            if matched is not None:
                if guess is not last:
                    self._last[start] = guess
                self.template_fills += 1
                return guess(matched.groups())
        shaped = self.scanner.shape(line)
        if shaped is None:
            return self._parse(line, start)
        shape, values = shaped
        key = (start, shape)
        entry = self.templates.get(key)
        if entry is None:
            # First sight: parse for real and keep the parse; a template is compiled only
            # when the shape comes back, so one-off lines cost no compilation.
            parsed = self.parse_fields(line, start)
            self.lark_parses += 1
            if len(self.templates) >= self.max_shapes:
                self.templates.clear()
                self._following.clear()
            self.templates[key] = (parsed, self.scanner.spans(line), 1)
            return resolve(parsed)
        if entry is _UNCACHEABLE:
            return self._parse(line, start)
        if isinstance(entry, tuple):
            parsed, spans, seen = entry
            if seen + 1 < COMPILE_AT:
                # compiling a template costs a few lark parses: a shape that comes back
                # once or twice (a small capture) is parsed again instead
                self.templates[key] = (parsed, spans, seen + 1)
                return self._parse(line, start)
            try:
                entry = compile_template(parsed, spans, exact_spaces=shape[0],
                                         kinds=shape[2].split(_SLOT_MARK) if spans else [])
            except Uncacheable:
                self.templates[key] = _UNCACHEABLE
                return self._parse(line, start)
            entry.line_pattern = self.scanner.line_pattern(shape)
            self.templates[key] = entry
        if entry.line_pattern is not None:
            previous = self._last.get(start)
            if previous is not None:
                self._following[previous] = entry
            self._last[start] = entry
        self.template_fills += 1
        return entry(values)

    def _parse(self, line: str, start: str) -> dict:
        self.lark_parses += 1
        return resolve(self.parse_fields(line, start))
