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

Each prints labs per second and the speed-up over the baseline of the same run; every
way must find the same causes in every lab.
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


def _causes(outcome) -> dict[str, list]:
    return {name: sorted((f["cause"], f["node"]) for f in result["findings"]) + [result["error"]]
            for name, result in outcome.results.items()}


def _timed(inputs, **how) -> tuple[float, dict]:
    started = time.perf_counter()
    outcome = run_labs(inputs, **how)
    return time.perf_counter() - started, _causes(outcome)


def run(count: int = LABS) -> dict:
    cores = os.cpu_count() or 1
    workers = max(2, cores)
    with tempfile.TemporaryDirectory(prefix="stackdoc-bench-batch-") as folder:
        gen_class.write_class(Path(folder), count)
        started = time.perf_counter()
        labs, _ = find_labs([], folder)
        inputs = [read_lab(lab) for lab in labs]
        reading = time.perf_counter() - started

        rows = {}
        rows["one worker (this process)"], baseline = _timed(inputs, workers=1)
        rows[f"{workers} local processes"], local = _timed(inputs, workers=workers)
        from distributed import LocalCluster
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster:
            rows[f"Dask LocalCluster, {workers} worker processes"], on_dask = \
                _timed(inputs, dask_address=cluster.scheduler_address)
    if not baseline == local == on_dask:
        raise SystemExit("bench_batch: the three ways found different causes")
    with_causes = sum(1 for causes in baseline.values() if len(causes) > 1)
    return {"labs": count, "cores": cores, "reading_s": reading, "with_causes": with_causes,
            "rows": rows}


def main(argv: list[str] | None = None) -> None:
    count = int(argv[0]) if argv else LABS
    result = run(count)
    rows = result["rows"]
    base = next(iter(rows.values()))
    print(f"batch of {result['labs']} generated labs ({result['with_causes']} with causes; "
          f"{result['cores']} cores; evidence read in {result['reading_s']:.2f} s)")
    for name, seconds in rows.items():
        print(f"  {name:<40} {seconds:7.2f} s  {result['labs'] / seconds:7.1f} labs/s  "
              f"{base / seconds:5.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
