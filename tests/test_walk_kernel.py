"""The walk against the kernel: for every combination of the seed's four faults (and so
of their fixes), build the seed's testbed in network namespaces, capture every node's
evidence with the real commands (lab.capture.record_case, which also runs the VM's ping
to the outside host and ``nc`` from the physical node to the floating IP, tcp 22), walk
both probes on that evidence, and require the walk's verdict to be what the kernel did:
delivered exactly when the probe succeeded. A few combinations again in the other lab's
names, and with the seed's first fix (default route via the public network).

One build per combination, both probes per build; every probe is bounded (lab.capture).
Root only; elsewhere the tests skip with the reason lab.netns.available() gives."""
import itertools

import pytest

from grammar.transcript import Evidence, read_transcript
from kb.diagnose import current_facts, diagnose
from kb.queries import Answerer
from kb.walk import walk

SEED_FAULTS = ("snat_wrong_interface", "gateway_no_return_route", "gateway_no_masquerade",
               "gateway_forward_blocked")
COMBINATIONS = [frozenset(c) for size in range(len(SEED_FAULTS) + 1)
                for c in itertools.combinations(SEED_FAULTS, size)]
OTHER_COMBINATIONS = [frozenset(), frozenset({"snat_wrong_interface"}),
                      frozenset({"gateway_no_return_route", "gateway_ip_forward_off"})]


def _label(faults) -> str:
    return "+".join(sorted(faults)) or "healthy"


def _lab():
    netns = pytest.importorskip("lab.netns")
    ok, reason = netns.available()
    if not ok:
        pytest.skip(reason)
    from lab import capture, testbed
    return capture, testbed


def _walk_and_compare(capture, lab):
    record = capture.record_case(lab)
    evidence = Evidence()
    for host, transcript in record.transcripts.items():
        evidence.extend(read_transcript(transcript.text, f"live/{host}"))
    table, _ = current_facts(evidence)
    names = lab.names
    from lab.testbed import GATEWAY, GATEWAY_TO_FLOATING, VM_TO_OUTSIDE
    walks = {
        VM_TO_OUTSIDE: walk(table, names.vm_ip, names.outside_ip, "icmp"),
        GATEWAY_TO_FLOATING: walk(table, lab.hostname(GATEWAY), names.floating_ip, "tcp",
                                  names.vm_service_port),
    }
    for probe, result in walks.items():
        kernel = record.probes[probe]
        assert (result.verdict == "delivered") == kernel.succeeded, (
            f"{probe}: kernel {'succeeded' if kernel.succeeded else 'failed'} "
            f"({kernel.transcript.strip().splitlines()[-1] if kernel.transcript.strip() else ''}), "
            f"walk says {result.verdict} at {result.node}: {result.summary}")
    # the walks the diagnosis' rules read (walk_verdict facts) say what the kernel did
    answers = Answerer(table)
    for probe, kind in ((VM_TO_OUTSIDE, "vm-to-outside"), (GATEWAY_TO_FLOATING, "outside-to-floating")):
        (verdict,) = answers.answer("walk_verdict", {"kind": kind, "floating": names.floating_ip})
        assert (verdict["verdict"] == "delivered") == record.probes[probe].succeeded, verdict["summary"]
    # and the diagnosis finds a cause exactly when a probe failed
    findings = diagnose(evidence).findings
    assert bool(findings) == (not all(p.succeeded for p in record.probes.values())), \
        [f.title for f in findings]
    return walks


@pytest.mark.root
@pytest.mark.parametrize("faults", COMBINATIONS, ids=_label)
def test_walk_matches_the_kernel_in_the_seed_lab(faults):
    capture, testbed = _lab()
    with testbed.Testbed(faults=faults, names=testbed.SEED) as lab:
        walks = _walk_and_compare(capture, lab)
    if "snat_wrong_interface" in faults:
        # the walk shows where the VM's ping stops being translated
        assert any(s.text.startswith("not translated") and s.node == lab.hostname("network")
                   for s in walks["vm-to-outside"].steps)


@pytest.mark.root
@pytest.mark.parametrize("faults", OTHER_COMBINATIONS, ids=_label)
def test_walk_matches_the_kernel_in_the_other_lab(faults):
    capture, testbed = _lab()
    with testbed.Testbed(faults=faults, names=testbed.OTHER) as lab:
        _walk_and_compare(capture, lab)


@pytest.mark.root
@pytest.mark.parametrize("faults", [frozenset(), frozenset({"gateway_no_masquerade"})], ids=_label)
def test_walk_matches_the_kernel_with_the_default_route_on_the_public_network(faults):
    capture, testbed = _lab()
    with testbed.Testbed(faults=faults, names=testbed.SEED, route_style="public") as lab:
        _walk_and_compare(capture, lab)
