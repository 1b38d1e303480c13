"""ip_route: fixture pairs, command and content recognition, and damaged input."""
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from grammar import ip_route
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ip_route"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures():
    assert len(cases(KIND)) >= 10


@pytest.mark.parametrize("command", [
    "ip route", "ip r", "ip ro show", "ip -4 route list", "ip -6 route", "ip route show table main",
    "ip route get 10.0.0.5", "ip r s", "ip ro l", "ip route lst", "ip r g 8.8.8.8",
    "ip route | grep default", "ip netns exec qrouter-5d2b ip route", "ip -n qrouter-5d2b route show",
    "sudo ip route", "watch -n 1 ip r", "ip -f inet6 route", "ip route show dev eth0",
])
def test_commands_match(command):
    assert ip_route.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "ip route add default via 10.0.0.1", "ip route del default", "ip ro add 10.0.0.0/8 dev eth0",
    "ip route replace 10.0.0.0/8 dev eth0", "ip route flush cache", "ip route change default dev eth1",
    "ip rule", "ip rule show", "ip addr", "ip a", "route -n", "ip -j route", "ip link",
    "tcpdump -i eth0 ip route", "iptables -L",
])
def test_commands_do_not_match(command):
    assert not ip_route.COMMANDS.search(command)


def test_files_is_none():
    assert ip_route.FILES is None


@pytest.mark.parametrize("case", ["seed_network_node", "net01_ip_route", "net01_ip6_route",
                                  "net01_get_local", "net01_detail"])
def test_looks_like_route_tables(case):
    assert ip_route.looks_like((FIXTURES / KIND / f"{case}.out").read_text())


@pytest.mark.parametrize("text", [
    "",
    "Chain INPUT (policy ACCEPT 21 packets, 4859 bytes)\n pkts bytes target     prot opt in     out     source               destination\n",
    "Kernel IP routing table\nDestination     Gateway         Genmask         Flags Metric Ref    Use Iface\n",
    "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP\n    link/ether 52:54:00:61:8e:f1 brd ff:ff:ff:ff:ff:ff\n",
    "10:13:31.513718 IP 10.99.0.2 > 173.194.113.145: ICMP echo request, id 56064, seq 90, length 64\n",
    "net.ipv4.ip_forward = 1\n",
    "10.0.0.1 is alive\n",
    "10.0.0.7 \n",                      # hostname -I
    "173.194.113.145\n173.194.113.148\n",  # dig +short
])
def test_looks_like_rejects_other_output(text):
    assert not ip_route.looks_like(text)


def test_empty_text():
    result = ip_route.parse("", "ip route")
    assert result.records == [] and result.problems == []


def test_bad_line_between_good_lines():
    text = ("default via 10.0.0.1 dev eth0 \n"
            "10.0.0.0/24 dev eth0  proto kernel  scope link  sorc 10.0.0.7 \n"
            "10.99.0.0/22 dev br100  proto kernel  scope link  src 10.99.0.1 \n")
    result = ip_route.parse(text, "ip route")
    assert [r["line"] for r in result.records] == [1, 3]
    assert [p.line for p in result.problems] == [2]
    assert "sorc" in result.problems[0].reason


def test_truncated_last_line():
    text = "default via 10.0.0.1 dev eth0 \n10.0.0.0/24 dev eth0  proto"
    result = ip_route.parse(text, "ip route")
    assert len(result.records) == 1
    assert result.problems[0].line == 2 and "ends too early" in result.problems[0].reason


def test_binary_garbage():
    text = "default via 10.0.0.1 dev eth0\n\x00\x01\x02\xff\xfe garbage\n"
    result = ip_route.parse(text, "ip route")
    assert len(result.records) == 1 and [p.line for p in result.problems] == [2]


def test_nexthop_without_route_is_a_problem():
    result = ip_route.parse("\tnexthop via 10.0.0.1 dev eth0 weight 1\n", "ip route")
    assert result.records == [] and result.problems[0].line == 1


def test_old_ipv6_unreachable_and_attributes():
    # Attribute layouts of iproute2 3.x / kernels 3.x (Ubuntu 14.04 era).
    text = ("unreachable ::/96 dev lo  metric 1024  error -113\n"
            "fe80::/64 dev eth0  proto kernel  metric 256 \n"
            "default via fe80::1 dev eth0  proto ra  metric 1024  expires 1795sec hoplimit 64\n")
    result = ip_route.parse(text, "ip -6 route")
    assert result.problems == []
    assert [r["destination"] for r in result.records] == ["::/96", "fe80::/64", "::/0"]
    assert result.records[0]["route_type"] == "unreachable"
    assert result.records[2]["via"] == "fe80::1" and result.records[2]["metric"] == 1024


def test_attribute_layouts_from_print_route():
    # Attributes as iproute2's print_route()/print_rta_metrics() write them; no
    # fixture here could show them all.
    text = ("10.0.0.0/8 via 10.20.4.1 dev ens3 proto static metric 100 mtu lock 1400 rtt lock 10ms congctl cubic\n"
            "default nhid 12 via 10.20.4.1 dev ens3 proto dhcp src 10.20.4.11 metric 100 \n"
            "192.0.2.0/24 dev br-int proto kernel scope link src 192.0.2.1 realms 1/2 rt_offload\n")
    result = ip_route.parse(text, "ip route")
    assert result.problems == []
    assert [(r["via"], r["metric"], r["proto"], r["flags"]) for r in result.records] == [
        ("10.20.4.1", 100, "static", None), ("10.20.4.1", 100, "dhcp", None), (None, None, "kernel", "rt_offload")]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises(text):
    result = ip_route.parse(text, "ip route")
    assert all(p.line >= 1 for p in result.problems)
    assert all(r["line"] >= 1 for r in result.records)
