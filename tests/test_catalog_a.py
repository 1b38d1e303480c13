"""Breadth of the CLI-table causes (issue 11, part A): for each, two transcripts from
labs named and numbered otherwise (Ubuntu and RDO prompts and service names), a healthy
counterpart that gives nothing, and the look-alike it must not be taken for. The
tables are the clients' own output (tests/fixtures/cli_table, nova_manage); only the
prompts, which name the node, change from lab to lab."""
from pathlib import Path

import pytest

from grammar.transcript import Evidence, read_transcript
from kb.diagnose import diagnose

FIXTURES = Path(__file__).resolve().parent / "fixtures"
LAB = FIXTURES / "labs"


def table(kind: str, name: str) -> str:
    return (FIXTURES / kind / f"{name}.out").read_text()


def ubuntu(node: str, command: str, output: str) -> str:
    return f"root@{node}:~# {command}\n{output}"


def rdo(node: str, command: str, output: str) -> str:
    return f"[root@{node} ~(keystone_admin)]# {command}\n{output}"


def found(*transcripts: str, node: str | None = None) -> dict:
    evidence = Evidence()
    for index, text in enumerate(transcripts):
        evidence.extend(read_transcript(text, source=f"t{index}.txt", node=node))
    return {(f.cause, f.status, f.node): f for f in diagnose(evidence).findings}


def causes(findings: dict) -> set:
    return {cause for cause, _status, _node in findings}


def lab_block(lab: str, node: str, command: str) -> str:
    """One command's block, prompt included, from a namespace lab's real capture."""
    lines = (LAB / lab / f"{node}.txt").read_text().splitlines(keepends=True)
    start = next(i for i, l in enumerate(lines) if l.rstrip().endswith(f"# {command}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("root@", "[root@"))), len(lines))
    return "".join(lines[start:end])


# --- service-down -----------------------------------------------------------------------

@pytest.mark.parametrize("transcript, node, service", [
    (ubuntu("cmp-a7", "service nova-compute status", "nova-compute stop/waiting\n"), "cmp-a7", "nova-compute"),
    (rdo("img-b2", "service openstack-glance-api status", "openstack-glance-api is stopped\n"), "img-b2", "glance-api"),
    (ubuntu("mq9", "service rabbitmq-server status", table("service_status", "debian_rabbitmq_status_stopped")),
     "mq9", "rabbitmq-server"),
])
def test_a_stopped_service_is_down_on_its_node(transcript, node, service):
    finding = found(transcript)[("service-down", "established", node)]
    assert finding.service == service and node in finding.title


def test_down_in_nova_service_list_is_possible_until_its_node_says():
    listing = ubuntu("ctl7", "nova service-list", table("cli_table", "nova_service_list_compute_down"))
    alone = found(listing)
    assert ("service-down", "possible", "cmp02") in alone
    assert any("service nova-compute status" in d for d in alone[("service-down", "possible", "cmp02")].decide_by)
    stopped = found(listing, ubuntu("cmp02", "service nova-compute status", "nova-compute stop/waiting\n"))
    assert ("service-down", "established", "cmp02") in stopped and ("service-down", "possible", "cmp02") not in stopped


def test_xxx_while_the_service_runs_is_not_service_down():
    # the look-alike: it runs but cannot report (a wrong rabbit_host, a wrong DB password)
    listing = rdo("ctl-r", "nova-manage service list", table("nova_manage", "service_list_compute_xxx_ubuntu"))
    running = ubuntu("cmp02", "service nova-compute status", "nova-compute start/running, process 2411\n")
    assert "service-down" not in causes(found(listing, running))


def test_healthy_services_give_nothing():
    assert not found(ubuntu("ctl7", "nova-manage service list", table("nova_manage", "service_list_healthy_ubuntu")),
                     rdo("rdo-ctl", "nova service-list", table("cli_table", "nova_service_list_healthy_rdo")),
                     ubuntu("cmp3", "service nova-compute restart",
                            "nova-compute stop/waiting\nnova-compute start/running, process 977\n"))


# --- floating IPs -----------------------------------------------------------------------

@pytest.mark.parametrize("transcript, node", [
    (ubuntu("netnode-3", "nova-manage floating list", table("nova_manage", "floating_list_empty")), "netnode-3"),
    (rdo("packstack1", "nova-manage floating list", table("nova_manage", "floating_list_empty")), "packstack1"),
])
def test_an_empty_pool_is_floating_ips_missing(transcript, node):
    findings = found(transcript)
    assert ("floating-ips-missing", "established", node) in findings
    assert "floating-ip-not-assigned" not in causes(findings)


def test_an_instance_without_one_is_not_assigned_not_missing():
    findings = found(ubuntu("api2", "nova list", table("cli_table", "nova_list_fixed_only")),
                     ubuntu("api2", "nova-manage floating list", table("nova_manage", "floating_list_unassigned_eth1")))
    assert ("floating-ip-not-assigned", "established", "api2") in findings
    assert "web1" in findings[("floating-ip-not-assigned", "established", "api2")].title
    assert "floating-ips-missing" not in causes(findings)


def test_nova_show_on_rdo_says_not_assigned_and_a_floating_ip_clears_it():
    assert ("floating-ip-not-assigned", "established", "ctl-east") in found(
        rdo("ctl-east", "nova show --minimal web1", table("cli_table", "nova_show_fixed_only")))
    assert not found(ubuntu("api2", "nova list", table("cli_table", "nova_list_with_floating")))


def _override_lab(node: str, public_interface: str, floating: str) -> str:
    routes = lab_block("other-healthy", "net01", "ip route").replace("root@net01:~#", f"root@{node}:~#")
    return (ubuntu(node, "grep public_interface /etc/nova/nova.conf", f"public_interface={public_interface}\n")
            + routes + ubuntu(node, "nova-manage floating list", table("nova_manage", floating)))


@pytest.mark.parametrize("node, floating, bound_on", [
    ("neutron-less", "floating_list_interface_ens4", "ens4"),
    ("netw-2", "floating_list_unassigned_eth1", "eth1"),
])
def test_the_interface_column_counts_when_public_interface_is_empty(node, floating, bound_on):
    finding = found(_override_lab(node, "", floating))[("floating-ip-interface-override", "established", node)]
    assert bound_on in finding.title and "ens3" in finding.title


def test_the_interface_column_is_ignored_while_public_interface_is_set():
    # the seed's red herring: the column names another interface, public_interface wins
    assert "floating-ip-interface-override" not in causes(found(_override_lab("netw-2", "ens3", "floating_list_interface_ens4")))


@pytest.mark.parametrize("transcript, node, name", [
    (ubuntu("nn-1", "grep public_interface /etc/nova/nova.conf", "public_interface=eth2\n")
     + ubuntu("nn-1", "ip addr show eth2", 'Device "eth2" does not exist.\n'), "nn-1", "eth2"),
    (rdo("rdo-net-4", "grep ^public_interface /etc/nova/nova.conf", "public_interface = ens9\n")
     + lab_block("other-healthy", "net01", "ip addr show").replace("root@net01:~#", "[root@rdo-net-4 ~]#"),
     "rdo-net-4", "ens9"),
])
def test_a_public_interface_the_node_lacks(transcript, node, name):
    finding = found(transcript)[("public-interface-missing", "established", node)]
    assert name in finding.title


def test_an_existing_public_interface_is_not_missing_and_snat_on_the_wrong_one_is_its_own_cause():
    lab = "other-snat-wrong-interface"
    evidence = [(LAB / lab / f"{n}.txt").read_text() for n in ("net01", "cmp01", "gw01", "vm01", "ext-host")
                if (LAB / lab / f"{n}.txt").exists()]
    conf = ubuntu("net01", "grep public_interface /etc/nova/nova.conf", "public_interface=ens4\n")
    findings = found(conf, *evidence)
    assert "fip-snat-wrong-interface" in causes(findings)
    assert "public-interface-missing" not in causes(findings)


# --- security groups --------------------------------------------------------------------

@pytest.mark.parametrize("transcript, node, group", [
    (ubuntu("api-x", "nova secgroup-list-rules default", table("cli_table", "nova_secgroup_rules_icmp_only")), "api-x", "default"),
    (rdo("rdo-ctl2", "nova secgroup-list-rules web", table("cli_table", "nova_secgroup_rules_empty")), "rdo-ctl2", "web"),
])
def test_a_group_without_ssh_is_possible_with_what_decides(transcript, node, group):
    finding = found(transcript)[("secgroup-port-closed", "possible", node)]
    assert group in finding.title and any("nc -v" in d for d in finding.decide_by)


def test_a_group_admitting_ssh_and_icmp_gives_nothing():
    assert not found(ubuntu("api-x", "nova secgroup-list-rules default", table("cli_table", "nova_secgroup_rules_ssh_icmp")))


# --- keystone ---------------------------------------------------------------------------

@pytest.mark.parametrize("transcript, node", [
    (ubuntu("keystone1", "keystone user-role-list --user cinder --tenant service",
            table("cli_table", "keystone_user_role_list_empty")), "keystone1"),
    (rdo("rdo-ks", "keystone user-list", table("cli_table", "keystone_user_list"))
     + rdo("rdo-ks", "keystone user-role-list --user-id 0d8f5e2a9b7c4d1e8f6a3b2c1d0e9f8a --tenant-id "
           "cb1e4f3a2d6c4b7e9f0a1b2c3d4e5f60", table("cli_table", "keystone_user_role_list_member_only")), "rdo-ks"),
])
def test_a_service_user_without_admin(transcript, node):
    assert ("keystone-admin-role-missing", "established", node) in found(transcript)


def test_the_service_log_alone_is_possible_and_a_pasted_role_list_decides():
    log = (FIXTURES / "catalog_a" / "glance_api_auth_token_401.log").read_text()
    evidence = Evidence()
    evidence.extend(read_transcript(log, source="evidence/img7/glance-api.log", node="img7"))
    alone = {(f.cause, f.status, f.node): f for f in diagnose(evidence).findings}
    finding = alone[("keystone-admin-role-missing", "possible", "img7")]
    assert any("keystone user-role-list" in d for d in finding.decide_by)
    evidence.extend(read_transcript(ubuntu("ctl", "keystone user-role-list --user glance --tenant service",
                                           table("cli_table", "keystone_user_role_list_admin")), source="k.txt"))
    assert "keystone-admin-role-missing" not in {f.cause for f in diagnose(evidence).findings}


def test_a_user_with_admin_gives_nothing():
    assert not found(ubuntu("keystone1", "keystone user-role-list --user nova --tenant service",
                            table("cli_table", "keystone_user_role_list_admin")))


def _public_lab(node: str, lab: str, floating: str) -> str:
    addresses = lab_block(lab, "net01", "ip addr show").replace("root@net01:~#", f"root@{node}:~#")
    return (ubuntu(node, "grep public_interface /etc/nova/nova.conf", "public_interface=ens4\n")
            + addresses + ubuntu(node, "nova-manage floating list", table("nova_manage", floating)))


@pytest.mark.parametrize("node, lab, floating, first", [
    ("nw-17", "other-healthy", "floating_list_unassigned_eth1", "198.51.100.10"),
    ("nw-18", "other-snat-wrong-interface", "floating_list_one_assigned", "203.0.113.20"),
])
def test_floating_ips_outside_the_public_network(node, lab, floating, first):
    finding = found(_public_lab(node, lab, floating))[("floating-ips-off-network", "established", node)]
    assert first in finding.title and "198.51.100.70/26" in finding.explanation


def test_floating_ips_inside_the_public_network_give_nothing():
    assert "floating-ips-off-network" not in causes(found(_public_lab("nw-17", "other-healthy",
                                                                      "floating_list_interface_ens4")))


def test_no_more_floating_ips_is_possible_until_the_pool_is_listed():
    error = ubuntu("api-9", "nova floating-ip-create", table("cli_error", "nova_floating_ip_create_none_left"))
    finding = found(error)[("floating-ips-missing", "possible", "api-9")]
    assert any("nova-manage floating list" in d for d in finding.decide_by)
    listed = found(error, ubuntu("api-9", "nova-manage floating list", table("nova_manage", "floating_list_one_assigned")))
    assert "floating-ips-missing" not in causes(listed)


def test_the_tutor_says_the_interface_column_is_a_red_herring(tmp_path):
    from tutor.conversation import Tutor
    from tutor.store import Store
    tutor = Tutor(Store(tmp_path / "t.db"))
    session = tutor.start()
    tutor.respond(session, "I can't ssh to my instance, connection timed out")
    reply = tutor.respond(session, "the interface column of nova-manage floating list says eth1, is that why?")
    assert "public_interface" in reply.reply and "ignored" in reply.reply
