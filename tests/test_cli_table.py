"""cli_table: fixture pairs (printed by novaclient 2.17 and keystoneclient 0.7.1 themselves),
recognition, the empty role list, damaged tables; and the openstack client's tables, printed by
the real client against a fake API on loopback (make_osc_fixtures.sh)."""
import pytest

from grammar import cli_table, kinds
from grammar.transcript import read_transcript
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "cli_table"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", [
    "nova service-list", "nova list", "nova --os-tenant-name demo list", "nova show web1",
    "nova secgroup-list-rules default", "nova floating-ip-list", "keystone user-list",
    "keystone tenant-list", "keystone user-role-list --user nova --tenant service",
    "openstack compute service list", "openstack server list", "openstack server show test-vm",
    "openstack security group rule list default", "openstack floating ip list", "openstack user list",
    "openstack role assignment list --user glance --project service --names",
])
def test_commands_match(command):
    assert kinds.kind_for_command(command)[0] == KIND


@pytest.mark.parametrize("command", ["nova boot --flavor 1 vm", "nova-manage service list", "nova image-list",
                                     "keystone user-role-add --user nova --role admin"])
def test_commands_do_not_match(command):
    assert not cli_table.COMMANDS.search(command)


def test_a_down_compute_service():
    rows = [r for r in cli_table.parse(fixture("nova_service_list_compute_down")).records if not r["alive"]]
    assert [(r["service"], r["host"], r["enabled"]) for r in rows] == [("nova-compute", "cmp02", True)]


def test_fixed_address_alone_and_with_a_floating_one():
    alone = cli_table.parse(fixture("nova_list_fixed_only")).records
    assert [(s["name"], s["addresses"], s["address_count"]) for s in alone] == [("web1", "10.20.4.5", 1)]
    both = {s["name"]: s for s in cli_table.parse(fixture("nova_list_with_floating")).records}
    assert both["test-vm"]["address_count"] == 2 and both["db1"]["status"] == "ERROR"
    shown = cli_table.parse(fixture("nova_show_fixed_only"), "nova show --minimal web1").records
    assert [(s["name"], s["network"], s["address_count"]) for s in shown if s["type"] == "server"] == [
        ("web1", "private", 1)]
    assert [(g["name"], g["group"]) for g in shown if g["type"] == "server_group"] == [("web1", "default")]


def test_secgroup_rules_name_their_group_and_ports():
    records = cli_table.parse(fixture("nova_secgroup_rules_ssh_icmp"), "nova secgroup-list-rules default").records
    rules = [(r["protocol"], r["from_port"], r["to_port"]) for r in records if r["type"] == "secgroup_rule"]
    assert rules == [("icmp", -1, -1), ("tcp", 22, 22)]
    assert {"type": "secgroup_shown", "line": 4, "group": "default", "rules": 2} in records


def test_an_empty_role_list_is_an_empty_line_and_says_no_role():
    assert fixture("keystone_user_role_list_empty") == "\n"   # keystoneclient's print_empty=False
    text = "root@ctl01:~# keystone user-role-list --user glance --tenant service\n\nroot@ctl01:~# \n"
    facts = [f for f in read_transcript(text, source="k.txt").facts if f["type"] == "user_roles"]
    assert [(f["user"], f["tenant"], f["count"], f["admin"]) for f in facts] == [("glance", "service", 0, False)]


def test_member_role_alone_is_not_admin():
    roles = [r for r in cli_table.parse(fixture("keystone_user_role_list_member_only"),
                                        "keystone user-role-list --user nova --tenant service").records
             if r["type"] == "user_roles"]
    assert [(r["user"], r["roles"], r["admin"]) for r in roles] == [("nova", "_member_", False)]


def test_recognised_without_a_command():
    for name in ("nova_service_list_compute_down", "keystone_user_list", "nova_list_fixed_only"):
        assert kinds.kind_for_text(fixture(name)) == KIND


@pytest.mark.parametrize("text,where,what", [
    ("| Binary | Host |\n+---+---+\n", 1, "no header border"),
    ("+--+\n| Ip | Fixed Ip | Pool |\n+--+\n| 203.0.113.9 | - |\n+--+\n", 4, "2 cells in a table of 3"),
    ("+--+\n| Ip | Fixed Ip | Pool |\n+--+\nsomething else\n", 4, "not a line of a table"),
    ("+---+---+\n| a | b |\n+---+---+\n| 1 | 2 |\n+---+---+\n", 2, "columns (a, b) stackdoc does not read"),
])
def test_damaged_tables_are_named(text, where, what):
    problems = cli_table.parse(text).problems
    assert [(p.line, what in p.reason) for p in problems] == [(where, True)]


# --- the openstack client (python-openstackclient 10.5, real, against osc_fake_api.py) ---

def test_openstack_and_nova_agree_on_the_down_compute_service():
    openstack = [(r["service"], r["host"], r["alive"]) for r in cli_table.parse(
        fixture("osc_compute_service_list"), "openstack compute service list").records]
    nova = [(r["service"], r["host"], r["alive"]) for r in cli_table.parse(
        fixture("nova_service_list_compute_down")).records]
    assert ("nova-compute", "cmp02", False) in openstack and ("nova-compute", "cmp02", False) in nova
    assert ("nova-compute", "cmp01", True) in openstack


def test_openstack_security_group_rules_are_the_ingress_ones_with_their_ports():
    text = fixture("osc_security_group_rule_list")
    assert text.count("egress") == 2
    records = cli_table.parse(text, "openstack security group rule list default").records
    rules = [(r["protocol"], r["from_port"], r["to_port"], r["cidr"]) for r in records if r["type"] == "secgroup_rule"]
    assert rules == [("icmp", -1, -1, "0.0.0.0/0"), ("tcp", 22, 22, "0.0.0.0/0")]
    assert [(r["group"], r["rules"]) for r in records if r["type"] == "secgroup_shown"] == [("default", 2)]


def test_openstack_floating_ips_say_which_are_assigned():
    records = cli_table.parse(fixture("osc_floating_ip_list"), "openstack floating ip list").records
    assert [(r["address"], r["assigned"]) for r in records] == [("203.0.113.40", True), ("203.0.113.41", False)]


def test_openstack_server_list_and_show_give_the_same_instance():
    listed = cli_table.parse(fixture("osc_server_list"), "openstack server list").records
    shown = cli_table.parse(fixture("osc_server_show"), "openstack server show test-vm").records
    row = next(r for r in listed if r["name"] == "test-vm")
    assert [(s["uuid"], s["network"], s["addresses"]) for s in shown if s["type"] == "server"] == [
        (row["uuid"], "novanetwork", "10.20.4.5, 203.0.113.40")]
    # the real client prints the groups as name='default': the group read from it
    assert [(s["uuid"], s["group"], s["groups"]) for s in shown if s["type"] == "server_group"] == [
        (row["uuid"], "default", 1)]


def test_openstack_role_assignments_by_name_and_the_empty_line():
    listed = cli_table.parse(fixture("osc_role_assignment_list_names"), "openstack role assignment list --names").records
    roles = {(r["user"], r["tenant"]): r["admin"] for r in listed if r["type"] == "user_roles"}
    assert roles == {("admin", "admin"): True, ("nova", "service"): True, ("glance", "service"): False,
                     ("cinder", "service"): True}
    assert fixture("osc_role_assignment_heat_service_empty") == "\n"
    text = ("root@ctl01:~# openstack role assignment list --user heat --project service --names\n"
            + fixture("osc_role_assignment_heat_service_empty") + "root@ctl01:~# \n")
    facts = [f for f in read_transcript(text, "paste").facts if f["type"] == "user_roles"]
    assert [(f["user"], f["tenant"], f["count"], f["admin"]) for f in facts] == [("heat", "service", 0, False)]


def test_openstack_user_list():
    users = cli_table.parse(fixture("osc_user_list"), "openstack user list").records
    assert [u["name"] for u in users] == ["admin", "nova", "glance", "cinder", "heat"]


def test_the_same_table_twice_reads_the_same_twice():
    # Each distinct line is read once; a value prettytable wrapped onto the next row is
    # added to its own row, never to the reading the next table shares.
    lines = fixture("nova_show_fixed_only").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| private network"))
    lines.insert(at + 1, "|                      | 10.20.4.6                            |")
    table = "\n".join(lines) + "\n"
    first, second = (cli_table.parse(table).records, cli_table.parse(table).records)
    both = cli_table.parse(table + table).records
    assert first == second and len(both) == 2 * len(first)
    assert [{k: v for k, v in r.items() if k != "line"} for r in both[len(first):]] == \
        [{k: v for k, v in r.items() if k != "line"} for r in first]
    assert any("10.20.4.5 10.20.4.6" in str(r) for r in first)
