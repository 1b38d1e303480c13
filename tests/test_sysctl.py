"""sysctl: fixture pairs, command/file/content recognition, and damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import sysctl
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "sysctl"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_there_are_fixtures():
    assert len(cases(KIND)) >= 10


@pytest.mark.parametrize("command", [
    "sysctl -a", "sysctl net.ipv4.ip_forward", "sysctl -w net.ipv4.ip_forward=1", "sysctl -p",
    "sysctl -p /etc/sysctl.d/60-neutron.conf", "sysctl --system", "sysctl -n net.ipv4.ip_forward",
    "sysctl -a | grep forward", "sudo sysctl -w net.ipv4.ip_forward=1",
    "ip netns exec qrouter-5d2b sysctl net.ipv4.ip_forward",
])
def test_commands_match(command):
    assert sysctl.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "sysctl -h", "sysctl --version", "systemctl status neutron-l3-agent", "vi /etc/sysctl.conf",
    "cat /proc/sys/net/ipv4/ip_forward",  # read as a FILES match, not a command
    "ip route", "echo 1 > /proc/sys/net/ipv4/ip_forward",
])
def test_commands_do_not_match(command):
    assert not sysctl.COMMANDS.search(command)


@pytest.mark.parametrize("path", [
    "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables", "/etc/sysctl.conf",
    "/etc/sysctl.d/99-sysctl.conf", "/usr/lib/sysctl.d/50-pid-max.conf", "sysctl.conf",
])
def test_files_match(path):
    assert sysctl.FILES.search(path)


@pytest.mark.parametrize("path", ["/etc/nova/nova.conf", "/proc/net/route", "/etc/sysctl.conf.bak",
                                  "/var/log/syslog", "/sys/class/net/eth0/mtu"])
def test_files_do_not_match(path):
    assert not sysctl.FILES.search(path)


@pytest.mark.parametrize("case", ["net01_sysctl_key", "net01_sysctl_a_pattern", "net01_cat_sysctl_conf",
                                  "net01_sysctl_a_grep", "net01_sysctl_p", "net01_grep_rp_filter"])
def test_looks_like_settings(case):
    assert sysctl.looks_like((FIXTURES / KIND / f"{case}.out").read_text())


@pytest.mark.parametrize("text", [
    "",
    "1\n",
    "[DEFAULT]\ndebug = True\nverbose=true\n",
    "my_ip = 10.0.0.7\n",
    "default via 10.0.0.1 dev eth0\n",
    "# only a comment\n",
    "rabbit.host = 10.0.0.5\n",
    "sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory\n",
])
def test_looks_like_rejects_other_output(text):
    assert not sysctl.looks_like(text)


def test_keys_from_paths_and_slashes():
    assert sysctl.key_from_path("/proc/sys/net/ipv4/conf/eth0.100/rp_filter") == "net.ipv4.conf.eth0/100.rp_filter"
    assert sysctl.normalize_key("-net/ipv4/ip_forward") == "net.ipv4.ip_forward"


def test_sysctl_conf_with_slashed_key_and_empty_value():
    result = sysctl.parse("net/ipv4/ip_forward=1\nkernel.core_pattern =\n", "cat /etc/sysctl.conf")
    assert result.problems == []
    assert [(r["key"], r["value"]) for r in result.records] == [
        ("net.ipv4.ip_forward", "1"), ("kernel.core_pattern", "")]


def test_value_with_equals_sign():
    result = sysctl.parse("kernel.core_pattern = |/usr/share/apport/apport -p%p -s%s -c%c -d%d -P%P -u%u -g%g -- %E\n",
                          "sysctl kernel.core_pattern")
    assert result.records[0]["value"].startswith("|/usr/share/apport/apport")


def test_bare_value_without_a_key_is_a_problem():
    result = sysctl.parse("1\n", "")
    assert result.records == [] and result.problems[0].line == 1


def test_more_values_than_keys():
    result = sysctl.parse("1\n0\n", "cat /proc/sys/net/ipv4/ip_forward")
    assert [r["line"] for r in result.records] == [1]
    assert [p.line for p in result.problems] == [2]


def test_empty_text():
    result = sysctl.parse("", "sysctl -a")
    assert result.records == [] and result.problems == []


def test_bad_lines_between_good_lines():
    text = ("net.ipv4.ip_forward = 1\n"
            "this line is not a setting\n"
            "\x00\x01\xff\xfe\n"
            "net.ipv4.conf.all.rp_filter = 0\n"
            "net.ipv4.conf.default.rp_fil")
    result = sysctl.parse(text, "sysctl -a")
    assert [r["line"] for r in result.records] == [1, 4]
    assert [p.line for p in result.problems] == [2, 3, 5]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_never_raises(text):
    for command in ("sysctl -a", "sysctl -n a.b c.d", "cat /proc/sys/net/ipv4/ip_forward", "x 'unbalanced"):
        result = sysctl.parse(text, command)
        assert all(p.line >= 1 for p in result.problems)
