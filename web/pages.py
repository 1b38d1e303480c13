"""The pages: the chat (all of it driven by static/chat.js over the JSON API), the
instructor's list of sessions, and /healthz."""
from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, render_template, request

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
    # With INSTRUCTOR_TOKEN set (STACKDOC_INSTRUCTOR_TOKEN for `app.py serve`), the page
    # wants ?token=...; without it the page is open, as on a 127.0.0.1-only server.
    token = current_app.config.get("INSTRUCTOR_TOKEN")
    if token and not hmac.compare_digest(str(request.args.get("token", "")), str(token)):
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
    return render_template("instructor.html", sessions=rows,
                           batch_runs=recent_runs(current_app.config["DATABASE"]))


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
