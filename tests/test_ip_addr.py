"""ip_addr: fixture pairs, command and content recognition, and damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import ip_addr
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ip_addr"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures():
    assert len(cases(KIND)) >= 10


@pytest.mark.parametrize("command", [
    "ip addr", "ip a", "ip addr show eth0", "ip addr show dev br100", "ip a s", "ip -4 a",
    "ip -6 addr show", "ip -o addr", "ip -o -4 addr show", "ip -br a", "ip address list",
    "ip ad", "ip addr | grep inet", "ip netns exec qrouter-5d2b ip a", "ip -n qdhcp-11 addr",
    "sudo ip addr show br1",
])
def test_commands_match(command):
    assert ip_addr.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "ip addr add 172.16.1.1/32 dev eth0", "ip addr del 10.0.0.7/24 dev eth0", "ip a add 1.2.3.4/32 dev lo",
    "ip addr flush dev eth0", "ip addrlabel", "ip route", "ip r", "ip link", "ip -j addr",
    "ip -s addr", "ip -d addr show", "ifconfig", "ip neigh", "ip maddr",
])
def test_commands_do_not_match(command):
    assert not ip_addr.COMMANDS.search(command)


@pytest.mark.parametrize("case", ["seed_network_node_eth0", "seed_gks061_br1", "net01_ip_addr",
                                  "net01_ip_o_addr", "net01_ip_br_addr"])
def test_looks_like_ip_addr(case):
    assert ip_addr.looks_like((FIXTURES / KIND / f"{case}.out").read_text())


@pytest.mark.parametrize("text", [
    "",
    "default via 10.0.0.1 dev eth0\n",
    "eth0      Link encap:Ethernet  HWaddr 52:54:00:61:8e:f1\n",
    "br-int: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n",
    "Chain INPUT (policy ACCEPT)\ntarget     prot opt source               destination\n",
    "1: nova-compute is running\n",
    # ip -br link: a MAC and flags, no addresses
    "lo               UNKNOWN        00:00:00:00:00:00 <LOOPBACK,UP,LOWER_UP>\n",
    "eth0 UP\n",
])
def test_looks_like_rejects_other_output(text):
    assert not ip_addr.looks_like(text)


def test_brief_table_without_a_command():
    text = (FIXTURES / KIND / "net01_ip_br_addr.out").read_text()
    assert ip_addr.parse(text, "").records == ip_addr.parse(text, "ip -br addr").records


def test_veth_peer_name_is_dropped():
    text = ("5: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default qlen 1000\n"
            "    link/ether fa:16:3e:12:34:56 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n")
    result = ip_addr.parse(text, "ip a")
    assert result.problems == []
    assert result.records[0]["ifname"] == "eth0" and result.records[0]["mac"] == "fa:16:3e:12:34:56"


def test_address_layouts_from_print_addrinfo():
    # What iproute2's print_addrinfo() writes on hosts this lab has no fixture from:
    # a route metric after the prefix (NetworkManager), "proto kernel_ll" (iproute2
    # 6.3+), unnamed flag bits, a negative preferred lifetime.
    text = ("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n"
            "    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff\n"
            "    inet 192.168.1.5/24 metric 100 brd 192.168.1.255 scope global dynamic noprefixroute eth0\n"
            "       valid_lft 86234sec preferred_lft 86234sec\n"
            "    inet6 fe80::5054:ff:fe12:3456/64 scope link noprefixroute proto kernel_ll \n"
            "       valid_lft forever preferred_lft forever\n"
            "    inet6 2001:db8::5/64 scope global temporary dynamic flags 80 proto kernel_ra \n"
            "       valid_lft 3597sec preferred_lft -1sec\n")
    result = ip_addr.parse(text, "ip a")
    assert result.problems == []
    assert [(r["cidr"], r["broadcast"], r["scope"], r["label"]) for r in result.records[1:]] == [
        ("192.168.1.5/24", "192.168.1.255", "global", "eth0"),
        ("fe80::5054:ff:fe12:3456/64", None, "link", None), ("2001:db8::5/64", None, "global", None)]


def test_empty_text():
    result = ip_addr.parse("", "ip addr")
    assert result.records == [] and result.problems == []


def test_bad_line_between_good_lines():
    text = ("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP group default qlen 1000\n"
            "    link/ether 52:54:00:61:8e:f1 brd ff:ff:ff:ff:ff:ff\n"
            "    inet 10.0.0.7/24 brd 10.0.0.255 scoop global eth0\n"
            "       valid_lft forever preferred_lft forever\n"
            "    inet 172.16.1.1/32 scope global eth0\n"
            "       valid_lft forever preferred_lft forever\n")
    result = ip_addr.parse(text, "ip addr show eth0")
    assert [(r["type"], r["line"]) for r in result.records] == [("interface", 1), ("address", 5)]
    assert [p.line for p in result.problems] == [3]
    assert result.records[1]["ifname"] == "eth0"


def test_truncated_and_binary_lines():
    text = ("4: br1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UNKNOWN \n"
            "    link/ether 00:30:48:d4:5f:99 brd ff:ff:ff:ff:ff:ff\n"
            "\x00\x00\x00\x1b[0m\xff\n"
            "    inet 10.0.0.1/24 brd 10.0.0.255 scope global br1\n"
            "    inet6 fe80::230:48ff:fed4:5f99/64 sco")
    result = ip_addr.parse(text, "ip addr show br1")
    assert [r["line"] for r in result.records] == [1, 4]
    assert [p.line for p in result.problems] == [3, 5]


def test_address_before_any_interface_line_takes_its_label():
    # A transcript cut above the interface line still names the interface.
    result = ip_addr.parse("    inet 203.0.113.129/32 scope global br-int:0\n", "ip a")
    assert result.records[0]["ifname"] == "br-int" and result.records[0]["label"] == "br-int:0"


def test_oneline_bad_tail_is_one_problem():
    text = "3: ens3    inet 10.20.4.11/22 brd 10.20.7.255 scope global ens3\\       valid_lft whenever\n"
    result = ip_addr.parse(text, "ip -o addr")
    assert len(result.records) == 1 and [p.line for p in result.problems] == [1]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises(text):
    for command in ("ip addr", "ip -br a", ""):
        result = ip_addr.parse(text, command)
        assert all(p.line >= 1 for p in result.problems)


def test_lines_read_again_give_the_same_records_and_the_same_problems():
    """Each distinct line is parsed once (grammar/base.LineReadings): a second node
    printing the same lines gets records equal to the first's, its own objects, and
    a bad line is reported every time it comes."""
    text = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n"
            "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
            "    inet 127.0.0.1/8 scope host lo\n"
            "       valid_lft forever preferred_lft forever\n"
            "2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n"
            "    link/ether 52:54:00:3d:4c:09 brd ff:ff:ff:ff:ff:ff\n"
            "    inet 10.20.0.11/24 scoop global ens3\n"
            "       valid_lft forever preferred_lft forever\n")
    first = ip_addr.parse(text, "ip addr")
    first.records[2]["flags"].append("CHANGED")
    first.records[2]["mac"] = "changed"
    second = ip_addr.parse(text, "ip addr")
    assert [(r["type"], r["line"], r.get("ifname")) for r in second.records] == [
        ("interface", 1, "lo"), ("address", 3, "lo"), ("interface", 5, "ens3")]
    assert second.records[2]["flags"] == ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
    assert second.records[2]["mac"] == "52:54:00:3d:4c:09"
    assert [p.line for p in first.problems] == [p.line for p in second.problems] == [7]
