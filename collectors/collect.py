"""Collect a lab's evidence into a folder ``diagnose`` reads as it is.

For each host (in parallel, at most ``parallel_hosts`` at once) the knowledge's plan
runs over one connection (collectors/ssh.py), and each command's output becomes a
transcript file ``OUT/<node>/<command-slug>.txt``: a prompt line naming the node and
the command, then what the command printed::

    root@net01:~# ip route
    default via 10.20.0.1 dev ens3
    ...

Secrets in every file are replaced by ``***`` (grammar/redact.py, the reports' own
redaction) unless ``keep_secrets``. What went wrong is kept too, and never stops the
other hosts: a host that cannot be collected from gets ``OUT/<node>/unreachable.txt``
saying why (the diagnosis lists it among what it could not read), a host where some
commands failed gets ``OUT/<node>/collect-problems.txt``, and ``OUT/.collect.json``
records every host and command (status, exit code, seconds, bytes, file) for tools.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from collectors.inventory import Host
from collectors.knowledge import Knowledge, Plan
from collectors.ssh import HostFailure, Limits, LocalNode, Output, SSHNode
from grammar.redact import redact

MANIFEST = ".collect.json"
UNREACHABLE_NOTE = "unreachable.txt"
PROBLEMS_NOTE = "collect-problems.txt"
WRITTEN_STATUSES = {"ok", "failed", "timeout", "interrupted", "truncated"}
PROBLEM_STATUSES = {"timeout", "interrupted", "truncated", "binary", "missing", "lost", "not-run", "refused"}
# "not-run" commands were never started: the host's time ran out, its connection was
# lost, or the collection was interrupted.


class CollectError(Exception):
    """The collection cannot start (an output folder that is not ours ...)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a collection: what was collected is written; ``collection`` says what."""

    def __init__(self, collection: "Collection"):
        super().__init__("collection interrupted")
        self.collection = collection


@dataclass
class HostReport:
    host: Host
    roles: list[str]
    outputs: list[Output] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    failure: HostFailure | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def problems(self) -> list[str]:
        """One line per thing the person should know about this host."""
        if self.failure:
            return [str(self.failure)]
        lines = [f"{o.command.text}: {o.note}" for o in self.outputs if o.status in PROBLEM_STATUSES]
        lines += [f"{s['command']}: {s['reason']}" for s in self.skipped if s["status"] == "missing"]
        return lines

    def as_json(self) -> dict:
        return {
            "host": self.host.name, "address": self.host.address, "port": self.host.port,
            "user": self.host.user, "become": self.host.become, "groups": list(self.host.groups),
            "roles": self.roles, "seconds": round(self.elapsed, 3),
            "failure": {"kind": self.failure.kind, "message": str(self.failure)} if self.failure else None,
            "notes": self.notes,
            "commands": [{"command": o.command.text, "origin": o.command.origin, "status": o.status,
                          "exit_status": o.rc, "seconds": round(o.elapsed, 3), "bytes": o.size,
                          "note": o.note, "file": o.file} for o in self.outputs],
            "skipped": self.skipped,
        }


@dataclass
class Collection:
    out_dir: Path
    hosts: list[HostReport]
    elapsed: float
    redacted: bool

    @property
    def reached(self) -> list[HostReport]:
        return [h for h in self.hosts if not h.failure]

    def summary(self) -> str:
        commands = sum(1 for h in self.hosts for o in h.outputs if o.status in WRITTEN_STATUSES)
        lines = [f"collected {len(self.reached)} of {len(self.hosts)} nodes into {self.out_dir} "
                 f"({commands} commands, {self.elapsed:.1f} s"
                 f"{'' if self.redacted else ', secrets kept'})"]
        for report in self.hosts:
            if report.failure:
                lines.append(f"  {report.host.name}: NOT COLLECTED: {report.failure}")
                continue
            written = sum(1 for o in report.outputs if o.status in WRITTEN_STATUSES)
            problems = report.problems
            lines.append(f"  {report.host.name}: {written} commands"
                         + (f", {len(problems)} problem{'s' * (len(problems) != 1)}" if problems else ""))
            lines += [f"    {p}" for p in problems]
            lines += [f"    note: {n}" for n in report.notes]
            if not report.roles:
                lines.append(f"    note: no role from its groups ({', '.join(report.host.groups) or 'none'}); "
                             "base commands only (rules/collect.yaml roles: maps group names to roles)")
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict:
        return {"collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(self.elapsed, 3), "redacted": self.redacted,
                "hosts": [h.as_json() for h in self.hosts]}


def command_slug(command: str) -> str:
    """A file name for a command: ``iptables -t nat -L -v -n`` -> ``iptables-t-nat-L-v-n``."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", command).strip("-.")
    return slug[:120] or "command"


def default_out_dir() -> Path:
    return Path(f"stackdoc-evidence-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")


def prepare_out_dir(out_dir: Path, node_names) -> None:
    """An empty or new folder, or one of our earlier collections (its nodes' folders are
    replaced); anything else is refused rather than mixed with."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CollectError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise CollectError(f"{out_dir}: not empty and not an earlier collection; "
                           "give --out a new or empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in node_names:
        node_dir = out_dir / name
        if node_dir.is_dir():
            shutil.rmtree(node_dir)


def _node_dir_name(name: str) -> str:
    """A host name as a folder name (no path separators, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9._@-]", "_", name).lstrip(".") or "node"


class _Progress:
    """A tqdm bar on a terminal; nothing otherwise."""

    def __init__(self, total: int, enabled: bool | None):
        enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        self.lock = threading.Lock()
        if enabled and total:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="cmd", desc="collecting", file=sys.stderr, leave=False)

    def advance(self, n: int = 1, host: str | None = None) -> None:
        if self.bar:
            with self.lock:
                if host:
                    self.bar.set_postfix_str(host, refresh=False)
                self.bar.update(n)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def _run_plan(node, plan: Plan, limits: Limits, report: HostReport, progress: _Progress,
              started: float, stop: threading.Event) -> None:
    words = sorted({c.program for c in plan.commands} | {p for c in plan.commands for p in c.paths})
    present = node.probe(words)
    lost = False
    for command in plan.commands:
        if present is not None and command.program not in present:
            report.skipped.append({"command": command.text, "origin": command.origin, "status": "missing",
                                   "reason": f"{command.program}: command not found on the node"})
            progress.advance(host=report.host.name)
            continue
        absent = [p for p in command.paths if present is not None and p not in present]
        if absent:
            report.skipped.append({"command": command.text, "origin": command.origin, "status": "absent",
                                   "reason": f"{absent[0]}: no such file on the node"})
            progress.advance(host=report.host.name)
            continue
        left = started + limits.host_timeout - time.monotonic()
        if lost or left <= 0 or stop.is_set():
            note = ("the connection was lost before it" if lost else
                    "not run: the collection was interrupted" if stop.is_set() else
                    f"not run: the host's {limits.host_timeout:g} s were used up")
            output = Output(command, status="not-run", note=note)
        else:
            output = node.run(command, min(limits.command_timeout, left))
            lost = output.status == "lost"
        report.outputs.append(output)
        progress.advance(host=report.host.name)


def _write_host(report: HostReport, node, out_dir: Path, keep_secrets: bool) -> None:
    node_dir = out_dir / _node_dir_name(report.host.name)
    node_dir.mkdir(parents=True, exist_ok=True)
    used: dict[str, int] = {}
    for output in report.outputs:
        if output.status not in WRITTEN_STATUSES:
            continue
        slug = command_slug(output.command.text)
        used[slug] = used.get(slug, 0) + 1
        name = f"{slug}.txt" if used[slug] == 1 else f"{slug}-{used[slug]}.txt"
        body = output.text if output.text.endswith("\n") or not output.text else output.text + "\n"
        if not keep_secrets:
            body = redact(body)
        path = node_dir / name
        path.write_text(f"{node.prompt}{node.shown_prefix}{output.command.text}\n{body}", encoding="utf-8")
        output.file = str(path.relative_to(out_dir))
        report.files.append(output.file)
    note = UNREACHABLE_NOTE if report.failure else PROBLEMS_NOTE
    if report.problems:
        lines = [f"stackdoc collect: {report.host.name}: {p}" for p in report.problems]
        (node_dir / note).write_text("\n".join(lines) + "\n", encoding="utf-8")
        report.files.append(str((node_dir / note).relative_to(out_dir)))


def _collect_host(node, knowledge: Knowledge, limits: Limits, out_dir: Path, keep_secrets: bool,
                  progress: _Progress, stop: threading.Event) -> HostReport:
    host = node.host
    plan = knowledge.plan(host.groups)
    report = HostReport(host, plan.roles)
    node.stop = stop
    report.skipped += [{"command": s.command, "origin": s.origin, "status": "not-allowed"
                        if "allowlist" in s.reason else "needs-value", "reason": s.reason}
                       for s in plan.skipped]
    started = time.monotonic()
    try:
        if stop.is_set():
            raise HostFailure("interrupted", "not collected: the collection was interrupted")
        node.connect()
        _run_plan(node, plan, limits, report, progress, started, stop)
    except HostFailure as failure:
        report.failure = failure
        progress.advance(len(plan.commands), host=host.name)   # connect fails before any command
    except Exception as error:  # a bug of ours: say so, and keep what this host gave so far
        report.failure = HostFailure("internal-error", f"stackdoc failed on this host: "
                                     f"{type(error).__name__}: {error}")
    finally:
        node.close()
    report.notes += node.notes
    report.elapsed = time.monotonic() - started
    _write_host(report, node, out_dir, keep_secrets)
    return report


def collect(hosts: list[Host], knowledge: Knowledge, out_dir, *, accept_new: bool = False,
            keep_secrets: bool = False, known_hosts=None, progress: bool | None = None,
            parallel: int | None = None) -> Collection:
    """Collect from every host into ``out_dir``; failures are recorded, never raised."""
    limits = Limits.from_knowledge(knowledge.limits)
    nodes = [_node_for(h, limits, known_hosts, accept_new) for h in hosts]
    return _collect_nodes(nodes, knowledge, limits, Path(out_dir), keep_secrets, progress, parallel)


def collect_local(knowledge: Knowledge, out_dir, *, name: str | None = None, groups=(),
                  keep_secrets: bool = False, progress: bool | None = None) -> Collection:
    """The same plan run on this machine (``collect --local``)."""
    import socket
    limits = Limits.from_knowledge(knowledge.limits)
    node = LocalNode(name or socket.gethostname() or "localhost", limits)
    node.host = Host(node.host.name, "localhost", user=node.host.user, groups=tuple(groups))
    return _collect_nodes([node], knowledge, limits, Path(out_dir), keep_secrets, progress, 1)


def _node_for(host: Host, limits: Limits, known_hosts, accept_new: bool):
    """``ansible_connection=local`` hosts run here, as Ansible would; the others over SSH."""
    if host.connection == "local":
        node = LocalNode(host.name, limits)
        node.host = host
        return node
    return SSHNode(host, limits, known_hosts=Path(known_hosts) if known_hosts else None,
                   accept_new=accept_new)


def _collect_nodes(nodes, knowledge, limits, out_dir: Path, keep_secrets, progress, parallel) -> Collection:
    names = [n.host.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CollectError(f"the same host is listed twice: {', '.join(duplicates)}")
    prepare_out_dir(out_dir, [_node_dir_name(n) for n in names])
    started = time.monotonic()
    total = sum(len(knowledge.plan(n.host.groups).commands) for n in nodes)
    bar = _Progress(total, progress)
    workers = max(1, min(parallel or int(knowledge.limits["parallel_hosts"]), len(nodes)))
    stop = threading.Event()
    interrupted = False
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect")
    try:
        futures = [pool.submit(_collect_host, node, knowledge, limits, out_dir, keep_secrets, bar, stop)
                   for node in nodes]
        try:
            reports = [_result(future, node, out_dir, keep_secrets) for future, node in zip(futures, nodes)]
        except KeyboardInterrupt:
            # Ctrl-C: no new command starts; the running ones end within their timeout,
            # and everything collected until now is written and listed.
            interrupted = True
            stop.set()
            reports = [_result(future, node, out_dir, keep_secrets) for future, node in zip(futures, nodes)]
    finally:
        pool.shutdown(wait=True)
        bar.close()
    collection = Collection(out_dir, reports, time.monotonic() - started, not keep_secrets)
    (out_dir / MANIFEST).write_text(json.dumps(collection.as_json(), indent=2) + "\n", encoding="utf-8")
    if interrupted:
        raise Interrupted(collection)
    return collection


def _result(future, node, out_dir: Path, keep_secrets: bool) -> HostReport:
    """A host's report; a bug of ours on one host is recorded there, never lost for all."""
    try:
        return future.result()
    except Exception as error:  # keep the other hosts' evidence whatever happened here
        report = HostReport(node.host, [])
        report.failure = HostFailure("internal-error", f"stackdoc failed on this host: "
                                     f"{type(error).__name__}: {error}")
        try:
            _write_host(report, node, out_dir, keep_secrets)
        except OSError:
            pass
        return report
