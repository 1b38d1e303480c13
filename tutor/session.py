"""Sessions: start one, answer one message, give the transcript.

One reply at a time per session (two tabs must not interleave a state update); the
state is a typed ``State`` saved after every reply; a failure while reading one message
costs that reply only (see ``respond``).
"""
from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field

from kb.diagnose import default_rulebook
from tutor import intent
from tutor.dialogue import Conversation, Turn
from tutor.recognise import SymptomIndex
from tutor.render import to_html, with_figures
from tutor.state import State
from tutor.symptoms import Symptom, load_symptoms

GREETING = ("Hello! Tell me what isn't working in your lab, in your own words (for example "
            "*my VM can't ping google*). As we go, paste what your commands print, prompts "
            "included, or upload a file. Type **hint**, **why** or **solution** at any time.")
_LOG = logging.getLogger(__name__)


@dataclass
class Reply:
    reply: str                      # Markdown, with our own SVG figures appended as raw HTML
    html: str                       # the same, rendered safely for the page
    findings: list[dict]            # the causes revealed so far
    hint_level: int
    known: list[dict] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"reply": self.reply, "findings": self.findings, "hint_level": self.hint_level,
                "html": self.html, "known": self.known, "resolved": self.resolved}


class SessionNotFound(KeyError):
    pass


class Tutor:
    def __init__(self, store, rulebook=None):
        self.store = store
        self.rulebook = rulebook or default_rulebook()
        self.symptoms: dict[str, Symptom] = _symptoms_of(self.rulebook)
        self.index = _index_of(self.rulebook, self.symptoms)
        self.intents_file = intent.intents_file_of(self.rulebook)

    def start(self) -> str:
        session_id = self.store.create_session(State().as_dict())
        self.store.add_message(session_id, "tutor", GREETING, to_html(GREETING))
        return session_id

    def transcript(self, session_id: str) -> dict:
        session = self.store.session(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        state = State.from_dict(session["state"])
        messages = [{"role": m["role"], "text": with_figures(m["text"], m["figures"]),
                     "html": m["html"] if m["role"] == "tutor" else None,
                     "hint_level": m["hint_level"], "at": m["created"]}
                    for m in self.store.messages(session_id)]
        return {"session": session_id, "symptom": state.symptom, "messages": messages,
                "findings": self.store.revealed(session_id), "resolved": state.resolved,
                "hint_level": state.hint_level(), "known": state.known}

    def respond(self, session_id: str, text: str) -> Reply:
        with _lock_for(session_id):
            session = self.store.session(session_id)
            if session is None:
                raise SessionNotFound(session_id)
            state = State.from_dict(session["state"])
            seq = self.store.add_message(session_id, "student", text)
            turn = Turn()
            before = copy.deepcopy(state)
            try:
                Conversation(self, session_id, state, seq, turn).handle(text)
            except Exception:   # a bug must cost one reply, not the conversation
                _LOG.exception("the tutor failed on a message in session %s", session_id[:6])
                state = before
                self.store.remove_evidence(session_id, seq)
                turn = Turn()
                turn.say("I could not use that message, sorry: reading it failed on my side, so I "
                         "have set it aside and kept nothing from it. Everything before it is "
                         "still here; go on, or paste a smaller part.")
            markdown = "\n\n".join(turn.parts)
            html = to_html(markdown, turn.figures)
            level = state.hint_level()
            self.store.save_state(session_id, state.as_dict())
            self.store.add_message(session_id, "tutor", markdown, html, turn.figures, level)
            return Reply(with_figures(markdown, turn.figures), html, self.store.revealed(session_id),
                         level, state.known, list(state.resolved))


_SYMPTOMS: dict[str, dict] = {}
_INDEXES: dict[str, SymptomIndex] = {}


def _symptoms_of(rulebook) -> dict[str, Symptom]:
    if rulebook.identity not in _SYMPTOMS:
        _SYMPTOMS[rulebook.identity] = load_symptoms(rulebook)
    return _SYMPTOMS[rulebook.identity]


def _index_of(rulebook, symptoms) -> SymptomIndex:
    if rulebook.identity not in _INDEXES:
        _INDEXES[rulebook.identity] = SymptomIndex(symptoms.values())
    return _INDEXES[rulebook.identity]


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(session_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        if len(_LOCKS) > 10000:
            _LOCKS.clear()
        return _LOCKS.setdefault(session_id, threading.Lock())
