"""How long a full diagnosis of a six-node lab takes, once stackdoc has started.

The snapshot is the seed's testbed as the course found it (all four floating-IP faults),
captured from the namespace lab (tests/fixtures/labs/seed-as-found: VM, compute node,
network node, physical node, outside host) plus the volume node's cinder-api.log from
the seed. Start-up (importing, compiling grammars, registering the rules) is timed
once in a fresh process; then reading and diagnosing the snapshot is timed in-process,
median of ``repeats`` runs, beside reading alone (the parse share).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "tests" / "fixtures" / "labs" / "seed-as-found"
VOLUME_LOG = ROOT / "rules" / "examples" / "seed-cinder-api.log"


def snapshot():
    from grammar.transcript import Evidence, read_transcript
    evidence = Evidence()
    for path in sorted(LAB.glob("*.txt")):
        evidence.extend(read_transcript(path.read_text(), str(path)))
    evidence.extend(read_transcript(VOLUME_LOG.read_text(), str(VOLUME_LOG), node="volume-node"))
    return evidence


def run(repeats: int = 20) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import benchmarks.bench_diagnose as b; "
                    "from kb.diagnose import diagnose; diagnose(b.snapshot())"],
                   cwd=ROOT, check=True)
    cold = time.perf_counter() - started

    from kb.diagnose import diagnose
    diagnosis = diagnose(snapshot())  # warm: grammars compiled, rules registered
    nodes = {f.get("node") for f in diagnosis.table.facts if f.get("prov")}
    reading, total = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evidence = snapshot()
        t1 = time.perf_counter()
        diagnose(evidence)
        t2 = time.perf_counter()
        reading.append(t1 - t0)
        total.append(t2 - t0)
    return {"nodes": len(nodes), "facts": diagnosis.facts,
            "findings": sorted(f.cause for f in diagnosis.findings),
            "cold_process_s": cold, "read_ms": statistics.median(reading) * 1000,
            "diagnose_ms": statistics.median(total) * 1000}


def main() -> None:
    result = run()
    print(f"six-node lab diagnosis ({result['nodes']} nodes, {result['facts']} facts, "
          f"{len(result['findings'])} causes)")
    print(f"  whole process, cold start:      {result['cold_process_s'] * 1000:8.0f} ms")
    print(f"  after start-up, read only:      {result['read_ms']:8.1f} ms")
    print(f"  after start-up, read+diagnose:  {result['diagnose_ms']:8.1f} ms  (aim < 100 ms)")


if __name__ == "__main__":
    main()
