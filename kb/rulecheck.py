"""Rule and symptom files checked against the fact schema, every mistake with its file,
line, a stable code and how to fix it.

    rules/floating-ips/x.yaml:6: SD200 unknown fact type 'servce_status'; did you mean 'service_status'?

``check_folder(DIR)`` gives every problem of a rules folder (``python app.py rules
check``); ``enforce(documents)`` raises the first as a RuleCheckError when the rulebook
is loaded, so a misspelt fact type or field stops a diagnosis instead of never firing.
Codes are stable (as OpenStack Vitrage numbers its template errors): tools and the
instructors' notes may rely on them; a new check gets a new code, an old code never
changes meaning. rules/README.md lists them.

>>> print(Problem("a.yaml", 4, "SD200", "unknown fact type 'rout'", "did you mean 'route'?"))
a.yaml:4: SD200 unknown fact type 'rout'; did you mean 'route'?
"""
from __future__ import annotations

import difflib
import re
import string
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from kb.rulebook import (CASE_KEYS, CAUSE_KEYS, INFER_KEYS, OPERATORS, RESERVED_NAMES,
                         RuleFileError, read_rule_yaml)
from kb.schema import Schema, module_schema

CODES = {
    # the file as a whole
    "SD100": "not valid YAML",
    "SD101": "a key given twice in one mapping",
    "SD102": "not a rule file: no 'cause:', 'infer:' or 'symptom:'",
    "SD103": "unknown key",
    "SD104": "a required key is missing",
    "SD105": "a value of the wrong kind (text, list or mapping expected)",
    "SD106": "an id that is not lower-case words joined by -",
    "SD107": "a cause or symptom defined in two files",
    "SD108": "a collect file (what collectors run) the collectors cannot use",
    "SD109": "an intents file (what a student's message asks for) the tutor cannot use",
    # patterns over facts
    "SD200": "unknown fact type",
    "SD201": "unknown field of a fact type",
    "SD202": "a reference to a name not bound before it",
    "SD203": "a condition that is not one the engine can test",
    "SD204": "a pattern not joined to an earlier one",
    "SD205": "a name that cannot be bound (reserved, bound twice, or an absence first)",
    "SD206": "a key the engine keeps for itself (id, sid, $...)",
    "SD207": "an inference concludes a fact type the code produces",
    # texts shown to the student
    "SD300": "a placeholder names a fact not bound",
    "SD301": "a placeholder names a field the fact type does not have",
    "SD302": "a malformed placeholder or template",
    "SD303": "'evidence:' names a fact not bound",
    "SD310": "a status that is not established or possible",
    "SD311": "a possible cause that does not say what decides it",
    "SD312": "a hint ladder shorter than three rungs",
    # worked examples
    "SD400": "an example's evidence file does not exist",
    "SD401": "an example expects a cause no file defines",
    "SD402": "an example's expected status is not established or possible",
    "SD403": "an example's kind is not positive, healthy or lookalike",
    "SD404": "an example's kind disagrees with what it expects",
    # symptoms
    "SD500": "a symptom's route names a cause no file defines",
    "SD501": "a symptom's route names a step its file does not define",
    "SD502": "a cause names a symptom no file defines",
    # what the loaders refuse beyond these checks
    "SD900": "the rule loader refuses the file",
    "SD901": "the tutor cannot use the symptom file",
}

# The shape of a symptom file (tutor/symptoms.py reads them; a test keeps both in step).
SYMPTOM_KEYS = {"symptom", "title", "phrasings", "diagram", "start", "steps", "causes", "concepts"}
STEP_KEYS = {"role", "title", "command", "shows", "why", "hypothesis", "hint", "gathered"}
CAUSE_ROUTE_KEYS = {"cause", "route", "named_by"}
GATHERED_KEYS = {"fact", "command", "where"}
CONCEPT_KEYS = {"when", "answer"}

EXAMPLE_KEYS = {"evidence", "expect", "expect_not", "node", "kind"}
# What an example shows of its file's cause (tests/test_breadth.py counts them): the
# cause itself, the healthy state that gives nothing, or the look-alike it must not be
# taken for (another cause, or evidence that only resembles it).
EXAMPLE_KINDS = ("positive", "healthy", "lookalike")
EXPECTATION_KEYS = {"cause", "status", "node"}
QUESTION_KEYS = {"ask", "expect", "partial", "wrong"}
STATUSES = ("established", "possible")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REFERENCE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$")
_SHORTHAND = re.compile(r"\\[dwsbDWSB]")


@dataclass(frozen=True)
class Problem:
    """A mistake in a rule or symptom file: where, its code, what is wrong, a suggestion."""
    path: str
    line: int | None
    code: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.code} {self.message}" + (f"; {self.fix}" if self.fix else "")


class RuleCheckError(RuleFileError):
    """The first problem of a rulebook, raised when it is loaded."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.code = problem.code
        super().__init__(problem.path, problem.line,
                         f"{problem.code} {problem.message}" + (f"; {problem.fix}" if problem.fix else ""))


def suggest(word, candidates) -> str:
    """'did you mean X?' for the closest candidate, else the candidates themselves."""
    options = sorted({str(c) for c in candidates})
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not options:
        return ""
    shown = ", ".join(options[:12]) + (" ..." if len(options) > 12 else "")
    return f"known: {shown}"


def _line(mapping, key=None):
    lines = getattr(mapping, "lines", None) or {}
    if key is not None and key in lines:
        return lines[key]
    return min(lines.values()) if lines else None


# --- entry points ------------------------------------------------------------------------

def read_folder(folder) -> tuple[list[tuple[str, object]], list[Problem]]:
    """Every ``*.yaml`` under ``folder``, read with line numbers, and what could not be read."""
    documents, problems = [], []
    for path in sorted(Path(folder).rglob("*.yaml")):
        try:
            documents.append((str(path), read_document(path.read_text(encoding="utf-8"), str(path))))
        except UnicodeDecodeError as error:
            problems.append(Problem(str(path), None, "SD100", f"not UTF-8 text ({error.reason})",
                                    "save the file as UTF-8"))
        except RuleCheckError as error:
            problems.append(error.problem)
    return documents, problems


def _read_problem(error: RuleFileError) -> Problem:
    if "given twice" in error.message:
        return Problem(error.path, error.line, "SD101", error.message,
                       "keep one of them (a later one would silently replace the first)")
    return Problem(error.path, error.line, "SD100", error.message,
                   "check the indentation and the quotes around text holding ':' or '{'")


def check_folder(folder) -> list[Problem]:
    """Every problem of the rule and symptom files under ``folder``."""
    documents, problems = read_folder(folder)
    return _in_order(problems + check_documents(documents))


def check_documents(documents) -> list[Problem]:
    """Every problem of these ``(path, document)`` pairs, checked together (a symptom
    names causes of other files; inferences conclude the facts causes match)."""
    return _in_order(_Checker(documents).run())


def check_intents(folder, load) -> list[Problem]:
    """The tutor's intents files (``*.yml`` under ``folder``: rules/intents.yml), each
    read by ``load``, the tutor's own loader (passed in, so that kb knows nothing of the
    tutor); what it refuses is a problem at the line it is about."""
    problems = []
    for path in sorted(Path(folder).rglob("*.yml")):
        try:
            load(str(path))
        except (ValueError, OSError) as error:
            message = str(error)
            for prefix in (f"{path}:", f"{path}"):
                message = message.removeprefix(prefix)
            line, message = _intents_line(path, message.strip())
            problems.append(Problem(str(path), line, "SD109", message,
                                    "see the header of the shipped rules/intents.yml for its shape"))
    return problems


def _intents_line(path: Path, message: str) -> tuple[int, str]:
    """The line an intents problem is about: the loader's own, else the first line
    holding the pattern or intent its message quotes."""
    own = re.match(r"(\d+):\s*(.*)", message)
    if own:
        return int(own[1]), own[2]
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1, message
    quoted = []
    for key, items in (document.items() if isinstance(document, dict) else ()):
        quoted += [(repr(str(item)), str(item)) for item in (items if isinstance(items, list) else [])]
        quoted.append((repr(str(key)), f"{key}:"))
    lines = text.split("\n")
    for shown, written in sorted(quoted, key=lambda q: -len(q[0])):
        if shown in message:
            for number, line in enumerate(lines, 1):
                if written in line and not line.lstrip().startswith("#"):
                    return number, message
    return 1, message


def _in_order(problems: list[Problem]) -> list[Problem]:
    """By file, then line, as an editor walks through them."""
    return sorted(problems, key=lambda p: (p.path, p.line or 0))


def read_document(text: str, path: str):
    """A rule file's YAML with line numbers; what cannot be read raised with its code."""
    try:
        document = read_rule_yaml(text, path)
    except RuleCheckError:
        raise
    except RuleFileError as error:
        raise RuleCheckError(_read_problem(error)) from None
    if hasattr(document, "lines"):
        # a text's placeholder is told by its own line, not only its key's
        document.source_lines = text.split("\n")
    return document


class Check:
    """The problems of a rulebook's documents, for kb.rulebook.load_rulebook: a file
    its loader refuses is reported with this check's code and suggestion for the same
    mistake, and ``enforce()`` raises the first problem the loader let through."""

    def __init__(self, documents):
        self.problems = check_documents(documents)

    @contextmanager
    def coded(self, path: str):
        try:
            yield
        except RuleCheckError:
            raise
        except RuleFileError as error:
            mine = [p for p in self.problems if p.path == path]
            same_line = [p for p in mine if p.line == error.line]
            if mine:
                raise RuleCheckError((same_line or mine)[0]) from None
            raise

    def enforce(self) -> None:
        if self.problems:
            raise RuleCheckError(self.problems[0])


def enforce(documents) -> None:
    """Raise the first problem of these documents as a RuleCheckError."""
    Check(documents).enforce()


# --- the checks ----------------------------------------------------------------------------

class _Checker:
    def __init__(self, documents):
        self.documents = list(documents)
        self.problems: list[Problem] = []
        self.path = ""

    def report(self, line, code, message, fix="") -> None:
        self.problems.append(Problem(self.path, line, code, message, fix))

    def run(self) -> list[Problem]:
        causes: dict[str, str] = {}
        symptoms: dict[str, str] = {}
        kinds = []
        self.sources = {path: getattr(document, "source_lines", None) for path, document in self.documents}
        for path, document in self.documents:
            self.path = path
            kind = self._kind(document)
            kinds.append((path, document, kind))
            key = {"cause": causes, "symptom": symptoms}.get(kind)
            if key is None:
                continue
            ident = document.get(kind)
            if isinstance(ident, str) and not _ID.match(ident):
                self.report(_line(document, kind), "SD106", f"{kind} id {ident!r} is not "
                            "lower-case letters, digits and -", f"write it like 'broker-address-wrong'")
            elif isinstance(ident, str) and ident in key:
                self.report(_line(document, kind), "SD107", f"{kind} {ident!r} is also defined in "
                            f"{key[ident]}", "rename one, or merge the two files")
            elif isinstance(ident, str):
                key[ident] = path
            else:
                self.report(_line(document, kind), "SD105", f"'{kind}:' is an id (text)",
                            f"write it like '{kind}: broker-address-wrong'")
        self.causes, self.symptoms = causes, symptoms
        self.schema = self._schema(kinds)
        for path, document, kind in kinds:
            self.path = path
            if kind == "cause":
                self._cause(document)
            elif kind == "infer":
                self._inferences(document)
            elif kind == "symptom":
                self._symptom(document)
            elif kind == "collect":
                self._collect()
        # a confirmation is checked once per case: say each problem once
        return list(dict.fromkeys(self.problems))

    def _kind(self, document):
        if not isinstance(document, dict):
            self.report(1, "SD102", "a rule file is a mapping",
                        "start it with 'cause: <id>', 'infer:' or 'symptom: <id>'")
            return None
        for kind in ("infer", "cause", "symptom", "collect"):
            if kind in document:
                return kind
        kinds = ["cause", "infer", "symptom"]
        close = [k for k in document if difflib.get_close_matches(str(k), kinds, 1, 0.6)]
        fix = suggest(close[0], kinds) if close else \
            "start it with 'cause: <id>', 'infer:' or 'symptom: <id>'"
        self.report(_line(document, close[0]) if close else _line(document), "SD102",
                    "a rule file needs 'cause:', 'infer:' or 'symptom:'", fix)
        return None

    def _collect(self) -> None:
        # rules/collect.yaml says what collectors run; their own loader knows its shape
        from collectors.knowledge import KnowledgeError, load_collect_file
        try:
            load_collect_file(Path(self.path))
        except KnowledgeError as error:
            self.report(error.line or 1, "SD108", error.message,
                        "see the header of the shipped rules/collect.yaml for its shape")

    def _schema(self, kinds) -> Schema:
        conclusions = []
        for path, document, kind in kinds:
            if kind != "infer" or not isinstance(document.get("infer"), list):
                continue
            for rule in document["infer"]:
                if not isinstance(rule, dict):
                    continue
                conclude = rule.get("conclude")
                if not isinstance(conclude, dict) or not isinstance(conclude.get("type"), str):
                    continue
                produced = module_schema().types.get(conclude["type"])
                if produced is not None:
                    self.path = path
                    self.report(_line(conclude, "type") or _line(rule, "conclude"), "SD207",
                                f"{conclude['type']!r} is a fact the code produces "
                                f"({', '.join(produced.declared_in)}); a rule cannot conclude it",
                                "give the conclusion a type of its own, e.g. "
                                f"{conclude['type']}_inferred")
                    continue
                conclusions.append((conclude["type"], dict(conclude), str(rule.get("name", "")),
                                    f"{path}:{_line(rule, 'conclude')}"))
        return module_schema().with_conclusions(conclusions)

    # --- generic shapes ---------------------------------------------------------------

    def _keys(self, mapping, known, where: str) -> None:
        for key in mapping:
            if key not in known:
                self.report(_line(mapping, key), "SD103", f"unknown key {key!r} {where}",
                            suggest(key, known))

    def _text(self, value, line, what: str) -> bool:
        if isinstance(value, str):
            return True
        self.report(line, "SD105", f"{what} must be text, not {type(value).__name__}",
                    "put it in quotes")
        return False

    def _list(self, value, line, what: str, example: str) -> list:
        if isinstance(value, list):
            return value
        self.report(line, "SD105", f"{what} is a list", f"write it like {example}")
        return []

    # --- cause files ------------------------------------------------------------------

    def _cause(self, doc) -> None:
        self._keys(doc, CAUSE_KEYS, "in a cause file")
        if "when" in doc and "cases" in doc:
            self.report(_line(doc, "cases"), "SD104", "give either 'when:' or 'cases:', not both",
                        "move the 'when:' into the list of cases")
        elif "when" not in doc and "cases" not in doc:
            self.report(_line(doc, "cause"), "SD104", "a cause needs 'when:' (or 'cases:')",
                        "add 'when:' with the facts that make the cause")
        bases = []   # (case mapping, bound names -> types)
        if "when" in doc:
            bases.append((doc, self._patterns(doc["when"], {}, _line(doc, "when"))))
        if "cases" in doc:
            for case in self._list(doc["cases"], _line(doc, "cases"), "'cases:'", "[{when: ...}, ...]"):
                if not isinstance(case, dict):
                    self.report(_line(doc, "cases"), "SD105", "each case is a mapping with 'when:'",
                                "write '- when: {...}'")
                    continue
                self._keys(case, CASE_KEYS, "in a case")
                if "when" not in case:
                    self.report(_line(case), "SD104", "each case needs 'when:'", "add the facts that make it")
                    continue
                bases.append((case, self._patterns(case["when"], {}, _line(case, "when"))))
        for case, bound in bases:
            self._case(doc, case, bound)
        for confirmation in self._list(doc.get("confirmed_by") or [], _line(doc, "confirmed_by"),
                                       "'confirmed_by:'", "[{seen: {type: packet, node: $x.node}}]"):
            if not isinstance(confirmation, dict):
                self.report(_line(doc, "confirmed_by"), "SD105",
                            "each confirmation is a mapping of names to patterns", "write it like 'when:'")
                continue
            for _, bound in bases:
                self._patterns(confirmation, dict(bound), _line(confirmation), continues=True)
        # observations that outrank the cause (kb/rulebook.py): joined like confirmations
        example = "[{seen: {type: reachability, target: $x.address, outcome: answered}}]"
        for case, bound in bases:
            holders = [doc] + ([case] if case is not doc else [])
            items = [(holder, item) for holder in holders for item in self._list(
                holder.get("unless") or [], _line(holder, "unless"), "'unless:'", example)]
            for holder, item in items:
                if not isinstance(item, dict):
                    self.report(_line(holder, "unless"), "SD105", "each 'unless:' item is a mapping "
                                "of names to patterns", "write it like 'when:'")
                    continue
                self._patterns(item, dict(bound), _line(item), continues=True)
        everywhere = _common(bound for _, bound in bases)
        hints = doc.get("hints")
        if not isinstance(hints, list) or len(hints) < 3:
            self.report(_line(doc, "hints") or _line(doc, "cause"), "SD312",
                        "'hints:' must be a ladder of at least three hints",
                        "a question that points where to look, a nudge that names what to "
                        "compare, the bottom-out answer")
        for hint in hints if isinstance(hints, list) else []:
            self._template(hint, everywhere, _line(doc, "hints"), "a hint")
        self._questions(doc, everywhere)
        for symptom in self._list(doc.get("symptoms") or [], _line(doc, "symptoms"), "'symptoms:'",
                                  "[vm-cannot-reach-internet]"):
            if not _known(symptom, self.symptoms):
                self.report(_line(doc, "symptoms"), "SD502", f"no symptom file defines {symptom!r}",
                            suggest(symptom, self.symptoms))
        self._examples(doc)

    def _case(self, doc, case, bound) -> None:
        def get(key):
            return case[key] if key in case else doc.get(key)

        def line(key):
            return _line(case, key) if key in case else _line(doc, key)

        for key in ("title", "explanation", "fix"):
            if get(key) is None:
                self.report(line("when") or _line(doc), "SD104", f"a cause needs '{key}:'",
                            f"add '{key}:' (for each case, or once for all)")
        status = get("status") or "established"
        if status not in STATUSES:
            self.report(line("status"), "SD310", f"status {status!r} is not established or possible",
                        suggest(status, STATUSES))
        if status == "possible" and not get("decide_by"):
            self.report(line("status"), "SD311", "a possible cause must say what decides it",
                        "add 'decide_by:', the checks that tell it from the causes it looks like")
        for key in ("title", "node", "service", "explanation", "fix", "decide_by"):
            value = get(key)
            for item in (value if isinstance(value, list) else [value]):
                if item is not None:
                    self._template(item, bound, line(key), f"'{key}:'")
        evidence = get("evidence")
        for name in evidence if isinstance(evidence, list) else []:
            if not _known(name, bound):
                self.report(line("evidence"), "SD303", f"evidence names {name!r}, which 'when:' "
                            "does not bind", suggest(name, bound))

    def _questions(self, doc, bound) -> None:
        for question in self._list(doc.get("questions") or [], _line(doc, "questions"),
                                   "'questions:'", "[{ask: ..., expect: [...]}]"):
            if not isinstance(question, dict):
                self.report(_line(doc, "questions"), "SD105", "each question is a mapping",
                            "give 'ask:' and 'expect:'")
                continue
            self._keys(question, QUESTION_KEYS, "in a question")
            for key in ("ask", "expect"):
                if key not in question:
                    self.report(_line(question), "SD104", f"a question needs '{key}:'",
                                "'ask:' the question, 'expect:' the values a right answer names")
            items = question.get("expect")
            for item in items if isinstance(items, list) else [items] if items is not None else []:
                if isinstance(item, dict):
                    self._keys(item, {"value", "missing"}, "in an expected value")
                    for key in ("value", "missing"):
                        if key in item:
                            self._template(item[key], bound, _line(item, key), f"'{key}:'")
                else:
                    self._template(item, bound, _line(question, "expect"), "an expected value")
            for key in ("ask", "partial", "wrong"):
                if question.get(key) is not None:
                    self._template(question[key], bound, _line(question, key), f"'{key}:'")

    def _examples(self, doc) -> None:
        folder = Path(self.path).parent
        for example in self._list(doc.get("examples") or [], _line(doc, "examples"), "'examples:'",
                                  "[{evidence: ../examples/x.txt, expect: [...]}]"):
            if not isinstance(example, dict):
                self.report(_line(doc, "examples"), "SD105", "each example is a mapping",
                            "give 'evidence:' and 'expect:'")
                continue
            self._keys(example, EXAMPLE_KEYS, "in an example")
            for key in ("evidence", "expect"):
                if key not in example:
                    self.report(_line(example), "SD104", f"an example needs '{key}:'",
                                "'evidence:' a file beside the rules, 'expect:' the causes it shows")
            evidence = example.get("evidence")
            for given in evidence if isinstance(evidence, list) else [evidence] if evidence else []:
                if not isinstance(given, str):
                    self.report(_line(example, "evidence"), "SD105", "'evidence:' is a path (text)",
                                "write it relative to this file, e.g. ../examples/x.txt")
                    continue
                target = folder / given
                if not target.exists():
                    siblings = [str(Path(given).parent / p.name) for p in target.parent.glob("*")] \
                        if target.parent.is_dir() else []
                    self.report(_line(example, "evidence"), "SD400",
                                f"example evidence {given!r} does not exist (looked in {target.parent})",
                                suggest(given, siblings) if siblings else
                                "copy the capture there, or fix the path (relative to this file)")
            for key in ("expect", "expect_not"):
                items = example.get(key)
                if items is None:
                    continue
                for item in self._list(items, _line(example, key), f"'{key}:'",
                                       "[{cause: my-cause, status: established}]"):
                    self._expectation(item, _line(example, key), key)
            if "kind" in example:
                self._example_kind(example, doc.get("cause"))

    def _example_kind(self, example, cause) -> None:
        kind, line = example["kind"], _line(example, "kind")
        if kind not in EXAMPLE_KINDS:
            self.report(line, "SD403", f"example kind {kind!r} is not positive, healthy or lookalike",
                        suggest(kind, EXAMPLE_KINDS) if isinstance(kind, str) else
                        "positive (shows the cause), healthy (gives nothing), lookalike (must not give it)")
            return
        expected, ruled_out = _example_causes(example, "expect"), _example_causes(example, "expect_not")
        if kind == "positive" and cause not in expected:
            self.report(line, "SD404", f"a positive example must expect its own cause {cause!r}",
                        f"add {{cause: {cause}, status: ..., node: ...}} to 'expect:', or give another kind")
        elif kind == "healthy" and (expected or cause not in ruled_out):
            self.report(line, "SD404", "a healthy example expects nothing and rules its cause out",
                        f"write 'expect: []' and 'expect_not: [{cause}]'")
        elif kind == "lookalike" and cause not in ruled_out:
            self.report(line, "SD404", f"a lookalike example must rule its cause {cause!r} out",
                        f"add {cause} to 'expect_not:', and to 'expect:' what the evidence does show")

    def _expectation(self, item, line, key) -> None:
        if isinstance(item, dict):
            line = _line(item) or line
            self._keys(item, EXPECTATION_KEYS, f"in '{key}:'")
            cause = item.get("cause")
            status = item.get("status")
            if cause is None:
                self.report(line, "SD104", "an expected finding needs 'cause:'",
                            "write it like {cause: my-cause, status: established}")
            if status is not None and status not in STATUSES:
                self.report(_line(item, "status") or line, "SD402",
                            f"expected status {status!r} is not established or possible",
                            suggest(status, STATUSES))
        else:
            cause = item
        if cause is not None and not _known(cause, self.causes):
            self.report(line, "SD401", f"no cause file defines {cause!r}", suggest(cause, self.causes))

    # --- inference files --------------------------------------------------------------

    def _inferences(self, doc) -> None:
        self._keys(doc, {"infer"}, "in an inference file")
        for rule in self._list(doc["infer"], _line(doc, "infer"), "'infer:'", "[{name: ..., when: ...}]"):
            if not isinstance(rule, dict):
                self.report(_line(doc, "infer"), "SD105", "each inference is a mapping",
                            "give 'name:', 'when:', 'conclude:' and 'because:'")
                continue
            self._keys(rule, INFER_KEYS, "in an inference")
            for key in sorted(INFER_KEYS - set(rule)):
                self.report(_line(rule), "SD104", f"an inference needs '{key}:'",
                            "give 'name:', 'when:', 'conclude:' and 'because:'")
            bound = self._patterns(rule["when"], {}, _line(rule, "when")) if "when" in rule else {}
            conclude = rule.get("conclude")
            if conclude is not None and (not isinstance(conclude, dict) or "type" not in conclude):
                self.report(_line(rule, "conclude"), "SD104", "'conclude:' needs a 'type:'",
                            "write it like {type: gateway_of, node: $owner.node}")
            elif isinstance(conclude, dict):
                for key, value in conclude.items():
                    if key in {"id", "sid"} or str(key).startswith("$"):
                        self.report(_line(conclude, key), "SD206", f"{key!r} is the engine's own key",
                                    "name the field otherwise")
                    elif key != "type":
                        self._value(value, bound, _line(conclude, key))
            if "because" in rule:
                self._template(rule["because"], bound, _line(rule, "because"), "'because:'")

    def _value(self, value, bound, line) -> None:
        if isinstance(value, str) and value.startswith("$"):
            self._reference(value, bound, line)
        elif isinstance(value, str):
            self._template(value, bound, line, "a value")

    # --- patterns -----------------------------------------------------------------------

    def _patterns(self, when, bound: dict, line, continues: bool = False) -> dict:
        """Check a ``when:`` mapping; the names it binds (to their fact type, or None
        when the type is unknown) added to ``bound``."""
        if not isinstance(when, dict) or not when:
            self.report(line, "SD105", "'when:' is a mapping of names to fact patterns",
                        "write it like {route: {type: default_route}}")
            return _Unchecked()
        bound = dict(bound)
        first = not continues
        taken = set(bound)
        for raw_name, body in when.items():
            key_line = _line(when, raw_name) or line
            name = str(raw_name)
            negated = name.startswith("no ")
            if negated:
                name = name[3:].strip()
            if not _NAME.match(name) or name in RESERVED_NAMES:
                self.report(key_line, "SD205", f"{raw_name!r} is not a usable name",
                            "use lower-case letters, digits and _ (not 's', 'm' or 'evidence_in')")
            elif name in taken:
                self.report(key_line, "SD205", f"the name {name!r} is bound twice",
                            "give the second pattern another name")
            elif negated and first:
                self.report(key_line, "SD205", "an absence ('no ...') cannot come first",
                            "put a pattern that binds a fact before it")
            taken.add(name)
            if not isinstance(body, dict) or "type" not in body:
                self.report(key_line, "SD104", f"pattern {name!r} needs a 'type:'",
                            "write it like {type: route, dev: eth0}")
                first = False
                continue
            fact_type = body["type"]
            known = isinstance(fact_type, str) and fact_type in self.schema
            if not known:
                self.report(_line(body, "type") or key_line, "SD200", f"unknown fact type {fact_type!r}",
                            suggest(fact_type, self.schema.names()) + " (see rules/FACTS.md)")
            joined = False
            for fld, condition in body.items():
                fld_line = _line(body, fld) or key_line
                if fld == "type":
                    continue
                if fld in {"id", "sid"} or str(fld).startswith("$"):
                    self.report(fld_line, "SD206", f"{fld!r} is the engine's own key",
                                "facts carry 'fact_id'; match on another field")
                    continue
                if known and fld not in self.schema.fields(fact_type):
                    self.report(fld_line, "SD201", f"{fact_type} has no field {fld!r}",
                                suggest(fld, self.schema.fields(fact_type)))
                joined |= self._condition(str(fld), condition, bound, fld_line)
            if not first and not joined:
                self.report(key_line, "SD204", f"pattern {name!r} is not joined to an earlier one "
                            "by an equality", "add e.g. node: $first.node (unjoined patterns grow "
                            "quadratically and the engine drops activations on them)")
            if not negated:
                bound[name] = fact_type if known else None
            first = False
        return bound

    def _condition(self, fld: str, condition, bound, line) -> bool:
        """Check one field's condition; True when it is an equality join."""
        if isinstance(condition, list):
            self.report(line, "SD203", f"{fld}: a list is not a condition",
                        "test one value, or use {matches: 'a|b'}")
            return False
        if not isinstance(condition, dict):
            if isinstance(condition, str) and condition.startswith("$"):
                return self._reference(condition, bound, line)
            return False
        if len(condition) != 1:
            self.report(line, "SD203", f"{fld}: one operator per field", "write e.g. {not: X}")
            return False
        (operator, operand), = condition.items()
        if operator == "exists":
            return False
        if operator not in OPERATORS:
            self.report(line, "SD203", f"{fld}: unknown operator {operator!r}",
                        suggest(operator, list(OPERATORS) + ["exists"]))
            return False
        if operator == "matches":
            if not isinstance(operand, str):
                self.report(line, "SD203", f"{fld}: 'matches' takes a regular expression (text)",
                            "quote it")
                return False
            try:
                re.compile(operand)
            except re.error as error:
                self.report(line, "SD203", f"{fld}: bad regular expression: {error}",
                            "escape the special character, or close the bracket")
                return False
            shorthand = _SHORTHAND.search(operand)
            if shorthand:
                self.report(line, "SD203", f"{fld}: the engine's regular expressions do not know "
                            f"{shorthand.group(0)}", "write a class like [0-9] or [a-z]; the whole "
                            "value must match, so wrap with .*")
            return False
        if isinstance(operand, (dict, list)):
            what = f"{{{next(iter(operand), '')}: ...}}" if isinstance(operand, dict) else "a list"
            self.report(line, "SD203", f"{fld}: {operator!r} compares with a value or $name.field, "
                        f"not with {what}",
                        f"say the absence instead: no other: {{type: ..., {fld}: {{matches: ...}}}} "
                        "joined to this pattern")
            return False
        if isinstance(operand, str) and operand.startswith("$"):
            self._reference(operand, bound, line)
        return False

    def _reference(self, value: str, bound, line) -> bool:
        match = _REFERENCE.match(value)
        if not match:
            self.report(line, "SD202", f"{value!r} is not a reference", "write $name.field")
            return False
        name, fld = match.groups()
        if name not in bound:
            self.report(line, "SD202", f"{value!r}: {name!r} is not bound before this pattern",
                        suggest(name, bound) if bound else "bind it in an earlier pattern")
            return True   # meant as a join: one problem is enough
        fact_type = bound[name]
        if fact_type is not None and fld not in self.schema.fields(fact_type):
            self.report(line, "SD201", f"{value!r}: {fact_type} has no field {fld!r}",
                        suggest(fld, self.schema.fields(fact_type)))
        return True

    # --- templates ----------------------------------------------------------------------

    def _template(self, template, bound, line, what: str) -> None:
        if not self._text(template, line, what):
            return
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as error:
            self.report(line, "SD302", f"{what}: bad template: {error}",
                        "write {name.field}, and {{ or }} for a brace itself")
            return
        for _, field_name, _, _ in parts:
            if field_name is None:
                continue
            line = self._line_of("{" + field_name + "}", line)
            name, _, attribute = field_name.partition(".")
            if name not in bound:
                self.report(line, "SD300", f"{{{field_name}}} in {what}: {name!r} is not bound here",
                            suggest(name, bound) if bound else "bind it in 'when:'")
            elif not attribute or attribute.startswith("_") or "." in attribute:
                self.report(line, "SD302", f"{{{field_name}}} in {what} is not {{name.field}}",
                            f"write e.g. {{{name}.node}}")
            elif bound[name] is not None and attribute not in self.schema.fields(bound[name]):
                self.report(line, "SD301", f"{{{field_name}}} in {what}: {bound[name]} has no "
                            f"field {attribute!r}", suggest(attribute, self.schema.fields(bound[name])))

    def _line_of(self, needle: str, line):
        """The line, at or after the key's, where a placeholder is written (a text may
        run over many lines; a placeholder holds no blank, so YAML never breaks it)."""
        lines = self.sources.get(self.path)
        if not lines or not line:
            return line
        for number in range(line, min(len(lines), line + 200) + 1):
            if needle in lines[number - 1]:
                return number
        return line

    # --- symptom files ------------------------------------------------------------------

    def _symptom(self, doc) -> None:
        self._keys(doc, SYMPTOM_KEYS, "in a symptom file")
        steps = doc.get("steps")
        if not isinstance(steps, dict):
            self.report(_line(doc, "steps") or _line(doc), "SD105",
                        "'steps:' maps step ids to the evidence to ask for",
                        "see tutor/symptoms.py for a step's keys")
            steps = {}
        for step_id, step in steps.items():
            if not isinstance(step, dict):
                continue
            self._keys(step, STEP_KEYS, f"in step {step_id!r}")
            for item in self._list(step.get("gathered") or [], _line(step, "gathered"), "'gathered:'",
                                   "[{fact: packet}]"):
                if isinstance(item, dict):
                    self._gathered(item, _line(item) or _line(step, "gathered"))
        for route in self._list(doc.get("causes") or [], _line(doc, "causes"), "'causes:'",
                                "[{cause: my-cause, route: [step]}]"):
            if not isinstance(route, dict):
                continue
            self._keys(route, CAUSE_ROUTE_KEYS, "in a cause's route")
            cause = route.get("cause")
            if cause is not None and not _known(cause, self.causes):
                self.report(_line(route, "cause"), "SD500", f"no cause file defines {cause!r}",
                            suggest(cause, self.causes))
            for step_id in route.get("route") if isinstance(route.get("route"), list) else []:
                if not _known(step_id, steps):
                    self.report(_line(route, "route"), "SD501", f"route names step {step_id!r}, "
                                "which 'steps:' does not define", suggest(step_id, steps))
        for concept in doc.get("concepts") or [] if isinstance(doc.get("concepts"), list) else []:
            if isinstance(concept, dict):
                self._keys(concept, CONCEPT_KEYS, "in a concept")

    def _gathered(self, item, line) -> None:
        self._keys(item, GATHERED_KEYS, "in 'gathered:'")
        fact_type = item.get("fact")
        if fact_type is None:
            return
        if fact_type not in self.schema:
            self.report(_line(item, "fact") or line, "SD200", f"unknown fact type {fact_type!r}",
                        suggest(fact_type, self.schema.names()) + " (see rules/FACTS.md)")
            return
        where = item.get("where") or {}
        for fld in where if isinstance(where, dict) else []:
            if fld not in self.schema.fields(fact_type):
                self.report(_line(where, fld) or line, "SD201", f"{fact_type} has no field {fld!r}",
                            suggest(fld, self.schema.fields(fact_type)))


def _example_causes(example, key) -> set[str]:
    """The cause ids an example's 'expect:' or 'expect_not:' names (what is not an id is
    reported by the expectation checks)."""
    items = example.get(key)
    named = (item.get("cause") if isinstance(item, dict) else item
             for item in (items if isinstance(items, list) else []))
    return {cause for cause in named if isinstance(cause, str)}


def _known(value, names) -> bool:
    """Whether a value written in a file is one of these names (a list or a mapping,
    where an id belongs, is not)."""
    return isinstance(value, (str, int, float, bool)) and value in names


class _Unchecked(dict):
    """The names of a 'when:' that could not be read: any name may be bound, so the
    texts over it are not reported on top of the one problem."""

    def __contains__(self, name) -> bool:
        return True

    def __getitem__(self, name):
        return None


def _common(bound_sets) -> dict:
    """The names bound in every case (hints and questions are shown for any of them)."""
    sets = list(bound_sets)
    if not sets:
        return {}
    if any(isinstance(b, _Unchecked) for b in sets):
        return _Unchecked()
    names = set.intersection(*[set(b) for b in sets])
    return {name: sets[0][name] for name in names}
