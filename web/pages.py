"""The pages: the chat (all of it driven by static/chat.js over the JSON API), the
instructor's list of sessions, and /healthz."""
from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, make_response, render_template, request

from web.db import get_tutor

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def chat():
    return render_template("chat.html", max_paste_bytes=current_app.config["MAX_PASTE_BYTES"])


@blueprint.get("/favicon.ico")
def favicon():
    return "", 204


@blueprint.get("/healthz")
def healthz():
    return {"status": "ok"}, 200


@blueprint.get("/instructor")
def instructor():
    # Closed by default: the page wants ?token=<the instructor token> (created beside
    # the database on first start, printed once by `app.py serve`), and without it
    # answers as if it did not exist.
    token = current_app.config.get("INSTRUCTOR_TOKEN")
    given = request.args.get("token", "")
    if not token or not hmac.compare_digest(given.encode("utf-8", "replace"),
                                            str(token).encode("utf-8")):
        abort(404)
    tutor = get_tutor()
    rows = []
    for session in tutor.store.sessions():
        symptom = tutor.symptoms.get(session["symptom"] or "")
        rows.append({
            # never the whole id: it is the student's capability to read the session
            "label": session["id"][:6] + "…",
            "symptom": symptom.title if symptom else (session["symptom"] or "not yet known"),
            "revealed": [c for c in (session["revealed"] or "").split(",") if c],
            "hints_used": session["hints_used"] or 0,
            "messages": session["messages"] or 0,
            "time_spent": _duration(session["updated"] - session["created"]),
        })
    from batch.history import recent_runs
    response = make_response(render_template("instructor.html", sessions=rows,
                                             batch_runs=recent_runs(current_app.config["DATABASE"])))
    # the page names students' sessions: no cache, no proxy, no back button keeps it
    response.headers["Cache-Control"] = "no-store"
    return response


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
