"""The tutor: a conversation that leads a student from a symptom to its root cause.

It follows the course's reasoning path, which lives in data (``rules/symptoms/*.yaml``,
and ``rules/intents.yml`` for what a message asks for): recognise the symptom, ask for
one piece of evidence at a time (which command, on which node, why it matters), say in
plain words what each paste shows, and, once the evidence establishes a cause, ask the
student about it instead of announcing it. Evidence is found anywhere in a message; a
paste with no prompt is filed under a node only when the evidence or the student says
whose it is. Answers are judged by meaning; misses climb the hint ladder; after a fix
and new evidence the tutor says whether it worked and goes on to the next cause; where
its knowledge ends it says so. ``hint``, ``why``, ``solution`` work at any time.

Nothing here knows HTTP: ``web/`` wraps it; the tests drive it directly.

    from tutor.store import Store
    from tutor.session import Tutor
    tutor = Tutor(Store("stackdoc.db"))
    session = tutor.start()
    reply = tutor.respond(session, "why can't my VM ping google?")
"""
