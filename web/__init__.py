"""The chat tutor on the web: a Flask application factory.

    create_app({"DATABASE": "/path/stackdoc.db"})   # configuration is passed in

Blueprints: ``web.api`` (the JSON API of design.md), ``web.pages`` (the chat page, the
instructor's page, /healthz). The database is opened per request and closed at teardown
(``web.db``); the tutor itself (``tutor/``) knows nothing of HTTP.

Every response carries the security headers (``SECURITY_HEADERS``); every response
under ``/api/`` is JSON, errors included (404, 405, 413, 429, 500), with
``Cache-Control: no-store``. The instructor's page wants the instructor token
(``INSTRUCTOR_TOKEN``, else the one created beside the database on first start,
see ``instructor_token``) and is ``404`` without it.
"""
from __future__ import annotations

import logging
import os
import secrets

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

# A paste of up to this many bytes is read; more gets a clear 413.
MAX_PASTE_BYTES = 1_000_000
# New sessions per client address: a burst (a class behind one NAT starting together),
# then one more every SESSION_REFILL_SECONDS.
SESSION_BURST = 60
SESSION_REFILL_SECONDS = 1.0

# No inline script, no third-party anything: the page and its SVG are ours.
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'; form-action 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
API_PREFIX = "/api/"

log = logging.getLogger("stackdoc.web")


def instructor_token(database: str) -> tuple[str, bool]:
    """(the instructor token, True when it was created now), kept beside the database
    in ``<database>.instructor-token``, readable by its owner only."""
    path = database + ".instructor-token"
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, True


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DATABASE=os.path.join(app.instance_path, "stackdoc.db"),
        MAX_PASTE_BYTES=MAX_PASTE_BYTES,
        # the JSON around a maximal paste (escapes can double it) still fits
        MAX_CONTENT_LENGTH=2 * MAX_PASTE_BYTES + 64 * 1024,
        JSON_SORT_KEYS=False,
        SESSION_BURST=SESSION_BURST,
        SESSION_REFILL_SECONDS=SESSION_REFILL_SECONDS,
    )
    if test_config:
        app.config.update(test_config)
    database_dir = os.path.dirname(os.path.abspath(app.config["DATABASE"]))
    os.makedirs(database_dir, exist_ok=True)
    if not app.config.get("INSTRUCTOR_TOKEN"):
        app.config["INSTRUCTOR_TOKEN"], created = instructor_token(
            os.path.abspath(app.config["DATABASE"]))
        app.config["INSTRUCTOR_TOKEN_CREATED"] = created

    from web import api, db, pages
    from web.ratelimit import RateLimiter
    db.init_app(app)
    app.extensions["session_limiter"] = RateLimiter(app.config["SESSION_BURST"],
                                                    app.config["SESSION_REFILL_SECONDS"])
    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["MAX_PASTE_BYTES"]
        message = (f"That is more than I can read at once (the limit is {limit // 1_000_000} MB). "
                   "Paste the part that matters: the command and the lines around what you see.")
        if request.path.startswith(API_PREFIX):
            return jsonify(error=message), 413
        return message, 413

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not request.path.startswith(API_PREFIX):
            return error
        response = jsonify(error=_plain_reason(error))
        response.status_code = error.code or 500
        for name, value in error.get_headers():
            if name.lower() in ("allow", "retry-after"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        # A bug of ours: logged with its traceback, answered without it.
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = "Something went wrong on our side; the error is logged."
        if request.path.startswith(API_PREFIX):
            return jsonify(error=message), 500
        return message, 500

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS:
            response.headers.setdefault(name, value)
        if request.path.startswith(API_PREFIX):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _plain_reason(error: HTTPException) -> str:
    reasons = {
        404: "no such address in the API",
        405: f"{request.method} is not allowed here",
    }
    return reasons.get(error.code, error.description or error.name)
