"""netcat: fixture pairs (OpenBSD netcat run here between network namespaces: connected,
refused, timed out behind a DROP rule, no route), recognition, damaged input."""
import pytest

from grammar import kinds, netcat
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "netcat"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["nc -zv -w 2 198.51.100.77 22", "nc -v 192.0.2.5 5672", "nc -w 3 -v host 80"])
def test_commands_match(command):
    assert kinds.kind_for_command(command)[0] == KIND


def test_a_listener_is_not_a_probe():
    assert not netcat.COMMANDS.search("nc -l -p 2222")


def test_outcomes_tell_filtered_from_refused():
    outcome = {name: netcat.parse((FIXTURES / KIND / f"{name}.out").read_text()).records[0]["outcome"]
               for name in ("nc_timed_out", "nc_refused", "nc_no_route", "nc_succeeded")}
    assert outcome == {"nc_timed_out": "no-answer", "nc_refused": "refused",
                       "nc_no_route": "unreachable", "nc_succeeded": "answered"}


def test_damaged_output_is_named():
    result = netcat.parse('nc: getaddrinfo for host "vm-x" port 22: Name or service not known\nhello\n')
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [
        (1, "the host name did not resolve"), (2, "not a netcat line")]
