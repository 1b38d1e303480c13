"""cinder <-> glance (seed: "Creating volume from image and boot from volume")."""
from pathlib import Path

from collectors.files import read_evidence
from grammar.transcript import Evidence, read_transcript
from kb.diagnose import diagnose

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "rules" / "examples"
CINDER = Path(__file__).resolve().parent / "fixtures" / "cinder"


def _evidence(*parts) -> Evidence:
    evidence = Evidence()
    for path, node in parts:
        evidence.extend(read_transcript(path.read_text(), str(path), node=node))
    return evidence


def test_the_log_alone_fits_two_causes_and_says_what_decides():
    findings = diagnose(_evidence((EXAMPLES / "seed-cinder-api.log", "volume-node"))).findings
    assert [(f.cause, f.status) for f in findings] == [("cinder-glance-endpoint", "possible")]
    decide = " ".join(findings[0].decide_by)
    assert "ip addr" in decide and "glance_api_servers" in decide and "glance-api status" in decide


def test_glance_sought_at_the_volume_nodes_own_address_is_established():
    evidence = _evidence((EXAMPLES / "seed-cinder-api.log", "volume-node"),
                         (CINDER / "seed-volume-node-ip-addr.txt", None))
    finding = diagnose(evidence).findings[0]
    assert (finding.cause, finding.status, finding.node, finding.service) == (
        "cinder-glance-endpoint", "established", "volume-node", "cinder-api")
    assert "10.0.0.8 is volume-node's own address" in finding.explanation
    texts = [line["text"] for line in finding.evidence]
    assert "inet 10.0.0.8/24 scope global eth0" in texts
    assert any("Error contacting glance server '10.0.0.8:9292'" in t for t in texts)
    assert "glance_api_servers=<image node address>:9292" in finding.fix[0]


def test_the_address_of_another_node_does_not_establish_it():
    evidence = _evidence((EXAMPLES / "seed-cinder-api.log", "volume-node"),
                         (CINDER / "other-vol01-ip-addr.txt", None))
    assert [(f.cause, f.status) for f in diagnose(evidence).findings] == [
        ("cinder-glance-endpoint", "possible")]


def test_qemu_img_missing_is_named_with_the_log_line():
    findings = diagnose(read_evidence([str(EXAMPLES / "seed-cinder-volume-qemu.log")],
                                      node="volume-node")).findings
    assert [(f.cause, f.status, f.node) for f in findings] == [
        ("cinder-qemu-img-missing", "established", "volume-node")]
    assert "qcow2" in findings[0].explanation and "qemu-utils" in findings[0].fix[0]
