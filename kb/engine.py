"""durable-rules, kept behind one small door.

durable-rules is a fine forward-chainer with sharp edges (see shared/durable-rules.md);
this module is the only one that imports it, and it files each edge down:

- ``delete_state`` segfaults in a session where no action ever fired, so every session
  starts with a ``_session_open`` fact that a no-op rule observes;
- at most 1024 live sessions per ruleset, so sessions are short-lived, always closed,
  and opening one beyond ``MAX_SESSIONS`` raises ``EngineLimit`` instead of
  ``MemoryError``;
- errors inside actions are swallowed by the engine, so actions are wrapped and their
  errors re-raised to the caller of ``assert_facts``;
- asserting the same fact twice raises, so facts are deduplicated by content;
- facts no rule observes are rejected, so those are skipped quietly;
- negation is checked when a fact arrives, with no truth maintenance, so rules about
  something absent join on an ``evidence_complete`` marker asserted last (``complete``);
- activations are lost silently on huge (cartesian) joins, so the rule language only
  allows joins on an equality (kb/rulebook.py) and a session refuses more than
  ``MAX_FACTS`` facts (the knowledge base asserts combined facts, not raw rule lines);
- ``id`` and ``sid`` are the engine's own keys (a condition on ``id`` hangs it), so
  facts carry ``fact_id`` instead and may not use those names;
- a ``Host`` polls its rulesets from two background timer threads every 0.2 s
  (``dispatch``: actions left pending; ``dispatch_timers``): that polling crashed the
  chat server with SIGSEGV under concurrent large pastes, first racing request threads
  without any lock, then — even holding ``_HOST_LOCK`` — inside ``start_action`` on
  the state sessions leave behind. Every action of ours runs inside ``assert_fact``,
  on the caller's thread, and no rule uses timers, so ``_SynchronousHost`` starts no
  background thread at all: the engine is only ever entered by a caller holding the lock.

One ``Host`` per process; each distinct rulebook is registered once, under a name made
from its content, so loading the same rules again costs nothing and leaks nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Callable

from durable import engine as _durable

MAX_SESSIONS = 1000
# Each fact costs durable-rules about 8.5 KB, whatever its size. The evidence goes in by
# parts no rule joins across (kb/components.py), the largest a lab of a few hundred
# nodes (~1,200 facts for 200 nodes); a part beyond this is evidence of thousands of
# nodes claiming each other's addresses, and the limit keeps it to ~170 MB.
MAX_FACTS = 20000
OPEN_MARKER = "_session_open"
COMPLETE_MARKER = "evidence_complete"

_HOST_LOCK = threading.RLock()


class _SynchronousHost(_durable.Host):
    """A Host without durable's background polling threads (see the module's notes)."""

    def _run(self) -> None:
        pass


_HOST = _SynchronousHost()
_REGISTERED: dict[str, "Engine"] = {}


class EngineLimit(RuntimeError):
    """A limit that keeps durable-rules inside the ground where it is reliable."""


class ActionError(RuntimeError):
    """A rule's action raised; the engine itself would have swallowed it."""

    def __init__(self, errors: list[BaseException]):
        self.errors = errors
        first = errors[0]
        super().__init__(f"{len(errors)} rule action(s) failed; first: "
                         f"{type(first).__name__}: {first}")


Action = Callable[["Session", object], None]


class Engine:
    """A registered rulebook. ``rules`` maps a rule name to ``{"all": [...], "run": fn}``
    where the conditions are durable-rules' dict form and ``fn(session, c)`` is called
    with the session and durable's context (``c.<alias>`` is a matched fact).

    ``identity`` names the rulebook's content (e.g. a hash of its rule files): the same
    identity gives back the engine registered before, since durable-rules cannot
    unregister a ruleset."""

    def __new__(cls, rules: dict[str, dict], identity: str, name_hint: str = "rules",
                prepare: Callable[[dict], dict] | None = None):
        key = hashlib.sha256(identity.encode()).hexdigest()
        with _HOST_LOCK:
            existing = _REGISTERED.get(key)
            if existing is not None:
                return existing
            instance = super().__new__(cls)
            instance._setup(rules, f"{name_hint}_{key[:16]}", prepare)
            _REGISTERED[key] = instance
            return instance

    def _setup(self, rules: dict[str, dict], name: str, prepare=None) -> None:
        self.name = name
        # what every fact is given before the engine sees it (kb/rulecompile: whether
        # its fields match the rules' regular expressions)
        self.prepare = prepare or (lambda fact: fact)
        self._sessions: dict[str, Session] = {}
        ruleset = {
            "_open": {"all": [{"m": {"type": OPEN_MARKER}}], "run": lambda c: None},
        }
        for rule_name, rule in rules.items():
            ruleset[rule_name] = {"all": rule["all"], "run": self._guard(rule["run"])}
        _HOST.register_rulesets({name: ruleset})

    def _guard(self, action: Action):
        def run(c):
            session = self._sessions.get(c.s.sid)
            if session is None:
                return
            try:
                action(session, c)
            except Exception as error:  # re-raised by Session.assert_facts
                session._errors.append(error)
        return run

    def session(self) -> "Session":
        with _HOST_LOCK:
            if len(self._sessions) >= MAX_SESSIONS:
                raise EngineLimit(f"{MAX_SESSIONS} diagnoses are already open on this "
                                  "rulebook; close some first")
            session = Session(self, os.urandom(16).hex())   # uuid4's randomness, without uuid's imports
            self._sessions[session.sid] = session
            _HOST.assert_fact(self.name, {"sid": session.sid, "type": OPEN_MARKER})
            return session


class Session:
    """One diagnosis: facts in, conclusions out. Use as a context manager."""

    def __init__(self, engine: Engine, sid: str):
        self.engine = engine
        self.sid = sid
        self.outputs: list[dict] = []
        self._errors: list[BaseException] = []
        self._seen: set[str] = set()
        self._count = 0
        self.closed = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def assert_facts(self, facts) -> None:
        with _HOST_LOCK:
            for fact in facts:
                self._assert_one(fact)
            self._raise_errors()

    def _assert_one(self, fact: dict) -> None:
        if self.closed:
            raise RuntimeError("this diagnosis session is closed")
        bad = {"id", "sid"} & set(fact)
        if bad or any(str(key).startswith("$") for key in fact):
            raise ValueError(f"fact uses a name reserved by the engine: {sorted(bad) or fact}")
        digest = _content_key(fact)
        if digest in self._seen:
            return
        if self._count >= MAX_FACTS:
            raise EngineLimit(f"more than {MAX_FACTS} facts in one engine session: durable-rules "
                              "loses activations on joins this large")
        self._seen.add(digest)
        self._count += 1
        _assert_distinct(lambda f: _HOST.assert_fact(self.engine.name, f),
                         self.engine.prepare(dict(fact, sid=self.sid)))

    def derive(self, c, fact: dict) -> bool:
        """Assert a conclusion from inside an action; False when it was known already."""
        digest = _content_key(fact)
        if digest in self._seen:
            return False
        if self._count >= MAX_FACTS:
            raise EngineLimit(f"more than {MAX_FACTS} facts in one engine session")
        self._seen.add(digest)
        self._count += 1
        _assert_distinct(c.assert_fact, self.engine.prepare(dict(fact)))
        return True

    def emit(self, output: dict) -> None:
        self.outputs.append(output)

    def complete(self) -> list[dict]:
        """Say that all evidence is in, so rules about absent things may fire now."""
        self.assert_facts([{"type": COMPLETE_MARKER}])
        return self.outputs

    def _raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise ActionError(errors)
        state_error = None
        try:
            state = _HOST.get_state(self.engine.name, self.sid)
            state_error = state.get("exception") if isinstance(state, dict) else None
        except Exception:
            state_error = None
        if state_error:
            raise ActionError([RuntimeError(str(state_error))])

    def close(self) -> None:
        if self.closed:
            return
        with _HOST_LOCK:
            self.closed = True
            self.engine._sessions.pop(self.sid, None)
            _HOST.delete_state(self.engine.name, self.sid)


def _assert_distinct(assert_fact, fact: dict) -> None:
    """Assert a fact the session has not seen. durable-rules knows a fact by a short hash
    of its content, which collides among tens of thousands of facts: a fact it takes for
    one already observed is asserted again with a ``distinct`` field no rule reads."""
    for attempt in range(8):
        try:
            assert_fact(dict(fact, distinct=attempt) if attempt else fact)
            return
        except _durable.MessageNotHandledException:
            return  # a fact no rule asks about
        except _durable.MessageObservedException:
            continue
    raise EngineLimit("durable-rules took a new fact for one it had seen, eight times over")


def _content_key(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()
