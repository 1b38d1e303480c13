"""Generate the evidence of labs of a real size, from the captures of the namespace lab.

* ``many_nodes(total)``: the other lab as captured with its gateway's return route
  missing (tests/fixtures/labs/other-gateway-no-return-route: VM, compute node, network
  node, gateway, outside host), with its compute node repeated until the lab has
  ``total`` nodes; each copy is named ``cmpNNN`` and holds the next management address.
* ``many_floating_ips(floating, computes)``: a network node whose nat table holds
  ``floating`` floating IPs (benchmarks/gen_nova_nat.py, 4 rules each), its gateway
  (the captured one, renumbered onto the network node's management network) and
  ``computes`` compute nodes.

Every block is what a real tool printed, with only node names and addresses changed.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks import gen_nova_nat

LABS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "labs"
CASE = LABS / "other-gateway-no-return-route"
FIRST_COMPUTE_HOST = 21          # cmp01 holds 10.20.0.21 in the capture


def _capture(node: str) -> str:
    return (CASE / f"{node}.txt").read_text()


def _compute(number: int, template: str, old_address: str, new_address: str) -> str:
    return template.replace("cmp01", f"cmp{number:03d}").replace(old_address, new_address)


def many_nodes(total: int) -> str:
    """The captured five-node lab grown to ``total`` nodes (at most 234) by compute nodes."""
    fixed = ("vm01", "net01", "gw01", "ext-host")
    computes = total - len(fixed)
    if not 1 <= computes <= 254 - FIRST_COMPUTE_HOST:
        raise ValueError(f"a lab of {total} nodes does not fit the management /24")
    parts = [_capture(node) for node in fixed]
    template = _capture("cmp01")
    for number in range(1, computes + 1):
        parts.append(_compute(number, template, f"10.20.0.{FIRST_COMPUTE_HOST}",
                              f"10.20.0.{FIRST_COMPUTE_HOST + number - 1}"))
    return "".join(parts)


def many_floating_ips(floating: int = 5000, computes: int = 10) -> str:
    """A network node serving ``floating`` floating IPs, its gateway and compute nodes,
    on the management network 100.64.0.0/24 (the network node is gen_nova_nat's
    100.64.0.7; the gateway .1; compute nodes from .21)."""
    public = gen_nova_nat.PUBLIC_INTERFACE
    network_node = (
        "root@net01:~# iptables -L -t nat -v\n" + gen_nova_nat.listing_text(floating)
        + "root@net01:~# ip route\n"
        + "default via 100.64.0.1 dev ens3 \n"
        + "10.20.0.0/16 dev br100 proto kernel scope link src 10.20.0.1 \n"
        + "100.64.0.0/24 dev ens3 proto kernel scope link src 100.64.0.7 \n"
        + f"{gen_nova_nat.FLOATING_RANGE} dev {public} proto kernel scope link src 198.19.255.254 \n"
        + "root@net01:~# sysctl net.ipv4.ip_forward\nnet.ipv4.ip_forward = 1\n")
    gateway = _capture("gw01").replace("10.20.0.", "100.64.0.")
    template = _capture("cmp01").replace("10.20.0.", "100.64.0.")
    parts = [network_node, gateway]
    for number in range(1, computes + 1):
        parts.append(_compute(number, template, f"100.64.0.{FIRST_COMPUTE_HOST}",
                              f"100.64.0.{FIRST_COMPUTE_HOST + number - 1}"))
    return "".join(parts)
