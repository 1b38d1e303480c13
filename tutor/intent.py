"""What a student's message asks for: a hint, why, the solution, or none of these.

The three words always work, and so do the ways people say them ("give me a hint",
"why are you asking that?", "just tell me the answer"). A message that starts like a
question about the lab ("why can't my VM ping google?") is not a request for "why".
"""
from __future__ import annotations

import re

HINT, WHY, HOW, SOLUTION = "hint", "why", "how", "solution"

_PATTERNS = {
    SOLUTION: re.compile(
        r"^\s*(solution|answer|give up|i give up|(just )?(tell|show|give) me (the )?(answer|solution|fix|cause)"
        r"|what('?s| is) the (answer|solution|fix|cause)|reveal( it| the answer)?|spoil(er)? it"
        r"|i('m| am) stuck,? (just )?tell me.*)\s*[.!?]*\s*$", re.IGNORECASE),
    HINT: re.compile(
        r"^\s*(hint|another hint|more hint|next hint|a hint|clue|help|help me|i'?m stuck|stuck"
        r"|(can|could) (you|i) (have|get|give me) (a |another )?(hint|clue)|give me (a |another )?(hint|clue)"
        r"|(i )?need (a |another )?(hint|clue)|any (hints?|clues?)|what should i (do|look at|try)( next)?)"
        r"\s*(please)?\s*[.!?]*\s*$", re.IGNORECASE),
    HOW: re.compile(
        r"^\s*(how|how so|how come|how do you know[^\n]*|how does (that|this|it) follow[^\n]*"
        r"|how did you (get|conclude|find)[^\n]*|explain your reasoning|show (me )?(the|your) reasoning)"
        r"\s*[.!?]*\s*$", re.IGNORECASE),
    WHY: re.compile(
        r"^\s*(why|why\?|explain|why that|why this|why\s+(are|do|did|would|should)\s+you"
        r"( need| want)?( to)? (ask(ing)?|need|want|run|check)[^\n]*|why (does|is) (that|this|it) (matter|important|relevant)[^\n]*"
        r"|why is that|why does that matter|what for"
        r"|why do i need (that|this|to)[^\n]*|explain (why|that|this|your reasoning)[^\n]*|what('?s| is) the reason[^\n]*)"
        r"\s*[.!?]*\s*$", re.IGNORECASE),
}


def control_word(text: str) -> str | None:
    """``hint``, ``why``, ``how`` (how does a conclusion follow) or ``solution`` when the
    message asks for one, else None."""
    if len(text) > 120:
        return None
    for intent in (SOLUTION, HINT, HOW, WHY):
        if _PATTERNS[intent].match(text):
            return intent
    return None


def mentions(text: str, value: str) -> bool:
    """Does the text name the value as a word (``eth0`` is not named by ``eth01``)?"""
    if not value:
        return False
    return re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w])", text, re.IGNORECASE) is not None


def named_by(text: str, groups: list[list[str]], expected: list[str]) -> bool:
    """Does the text match every term of one group? ``{expected}`` is any expected value."""
    for group in groups:
        ok = True
        for term in group:
            if term == "{expected}":
                ok = any(mentions(text, value) for value in expected)
            else:
                ok = re.search(term, text, re.IGNORECASE) is not None
            if not ok:
                break
        if ok:
            return True
    return False
