"""Every batch run in SQLite, through sqlite-utils, in the chat's own database file (so
the instructor's page shows the runs beside the chat sessions, and any SQLite tool
opens them):

    batch_runs      id, started, finished, status (running|complete|interrupted), labs, rules
    batch_labs      id, run, lab (its name), key (where it lives), at, digest (sha256 of its
                    evidence), status (diagnosed|unusable|error|not diagnosed), error, facts,
                    findings (how many)
    batch_findings  id, run, entry (batch_labs.id), lab, key, cause, node, service, status, title

A lab is followed across runs by ``key`` (its resolved folder): "since last" compares a
lab with its latest earlier diagnosis, in whichever run that was.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

_BUSY_TIMEOUT_SECONDS = 10
DIAGNOSED = "diagnosed"


def _now() -> float:
    return round(time.time(), 3)


def utc(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds)) if seconds else "-"


def entry_status(result: dict) -> str:
    error = result.get("error")
    if not error:
        return DIAGNOSED
    if error.startswith("not diagnosed"):
        return "not diagnosed"
    if error.startswith("internal error"):
        return "error"
    return "unusable"


def finding_key(finding: dict) -> tuple[str, str, str]:
    return (finding["cause"], finding.get("node") or "", finding.get("service") or "")


@dataclass
class Change:
    """One lab since its previous diagnosis: findings as dicts with cause, node,
    service, status."""
    lab: str
    previous_run: int | None
    previous_at: float | None = None
    new: list[dict] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    still: list[dict] = field(default_factory=list)
    evidence_unchanged: bool = False

    def as_json(self) -> dict:
        return {"previous_run": self.previous_run, "new": self.new, "fixed": self.fixed,
                "still": self.still, "evidence_unchanged": self.evidence_unchanged}


class History:
    def __init__(self, path: str, read_only: bool = False):
        self.path = path
        if read_only:
            connection = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True,
                                         timeout=_BUSY_TIMEOUT_SECONDS)
        else:
            connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS)
        self.db = sqlite_utils.Database(connection)
        if not read_only:
            self._ensure_schema()

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ensure_schema(self) -> None:
        db = self.db
        if "batch_findings" in db.table_names():
            return
        if self.path != ":memory:":
            db.enable_wal()
        with db.conn:
            db["batch_runs"].create({"id": int, "started": float, "finished": float, "status": str,
                                     "labs": int, "rules": str}, pk="id", if_not_exists=True)
            db["batch_labs"].create({"id": int, "run": int, "lab": str, "key": str, "at": float,
                                     "digest": str, "status": str, "error": str, "facts": int,
                                     "findings": int}, pk="id", if_not_exists=True)
            db["batch_findings"].create({"id": int, "run": int, "entry": int, "lab": str, "key": str,
                                         "cause": str, "node": str, "service": str, "status": str,
                                         "title": str}, pk="id", if_not_exists=True)
            db["batch_labs"].create_index(["key", "run"], if_not_exists=True)
            db["batch_findings"].create_index(["entry"], if_not_exists=True)

    # --- writing -----------------------------------------------------------------------

    def start_run(self, labs: int, rules: str | None) -> int:
        with self.db.conn:
            table = self.db["batch_runs"].insert({"started": _now(), "finished": None,
                                                  "status": "running", "labs": labs, "rules": rules})
        return table.last_pk

    def record(self, run: int, key: str, result: dict, digest: str | None) -> None:
        """One lab's result, committed at once: an interrupted batch keeps it."""
        with self.db.conn:
            entry = self.db["batch_labs"].insert({
                "run": run, "lab": result["lab"], "key": key, "at": _now(), "digest": digest,
                "status": entry_status(result), "error": result.get("error"),
                "facts": result.get("facts", 0), "findings": len(result.get("findings", []))}).last_pk
            self.db["batch_findings"].insert_all(
                [{"run": run, "entry": entry, "lab": result["lab"], "key": key,
                  "cause": f["cause"], "node": f.get("node"), "service": f.get("service"),
                  "status": f["status"], "title": f.get("title")} for f in result.get("findings", [])])

    def finish_run(self, run: int, interrupted: bool) -> None:
        with self.db.conn:
            self.db["batch_runs"].update(run, {"finished": _now(),
                                               "status": "interrupted" if interrupted else "complete"})

    # --- reading -----------------------------------------------------------------------

    def _findings(self, entry: int) -> list[dict]:
        return [{"cause": row["cause"], "node": row["node"], "service": row["service"],
                 "status": row["status"]}
                for row in self.db["batch_findings"].rows_where("entry = ?", [entry], order_by="id")]

    def since_previous(self, run: int, key: str) -> Change | None:
        """What changed for the lab at ``key`` between its latest diagnosis before ``run``
        and its diagnosis in ``run`` (None when it was not diagnosed in ``run``)."""
        current = next(self.db["batch_labs"].rows_where(
            "run = ? and key = ? and status = ?", [run, key, DIAGNOSED], limit=1), None)
        if current is None:
            return None
        previous = next(self.db["batch_labs"].rows_where(
            "run < ? and key = ? and status = ?", [run, key, DIAGNOSED],
            order_by="run desc, id desc", limit=1), None)
        if previous is None:
            return Change(current["lab"], None)
        now = {finding_key(f): f for f in self._findings(current["id"])}
        before = {finding_key(f): f for f in self._findings(previous["id"])}
        return Change(current["lab"], previous["run"], previous["at"],
                      new=[f for k, f in now.items() if k not in before],
                      fixed=[f for k, f in before.items() if k not in now],
                      still=[f for k, f in now.items() if k in before],
                      evidence_unchanged=current["digest"] == previous["digest"])

    def runs(self, limit: int = 50) -> list[dict]:
        """The latest runs first, each with its labs counted by outcome and its causes
        counted by lab."""
        out = []
        for run in self.db["batch_runs"].rows_where(order_by="id desc", limit=limit):
            entries = list(self.db["batch_labs"].rows_where("run = ?", [run["id"]]))
            causes: dict[str, int] = {}
            for row in self.db.query(
                    "select cause, count(distinct key) as labs from batch_findings "
                    "where run = ? group by cause order by labs desc, cause", [run["id"]]):
                causes[row["cause"]] = row["labs"]
            out.append({**run, "started_utc": utc(run["started"]),
                        "diagnosed": sum(e["status"] == DIAGNOSED for e in entries),
                        "with_causes": sum(e["status"] == DIAGNOSED and e["findings"] > 0
                                           for e in entries),
                        "not_diagnosed": sum(e["status"] != DIAGNOSED for e in entries),
                        "causes": causes})
        return out

    def lab_entries(self, lab: str) -> list[dict]:
        """Every diagnosis of a lab (by its name, or its folder), newest first, each with
        its findings."""
        key = str(Path(lab).resolve())
        rows = self.db["batch_labs"].rows_where("lab = ? or key = ?", [lab, key],
                                                order_by="run desc, id desc")
        return [{**row, "found": self._findings(row["id"])} for row in rows]


def recent_runs(path: str, limit: int = 20) -> list[dict]:
    """The batch runs stored in the database at ``path``, newest first (none when no
    batch has run there yet); for the instructor's page."""
    if not Path(path).exists():
        return []
    with History(path, read_only=True) as history:
        if "batch_findings" not in history.db.table_names():
            return []
        return history.runs(limit)
