"""A batch survives what happens to batches: a bug in one lab's diagnosis, a worker
killed, Ctrl-C, and runs on a Dask cluster (a LocalCluster on loopback) that give what
local processes give."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app import main
from batch.history import History
from batch.labs import find_labs, read_lab
from batch.run import INTERRUPTED, WORKER_DIED, diagnose_lab, run_labs
from benchmarks import gen_class

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "tests" / "fixtures" / "class" / "labs"
EXPECTED = json.loads((LABS.parent / "expected.json").read_text())


def _inputs(names):
    labs, _ = find_labs([str(LABS / name) for name in names], None)
    return [read_lab(lab) for lab in labs]


def _dies_on_lab_05(job):
    """A worker that is killed (as by the OOM killer) while diagnosing lab-05."""
    if job["lab"] == "lab-05":
        os.kill(os.getpid(), signal.SIGKILL)
    return diagnose_lab(job)


def test_a_bug_in_one_labs_diagnosis_is_reported_with_its_name(capsys, tmp_path, monkeypatch):
    import kb.diagnose
    real = kb.diagnose.diagnose

    def fails_on_lab_03(evidence, rulebook=None):
        if any("lab-03" in str(f["prov"]["source"]) for f in evidence.facts if f.get("prov")):
            raise KeyError("gateway")
        return real(evidence, rulebook)

    monkeypatch.setattr(kb.diagnose, "diagnose", fails_on_lab_03)
    names = ["lab-01", "lab-03", "lab-06"]
    code = main(["batch", *(str(LABS / n) for n in names), "--format", "json", "--workers", "1",
                 "--db", str(tmp_path / "h.db")])
    out, err = capsys.readouterr()
    assert code == 2
    labs = {lab["lab"]: lab for lab in json.loads(out)["labs"]}
    assert labs["lab-03"]["error"] == "internal error while diagnosing lab-03: KeyError: 'gateway'"
    assert "internal error while diagnosing lab-03: KeyError: 'gateway'" in err
    for name in ("lab-01", "lab-06"):
        assert sorted({f["cause"] for f in labs[name]["findings"]}) == EXPECTED[name]["causes"]


def test_a_killed_worker_keeps_what_was_diagnosed_and_says_which_were_not(tmp_path):
    names = [f"lab-{n:02d}" for n in range(1, 11)]
    with History(str(tmp_path / "h.db")) as history:
        run = history.start_run(len(names), None)
        outcome = run_labs(_inputs(names), workers=2, worker=_dies_on_lab_05,
                           on_result=lambda r: history.record(run, r["lab"], r, None))
        history.finish_run(run, outcome.interrupted)
        stored = {row["lab"]: row["status"] for row in history.db["batch_labs"].rows}
    assert set(outcome.results) == set(names)
    # the labs that were in flight beside lab-05 when its worker died are run again
    assert outcome.not_diagnosed() == ["lab-05"]
    for name, result in outcome.results.items():
        if name in outcome.not_diagnosed():
            assert result["error"] == WORKER_DIED and stored[name] == "not diagnosed"
        else:
            assert result["error"] is None and stored[name] == "diagnosed"
            assert sorted({f["cause"] for f in result["findings"]}) == EXPECTED[name]["causes"]


def test_ctrl_c_keeps_the_diagnosed_labs_in_history(tmp_path, monkeypatch):
    import kb.diagnose
    real = kb.diagnose.diagnose
    calls = []

    def interrupted_on_the_third(evidence, rulebook=None):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(evidence, rulebook)

    monkeypatch.setattr(kb.diagnose, "diagnose", interrupted_on_the_third)
    names = ["lab-01", "lab-02", "lab-03", "lab-04", "lab-05"]
    with History(str(tmp_path / "h.db")) as history:
        run = history.start_run(len(names), None)
        outcome = run_labs(_inputs(names), workers=1,
                           on_result=lambda r: history.record(run, r["lab"], r, None))
        history.finish_run(run, outcome.interrupted)
        stored = {row["lab"]: row["status"] for row in history.db["batch_labs"].rows}
        assert history.runs()[0]["status"] == "interrupted"
    assert outcome.interrupted
    assert outcome.not_diagnosed() == ["lab-03", "lab-04", "lab-05"]
    assert all(outcome.results[n]["error"] == INTERRUPTED for n in outcome.not_diagnosed())
    assert stored == {"lab-01": "diagnosed", "lab-02": "diagnosed", "lab-03": "not diagnosed",
                      "lab-04": "not diagnosed", "lab-05": "not diagnosed"}


def test_ctrl_c_on_a_terminal_stops_the_batch_and_its_workers(tmp_path):
    classroom = tmp_path / "class"
    gen_class.write_class(classroom, 60)
    db = tmp_path / "h.db"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "batch", "--class", str(classroom), "--workers", "2",
         "--db", str(db), "--format", "json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    diagnosed = 0
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    diagnosed = connection.execute("select count(*) from batch_labs").fetchone()[0]
            except sqlite3.OperationalError:
                diagnosed = 0                                    # schema not there yet
        if diagnosed:
            break
        time.sleep(0.01)
    assert diagnosed, "no lab was diagnosed within 60 s"
    os.killpg(process.pid, signal.SIGINT)                        # what Ctrl-C does
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    summary = json.loads(out)
    not_done = [lab["lab"] for lab in summary["labs"] if lab["error"] == INTERRUPTED]
    done = [lab["lab"] for lab in summary["labs"] if lab["error"] is None]
    assert not_done and done and len(done) + len(not_done) == 60
    assert f"interrupted: {len(done)} of 60 labs diagnosed and kept in history" in err
    assert "Traceback" not in err
    with sqlite3.connect(db) as connection:
        stored = dict(connection.execute("select lab, status from batch_labs").fetchall())
    assert {lab for lab, status in stored.items() if status == "diagnosed"} == set(done)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as local:
        yield local.scheduler_address


def test_a_dask_cluster_gives_what_local_processes_give(capsys, tmp_path, cluster):
    assert cluster.startswith("tcp://127.0.0.1:")
    args = ["batch", "--class", str(LABS), "--format", "json", "--db", str(tmp_path / "h.db")]
    assert main(args + ["--dask", cluster]) == 1
    on_dask = capsys.readouterr().out
    assert main(args + ["--workers", "2"]) == 1
    assert on_dask == capsys.readouterr().out
    labs = json.loads(on_dask)["labs"]
    assert {lab["lab"]: sorted({f["cause"] for f in lab["findings"]}) for lab in labs} == \
        {name: lab["causes"] for name, lab in EXPECTED.items()}


def test_an_unreachable_scheduler_leaves_every_lab_not_diagnosed_and_says_why(capsys, tmp_path):
    import socket
    with socket.socket() as unused:                 # a loopback port nobody listens on
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
    code = main(["batch", str(LABS / "lab-01"), "--dask", address, "--db", str(tmp_path / "h.db")])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"lab-01: not diagnosed: cannot reach the Dask scheduler at {address}" in err
