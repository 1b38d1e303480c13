"""Rule files: what instructors write, and how it becomes durable-rules rulesets.

A rule file is YAML. A *cause* file says, for one root cause, what to look for, what
it means in this lab's own values, how to fix it and how to hint at it::

    cause: fip-snat-wrong-interface
    title: "SNAT on {snat.node} applies only to packets leaving by {snat.out}"
    node: "{snat.node}"
    when:                                   # the patterns, in order; names bind facts
      snat: {type: snat_scope}
      route: {type: default_route, node: $snat.node, dev: {not: $snat.out}}
    explanation: "..."                      # templates over the bound facts
    fix: ["set public_interface={route.dev} ..."]
    hints: ["a question", "a nudge", "the bottom-out answer"]
    examples:                               # worked examples, run by the tests
      - evidence: ../examples/seed-network-node.txt
        expect: [fip-snat-wrong-interface]

A pattern is ``{type: T, field: condition, ...}``. A condition is a constant, a
reference ``$name.field`` to a fact bound earlier (equality), or one of
``{not: X}``, ``{lt: X}``, ``{gt: X}``, ``{lte: X}``, ``{gte: X}``,
``{matches: REGEX}`` (the whole value), ``{exists: true|false}``. A name written
``no NAME`` asks that no such fact exist once all evidence is in.

Some fact types are *computed* (kb/queries.py: ``route_choice``, ``forward_verdict``,
``source_nat``, ``walk_verdict``): a pattern of one gives the question's key fields as
constants or references, e.g. ``{type: route_choice, node: $gw.node, destination:
$fip.address}``, and the answer is computed when the patterns before it have matched.
Such a pattern cannot come first, nor be asked for as absent.

Every pattern after the first must be joined to an earlier one by an equality: joins
without one grow quadratically and durable-rules silently loses activations on them.

``cases:`` (a list of ``when`` with their own title/explanation/fix/status) lets one
cause be established in several ways; ``confirmed_by:`` lists further patterns that,
when they match as well, add their evidence and reasoning (a capture, a packet walk); ``status: possible`` with ``decide_by:`` marks
evidence that fits this cause and another alike.

``unless:`` (for the whole cause, or in one case) lists observations that outrank the
cause: patterns joined to the case's like ``confirmed_by:``'s, the last of them the
observation, usually a probe that got through (``{type: walk_verdict, kind:
vm-to-outside, floating: $fip.address, observed: answered}``); patterns before it only
join it to the case. When one matches, and the observation was not seen before *all*
of the cause's own evidence (the timeline: a ping that answered and then the fault shown
is no refutation), the finding yields: an established one becomes possible, with the observation named in
its explanation and in ``decide_by``; the finding's ``overruled_by`` says it too.

Loading (this module) reads and checks the files; kb/rulecompile.py turns a loaded
rulebook into durable-rules rulesets. ``cached_rulebook(folders)`` is the one cache of
loaded rulebooks in the process: a rule file edited on disk is read again.

An *inference* file concludes intermediate facts, so rules chain::

    infer:
      - name: gateway of a node
        when:
          route: {type: default_route}
          owner: {type: owns_address, address: $route.via, node: {not: $route.node}}
        conclude: {type: gateway_of, node: $owner.node, for_node: $route.node}
        because: "{route.node}'s default route goes via {route.via}, an address of {owner.node}"
"""
from __future__ import annotations

import functools
import os
import pickle
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from grammar.digest import digest as content_digest


CAUSE_KEYS = {"cause", "title", "node", "service", "status", "when", "cases", "explanation",
              "fix", "evidence", "decide_by", "hints", "examples", "symptoms", "questions",
              "confirmed_by", "unless"}
CASE_KEYS = {"when", "title", "node", "service", "status", "explanation", "fix", "evidence",
             "decide_by", "unless"}
INFER_KEYS = {"name", "when", "conclude", "because"}
OPERATORS = {"not": "$neq", "lt": "$lt", "gt": "$gt", "lte": "$lte", "gte": "$gte",
             "matches": "$mt"}
RESERVED_NAMES = {"s", "m", "evidence_in"}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REFERENCE = re.compile(r"^\$([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")


class RuleFileError(ValueError):
    """A rule file that cannot be used, with where (file, line) and what is wrong."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


# --- reading YAML with line numbers ----------------------------------------------

class _Mapping(dict):
    """A YAML mapping that remembers the line of each key, for error messages."""
    lines: dict


@functools.cache
def _line_loader():
    """A safe YAML loader whose mappings remember their lines: libyaml's where installed
    (a rulebook loads in a fifth of the time). yaml is imported only when a rule file is
    read, not when the rulebook comes from the cache."""
    import yaml

    class LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        pass

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    return LineLoader, yaml.YAMLError


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise RuleFileError(loader.name, key_node.start_mark.line + 1,
                                f"{key!r} is given twice")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _line(mapping, key=None) -> int | None:
    lines = getattr(mapping, "lines", {})
    if key is not None and key in lines:
        return lines[key]
    return min(lines.values()) if lines else None


# --- the rule model ----------------------------------------------------------------

@dataclass
class Pattern:
    """One pattern of a rule: a fact of one type meeting its conditions (or, negated, none)."""
    name: str
    negated: bool
    conditions: list[tuple[str, str, object]]  # (field, operator, constant or (name, field))
    line: int | None

    @property
    def fact_type(self) -> str:
        return next(value for fld, op, value in self.conditions if fld == "type" and op == "eq")


@dataclass
class Case:
    """One way a cause is established: its patterns, and the texts of its finding."""
    patterns: list[Pattern]
    texts: dict          # title, node, service, status, explanation, fix, evidence, decide_by
    line: int | None
    # observations that outrank the case: per ``unless:`` item, its patterns (after the case's)
    unless: list[list[Pattern]] = field(default_factory=list)


@dataclass
class Question:
    """A question whose answer the facts hold: the answer must name every ``expect``
    value. An expected value may carry ``missing``, said when an answer names others
    but not it (it addresses that misconception); else ``partial`` is said."""
    ask: str
    expect: list[str]
    partial: str | None = None
    wrong: str | None = None
    missing: list[str | None] = field(default_factory=list)


@dataclass
class Cause:
    """A root cause as its rule file says it: its cases, hints, worked examples, questions."""
    cause: str
    path: str
    cases: list[Case]
    hints: list[str]
    examples: list[dict]
    symptoms: list[str] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


@dataclass
class SymptomFile:
    """A ``symptom:`` file, kept as read (with line numbers) for the tutor to interpret."""
    symptom: str
    path: str
    document: dict


@dataclass
class Inference:
    """An intermediate conclusion about the lab (rules/inferences/): patterns in, a fact out."""
    name: str
    path: str
    patterns: list[Pattern]
    conclude: dict
    because: str
    line: int | None


@dataclass
class Rulebook:
    """Every cause, inference and symptom read from the rules folders."""
    causes: list[Cause]
    inferences: list[Inference]
    identity: str
    symptoms: list[SymptomFile] = field(default_factory=list)
    folders: tuple[str, ...] = ()      # where it was read from: the tutor's intents file is there too

    def rule_patterns(self) -> list[list[Pattern]]:
        """The patterns of every rule the rulebook compiles to (kb/rulecompile.py): each
        inference, each case, and each case followed by each of its ``unless:`` items.
        What reads the rules as a whole (which facts to assert, which fields they read,
        which facts can meet) reads them here."""
        rules = [inference.patterns for inference in self.inferences]
        for cause in self.causes:
            for case in cause.cases:
                rules.append(case.patterns)
                rules.extend(case.patterns + item for item in case.unless)
        return rules

    def fact_types(self) -> set[str]:
        """Every fact type some rule asks about: the only ones worth asserting."""
        return {p.fact_type for patterns in self.rule_patterns() for p in patterns}

    def cause(self, cause_id: str) -> Cause:
        return next(c for c in self.causes if c.cause == cause_id)


# --- loading -------------------------------------------------------------------------

def load_rulebook(folders) -> Rulebook:
    """Every ``*.yaml`` under the folders, checked; raises RuleFileError on the first
    unusable file (so an instructor sees where and what)."""
    causes: list[Cause] = []
    inferences: list[Inference] = []
    symptoms: list[SymptomFile] = []
    digest = content_digest()
    paths = sorted(p for folder in folders for p in Path(folder).rglob("*.yaml"))
    from kb import rulecheck  # the fact schema's checks: each problem with a code and a suggestion
    documents = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        digest.update(str(path).encode() + b"\0" + text.encode() + b"\0")
        documents.append((str(path), rulecheck.read_document(text, str(path))))
    check = rulecheck.Check(documents)
    for path, document in documents:
        with check.coded(path):
            loaded = load_rule_document(document, path)
        if isinstance(loaded, Cause):
            causes.append(loaded)
        elif isinstance(loaded, SymptomFile):
            symptoms.append(loaded)
        else:
            inferences.extend(loaded)
    seen: dict[str, str] = {}
    for cause in causes:
        if cause.cause in seen:
            raise RuleFileError(cause.path, None,
                                f"cause {cause.cause!r} is also defined in {seen[cause.cause]}")
        seen[cause.cause] = cause.path
    check.enforce()
    return Rulebook(causes, inferences, digest.hexdigest(), symptoms,
                    tuple(str(folder) for folder in folders))


_CACHE: dict[tuple, tuple[str, "Rulebook"]] = {}


def cached_rulebook(folders, prepare=None) -> Rulebook:
    """``load_rulebook``, read again only when the files under the folders changed
    (their content, or a file added or removed), here or in an earlier run.
    ``prepare(rulebook)`` works out, once, what its users derive from the rules alone
    (kb/diagnose.py: which fields rules read, how the evidence splits): it is kept with
    the rulebook on disk, so a run does not work it out again."""
    key = tuple(str(Path(f).resolve()) for f in folders)
    contents = _folders_digest(key)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == contents:
        return cached[1]
    rulebook = _from_disk(contents)
    if rulebook is None:
        rulebook = load_rulebook(key)
        if prepare is not None:
            prepare(rulebook)
        _to_disk(contents, rulebook)
    _CACHE[key] = (contents, rulebook)
    return rulebook


def _folders_digest(folders) -> str:
    """The content of every rule file under the folders, and the names of all their
    other files (a worked example's evidence that disappears makes a rule file wrong)."""
    digest = content_digest()
    for folder in folders:
        for directory, subdirectories, files in os.walk(folder):
            subdirectories.sort()
            for name in sorted(files):
                path = os.path.join(directory, name)
                digest.update(path.encode() + b"\0")
                if name.endswith(".yaml"):
                    with open(path, "rb") as handle:
                        digest.update(handle.read() + b"\0")
    return digest.hexdigest()


# A loaded rulebook is also kept on disk between runs, in the project's own .cache/
# directory: a CLI run skips reading YAML. It is keyed on the rule files' content and on
# the version of the code that reads and checks them (the fact schema is declared across
# grammar/ and kb/), so neither an edited rule file nor a changed check is served stale.
_DISK_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "rulebooks"


@functools.cache
def _code_digest() -> str:
    """The code's version as Python itself judges a compiled module current: each
    module's size and modification time."""
    root = Path(__file__).resolve().parent.parent
    stamps = []
    for package in ("kb", "grammar"):
        with os.scandir(root / package) as entries:
            stamps.extend((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                          for entry in entries if entry.name.endswith(".py"))
    return content_digest(repr(sorted(stamps)).encode()).hexdigest()


def _disk_path(contents: str) -> Path:
    digest = content_digest(f"{contents}:{_code_digest()}".encode()).hexdigest()
    return _DISK_CACHE / f"{digest[:32]}.pickle"


def _from_disk(contents: str) -> "Rulebook | None":
    try:
        with open(_disk_path(contents), "rb") as handle:
            rulebook = pickle.load(handle)
    except Exception:  # absent, unreadable, corrupt or from another version: read the files
        return None
    return rulebook if isinstance(rulebook, Rulebook) else None


def _to_disk(contents: str, rulebook) -> None:
    path = _disk_path(contents)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as handle:
            pickle.dump(rulebook, handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)          # whole or not at all, for a concurrent reader
    except Exception:
        pass  # a cache that cannot be written is only slower


def read_rule_yaml(text: str, path: str = "<rules>"):
    """A rule file's YAML; mappings remember the line of each key (``.lines``)."""
    try:
        loader_class, yaml_error = _line_loader()
        loader = loader_class(text)
        loader.name = path
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except RuleFileError:
        raise
    except Exception as error:
        if not isinstance(error, _line_loader()[1]):
            raise
        mark = getattr(error, "problem_mark", None)
        raise RuleFileError(path, mark.line + 1 if mark else None,
                            f"not valid YAML: {getattr(error, 'problem', error)}") from None
    return document


def load_rule_text(text: str, path: str = "<rules>"):
    return load_rule_document(read_rule_yaml(text, path), path)


def load_rule_document(document, path: str = "<rules>"):
    if not isinstance(document, dict):
        raise RuleFileError(path, 1, "a rule file is a mapping with 'cause:' or 'infer:'")
    if "infer" in document:
        return _load_inferences(document, path)
    if "cause" in document:
        return _load_cause(document, path)
    if "symptom" in document:
        return SymptomFile(str(document["symptom"]), path, document)
    if "collect" in document:
        return []  # what collectors run (rules/collect.yaml): collectors/knowledge.py reads it
    raise RuleFileError(path, _line(document), "a rule file needs 'cause:', 'infer:' or 'symptom:'")


def _load_cause(doc, path: str) -> Cause:
    unknown = set(doc) - CAUSE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RuleFileError(path, _line(doc, key), f"unknown key {key!r}; known keys: "
                            + ", ".join(sorted(CAUSE_KEYS)))
    cause_id = doc["cause"]
    if not isinstance(cause_id, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", cause_id):
        raise RuleFileError(path, _line(doc, "cause"), "cause must be an id like 'broker-address-wrong'")
    if ("when" in doc) == ("cases" in doc):
        raise RuleFileError(path, _line(doc), "give either 'when:' or 'cases:'")
    shared = {key: doc[key] for key in CASE_KEYS - {"when", "unless"} if key in doc}
    raw_cases = []
    if "when" in doc:
        single = _Mapping(shared, when=doc["when"])
        single.lines = dict(doc.lines)
        raw_cases.append(single)
    if "cases" in doc:
        if not isinstance(doc["cases"], list) or not doc["cases"]:
            raise RuleFileError(path, _line(doc, "cases"), "'cases:' is a list of cases")
        for raw in doc["cases"]:
            if not isinstance(raw, dict) or "when" not in raw:
                raise RuleFileError(path, _line(doc, "cases"), "each case needs 'when:'")
            unknown = set(raw) - CASE_KEYS
            if unknown:
                key = sorted(unknown)[0]
                raise RuleFileError(path, _line(raw, key), f"unknown key {key!r} in a case")
            merged = _Mapping(shared)
            merged.update(raw)
            merged.lines = {**{k: doc.lines[k] for k in shared}, **getattr(raw, "lines", {})}
            raw_cases.append(merged)
    confirmations = doc.get("confirmed_by") or []
    if not isinstance(confirmations, list) or not all(isinstance(c, dict) for c in confirmations):
        raise RuleFileError(path, _line(doc, "confirmed_by"),
                            "'confirmed_by:' is a list of pattern mappings, each like 'when:'")
    bases = len(raw_cases)
    for base in list(raw_cases):
        for confirmation in confirmations:
            clash = set(confirmation) & set(base["when"])
            if clash:
                raise RuleFileError(path, _line(confirmation, sorted(clash)[0]),
                                    f"{sorted(clash)[0]!r} is already bound in 'when:'")
            when = _Mapping(base["when"])
            when.update(confirmation)
            when.lines = {**getattr(base["when"], "lines", {}), **getattr(confirmation, "lines", {})}
            confirmed = _Mapping(base)
            confirmed["when"] = when
            confirmed["evidence"] = list(base.get("evidence") or
                                         [n.removeprefix("no ").strip() for n in base["when"]
                                          if not str(n).startswith("no ")]) + \
                [n for n in confirmation if not str(n).startswith("no ")]
            confirmed.lines = dict(getattr(base, "lines", {}))
            # what outranks a case outranks its confirmed variants: judged once, on the case
            confirmed.pop("unless", None)
            raw_cases.append(confirmed)
    overruling = doc.get("unless") or []
    if not isinstance(overruling, list) or not all(isinstance(u, dict) for u in overruling):
        raise RuleFileError(path, _line(doc, "unless"),
                            "'unless:' is a list of pattern mappings, each like 'when:'")
    cases = [_load_case(raw, path, overruling if number < bases else ())
             for number, raw in enumerate(raw_cases)]

    hints = doc.get("hints")
    if not isinstance(hints, list) or len(hints) < 3 or not all(isinstance(h, str) for h in hints):
        raise RuleFileError(path, _line(doc, "hints") or _line(doc),
                            "'hints:' must be a ladder of at least three hints: a question "
                            "that points where to look, a nudge that names what to compare, "
                            "the bottom-out answer")
    everywhere = set.intersection(*[{p.name for p in c.patterns if not p.negated} for c in cases])
    for hint in hints:
        _check_template(hint, sorted(everywhere), path, _line(doc, "hints"))
    examples = doc.get("examples") or []
    if not isinstance(examples, list):
        raise RuleFileError(path, _line(doc, "examples"), "'examples:' is a list")
    for example in examples:
        if not isinstance(example, dict) or "evidence" not in example or "expect" not in example:
            raise RuleFileError(path, _line(doc, "examples"),
                                "each example needs 'evidence:' and 'expect:'")
    questions = []
    for raw in doc.get("questions") or []:
        if not isinstance(raw, dict) or "ask" not in raw or "expect" not in raw:
            raise RuleFileError(path, _line(doc, "questions"),
                                "each question needs 'ask:' and 'expect:' (the values a right answer names)")
        items = raw["expect"] if isinstance(raw["expect"], list) else [raw["expect"]]
        expect, missing = [], []
        for item in items:
            if isinstance(item, dict):
                if "value" not in item or set(item) - {"value", "missing"}:
                    raise RuleFileError(path, _line(raw, "expect"), "an expected value is a "
                                        "template, or {value: ..., missing: ...}")
                expect.append(item["value"])
                missing.append(item.get("missing"))
            else:
                expect.append(item)
                missing.append(None)
        for text in [raw["ask"], *expect, *[m or "" for m in missing],
                     raw.get("partial") or "", raw.get("wrong") or ""]:
            _check_template(text, sorted(everywhere), path, _line(raw, "ask") or _line(doc, "questions"))
        questions.append(Question(raw["ask"], expect, raw.get("partial"), raw.get("wrong"), missing))
    return Cause(cause_id, path, cases, hints, examples, list(doc.get("symptoms") or []), questions)


def _load_case(raw, path: str, overruling=()) -> Case:
    for key in ("title", "explanation", "fix"):
        if key not in raw:
            raise RuleFileError(path, _line(raw), f"a cause needs '{key}:'")
    status = raw.get("status", "established")
    if status not in {"established", "possible"}:
        raise RuleFileError(path, _line(raw, "status"), "status is 'established' or 'possible'")
    if status == "possible" and not raw.get("decide_by"):
        raise RuleFileError(path, _line(raw, "status"),
                            "a possible cause must say what decides it ('decide_by:')")
    patterns = _load_patterns(raw["when"], path, _line(raw, "when"))
    bound = [p.name for p in patterns if not p.negated]
    texts = {
        "title": raw["title"], "node": raw.get("node"), "service": raw.get("service"),
        "status": status, "explanation": raw["explanation"],
        "fix": raw["fix"] if isinstance(raw["fix"], list) else [raw["fix"]],
        "decide_by": raw.get("decide_by") or [],
        "evidence": raw.get("evidence") or bound,
    }
    for name in texts["evidence"]:
        if name not in bound:
            raise RuleFileError(path, _line(raw, "evidence"),
                                f"evidence names {name!r}, which 'when:' does not bind")
    for key in ("title", "node", "service", "explanation", "fix", "decide_by"):
        values = texts[key] if isinstance(texts[key], list) else [texts[key]]
        for value in values:
            if value is not None:
                _check_template(value, bound, path, _line(raw, key))
    own = raw.get("unless") or []
    if not isinstance(own, list) or not all(isinstance(u, dict) for u in own):
        raise RuleFileError(path, _line(raw, "unless"),
                            "'unless:' is a list of pattern mappings, each like 'when:'")
    unless = [_load_unless(raw["when"], item, path) for item in [*overruling, *own]]
    return Case(patterns, texts, _line(raw, "when"), unless)


def _load_unless(when, item, path: str) -> list[Pattern]:
    """An ``unless:`` item's patterns, checked as if they followed the case's ``when:``."""
    clash = set(item) & set(when)
    if clash:
        raise RuleFileError(path, _line(item, sorted(clash)[0]),
                            f"{sorted(clash)[0]!r} is already bound in 'when:'")
    combined = _Mapping(when)
    combined.update(item)
    combined.lines = {**getattr(when, "lines", {}), **getattr(item, "lines", {})}
    return _load_patterns(combined, path, _line(item))[len(when):]


def _load_inferences(doc, path: str) -> list[Inference]:
    rules = doc["infer"]
    if not isinstance(rules, list):
        raise RuleFileError(path, _line(doc, "infer"), "'infer:' is a list of inferences")
    inferences = []
    for raw in rules:
        if not isinstance(raw, dict):
            raise RuleFileError(path, _line(doc, "infer"), "each inference is a mapping")
        unknown = set(raw) - INFER_KEYS
        missing = INFER_KEYS - set(raw)
        if unknown or missing:
            what = f"unknown key {sorted(unknown)[0]!r}" if unknown else \
                f"missing {sorted(missing)[0]!r}"
            raise RuleFileError(path, _line(raw), f"inference: {what}")
        patterns = _load_patterns(raw["when"], path, _line(raw, "when"))
        bound = [p.name for p in patterns if not p.negated]
        conclude = raw["conclude"]
        if not isinstance(conclude, dict) or "type" not in conclude:
            raise RuleFileError(path, _line(raw, "conclude"), "'conclude:' needs a 'type:'")
        for key, value in conclude.items():
            if key in {"id", "sid"} or str(key).startswith("$"):
                raise RuleFileError(path, _line(conclude, key), f"{key!r} is reserved")
            _check_value(value, bound, path, _line(conclude, key))
        _check_template(raw["because"], bound, path, _line(raw, "because"))
        inferences.append(Inference(raw["name"], path, patterns, dict(conclude),
                                    raw["because"], _line(raw)))
    return inferences


def _load_patterns(when, path: str, line: int | None) -> list[Pattern]:
    if not isinstance(when, dict) or not when:
        raise RuleFileError(path, line, "'when:' is a mapping of names to fact patterns")
    patterns: list[Pattern] = []
    positive: list[str] = []
    for raw_name, body in when.items():
        key_line = _line(when, raw_name)
        name = str(raw_name)
        negated = name.startswith("no ")
        if negated:
            name = name[3:].strip()
        if not _NAME.match(name) or name in RESERVED_NAMES:
            raise RuleFileError(path, key_line, f"{raw_name!r} is not a usable name: use "
                                "lower-case letters, digits and _ (not 's' or 'm')")
        if any(p.name == name for p in patterns):
            raise RuleFileError(path, key_line, f"the name {name!r} is bound twice")
        if not isinstance(body, dict) or "type" not in body:
            raise RuleFileError(path, key_line, f"pattern {name!r} needs a 'type:'")
        conditions = []
        for fld, value in body.items():
            fld_line = _line(body, fld) or key_line
            if fld in {"id", "sid"} or str(fld).startswith("$"):
                raise RuleFileError(path, fld_line, f"{fld!r} is the engine's own key; "
                                    "facts carry 'fact_id'")
            conditions.extend(_condition(str(fld), value, positive, path, fld_line))
        joined = any(op == "eq" and isinstance(v, tuple) for _, op, v in conditions)
        if patterns and not joined:
            raise RuleFileError(path, key_line, f"pattern {name!r} is not joined to an earlier "
                                "one by an equality (e.g. node: $first.node); such joins grow "
                                "quadratically and the engine drops activations on them")
        if negated and not patterns:
            raise RuleFileError(path, key_line, "an absence ('no ...') cannot come first")
        patterns.append(Pattern(name, negated, conditions, key_line))
        if not negated:
            positive.append(name)
    return patterns


def _condition(fld: str, value, bound: list[str], path: str, line):
    if isinstance(value, dict):
        if len(value) != 1:
            raise RuleFileError(path, line, f"{fld}: one operator per field, e.g. {{not: X}}")
        (operator, operand), = value.items()
        if operator == "exists":
            return [(fld, "exists" if operand else "missing", None)]
        if operator not in OPERATORS:
            raise RuleFileError(path, line, f"{fld}: unknown operator {operator!r}; known: "
                                + ", ".join(sorted(OPERATORS) + ["exists"]))
        if operator == "matches":
            if not isinstance(operand, str):
                raise RuleFileError(path, line, f"{fld}: 'matches' takes a regular expression")
            try:
                re.compile(operand)
            except re.error as error:
                raise RuleFileError(path, line, f"{fld}: bad regular expression: {error}") from None
            shorthand = re.search(r"\\[dwsbDWSB]", operand)
            if shorthand:
                raise RuleFileError(path, line, f"{fld}: the engine's regular expressions do not "
                                    f"know {shorthand.group(0)}; write a class like [0-9] or "
                                    "[a-z]; the whole value must match, so wrap with .*")
        if isinstance(operand, (dict, list)):
            # durable would compare the field with the mapping itself: never equal, so
            # {not: {matches: X}} would hold for every fact
            raise RuleFileError(path, line, f"{fld}: {operator!r} compares with a value or "
                                "$name.field, not with an operator or a list")
        return [(fld, operator, _operand(operand, bound, path, line))]
    if isinstance(value, list):
        raise RuleFileError(path, line, f"{fld}: a list is not a condition")
    return [(fld, "eq", _operand(value, bound, path, line))]


def _operand(value, bound, path, line):
    if isinstance(value, str) and value.startswith("$"):
        match = _REFERENCE.match(value)
        if not match:
            raise RuleFileError(path, line, f"{value!r}: a reference is $name.field")
        if match.group(1) not in bound:
            raise RuleFileError(path, line, f"{value!r}: {match.group(1)!r} is not bound "
                                "before this pattern")
        return (match.group(1), match.group(2))
    return value


def _check_value(value, bound, path, line):
    if isinstance(value, str) and value.startswith("$"):
        _operand(value, bound, path, line)
    elif isinstance(value, str):
        _check_template(value, bound, path, line)


def _check_template(template, bound, path, line) -> None:
    if not isinstance(template, str):
        raise RuleFileError(path, line, f"expected text, got {type(template).__name__}")
    try:
        for _, field_name, _, _ in string.Formatter().parse(template):
            if field_name is None:
                continue
            name, _, attribute = field_name.partition(".")
            if name not in bound or not attribute or attribute.startswith("_") or "." in attribute:
                raise RuleFileError(path, line, f"{{{field_name}}} is not name.field of a fact "
                                    f"bound in 'when:' ({', '.join(bound)})")
    except RuleFileError:
        raise
    except ValueError as error:
        raise RuleFileError(path, line, f"bad template: {error}") from None
