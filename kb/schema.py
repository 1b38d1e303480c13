"""The fact schema: every fact type rules can ask about, and its fields, in words.

Each type is declared once, beside the code that produces it, as a module-level
constant of plain data::

    FACT_TYPES = {
        "route": {"doc": "a route of NODE's routing table",
                  "fields": {"destination": "the network as CIDR", "via": "...", ...}},
    }

A module that gives the same records as another names it instead of repeating them
(``FACT_TYPES = {"route": "grammar.ip_route"}``). Facts concluded by inference rules
are declared by their ``conclude:``. ``node`` and ``type`` (and ``because`` on a derived
fact, ``path`` on one read from a file) are on every fact and are not listed.

The constants are read as data from the modules' source, never by importing them: a
rule check must not pay for building every grammar. ``rules/FACTS.md`` is generated
from this (``python app.py rules facts --write``) for instructors to read.

>>> schema = module_schema()
>>> schema.fields("route")["via"]
'the next hop, or empty for a connected network'
>>> schema.declared_in("route")
['grammar/ip_route.py', 'grammar/route_n.py']
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# The packages whose modules produce facts: the parsers and the derivations.
PRODUCERS = ("grammar", "kb")

# Fields every fact may carry besides its type's own.
IMPLICIT_FIELDS = {
    "node": "the node the fact is about (from the prompt, --node or the evidence folder)",
    "type": "the fact type",
    "path": "the file the output was read from (cat/grep/tail of a file), or empty",
    "because": "on a derived or concluded fact: the sentence saying why it holds",
}

_ASSIGNMENT = re.compile(r"^FACT_TYPES\s*=\s*", re.M)


class SchemaError(ValueError):
    """A FACT_TYPES declaration that cannot be used: where, and what is wrong."""


@dataclass
class FactType:
    """A fact type as declared: its fields, where it is declared, how it arises."""
    name: str
    doc: str
    fields: dict[str, str]
    declared_in: list[str] = field(default_factory=list)   # module paths or file:line
    origin: str = "parsed"                                   # parsed, derived or concluded


@dataclass
class Schema:
    """Every declared fact type, by name."""
    types: dict[str, FactType]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self.types

    def names(self) -> list[str]:
        return sorted(self.types)

    def fields(self, name: str) -> dict[str, str]:
        """The fields a fact of this type may carry, its own and the implicit ones."""
        return {**self.types[name].fields, **IMPLICIT_FIELDS}

    def declared_in(self, name: str) -> list[str]:
        return list(self.types[name].declared_in)

    def with_conclusions(self, conclusions: list[tuple[str, dict, str, str]]) -> "Schema":
        """This schema plus the types inference rules conclude: ``(type, fields, name,
        where)`` for each ``conclude:``, its fields mapped to where their values come from.
        A type concluded by several rules has every field any of them gives."""
        types = dict(self.types)
        for fact_type, fields, name, where in conclusions:
            described = {key: f"from `{value}`" if str(value).startswith("$") else f"`{value}`"
                         for key, value in fields.items() if key != "type"}
            existing = types.get(fact_type)
            if existing is not None and existing.origin != "concluded":
                raise SchemaError(f"{where}: {fact_type!r} is already declared in "
                                  f"{', '.join(existing.declared_in)}; a rule cannot conclude it")
            if existing is None:
                types[fact_type] = FactType(fact_type, name, described, [where], "concluded")
            else:
                merged = {**described, **existing.fields}
                types[fact_type] = FactType(fact_type, existing.doc, merged,
                                            existing.declared_in + [where], "concluded")
        return Schema(types)


@functools.lru_cache(maxsize=4)
def module_schema(root: str | None = None) -> Schema:
    """Every FACT_TYPES of the producing packages under ``root`` (the project)."""
    base = Path(root) if root else PROJECT
    declared: dict[str, tuple[dict, list[str], str]] = {}
    references: list[tuple[str, str, str]] = []
    for package in PRODUCERS:
        for path in sorted((base / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if not _ASSIGNMENT.search(text):
                continue
            where = path.relative_to(base).as_posix()
            origin = "parsed" if package == "grammar" else "derived"
            for name, body in read_declaration(text, where).items():
                if isinstance(body, str):
                    references.append((name, body, where))
                    continue
                if name in declared:
                    raise SchemaError(f"{where}: fact type {name!r} is also declared in "
                                      f"{declared[name][1][0]}; declare it once and name that "
                                      f"module in the other ({name!r}: \"{package}.module\")")
                declared[name] = (body, [where], origin)
    types = {name: FactType(name, body["doc"], dict(body["fields"]), wheres, origin)
             for name, (body, wheres, origin) in declared.items()}
    for name, module, where in references:
        owner = module.replace(".", "/") + ".py"
        if name not in types or owner not in types[name].declared_in:
            raise SchemaError(f"{where}: {name!r} refers to {module}, which does not declare it")
        types[name].declared_in.append(where)
    return Schema(types)


def read_declaration(text: str, where: str) -> dict:
    """A module's FACT_TYPES, read as a literal from its source."""
    match = _ASSIGNMENT.search(text)
    start = match.end()
    # The constant ends at the first line that closes it at the left margin; only a
    # declaration written differently pays for parsing the whole module.
    end = text.find("\n}\n", start)
    candidates = [text[start:end + 2]] if end >= 0 else []
    line_end = text.find("\n", start)
    candidates.append(text[start:line_end if line_end >= 0 else len(text)])
    value = None
    for candidate in candidates:
        try:
            value = ast.literal_eval(candidate)
            break
        except (ValueError, SyntaxError):
            continue
    if value is None:
        value = _literal_from_module(text, where)
    _check_declaration(value, where)
    return value


def _literal_from_module(text: str, where: str):
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FACT_TYPES"
                                                for t in node.targets):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                break
    raise SchemaError(f"{where}: FACT_TYPES must be plain data (a dict literal)")


def _check_declaration(value, where: str) -> None:
    if not isinstance(value, dict):
        raise SchemaError(f"{where}: FACT_TYPES is a dict of fact types")
    for name, body in value.items():
        if isinstance(body, str):
            continue
        if not isinstance(body, dict) or not isinstance(body.get("doc"), str) \
                or not isinstance(body.get("fields"), dict) or set(body) - {"doc", "fields"}:
            raise SchemaError(f"{where}: {name!r} needs 'doc' (text) and 'fields' "
                              "(field name -> what it holds)")
        for field_name, doc in body["fields"].items():
            if not isinstance(doc, str) or not doc:
                raise SchemaError(f"{where}: {name}.{field_name} needs a description")
            if field_name in IMPLICIT_FIELDS:
                raise SchemaError(f"{where}: {name}.{field_name} is on every fact; leave it out")


# --- the reference instructors read ---------------------------------------------------

_SECTIONS = (
    ("parsed", "Read from command output (grammar/)",
     "One per record a parser gives; `node` is the node the output came from."),
    ("derived", "Derived in Python (kb/)",
     "What the evidence adds up to, computed the way the kernel would; each says "
     "`because` (why it holds) and points back to the facts it came from."),
    ("concluded", "Concluded by inference rules (rules/)",
     "Intermediate conclusions, drawn by the rules in `rules/inferences/`; the fields "
     "show where each value comes from."),
)


def facts_markdown(schema: Schema) -> str:
    """rules/FACTS.md: every fact type, where it comes from, and its fields."""
    lines = ["# Facts rules can ask about", "",
             "Generated by `python app.py rules facts --write` from the `FACT_TYPES` "
             "declarations beside the code that produces each fact and the `conclude:` of "
             "inference rules. Do not edit by hand.", "",
             "In a rule, `{type: T, field: condition}` matches a fact, and `{name.field}` "
             "shows a field of a bound fact in a text; a type or field not listed here is an "
             "error (`python app.py rules check`). Besides its own fields, every fact has:", "",
             "| field | holds |", "|---|---|",
             *[f"| `{name}` | {_cell(doc)} |" for name, doc in IMPLICIT_FIELDS.items()], ""]
    for origin, title, intro in _SECTIONS:
        names = [n for n in schema.names() if schema.types[n].origin == origin]
        if not names:
            continue
        lines += [f"## {title}", "", intro, ""]
        for name in names:
            fact_type = schema.types[name]
            lines += [f"### `{name}`", "", f"> {fact_type.doc}.",
                      "", "Declared in " + ", ".join(f"`{w}`" for w in fact_type.declared_in) + ".",
                      "", "| field | holds |", "|---|---|"]
            lines += [f"| `{key}` | {_cell(doc)} |" for key, doc in fact_type.fields.items()]
            lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
