"""The state of one conversation, typed: what the tutor remembers between two messages.

It is saved with the session (as JSON) after every reply, so a reload or a restarted
server goes on where it was. ``State.from_dict`` accepts what older versions saved:
unknown keys are dropped, missing ones take their defaults.

Stages, in the order a conversation usually meets them:

    symptom   the tutor does not know yet what goes wrong
    gather    it asks for the evidence of one step (``asked_step``)
    question  the evidence establishes a cause; it asks the cause's question
    which     it holds a paste (``held``) until the student says which node it is from
    done      the route is used up: the honest edge (see dialogue.Conversation.edge)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

SYMPTOM, GATHER, QUESTION, WHICH, DONE = "symptom", "gather", "question", "which", "done"
STAGES = (SYMPTOM, GATHER, QUESTION, WHICH, DONE)


@dataclass
class Held:
    """A paste without a prompt whose node the evidence does not tell: kept, unread,
    until the student names the node."""
    text: str
    seq: int


@dataclass
class State:
    symptom: str | None = None
    stage: str = SYMPTOM
    asked_step: str | None = None
    question_cause: str | None = None
    focus: str | None = None
    hint_levels: dict[str, int] = field(default_factory=dict)
    hints_used: int = 0
    revealed: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)       # revealed, then fixed in the evidence
    roles: dict[str, str] = field(default_factory=dict)     # node -> role, said by the student
    offered: list[str] = field(default_factory=list)        # symptom ids of the last menu
    commands: list[list] = field(default_factory=list)      # [node, command] pasted
    attempts: dict[str, int] = field(default_factory=dict)  # answers given per cause
    misses: int = 0                                          # wrong answers in a row, this question
    known: list[dict] = field(default_factory=list)
    step_hints: int = 0
    last_feedback: str = ""                                  # never the same twice in a row
    held: Held | None = None
    skipped: list[str] = field(default_factory=list)        # steps the student says are done
    unknown_problem: int = 0                                 # messages no symptom fitted
    edge_said: bool = False
    off_route: bool = False                                  # its evidence points off the route
    left: list[str] = field(default_factory=list)           # symptoms the student moved away from

    @classmethod
    def from_dict(cls, data: dict | None) -> "State":
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        held = values.get("held")
        values["held"] = Held(**held) if isinstance(held, dict) else None
        if values.get("stage") not in STAGES:
            values["stage"] = SYMPTOM
        return cls(**values)

    def as_dict(self) -> dict:
        return asdict(self)

    def hint_level(self) -> int:
        focus = self.question_cause or self.focus
        return int(self.hint_levels.get(focus, 0)) if focus else 0
