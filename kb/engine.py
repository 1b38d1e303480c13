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
- durable's ``Host`` polls its rulesets from two background timer threads every 0.2 s
  (``dispatch``: actions left pending; ``dispatch_timers``): that polling crashed the
  chat server with SIGSEGV under concurrent large pastes, first racing request threads
  without any lock, then — even holding ``_ENGINE_LOCK`` — inside ``start_action`` on
  the state sessions leave behind. Every action of ours runs inside ``assert_fact``,
  on the caller's thread, and no rule uses timers, so no ``Host`` is made at all: the
  compiled engine is only ever entered by a caller holding the lock.

Each distinct rulebook is registered once per process, under a name made from its
content, so loading the same rules again costs nothing and leaks nothing.

Facts and activations go through durable's compiled engine (``durable_rules_engine``)
directly, as durable's own ``Host.assert_fact`` and ``Ruleset._flush_actions`` do, but
without what a synchronous, stateless use of it does not need: each fact is written as
JSON once (the same text names it for deduplication), and an activation is handed to
its action as the matched facts, without durable's per-activation closure, clock
readings and rewrite of an unchanged session state (a diagnosis runs thousands).
durable's Python package (its Host, with the imports it makes) is not loaded at all.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Callable

import durable_rules_engine as _compiled

from grammar.digest import digest as content_digest

MAX_SESSIONS = 1000
# Each fact costs durable-rules about 8.5 KB, whatever its size. The evidence goes in by
# parts no rule joins across (kb/components.py), the largest a lab of a few hundred
# nodes (~1,200 facts for 200 nodes); a part beyond this is evidence of thousands of
# nodes claiming each other's addresses, and the limit keeps it to ~170 MB.
MAX_FACTS = 20000
OPEN_MARKER = "_session_open"
COMPLETE_MARKER = "evidence_complete"

_ENGINE_LOCK = threading.RLock()


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
    unregister a ruleset.

    ``conditions``, where given, is ``rules_json(rules)`` written beforehand (kb/rulecompile
    keeps it with the rulebook on disk: writing a rulebook's conditions out is a tenth of
    a short diagnosis); ``rules`` then need only their ``run``."""

    def __new__(cls, rules: dict[str, dict], identity: str, name_hint: str = "rules",
                prepare: Callable[[dict], dict] | None = None, conditions: str | None = None):
        key = content_digest(identity.encode()).hexdigest()
        with _ENGINE_LOCK:
            existing = _REGISTERED.get(key)
            if existing is not None:
                return existing
            instance = super().__new__(cls)
            instance._setup(rules, f"{name_hint}_{key[:16]}", prepare,
                            rules_json(rules) if conditions is None else conditions)
            _REGISTERED[key] = instance
            return instance

    def _setup(self, rules: dict[str, dict], name: str, prepare, conditions: str) -> None:
        self.name = name
        # what every fact is given before the engine sees it (kb/rulecompile: whether
        # its fields match the rules' regular expressions)
        self.prepare = prepare or (lambda fact: fact)
        self._sessions: dict[str, Session] = {}
        # the actions by rule name, for activations taken from the compiled engine
        self.actions: dict[str, Action | None] = {rule_name: rule["run"] for rule_name, rule in rules.items()}
        self.actions["_open"] = None
        self.handle = _compiled.create_ruleset(name, _with_open_rule(conditions))

    def session(self) -> "Session":
        with _ENGINE_LOCK:
            if len(self._sessions) >= MAX_SESSIONS:
                raise EngineLimit(f"{MAX_SESSIONS} diagnoses are already open on this "
                                  "rulebook; close some first")
            session = Session(self, os.urandom(16).hex())   # uuid4's randomness, without uuid's imports
            self._sessions[session.sid] = session
            session._open()
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

    def _open(self) -> None:
        """The open marker in, and its rule's action taken and completed as durable's
        own Host does it, state written back and all: from then on an action has fired
        in this session, so that ``delete_state`` is safe."""
        marker = {"type": OPEN_MARKER}
        state_handle = self._assert_text(marker, _json(marker))   # not None: the _open rule reads it
        ready = _compiled.start_action_for_state(self.engine.handle, state_handle)
        if not ready:
            return
        _compiled.update_state(self.engine.handle, json.dumps(json.loads(ready[0]), ensure_ascii=False))
        following = _compiled.complete_and_start_action(self.engine.handle, state_handle)
        if following:
            self._run_activations(state_handle, json.loads(following))

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def assert_facts(self, facts) -> None:
        with _ENGINE_LOCK:
            for fact in facts:
                self._assert_one(fact)
            self._raise_errors()

    def _assert_one(self, fact: dict) -> None:
        if self.closed:
            raise RuntimeError("this diagnosis session is closed")
        names = "\0" + "\0".join(map(str, fact)) + "\0"   # one C-level look for reserved names
        if "\0id\0" in names or "\0sid\0" in names or "\0$" in names:
            bad = {"id", "sid"} & set(fact)
            if bad or any(str(key).startswith("$") for key in fact):
                raise ValueError(f"fact uses a name reserved by the engine: {sorted(bad) or fact}")
        prepared = self.engine.prepare(dict(fact))
        text = _json(prepared)
        digest = _digest(text)
        if digest in self._seen:
            return
        if self._count >= MAX_FACTS:
            raise EngineLimit(f"more than {MAX_FACTS} facts in one engine session: durable-rules "
                              "loses activations on joins this large")
        self._seen.add(digest)
        self._count += 1
        state = self._assert_text(prepared, text)
        if state is not None:
            self._activate(state)

    def derive(self, c, fact: dict) -> bool:
        """Assert a conclusion from inside an action; False when it was known already.
        Its own activations run after the action's, as the engine queues them."""
        prepared = self.engine.prepare(dict(fact))
        text = _json(prepared)
        digest = _digest(text)
        if digest in self._seen:
            return False
        if self._count >= MAX_FACTS:
            raise EngineLimit(f"more than {MAX_FACTS} facts in one engine session")
        self._seen.add(digest)
        self._count += 1
        self._assert_text(prepared, text)
        return True

    def _assert_text(self, prepared: dict, text: str):
        """Assert a fact the session has not seen (``text``: its JSON without ``sid``);
        the engine's state handle where it activated rules, else None. durable-rules
        knows a fact by a short hash of its content, which collides among tens of
        thousands of facts: a fact it takes for one already observed is asserted again
        with a ``distinct`` field no rule reads."""
        sid = f'"sid": "{self.sid}"}}'
        for attempt in range(8):
            if attempt:
                text = _json(dict(prepared, distinct=attempt))
            # the session's id added to the object's end: "{...}" -> "{..., "sid": ...}"
            with_sid = text[:-1] + (", " + sid if len(text) > 2 else sid)
            result = _compiled.assert_fact(self.engine.handle, with_sid)
            if result[0] == 1:
                return None   # a fact no rule asks about
            if result[0] == 2:
                continue      # taken for one observed already
            return 0 if result[0] == 3 else result[1]
        raise EngineLimit("durable-rules took a new fact for one it had seen, eight times over")

    def _activate(self, state_handle) -> None:
        """Run the actions the engine has ready, one after the other, each on the facts
        its rule matched, until none is left (actions may assert facts that activate
        more)."""
        ready = _compiled.start_action_for_state(self.engine.handle, state_handle)
        if ready:
            self._run_activations(state_handle, json.loads(ready[1]))

    def _run_activations(self, state_handle, activation: dict) -> None:
        handle, actions = self.engine.handle, self.engine.actions
        while True:
            for rule_name, matched in activation.items():
                break
            action = actions[rule_name]
            if action is not None:
                try:
                    action(self, _Matched(matched))
                except Exception as error:  # re-raised by assert_facts
                    self._errors.append(error)
            following = _compiled.complete_and_start_action(handle, state_handle)
            if not following:
                return
            activation = json.loads(following)

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
            state = json.loads(_compiled.get_state(self.engine.handle, self.sid))
            state_error = state.get("exception") if isinstance(state, dict) else None
        except Exception:
            state_error = None
        if state_error:
            raise ActionError([RuntimeError(str(state_error))])

    def close(self) -> None:
        if self.closed:
            return
        with _ENGINE_LOCK:
            self.closed = True
            self.engine._sessions.pop(self.sid, None)
            _compiled.delete_state(self.engine.handle, self.sid)


class _Matched:
    """An activation as an action sees it: ``c.<alias>`` is the fact the rule's pattern
    of that name matched (its fields as attributes), as durable's closure gives."""

    __slots__ = ("_facts",)

    def __init__(self, facts: dict):
        self._facts = facts

    def __getattr__(self, name):
        fact = self._facts.get(name)
        return None if fact is None else _Fact(fact)


class _Fact(dict):
    """A matched fact; a field missing reads as None, as in durable's ``Content``."""

    __slots__ = ()

    def __getattr__(self, name):
        return self.get(name)


def rules_json(rules: dict[str, dict]) -> str:
    """The rules' conditions as durable-rules reads them: ``{name: {"all": [...]}}`` in
    the rules' order (durable ranks rules of equal priority by it)."""
    return json.dumps({rule_name: {"all": rule["all"]} for rule_name, rule in rules.items()},
                      ensure_ascii=False, separators=(",", ":"))


def _with_open_rule(conditions: str) -> str:
    """``rules_json`` text with the open marker's rule first, as its own ruleset needs."""
    opening = '{"_open":{"all":[{"m":{"type":"%s"}}]}' % OPEN_MARKER
    return opening + ("}" if conditions == "{}" else "," + conditions[1:])


def _json(fact: dict) -> str:
    """A fact's JSON as the engine reads it, keys sorted: the same content, the same text."""
    return json.dumps(fact, sort_keys=True, ensure_ascii=False, default=repr)


def _digest(text: str) -> str:
    return content_digest(text.encode("utf-8", "surrogatepass")).hexdigest()
