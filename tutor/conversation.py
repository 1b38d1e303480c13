"""The tutor's public door, kept for its callers (web/, tests): one student message in,
one tutor reply out. The work is split by concern:

    tutor/session.py   sessions, locks, one reply per message (Tutor, Reply)
    tutor/state.py     the typed state saved between messages
    tutor/dialogue.py  the state machine over it: what the evidence says, the route, fixes
    tutor/attribution.py  evidence anywhere in a message, and whose it is
    tutor/answers.py   answers, hints, why/how, the solution; nothing given away
    tutor/edge.py      where the knowledge ends, said plainly
    tutor/grading.py   whether an answer states the expected values in the right relation
    tutor/intent.py    what a message asks for (rules/intents.yml)
    tutor/cache.py     a session's diagnosis, kept between messages
"""
from tutor.session import GREETING, Reply, SessionNotFound, Tutor

__all__ = ["GREETING", "Reply", "SessionNotFound", "Tutor"]
