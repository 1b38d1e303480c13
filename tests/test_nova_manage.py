"""nova_manage: fixture pairs (printed by nova-manage's own print statements), recognition,
the heartbeat and enabled columns, the floating interface column, damaged input."""
import pytest

from grammar import kinds, nova_manage
from grammar.transcript import read_transcript
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "nova_manage"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", [
    "nova-manage service list", "nova-manage floating list", "nova-manage floating list --host net01",
    "nova-manage --config-file /etc/nova/nova.conf service list",
])
def test_commands_match(command):
    assert kinds.kind_for_command(command)[0] == KIND


@pytest.mark.parametrize("command", ["nova-manage floating create --ip_range 203.0.113.0/28",
                                     "nova service-list", "nova-manage db sync"])
def test_commands_do_not_match(command):
    assert not nova_manage.COMMANDS.search(command)


def test_xxx_is_a_service_nova_no_longer_hears():
    services = {(r["service"], r["host"]): r for r in nova_manage.parse(fixture("service_list_compute_xxx_rdo")).records}
    assert services[("nova-compute", "rdo-cmp-3.example.org")]["alive"] is False
    assert services[("nova-compute", "rdo-cmp-3.example.org")]["updated"] == "2015-03-02 08:01:07"
    assert services[("nova-network", "rdo-net.example.org")] ["enabled"] is False
    assert services[("nova-network", "rdo-net.example.org")]["alive"] is True


def test_floating_interface_column_and_association():
    rows = nova_manage.parse(fixture("floating_list_one_assigned")).records
    assert [(r["address"], r["interface"], r["assigned"]) for r in rows] == [
        ("203.0.113.20", "br-ex", True), ("203.0.113.21", "br-ex", False)]


def test_empty_pool_message():
    assert nova_manage.parse(fixture("floating_list_empty")).records[0]["type"] == "floating_pool_empty"


def test_recognised_without_a_command():
    for name in ("service_list_healthy_ubuntu", "floating_list_empty", "floating_list_unassigned_eth1"):
        assert kinds.kind_for_text(fixture(name)) == KIND


def test_transcript_gives_facts_with_provenance():
    text = "[root@rdo-ctl ~]# nova-manage service list\n" + fixture("service_list_compute_xxx_rdo")
    facts = [f for f in read_transcript(text, source="ctl.txt").facts if f.get("type") == "nova_service"]
    down = next(f for f in facts if not f["alive"])
    assert down["node"] == "rdo-ctl" and down["prov"]["line"] == 7  # the prompt is line 1
    assert "XXX" in down["prov"]["text"]


@pytest.mark.parametrize("text,where,what", [
    ("nova-compute cmp01 nova enabled\n", 1, "service line"),
    ("Binary Host Zone Status State Updated_At\nnova-compute cmp01 nova maybe :-) None\n", 2, "service line"),
    ("None\t203.0.113.5\tNone\n", 1, "floating IP line"),
    ("Command failed, please check log for more info\n", 1, "nova-manage failed"),
])
def test_damaged_lines_are_named(text, where, what):
    result = nova_manage.parse(text)
    assert result.records == []
    assert [(p.line, what in p.reason) for p in result.problems] == [(where, True)]
