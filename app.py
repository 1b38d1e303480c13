"""stackdoc: find why an OpenStack lab is broken.

    python app.py diagnose PATH... [--node NAME] [--format text|json|markdown|html] [--out FILE]
    python app.py walk PATH... --from ADDR --to ADDR [--proto icmp|tcp|udp] [--port N] [--format text|json]
    python app.py serve [--host 127.0.0.1] [--port 5000] [--db PATH]

diagnose exits 0 when no root cause is found, 1 when root causes are found, 2 for
unusable input or usage; walk exits 0 when the packet and its reply get through, 1
otherwise, 2 for unusable input.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys

# Errors of writing the report itself: standard output's reader went away, or its
# device is full.
_OUTPUT_ERRNOS = {errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with our wording
        self.print_usage(sys.stderr)
        self.exit(2, f"stackdoc: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="app.py", description="stackdoc: find why an OpenStack lab is broken")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    diagnose = commands.add_parser("diagnose", help="diagnose terminal transcripts")
    diagnose.add_argument("paths", nargs="+", metavar="PATH",
                          help="files, directories (read recursively), or - for standard input")
    diagnose.add_argument("--node", help="the node the evidence comes from, where no prompt says")
    diagnose.add_argument("--format", choices=("text", "json", "markdown", "html"), default="text")
    diagnose.add_argument("--out", help="write the report to this file instead of standard output")

    walk = commands.add_parser("walk", help="follow a packet and its reply through the lab")
    walk.add_argument("paths", nargs="+", metavar="PATH",
                      help="files, directories (read recursively), or - for standard input")
    walk.add_argument("--from", dest="source", required=True, metavar="ADDR")
    walk.add_argument("--to", dest="destination", required=True, metavar="ADDR")
    walk.add_argument("--proto", choices=("icmp", "tcp", "udp"), default="icmp")
    walk.add_argument("--port", type=int)
    walk.add_argument("--node", help="the node the evidence comes from, where no prompt says")
    walk.add_argument("--format", choices=("text", "json"), default="text")

    serve = commands.add_parser("serve", help="serve the chat tutor")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--db", default="stackdoc.db", help="the SQLite file (created on first start)")
    return parser


def run_diagnose(args) -> int:
    from collectors.files import InputError, read_evidence
    from kb.diagnose import diagnose
    from kb.rulebook import RuleFileError
    from report.render import render

    try:
        evidence = read_evidence(args.paths, node=args.node)
    except InputError as error:
        print(f"stackdoc: {error}", file=sys.stderr)
        return 2
    try:
        diagnosis = diagnose(evidence)
    except RuleFileError as error:
        print(f"stackdoc: a rule file cannot be used: {error}", file=sys.stderr)
        return 2
    report = render(diagnosis, args.format)
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(report)
        except OSError as error:
            print(f"stackdoc: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(report)
    if diagnosis.findings:
        return 1
    if diagnosis.facts == 0:
        return 2  # nothing in the input could be used
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = _dispatch(args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a bug of ours: say so plainly, never a traceback
        if isinstance(error, OSError) and error.errno in _OUTPUT_ERRNOS:
            _silence_stdout()
            print(f"stackdoc: cannot write the report: {error.strerror or error}", file=sys.stderr)
            return 2
        if os.environ.get("STACKDOC_DEBUG"):
            raise
        print(f"stackdoc: internal error ({type(error).__name__}: {error}); "
              "run again with STACKDOC_DEBUG=1 for the traceback, and please report it",
              file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Standard output cannot be written: point it at /dev/null, so that the
    interpreter's own flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _dispatch(args) -> int:
    if args.command == "diagnose":
        return run_diagnose(args)
    if args.command == "walk":
        from report.walk_command import run_walk
        return run_walk(args)
    if args.command == "serve":
        from web.server import serve
        return serve(args)
    return 2


def create_app(test_config=None):
    """The chat's Flask application, for ``flask --app app run``."""
    from web import create_app as factory
    return factory(test_config)


if __name__ == "__main__":
    sys.exit(main())
