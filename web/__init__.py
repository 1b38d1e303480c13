"""The chat tutor on the web: a Flask application factory.

    create_app({"DATABASE": "/path/stackdoc.db"})   # configuration is passed in

Blueprints: ``web.api`` (the JSON API of design.md), ``web.pages`` (the chat page, the
instructor's page, /healthz). The database is opened per request and closed at teardown
(``web.db``); the tutor itself (``tutor/``) knows nothing of HTTP.
"""
from __future__ import annotations

import os

from flask import Flask, jsonify, request

# A paste of up to this many bytes is read; more gets a clear 413.
MAX_PASTE_BYTES = 1_000_000


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DATABASE=os.path.join(app.instance_path, "stackdoc.db"),
        MAX_PASTE_BYTES=MAX_PASTE_BYTES,
        # the JSON around a maximal paste (escapes can double it) still fits
        MAX_CONTENT_LENGTH=2 * MAX_PASTE_BYTES + 64 * 1024,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    database_dir = os.path.dirname(os.path.abspath(app.config["DATABASE"]))
    os.makedirs(database_dir, exist_ok=True)

    from web import api, db, pages
    db.init_app(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(pages.blueprint)

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["MAX_PASTE_BYTES"]
        message = (f"That is more than I can read at once (the limit is {limit // 1_000_000} MB). "
                   "Paste the part that matters: the command and the lines around what you see.")
        if request.path.startswith("/api/"):
            return jsonify(error=message), 413
        return message, 413

    @app.after_request
    def security_headers(response):
        # No inline script, no third-party anything: the page and its SVG are ours.
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'self'; style-src 'self'; "
                                    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                    "frame-ancestors 'none'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
