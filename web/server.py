"""``python app.py serve``: the chat on waitress, with its SQLite file created on first start.

On first start it also creates the instructor token (beside the database) and prints
the instructor page's address with it, once. A ``--host`` other than loopback gets a
warning: the chat and the instructor page are then reachable from the network.

If the server must die it says so on standard error and exits non-zero, so that a
supervisor (systemd, a container runtime) restarts it: 2 for a start that cannot
succeed (rule files, database, address in use), 1 for a crash while serving.
faulthandler writes the Python stacks of a fatal signal (SIGSEGV in a C extension)
before the process goes.
"""
from __future__ import annotations

import faulthandler
import ipaddress
import json
import logging
import os
import sys

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

# Threads serve requests; replies are short, so a few more than cores keep latency flat.
WAITRESS_THREADS = 4

log = logging.getLogger("stackdoc.server")


def build(database: str, rulebook=None):
    from web import create_app
    app = create_app({"DATABASE": os.path.abspath(database), "RULEBOOK": rulebook})
    _warm_up(rulebook)
    return app


def _warm_up(rulebook=None) -> None:
    """Load the grammars and the rulebook before the first student waits for them."""
    from grammar.transcript import read_transcript
    from kb.diagnose import default_rulebook, diagnose
    from tutor.symptoms import load_symptoms
    rulebook = rulebook or default_rulebook()
    load_symptoms(rulebook)
    diagnose(read_transcript("root@n:~# ip route\ndefault via 192.0.2.1 dev x0\n", "warm-up"),
             rulebook=rulebook)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _ErrorTask(ErrorTask):
    """waitress's own error answers (a body over its limit, a malformed request) with
    the security headers, and as JSON under /api/ like the application's own."""

    def execute(self):
        from web import API_PREFIX, SECURITY_HEADERS
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        path = getattr(self.request, "path", "") or ""
        if path.startswith(API_PREFIX):
            body = json.dumps({"error": f"{error.reason}: {error.body}"}).encode()
            self.response_headers.append(("Content-Type", "application/json"))
            self.response_headers.append(("Cache-Control", "no-store"))
        else:
            body = f"{error.reason}\r\n\r\n{error.body}".encode()
            self.response_headers.append(("Content-Type", "text/plain; charset=utf-8"))
        self.response_headers.extend(SECURITY_HEADERS)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _Channel(HTTPChannel):
    error_task_class = _ErrorTask


def make_server(app, host: str, port: int):
    server = create_server(app, host=host, port=port, threads=WAITRESS_THREADS,
                           # above Flask's limit: Flask answers an oversized body first
                           max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1024,
                           ident="stackdoc")
    server.channel_class = _Channel
    return server


def serve(args) -> int:
    from kb.rulebook import RuleFileError
    try:
        faulthandler.enable(file=sys.stderr, all_threads=True)
    except (AttributeError, ValueError, OSError):  # stderr is no file (captured, closed)
        pass
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        app = build(args.db, getattr(args, "rulebook", None))
    except RuleFileError as error:
        print(f"stackdoc: a rule file cannot be used: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"stackdoc: cannot open the database {args.db}: {error}", file=sys.stderr)
        return 2
    try:
        server = make_server(app, args.host, args.port)
    except OSError as error:
        print(f"stackdoc: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    address = f"http://{args.host}:{args.port}"
    print(f"stackdoc: serving the tutor on {address}/ "
          f"(database {os.path.abspath(args.db)})", flush=True)
    if app.config.get("INSTRUCTOR_TOKEN_CREATED"):
        print(f"stackdoc: the instructor page is {address}/instructor?token="
              f"{app.config['INSTRUCTOR_TOKEN']} (shown this once; the token is kept in "
              f"{os.path.abspath(args.db)}.instructor-token)", flush=True)
    if not is_loopback(args.host):
        print(f"stackdoc: warning: --host {args.host} is not loopback: the chat and the "
              "instructor page are reachable from the network", file=sys.stderr, flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        return 0
    except BaseException as error:  # the server itself failed: say so, exit non-zero
        log.critical("the server stopped: %s: %s", type(error).__name__, error, exc_info=True)
        print(f"stackdoc: the server stopped: {type(error).__name__}: {error}", file=sys.stderr,
              flush=True)
        return 1
    return 0
