"""ifconfig: fixture pairs (net-tools 2.10 and 1.60), recognition, and damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import ifconfig, ip_addr
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ifconfig"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures_of_both_layouts():
    names = [c[0] for c in cases(KIND)]
    assert any(n.startswith("nt160_") for n in names) and any(n.startswith("net01_") for n in names)


def test_both_layouts_give_the_same_addresses():
    # The same namespace listed by net-tools 2.10 and 1.60: identical address records
    # but for line numbers (1.60 cuts the tap name to 9 characters).
    def addresses(case):
        result = ifconfig.parse((FIXTURES / KIND / f"{case}.out").read_text(), "ifconfig -a")
        return sorted((r["ifname"], r["cidr"], r["broadcast"], r["scope"], r["label"], r["peer"])
                      for r in result.records if r["type"] == "address" and not r["ifname"].startswith("tap"))
    assert addresses("net01_ifconfig_a") == addresses("nt160_ifconfig_a")


def test_records_have_the_ip_addr_keys():
    result = ifconfig.parse((FIXTURES / KIND / "net01_ifconfig.out").read_text(), "ifconfig")
    interface = ip_addr.new_interface(1, "x")
    address = ip_addr.new_address(1, "x", "10.0.0.1", 8)
    for record in result.records:
        assert record.keys() == (interface if record["type"] == "interface" else address).keys()


@pytest.mark.parametrize("command", [
    "ifconfig", "ifconfig -a", "ifconfig br1", "ifconfig br1:0", "ifconfig eth0 | grep inet",
    "sudo ifconfig -a", "ip netns exec qrouter-5d2b ifconfig", "ifconfig -v eth0",
])
def test_commands_match(command):
    assert ifconfig.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "ifconfig br1:0 172.16.0.1/16", "ifconfig eth0 up", "ifconfig eth0 down", "ifconfig eth0 mtu 1400",
    "ifconfig eth0 10.0.0.7 netmask 255.255.255.0", "ifconfig eth0 promisc", "ifconfig -s",
    "ip addr", "iwconfig", "ifup eth0",
])
def test_commands_do_not_match(command):
    assert not ifconfig.COMMANDS.search(command)


@pytest.mark.parametrize("case", ["net01_ifconfig", "nt160_ifconfig", "net01_ifconfig_alias",
                                  "nt160_ifconfig_alias"])
def test_looks_like_ifconfig(case):
    assert ifconfig.looks_like((FIXTURES / KIND / f"{case}.out").read_text())


@pytest.mark.parametrize("text", [
    "",
    "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP\n",
    "Kernel IP routing table\n",
    "eth0: error fetching interface information: Device not found\n",
    "net.ipv4.ip_forward = 1\n",
])
def test_looks_like_rejects_other_output(text):
    assert not ifconfig.looks_like(text)


def test_empty_text():
    result = ifconfig.parse("", "ifconfig")
    assert result.records == [] and result.problems == []


def test_bad_lines_between_good_lines():
    text = ("eth0      Link encap:Ethernet  HWaddr 52:54:00:61:8E:F1  \n"
            "          inet addr:10.0.0.7  Bcast:10.0.0.255  Mask:255.255.255.0\n"
            "          inet addr:10.0.0.8  Bcast:10.0.0.255  Mask:255.0.255.0\n"
            "          inet6 addr: fe80::5054:ff:fe61:8ef1/64 Scope\n"
            "          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1\n")
    result = ifconfig.parse(text, "ifconfig eth0")
    assert [(r["type"], r["line"]) for r in result.records] == [("interface", 1), ("address", 2)]
    assert result.records[0]["flags"] == ["UP", "BROADCAST", "RUNNING", "MULTICAST"]
    assert [p.line for p in result.problems] == [3, 4]


def test_binary_and_truncated_input():
    text = ("br-int: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n"
            "\x00\x01\x02\x03\xff\n"
            "        inet 203.0.113.1  netmask 255.255.255.0  broadcast 203.0.113.255\n"
            "        ether 52:54:00:4a:10:aa  txqueuelen 1000  (Eth")
    result = ifconfig.parse(text, "ifconfig br-int")
    assert [r["line"] for r in result.records] == [1, 3]
    assert [p.line for p in result.problems] == [2, 4]


def test_details_after_a_broken_header_are_problems():
    text = ("br-int: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n"
            "        inet 203.0.113.1  netmask 255.255.255.0  broadcast 203.0.113.255\n"
            "ens3: flags=4163<UP,BROADCAST  mtu 1500\n"
            "        inet 10.20.4.11  netmask 255.255.252.0  broadcast 10.20.7.255\n")
    result = ifconfig.parse(text, "ifconfig")
    assert [r["line"] for r in result.records] == [1, 2]
    assert [p.line for p in result.problems] == [3, 4]


def test_details_without_a_header_are_problems():
    result = ifconfig.parse("        inet 203.0.113.1  netmask 255.255.255.0\n", "ifconfig")
    assert result.records == [] and result.problems[0].line == 1


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises(text):
    result = ifconfig.parse(text, "ifconfig")
    assert all(p.line >= 1 for p in result.problems)


@pytest.mark.parametrize("name", ["net01_ifconfig", "nt160_ifconfig"])
def test_the_same_output_twice_gives_records_of_their_own(name):
    # each distinct line is read once; what one record holds is its own
    path = FIXTURES / "ifconfig" / f"{name}.out"
    first = ifconfig.parse(path.read_text()).records
    again = ifconfig.parse(path.read_text()).records
    assert first == again
    for record in first:
        if record.get("flags"):
            record["flags"].append("CHANGED")
    assert ifconfig.parse(path.read_text()).records == again
    assert not any("CHANGED" in (r.get("flags") or []) for r in again)
