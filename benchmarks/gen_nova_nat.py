"""Generate the nat table of a nova-network network node, as iptables prints it.

``python -m benchmarks.gen_nova_nat [FLOATING_IPS] [--listing]`` writes the nat table that
nova-network's linux_net keeps on a node with FLOATING_IPS floating IPs (default 5,000):
per floating IP a DNAT in ``nova-network-PREROUTING`` and in ``nova-network-OUTPUT`` and
two SNATs in ``nova-network-float-snat`` (as in the seed transcript), i.e. 20,000 rules,
plus the chain skeleton, the metadata DNAT and the fixed-range SNAT.

Two renderings of the same rules:
  * ``save_text()``: ``iptables-save -t nat`` input for iptables-restore;
  * ``listing_text()``: ``iptables -t nat -L -v`` as iptables 1.8 prints it in a namespace
    where no address has a name (the benchmark's fallback when it cannot run iptables;
    ``tests/test_iptables_list.py`` checks it against the real thing as root).

Addresses come from ranges that never route on the Internet: fixed IPs from
10.20.0.0/16, floating IPs from 198.18.0.0/15 (RFC 2544 benchmarking), the node's own
address from 100.64.0.0/10 (shared address space).
"""
from __future__ import annotations

import ipaddress
import sys
from typing import NamedTuple

FIXED_RANGE = ipaddress.ip_network("10.20.0.0/16")
FLOATING_RANGE = ipaddress.ip_network("198.18.0.0/15")
NODE_ADDRESS = "100.64.0.7"          # my_ip / routing_source_ip / metadata_host
PUBLIC_INTERFACE = "ens4"

BUILTIN_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
NOVA_CHAINS = (
    "nova-api-metadat-OUTPUT", "nova-api-metadat-POSTROUTING", "nova-api-metadat-PREROUTING",
    "nova-api-metadat-float-snat", "nova-api-metadat-snat", "nova-network-OUTPUT",
    "nova-network-POSTROUTING", "nova-network-PREROUTING", "nova-network-float-snat",
    "nova-network-snat", "nova-postrouting-bottom",
)


class Rule(NamedTuple):
    chain: str
    target: str
    source: str = "0.0.0.0/0"
    destination: str = "0.0.0.0/0"
    out_interface: str = ""
    protocol: str = ""
    save_matches: str = ""       # the match options as iptables-save writes them
    listed_matches: str = ""     # the same matches as iptables -L prints them
    target_options: str = ""     # as iptables-save writes them
    listed_target: str = ""      # as iptables -L prints them


def address_pairs(floating_ips: int):
    """(fixed, floating) address pairs; .0/.1 of each /24 are left to the network."""
    fixed_hosts = (h for h in FIXED_RANGE.hosts() if h.packed[-1] >= 2)
    floating_hosts = (h for h in FLOATING_RANGE.hosts() if h.packed[-1] >= 1)
    for _ in range(floating_ips):
        yield str(next(fixed_hosts)), str(next(floating_hosts))


def nat_rules(floating_ips: int = 5000) -> list[Rule]:
    pairs = list(address_pairs(floating_ips))
    fixed = str(FIXED_RANGE)
    rules = [
        Rule("PREROUTING", "nova-network-PREROUTING"),
        Rule("PREROUTING", "nova-api-metadat-PREROUTING"),
        Rule("OUTPUT", "nova-network-OUTPUT"),
        Rule("OUTPUT", "nova-api-metadat-OUTPUT"),
        Rule("POSTROUTING", "nova-network-POSTROUTING"),
        Rule("POSTROUTING", "nova-api-metadat-POSTROUTING"),
        Rule("POSTROUTING", "nova-postrouting-bottom"),
        Rule("nova-api-metadat-snat", "nova-api-metadat-float-snat"),
    ]
    rules += [Rule("nova-network-OUTPUT", "DNAT", destination=f"{floating}/32",
                   target_options=f"--to-destination {fixed_ip}", listed_target=f"to:{fixed_ip}")
              for fixed_ip, floating in pairs]
    rules += [
        Rule("nova-network-POSTROUTING", "ACCEPT", source=fixed, destination=f"{NODE_ADDRESS}/32"),
        Rule("nova-network-POSTROUTING", "ACCEPT", source=fixed, destination=fixed,
             save_matches="-m conntrack ! --ctstate DNAT", listed_matches="! ctstate DNAT"),
        Rule("nova-network-PREROUTING", "DNAT", destination="169.254.169.254/32", protocol="tcp",
             save_matches="-m tcp --dport 80", listed_matches="tcp dpt:http",
             target_options=f"--to-destination {NODE_ADDRESS}:8775",
             listed_target=f"to:{NODE_ADDRESS}:8775"),
    ]
    rules += [Rule("nova-network-PREROUTING", "DNAT", destination=f"{floating}/32",
                   target_options=f"--to-destination {fixed_ip}", listed_target=f"to:{fixed_ip}")
              for fixed_ip, floating in pairs]
    for fixed_ip, floating in pairs:
        rules.append(Rule("nova-network-float-snat", "SNAT", source=f"{fixed_ip}/32",
                          destination=f"{fixed_ip}/32", target_options=f"--to-source {floating}",
                          listed_target=f"to:{floating}"))
        rules.append(Rule("nova-network-float-snat", "SNAT", source=f"{fixed_ip}/32",
                          out_interface=PUBLIC_INTERFACE, target_options=f"--to-source {floating}",
                          listed_target=f"to:{floating}"))
    rules += [
        Rule("nova-network-snat", "nova-network-float-snat"),
        Rule("nova-network-snat", "SNAT", source=fixed, out_interface=PUBLIC_INTERFACE,
             target_options=f"--to-source {NODE_ADDRESS}", listed_target=f"to:{NODE_ADDRESS}"),
        Rule("nova-postrouting-bottom", "nova-network-snat"),
        Rule("nova-postrouting-bottom", "nova-api-metadat-snat"),
    ]
    return rules


def save_text(floating_ips: int = 5000) -> str:
    lines = ["# Generated by stackdoc benchmarks/gen_nova_nat.py", "*nat"]
    lines += [f":{chain} ACCEPT [0:0]" for chain in BUILTIN_CHAINS]
    lines += [f":{chain} - [0:0]" for chain in NOVA_CHAINS]
    for rule in nat_rules(floating_ips):
        words = ["-A", rule.chain]
        if rule.source != "0.0.0.0/0":
            words += ["-s", rule.source]
        if rule.destination != "0.0.0.0/0":
            words += ["-d", rule.destination]
        if rule.out_interface:
            words += ["-o", rule.out_interface]
        if rule.protocol:
            words += ["-p", rule.protocol]
        words += [rule.save_matches, "-j", rule.target, rule.target_options]
        lines.append(" ".join(word for word in words if word))
    lines += ["COMMIT", "# Completed"]
    return "\n".join(lines) + "\n"


def _listed_address(cidr: str) -> str:
    if cidr == "0.0.0.0/0":
        return "anywhere"
    return cidr[:-3] if cidr.endswith("/32") else cidr


def listing_text(floating_ips: int = 5000) -> str:
    """``iptables -t nat -L -v`` with all counters 0, in iptables 1.8's columns
    (``%5s %5s %-9s`` then protocol, opt, ``%-6s`` interfaces, ``%-19s`` addresses)."""
    rules = nat_rules(floating_ips)
    references: dict[str, int] = {}
    for rule in rules:
        references[rule.target] = references.get(rule.target, 0) + 1
    header = (" pkts bytes target     prot opt in     out     source               "
              "destination         ")
    blocks = []
    for chain in BUILTIN_CHAINS + NOVA_CHAINS:
        if chain in BUILTIN_CHAINS:
            title = f"Chain {chain} (policy ACCEPT 0 packets, 0 bytes)"
        else:
            title = f"Chain {chain} ({references.get(chain, 0)} references)"
        lines = [title, header]
        for rule in rules:
            if rule.chain != chain:
                continue
            matches = " ".join(m for m in (rule.listed_matches, rule.listed_target) if m)
            lines.append(
                f"{0:>5} {0:>5} {rule.target:<9}  {rule.protocol or 'all':<5}--  "
                f"{'any':<6} {rule.out_interface or 'any':<6}  {_listed_address(rule.source):<19}  "
                f"{_listed_address(rule.destination):<19} " + (f" {matches}" if matches else ""))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(arguments[0]) if arguments else 5000
    sys.stdout.write(listing_text(count) if "--listing" in sys.argv else save_text(count))
