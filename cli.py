"""The command line of ``python app.py`` (app.py's docstring says what each command does).

It lives here rather than in app.py because Python compiles the file it is started with
from its source on every run, and keeps the compiled code only of the modules it imports:
the whole command line in app.py cost every run 8 ms of compiling, a tenth of a short
diagnosis.
"""
from __future__ import annotations

import argparse
import atexit
import errno
import contextlib
import gc
import os
import sys
from pathlib import Path

SHIPPED_RULES = Path(__file__).resolve().parent / "rules"

# Errors of writing the report itself: standard output's reader went away, or its
# device is full.
_OUTPUT_ERRNOS = {errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else standard output's terminal,
    else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Help(argparse.HelpFormatter):
    """argparse's help as wide as the terminal, as argparse makes it, without the import
    of shutil argparse makes for that width (and shutil of bz2 and lzma): 2 ms of every
    run, for help a diagnosis never prints. argparse builds a formatter for every
    argument it is given."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, formatter_class=_Help, **options):
        super().__init__(*args, formatter_class=formatter_class, **options)

    def error(self, message):  # usage errors exit 2, as argparse does, with our wording
        self.print_usage(sys.stderr)
        self.exit(2, f"stackdoc: {message}\n")


# The commands defined here; the others come from their own packages' wiring.
_OWN_COMMANDS = ("diagnose", "walk", "serve", "rules")
# Commands that run once and end, writing what they found (no database, no server)
_ONE_SHOT = ("diagnose", "walk", "rules")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` (one of ``_OWN_COMMANDS``) only what
    that command needs: argparse spends more on building the other fifteen parsers
    (each looks up its messages' translations on disk) than a short diagnosis takes."""
    parser = _Parser(prog="app.py", description="stackdoc: find why an OpenStack lab is broken")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rules_option = {"metavar": "DIR", "help": "the rules folder (default: the shipped rules/)"}
    wanted = (lambda name: name == command) if command in _OWN_COMMANDS else (lambda name: True)

    if wanted("diagnose"):
        diagnose = commands.add_parser("diagnose", help="diagnose terminal transcripts")
        diagnose.add_argument("paths", nargs="*", metavar="PATH",
                              help="files, directories (read recursively), or - for standard input")
        diagnose.add_argument("--node", help="the node the evidence comes from, where no prompt says")
        diagnose.add_argument("--format", choices=("text", "json", "markdown", "html"), default="text")
        diagnose.add_argument("--out", help="write the report to this file instead of standard output")
        diagnose.add_argument("--rules", **rules_option)
        from collectors.cli import add_inventory_options
        add_inventory_options(diagnose)

    if wanted("walk"):
        walk = commands.add_parser("walk", help="follow a packet and its reply through the lab")
        walk.add_argument("paths", nargs="+", metavar="PATH",
                          help="files, directories (read recursively), or - for standard input")
        walk.add_argument("--from", dest="source", required=True, metavar="ADDR")
        walk.add_argument("--to", dest="destination", required=True, metavar="ADDR")
        walk.add_argument("--proto", choices=("icmp", "tcp", "udp"), default="icmp")
        walk.add_argument("--port", type=int)
        walk.add_argument("--node", help="the node the evidence comes from, where no prompt says")
        walk.add_argument("--format", choices=("text", "json"), default="text")
        walk.add_argument("--rules", **rules_option)

    if wanted("serve"):
        serve = commands.add_parser("serve", help="serve the chat tutor")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=5000)
        serve.add_argument("--db", default="stackdoc.db", help="the SQLite file (created on first start)")
        serve.add_argument("--rules", **rules_option)

    if wanted("rules"):
        rules = commands.add_parser("rules", help="check, test and list rule files")
        actions = rules.add_subparsers(dest="action", required=True, parser_class=_Parser)
        check = actions.add_parser("check", help="every mistake in the rule and symptom files")
        check.add_argument("folder", nargs="?", metavar="DIR")
        test = actions.add_parser("test", help="run the worked examples")
        test.add_argument("folder", nargs="?", metavar="DIR")
        test.add_argument("causes", nargs="*", metavar="CAUSE", help="only these causes' examples")
        listing = actions.add_parser("list", help="causes, symptoms, hints and examples")
        listing.add_argument("folder", nargs="?", metavar="DIR")
        facts = actions.add_parser("facts", help="the facts rules can ask about (FACTS.md)")
        facts.add_argument("folder", nargs="?", metavar="DIR")
        facts.add_argument("--write", action="store_true", help="write DIR/FACTS.md instead of printing it")

    if command not in _OWN_COMMANDS:
        from batch.command import add_parsers as add_batch_parsers
        from collectors.cli import add_collect_command
        from lab.cli import add_lab_command
        add_batch_parsers(commands)
        add_collect_command(commands)
        add_lab_command(commands)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command a command line names (its first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv=None, *, exiting: bool = False) -> int:
    """Run one command line; ``exiting``: the process ends when this returns
    (``python app.py``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv)).parse_args(argv)
    try:
        with _collections_for(args.command, exiting):
            status = _dispatch(args)
            sys.stdout.flush()
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
    if exiting and args.command in _ONE_SHOT:
        _end_process(status)
    return status


def _end_process(status: int) -> None:
    """End a one-shot run as any exit does (its exit handlers run, standard output and
    error are flushed) but without the interpreter's teardown, which frees every object
    the run made one by one (4 ms of a 0.09 s diagnosis; more for a large one): the
    operating system takes the memory back whole. mypy ends its runs the same way
    (``mypy.util.hard_exit``). A one-shot command has closed every file it wrote, and
    joined every thread it started, when it returns."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:   # a Python without it: the ordinary exit
        return
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _silence_stdout() -> None:
    """Standard output cannot be written: point it at /dev/null, so that the
    interpreter's own flush at exit does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def _collections_for(command: str, exiting: bool = False):
    """A one-shot run (diagnose, walk, rules) makes its facts and keeps them to the end:
    the cyclic garbage collector, run every 700 allocations, would only walk them again
    and again (a twentieth of a large diagnosis). It runs rarely there; the long-lived
    commands (serve, batch) keep Python's defaults.

    ``exiting`` (``python app.py``, which holds the collector off while it starts): what
    start-up made (modules, the command line) lives to the end, so it is frozen before
    the collector is turned back on, and no collection walks it (one that did cost a
    short diagnosis 6 ms). What the run made is frozen too as it ends: where the process
    takes the ordinary exit (a command that failed; ``_end_process`` ends the others),
    the collection Python makes there would only walk every object once more."""
    if command not in _ONE_SHOT:
        if exiting:
            gc.enable()
        yield
        return
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 50, 100)
    if exiting:
        gc.freeze()
        gc.enable()
    try:
        yield
    finally:
        if exiting:
            gc.freeze()
        else:
            gc.set_threshold(*thresholds)


def _dispatch(args) -> int:
    if args.command == "rules":
        return {"check": rules_check, "test": rules_test, "list": rules_list,
                "facts": rules_facts}[args.action](args)
    if args.command in ("batch", "history"):
        from batch.command import run as run_batch
        return run_batch(args)
    if args.command == "diagnose" and (args.inventory or not args.paths):
        from collectors.cli import run_diagnose_inventory
        return run_diagnose_inventory(args, run_diagnose)
    if args.command in ("collect", "lab"):
        return args.handler(args)
    return {"diagnose": run_diagnose, "walk": run_walk, "serve": run_serve}[args.command](args)


class _Unusable(Exception):
    """Input or rules that cannot be used: said in one line, exit 2."""


def _fail(message: str) -> int:
    print(f"stackdoc: {message}", file=sys.stderr)
    return 2


def _rules_folder(given) -> Path:
    folder = Path(given) if given else SHIPPED_RULES
    if not folder.is_dir():
        raise _Unusable(f"no rules folder at {folder}")
    return folder


def _rulebook(given):
    """The rulebook of ``--rules`` (the shipped one, cached, when not given)."""
    from kb.diagnose import default_rulebook
    from kb.rulebook import RuleFileError, load_rulebook
    try:
        if not given:
            return default_rulebook()
        return load_rulebook([str(_rules_folder(given))])
    except RuleFileError as error:
        raise _Unusable(f"a rule file cannot be used: {error} "
                        "(python app.py rules check shows every problem)") from None


def _evidence(args):
    from collectors.files import InputError, read_evidence
    try:
        return read_evidence(args.paths, node=args.node)
    except InputError as error:
        raise _Unusable(str(error)) from None


# --- diagnose, walk, serve -----------------------------------------------------------------

def run_diagnose(args) -> int:
    from kb.diagnose import diagnose
    from report.render import render
    try:
        rulebook = _rulebook(args.rules)
        evidence = _evidence(args)
    except _Unusable as error:
        return _fail(str(error))
    # a one-shot run keeps no other use of the evidence: its facts become the diagnosis' own
    diagnosis = diagnose(evidence, rulebook=rulebook, handed_over=True)
    report = render(diagnosis, args.format)
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(report)
        except OSError as error:
            return _fail(f"cannot write {args.out}: {error.strerror or error}")
    else:
        sys.stdout.write(report)
    if diagnosis.findings:
        return 1
    if diagnosis.facts == 0:
        return 2  # nothing in the input could be used
    return 0


def run_walk(args) -> int:
    """``--from`` is an address (the node holding it, or the node whose connected
    network holds it, sends) or a node's name; ``--node`` says only where prompt-less
    evidence came from."""
    from kb.diagnose import current_facts
    from kb.walk import WalkError, walk
    from report.walk import render_walk
    try:
        _rulebook(args.rules)   # the walk follows the kernel, not the rules: only checked
        evidence = _evidence(args)
    except _Unusable as error:
        return _fail(str(error))
    if not evidence.facts:
        return _fail("nothing in the input could be read as evidence")
    if args.proto in ("tcp", "udp") and args.port is None:
        return _fail(f"--proto {args.proto} needs --port")
    table, _stale = current_facts(evidence)
    try:
        result = walk(table, args.source, args.destination, args.proto, args.port)
    except WalkError as error:
        hint = ""
        if not any(fact.get("node") for fact in table.facts):
            hint = " (no prompt in the evidence names a node: say which with --node NAME)"
        return _fail(f"cannot walk this packet: {error}{hint}")
    sys.stdout.write(render_walk(result, args.format))
    return 0 if result.verdict == "delivered" else 1


def run_serve(args) -> int:
    from web.server import serve
    try:
        args.rulebook = _rulebook(args.rules)
    except _Unusable as error:
        return _fail(str(error))
    return serve(args)


# --- rules check, test, list, facts --------------------------------------------------------

def rule_problems(folder) -> list:
    """Every problem ``rules check`` reports: the schema's checks first, then whatever
    the rule loader and the tutor still refuse."""
    from kb.rulebook import RuleFileError, load_rulebook
    from kb.rulecheck import Problem, check_folder, check_intents
    from tutor.intent import load_intents
    # the tutor's loader, uncached: the file may have changed since the chat read it
    problems = check_folder(folder) + check_intents(folder, load_intents.__wrapped__)
    if problems:
        return problems
    try:
        rulebook = load_rulebook([str(folder)])
    except RuleFileError as error:
        return [Problem(error.path, error.line, "SD900", error.message)]
    from tutor.symptoms import load_symptoms
    try:
        load_symptoms(rulebook)
    except RuleFileError as error:
        return [Problem(error.path, error.line, "SD901", error.message)]
    return []


def rules_check(args) -> int:
    try:
        folder = _rules_folder(args.folder)
    except _Unusable as error:
        return _fail(str(error))
    problems = rule_problems(folder)
    for problem in problems:
        print(_shown(problem))
    files = sum(1 for _ in folder.rglob("*.yaml")) + sum(1 for _ in folder.rglob("*.yml"))
    print(f"{files} files checked, {len(problems)} problem{'s' if len(problems) != 1 else ''}")
    return 1 if problems else 0


def _here(path) -> str:
    """A path relative to where the command runs, as editors and terminals link it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _shown(problem) -> str:
    from dataclasses import replace
    return str(replace(problem, path=_here(problem.path)))


def rules_test(args) -> int:
    from kb.examples import run_examples
    if args.folder and not Path(args.folder).is_dir() and os.sep not in args.folder:
        args.causes, args.folder = [args.folder, *args.causes], None   # rules test CAUSE...
    try:
        rulebook = _rulebook(args.folder or None)
    except _Unusable as error:
        return _fail(str(error))
    unknown = sorted(set(args.causes) - {c.cause for c in rulebook.causes})
    if unknown:
        return _fail(f"no cause file defines {', '.join(unknown)}")
    results = run_examples(rulebook, args.causes)
    for result in results:
        where = f"{_here(result.path)}:{result.line}" if result.line else _here(result.path)
        print(f"{'PASS' if result.passed else 'FAIL'} {result.name}  ({where})")
        for failure in result.failures:
            print(f"     {failure}")
        if result.failures:
            print(f"     found: {', '.join(result.found) or 'nothing'}")
    failed = sum(1 for r in results if not r.passed)
    if not results:
        print("no worked examples to run: give the causes 'examples:' (rules/README.md)")
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


def rules_list(args) -> int:
    from kb.examples import expectations
    try:
        rulebook = _rulebook(args.folder or None)
    except _Unusable as error:
        return _fail(str(error))
    lines = [f"causes ({len(rulebook.causes)}):"]
    for cause in rulebook.causes:
        statuses = sorted({case.texts["status"] for case in cause.cases})
        lines.append(f"  {cause.cause}  ({_here(cause.path)}; {len(cause.cases)} case"
                     f"{'s' if len(cause.cases) != 1 else ''}, {'/'.join(statuses)})")
        lines.append(f"    symptoms: {', '.join(cause.symptoms) or '-'}")
        lines.append(f"    hints: {len(cause.hints)}, questions: {len(cause.questions)}")
        for hint in cause.hints:
            lines.append(f"      - {hint}")
        if not cause.examples:
            lines.append("    examples: none")
        for example in cause.examples:
            expected = ", ".join(e.describe() for e in expectations(example.get("expect")))
            evidence = example.get("evidence")
            shown = ", ".join(evidence) if isinstance(evidence, list) else evidence
            lines.append(f"    example: {shown} -> {expected or 'nothing'}")
    lines.append(f"symptoms ({len(rulebook.symptoms)}):")
    for symptom in rulebook.symptoms:
        routes = symptom.document.get("causes") or []
        causes = [r.get("cause") for r in routes if isinstance(r, dict)]
        lines.append(f"  {symptom.symptom}  ({_here(symptom.path)}): {symptom.document.get('title', '')}")
        lines.append(f"    causes: {', '.join(str(c) for c in causes) or '-'}")
    lines.append(f"inferences ({len(rulebook.inferences)}):")
    for inference in rulebook.inferences:
        lines.append(f"  {inference.name} -> {inference.conclude['type']}  "
                     f"({_here(inference.path)}:{inference.line})")
    print("\n".join(lines))
    return 0


def rules_facts(args) -> int:
    from kb.schema import facts_markdown
    try:
        rulebook = _rulebook(args.folder or None)
        folder = _rules_folder(args.folder)
    except _Unusable as error:
        return _fail(str(error))
    text = facts_markdown(schema_of(rulebook))
    if args.write:
        (folder / "FACTS.md").write_text(text, encoding="utf-8")
        print(f"wrote {folder / 'FACTS.md'}")
    else:
        sys.stdout.write(text)
    return 0


def schema_of(rulebook):
    """The fact schema with the conclusions of this rulebook's inference rules."""
    from kb.schema import module_schema
    return module_schema().with_conclusions(
        [(rule.conclude["type"], rule.conclude, rule.name, f"{_relative(rule.path)}:{rule.line}")
         for rule in rulebook.inferences])


def _relative(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(SHIPPED_RULES.parent))
    except ValueError:
        return str(path)
