"""route_n: fixture pairs, command and content recognition, and damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import route_n
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "route_n"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures():
    assert len(cases(KIND)) >= 8


@pytest.mark.parametrize("command", [
    "route", "route -n", "route -ee", "route -n -ee", "route -n -A inet6", "route -6 -n",
    "netstat -rn", "netstat -nr", "netstat -r", "netstat -r -n", "netstat --route -n",
    "sudo route -n", "ip netns exec qrouter-5d2b route -n", "route -n | grep UG",
])
def test_commands_match(command):
    assert route_n.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "route add default gw 172.16.0.1 dev eth1", "route del default gw 10.0.0.1",
    "route add -net 172.16.0.0/16 dev br1", "route -n add -net 10.0.0.0/8 dev eth0",
    "ip route", "ip r", "ip -6 route show", "netstat -tlnp", "netstat -an", "netstat -i",
    "traceroute 10.0.0.1", "tracepath 10.0.0.1",
])
def test_commands_do_not_match(command):
    assert not route_n.COMMANDS.search(command)


@pytest.mark.parametrize("case", ["net01_route_n", "net01_netstat_rn", "net01_route_inet6",
                                  "nt160_route"])
def test_looks_like_route_tables(case):
    assert route_n.looks_like((FIXTURES / KIND / f"{case}.out").read_text())


def test_looks_like_header_without_title():
    text = ("Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
            "0.0.0.0         10.0.0.1        0.0.0.0         UG    0      0        0 eth0\n")
    assert route_n.looks_like(text)


@pytest.mark.parametrize("text", [
    "",
    "Chain INPUT (policy ACCEPT 21 packets, 4859 bytes)\n pkts bytes target     prot opt in     out     source               destination\n",
    "default via 10.0.0.1 dev eth0\n10.0.0.0/24 dev eth0  proto kernel  scope link  src 10.0.0.7\n",
    "Kernel Interface table\nIface      MTU    RX-OK RX-ERR RX-DRP RX-OVR    TX-OK TX-ERR TX-DRP TX-OVR Flg\n",
    "Active Internet connections (only servers)\nProto Recv-Q Send-Q Local Address           Foreign Address         State\n",
])
def test_looks_like_rejects_other_output(text):
    assert not route_n.looks_like(text)


def test_network_and_host_names_without_n():
    # `route` resolves names: /etc/networks gives "link-local", DNS a gateway's name.
    text = ("Kernel IP routing table\n"
            "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
            "default         gateway.lab     0.0.0.0         UG    0      0        0 eth0\n"
            "link-local      *               255.255.0.0     U     1000   0        0 eth0\n")
    result = route_n.parse(text, "route")
    assert result.problems == []
    assert [(r["destination"], r["via"], r["dev"], r["metric"]) for r in result.records] == [
        ("0.0.0.0/0", "gateway.lab", "eth0", 0), ("link-local/16", None, "eth0", 1000)]


def test_rows_without_header_use_route_n_columns():
    text = "0.0.0.0         10.0.0.1        0.0.0.0         UG    0      0        0 eth0\n"
    result = route_n.parse(text, "route -n")
    assert result.records[0]["dev"] == "eth0" and result.records[0]["metric"] == 0


def test_empty_text():
    result = route_n.parse("", "route -n")
    assert result.records == [] and result.problems == []


def test_bad_lines_between_good_lines():
    text = ("Kernel IP routing table\n"
            "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
            "0.0.0.0         10.0.0.1        0.0.0.0         UG    0      0        0 eth0\n"
            "10.0.0.0        0.0.0.0         255.255.255.0   U     0      0\n"
            "10.99.0.0       0.0.0.0         255.0.255.0     U     0      0        0 br100\n"
            "\x00\x00\x7f\xff\n"
            "172.16.0.0      0.0.0.0         255.255.0.0     U     0      0        0 eth1\n")
    result = route_n.parse(text, "route -n")
    assert [r["line"] for r in result.records] == [3, 7]
    assert [p.line for p in result.problems] == [4, 5, 6]
    assert "fields" in result.problems[0].reason
    assert "not a prefix" in result.problems[1].reason


def test_truncated_row():
    text = ("Kernel IP routing table\n"
            "Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
            "0.0.0.0         10.0.0.1        0.0")
    result = route_n.parse(text, "route -n")
    assert result.records == [] and result.problems[0].line == 3


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises(text):
    result = route_n.parse(text, "route -n")
    assert all(p.line >= 1 for p in result.problems)
