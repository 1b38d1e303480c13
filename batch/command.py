"""``python app.py batch`` and ``python app.py history``.

    python app.py batch [LAB...] [--class DIR] [--format text|json|markdown|html] [--out DIR]
                        [--workers N] [--dask ADDRESS] [--since last] [--rules DIR] [--db FILE]
    python app.py history [LAB] [--db FILE]

``batch`` diagnoses every lab (a folder of evidence, or an inventory file, collected
from first into ``OUT/evidence/<lab>/`` or a temporary folder it names), each in a
worker, and prints the class summary; with ``--out DIR`` it writes one report per lab
and the summary (``summary.txt|json|md``, or ``index.html`` and a page per lab). Every
run is stored in ``--db`` (the chat's database, stackdoc.db, by default), so
``--since last`` can say per lab what is new, fixed or still broken, and the
instructor's page lists the runs. Exit status: 0 nothing found anywhere, 1 root causes
found, 2 a lab's input was unusable or a lab could not be diagnosed (the others still
are), 130 interrupted (the labs diagnosed until then are kept in history).
"""
from __future__ import annotations

import os
import sys

DEFAULT_DB = "stackdoc.db"


def add_parsers(commands) -> None:
    batch = commands.add_parser("batch", help="diagnose a whole class of labs, with history")
    batch.add_argument("labs", nargs="*", metavar="LAB",
                       help="a lab's folder of evidence, or an inventory file to collect from")
    batch.add_argument("--class", dest="class_dir", metavar="DIR",
                       help="every sub-folder (and inventory file) of DIR is a lab")
    batch.add_argument("--format", choices=("text", "json", "markdown", "html"), default="text")
    batch.add_argument("--out", metavar="DIR", help="write the summary and one report per lab here")
    batch.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                       help="labs diagnosed at once, in local processes (default: the cores; "
                            "at most 4 per core)")
    batch.add_argument("--dask", metavar="ADDRESS",
                       help="submit the labs to this Dask distributed scheduler instead")
    batch.add_argument("--since", choices=("last",), help="say what changed since the previous run")
    batch.add_argument("--rules", metavar="DIR", help="the rule files to use (default: rules/)")
    batch.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help="the history (SQLite)")

    history = commands.add_parser("history", help="past batch runs, or one lab's diagnoses")
    history.add_argument("lab", nargs="?", metavar="LAB", help="a lab's name or folder")
    history.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help="the history (SQLite)")


def run(args) -> int:
    return run_history(args) if args.command == "history" else run_batch(args)


def _say(message: str) -> None:
    print(f"stackdoc: {message}", file=sys.stderr)


def run_batch(args) -> int:
    from batch.history import History
    from batch.labs import BatchInputError, find_labs, read_lab
    from batch.run import run_labs

    if args.format == "html" and not args.out:
        _say("--format html writes a folder of pages: say where with --out DIR")
        return 2
    if args.workers < 1:
        _say("--workers wants 1 or more")
        return 2
    if args.rules and not _rules_usable(args.rules):
        return 2
    try:
        labs, skipped = find_labs(args.labs, args.class_dir)
    except BatchInputError as error:
        _say(str(error))
        return 2
    for note in skipped:
        _say(note)
    evidence_root = _evidence_root(args.out) if any(lab.inventory for lab in labs) else None
    inputs = [read_lab(lab, evidence_root, args.rules) for lab in labs]
    for item in inputs:
        if item.collected_into:
            _say(f"{item.lab.name}: collected from its inventory into {item.collected_into}")

    try:
        history = History(args.db)
    except Exception as error:  # sqlite3.Error, OSError: a history we cannot keep is unusable
        _say(f"cannot keep the history in {args.db}: {error}")
        return 2
    with history:
        run_id = history.start_run(len(labs), args.rules)
        keys = {lab.name: lab.key for lab in labs}
        digests = {item.lab.name: item.digest for item in inputs}
        with _progress(len(labs)) as progress:
            outcome = run_labs(inputs, rules=args.rules, workers=args.workers,
                               dask_address=args.dask, progress=progress,
                               on_result=lambda r: history.record(run_id, keys[r["lab"]], r,
                                                                  digests[r["lab"]]))
        history.finish_run(run_id, outcome.interrupted)
        results = [outcome.results[lab.name] for lab in labs]
        since = None
        if args.since == "last":
            since = {}
            for lab in labs:
                change = history.since_previous(run_id, lab.key)
                since[lab.name] = change.as_json() if change else None

    if not _write_reports(results, args.format, args.out, since):
        return 2
    return _status(results, outcome, run_id, args.db)


def _evidence_root(out: str | None):
    """Where inventory labs are collected to: OUT/evidence, or a new temporary folder
    that is kept (the reports name its files)."""
    from pathlib import Path
    if out:
        return Path(out) / "evidence"
    import tempfile
    return Path(tempfile.mkdtemp(prefix="stackdoc-batch-evidence-"))


def _rules_usable(folder: str) -> bool:
    from kb.rulebook import RuleFileError, load_rulebook
    if not os.path.isdir(folder):
        _say(f"--rules {folder}: no such folder")
        return False
    try:
        load_rulebook((folder,))
    except RuleFileError as error:
        _say(f"a rule file cannot be used: {error}")
        return False
    return True


class _progress:
    """A progress bar on a terminal (tqdm); nothing when standard error is not one."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None

    def __enter__(self):
        if sys.stderr.isatty():
            from tqdm import tqdm
            # a terminal that does not say its size (0 x 0) would hide the bar
            size = os.get_terminal_size(sys.stderr.fileno())
            self.bar = tqdm(total=self.total, unit="lab", desc="diagnosing", file=sys.stderr,
                            ncols=size.columns or 80, nrows=size.lines or 24, leave=False)
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _write_reports(results, fmt, out, since) -> bool:
    from report.class_report import EXTENSIONS, lab_report, page_names, summary

    if not out:
        sys.stdout.write(summary(results, fmt, since))
        return True
    extension = EXTENSIONS[fmt]
    pages = page_names([r["lab"] for r in results], extension)
    files = {("index.html" if fmt == "html" else f"summary.{extension}"): summary(results, fmt, since, pages)}
    for result in results:
        files[pages[result["lab"]]] = lab_report(result, fmt, (since or {}).get(result["lab"]))
    try:
        os.makedirs(out, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(out, name), "w", encoding="utf-8") as handle:
                handle.write(text)
    except OSError as error:
        _say(f"cannot write the reports in {out}: {error.strerror or error}")
        return False
    return True


def _status(results, outcome, run_id, db) -> int:
    not_done = outcome.not_diagnosed()
    for result in results:
        if (result.get("error") or "").startswith("internal error"):
            _say(result["error"])
    if outcome.interrupted:
        done = len(results) - len(not_done)
        _say(f"interrupted: {done} of {len(results)} labs diagnosed and kept in history "
             f"(run {run_id} in {db}); not diagnosed: {', '.join(not_done)}")
        return 130
    reasons: dict[str, list[str]] = {}
    for result in results:
        if result["lab"] in not_done:
            reasons.setdefault(result["error"], []).append(result["lab"])
    for reason, labs in reasons.items():
        _say(f"{', '.join(labs)}: {reason}")
    if not_done and len(not_done) < len(results):
        _say(f"the other labs are diagnosed and kept in history (run {run_id} in {db})")
    if any(result.get("error") for result in results):
        return 2
    return 1 if any(result["findings"] for result in results) else 0


# --- history ---------------------------------------------------------------------------

def run_history(args) -> int:
    from batch.history import History

    if not os.path.exists(args.db):
        _say(f"no history in {args.db}: no batch has run with it")
        return 2
    with History(args.db) as history:
        if args.lab:
            entries = history.lab_entries(args.lab)
            if not entries:
                _say(f"{args.lab}: no batch run has diagnosed a lab of that name or folder")
                return 2
            sys.stdout.write(_lab_history(entries))
        else:
            runs = history.runs()
            if not runs:
                print("No batch run yet.")
                return 0
            sys.stdout.write(_runs_table(runs))
    return 0


def _runs_table(runs: list[dict]) -> str:
    lines = [f"{'run':>4}  {'started':<23}  {'status':<11}  {'labs':>4}  {'diagnosed':>9}  "
             f"{'with causes':>11}  causes (labs)"]
    for run in runs:
        causes = ", ".join(f"{cause} {n}" for cause, n in run["causes"].items()) or "none"
        lines.append(f"{run['id']:>4}  {run['started_utc']:<23}  {run['status']:<11}  "
                     f"{run['labs']:>4}  {run['diagnosed']:>9}  {run['with_causes']:>11}  {causes}")
    return "\n".join(lines) + "\n"


def _lab_history(entries: list[dict]) -> str:
    from batch.history import utc
    lines = [f"{entries[0]['lab']} ({entries[0]['key']})"]
    for entry in entries:
        head = f"  run {entry['run']:>3}  {utc(entry['at'])}  {entry['status']}"
        if entry["digest"]:
            head += f"  evidence {entry['digest'][:12]}"
        lines.append(head)
        if entry["status"] != "diagnosed":
            lines.append(f"      {entry['error']}")
        elif not entry["found"]:
            lines.append("      nothing found")
        for finding in entry["found"]:
            where = ", ".join(x for x in (finding["node"], finding["service"]) if x)
            lines.append(f"      [{finding['status']}] {finding['cause']}" + (f" ({where})" if where else ""))
    return "\n".join(lines) + "\n"
