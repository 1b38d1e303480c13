"""A network node of a real size: nova-network's nat table with 5,000 floating IPs
(20,015 rules, the benchmark's own generator) is read and diagnosed like any other."""
from benchmarks import gen_nova_nat
from grammar.transcript import read_transcript
from kb.diagnose import diagnose


def test_a_network_node_with_5000_floating_ips_is_diagnosed():
    text = ("root@net01:~# iptables -L -t nat -v\n" + gen_nova_nat.listing_text(5000)
            + "root@net01:~# ip route\n"
            + "default via 10.20.0.1 dev ens3 \n"
            + "10.20.0.0/24 dev ens3 proto kernel scope link src 10.20.0.11 \n")
    evidence = read_transcript(text, "net01.txt")
    assert evidence.unparsed == []
    diagnosis = diagnose(evidence)
    floating = diagnosis.table.of("floating_ip")
    assert len(floating) == 5000
    finding = next(f for f in diagnosis.findings if f.cause == "fip-snat-wrong-interface")
    assert finding.node == "net01" and f"leaving by {gen_nova_nat.PUBLIC_INTERFACE}" in finding.title
