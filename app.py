"""stackdoc: find why an OpenStack lab is broken.

    python app.py diagnose PATH... [--node NAME] [--format text|json|markdown|html] [--out FILE]

Exit status: 0 no root cause found, 1 root causes found, 2 unusable input or usage.
"""
from __future__ import annotations

import argparse
import sys


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
    if args.command == "diagnose":
        return run_diagnose(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
