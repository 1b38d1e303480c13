"""How fast a class is diagnosed: 200 labs, one worker, local processes, a Dask cluster.

``python -m benchmarks.bench_batch [LABS]`` generates LABS labs (default 200) from the
real namespace captures (benchmarks/gen_class.py: the ten fault combinations and two
namings of tests/fixtures/labs/, each lab's nodes renamed and addresses renumbered),
reads them once, and diagnoses the whole class three ways, as ``app.py batch`` does:

* one worker: every lab in this process, one after another (the baseline; it pays the
  start-up, grammars and rules, once);
* local processes, one per core (``--workers N``): each pays its own start-up;
* a Dask ``LocalCluster`` of one worker process per core on loopback (``--dask
  ADDRESS``), started before the clock runs, as an existing cluster would be.

Each prints labs per second and the speed-up over the baseline of the same run, the best
of ``REPEATS`` rounds (the three ways take turns in each round, so a burst of other work
on the machine does not fall on one way only); every way must find the same causes in
every lab.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from batch.labs import find_labs, read_lab
from batch.run import run_labs
from benchmarks import gen_class

LABS = 200
REPEATS = 2


def _causes(outcome) -> dict[str, list]:
    return {name: sorted((f["cause"], f["node"]) for f in result["findings"]) + [result["error"]]
            for name, result in outcome.results.items()}


def _timed(inputs, **how) -> tuple[float, dict]:
    started = time.perf_counter()
    outcome = run_labs(inputs, **how)
    return time.perf_counter() - started, _causes(outcome)


def run(count: int = LABS, repeats: int = REPEATS) -> dict:
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    workers = max(2, cores)
    ways = {"one worker (this process)": {"workers": 1},
            f"{workers} local processes": {"workers": workers}}
    dask_way = f"Dask LocalCluster, {workers} worker processes"
    best: dict[str, float] = {}
    found: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="stackdoc-bench-batch-") as folder, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         host="127.0.0.1", dashboard_address=None) as cluster:
        ways[dask_way] = {"dask_address": cluster.scheduler_address}
        gen_class.write_class(Path(folder), count)
        started = time.perf_counter()
        labs, _ = find_labs([], folder)
        inputs = [read_lab(lab) for lab in labs]
        reading = time.perf_counter() - started
        for _ in range(repeats):
            for name, how in ways.items():
                seconds, found[name] = _timed(inputs, **how)
                best[name] = min(seconds, best.get(name, seconds))
    first = next(iter(found.values()))
    if any(causes != first for causes in found.values()):
        raise SystemExit("bench_batch: the three ways found different causes")
    with_causes = sum(1 for causes in first.values() if len(causes) > 1)
    return {"labs": count, "cores": cores, "reading_s": reading, "with_causes": with_causes,
            "rows": best, "repeats": repeats}


def main(argv: list[str] | None = None) -> None:
    count = int(argv[0]) if argv else LABS
    result = run(count)
    rows = result["rows"]
    base = next(iter(rows.values()))
    print(f"batch of {result['labs']} generated labs ({result['with_causes']} with causes; "
          f"{result['cores']} cores; evidence read in {result['reading_s']:.2f} s; "
          f"best of {result['repeats']})")
    for name, seconds in rows.items():
        print(f"  {name:<40} {seconds:7.2f} s  {result['labs'] / seconds:7.1f} labs/s  "
              f"{base / seconds:5.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
