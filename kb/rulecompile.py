"""A loaded rulebook (kb/rulebook.py) made into durable-rules rulesets.

Each inference and each case of a cause becomes one rule whose ``all`` list is its
patterns in order. A pattern of a *computed* fact type (kb/queries.py: the route a node
chooses for an address, the rule a packet meets in FORWARD, a packet walk) also gets a
*question* rule: the patterns before it, whose action asks Python for the answer with the
key fields the pattern gives, and asserts it. The rule itself then goes on matching as
the file wrote it, and only the questions some rule reaches are ever computed.

    engine = compiled(rulebook, on_cause, on_inference, on_query, COMPUTED, on_overrule)

A case's ``unless:`` items (observations that outrank it) become rules of their own: the
case's patterns followed by the item's, whose action ``on_overrule`` records what overrules
the finding; whether it does (the timeline) is judged when the findings are read.
"""
from __future__ import annotations

import re

from grammar.digest import digest as content_digest
from kb.engine import COMPLETE_MARKER, Engine, rules_json
from kb.rulebook import OPERATORS, Pattern, Rulebook, RuleFileError


def compile_patterns(patterns: list[Pattern]) -> list[dict]:
    """The durable-rules ``all`` list for a rule's patterns."""
    conditions = []
    marker_added = False
    for pattern in patterns:
        if pattern.negated and not marker_added:
            # Absence is judged once, when the evidence_complete marker arrives.
            conditions.append({"evidence_in": {"type": COMPLETE_MARKER}})
            marker_added = True
        terms = [_term(fld, op, value) for fld, op, value in pattern.conditions]
        body = terms[0] if len(terms) == 1 else {"$and": terms}
        conditions.append({(pattern.name + "$not" if pattern.negated else pattern.name): body})
    return conditions


def matched_field(fld: str, regex: str) -> str:
    """The field a fact is given (true or false) for whether its field FLD matches REGEX
    whole, in place of durable-rules' ``$mt``: durable compiles each of its regular
    expressions to an automaton when a rulebook is registered, which took a tenth of a
    short diagnosis; Python's, compiled on use, answer the same (tests/test_rulebook.py)."""
    return "_matches_" + content_digest(f"{fld}\0{regex}".encode()).hexdigest()[:16]


def matched_fields(rulebook: Rulebook) -> dict[str, dict[str, tuple[str, str]]]:
    """Per fact type, each ``matched_field`` the rulebook's constant ``matches:``
    conditions on it need, with its (field, regex); worked out once per rulebook
    (kb/diagnose.py keeps it with the rulebook on disk)."""
    cached = getattr(rulebook, "_matched_fields", None)
    if cached is not None:
        return cached
    by_type: dict[str, dict[str, tuple[str, str]]] = {}
    for pattern in (p for patterns in rulebook.rule_patterns() for p in patterns):
        for fld, op, value in pattern.conditions:
            if op == "matches" and isinstance(value, str):
                by_type.setdefault(pattern.fact_type, {})[matched_field(fld, value)] = (fld, value)
    rulebook._matched_fields = by_type
    return by_type


def matcher(rulebook: Rulebook):
    """The function that gives a fact, before it is asserted, the ``matched_field`` of
    every constant ``matches:`` condition the rulebook holds on its type."""
    by_type = matched_fields(rulebook)
    if not by_type:
        return None
    compiled: dict[str, re.Pattern] = {}

    def prepare(fact: dict) -> dict:
        wanted = by_type.get(fact.get("type"))
        if not wanted:
            return fact
        for name, (fld, regex) in wanted.items():
            value = fact.get(fld)
            if regex not in compiled:
                compiled[regex] = re.compile(regex, re.DOTALL)
            fact[name] = isinstance(value, str) and compiled[regex].fullmatch(value) is not None
        return fact
    return prepare


def _term(fld, op, value):
    operand = {value[0]: value[1]} if isinstance(value, tuple) else value
    if op == "matches" and isinstance(value, str):
        return {matched_field(fld, value): True}
    if op == "eq":
        return {fld: operand}
    # durable counts a field that is there but empty (None) as existing: for a rule
    # author an empty field has no value, so exists means present and not empty
    if op == "exists":
        return {"$and": [{"$ex": {fld: 1}}, {"$neq": {fld: None}}]}
    if op == "missing":
        return {"$or": [{"$nex": {fld: 1}}, {fld: None}]}
    return {OPERATORS[op]: {fld: operand}}


class Question:
    """What a question rule asks: the fact type, and per key field the constant or the
    (name, field) of an earlier pattern that gives its value."""

    def __init__(self, fact_type: str, keys: dict, before: list[Pattern]):
        self.fact_type, self.keys, self.before = fact_type, keys, before

    def values(self, bound: dict[str, dict]) -> dict:
        return {key: (bound[value[0]].get(value[1]) if isinstance(value, tuple) else value)
                for key, value in self.keys.items()}


def questions(patterns: list[Pattern], computed: dict, path: str) -> list[Question]:
    """The questions a rule's computed patterns ask; a pattern that leaves a key field
    open, or asks for a computed fact's absence, is an error in its file."""
    found = []
    for index, pattern in enumerate(patterns):
        spec = computed.get(pattern.fact_type)
        if spec is None:
            continue
        if pattern.negated or index == 0:
            what = "asked for as absent ('no ...')" if pattern.negated else "the first pattern"
            raise RuleFileError(path, pattern.line, f"{pattern.fact_type!r} is computed for the "
                                f"facts the patterns before it bind; it cannot be {what}")
        keys = {}
        for key in spec["keys"]:
            given = [value for fld, op, value in pattern.conditions if fld == key and op == "eq"]
            if given:
                keys[key] = given[0]
            elif key not in spec["optional"]:
                raise RuleFileError(path, pattern.line, f"{pattern.name!r}: a {pattern.fact_type} "
                                    f"fact is computed for given {', '.join(spec['keys'])}; "
                                    f"say which {key} (e.g. {key}: $name.field)")
        before = [p for p in patterns[:index] if not p.negated]
        found.append(Question(pattern.fact_type, keys, before))
    return found


class PlannedRule:
    """One rule the rulebook compiles to, as plain data: its name, its kind (``infer``,
    ``ask``, ``cause`` or ``unless``) and what its action is given (an Inference, a
    Question, (cause, case), (cause, case, the item's patterns)). Its conditions are in
    ``planned_json``."""

    __slots__ = ("name", "kind", "payload")

    def __init__(self, name, kind, payload):
        self.name, self.kind, self.payload = name, kind, payload

    def __getstate__(self):
        return tuple(getattr(self, slot) for slot in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)


def plan(rulebook: Rulebook, computed: dict) -> list[PlannedRule]:
    """Every rule the rulebook compiles to, worked out once per rulebook (kb/diagnose.py
    keeps it with the rulebook on disk, so that a run does not compile the patterns)."""
    cached = getattr(rulebook, "_rule_plan", None)
    if cached is not None:
        return cached
    rules: list[PlannedRule] = []
    conditions: dict[str, dict] = {}
    asked: set[str] = set()

    def add(name, patterns, kind, payload):
        rules.append(PlannedRule(name, kind, payload))
        conditions[name] = {"all": compile_patterns(patterns)}

    def add_questions(name, patterns, path):
        for number, question in enumerate(questions(patterns, computed, path)):
            condition = compile_patterns(question.before)
            # cases that share their first patterns (a cause's confirmed_by variants)
            # ask the same question once
            same = repr((condition, question.fact_type, sorted(question.keys.items())))
            if same in asked:
                continue
            asked.add(same)
            add(f"{name}__ask{number}", question.before, "ask", question)

    for number, inference in enumerate(rulebook.inferences):
        add(f"infer_{number}", inference.patterns, "infer", inference)
        add_questions(f"infer_{number}", inference.patterns, inference.path)
    for cause in rulebook.causes:
        for number, case in enumerate(cause.cases):
            add(f"{cause.cause}__{number}", case.patterns, "cause", (cause, case))
            add_questions(f"{cause.cause}__{number}", case.patterns, cause.path)
            for item, overruling in enumerate(case.unless):
                name = f"{cause.cause}__{number}__unless{item}"
                add(name, case.patterns + overruling, "unless", (cause, case, overruling))
                add_questions(name, case.patterns + overruling, cause.path)
    # the conditions are only ever read by durable, as JSON: written out here once, not
    # kept as the thousands of small dicts and lists a run would unpickle and write out
    rulebook._planned_json = rules_json(conditions)
    rulebook._rule_plan = rules
    return rules


def planned_json(rulebook: Rulebook, computed: dict) -> str:
    """The conditions of every planned rule as durable-rules reads them (``rules_json``)."""
    plan(rulebook, computed)
    return rulebook._planned_json


def compiled(rulebook: Rulebook, on_cause, on_inference, on_query, computed: dict,
             on_overrule) -> Engine:
    """The engine for a rulebook, compiled once per rulebook: ``on_cause(session, cause,
    case, c)``, ``on_inference(session, inference, c)``, ``on_query(session, question,
    c)`` and ``on_overrule(session, cause, case, patterns, c)`` (an ``unless:`` item's
    patterns matched) are called when rules fire.

    Every rule is registered, whether or not the evidence can fire it: durable-rules
    given only the rules some evidence could fire (a tenth of a short diagnosis less)
    crashed (SIGSEGV in assert_fact) on rules/examples/br-fio-consistent, as upstream
    #381 has it crash on rule orders."""
    engine = getattr(rulebook, "_engine", None)
    if engine is not None:
        return engine
    actions = {
        "infer": lambda inference: lambda session, c: on_inference(session, inference, c),
        "ask": lambda question: lambda session, c: on_query(session, question, c),
        "cause": lambda payload: lambda session, c: on_cause(session, *payload, c),
        "unless": lambda payload: lambda session, c: on_overrule(session, *payload, c),
    }
    rules = {rule.name: {"run": actions[rule.kind](rule.payload)} for rule in plan(rulebook, computed)}
    engine = Engine(rules, identity=rulebook.identity, name_hint="stackdoc",
                    prepare=matcher(rulebook), conditions=planned_json(rulebook, computed))
    rulebook._engine = engine
    return engine
