"""cli_error: fixture pairs (novaclient 2.17's own shell on loopback), the error after a
table command, the 2014 connection-refused wording, recognition, damaged input."""
import pytest

from grammar import cli_error, kinds
from grammar.transcript import read_transcript
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "cli_error"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_an_error_after_a_table_command_is_read_as_the_error():
    text = "root@api3:~# nova list\n" + (FIXTURES / KIND / "nova_list_service_401.out").read_text()
    evidence = read_transcript(text, source="t.txt")
    assert [(f["node"], f["tool"], f["error"], f["http_status"]) for f in evidence.facts
            if f["type"] == "cli_error"] == [("api3", "nova", "unauthorized", 401)]
    assert evidence.unparsed == []


def test_an_error_after_a_command_no_parser_owns():
    text = "root@api3:~# nova floating-ip-create\n" + (FIXTURES / KIND / "nova_floating_ip_create_none_left.out").read_text()
    facts = [f for f in read_transcript(text, source="t.txt").facts if f["type"] == "cli_error"]
    assert [(f["error"], f["http_status"], f["message"]) for f in facts] == [
        ("no-floating-ips", 404, "No more floating ips available.")]


def test_the_2014_refused_wording_names_where():
    line = ("ERROR: HTTPConnectionPool(host='192.0.2.30', port=8774): Max retries exceeded with url: "
            "/v2/servers/detail (Caused by <class 'socket.error'>: [Errno 111] Connection refused)\n")
    [record] = cli_error.parse(line, "nova list").records
    assert (record["error"], record["host"], record["port"]) == ("refused", "192.0.2.30", 8774)


def test_recognised_by_content():
    assert kinds.kind_for_text((FIXTURES / KIND / "nova_list_no_username_juno.out").read_text()) == KIND


def test_damaged_output_is_named():
    result = cli_error.parse("ERROR: Unauthorized (HTTP 401)\nsomething else\n")
    assert [(p.line, "not a client error line" in p.reason) for p in result.problems] == [(2, True)]
