"""``python app.py serve``: the chat on waitress, with its SQLite file created on first start."""
from __future__ import annotations

import os
import sys

# Threads serve requests; replies are short, so a few more than cores keep latency flat.
WAITRESS_THREADS = 4


def build(database: str):
    from web import create_app
    app = create_app({"DATABASE": os.path.abspath(database),
                      "INSTRUCTOR_TOKEN": os.environ.get("STACKDOC_INSTRUCTOR_TOKEN") or None})
    _warm_up()
    return app


def _warm_up() -> None:
    """Load the grammars and the rulebook before the first student waits for them."""
    from grammar.transcript import read_transcript
    from kb.diagnose import default_rulebook, diagnose
    from tutor.symptoms import load_symptoms
    rulebook = default_rulebook()
    load_symptoms(rulebook)
    diagnose(read_transcript("root@n:~# ip route\ndefault via 192.0.2.1 dev x0\n", "warm-up"))


def serve(args) -> int:
    from waitress import serve as waitress_serve
    from kb.rulebook import RuleFileError
    try:
        app = build(args.db)
    except RuleFileError as error:
        print(f"stackdoc: a rule file cannot be used: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"stackdoc: cannot open the database {args.db}: {error}", file=sys.stderr)
        return 2
    print(f"stackdoc: serving the tutor on http://{args.host}:{args.port}/ "
          f"(database {os.path.abspath(args.db)})", flush=True)
    waitress_serve(app, host=args.host, port=args.port, threads=WAITRESS_THREADS,
                   max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 1024, ident="stackdoc")
    return 0
