"""Diagnose many labs: each lab in a worker, results as plain data, as they come.

``diagnose_lab(job)`` is the worker: a lab's evidence (text) in, a JSON-safe dict out,
the same in a local process, a thread of a Dask worker or this process. An error inside
one lab's diagnosis is caught there and becomes that lab's ``error``; it never reaches
the other labs.

``run_labs`` hands the jobs to local processes (``workers`` > 1), to this process
(``workers`` == 1), or to an existing Dask distributed cluster (``dask_address``), and
calls ``on_result`` in this process for each lab as soon as it is diagnosed, so what
is done is kept even when the batch is interrupted (Ctrl-C) or a worker dies.
"""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable

from batch.labs import LabInput

# Each process loads its own grammars, rules and engine (a second or so, some 35 MB):
# more than a few per core only costs start-up and memory.
MAX_PROCESSES = 4 * (os.cpu_count() or 1)
INTERRUPTED = "not diagnosed: the batch was interrupted"
WORKER_DIED = "not diagnosed: the process diagnosing it stopped (killed, or out of memory)"


# --- the worker ------------------------------------------------------------------------

def job_of(lab_input: LabInput, rules: str | None) -> dict:
    """What a worker needs: plain data, so it pickles for a process or a cluster."""
    return {"lab": lab_input.lab.name, "sources": lab_input.sources, "rules": rules}


@functools.lru_cache(maxsize=4)
def _rulebook(folder: str):
    from kb.rulebook import load_rulebook
    return load_rulebook((folder,))


def diagnose_lab(job: dict) -> dict:
    """One lab's diagnosis as JSON-safe data: ``findings`` (as ``diagnose`` gives them),
    ``unparsed``, ``facts``, ``superseded``, ``walks`` (per finding, the packet walks
    that confirmed it, hop by hop) and ``error`` (None, or why there is no diagnosis)."""
    try:
        return _diagnose(job)
    except Exception as error:  # one lab's bug must not take the class down
        return failed(job["lab"], f"internal error while diagnosing {job['lab']}: "
                                  f"{type(error).__name__}: {error}")


def _diagnose(job: dict) -> dict:
    from grammar.transcript import Evidence, read_transcript
    from kb.diagnose import diagnose

    evidence = Evidence()
    for name, text, node in job["sources"]:
        evidence.extend(read_transcript(text, name, node))
    rulebook = _rulebook(job["rules"]) if job.get("rules") else None
    diagnosis = diagnose(evidence, rulebook)
    result = diagnosis.as_json()
    result["lab"] = job["lab"]
    result["walks"] = [_walks_of(diagnosis.table, finding) for finding in diagnosis.findings]
    result["error"] = None
    if not diagnosis.facts:
        result["error"] = "nothing in the evidence could be read (see what was not read)"
    return result


def _walks_of(table, finding) -> list[dict]:
    """The packet walks a finding rests on (its ``walk_verdict`` facts), walked again
    to show every hop."""
    from kb.walk import WalkError, walk

    walks, seen, stack = [], set(), list(finding.fact_ids)
    while stack:
        fact_id = stack.pop()
        if fact_id in seen:
            continue
        seen.add(fact_id)
        fact = table[fact_id]
        stack.extend(fact.get("derived_from", []))
        if fact["type"] != "walk_verdict":
            continue
        try:
            result = walk(table, fact["source"], fact["destination"], fact["proto"], fact.get("port"))
        except WalkError:
            continue
        walks.append({"kind": fact.get("kind"), **result.as_json()})
    return sorted(walks, key=lambda w: (str(w["kind"]), str(w["packet"])))


def failed(lab: str, error: str) -> dict:
    return {"lab": lab, "findings": [], "unparsed": [], "facts": 0, "superseded": [],
            "walks": [], "error": error}


# --- the batch -------------------------------------------------------------------------

@dataclass
class BatchOutcome:
    results: dict[str, dict] = field(default_factory=dict)    # lab name -> result
    interrupted: bool = False

    def not_diagnosed(self) -> list[str]:
        return [name for name, result in self.results.items()
                if (result.get("error") or "").startswith("not diagnosed")]


def run_labs(inputs: list[LabInput], *, rules: str | None = None, workers: int = 1,
             dask_address: str | None = None, on_result: Callable[[dict], None] = lambda r: None,
             progress=None, worker: Callable[[dict], dict] = diagnose_lab) -> BatchOutcome:
    """Diagnose every lab; labs whose input is unusable are results at once. Ctrl-C
    stops the batch and marks the labs not yet diagnosed; a worker's death marks the lab
    that killed it (the others it took down are run again)."""
    outcome = BatchOutcome()

    def done(result: dict) -> None:
        # a lab is kept (in history, by on_result) and counted as done together, or not at all
        with _interrupts_deferred():
            on_result(result)
            outcome.results[result["lab"]] = result
        if progress is not None:
            progress.update(1)

    jobs = []
    for lab_input in inputs:
        if lab_input.error:
            done(failed(lab_input.lab.name, lab_input.error))
        else:
            jobs.append(job_of(lab_input, rules))
    try:
        if dask_address:
            _on_dask(jobs, dask_address, done, worker)
        elif workers > 1 and len(jobs) > 1:
            _on_processes(jobs, workers, done, worker)
        else:
            for job in jobs:
                done(worker(job))
    except KeyboardInterrupt:
        outcome.interrupted = True
    for job in jobs:
        if job["lab"] not in outcome.results:
            done(failed(job["lab"], INTERRUPTED if outcome.interrupted else WORKER_DIED))
    return outcome


@contextlib.contextmanager
def _interrupts_deferred():
    """Ctrl-C inside the block takes effect when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the batch's own process decides what
    # happens, the workers only finish or are stopped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _on_processes(jobs, workers, done, worker) -> None:
    # A worker's death breaks its whole pool and every lab in flight with it; keeping no
    # more labs in flight than there are workers bounds that to a few, and those few are
    # then run one by one, so only the lab that takes its worker down is lost.
    queue = list(jobs)
    suspects = []
    while queue:
        queue, broken = _on_pool(queue, min(workers, len(queue), MAX_PROCESSES), done, worker)
        suspects += broken
    for job in suspects:
        for lost in _on_pool([job], 1, done, worker)[1]:
            done(failed(lost["lab"], WORKER_DIED))


def _on_pool(queue, width, done, worker):
    """Run the queue's labs on a pool of ``width`` processes until done or the pool
    breaks; returns (labs not started, labs in flight when it broke)."""
    # spawn, not fork: the engine's host keeps threads that a forked child would lack
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(max_workers=width, mp_context=context,
                                   initializer=_ignore_interrupts)
    waiting = iter(queue)
    pending = {}
    broken = []
    # a job taken from the queue when the pool had just broken (a worker died while
    # another's result came in): never started, so it goes back to the queue
    not_started = []

    def submit_next() -> bool:
        if not_started:
            return False
        job = next(waiting, None)
        if job is None:
            return False
        try:
            pending[executor.submit(worker, job)] = job
        except BrokenProcessPool:
            not_started.append(job)
            return False
        return True

    try:
        for _ in range(width):
            submit_next()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                try:
                    done(future.result())
                except BrokenProcessPool:
                    broken.append(job)
                except Exception as error:
                    done(failed(job["lab"], f"internal error while diagnosing {job['lab']}: "
                                            f"{type(error).__name__}: {error}"))
            while not broken and len(pending) < width and submit_next():
                pass
    except KeyboardInterrupt:
        _stop(executor)
        raise
    executor.shutdown(wait=True)
    return not_started + list(waiting), broken


def _stop(executor: ProcessPoolExecutor) -> None:
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def _on_dask(jobs, address, done, worker) -> None:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        for job in jobs:
            done(failed(job["lab"], f"not diagnosed: cannot reach the Dask scheduler at {address} "
                                    f"({type(error).__name__}: {error})"))
        return
    with client:
        batch = uuid.uuid4().hex[:12]
        futures = {client.submit(worker, job, pure=False, key=f"stackdoc-{batch}-{i}"): job
                   for i, job in enumerate(jobs)}
        try:
            for future in as_completed(list(futures), loop=client.loop):
                job = futures[future]
                try:
                    done(future.result())
                except Exception as error:  # KilledWorker, a lost connection ...
                    done(failed(job["lab"], f"not diagnosed: the Dask cluster lost it "
                                            f"({type(error).__name__}: {error})"))
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise
