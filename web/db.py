"""The database per request: opened on first use, closed at teardown (as in flaskr)."""
from __future__ import annotations

from flask import current_app, g

from tutor.conversation import Tutor
from tutor.store import Store


def get_tutor() -> Tutor:
    if "tutor" not in g:
        g.tutor = Tutor(Store(current_app.config["DATABASE"]), current_app.config.get("RULEBOOK"))
    return g.tutor


def close_db(error=None) -> None:
    tutor = g.pop("tutor", None)
    if tutor is not None:
        tutor.store.close()


def init_app(app) -> None:
    # create the schema on start, so the first request does not race to do it
    Store(app.config["DATABASE"]).close()
    app.teardown_appcontext(close_db)
