"""The floating-IP causes against real labs: the seed's testbed and one named and
numbered differently (net01, ens3/ens4, 10.20.4.0/22), built in network namespaces
with each of the seed's faults. What stackdoc diagnoses from the captured evidence
must be exactly the faults that were put in, and nothing on a healthy lab."""
import json
from pathlib import Path

import pytest

from collectors.files import read_evidence
from grammar.transcript import Evidence, read_transcript
from kb.diagnose import diagnose

LABS = Path(__file__).resolve().parent / "fixtures" / "labs"
CAUSE_OF_FAULT = {
    "snat_wrong_interface": "fip-snat-wrong-interface",
    "gateway_no_return_route": "fip-upstream-no-return-route",
    "gateway_no_masquerade": "fip-upstream-no-masquerade",
    "gateway_forward_blocked": "fip-upstream-forward-blocked",
    "gateway_ip_forward_off": "fip-upstream-forward-blocked",
}
CASES = sorted(p.name for p in LABS.iterdir() if (p / "case.json").exists())


def _diagnose_case(case: str):
    transcripts = sorted(str(p) for p in (LABS / case).glob("*.txt"))
    return diagnose(read_evidence(transcripts))


@pytest.mark.parametrize("case", CASES)
def test_captured_lab_gives_exactly_its_faults(case):
    meta = json.loads((LABS / case / "case.json").read_text())
    expected = {CAUSE_OF_FAULT[fault] for fault in meta["faults"]}
    diagnosis = _diagnose_case(case)
    assert {f.cause for f in diagnosis.findings} == expected
    assert all(f.status == "established" for f in diagnosis.findings)
    # every line is read, the probes' own output (ping, nc) too
    assert diagnosis.unparsed == []


def test_the_other_lab_is_explained_in_its_own_names():
    finding = _diagnose_case("other-snat-wrong-interface").findings[0]
    assert finding.node == "net01"
    assert "ens4" in finding.title and "ens3" in finding.title
    assert "10.20.4.0/22" in finding.explanation
    assert "public_interface=ens3" in finding.fix[0]
    for word in ("eth0", "eth1", "network-node", "10.99.", "172.16."):
        assert word not in finding.title + finding.explanation + " ".join(finding.fix + finding.hints)


def test_the_gateway_is_found_by_who_owns_the_default_gateway_address():
    diagnosis = _diagnose_case("other-gateway-no-return-route")
    finding = diagnosis.findings[0]
    assert finding.node == "gw01"
    assert any("an address of gw01, so gw01 is the gateway of net01" in step
               for step in finding.reasoning)
    commands = {line["command"] for line in finding.evidence if line["node"] == "gw01"}
    assert "ip route" in commands


def test_no_claim_about_a_gateway_whose_tables_were_never_shown():
    case = LABS / "other-gateway-no-masquerade"
    only_network_node = [str(p) for p in case.glob("*.txt") if p.stem != "gw01"]
    found = {f.cause for f in diagnose(read_evidence(only_network_node)).findings}
    assert found == set()


def test_the_seed_investigation_after_the_fix_attempt_points_at_the_gateway():
    """The seed's own transcript: SNAT was fixed mid-way (sed + restart), so that
    evidence is stale; the physical node's missing route back remains."""
    text = (Path(__file__).resolve().parent.parent / "rules" / "examples"
            / "seed-floating-ip-investigation.txt").read_text()
    diagnosis = diagnose(read_transcript(text, "seed"))
    assert {f.cause for f in diagnosis.findings} == {"fip-upstream-no-return-route"}
    finding = diagnosis.findings[0]
    assert finding.node == "gks-061"
    assert "172.16.1.1" in finding.title and "eth0" in finding.title and "br1" in finding.title
    texts = {line["text"] for line in finding.evidence}
    assert "default via 141.52.174.1 dev eth0" in texts
    assert "10:27:45.694504 IP 172.16.1.1 > 173.194.113.148: ICMP echo request, id 56320, seq 2, length 64" in texts
    # nova-network rewrote its chains on restart: the listing taken before is set aside
    assert [s["command"] for s in diagnosis.superseded] == ["service nova-network restart"]


@pytest.mark.root
@pytest.mark.parametrize("naming", ["SEED", "OTHER"])
@pytest.mark.parametrize("fault", sorted(CAUSE_OF_FAULT))
def test_live_lab_diagnosis_matches_what_the_kernel_did(naming, fault):
    netns = pytest.importorskip("lab.netns")
    ok, reason = netns.available()
    if not ok:
        pytest.skip(reason)
    from lab import capture, testbed

    with testbed.Testbed(faults={fault}, names=getattr(testbed, naming)) as lab:
        record = capture.record_case(lab)
    evidence = Evidence()
    for host, transcript in record.transcripts.items():
        evidence.extend(read_transcript(transcript.text, f"live/{host}"))
    found = {f.cause for f in diagnose(evidence).findings}
    assert found == {CAUSE_OF_FAULT[fault]}
    # the kernel agrees something is broken: at least one probe failed
    assert not all(result.succeeded for result in record.probes.values())


REGRESSIONS = Path(__file__).resolve().parent / "fixtures" / "model"


def _diagnose_regression(case: str):
    return diagnose(read_evidence(sorted(str(p) for p in (REGRESSIONS / case).glob("*.txt"))))


def test_a_forward_chain_that_accepts_icmp_lets_a_ping_through():
    """FORWARD policy DROP with '-p icmp -j ACCEPT' on the gateway: the kernel passed the
    VM's ping (case.json), so no cause may say the gateway does not forward it."""
    meta = json.loads((REGRESSIONS / "forward-drop-icmp-accepted" / "case.json").read_text())
    assert meta["probes"]["vm-to-outside"] is True
    diagnosis = _diagnose_regression("forward-drop-icmp-accepted")
    assert [f.cause for f in diagnosis.findings] == []


def test_forwarding_off_shown_by_conf_all_forwarding_is_seen():
    diagnosis = _diagnose_regression("forwarding-off-by-conf-all")
    assert [(f.cause, f.node, f.status) for f in diagnosis.findings] == [
        ("fip-upstream-forward-blocked", "gw01", "established")]
    texts = {line["text"] for line in diagnosis.findings[0].evidence}
    assert "net.ipv4.conf.all.forwarding = 0" in texts


def test_masks_and_addresses_no_kernel_would_take_are_bad_input_not_a_crash():
    """A /33 on an address, a /40 on a DNAT rule, an SNAT to 999.51.100.77, a /99 route:
    each is that line's problem (an unparsed entry naming it), and the rest is diagnosed."""
    text = "\n".join([
        "root@net01:~# ip addr show",
        "2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000",
        "    inet 10.20.0.11/33 scope global ens3",
        "    inet 198.51.100.77/32 scope global ens3",
        "root@net01:~# iptables -t nat -S",
        "-P PREROUTING ACCEPT",
        "-A nova-network-PREROUTING -d 198.51.100.77/32 -j DNAT --to-destination 10.20.4.5",
        "-A nova-network-PREROUTING -d 198.51.100.78/40 -j DNAT --to-destination 10.20.4.6",
        "-A nova-network-float-snat -s 10.20.4.5/32 -o ens4 -j SNAT --to-source 999.51.100.77",
        "-A nova-network-snat -s 10.20.4.0/22 -o ens4 -j SNAT --to-source 10.20.0.11",
        "root@net01:~# ip route",
        "default via 10.20.0.1 dev ens3",
        "10.20.0.0/99 dev ens3 proto kernel scope link src 10.20.0.11", ""])
    diagnosis = diagnose(read_transcript(text, "bad.txt"))
    assert [(f.cause, f.node) for f in diagnosis.findings] == [("fip-snat-wrong-interface", "net01")]
    assert {f["address"] for f in diagnosis.table.of("floating_ip")} == {"198.51.100.77"}
    assert [(u["line"], u["reason"].split(": ", 1)[1]) for u in diagnosis.unparsed] == [
        (3, "'10.20.0.11/33' is not an address with a prefix: the prefix is longer than 32"),
        (8, "'198.51.100.78/40' is not an address with a prefix: the prefix is longer than 32"),
        (9, "'999.51.100.77' is not an address"),
        (13, "'10.20.0.0/99' is not an address with a prefix: the prefix is longer than 32")]


def test_the_gateway_half_of_the_seed_story_alone_establishes_the_missing_return_route():
    """Only gks-061's captures, br1's address and its routing table: no network node. The
    frame addressed to gks-061's own MAC (tcpdump -e) from an address off br1 says
    gks-061 routes for 172.16.1.1; its routing table sends the replies elsewhere."""
    path = Path(__file__).resolve().parent.parent / "rules" / "examples" / "seed-gateway-capture.txt"
    diagnosis = diagnose(read_transcript(path.read_text(), "gateway.txt"))
    assert [(f.cause, f.node, f.status) for f in diagnosis.findings] == [
        ("fip-upstream-no-return-route", "gks-061", "established")]
    finding = diagnosis.findings[0]
    assert finding.title == ("gks-061 has no route back to the floating IP 172.16.1.1: it sends "
                             "replies out of eth0 instead of br1")
    assert any("sent to gks-061's own MAC there" in step for step in finding.reasoning)
    # the frame to another MAC (the VM's, to the network node) says nothing about gks-061
    assert {f["source"] for f in diagnosis.table.of("return_path")} == {"172.16.1.1"}
