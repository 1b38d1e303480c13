"""Which symptom a student describes: SQLite FTS5 (through sqlite-utils) over the
phrasings of the symptom files, words stemmed (porter) so "pinging" finds "ping".

The index is built in memory once per set of symptoms; a search is one query.
"""
from __future__ import annotations

import re
import sqlite3
import threading

import sqlite_utils

# Words that say nothing about which problem it is.
_STOP = {"a", "an", "the", "my", "i", "me", "we", "our", "is", "are", "was", "be", "to", "of",
         "on", "in", "it", "its", "and", "or", "why", "what", "how", "can", "cant", "can't",
         "cannot", "not", "no", "does", "doesn't", "dont", "don't", "do", "t", "s", "this",
         "that", "with", "from", "for", "at", "by", "when", "i'm", "im", "get", "have", "has",
         "help", "please", "hi", "hello", "there", "some", "any", "work", "working", "wont", "won't"}
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.IGNORECASE)


class SymptomIndex:
    def __init__(self, symptoms):
        self._lock = threading.Lock()
        # One in-memory database shared by the server's threads, behind a lock.
        self._db = sqlite_utils.Database(sqlite3.connect(":memory:", check_same_thread=False))
        rows = [{"symptom": s.id, "phrase": p} for s in symptoms for p in [s.title, *s.phrasings]]
        self._db["phrasings"].insert_all(rows)
        self._db["phrasings"].enable_fts(["phrase"], tokenize="porter")

    def search(self, text: str) -> list[tuple[str, float]]:
        """Symptoms that fit the text, best first, with their (bm25, lower is better) rank."""
        words = [w.strip(".-_").lower() for w in _WORD.findall(text)]
        words = [w for w in words if w and w not in _STOP and len(w) > 1]
        if not words:
            return []
        query = " OR ".join('"' + w.replace('"', "") + '"' for w in dict.fromkeys(words))
        with self._lock:
            try:
                rows = list(self._db.query(
                    "select phrasings.symptom as symptom, min(phrasings_fts.rank) as rank "
                    "from phrasings_fts join phrasings on phrasings.rowid = phrasings_fts.rowid "
                    "where phrasings_fts match :query group by phrasings.symptom order by rank",
                    {"query": query}))
            except sqlite3.OperationalError:
                return []
        return [(row["symptom"], row["rank"]) for row in rows]

    def best(self, text: str) -> str | None:
        found = self.search(text)
        return found[0][0] if found else None
