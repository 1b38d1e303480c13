"""The catalog's part B, in breadth: the broker, the database, keystone, iSCSI, the
compute node's disk and a tool's missing module. Per cause, two positive labs named
and numbered differently (an Ubuntu node with 2014 log formats, an RDO node with later
ones), a healthy counterpart that gives nothing, and the look-alike it must not be
confused with; what a user reads (cause, status, node, service, the lab's own values
in the title, the evidence lines) is what is asserted.

The evidence is rules/examples/sabotage/ (real output: see rules/examples/SOURCES.md),
copied into a temporary folder under other names where a test renames a node."""
import tempfile
from pathlib import Path

import pytest

from collectors.files import read_evidence
from kb.diagnose import diagnose
from tutor.recognise import SymptomIndex
from tutor.symptoms import load_symptoms
from kb.diagnose import default_rulebook

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples" / "sabotage"
SEED_CINDER_LOG = EXAMPLES.parent / "seed-cinder-api.log"


def run(*names, **renames):
    """The diagnosis of some example files, with nodes renamed (old=new) if asked."""
    texts = []
    for name in names:
        text = (EXAMPLES / name).read_text()
        for old, new in renames.items():
            text = text.replace(f"@{old.replace('_', '-')}", f"@{new}")
        texts.append(text)
    return diagnose(read_evidence_texts(texts))


def read_evidence_texts(texts):
    """Texts read as files pasted into a folder (read at once; the folder then goes)."""
    with tempfile.TemporaryDirectory(prefix="stackdoc-catalog-b-") as folder:
        paths = []
        for index, text in enumerate(texts):
            path = Path(folder) / f"evidence-{index}.txt"
            path.write_text(text)
            paths.append(str(path))
        return read_evidence(paths)


def found(diagnosis):
    return {(f.cause, f.status, f.node) for f in diagnosis.findings}


def finding(diagnosis, cause):
    matches = [f for f in diagnosis.findings if f.cause == cause]
    assert len(matches) == 1, found(diagnosis)
    return matches[0]


# --- rabbit-host-wrong -------------------------------------------------------------------

def test_rabbit_host_missing_on_ubuntu_compute_is_established():
    result = finding(run("rabbit-localhost-ubuntu.txt"), "rabbit-host-wrong")
    assert (result.status, result.node, result.service) == ("established", "compute1", "nova-compute")
    assert "localhost:5672" in result.title
    assert any("unrecognized service" in line["text"] for line in result.evidence)


def test_rabbit_host_naming_a_host_without_broker_on_rdo_is_established():
    result = finding(run("rabbit-wrong-host-rdo.txt"), "rabbit-host-wrong")
    assert (result.status, result.node) == ("established", "cmp-02")
    assert "10.20.0.99" in result.title and "ctl-01" in result.explanation


def test_a_broker_shown_listening_elsewhere_establishes_it():
    result = finding(run("rabbit-wrong-host-ss-rdo.txt"), "rabbit-host-wrong")
    assert (result.status, result.node) == ("established", "cmp-02")
    assert any(line["command"] == "ss -ltnp" for line in result.evidence)


def test_renamed_nodes_are_named_in_the_finding():
    result = finding(run("rabbit-wrong-host-rdo.txt", cmp_02="hv-17", ctl_01="brain"), "rabbit-host-wrong")
    assert result.node == "hv-17" and "brain" in result.explanation


def test_rabbit_log_alone_is_possible_and_says_what_decides():
    result = finding(run("rabbit-log-only-rdo.txt"), "rabbit-host-wrong")
    assert result.status == "possible"
    assert any("rabbitmq-server status" in step for step in result.decide_by)


def test_a_stopped_broker_is_not_a_wrong_rabbit_host():
    assert "rabbit-host-wrong" not in {f.cause for f in run("rabbit-broker-stopped-ubuntu.txt").findings}


@pytest.mark.parametrize("name", ["rabbit-history-ubuntu.txt", "rabbit-history-rdo.txt",
                                  "healthy-conductor-ubuntu.txt"])
def test_unreachable_then_reconnected_is_history(name):
    assert run(name).findings == []


def test_a_failure_after_the_reconnect_is_current_again():
    # the same log, its first "unreachable" line logged once more after "Connected"
    history = (EXAMPLES / "rabbit-history-ubuntu.txt").read_text().splitlines()
    prompt, lines = history[0], history[1:]
    assert "Connected to AMQP server" in lines[-1]
    failing_again = "\n".join([prompt, *lines, lines[0]]) + "\n"
    result = diagnose(read_evidence_texts([failing_again]))
    assert {(f.cause, f.status) for f in result.findings} == {("rabbit-host-wrong", "possible")}


# --- db-password-wrong -------------------------------------------------------------------

@pytest.mark.parametrize("name, node, service, user", [
    ("db-denied-ubuntu.txt", "controller", "nova", "nova"),
    ("db-denied-rdo.txt", "img-01", "glance-api", "glance"),
])
def test_access_denied_is_a_wrong_db_password(name, node, service, user):
    result = finding(run(name), "db-password-wrong")
    assert (result.status, result.node, result.service) == ("established", node, service)
    assert user in result.title
    assert any("1045" in line["text"] for line in result.evidence)


def test_a_stopped_mysql_is_not_a_wrong_password():
    assert "db-password-wrong" not in {f.cause for f in run("db-mysql-down-ubuntu.txt").findings}


# --- keystone-password-wrong -------------------------------------------------------------

@pytest.mark.parametrize("name, node, service", [
    ("authtoken-401-ubuntu.txt", "controller", "nova"),
    ("authtoken-401-rdo.txt", "ctl-01", "cinder"),
])
def test_a_service_log_alone_is_possible_and_names_the_role_list_and_keystone_log(name, node, service):
    result = finding(run(name), "keystone-password-wrong")
    assert (result.status, result.node, result.service) == ("possible", node, service)
    decide = " ".join(result.decide_by)
    assert "user-role-list" in decide and "keystone" in decide


def test_keystone_log_of_the_failed_login_establishes_it():
    result = finding(run("authtoken-401-keystone-ubuntu.txt"), "keystone-password-wrong")
    assert result.status == "established"
    assert any("Authorization failed." in line["text"] for line in result.evidence)


def test_keystone_saying_the_role_is_missing_rules_the_password_out():
    # keystone's own words for a user without a role in the tenant (Icehouse's
    # "User %(u_id)s is unauthorized for tenant %(t_id)s"), in its log format
    log = (EXAMPLES / "authtoken-401-ubuntu.txt").read_text()
    keystone = ("root@controller:~# tail -n 1 /var/log/keystone/keystone-all.log\n"
                "2026-11-27 09:17:04.769 30212 WARNING keystone.token.controllers [-] "
                "User nova is unauthorized for tenant service\n")
    result = diagnose(read_evidence_texts([log, keystone]))
    assert "keystone-password-wrong" not in {f.cause for f in result.findings}


# --- iscsi-ip-wrong ----------------------------------------------------------------------

@pytest.mark.parametrize("name, node, portal", [
    ("iscsi-ubuntu.txt", "block1", "10.0.0.99"),
    ("iscsi-rdo.txt", "stor-01", "10.20.0.77"),
])
def test_iscsi_ip_that_is_not_the_volume_nodes_is_established(name, node, portal):
    result = finding(run(name), "iscsi-ip-wrong")
    assert (result.status, result.node, result.service) == ("established", node, "cinder-volume")
    assert portal in result.title


def test_the_rescan_alone_is_possible():
    result = finding(run("iscsi-log-only-ubuntu.txt"), "iscsi-ip-wrong")
    assert result.status == "possible" and "10.0.0.99" in result.title


def test_the_right_iscsi_ip_gives_nothing():
    assert run("iscsi-healthy-ubuntu.txt").findings == []


# --- instances-disk-full -----------------------------------------------------------------

@pytest.mark.parametrize("name, node", [("disk-full-ubuntu.txt", "compute1"), ("disk-full-rdo.txt", "cmp-02"),
                                        ("disk-full-log-rdo.txt", "cmp-02")])
def test_a_full_instances_filesystem_is_established(name, node):
    result = finding(run(name), "instances-disk-full")
    assert (result.status, result.node) == ("established", node)


def test_the_same_filesystem_with_room_gives_nothing():
    assert run("disk-free-ubuntu.txt").findings == []


def test_a_full_filesystem_elsewhere_is_not_the_instances_disk():
    text = (EXAMPLES / "disk-full-ubuntu.txt").read_text()
    df_only = text[text.index("root@compute1:~# df"):]
    # /var/lib/nova/instances mounted apart and full; the same df with another path asked
    other = df_only.replace("/var/lib/nova/instances", "/srv/backup")
    assert diagnose(read_evidence_texts([other])).findings == []


# --- python-argparse-missing -------------------------------------------------------------

def test_argparse_missing_under_python_26():
    result = finding(run("argparse-centos6.txt"), "python-argparse-missing")
    assert (result.status, result.node) == ("established", "head-node")
    assert "2.6" in result.title


def test_another_missing_module_is_not_argparse():
    assert run("importerror-other.txt").findings == []


# --- cinder-glance-endpoint: the deciding evidence already pasted ------------------------

def test_glance_api_stopped_where_cinder_looks_is_not_a_possible_endpoint():
    result = run("glance-api-stopped-ubuntu.txt")
    assert "cinder-glance-endpoint" not in {f.cause for f in result.findings}
    for f in result.findings:  # whatever else is said never asks for the status again
        assert not any("glance-api status" in step for step in f.decide_by)


def test_the_log_alone_still_asks_for_the_glance_api_status():
    result = diagnose(read_evidence_texts(["root@volume1:~# tail /var/log/cinder/cinder-api.log\n"
                                           + SEED_CINDER_LOG.read_text()]))
    endpoint = finding(result, "cinder-glance-endpoint")
    assert endpoint.status == "possible"
    assert any("glance-api status" in step for step in endpoint.decide_by)


# --- the chat finds the new symptoms -----------------------------------------------------

@pytest.mark.parametrize("text, symptom", [
    ("nova list says HTTP 401 unauthorized", "api-unauthorized"),
    ("the volume I attached never appears in the instance", "cannot-attach-volume"),
    ("elasticluster crashes with an ImportError traceback", "tool-crashes"),
    ("uploading my image to glance fails", "cannot-upload-image"),
    ("taking a snapshot of my instance fails", "cannot-snapshot"),
])
def test_students_words_find_the_new_symptoms(text, symptom):
    assert SymptomIndex(load_symptoms(default_rulebook()).values()).best(text) == symptom
