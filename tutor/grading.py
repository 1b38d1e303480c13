"""Whether an answer states what the evidence holds, by meaning rather than keywords.

A cause's question (its rule file's ``questions:``) lists the values a right answer
names, in the order the question asks for them: "Which interface must a packet leave
by for the SNAT rule to apply, *and* which interface does the default route use?"
expects the SNAT rule's interface first and the route's second. An answer is right when
it names every expected value *and* puts none of them with the wrong part of the
question: "the snat rule wants ens3 but the default route uses ens4" (in a lab where it is
the other way round) names both interfaces, swapped, and is wrong.

Which part a value is put with is read from the words around it: each part of the
question has its own words ("snat", "rule" ... / "default", "route" ...), and a value
goes with the part whose words are nearest to it in the same clause of the answer.
Where the answer gives no such words, nothing is held against it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tutor.intent import mentions

_ASK_PARTS = re.compile(r",?\s+and\s+(?=which|what|where|how|on which|out of which)|;\s*", re.IGNORECASE)
_CLAUSES = re.compile(r"\b(?:but|while|whereas|however|although|though|yet)\b|[;,.!?]|\band\b",
                      re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9_.:/-]*", re.IGNORECASE)
_STOP = set("""a an the and or of to for by on in at it its is are be which what where how does do
must would should could from with out into this that there their them they packet packets
not no any one other""".split())
_STEM = 4


@dataclass
class Judgement:
    named: list[str]                    # the expected values the answer names
    expected: list[str]
    swapped: list[str] = field(default_factory=list)   # named, but with the wrong part

    @property
    def right(self) -> bool:
        return bool(self.expected) and len(self.named) == len(self.expected) and not self.swapped

    @property
    def missing(self) -> list[str]:
        return [v for v in self.expected if v not in self.named]


def _stem(word: str) -> str:
    return word.lower()[:_STEM]


def _anchors(ask: str, expected: list[str]) -> list[set[str]] | None:
    """The words of each part of the question that no other part has."""
    parts = [p for p in _ASK_PARTS.split(ask) if p.strip()]
    if len(parts) != len(expected) or len(parts) < 2:
        return None
    values = {v.lower() for v in expected}
    words = [{_stem(w) for w in _WORD.findall(p) if w.lower() not in _STOP and w.lower() not in values
              and len(w) > 2} for p in parts]
    unique = [w - set().union(*(o for j, o in enumerate(words) if j != i)) for i, w in enumerate(words)]
    return unique if all(unique) else None


def judge(answer: str, question: dict, nodes: list[str] | tuple = ()) -> Judgement:
    """``nodes``: the lab's node names; a value put with a node the question does not
    ask about there ("net01 sends it out of wan0" when gw01's routes are asked) is held
    against the answer like a swapped one."""
    expected = [v for v in question.get("expect") or [] if v]
    named = [v for v in expected if mentions(answer, v)]
    judgement = Judgement(named, expected)
    ask = str(question.get("ask") or "")
    parts = [p for p in _ASK_PARTS.split(ask) if p.strip()]
    if len(parts) == len(expected) and nodes:
        for clause in _CLAUSES.split(answer):
            for index, value in enumerate(expected):
                if not mentions(clause, value) or value in judgement.swapped:
                    continue
                asked = {n for n in nodes if mentions(parts[index], n)}
                said = {n for n in nodes if mentions(clause, n) and n != value}
                if asked and said and not said & asked:
                    judgement.swapped.append(value)
    anchors = _anchors(ask, expected)
    if anchors is None:
        return judgement
    for clause in _CLAUSES.split(answer):
        tokens = _WORD.findall(clause)
        parts_at = {}
        for i, token in enumerate(tokens):
            owners = [k for k, words in enumerate(anchors) if _stem(token) in words]
            if len(owners) == 1 and not any(token.lower() == v.lower() for v in expected):
                parts_at[i] = owners[0]
        if not parts_at:
            continue
        values_here = [(index, i) for index, value in enumerate(expected)
                       for i, token in enumerate(tokens) if token.lower().rstrip(".,") == value.lower()]
        for index, i in values_here:
            if len(values_here) == 1:
                # one value in the clause: the part most of its words speak of
                votes = [list(parts_at.values()).count(k) for k in range(len(anchors))]
                best = max(votes)
                if votes.count(best) > 1:
                    continue
                part = votes.index(best)
            else:
                before = [p for p in parts_at if p < i]
                after = [p for p in parts_at if p > i]
                part = parts_at[max(before) if before else min(after)]
            value = expected[index]
            if part != index and value not in judgement.swapped:
                judgement.swapped.append(value)
    return judgement
