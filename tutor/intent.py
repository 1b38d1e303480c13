"""What a student's message asks for, beyond evidence and answers.

The intents are data (``rules/intents.yml``): hint, why, how, the solution ("i give
up", "just tell me"), "I don't know", "I already fixed X", a correction of a node ("that
was net01"). A message that starts like a question about the lab ("why can't my VM ping
google?") is a problem described, not a request for "why".
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HINT, WHY, HOW, SOLUTION = "hint", "why", "how", "solution"
DONT_KNOW, ALREADY_FIXED, CORRECTION = "dont_know", "already_fixed", "correction"
NEW_PROBLEM = "new_problem"
INTENTS = (SOLUTION, HINT, DONT_KNOW, HOW, WHY, ALREADY_FIXED, CORRECTION)
INTENTS_FILE = Path(__file__).resolve().parent.parent / "rules" / "intents.yml"
_MAX_LENGTH = 160
_PROBLEM = re.compile(r"\b(can'?t|cannot|fails?|failing|error|doesn'?t|not working|broken|won'?t|"
                      r"unable|no (reply|response|connection|internet))\b", re.IGNORECASE)


@dataclass
class Intent:
    name: str
    groups: dict[str, str] = field(default_factory=dict)


class IntentFileError(ValueError):
    pass


@functools.lru_cache(maxsize=4)
def load_intents(path: str = str(INTENTS_FILE)) -> dict[str, list[re.Pattern]]:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise IntentFileError(f"{path}:{mark.line + 1 if mark else '?'}: not valid YAML") from None
    if not isinstance(document, dict):
        raise IntentFileError(f"{path}:1: a mapping of intent -> list of patterns")
    unknown = set(document) - set(INTENTS) - {"filler", NEW_PROBLEM}
    if unknown:
        raise IntentFileError(f"{path}: unknown intent {sorted(unknown)[0]!r}; known: {', '.join(INTENTS)}")
    patterns: dict[str, list[re.Pattern]] = {}
    for name in INTENTS:
        compiled = []
        for pattern in document.get(name) or []:
            try:
                compiled.append(re.compile(r"\s*(?:" + str(pattern) + r")\s*(?:please)?\s*[.!?]*\s*",
                                           re.IGNORECASE))
            except re.error as error:
                raise IntentFileError(f"{path}: intent {name}: bad pattern {pattern!r}: {error}") from None
        patterns[name] = compiled
    patterns[NEW_PROBLEM] = []
    for pattern in document.get(NEW_PROBLEM) or []:
        try:
            patterns[NEW_PROBLEM].append(re.compile(r"\s*(?:" + str(pattern) + r")\b", re.IGNORECASE))
        except re.error as error:
            raise IntentFileError(f"{path}: {NEW_PROBLEM}: bad pattern {pattern!r}: {error}") from None
    words = "|".join(re.escape(str(w)) for w in document.get("filler") or [])
    patterns["filler"] = [re.compile(rf"^\s*(?:(?:{words})\b[\s,.!]*)+", re.IGNORECASE),
                          re.compile(rf"(?:[\s,.!]+(?:{words}))+[\s.!?]*$", re.IGNORECASE)] if words else []
    return patterns


def intents_file_of(rulebook) -> str:
    """The intents file beside the rules (``--rules DIR``: DIR/intents.yml), else the shipped one."""
    for folder in getattr(rulebook, "folders", ()):
        if (Path(folder) / INTENTS_FILE.name).is_file():
            return str(Path(folder) / INTENTS_FILE.name)
    return str(INTENTS_FILE)


def read_intent(text: str, intents_file: str = str(INTENTS_FILE)) -> Intent | None:
    """The intent of a short message, or None (evidence, an answer, a problem described)."""
    text = text.strip()
    if not text or len(text) > _MAX_LENGTH or "\n" in text:
        return None
    loaded = load_intents(intents_file)
    variants = [text]
    for filler in loaded["filler"]:
        variants += [filler.sub("", v).strip() for v in variants]
    variants = [v for v in dict.fromkeys(variants) if v]
    for name in INTENTS:
        for pattern in loaded[name]:
            match = next((m for m in (pattern.fullmatch(v) for v in variants) if m), None)
            if match:
                if name == WHY and _PROBLEM.search(text):
                    return None      # "why can't my VM ping google?" describes the problem
                return Intent(name, {k: v for k, v in match.groupdict().items() if v})
    return None


def starts_new_problem(text: str, intents_file: str = str(INTENTS_FILE)) -> bool:
    """Does the message start by saying it is about another problem?"""
    return any(p.match(text) for p in load_intents(intents_file)[NEW_PROBLEM])


def control_word(text: str) -> str | None:
    """``hint``, ``why``, ``how`` or ``solution`` when the message asks for one, else None."""
    found = read_intent(text)
    return found.name if found and found.name in (HINT, WHY, HOW, SOLUTION) else None


def mentions(text: str, value: str) -> bool:
    """Does the text name the value as a word (``ens3`` is not named by ``ens31``)?"""
    if not value:
        return False
    return re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w])", text, re.IGNORECASE) is not None


def named_by(text: str, groups: list[list[str]], expected: list[str]) -> bool:
    """Does the text match every term of one group? ``{expected}`` is any expected value,
    named somewhere the group's other terms did not already match ("forward" alone does
    not both name the FORWARD chain and the expected value "forward")."""
    for group in groups:
        spans = []
        ok = True
        for term in group:
            if term == "{expected}":
                continue
            match = re.search(term, text, re.IGNORECASE)
            if match is None:
                ok = False
                break
            spans.append(match.span())
        if ok and "{expected}" in group:
            ok = any(_named_outside(text, value, spans) for value in expected)
        if ok:
            return True
    return False


def _named_outside(text: str, value: str, spans: list[tuple[int, int]]) -> bool:
    if not value:
        return False
    for match in re.finditer(r"(?<![\w.])" + re.escape(value) + r"(?![\w])", text, re.IGNORECASE):
        if not any(start < match.end() and match.start() < end for start, end in spans):
            return True
    return False
