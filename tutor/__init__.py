"""The tutor: a conversation that leads a student from a symptom to its root cause.

It follows the course's reasoning path, which lives in data (``rules/symptoms/*.yaml``):
recognise the symptom, ask for one piece of evidence at a time (which command, on which
node, why it matters), say in plain words what each paste shows, and, once the
evidence establishes a cause, ask the student about it instead of announcing it.
``hint`` climbs the cause's hint ladder, ``why`` explains the current step or how a
conclusion follows, ``solution`` gives the answer and the fix.

Nothing here knows HTTP: ``web/`` wraps it; the tests drive it directly.

    from tutor.store import Store
    from tutor.session import Tutor
    tutor = Tutor(Store("stackdoc.db"))
    session = tutor.start()
    reply = tutor.respond(session, "why can't my VM ping google?")
"""
