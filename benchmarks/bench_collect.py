"""How long collecting a 6-node lab over SSH takes.

``python -m benchmarks.bench_collect`` starts six real OpenSSH servers on the loopback
of a fresh network namespace (so nothing listens on the host), one per role of
rules/collect.yaml - network, compute, controller, volume, image, gateway - and
collects each node's whole plan with ``collect`` (hosts in parallel, one connection per
host, a channel per command), then the same with one host at a time as the baseline
measured in the same run. The nodes are reached as the practice lab reaches its
nodes: a ProxyCommand ``ip netns exec NS nc 127.0.0.1 PORT``.

The aim is under 5 s for the six nodes. Root and openssh-server are needed; elsewhere
the benchmark says why it did not run.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from collectors.collect import collect
from collectors.inventory import Host
from collectors.knowledge import load_knowledge
from lab import netns, sshd

TARGET_SECONDS = 5.0
ROLES = ("network", "compute", "controller", "volume", "image", "gateway")
FIRST_PORT = 2201


def _start_servers(session: netns.NetnsSession, state: Path):
    node = session.namespace("bench")
    client = sshd.generate_key(state / "id_ed25519", "stackdoc bench")
    authorized = state / "authorized_keys"
    authorized.write_text(sshd.public_key(client) + "\n")
    known, hosts = [], []
    for index, role in enumerate(ROLES):
        port = FIRST_PORT + index
        key = sshd.generate_key(state / f"{role}_host_ed25519", f"bench {role}")
        config = state / f"{role}.conf"
        config.write_text(sshd.config_text(listen="127.0.0.1", host_key=key, authorized_keys=authorized)
                          .replace("Port 22", f"Port {port}"))
        sshd.start(session, node, config, state / f"{role}.log")
        known.append(f"[127.0.0.1]:{port} {sshd.public_key(key)}")
        hosts.append(Host(name=f"{role}01", address="127.0.0.1", port=port, user="root",
                          key_file=str(client), groups=(role,),
                          proxy_command=f"{netns.which('ip')} netns exec {node.name} {netns.which('nc')} %h %p"))
    (state / "known_hosts").write_text("\n".join(known) + "\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listening = node.exec(["ss", "-Hltn"], timeout=5).stdout
        if all(f"127.0.0.1:{FIRST_PORT + i}" in listening for i in range(len(ROLES))):
            return hosts
        time.sleep(0.05)
    raise RuntimeError("the benchmark's sshds did not start")


def main() -> None:
    print("collect: 6 nodes over SSH (real sshd on a namespace's loopback)")
    for check in (netns.available, sshd.available):
        ok, reason = check()
        if not ok:
            print(f"  not run: {reason}")
            return
    knowledge = load_knowledge()
    created_privsep = sshd.ensure_privsep_dir()
    try:
        _measure(knowledge)
    finally:
        if created_privsep:
            sshd.remove_privsep_dir()


def _measure(knowledge) -> None:
    with tempfile.TemporaryDirectory(prefix="stackdoc-bench-") as scratch, netns.NetnsSession() as session:
        state = Path(scratch)
        hosts = _start_servers(session, state)
        runs = {}
        for label, parallel in (("parallel", None), ("one host at a time (baseline)", 1)):
            best = None
            for attempt in range(3):
                out = state / f"out-{parallel}-{attempt}"
                started = time.perf_counter()
                result = collect(hosts, knowledge, out, known_hosts=state / "known_hosts",
                                 progress=False, parallel=parallel)
                elapsed = time.perf_counter() - started
                failed = [r.host.name for r in result.hosts if r.failure]
                if failed:
                    raise RuntimeError(f"collection failed on {failed}: {result.summary()}")
                best = elapsed if best is None else min(best, elapsed)
            commands = sum(len(r.outputs) for r in result.hosts)
            runs[label] = (best, commands)
        baseline = runs["one host at a time (baseline)"][0]
        for label, (seconds, commands) in runs.items():
            print(f"  {label:<32} {seconds:6.2f} s  {commands} commands  "
                  f"{baseline / seconds:4.1f}x baseline")
        verdict = "meets" if runs["parallel"][0] < TARGET_SECONDS else "MISSES"
        print(f"  aim < {TARGET_SECONDS:g} s for 6 nodes: {verdict} it")


if __name__ == "__main__":
    main()
