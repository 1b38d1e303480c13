"""Which symptom a student describes: SQLite FTS5 (through sqlite-utils) over the
phrasings of the symptom files, words stemmed (porter) so "pinging" finds "ping".

Words alone cannot tell "vm01 can't reach anything outside" from "nothing outside can
reach vm01": both are about a VM, reaching and the outside. What tells them apart is the
direction — does the traffic start at the instance, or end there? `direction_of` reads
it from how the sentence places the instance (subject or object, "from" or "to") and
from direction words ("outbound", "incoming"). Each symptom's own direction is read the
same way from its phrasings (the data): a symptom whose phrasings mostly say "from the
VM outwards" is an outward symptom. A description whose direction is clear is matched
first to the symptoms going its way.

The index is built in memory once per set of symptoms; a search is one query.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter

import sqlite_utils

# Words that say nothing about which problem it is.
_STOP = {"a", "an", "the", "my", "i", "me", "we", "our", "is", "are", "was", "be", "to", "of",
         "on", "in", "it", "its", "and", "or", "why", "what", "how", "can", "cant", "can't",
         "cannot", "not", "no", "does", "doesn't", "dont", "don't", "do", "t", "s", "this",
         "that", "with", "from", "for", "at", "by", "when", "i'm", "im", "get", "have", "has",
         "help", "please", "hi", "hello", "there", "some", "any", "work", "working", "wont", "won't"}
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.IGNORECASE)

OUT, IN = "out", "in"

# The instance, however it is called: "vm", "instances", "vm01", "test-vm", "guest".
_INSTANCE = re.compile(r"^(?:vms?|vm[-_]?\d[\w-]*|[\w-]+-vms?\d*|instances?|guests?|virtual|floating)$")
# The far end seen from the instance: the internet, or a machine outside the cloud.
_OUTSIDE = re.compile(r"^(?:outside|internet|google|www\.[\w.-]+|external|world|laptop|desktop|"
                      r"workstation|physical|anything|nothing|everything|\d+\.\d+\.\d+\.\d+)$")
# Words that may stand between a preposition or verb and what it governs.
_DETERMINERS = {"my", "the", "a", "an", "our", "this", "that", "its", "any", "each", "of", "machine",
                "new", "own"}
# Before a place: where traffic starts, or where it goes.
_FROM = {"from", "inside", "within", "in", "out"}
_TO = {"to", "into", "onto", "towards", "toward", "reach", "reaching", "reached", "ping", "pinging",
       "pinged", "ssh", "sshing", "connect", "connecting", "access", "accessing", "contact", "hit",
       "curl", "nc", "telnet", "see"}
# Verbs whose subject is where traffic starts ("my vm can't ping google").
_ACTS = {"reach", "ping", "pings", "pinging", "connect", "connects", "access", "get", "gets", "talk",
         "talks", "resolve", "resolves", "download", "downloads", "browse", "send", "sends", "curl",
         "wget", "contact", "see", "sees", "update", "install", "fetch", "has", "have"}
# Words saying the subject is where traffic ends ("vm01 is unreachable", "doesn't answer").
_PASSIVE = {"unreachable", "reachable", "accessible", "inaccessible", "pingable", "unpingable",
            "answer", "answers", "respond", "responds", "reply", "replies"}
# Direction words, whatever they qualify.
_OUTWARD = {"outbound", "outgoing", "egress", "outward", "outwards"}
_INWARD = {"inbound", "incoming", "ingress", "inward", "inwards"}
# "out" is a direction after a verb of motion ("get out", "ping out"), not in "times out".
_MOTION = {"get", "gets", "getting", "go", "goes", "going", "ping", "pinging", "send", "sending",
           "talk", "talking", "reach", "connect", "route", "routed", "browse", "through"}


def direction_of(text: str) -> str | None:
    """OUT when the text has traffic start at the instance, IN when it ends there, None
    when it does not say (or says both alike)."""
    votes = Counter()
    for clause in re.split(r"[,;:.!?()\n]+|\b(?:but|and|while|when|because|so)\b", text.lower()):
        words = [w.strip("'\"") for w in re.findall(r"[a-z0-9][\w.'-]*", clause)]
        words = [w[:-1] if w.endswith(".") else w for w in words]
        for index, word in enumerate(words):
            if word in _OUTWARD or (word == "out" and index and words[index - 1] in _MOTION):
                votes[OUT] += 1
            elif word in _INWARD:
                votes[IN] += 1
            instance, outside = bool(_INSTANCE.match(word)), bool(_OUTSIDE.match(word))
            if not (instance or outside):
                continue
            before = _governor(words, index)
            if before in _FROM:
                place = "start"
            elif before in _TO:
                place = "end"
            elif before is None or before not in _ACTS | _PASSIVE:
                place = _as_subject(words, index)
            else:
                place = None
            if place is not None:
                starts_at_instance = (place == "start") == instance
                votes[OUT if starts_at_instance else IN] += 1
    if votes[OUT] == votes[IN]:
        return None
    return OUT if votes[OUT] > votes[IN] else IN


def _governor(words: list[str], index: int) -> str | None:
    """The word that governs words[index]: the nearest before it that is no determiner."""
    for word in reversed(words[:index]):
        if word not in _DETERMINERS:
            return word
    return None


def _as_subject(words: list[str], index: int) -> str | None:
    """A subject acting ("vm01 can't reach ...") is where traffic starts; a subject
    reached ("vm01 is unreachable") is where it ends."""
    for word in words[index + 1:index + 6]:
        if word in _PASSIVE:
            return "end"
        if word in _ACTS:
            return "start"
        if _INSTANCE.match(word) or _OUTSIDE.match(word) or word in _FROM or word in _TO - _ACTS:
            return None
    return None


def _names_instance(text: str) -> bool:
    return any(_INSTANCE.match(word) for word in re.findall(r"[a-z0-9][\w-]*", text.lower()))


def _query_words(text: str) -> list[str]:
    words = [w.strip(".-_").lower() for w in _WORD.findall(text)]
    # a VM's own name ("vm01", "test-vm") stands for the word the phrasings use
    words = ["vm" if _INSTANCE.match(w) and w not in ("virtual", "floating") else w for w in words]
    return [w for w in dict.fromkeys(words) if w and w not in _STOP and len(w) > 1]


class SymptomIndex:
    def __init__(self, symptoms):
        self._lock = threading.Lock()
        # One in-memory database shared by the server's threads, behind a lock.
        self._db = sqlite_utils.Database(sqlite3.connect(":memory:", check_same_thread=False))
        rows = [{"symptom": s.id, "phrase": p} for s in symptoms for p in [s.title, *s.phrasings]]
        self._db["phrasings"].insert_all(rows)
        self._db["phrasings"].enable_fts(["phrase"], tokenize="porter")
        self.directions = {}
        for symptom in symptoms:
            phrases = [symptom.title, *symptom.phrasings]
            said = Counter(direction_of(p) for p in phrases)
            said.pop(None, None)
            # a direction most of its phrasings say, none against it more than once
            for way, count in said.items():
                if count * 2 > len(phrases) and sum(said.values()) - count <= 1:
                    self.directions[symptom.id] = way

    def _by_words(self, words: list[str]) -> list[tuple[str, float, int]]:
        """Symptoms whose phrasings share words with the text: the phrasing that holds the
        most of the text's words decides, bm25 only between phrasings holding as many (a
        short phrasing sharing one common word must not beat one sharing three)."""
        matched: dict[int, set[str]] = {}
        ranks: dict[int, tuple[str, float]] = {}
        with self._lock:
            for word in words:
                try:
                    rows = self._db.query(
                        "select phrasings.rowid as phrase, phrasings.symptom as symptom, "
                        "phrasings_fts.rank as rank from phrasings_fts join phrasings "
                        "on phrasings.rowid = phrasings_fts.rowid where phrasings_fts match :word",
                        {"word": '"' + word.replace('"', "") + '"'})
                    for row in rows:
                        matched.setdefault(row["phrase"], set()).add(word)
                        symptom, rank = ranks.get(row["phrase"], (row["symptom"], 0.0))
                        ranks[row["phrase"]] = (symptom, rank + row["rank"])
                except sqlite3.OperationalError:
                    continue
        best: dict[str, tuple[int, float]] = {}
        for phrase, (symptom, rank) in ranks.items():
            key = (-len(matched[phrase]), rank)
            if symptom not in best or key < best[symptom]:
                best[symptom] = key
        ordered = sorted(best.items(), key=lambda item: item[1])
        return [(symptom, rank, -negative_count) for symptom, (negative_count, rank) in ordered]

    def search(self, text: str) -> list[tuple[str, float]]:
        """Symptoms that fit the text, best first, with their (bm25, lower is better) rank;
        those going against the text's direction after the others."""
        scored = self._by_words(_query_words(text))
        found = [(symptom, rank) for symptom, rank, _count in scored]
        direction = direction_of(text)
        if direction is None:
            return found
        against = [hit for hit in found if self.directions.get(hit[0], direction) != direction]
        going = [symptom for symptom, way in self.directions.items() if way == direction]
        unmatched = not found and _names_instance(text)
        if len(going) == 1 and going[0] not in dict(found) and (against or unmatched):
            # the words fit a symptom going the other way (or none, while the text is
            # about an instance): the one symptom going this way is what the student means
            scored.append((going[0], 0.0, 0))
        # a text that says which way the traffic goes: symptoms going against it last;
        # otherwise the words decide, and between phrasings sharing as many of them, the
        # symptom going that way comes before one that says no way (booting, volumes)
        def order(hit):
            symptom, rank, count = hit
            way = self.directions.get(symptom)
            return (way not in (None, direction), -count, way != direction, rank)
        return [(symptom, rank) for symptom, rank, _count in sorted(scored, key=order)]

    def best(self, text: str) -> str | None:
        found = self.search(text)
        return found[0][0] if found else None
