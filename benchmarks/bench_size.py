"""Evidence of 1, 10 and 50 MB: is the time and the memory linear in its size?

The evidence folder is what a class's lab leaves behind: per node, the commands'
captures of the namespace lab (tests/fixtures/labs) and the services' logs (the
course's cinder-api log), repeated over as many nodes as the size needs. Each size
runs in its own process (so its peak memory is its own), with a memory ceiling
(``MEMORY_CEILING_MB``, address space) and a time limit (``TIME_LIMIT_S``) so that
a run that is not linear fails instead of taking the machine down; a size that the
smaller one, scaled linearly, already puts over the time limit is not run at all.

Two stages are measured apart: reading (collectors/ and grammar/: files to facts)
and diagnosing (kb/: facts to findings). The baseline, in the same run, is the 1 MB
size: larger sizes are reported as ratios of time and memory per MB against it
(1.0x is linear). The aim: at most 10 s and 100 MB per 10 MB of evidence.

    python -m benchmarks.bench_size        (or make bench)
"""
from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES_MB = (1, 10, 50)
TIME_LIMIT_S = 300
MEMORY_CEILING_MB = 6000
AIM_S_PER_10MB = 10
AIM_MB_PER_10MB = 100

LAB = ROOT / "tests" / "fixtures" / "labs" / "other-snat-wrong-interface"
LOG = ROOT / "rules" / "examples" / "seed-cinder-api.log"


def build_folder(folder: Path, megabytes: float) -> int:
    """Writes node directories until the folder holds ``megabytes``; returns bytes."""
    captures = [(path.name, path.read_text()) for path in sorted(LAB.glob("*.txt"))]
    log = LOG.read_text()
    total, node = 0, 0
    while total < megabytes * 1_000_000:
        node += 1
        for name, text in captures:
            # each node its own: the prompt names the node
            text = re.sub(r"(?m)^(\S+@)([\w.-]+)", rf"\g<1>\g<2>-{node}", text)
            path = folder / f"site{node}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            total += len(text.encode())
        (folder / f"site{node}" / "cinder-api.log").write_text(log)
        total += len(log.encode())
    return total


def _measure(folder: str, stage: str) -> None:
    """In the child: read (and diagnose) the folder, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from collectors.files import read_evidence
    from kb.diagnose import diagnose
    # what the process holds before the evidence (interpreter, grammars, rules) is not
    # the evidence's: memory is reported as the peak's growth over it
    diagnose(read_evidence([str(LAB)]))
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    evidence = read_evidence([folder])
    read_s = time.perf_counter() - started
    read_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb
    result = {"read_s": read_s, "read_mb": read_mb, "facts": len(evidence.facts),
              "unparsed": len(evidence.unparsed)}
    if stage == "diagnose":
        started = time.perf_counter()
        diagnosis = diagnose(evidence)
        result.update(diagnose_s=time.perf_counter() - started,
                      diagnose_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb,
                      findings=len(diagnosis.findings))
    print(json.dumps(result), flush=True)


def _limit_memory() -> None:
    ceiling = MEMORY_CEILING_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def run_size(megabytes: float, stage: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        size = build_folder(Path(folder), megabytes)
        try:
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_size", "--measure",
                                   folder, stage], cwd=ROOT, capture_output=True, text=True,
                                  timeout=TIME_LIMIT_S, preexec_fn=_limit_memory)
        except subprocess.TimeoutExpired:
            return {"bytes": size, "error": f"over {TIME_LIMIT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"bytes": size, "error": f"exit {done.returncode}: {last[:160]}"}
    return dict(json.loads(lines[-1]), bytes=size)


def main() -> None:
    print(f"size: an evidence folder of lab captures and logs at {', '.join(map(str, SIZES_MB))} MB "
          f"(aim per 10 MB: <= {AIM_S_PER_10MB} s, <= {AIM_MB_PER_10MB} MB; ratios per MB vs 1 MB)")
    baseline = None
    previous: dict[str, tuple[float, float]] = {}   # stage -> (seconds, megabytes)
    for megabytes in SIZES_MB:
        for stage in ("read", "diagnose"):
            if stage in previous:
                seconds, size = previous[stage]
                expected = seconds * megabytes / size
                if expected > TIME_LIMIT_S:
                    print(f"  {megabytes:>3} MB {stage:<8} not run: {size:g} MB took {seconds:.0f} s, "
                          f"so even linear it would take ~{expected:.0f} s (limit {TIME_LIMIT_S} s)")
                    continue
            result = run_size(megabytes, stage)
            label = f"  {megabytes:>3} MB {stage:<8}"
            if "error" in result:
                print(f"{label} failed: {result['error']}", flush=True)
                # a larger size would fail too: judge it by this one's limit
                previous[stage] = (TIME_LIMIT_S, result["bytes"] / 1e6)
                continue
            seconds = result[f"{stage}_s"] if stage == "read" else result["read_s"] + result["diagnose_s"]
            memory = result[f"{stage}_mb"]
            per_10 = 10 / (result["bytes"] / 1e6)
            line = (f"{label} {seconds:7.1f} s {memory:7.0f} MB more at peak  "
                    f"({seconds * per_10:5.1f} s and {memory * per_10:5.0f} MB per 10 MB; "
                    f"{result['facts']} facts)")
            if megabytes == SIZES_MB[0]:
                baseline = baseline or {}
                baseline[stage] = (seconds / result["bytes"], memory / result["bytes"])
            elif baseline and stage in baseline:
                time_ratio = (seconds / result["bytes"]) / baseline[stage][0]
                memory_ratio = (memory / result["bytes"]) / baseline[stage][1]
                line += f"  time/MB {time_ratio:.1f}x, memory/MB {memory_ratio:.1f}x"
            previous[stage] = (seconds, result["bytes"] / 1e6)
            print(line, flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        _measure(sys.argv[2], sys.argv[3])
    else:
        main()
