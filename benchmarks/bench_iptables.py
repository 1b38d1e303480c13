"""How fast stackdoc reads iptables output, against jc, on a 20,000-rule nova nat table.

``python -m benchmarks.bench_iptables`` prints a short table; ``run()`` returns the numbers.

The ruleset is ``gen_nova_nat`` with 5,000 floating IPs. As root with ``ip netns``, it is
loaded with iptables-restore into a fresh network namespace (no interface up, an
/etc/hosts with only localhost, so the name lookups of ``-L`` without ``-n`` go nowhere)
and ``iptables -t nat -L -v`` and ``iptables-save -t nat`` are captured; otherwise the
generated texts are used (``gen_nova_nat.listing_text`` reproduces iptables 1.8's listing
byte for byte) and the result says so. Then, in the same run, on the same listing:
our ``iptables_list`` parse, our ``iptables_save`` parse (of the saved table) and
``jc.parse("iptables", ...)``; best of ``repeats`` wall-clock runs each, and the peak
memory of our listing parse (tracemalloc, a separate run since tracing slows it down).
"""
from __future__ import annotations

import gc
import itertools
import os
import shutil
import subprocess
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

from benchmarks import gen_nova_nat
from grammar import iptables_list, iptables_save

OUT = Path(__file__).parent / "out"
FLOATING_IPS = 5000


def namespace_available() -> bool:
    """Root, ``ip netns`` and iptables-restore: what loading a ruleset safely needs."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables-restore"):
        return False
    return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


@contextmanager
def network_namespace(prefix: str = "stackdoc-bench"):
    """A throwaway network namespace; yields ``run(*command, input=None) -> stdout``.

    Nothing in it is up and its /etc/hosts knows only localhost, so iptables' name
    lookups (``-L`` without ``-n``) print numbers and send nothing anywhere."""
    name = f"{prefix}-{os.getpid()}-{next(_namespace_numbers)}"
    netns_etc = Path("/etc/netns") / name
    netns_etc.mkdir(parents=True, exist_ok=True)
    (netns_etc / "hosts").write_text("127.0.0.1 localhost\n")
    (netns_etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)

        def run_in_namespace(*command: str, input: str | None = None) -> str:
            return subprocess.run(["ip", "netns", "exec", name, *command], input=input,
                                  capture_output=True, text=True, check=True, timeout=300).stdout

        yield run_in_namespace
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        shutil.rmtree(netns_etc, ignore_errors=True)


_namespace_numbers = itertools.count()


def capture_real_output(save_text: str) -> tuple[str, str]:
    """(listing, saved table) printed by the real iptables in a throwaway namespace."""
    with network_namespace() as run_in_namespace:
        run_in_namespace("iptables-restore", input=save_text)
        listing = run_in_namespace("iptables", "-t", "nat", "-L", "-v")
        saved = run_in_namespace("iptables-save", "-t", "nat")
    return listing, saved


def _best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def run(repeats: int = 5, floating_ips: int = FLOATING_IPS) -> dict:
    import jc

    generated_save = gen_nova_nat.save_text(floating_ips)
    OUT.mkdir(exist_ok=True)
    (OUT / "nova_nat.v4").write_text(generated_save)
    source = "generated text (not root or no ip netns: iptables was not run)"
    listing, saved = gen_nova_nat.listing_text(floating_ips), generated_save
    if namespace_available():
        try:
            listing, saved = capture_real_output(generated_save)
            source = "iptables 1.8 in a fresh network namespace"
        except (subprocess.SubprocessError, OSError) as error:
            source = f"generated text (iptables failed: {error})"
    (OUT / "nova_nat.list").write_text(listing)
    (OUT / "nova_nat.saved").write_text(saved)

    command = "iptables -t nat -L -v"
    listed = iptables_list.parse(listing, command)
    restored = iptables_save.parse(saved, "iptables-save -t nat")
    jc_rules = sum(len(chain.get("rules", [])) for chain in jc.parse("iptables", listing, quiet=True))
    rule_lines = sum(1 for record in listed.records if record["type"] == "iptables_rule")

    list_seconds = _best_time(lambda: iptables_list.parse(listing, command), repeats)
    save_seconds = _best_time(lambda: iptables_save.parse(saved, "iptables-save -t nat"), repeats)
    jc_seconds = _best_time(lambda: jc.parse("iptables", listing, quiet=True), max(1, repeats // 2))

    gc.collect()
    tracemalloc.start()
    iptables_list.parse(listing, command)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "source": source,
        "rule_lines": rule_lines,
        "listing_lines": listing.count("\n"),
        "ours_list_records": len(listed.records),
        "ours_list_problems": len(listed.problems),
        "ours_save_rules": sum(1 for r in restored.records if r["type"] == "iptables_rule"),
        "jc_rules": jc_rules,
        "ours_list_seconds": list_seconds,
        "ours_save_seconds": save_seconds,
        "jc_seconds": jc_seconds,
        "ours_list_lines_per_second": rule_lines / list_seconds,
        "ours_save_lines_per_second": rule_lines / save_seconds,
        "jc_lines_per_second": rule_lines / jc_seconds,
        "list_speedup_vs_jc": jc_seconds / list_seconds,
        "save_speedup_vs_jc": jc_seconds / save_seconds,
        "ours_list_peak_memory_mb": peak_bytes / 1e6,
    }


def main() -> None:
    result = run()
    print(f"source: {result['source']}")
    print(f"{result['rule_lines']} rule lines ({result['listing_lines']} listing lines); "
          f"problems: {result['ours_list_problems']}")
    print(f"{'parser':<28}{'seconds':>9}{'lines/s':>12}{'vs jc':>8}")
    rows = [("stackdoc iptables_list", result["ours_list_seconds"], result["list_speedup_vs_jc"]),
            ("stackdoc iptables_save", result["ours_save_seconds"], result["save_speedup_vs_jc"]),
            ("jc iptables", result["jc_seconds"], 1.0)]
    for name, seconds, ratio in rows:
        print(f"{name:<28}{seconds:>9.3f}{result['rule_lines'] / seconds:>12,.0f}{ratio:>7.1f}x")
    print(f"peak memory of the iptables_list parse: {result['ours_list_peak_memory_mb']:.1f} MB")


if __name__ == "__main__":
    main()
