"""Symptom files: the routes the tutor follows, as data.

A symptom file (``rules/symptoms/<id>.yaml``) says how a student describes a problem
and, for each cause it can come from, which evidence to gather in order::

    symptom: vm-cannot-reach-internet
    title: "An instance cannot reach the internet"
    phrasings: ["my vm can't ping google", ...]     # what students say (searched by FTS5)
    diagram: packet-path                           # optional: draw the packet's path
    start: "Let's follow one ping ..."              # said once the symptom is recognised
    steps:                                         # the evidence, each asked once
      compute-bridge-capture:
        role: compute                              # on which node (see tutor/roles.py)
        title: "the ping on the compute node's bridge"
        command: "tcpdump -n -i {bridge|<the bridge of the instances>} icmp"
        shows: "what it will show"
        why: "why it matters"                      # said when asked; and 'why' answers it
        hypothesis: "what this step tests"
        hint: "a hint before any cause is established"
        gathered:                                  # any of: when has the student given it?
          - {fact: packet, where: {iface: "{bridge}"}}
          - {command: "glance_api_servers"}        # a command pasted (output may be empty)
    causes:                                        # in order: cheap decisive checks first
      - cause: fip-snat-wrong-interface            # an id of a cause file
        route: [compute-bridge-capture, ...]       # step ids, in the order to ask them
        named_by: [["public_interface"], ["snat", "{expected}"]]
    concepts:                                      # side questions a student may ask on the way,
      - when: ["resolv|dns|name", "google|host|name|internet"]   # answered in place (every
        answer: "Markdown: a nudge and the idea behind it"       # term must match); then the
                                                                 # open question or step again

Texts are templates over what the tutor has learnt about the lab (tutor/roles.py):
``{bridge}`` is replaced by the lab's value; ``{bridge|words}`` says the words while it
is unknown. In ``where:`` an unknown value matches anything. ``named_by`` lists groups of
regular expressions (case-insensitive); a student message matching every term of one
group names the cause; ``{expected}`` stands for any value the cause's question expects.

The order of ``causes:`` is the order in which the tutor goes on after a fix: once a
revealed cause is no longer shown by the evidence pasted after the fix, it is marked
resolved and the route goes on to the next cause of the same symptom.

``load_symptoms`` checks every file and raises kb.rulebook.RuleFileError with the file
and line of the first mistake.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from kb.rulebook import RuleFileError, Rulebook
from tutor.roles import CONTEXT_KEYS, ROLES

SYMPTOM_KEYS = {"symptom", "title", "phrasings", "diagram", "start", "steps", "causes", "concepts"}
CONCEPT_KEYS = {"when", "answer"}
STEP_KEYS = {"role", "title", "command", "shows", "why", "hypothesis", "hint", "gathered"}
STEP_REQUIRED = {"role", "title", "command", "shows", "why"}
CAUSE_ROUTE_KEYS = {"cause", "route", "named_by"}
GATHERED_KEYS = {"fact", "command", "where"}
DIAGRAMS = {"packet-path"}
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass
class Gathered:
    fact: str | None
    command: re.Pattern | None
    where: dict[str, str]


@dataclass
class Step:
    id: str
    role: str
    title: str
    command: str
    shows: str
    why: str
    hypothesis: str
    hint: str
    gathered: list[Gathered]


@dataclass
class CauseRoute:
    cause: str
    route: list[str]
    named_by: list[list[str]]


@dataclass
class Concept:
    when: list[str]
    answer: str


@dataclass
class Symptom:
    id: str
    path: str
    title: str
    phrasings: list[str]
    start: str
    diagram: str | None
    steps: dict[str, Step]
    causes: list[CauseRoute] = field(default_factory=list)
    concepts: list[Concept] = field(default_factory=list)

    def cause_ids(self) -> list[str]:
        return [c.cause for c in self.causes]

    def route(self) -> list[Step]:
        """Every step, in the order the causes ask for them (each once)."""
        seen: list[str] = []
        for cause in self.causes:
            for step_id in cause.route:
                if step_id not in seen:
                    seen.append(step_id)
        return [self.steps[s] for s in seen]


def _line(mapping, key=None):
    lines = getattr(mapping, "lines", {}) or {}
    if key is not None and key in lines:
        return lines[key]
    return min(lines.values()) if lines else None


def _text(doc, key, path, required=True, default=""):
    value = doc.get(key)
    if value is None:
        if required:
            raise RuleFileError(path, _line(doc), f"'{key}:' is required")
        return default
    if not isinstance(value, str) or not value.strip():
        raise RuleFileError(path, _line(doc, key), f"'{key}:' must be text")
    _check_template(value, path, _line(doc, key))
    return " ".join(value.split())


def _check_template(text: str, path: str, line) -> None:
    try:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is None:
                continue
            key = name.split("|", 1)[0]
            if key not in CONTEXT_KEYS:
                raise RuleFileError(path, line, f"{{{key}}} is not something the tutor learns "
                                    f"about a lab; known: {', '.join(sorted(CONTEXT_KEYS))}")
    except RuleFileError:
        raise
    except ValueError as error:
        raise RuleFileError(path, line, f"bad template: {error}") from None


def load_symptom(document, path: str, rulebook: Rulebook) -> Symptom:
    if not isinstance(document, dict):
        raise RuleFileError(path, 1, "a symptom file is a mapping")
    unknown = set(document) - SYMPTOM_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RuleFileError(path, _line(document, key), f"unknown key {key!r}; known keys: "
                            + ", ".join(sorted(SYMPTOM_KEYS)))
    symptom_id = document.get("symptom")
    if not isinstance(symptom_id, str) or not _ID.match(symptom_id):
        raise RuleFileError(path, _line(document, "symptom"),
                            "symptom must be an id like 'vm-cannot-reach-internet'")
    phrasings = document.get("phrasings")
    if not isinstance(phrasings, list) or not phrasings \
            or not all(isinstance(p, str) and p.strip() for p in phrasings):
        raise RuleFileError(path, _line(document, "phrasings") or _line(document),
                            "'phrasings:' is a list of what students say, e.g. \"my vm can't ping google\"")
    diagram = document.get("diagram")
    if diagram is not None and diagram not in DIAGRAMS:
        raise RuleFileError(path, _line(document, "diagram"),
                            f"unknown diagram {diagram!r}; known: {', '.join(sorted(DIAGRAMS))}")

    raw_steps = document.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        raise RuleFileError(path, _line(document, "steps") or _line(document),
                            "'steps:' maps step ids to the evidence to ask for")
    steps = {}
    for step_id, raw in raw_steps.items():
        steps[step_id] = _load_step(str(step_id), raw, path, _line(raw_steps, step_id))

    raw_causes = document.get("causes")
    if not isinstance(raw_causes, list) or not raw_causes:
        raise RuleFileError(path, _line(document, "causes") or _line(document),
                            "'causes:' lists the causes this symptom can come from, each with its route")
    known_causes = {c.cause: c for c in rulebook.causes}
    causes = []
    for raw in raw_causes:
        line = _line(raw) if isinstance(raw, dict) else _line(document, "causes")
        if not isinstance(raw, dict) or "cause" not in raw or "route" not in raw:
            raise RuleFileError(path, line, "each cause needs 'cause:' and 'route:'")
        unknown = set(raw) - CAUSE_ROUTE_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise RuleFileError(path, _line(raw, key), f"unknown key {key!r} in a cause's route")
        if raw["cause"] not in known_causes:
            raise RuleFileError(path, _line(raw, "cause"), f"no cause file defines {raw['cause']!r}")
        route = raw["route"]
        if not isinstance(route, list) or not route:
            raise RuleFileError(path, _line(raw, "route"), "'route:' is a list of step ids")
        for step_id in route:
            if step_id not in steps:
                raise RuleFileError(path, _line(raw, "route"),
                                    f"route names step {step_id!r}, which 'steps:' does not define")
        named_by = raw.get("named_by") or []
        if not isinstance(named_by, list) or not all(isinstance(g, list) and g for g in named_by):
            raise RuleFileError(path, _line(raw, "named_by"),
                                "'named_by:' is a list of groups of terms, e.g. [[\"public_interface\"]]")
        for group in named_by:
            for term in group:
                if term != "{expected}":
                    try:
                        re.compile(str(term))
                    except re.error as error:
                        raise RuleFileError(path, _line(raw, "named_by"),
                                            f"bad regular expression {term!r}: {error}") from None
        if named_by and any("{expected}" in g for g in named_by) \
                and not known_causes[raw["cause"]].questions:
            raise RuleFileError(path, _line(raw, "named_by"),
                                f"{{expected}} needs a question in {raw['cause']}'s cause file")
        causes.append(CauseRoute(raw["cause"], list(route), [[str(t) for t in g] for g in named_by]))
    concepts = []
    for raw in document.get("concepts") or []:
        line = _line(raw) if isinstance(raw, dict) else _line(document, "concepts")
        if not isinstance(raw, dict) or set(raw) != CONCEPT_KEYS:
            raise RuleFileError(path, line, "each concept has 'when:' (regular expressions, all must "
                                "match) and 'answer:'")
        if not isinstance(raw["when"], list) or not raw["when"]:
            raise RuleFileError(path, _line(raw, "when"), "'when:' is a list of regular expressions")
        for term in raw["when"]:
            try:
                re.compile(str(term))
            except re.error as error:
                raise RuleFileError(path, _line(raw, "when"), f"bad regular expression {term!r}: {error}") from None
        concepts.append(Concept([str(term) for term in raw["when"]], _text(raw, "answer", path)))
    return Symptom(symptom_id, path, _text(document, "title", path),
                   [" ".join(p.split()) for p in phrasings], _text(document, "start", path),
                   diagram, steps, causes, concepts)


def _load_step(step_id: str, raw, path: str, line) -> Step:
    if not _ID.match(step_id):
        raise RuleFileError(path, line, f"step id {step_id!r}: use lower-case letters, digits and -")
    if not isinstance(raw, dict):
        raise RuleFileError(path, line, f"step {step_id!r} is a mapping")
    unknown = set(raw) - STEP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise RuleFileError(path, _line(raw, key), f"step {step_id!r}: unknown key {key!r}; "
                            "known keys: " + ", ".join(sorted(STEP_KEYS)))
    missing = STEP_REQUIRED - set(raw)
    if missing:
        raise RuleFileError(path, line, f"step {step_id!r} needs '{sorted(missing)[0]}:'")
    if raw["role"] not in ROLES:
        raise RuleFileError(path, _line(raw, "role"), f"step {step_id!r}: unknown role "
                            f"{raw['role']!r}; known: {', '.join(sorted(ROLES))}")
    gathered_raw = raw.get("gathered")
    if not isinstance(gathered_raw, list) or not gathered_raw:
        raise RuleFileError(path, _line(raw, "gathered") or line,
                            f"step {step_id!r} needs 'gathered:', a list like [{{fact: packet}}]")
    gathered = []
    for item in gathered_raw:
        item_line = _line(item) if isinstance(item, dict) else _line(raw, "gathered")
        if not isinstance(item, dict) or not (set(item) & {"fact", "command"}):
            raise RuleFileError(path, item_line, "each 'gathered:' entry names a 'fact:' type or a 'command:'")
        unknown = set(item) - GATHERED_KEYS
        if unknown:
            raise RuleFileError(path, item_line, f"unknown key {sorted(unknown)[0]!r} in 'gathered:'")
        command = None
        if item.get("command") is not None:
            try:
                command = re.compile(str(item["command"]))
            except re.error as error:
                raise RuleFileError(path, item_line, f"bad regular expression: {error}") from None
        where = item.get("where") or {}
        if not isinstance(where, dict):
            raise RuleFileError(path, item_line, "'where:' maps fact fields to values")
        for value in where.values():
            _check_template(str(value), path, item_line)
        gathered.append(Gathered(item.get("fact"), command, {str(k): str(v) for k, v in where.items()}))
    texts = {key: _text(raw, key, path, required=key in STEP_REQUIRED)
             for key in ("title", "command", "shows", "why", "hypothesis", "hint")}
    return Step(step_id, raw["role"], texts["title"], texts["command"], texts["shows"],
                texts["why"], texts["hypothesis"] or texts["shows"],
                texts["hint"] or f"Run it on the {ROLES[raw['role']]['name']}.", gathered)


def load_symptoms(rulebook: Rulebook) -> dict[str, Symptom]:
    """Every symptom file of the rulebook, checked; the causes whose files name a
    symptom join its list (without a route) when its file does not list them."""
    symptoms: dict[str, Symptom] = {}
    for symptom_file in rulebook.symptoms:
        symptom = load_symptom(symptom_file.document, symptom_file.path, rulebook)
        if symptom.id in symptoms:
            raise RuleFileError(symptom.path, _line(symptom_file.document, "symptom"),
                                f"symptom {symptom.id!r} is also defined in {symptoms[symptom.id].path}")
        symptoms[symptom.id] = symptom
    for cause in rulebook.causes:
        for symptom_id in cause.symptoms:
            symptom = symptoms.get(symptom_id)
            if symptom is None:
                raise RuleFileError(cause.path, None, f"symptoms: no symptom file defines {symptom_id!r}")
            if cause.cause not in symptom.cause_ids():
                symptom.causes.append(CauseRoute(cause.cause, [], []))
    return symptoms
