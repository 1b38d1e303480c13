"""How long a packet walk takes through a network node with 20,000 NAT rules.

``python -m benchmarks.bench_walk`` builds the transcript of a nova-network node with
5,000 floating IPs (benchmarks/gen_nova_nat.py: a DNAT per floating IP in PREROUTING and
OUTPUT, two SNATs per floating IP in nova-network-float-snat), reads it as any evidence
is read, and times, each best of several runs:

* parsing the transcript (grammar/) into facts; the walk needs the parsed facts only,
  so the neutral derivations (timed by bench_diagnose) are left out;
* building the walk's per-node model (kb/netmodel: addresses and routes; a table is
  indexed when a walk first enters it, a rule compiled when a packet first meets it),
  then the first walk on it, which pays for that;
* one walk each way, on the built model: the last VM's ping out (its SNAT is the last of 10,000 in its
  chain, the worst case for a linear scan) and a TCP connection from outside to the
  last floating IP (its DNAT the last in PREROUTING), each with its reply.

The aim is under 50 ms per walk.
"""
from __future__ import annotations

import time

from benchmarks import gen_nova_nat
from grammar.transcript import read_transcript
from kb.facts import FactTable
from kb.netmodel import build_model
from kb.walk import walk

FLOATING_IPS = 5000
TARGET_SECONDS = 0.050
NODE = "net-bench"
MANAGEMENT_INTERFACE = "mgmt0"
FIXED_BRIDGE = "br-fixed"
OUTSIDE = "8.8.8.8"  # any global address beyond the default route


def transcript(floating_ips: int = FLOATING_IPS) -> str:
    """The node's ``ip route``, ``ip addr show`` and ``iptables -L -t nat -v``."""
    public = gen_nova_nat.PUBLIC_INTERFACE
    floating_net = gen_nova_nat.FLOATING_RANGE
    router = str(floating_net.network_address + floating_net.num_addresses - 2)
    public_ip = str(floating_net.network_address + floating_net.num_addresses - 3)
    fixed_net = gen_nova_nat.FIXED_RANGE
    fixed_gateway = str(fixed_net.network_address + 1)
    node_ip = gen_nova_nat.NODE_ADDRESS
    prompt = f"root@{NODE}:~# "
    return "".join([
        f"{prompt}ip route\n",
        f"default via {router} dev {public}\n",
        f"100.64.0.0/24 dev {MANAGEMENT_INTERFACE} proto kernel scope link src {node_ip}\n",
        f"{fixed_net} dev {FIXED_BRIDGE} proto kernel scope link src {fixed_gateway}\n",
        f"{floating_net} dev {public} proto kernel scope link src {public_ip}\n",
        f"{prompt}ip addr show\n",
        f"2: {MANAGEMENT_INTERFACE}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n",
        "    link/ether 52:54:00:00:00:03 brd ff:ff:ff:ff:ff:ff\n",
        f"    inet {node_ip}/24 scope global {MANAGEMENT_INTERFACE}\n",
        "       valid_lft forever preferred_lft forever\n",
        f"3: {public}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n",
        "    link/ether 52:54:00:00:00:04 brd ff:ff:ff:ff:ff:ff\n",
        f"    inet {public_ip}/{floating_net.prefixlen} scope global {public}\n",
        "       valid_lft forever preferred_lft forever\n",
        f"4: {FIXED_BRIDGE}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n",
        "    link/ether 52:54:00:00:00:05 brd ff:ff:ff:ff:ff:ff\n",
        f"    inet {fixed_gateway}/{fixed_net.prefixlen} scope global {FIXED_BRIDGE}\n",
        "       valid_lft forever preferred_lft forever\n",
        f"{prompt}sysctl net.ipv4.ip_forward\n",
        "net.ipv4.ip_forward = 1\n",
        f"{prompt}iptables -L -t nat -v\n",
        gen_nova_nat.listing_text(floating_ips),
    ])


def _best(function, repeats: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - started)
    return best, value


def run(floating_ips: int = FLOATING_IPS, repeats: int = 5) -> dict:
    text = transcript(floating_ips)
    parse_seconds, evidence = _best(lambda: read_transcript(text, "bench"), 2)
    table = FactTable()
    for fact in evidence.facts:
        table.add(dict(fact))
    fixed, floating = list(gen_nova_nat.address_pairs(floating_ips))[-1]
    model_seconds, model = _best(lambda: build_model(table), 2)
    first_seconds, _ = _best(lambda: walk(table, fixed, OUTSIDE, "icmp", model=build_model(table)), 2)
    out_seconds, out = _best(lambda: walk(table, fixed, OUTSIDE, "icmp", model=model), repeats)
    in_seconds, inward = _best(lambda: walk(table, OUTSIDE, floating, "tcp", 22, model=model), repeats)
    rules = sum(1 for f in table.of("iptables_rule"))
    return {"rules": rules, "parse_seconds": parse_seconds,
            "model_seconds": model_seconds, "first_walk_seconds": first_seconds,
            "walks": [("VM ping out", out_seconds, out), ("TCP in to floating IP", in_seconds, inward)]}


def main() -> None:
    result = run()
    print(f"walk through a network node with {result['rules']:,} NAT rules")
    print(f"{'parse the transcript':<34}{result['parse_seconds'] * 1000:>10.1f} ms")
    print(f"{'build the walk model':<34}{result['model_seconds'] * 1000:>10.1f} ms")
    print(f"{'  and the first walk on it':<34}{result['first_walk_seconds'] * 1000:>10.1f} ms"
          "  (indexes the tables it enters)")
    for name, seconds, outcome in result["walks"]:
        mark = "ok" if seconds < TARGET_SECONDS else f"over {TARGET_SECONDS * 1000:.0f} ms"
        print(f"{'walk: ' + name:<34}{seconds * 1000:>10.2f} ms  {mark}  "
              f"({outcome.verdict}, {len(outcome.steps)} steps)")


if __name__ == "__main__":
    main()
