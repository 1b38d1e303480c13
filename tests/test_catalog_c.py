"""The catalog's part C: a security group established from what the probes saw, a
service down from its clients' refused connections, keystone's own log telling a wrong
password from a missing role. Per cause, positives on two labs named differently, the
healthy or look-alike evidence that must not give it, and what a user reads (cause,
status, node, service, the lab's own values, the evidence lines) is what is asserted.

The evidence is rules/examples/ (real output: see rules/examples/SOURCES.md), copied
into a temporary folder, with nodes renamed where a test says so."""
import shutil
import tempfile
from pathlib import Path

import pytest

from collectors.files import read_evidence
from kb.diagnose import diagnose

EXAMPLES = Path(__file__).resolve().parent.parent / "rules" / "examples"


def run(*names, **renames):
    """The diagnosis of example files or folders, nodes renamed (old=new; _ for -)."""
    with tempfile.TemporaryDirectory(prefix="stackdoc-catalog-c-") as folder:
        paths = []
        for index, name in enumerate(names):
            source = EXAMPLES / name
            files = sorted(source.iterdir()) if source.is_dir() else [source]
            for number, path in enumerate(files):
                text = path.read_text()
                for old, new in renames.items():
                    old = old.replace("_", "-")
                    text = text.replace(f"@{old}:", f"@{new}:").replace(f"@{old} ", f"@{new} ")
                target = Path(folder) / f"evidence-{index}-{number}.txt"
                target.write_text(text)
                paths.append(str(target))
        return diagnose(read_evidence(paths))


def found(diagnosis):
    return {(f.cause, f.status, f.node) for f in diagnosis.findings}


def finding(diagnosis, cause):
    matches = [f for f in diagnosis.findings if f.cause == cause]
    assert len(matches) == 1, found(diagnosis)
    return matches[0]


def evidence_text(result):
    return "\n".join(line["text"] for line in result.evidence)


# --- secgroup-port-closed -----------------------------------------------------------------

def test_ssh_timing_out_while_ping_answers_and_no_rule_for_22_is_established():
    result = finding(run("sg-ssh-filtered-ubuntu"), "secgroup-port-closed")
    assert (result.status, result.node, result.service) == ("established", "ctl01", "nova-compute")
    assert result.title == "security group default does not admit tcp port 22 to web-2"
    assert "198.51.100.24" in result.explanation and "gw01" in result.explanation
    assert result.fix[0] == "nova secgroup-add-rule default tcp 22 22 0.0.0.0/0"
    shown = evidence_text(result)
    assert "timed out: Operation now in progress" in shown            # the probe that failed
    assert "| security_groups      | default" in shown               # the instance's group
    assert "PING 198.51.100.24" in shown                              # the instance answers


def test_ping_silent_while_ssh_connects_on_rdo_is_established():
    result = finding(run("sg-icmp-filtered-rdo"), "secgroup-port-closed")
    assert (result.status, result.node) == ("established", "rdo-ctl")
    assert result.title == "security group ops does not admit ping (icmp) to db1"
    assert result.fix[0] == "nova secgroup-add-rule ops icmp -1 -1 0.0.0.0/0"
    assert "bastion's ping to 203.0.113.57 got no reply" in result.explanation
    assert "Connection to 203.0.113.57 22 port [tcp/ssh] succeeded!" in evidence_text(result)


def test_renamed_nodes_are_named_in_the_finding():
    result = finding(run("sg-ssh-filtered-ubuntu", ctl01="api-7", gw01="jump"), "secgroup-port-closed")
    assert result.node == "api-7" and "jump's nc" in result.explanation


def test_port_refused_means_sshd_is_not_running_not_a_closed_group():
    # the same group, admitting no ssh; the probe was refused: the packet got in
    assert "secgroup-port-closed" not in {f.cause for f in run("sg-sshd-stopped-ubuntu").findings}


def test_without_the_probes_the_group_alone_stays_possible():
    result = finding(run("sg-ssh-filtered-ubuntu/ctl01.txt"), "secgroup-port-closed")
    assert result.status == "possible" and any("nc -v" in step for step in result.decide_by)


def test_an_instance_in_two_groups_with_one_shown_stays_possible():
    result = finding(run("sg-two-groups-ubuntu"), "secgroup-port-closed")
    assert result.status == "possible"


def test_a_port_range_admitting_22_is_not_this_cause():
    assert run("sg-ssh-range-ubuntu").findings == []


def test_the_probes_alone_say_nothing_about_the_group():
    assert run("sg-ssh-filtered-ubuntu/gw01.txt").findings == []


# --- service-down from its clients -------------------------------------------------------

@pytest.mark.parametrize("name, node, service, port", [
    ("refused-keystone-ubuntu", "controller", "keystone", 5000),
    ("refused-nova-api-rdo", "rdo-ctl", "nova-api", 8774),
    ("refused-broker-ubuntu", "controller", "rabbitmq-server", 5672),
    ("refused-glance-api-log-ubuntu", "image1", "glance-api", 9292),
])
def test_a_refused_client_and_nothing_listening_is_established(name, node, service, port):
    result = finding(run(name), "service-down")
    assert (result.status, result.node, result.service) == ("established", node, service)
    assert result.title == f"{service} is not running on {node}: nothing listens on port {port}"
    assert result.fix[0].startswith(f"On {node}: service {service} start")
    shown = evidence_text(result)
    assert "Connection refused" in shown or "ECONNREFUSED" in shown   # the client's words
    assert "LISTEN" in shown                                           # what the node listens on


def test_renamed_service_node_is_the_finding_node():
    result = finding(run("refused-nova-api-rdo", rdo_ctl="brain-2"), "service-down")
    assert result.node == "brain-2" and "brain-2" in result.explanation


def test_a_refused_broker_with_its_node_not_listening_is_not_a_wrong_rabbit_host():
    assert {f.cause for f in run("refused-broker-ubuntu").findings} == {"service-down"}


def test_the_refusal_alone_is_possible_and_says_what_decides():
    result = finding(run("refused-keystone-cli-only.txt"), "service-down")
    assert (result.status, result.service, result.node) == ("possible", "keystone", "10.0.0.11")
    decide = " ".join(result.decide_by)
    assert "service keystone status" in decide and "ss -ltnp" in decide


def test_the_status_already_pasted_decides_without_asking_again():
    result = finding(run("refused-status-shown-ubuntu"), "service-down")
    assert (result.status, result.node, result.service) == ("established", "controller", "keystone")
    assert result.decide_by == []


def test_refused_where_the_service_does_not_run_at_all_is_not_service_down():
    assert run("refused-wrong-endpoint-ubuntu").findings == []


def test_the_same_refusal_with_the_service_listening_on_another_node_is_not_service_down():
    # keystone listens on 5000 on rdo-ctl: the client was pointed at the wrong host
    assert "service-down" not in {f.cause for f in run("refused-keystone-cli-only.txt", "refused-healthy-rdo").findings}


def test_healthy_sockets_and_no_refusal_give_nothing():
    assert run("refused-healthy-rdo").findings == []


def test_mysql_refusing_the_conductor_is_possible_service_down_not_a_wrong_password():
    causes = {(f.cause, f.status, f.service) for f in run("sabotage/db-mysql-down-ubuntu.txt").findings}
    assert causes == {("service-down", "possible", "mysql")}


def test_cinder_refused_by_glance_on_its_own_address_stays_the_endpoint_cause():
    result = run("seed-cinder-api.log", "seed-volume-node-ip-addr.txt")
    assert {f.cause for f in result.findings} == {"cinder-glance-endpoint"}


@pytest.mark.parametrize("name", ["sabotage/rabbit-localhost-ubuntu.txt", "sabotage/rabbit-wrong-host-rdo.txt"])
def test_a_broker_looked_for_where_none_is_installed_is_not_service_down(name):
    assert "service-down" not in {f.cause for f in run(name).findings}


# --- the log texts, as the sources print them ------------------------------------------

@pytest.mark.parametrize("name, node, driver", [
    ("db-denied-pymysql-rdo.txt", "rdo-ctl", "pymysql.err.OperationalError"),
    ("db-denied-mysqldb-ubuntu.txt", "ctl01", "MySQLdb._exceptions.OperationalError"),
])
def test_a_real_mariadb_refusing_the_login_through_sqlalchemy_is_a_wrong_db_password(name, node, driver):
    result = finding(run(name), "db-password-wrong")
    assert (result.status, result.node, result.service) == ("established", node, "nova")
    assert "login as nova" in result.title
    assert f"({driver}) (1045, \"Access denied for user 'nova'@'localhost' (using password: YES)\")" \
        in evidence_text(result)


def test_keystone_logging_the_missing_role_before_the_failed_login_is_the_role_not_the_password():
    result = run("ks-role-missing-keystone-log")
    assert {(f.cause, f.status) for f in result.findings} == {("keystone-admin-role-missing", "established")}
    role = finding(result, "keystone-admin-role-missing")
    assert role.node == "controller" and "nova-api" in role.title
    assert "is unauthorized for tenant" in evidence_text(role)
    assert "Authorization failed. The request you have made requires authentication. from 10.0.0.11" \
        in evidence_text(role)


def test_keystone_logging_only_the_failed_login_is_the_password_and_decides_the_role_question():
    result = run("sabotage/authtoken-401-keystone-ubuntu.txt")
    assert {(f.cause, f.status) for f in result.findings} == {("keystone-password-wrong", "established")}


def test_the_service_log_alone_leaves_both_possible():
    result = run("sabotage/authtoken-401-ubuntu.txt")
    assert {(f.cause, f.status) for f in result.findings} == {
        ("keystone-password-wrong", "possible"), ("keystone-admin-role-missing", "possible")}
