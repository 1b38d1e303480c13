"""``iptables-save`` and ``iptables -S``: chains and rules as records.

Reads ``iptables-save [-c] [-t TABLE]`` (``*table``, ``:CHAIN POLICY [p:b]``, ``-A ...``,
``[p:b] -A ...`` with ``-c``, ``COMMIT``, ``# comments``) and ``iptables [-t TABLE] -S
[CHAIN] [-v]`` (``-P``, ``-N``, ``-A``, ``-c p b``). The table comes from ``*table`` lines,
else from the command (``-t``/``--table``, default ``filter``).

The records are exactly those of ``iptables_list`` (see its docstring for the schema and
the normal forms), so ``iptables -L -n -v``, ``iptables -S`` and ``iptables-save`` of the
same ruleset describe the same rules. What only this format shows: a rule with no ``-s``
has source ``0.0.0.0/0`` and protocol ``all``, as ``-L`` prints them; user chains' ``[0:0]``
are kept as packets/bytes 0; ``-g CHAIN`` gives target CHAIN and ``[goto]`` first in extra, as
``-L`` prints it.

Worked example, ``iptables-save -c -t nat``::

    *nat
    :nova-network-snat - [0:0]
    [0:0] -A nova-network-snat -s 10.20.4.0/22 -o ens4 -j SNAT --to-source 10.20.0.11

gives::

    {"type": "iptables_chain", "line": 2, "table": "nat", "chain": "nova-network-snat",
     "policy": None, "references": None, "packets": 0, "bytes": 0}
    {"type": "iptables_rule", "line": 3, "table": "nat", "chain": "nova-network-snat",
     "num": None, "packets": 0, "bytes": 0, "target": "SNAT", "protocol": "all",
     "in": None, "in_negated": False, "out": "ens4", "out_negated": False,
     "source": "10.20.4.0/22", "source_negated": False, "destination": "0.0.0.0/0",
     "destination_negated": False, "sport": None, "dport": None, "ctstate": None,
     "ctstate_negated": False, "to_address": "10.20.0.11", "to_port": None,
     "reject_with": None, "icmp_type": None, "comment": None, "extra": ""}

Lines are parsed one at a time with a multi-start LALR parser behind the shape cache
(``grammar/shapecache.py``), like ``iptables_list``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from grammar.lark_runtime import LarkError, Token, Transformer

from grammar.base import ParseResult, Problem, lark_problem, lark_cache, LazyLark
from grammar.iptables_list import (
    ICMP_TYPES, command_table, extra_text, new_chain_fields, new_rule_fields,
    normalise_address, normalise_interface, normalise_protocol, port_value, state_list,
)
from grammar.shapecache import Derived, ShapeCache, SlotScanner, identity

KIND = "iptables_save"
# The facts this kind gives: the same records as iptables_list's, declared there (kb/schema.py).
FACT_TYPES = {"iptables_chain": "grammar.iptables_list", "iptables_rule": "grammar.iptables_list"}
COMMANDS = re.compile(
    r"(?:^|[\s;|&(])(?:\S*/)?(?:iptables(?:-legacy|-nft)?-save(?=\s|$)"
    r"|iptables(?:-legacy|-nft)?\s(?:.*\s)?(?:-[a-zA-Z]*S[a-zA-Z]*|--list-rules)(?=\s|=|$))"
)
# Where distributions keep a saved ruleset: RHEL's iptables service, Debian's
# iptables-persistent. Their content is iptables-save output.
FILES = re.compile(r"(?:^|/)(?:sysconfig/iptables(?:\.save)?|iptables/rules\.v4)$")

# ---------------------------------------------------------------------------------------
# What the options mean. A field of None: understood, but no field holds it.

BASE_OPTIONS = {
    "-s": "source", "--source": "source", "--src": "source",
    "-d": "destination", "--destination": "destination", "--dst": "destination",
    "-i": "in", "--in-interface": "in", "-o": "out", "--out-interface": "out",
    "-p": "protocol", "--protocol": "protocol", "-j": "jump", "--jump": "jump",
    "-g": "goto", "--goto": "goto", "-m": "match", "--match": "match",
    "-c": "counters", "--set-counters": "counters", "-f": None, "--fragment": None,
}
_PORTS = {"--sport": "sport", "--source-port": "sport",
          "--dport": "dport", "--destination-port": "dport"}
MODULE_OPTIONS = {
    "tcp": {**_PORTS, "--tcp-flags": None, "--syn": None, "--tcp-option": None},
    "udp": _PORTS, "udplite": _PORTS, "sctp": _PORTS, "dccp": _PORTS,
    "icmp": {"--icmp-type": "icmp_type"},
    "state": {"--state": "ctstate"},      # conntrack's state test under its older name
    "conntrack": {"--ctstate": "ctstate"},
    "multiport": {"--dports": "dport", "--destination-ports": "dport",
                  "--sports": "sport", "--source-ports": "sport"},
    "comment": {"--comment": "comment"},
    "limit": {"--limit": None, "--limit-burst": None},
    "mark": {"--mark": None},
}
TARGET_OPTIONS = {
    "REJECT": {"--reject-with": "reject_with"},
    "DNAT": {"--to-destination": "to"},
    "SNAT": {"--to-source": "to"},
    "MASQUERADE": {"--to-ports": "to_port"},
    "REDIRECT": {"--to-ports": "to_port"},
    "LOG": dict.fromkeys(("--log-level", "--log-prefix", "--log-tcp-sequence",
                          "--log-tcp-options", "--log-ip-options", "--log-uid",
                          "--log-macdecode")),
    "MARK": dict.fromkeys(("--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark")),
    "TCPMSS": dict.fromkeys(("--clamp-mss-to-pmtu", "--set-mss")),
    "CHECKSUM": {"--checksum-fill": None},
}


# Builders: each takes the texts of a value's tokens (a value such as 10.0.0.7:8775 is
# several adjacent tokens) and gives the field in the normal form of iptables_list.

def address_value(*parts: str) -> str:
    return normalise_address("".join(parts))


def interface_value(*parts: str) -> str | None:
    return normalise_interface("".join(parts))


def protocol_value(negation: str, *parts: str) -> str:
    return normalise_protocol(negation, "".join(parts))


def port_option_value(negation: str, *parts: str) -> str:
    return negation + port_value("".join(parts))


def icmp_option_value(negation: str, *parts: str) -> str:
    text = "".join(parts)
    if text == "255":
        text = "any"                     # iptables stores "any" as type 255
    return negation + ICMP_TYPES.get(text, text)


def states_value(*parts: str) -> list[str]:
    return state_list("".join(parts))


class BadValue(ValueError):
    """An option's value is not what the option takes (``-c many 12``)."""


def count_value(*parts: str) -> int:
    text = "".join(parts)
    if not text.isdigit():
        raise BadValue(f"a counter must be a number, not {text!r}")
    return int(text)


def text_value(*parts: str) -> str:
    return "".join(parts)


def quoted_value(*parts: str) -> str:
    """``"two \\"quoted\\" words"`` -> ``two "quoted" words`` (iptables-save escapes
    ``"`` and ``\\`` inside quotes); an unquoted word stays as it is."""
    text = "".join(parts)
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r'\\(.)', r"\1", text[1:-1])
    return text


def nat_address(*parts: str) -> str:
    return "".join(parts).split(":", 1)[0]


def nat_port(*parts: str) -> str | None:
    address_and_port = "".join(parts).split(":", 1)
    return address_and_port[1] if len(address_and_port) > 1 else None


# ---------------------------------------------------------------------------------------
# The transformer: one method per grammar rule.

class Option(NamedTuple):
    """One option of a rule: its name, whether it is negated, its values."""

    name: str
    negation: Token | str          # the "!" token (a constant part), or ""
    words: list                    # each value: the list of its adjacent tokens
    tokens: list                   # every token, for extra


def _words(values: list) -> tuple[Token | str, list]:
    """Group value tokens into words by adjacency; an old-style "!" before a value."""
    negation: Token | str = ""
    words: list = []
    previous = None
    for token in values:
        if token.type == "VALUE_NEGATION":
            negation = token
        elif previous is not None and previous.type != "VALUE_NEGATION" and previous.end_pos == token.start_pos:
            words[-1].append(token)
        else:
            words.append([token])
        previous = token
    return negation, words


class MissingValue(Exception):
    """An option that needs a value has none (the line was cut short)."""

    def __init__(self, option: Option):
        name_token = option.tokens[1] if option.negation and option.tokens[0].type == "OPTION_NEGATION" else option.tokens[0]
        super().__init__(f"{option.name} needs a value")
        self.column = getattr(name_token, "column", None)


class _Rule:
    """Reads a rule's options in order, the way iptables does: ``-m NAME`` and ``-j NAME``
    decide what the options after them mean."""

    def __init__(self):
        self.fields = new_rule_fields()
        self.extra: list = []
        self.set_by_options: set = set()
        self.options: dict = {}        # the current match module's or target's options
        self.in_unknown_module = False

    def read(self, option: Option) -> None:
        name = option.name
        if name in BASE_OPTIONS:
            self._base(option, BASE_OPTIONS[name])
        elif name in self.options:
            self._field(option, self.options[name])
        else:
            self.extra.extend(option.tokens)

    def _base(self, option: Option, meaning: str | None) -> None:
        words = option.words
        if meaning is None:
            return
        if not words:
            raise MissingValue(option)
        first = words[0]
        if meaning == "match":
            # The module name is compared only with known names, never numbers.
            module = "".join(str(t) for t in first)
            self.options = MODULE_OPTIONS.get(module, {})
            self.in_unknown_module = module not in MODULE_OPTIONS
            if self.in_unknown_module:
                self.extra.extend(option.tokens)
        elif meaning in ("jump", "goto"):
            target = "".join(str(t) for t in first)
            self._set("target", Derived(text_value, *first), option)
            self.options = TARGET_OPTIONS.get(target, {})
            self.in_unknown_module = False
            if meaning == "goto":
                # -L prints a goto as "[goto]" before the matches: say the same.
                self.extra.append(_GOTO_MARK)
        elif meaning == "counters":
            self.fields["packets"] = Derived(count_value, *first)
            self.fields["bytes"] = Derived(count_value, *words[1]) if len(words) > 1 else None
        elif meaning == "protocol":
            self._set("protocol", Derived(protocol_value, option.negation, *first), option)
            # "-p tcp --dport 22" (no -m tcp) works in iptables: tcp's options apply.
            protocol = "".join(str(t) for t in first)
            if protocol in MODULE_OPTIONS and not self.options:
                self.options = MODULE_OPTIONS[protocol]
        elif meaning in ("source", "destination"):
            self._set(meaning, Derived(address_value, *first), option)
            self.fields[meaning + "_negated"] = bool(option.negation)
        elif meaning in ("in", "out"):
            self._set(meaning, Derived(interface_value, *first), option)
            self.fields[meaning + "_negated"] = bool(option.negation)

    def _field(self, option: Option, field: str | None) -> None:
        if self.in_unknown_module:
            self.extra.extend(option.tokens)
            return
        if field is None:
            return
        words = option.words
        if not words:
            raise MissingValue(option)
        first = words[0]
        if field in ("sport", "dport"):
            self._set(field, Derived(port_option_value, option.negation, *first), option)
        elif field == "icmp_type":
            self._set(field, Derived(icmp_option_value, option.negation, *first), option)
        elif field == "ctstate":
            self._set(field, Derived(states_value, *first), option)
            self.fields["ctstate_negated"] = bool(option.negation)
        elif field == "comment":
            self._set(field, Derived(quoted_value, *first), option)
        elif field == "reject_with":
            self._set(field, Derived(text_value, *first), option)
        elif field == "to":
            if self._set("to_address", Derived(nat_address, *first), option):
                self.fields["to_port"] = Derived(nat_port, *first)
        elif field == "to_port":
            self._set(field, Derived(text_value, *first), option)

    def _set(self, field: str, value, option: Option) -> bool:
        # A second option for the same field (two --to-source of old iptables) is kept
        # word for word in extra rather than overwriting the first.
        if field in self.set_by_options:
            self.extra.extend(option.tokens)
            return False
        self.fields[field] = value
        self.set_by_options.add(field)
        return True

    def result(self) -> dict:
        tokens = [t for t in self.extra if t is not _GOTO_MARK]
        goto = len(tokens) != len(self.extra)
        self.fields["extra"] = _goto_extra(tokens) if goto else extra_text(tokens)
        return self.fields


_GOTO_MARK = object()


def _append_goto(*texts: str) -> str:
    return "[goto] " + "".join(texts)


def _goto_extra(tokens: list) -> Derived | str:
    joined = extra_text(tokens)
    return Derived(_append_goto, *joined.parts) if isinstance(joined, Derived) else "[goto]"


class SaveTransformer(Transformer):
    def table_line(self, children):
        return {"table": Derived(identity, children[0])}

    def chain_line(self, children):
        fields = new_chain_fields()
        fields["chain"] = Derived(identity, children[0])
        fields["policy"] = Derived(_policy, children[1])
        if len(children) > 2:
            fields["packets"], fields["bytes"] = children[2]
        return fields

    def policy_line(self, children):
        fields = new_chain_fields()
        fields["chain"] = Derived(identity, children[0])
        fields["policy"] = Derived(_policy, children[1])
        rule = _Rule()
        for option in children[2:]:
            rule.read(option)
        fields["packets"] = rule.fields["packets"]
        fields["bytes"] = rule.fields["bytes"]
        return fields

    def new_chain_line(self, children):
        fields = new_chain_fields()
        fields["chain"] = Derived(identity, children[0])
        return fields

    def rule_line(self, children):
        rule = _Rule()
        counters = None
        for child in children:
            if isinstance(child, tuple) and not isinstance(child, Option):
                counters = child
            elif isinstance(child, Option):
                rule.read(child)
        fields = rule.result()
        chain_names = [c for c in children if isinstance(c, Token) and c.type == "CHAIN_NAME"]
        fields["chain"] = Derived(identity, chain_names[0])
        if counters is not None:
            fields["packets"], fields["bytes"] = counters
        return fields

    def packet_counters(self, children):
        return (Derived(int, children[0]), Derived(int, children[1]))

    def rule_option(self, children):
        negation = children[0] if children[0].type == "OPTION_NEGATION" else ""
        name_index = 1 if negation else 0
        value_negation, words = _words(children[name_index + 1:])
        return Option(str(children[name_index]), negation or value_negation, words, list(children))


def _policy(text: str) -> str | None:
    return None if text == "-" else text


# ---------------------------------------------------------------------------------------
# Line-by-line driver.

_STARTS = ["table_line", "chain_line", "policy_line", "new_chain_line", "rule_line"]

PARSER = LazyLark(
    (Path(__file__).with_suffix(".lark")).read_text(),
    parser="lalr",
    cache=lark_cache(__file__),
    start=_STARTS,
    transformer=SaveTransformer(),
)

_LOOKS_LIKE = re.compile(
    r"\s*(?:#\s*Generated by (?:ip6?tables|xtables)(?:-legacy|-nft)?-save"
    r"|\*(?:filter|nat|mangle|raw|security)\s*$"
    r"|:\S+ (?:[A-Z]+|-) \[\d+:\d+\]"
    r"|(?:\[\d+:\d+\] )?-A \S+ -"
    r"|-P \S+ [A-Z]+"
    r"|-N \S+\s*$)"
)


def _start_for(stripped: str) -> str | None:
    """The start symbol for a line (without its indentation); None to skip the line."""
    if stripped.startswith("#") or stripped.rstrip() == "COMMIT":
        return None
    if stripped.startswith("*"):
        return "table_line"
    if stripped.startswith(":"):
        return "chain_line"
    if stripped.startswith(("-P ", "-P\t")):
        return "policy_line"
    if stripped.startswith(("-N ", "-N\t")):
        return "new_chain_line"
    return "rule_line"                 # "-A ..." and "[p:b] -A ...", or a problem


def looks_like(text: str) -> bool:
    for line in text.splitlines()[:5]:
        if line.strip():
            return bool(_LOOKS_LIKE.match(line))
    return False


_CACHE = ShapeCache(lambda line, start: PARSER.parse(line, start=start), SlotScanner())


def parse(text: str, command: str = "") -> ParseResult:
    result = ParseResult()
    table = command_table(command)
    cache = _CACHE
    records = result.records
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        if not stripped:
            continue
        start = _start_for(stripped)
        if start is None:
            continue
        try:
            fields = cache.fields(line, start)
            if start == "table_line":
                table = fields["table"]
                continue
            fields["line"] = number
            fields["table"] = table
            records.append(fields)
        except LarkError as error:
            result.problems.append(lark_problem(error, line_offset=number - 1))
        except MissingValue as error:
            result.problems.append(Problem(number, str(error), error.column))
        except BadValue as error:
            result.problems.append(Problem(number, str(error)))
        except Exception as error:  # a defect must not lose the rest of the ruleset
            result.problems.append(Problem(number, f"internal error: {error!r}"))
    return result
