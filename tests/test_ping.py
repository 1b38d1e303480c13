"""ping: fixture pairs (iputils ping run here between network namespaces), the lab's own
captures, recognition, damaged input."""
import pytest

from grammar import kinds, ping
from grammar.transcript import read_transcript
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ping"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("lab, node, outcome", [
    ("other-healthy", "vm01", "answered"), ("other-snat-wrong-interface", "vm01", "no-answer")])
def test_the_lab_captures(lab, node, outcome):
    text = (FIXTURES / "labs" / lab / f"{node}.txt").read_text()
    found = [f for f in read_transcript(text, source="t.txt").facts if f["type"] == "reachability"]
    assert [(f["node"], f["tool"], f["outcome"]) for f in found] == [(node, "ping", outcome)]


def test_recognised_by_command_and_content():
    assert kinds.kind_for_command("ping -c 3 -W 1 198.51.100.7")[0] == KIND
    assert kinds.kind_for_text((FIXTURES / KIND / "ping_replies.out").read_text()) == KIND


@pytest.mark.parametrize("text, where, what", [
    ("PING 192.0.2.20 (192.0.2.20) 56(84) bytes of data.\nsomething else\n", 2, "not a ping line"),
    ("3 packets transmitted, 0 received, 100% packet loss, time 2032ms\n", 1, "no PING line"),
])
def test_damaged_output_is_named(text, where, what):
    result = ping.parse(text)
    assert [(p.line, what in p.reason) for p in result.problems] == [(where, True)]
