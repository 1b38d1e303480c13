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


def _volume_node(*after_the_log: str, log_path="/var/log/cinder/cinder-api.log") -> str:
    """The seed's cinder-api log and the volume node's ip addr, as one transcript, with
    commands typed after the log."""
    log = (EXAMPLES / "seed-cinder-api.log").read_text()
    own = (CINDER / "seed-volume-node-ip-addr.txt").read_text()
    return (f"root@volume-node:~# tail -n 40 {log_path}\n" + log + own
            + "".join(f"root@volume-node:~# {command}\n" for command in after_the_log))


def test_a_restart_sets_the_services_older_log_lines_aside():
    fixed = diagnose(read_transcript(_volume_node(
        "sed -i 's/^#glance_api_servers.*/glance_api_servers=10.0.0.3:9292/' /etc/cinder/cinder.conf",
        "service cinder-api restart"), "vol.txt"))
    assert fixed.findings == []
    (change,) = [(s["command"], s["facts"]) for s in fixed.superseded]
    assert change[0] == "service cinder-api restart" and change[1] >= 2
    # another service's restart leaves cinder-api's log standing
    other = diagnose(read_transcript(_volume_node("service cinder-volume restart"), "vol.txt"))
    assert [(f.cause, f.status) for f in other.findings] == [("cinder-glance-endpoint", "established")]
    assert other.superseded == []
    # RDO's names for the same service and its log
    rdo = diagnose(read_transcript(_volume_node("systemctl restart openstack-cinder-api.service",
                                                log_path="/var/log/cinder/api.log"), "vol.txt"))
    assert rdo.findings == [] and [s["command"] for s in rdo.superseded] == [
        "systemctl restart openstack-cinder-api.service"]


def test_between_sources_only_a_known_order_makes_evidence_stale():
    def evidence(order):
        first = read_transcript(_volume_node(), "message 1")
        first.extend(read_transcript("root@volume-node:~# service cinder-api restart\n", "message 2"))
        first.source_order = order
        return first
    # files side by side have no order: the restart in one says nothing of the other
    assert [f.cause for f in diagnose(evidence([])).findings] == ["cinder-glance-endpoint"]
    # a chat's messages do: the restart typed after the log sets the log aside
    assert diagnose(evidence(["message 1", "message 2"])).findings == []
    assert diagnose(evidence(["message 2", "message 1"])).findings != []
