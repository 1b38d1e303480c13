"""stackdoc: find why an OpenStack lab is broken.

    python app.py diagnose PATH... [--node NAME] [--format text|json|markdown|html] [--out FILE]
                                   [--rules DIR]
    python app.py walk PATH... --from ADDR --to ADDR [--proto icmp|tcp|udp] [--port N]
                               [--format text|json] [--rules DIR]
    python app.py serve [--host 127.0.0.1] [--port 5000] [--db PATH] [--rules DIR]
    python app.py rules check [DIR]            every mistake in the rule and symptom files
    python app.py rules test [DIR] [CAUSE...]  run the worked examples
    python app.py rules list [DIR]             causes, symptoms, hints, examples
    python app.py rules facts [DIR] [--write]  the fact reference (DIR/FACTS.md)
    python app.py batch [LAB...] [--class DIR] [--format ...] [--out DIR] [--workers N] [--dask ADDRESS] [--since last]
    python app.py history [LAB]
    python app.py collect --inventory FILE [--limit PATTERN] [--out DIR] [--accept-new] [--keep-secrets]
    python app.py collect --local [--out DIR]
    python app.py diagnose --inventory FILE [--limit PATTERN] [--evidence DIR] ...
    python app.py lab up [--faults ID,...] [--naming seed|other] | status | shell NODE | inventory | down

diagnose exits 0 when no root cause is found, 1 when root causes are found, 2 for
unusable input or usage; walk exits 0 when the packet and its reply get through, 1
otherwise, 2 for unusable input; rules check and rules test exit 1 on any problem or
failed example. ``--rules DIR`` (default: the shipped rules/) is the knowledge used.

The command line itself lives in cli.py (this file is compiled afresh on every run:
it stays small); this file is what a user runs and what Flask loads.
"""
from __future__ import annotations

import gc
import os
import sys

if __name__ == "__main__":
    # Start-up (imports, the command line) makes nothing worth a collection, and Python's
    # thresholds would walk its objects a dozen times (3 ms of a short diagnosis): cli
    # turns the collector back on once it knows the command.
    gc.disable()

# the names tests and tools use from here
from cli import _command_of, _rulebook, build_parser, main, rule_problems, schema_of  # noqa: F401


def create_app(test_config=None):
    """The chat's Flask application, for ``flask --app app run`` (``STACKDOC_RULES``
    names another rules folder)."""
    from web import create_app as factory
    config = dict(test_config or {})
    if "RULEBOOK" not in config and os.environ.get("STACKDOC_RULES"):
        config["RULEBOOK"] = _rulebook(os.environ["STACKDOC_RULES"])
    return factory(config or None)


if __name__ == "__main__":
    from grammar import regex_cache
    regex_cache.enable()   # a run as a user makes it: regexes compiled in an earlier run are reused
    sys.exit(main(exiting=True))
