"""How long a diagnosis takes, as a user runs it and once stackdoc has started.

* whole process, as a user runs it (median wall time of ``repeats`` fresh processes):
  - ``app.py diagnose --format json`` of a nova network node's 20,015-rule nat listing
    (benchmarks/gen_nova_nat.py), beside ``jc --iptables`` on the same listing in the
    same run, the two in turn: the baseline; aim at least 5x faster;
  - ``app.py diagnose`` of the seed's network-node transcript
    (rules/examples/seed-network-node.txt); aim at most 0.12 s;
* after start-up (in-process, median of ``repeats``): the seed's testbed as the course
  found it (tests/fixtures/labs/seed-as-found) plus the volume node's cinder-api.log;
* linear in nodes: the captured lab grown to 10, 50, 100 and 200 nodes
  (benchmarks/gen_lab.py), read and diagnosed in-process; time per node should stay flat.

Start-up caches (lark's grammars, the loaded rulebook, the kinds' command patterns, the
compiled regular expressions) live in the repository's own ``.cache/``; one untimed run
fills them first, as any earlier use would have.

On a machine shared with other work, wall and even CPU time move with the load; where
valgrind is installed the seed's run is also counted in instructions (callgrind), beside
a bare ``python -c pass`` counted the same way: a figure that does not move with the load.
Each process's minor page faults are counted too: on a virtual machine each costs some
microseconds (the host backs the page), so memory first touched is time, and a short
process that touches much of it pays more for it than a long one.
"""
from __future__ import annotations

import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import gen_lab, gen_nova_nat

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "tests" / "fixtures" / "labs" / "seed-as-found"
VOLUME_LOG = ROOT / "rules" / "examples" / "seed-cinder-api.log"
SEED_NETWORK_NODE = ROOT / "rules" / "examples" / "seed-network-node.txt"
NODE_COUNTS = (10, 50, 100, 200)
AIM_VS_JC = 5.0
AIM_SEED_SECONDS = 0.12


def snapshot():
    from grammar.transcript import Evidence, read_transcript
    evidence = Evidence()
    for path in sorted(LAB.glob("*.txt")):
        evidence.extend(read_transcript(path.read_text(), str(path)))
    evidence.extend(read_transcript(VOLUME_LOG.read_text(), str(VOLUME_LOG), node="volume-node"))
    return evidence


# As a user runs it: Python keeps the compiled modules (a sandbox may have turned
# that off for its own processes).
_USER_ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _one_process(command: list[str], stdin_path: Path | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds (user + system), minor page faults) of one fresh process."""
    with open(stdin_path or "/dev/null", "rb") as stdin:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False, env=_USER_ENVIRONMENT)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, after.ru_minflt - before.ru_minflt


def _medians(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    return tuple(statistics.median(run[field] for run in runs) for field in range(3))


def _process_seconds(command: list[str], stdin_path: Path | None, repeats: int) -> float:
    """Median wall time of fresh processes; their median CPU time (user + system) is
    kept in ``_process_seconds.cpu``: on a busy machine it is the steadier figure."""
    wall, _process_seconds.cpu, _process_seconds.faults = _medians(
        [_one_process(command, stdin_path) for _ in range(repeats)])
    return wall


def instructions(command: list[str]) -> int | None:
    """Instructions one run of ``command`` executes (valgrind's callgrind); None where
    valgrind is not installed."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        return None
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run([valgrind, "--tool=callgrind",
                                 f"--callgrind-out-file={directory}/callgrind.out", *command],
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=_USER_ENVIRONMENT,
                                check=False, timeout=600)
    found = re.search(r"Collected : (\d+)", result.stderr)
    return int(found.group(1)) if found else None


def whole_process(repeats: int = 5) -> dict:
    jc = shutil.which("jc") or str(Path(sys.executable).with_name("jc"))
    with tempfile.TemporaryDirectory() as directory:
        listing = Path(directory) / "nat.txt"
        listing.write_text(gen_nova_nat.listing_text(5000))
        transcript = Path(directory) / "net01.txt"
        transcript.write_text("root@net01:~# iptables -L -t nat -v\n" + listing.read_text())
        ours = [sys.executable, "app.py", "diagnose", "--format", "json", str(transcript)]
        seed = [sys.executable, "app.py", "diagnose", str(SEED_NETWORK_NODE)]
        _process_seconds(ours, None, 1)        # fills .cache/ as any earlier run would
        _process_seconds(seed, None, 1)
        # ours and jc's in turn: a host whose speed drifts over the runs (a virtual
        # machine's neighbours) slows both alike, and their ratio stays fair
        runs = [(_one_process(ours, None), _one_process([jc, "--iptables"], listing))
                for _ in range(repeats)]
        result = dict(zip(("nat_seconds", "nat_cpu", "nat_faults"), _medians([r[0] for r in runs])))
        result.update(zip(("jc_seconds", "jc_cpu", "jc_faults"), _medians([r[1] for r in runs])))
        result["seed_seconds"] = _process_seconds(seed, None, repeats * 2)
        result["seed_cpu"] = _process_seconds.cpu
        result["seed_faults"] = _process_seconds.faults
        result["load"] = os.getloadavg()[0]   # what else ran meanwhile moves wall and CPU times
    result["vs_jc"] = result["jc_seconds"] / result["nat_seconds"]
    result["vs_jc_cpu"] = result["jc_cpu"] / result["nat_cpu"]
    result["seed_instructions"] = instructions(seed)
    result["python_instructions"] = instructions([sys.executable, "-c", "pass"])
    return result


def in_process(repeats: int = 20) -> dict:
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
            "read_ms": statistics.median(reading) * 1000,
            "diagnose_ms": statistics.median(total) * 1000}


def by_nodes(repeats: int = 3) -> list[dict]:
    from grammar.transcript import read_transcript
    from kb.diagnose import diagnose
    rows = []
    for count in NODE_COUNTS:
        text = gen_lab.many_nodes(count)
        reads, diagnoses = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            evidence = read_transcript(text, "lab.txt")
            t1 = time.perf_counter()
            diagnose(evidence)
            t2 = time.perf_counter()
            reads.append(t1 - t0)
            diagnoses.append(t2 - t1)
        rows.append({"nodes": count, "read_ms": min(reads) * 1000,
                     "diagnose_ms": min(diagnoses) * 1000})
    return rows


def run() -> dict:
    return {"process": whole_process(), "lab": in_process(), "nodes": by_nodes()}


def main() -> None:
    process = whole_process()
    print("diagnosis, whole process as a user runs it (median wall time; CPU time)")
    print(f"  diagnose --format json, 20,015-rule nat listing: {process['nat_seconds']:7.3f} s; "
          f"{process['nat_cpu']:.3f} s CPU")
    print(f"  jc --iptables, the same listing (baseline):       {process['jc_seconds']:7.3f} s; "
          f"{process['jc_cpu']:.3f} s CPU")
    print(f"    -> {process['vs_jc']:.1f}x jc by wall time, {process['vs_jc_cpu']:.1f}x by CPU time "
          f"(aim >= {AIM_VS_JC:.0f}x); page faults {process['nat_faults']:,.0f} "
          f"against jc's {process['jc_faults']:,.0f}")
    print(f"  diagnose, the seed's network-node transcript:     {process['seed_seconds']:7.3f} s; "
          f"{process['seed_cpu']:.3f} s CPU (aim <= {AIM_SEED_SECONDS} s); "
          f"{process['seed_faults']:,.0f} page faults")
    if process["seed_instructions"]:
        print(f"    counted: {process['seed_instructions'] / 1e6:.0f} M instructions "
              f"(a bare python -c pass: {process['python_instructions'] / 1e6:.0f} M)")
    print(f"  (load average {process['load']:.2f} at the end of these runs, on {os.cpu_count()} cores)")
    result = in_process()
    print(f"six-node lab diagnosis after start-up ({result['nodes']} nodes, {result['facts']} facts, "
          f"{len(result['findings'])} causes)")
    print(f"  read only:      {result['read_ms']:8.1f} ms")
    print(f"  read+diagnose:  {result['diagnose_ms']:8.1f} ms  (aim < 100 ms)")
    print("diagnosis time by lab size (read / diagnose, best of 3; per node should stay flat)")
    rows = by_nodes()
    for row in rows:
        print(f"  {row['nodes']:4d} nodes: read {row['read_ms']:8.1f} ms, diagnose "
              f"{row['diagnose_ms']:7.1f} ms ({row['diagnose_ms'] / row['nodes']:.2f} ms/node)")
    first, last = rows[0], rows[-1]
    ratio = (last["diagnose_ms"] / last["nodes"]) / (first["diagnose_ms"] / first["nodes"])
    print(f"  per-node diagnose time at {last['nodes']} nodes is {ratio:.2f}x that at {first['nodes']}")


if __name__ == "__main__":
    main()
