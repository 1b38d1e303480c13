"""Evidence of 1, 10 and 50 MB: is the time and the memory linear in its size?

The evidence folder is what a class's lab leaves behind: per node, the commands'
captures of the namespace lab (tests/fixtures/labs) and the services' logs (the
course's cinder-api log), repeated over as many sites as the size needs, each site's
nodes named after it and holding the site's own addresses (``renumber``), as the nodes
of one large lab do. Each size runs in its own process (so its peak memory is its
own), with a memory ceiling (``MEMORY_CEILING_MB``, address space) and a time limit
(``TIME_LIMIT_S``) so that a run that is not linear fails instead of taking the
machine down; a size that the smaller one, scaled linearly, already puts over the time
limit is not run at all.

Two stages are measured, in one process: reading (collectors/ and grammar/: files to
facts) and diagnosing (kb/: facts to findings; its line counts both stages). The
baseline, in the same run, is the 1 MB size: larger sizes are reported as ratios of
time and memory per MB against it (1.0x is linear). The aim: at most 10 s and 100 MB
per 10 MB of evidence. Each site is a part of the evidence no rule joins across
(kb/components.py), so the engine holds a few sites at a time and every site is judged.
Then one node's transcript pasted again and again to 10 MB (each listing sets the one
before aside, and repeated facts go into the engine once). Last, 10 MB of sites that all keep the lab's addresses: they are then one part (every
site's gateway holds every site's next hop), every join on an address is quadratic,
and the engine's fact cap bounds the diagnosis, which says what it left out.

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
SAME_ADDRESSES_MB = 10

LAB = ROOT / "tests" / "fixtures" / "labs" / "other-snat-wrong-interface"
LOG = ROOT / "rules" / "examples" / "seed-cinder-api.log"
NODE_TRANSCRIPT = LAB / "net01.txt"
REPEATED_MB = 10


_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\d)")
# left as they are in every node: loopback, link-local, "any", masks and multicast
_SHARED_FIRST_OCTETS = {"0", "127", "169", "224", "255"}


def renumber(text: str, site: int, publics: list[tuple[str, str]]) -> str:
    """The lab's addresses moved to the site's own, keeping every prefix up to /16: a
    private 10.b.c.d (c < 8) becomes 10.A.(8B+c).d, a public a.b.c.d a public /16 of the
    site's (first octet 11-99: global, never one the lab or the host uses). So each site
    is a lab of its own, as the nodes of one large lab are, instead of thousands of nodes
    claiming one address (which is ambiguous evidence: see ``--same-addresses``).
    ``publics``: the lab's public /16s, in one order for every file."""

    def moved(match: re.Match) -> str:
        a, b, c, d = match.groups()
        if a in _SHARED_FIRST_OCTETS or int(a) > 223:
            return match.group(0)
        if a == "10":
            if int(c) >= 8:
                return match.group(0)
            return f"10.{site // 32 % 256}.{site % 32 * 8 + int(c)}.{d}"
        if (a, b) not in publics:
            return match.group(0)
        index = site * len(publics) + publics.index((a, b))
        return f"{11 + index // 256 % 89}.{index % 256}.{c}.{d}"

    return _IPV4.sub(moved, text)


def build_repeated(folder: Path, megabytes: float) -> int:
    """One node's transcript (the lab's network node) pasted over and over to
    ``megabytes``: the same listings again and again on one node."""
    text = NODE_TRANSCRIPT.read_text()
    path = folder / "transcript.txt"
    path.write_text(text * max(1, int(megabytes * 1_000_000 / len(text.encode()))))
    return path.stat().st_size


def build_folder(folder: Path, megabytes: float, same_addresses: bool = False) -> int:
    """Writes node directories until the folder holds ``megabytes``; returns bytes.
    Each site's nodes are named after it and (unless ``same_addresses``) hold its own
    addresses."""
    captures = [(path.name, path.read_text()) for path in sorted(LAB.glob("*.txt"))]
    log = LOG.read_text()
    publics = sorted({(a, b) for _, text in captures for a, b, c, d in _IPV4.findall(text)
                      if a != "10" and a not in _SHARED_FIRST_OCTETS and int(a) <= 223})
    total, node = 0, 0
    while total < megabytes * 1_000_000:
        node += 1
        for name, text in captures:
            # each node its own: the prompt names the node
            text = re.sub(r"(?m)^(\S+@)([\w.-]+)", rf"\g<1>\g<2>-{node}", text)
            if not same_addresses:
                text = renumber(text, node, publics)
            path = folder / f"site{node}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            total += len(text.encode())
        (folder / f"site{node}" / "cinder-api.log").write_text(log)
        total += len(log.encode())
    return total


def _measure(folder: str) -> None:
    """In the child: read and diagnose the folder, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from collectors.files import read_evidence
    from kb.diagnose import diagnose
    # what the process holds before the evidence (interpreter, grammars, rules) is not
    # the evidence's: memory is reported as the peak's growth over it
    diagnose(read_evidence([str(LAB)]))
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    evidence = read_evidence([folder])
    read_s = time.perf_counter() - started
    read_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb
    started = time.perf_counter()
    diagnosis = diagnose(evidence, handed_over=True)      # as `app.py diagnose` does
    print(json.dumps({
        "read_s": read_s, "read_mb": read_mb, "facts": len(evidence.facts),
        "unparsed": len(evidence.unparsed), "diagnose_s": time.perf_counter() - started,
        # what the two stages took of a core: on a busy machine, closer to a quiet one's
        # wall time than the wall time is
        "cpu_s": time.process_time() - cpu_started,
        "diagnose_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_mb,
        "findings": len(diagnosis.findings), "left_out": diagnosis.left_out}), flush=True)


def _limit_memory() -> None:
    ceiling = MEMORY_CEILING_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def run_size(megabytes: float, same_addresses: bool = False, repeated: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        size = (build_repeated(Path(folder), megabytes) if repeated
                else build_folder(Path(folder), megabytes, same_addresses))
        try:
            done = subprocess.run([sys.executable, "-m", "benchmarks.bench_size", "--measure",
                                   folder], cwd=ROOT, capture_output=True, text=True,
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
    baseline: dict[str, tuple[float, float]] = {}
    previous: tuple[float, float] | None = None      # (seconds, megabytes) of the last size
    for megabytes in SIZES_MB:
        if previous:
            expected = previous[0] * megabytes / previous[1]
            if expected > TIME_LIMIT_S:
                print(f"  {megabytes:>3} MB not run: {previous[1]:g} MB took {previous[0]:.0f} s, "
                      f"so even linear it would take ~{expected:.0f} s (limit {TIME_LIMIT_S} s)")
                continue
        result = run_size(megabytes)
        if "error" in result:
            print(f"  {megabytes:>3} MB failed: {result['error']}", flush=True)
            # a larger size would fail too: judge it by this one's limit
            previous = (TIME_LIMIT_S, result["bytes"] / 1e6)
            continue
        for stage in ("read", "diagnose"):
            seconds = result["read_s"] + (result["diagnose_s"] if stage == "diagnose" else 0)
            memory = result[f"{stage}_mb"]
            per_10 = 10 / (result["bytes"] / 1e6)
            line = (f"  {megabytes:>3} MB {stage:<8} {seconds:7.1f} s {memory:7.0f} MB more at peak  "
                    f"({seconds * per_10:5.1f} s and {memory * per_10:5.0f} MB per 10 MB; "
                    f"{result['facts']} facts")
            line += (f", {result['findings']} findings; CPU {result['cpu_s']:.1f} s)"
                     if stage == "diagnose" else ")")
            if megabytes == SIZES_MB[0]:
                baseline[stage] = (seconds / result["bytes"], memory / result["bytes"])
            elif stage in baseline:
                time_ratio = (seconds / result["bytes"]) / baseline[stage][0]
                memory_ratio = (memory / result["bytes"]) / baseline[stage][1]
                line += f"  time/MB {time_ratio:.1f}x, memory/MB {memory_ratio:.1f}x"
            print(line, flush=True)
        for note in result["left_out"]:
            print(f"         left out: {note}")
        previous = (result["read_s"] + result["diagnose_s"], result["bytes"] / 1e6)
    # one node's transcript pasted again and again: each listing sets the one before
    # aside, and repeated facts go into the engine once
    result = run_size(REPEATED_MB, repeated=True)
    if "error" in result:
        print(f"  {REPEATED_MB:>3} MB, one transcript repeated: failed: {result['error']}")
    else:
        print(f"  {REPEATED_MB:>3} MB, one transcript repeated: read {result['read_s']:.1f} s, "
              f"diagnosed {result['diagnose_s']:.1f} s more, {result['diagnose_mb']:.0f} MB more at "
              f"peak, {result['findings']} findings, left out: {'; '.join(result['left_out']) or 'nothing'}")
    # thousands of nodes claiming the same addresses: every join on an address is
    # quadratic, so the engine's fact cap is what bounds it (and the report says so)
    result = run_size(SAME_ADDRESSES_MB, same_addresses=True)
    if "error" in result:
        print(f"  {SAME_ADDRESSES_MB:>3} MB, every site the same addresses: failed: {result['error']}")
        return
    print(f"  {SAME_ADDRESSES_MB:>3} MB, every site the same addresses: "
          f"{result['read_s'] + result['diagnose_s']:.1f} s, {result['diagnose_mb']:.0f} MB more at "
          f"peak, {result['findings']} findings, left out: {'; '.join(result['left_out']) or 'nothing'}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        _measure(sys.argv[2])
    else:
        main()
