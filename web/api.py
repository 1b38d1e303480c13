"""The chat's JSON API (design.md): views parse the request, call the tutor, answer.

    POST /api/sessions                      -> 201 {"session": id}
    POST /api/sessions/<id>/messages {text} -> 200 {"reply", "findings", "hint_level", ...}
    GET  /api/sessions/<id>                 -> 200 the transcript

A session id is the capability: an unknown one is 404, whoever asks. Creating sessions
is rate-limited per client address (429 with Retry-After). What a student sends is read
defensively (any JSON, however nested or odd, is a 400 with a reason, never a 500),
lone surrogates become U+FFFD, and secrets are masked (grammar/redact.py) before the
tutor sees the text, so neither stored messages nor stored facts hold them.
"""
from __future__ import annotations

import json
import math

from flask import Blueprint, current_app, jsonify, request

from grammar.redact import redact
from tutor.conversation import SessionNotFound
from web.db import get_tutor

blueprint = Blueprint("api", __name__, url_prefix="/api")


def _error(status: int, message: str):
    return jsonify(error=message), status


@blueprint.post("/sessions")
def create_session():
    wait = current_app.extensions["session_limiter"].take(request.remote_addr or "unknown")
    if wait:
        response, status = _error(429, "Too many new sessions from your address; "
                                       "wait a moment and try again.")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response, status
    return jsonify(session=get_tutor().start()), 201


def _read_json(raw: bytes):
    """The body as JSON, or raise ValueError with the reason a student can act on."""
    if not raw:
        raise ValueError("the request body is empty")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        raise ValueError("the request body is not valid JSON") from None


def without_lone_surrogates(text: str) -> str:
    """Text any encoder can write: a lone surrogate (JSON's "\\ud800") becomes U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@blueprint.post("/sessions/<session_id>/messages")
def post_message(session_id: str):
    tutor = get_tutor()
    if tutor.store.session(session_id) is None:
        return _error(404, "no such session")
    if not request.is_json:
        return _error(400, "send the message as application/json: {\"text\": \"...\"}")
    try:
        body = _read_json(request.get_data(cache=False))
    except ValueError as reason:
        return _error(400, f"{reason}; send {{\"text\": \"...\"}} as application/json")
    if not isinstance(body, dict) or "text" not in body:
        return _error(400, "send an object with a \"text\" field, e.g. {\"text\": \"hint\"}")
    text = body["text"]
    if not isinstance(text, str):
        return _error(400, "\"text\" must be a string")
    if not text.strip():
        return _error(400, "\"text\" is empty: type a message or paste some output")
    limit = current_app.config["MAX_PASTE_BYTES"]
    if len(text.encode("utf-8", errors="replace")) > limit:
        return _error(413, f"That paste is larger than {limit // 1_000_000} MB, more than I can read "
                      "at once. Paste the part that matters: the command and the lines around what you see.")
    text = redact(without_lone_surrogates(text))
    try:
        reply = tutor.respond(session_id, text)
    except SessionNotFound:
        return _error(404, "no such session")
    return jsonify(reply.as_json()), 200


@blueprint.get("/sessions/<session_id>")
def get_session(session_id: str):
    try:
        return jsonify(get_tutor().transcript(session_id)), 200
    except SessionNotFound:
        return _error(404, "no such session")
