"""Sessions in SQLite, through sqlite-utils: a real file an instructor can open.

    sessions   id (unguessable), created, updated, symptom, state (JSON), hints_used,
               revealed (comma-separated causes), messages
    messages   session, seq, role (student|tutor), text (Markdown), html, figures (JSON
               list of our own SVG), hint_level, created
    facts      session, message, type, node, fact (JSON): the evidence pasted, as parsed
    unparsed   session, message, item (JSON): what could not be read
    revealed   session, cause, how (named|answered|solution|hint), finding (JSON), at

The schema is created (and extended) by code on open, as Datasette does. One Store per
request or per thread: a connection is not shared between threads.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager

import sqlite_utils

_BUSY_TIMEOUT_SECONDS = 10

# One writer at a time per database file, queued here rather than in SQLite's busy
# handler, which sleeps in growing steps (up to 100 ms) while another thread commits.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: str) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(path, threading.Lock())


def now() -> float:
    return round(time.time(), 3)


def new_session_id() -> str:
    """A capability: whoever holds it reads the session, so it must not be guessable."""
    return secrets.token_urlsafe(24)


class Store:
    def __init__(self, path: str):
        self.path = path
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        self.db = sqlite_utils.Database(connection)
        # With WAL, NORMAL keeps the file consistent on a crash and spares an fsync per
        # reply; at worst the last replies before a power cut are lost.
        connection.execute("pragma synchronous = normal")
        self._lock = _write_lock(path) if path != ":memory:" else threading.Lock()
        with self._lock:
            self._ensure_schema()

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def writing(self):
        """One transaction, with this process's other writers queued behind it."""
        with self._lock:
            with self.db.conn:
                yield

    def _ensure_schema(self) -> None:
        db = self.db
        if "sessions" in db.table_names() and "unparsed" in db.table_names():
            return
        if self.path != ":memory:":
            db.enable_wal()
        db["sessions"].create({"id": str, "created": float, "updated": float, "symptom": str,
                               "state": str, "hints_used": int, "revealed": str, "messages": int},
                              pk="id", if_not_exists=True)
        db["messages"].create({"id": int, "session": str, "seq": int, "role": str, "text": str,
                               "html": str, "figures": str, "hint_level": int, "created": float},
                              pk="id", if_not_exists=True)
        db["facts"].create({"id": int, "session": str, "message": int, "type": str, "node": str,
                            "fact": str}, pk="id", if_not_exists=True)
        db["unparsed"].create({"id": int, "session": str, "message": int, "item": str},
                              pk="id", if_not_exists=True)
        db["revealed"].create({"id": int, "session": str, "cause": str, "how": str,
                               "finding": str, "at": float}, pk="id", if_not_exists=True)
        db["messages"].create_index(["session", "seq"], if_not_exists=True)
        db["facts"].create_index(["session"], if_not_exists=True)
        db["unparsed"].create_index(["session"], if_not_exists=True)
        db["revealed"].create_index(["session"], if_not_exists=True)

    # --- sessions ---------------------------------------------------------------

    def create_session(self, state: dict) -> str:
        session_id = new_session_id()
        stamp = now()
        with self.writing():
            self.db["sessions"].insert({"id": session_id, "created": stamp, "updated": stamp,
                                        "symptom": None, "state": json.dumps(state), "hints_used": 0,
                                        "revealed": "", "messages": 0})
        return session_id

    def session(self, session_id: str) -> dict | None:
        if not isinstance(session_id, str) or len(session_id) > 100:
            return None
        rows = list(self.db.query("select * from sessions where id = ?", [session_id]))
        if not rows:
            return None
        row = rows[0]
        row["state"] = json.loads(row["state"])
        return row

    def save_state(self, session_id: str, state: dict) -> None:
        with self.writing():
            self.db.execute(
                "update sessions set state = ?, updated = ?, symptom = ?, hints_used = ?, revealed = ? "
                "where id = ?", [json.dumps(state), now(), state.get("symptom"),
                                 state.get("hints_used", 0), ",".join(state.get("revealed", [])), session_id])

    def sessions(self) -> list[dict]:
        return list(self.db.query("select id, created, updated, symptom, hints_used, revealed, "
                                  "messages from sessions order by updated desc"))

    # --- messages -------------------------------------------------------------------

    def add_message(self, session_id: str, role: str, text: str, html: str = "",
                    figures: list[str] | None = None, hint_level: int = 0) -> int:
        with self.writing():
            seq = self.db.execute("select coalesce(max(seq), 0) + 1 from messages where session = ?",
                                  [session_id]).fetchone()[0]
            self.db.execute("insert into messages (session, seq, role, text, html, figures, hint_level, "
                            "created) values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [session_id, seq, role, text, html, json.dumps(figures or []), hint_level, now()])
            self.db.execute("update sessions set messages = messages + 1, updated = ? where id = ?",
                            [now(), session_id])
        return seq

    def messages(self, session_id: str) -> list[dict]:
        rows = list(self.db.query("select seq, role, text, html, figures, hint_level, created "
                                  "from messages where session = ? order by seq", [session_id]))
        for row in rows:
            row["figures"] = json.loads(row["figures"] or "[]")
        return rows

    # --- evidence -------------------------------------------------------------------

    def add_evidence(self, session_id: str, message: int, facts: list[dict], unparsed: list[dict]) -> None:
        fact_rows = [(session_id, message, f.get("type"), f.get("node"), json.dumps(f)) for f in facts]
        unparsed_rows = [(session_id, message, json.dumps(u)) for u in unparsed]
        with self.writing():
            self.db.conn.executemany("insert into facts (session, message, type, node, fact) "
                                     "values (?, ?, ?, ?, ?)", fact_rows)
            self.db.conn.executemany("insert into unparsed (session, message, item) values (?, ?, ?)",
                                     unparsed_rows)

    def evidence_mark(self, session_id: str) -> tuple[int, int]:
        """How many facts the session holds and the id of the last: what a cached
        diagnosis of it depends on."""
        count, last = self.db.execute("select count(*), coalesce(max(id), 0) from facts where session = ?",
                                      [session_id]).fetchone()
        return int(count), int(last)

    def remove_evidence(self, session_id: str, message: int) -> None:
        """Forget what one message pasted (it could not be used)."""
        with self.writing():
            self.db.execute("delete from facts where session = ? and message = ?", [session_id, message])
            self.db.execute("delete from unparsed where session = ? and message = ?", [session_id, message])

    def move_evidence(self, session_id: str, messages: list[int], node: str) -> int:
        """The student says what some messages pasted came from another node: their facts
        move there. Returns how many facts moved."""
        if not messages:
            return 0
        marks = ",".join("?" * len(messages))
        rows = list(self.db.execute(f"select id, fact from facts where session = ? and message in ({marks})",
                                    [session_id, *messages]))
        with self.writing():
            for row_id, text in rows:
                fact = json.loads(text)
                fact["node"] = node
                if isinstance(fact.get("prov"), dict):
                    fact["prov"]["node"] = node
                self.db.execute("update facts set node = ?, fact = ? where id = ?",
                                [node, json.dumps(fact), row_id])
        return len(rows)

    def supersede(self, session_id: str, runs: set[tuple[str, str]], before_message: int) -> int:
        """A command run again on the same node replaces what it printed before (the
        point of running it again is to see the lab as it is now). ``runs`` holds
        (node, command) pairs; returns how many facts were set aside."""
        if not runs:
            return 0
        nodes = sorted({node for node, _ in runs})
        marks = ",".join("?" * len(nodes))
        stale = []
        for row_id, text in self.db.execute(
                f"select id, fact from facts where session = ? and message < ? and node in ({marks})",
                [session_id, before_message, *nodes]):
            fact = json.loads(text)
            command = " ".join(str((fact.get("prov") or {}).get("command") or "").split())
            if (fact.get("node"), command) in runs:
                stale.append(row_id)
        if stale:
            with self.writing():
                self.db.conn.executemany("delete from facts where id = ?", [(i,) for i in stale])
        return len(stale)

    def evidence(self, session_id: str, after_fact: int = 0) -> tuple[list[dict], list[dict]]:
        """The facts pasted in a session (those stored after row ``after_fact``), and
        everything that could not be read."""
        facts = [json.loads(r[0]) for r in self.db.execute(
            "select fact from facts where session = ? and id > ? order by id", [session_id, after_fact])]
        unparsed = [json.loads(r[0]) for r in self.db.execute(
            "select item from unparsed where session = ? order by id", [session_id])]
        return facts, unparsed

    # --- revealed causes ---------------------------------------------------------------

    def add_revealed(self, session_id: str, cause: str, how: str, finding: dict) -> None:
        with self.writing():
            self.db.execute("insert into revealed (session, cause, how, finding, at) values (?, ?, ?, ?, ?)",
                            [session_id, cause, how, json.dumps(finding), now()])

    def revealed(self, session_id: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute(
            "select finding from revealed where session = ? order by id", [session_id])]
