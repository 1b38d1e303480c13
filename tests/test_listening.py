"""listening: ss -ltnp / netstat -ltnp fixture pairs (real, from a namespace), recognition,
damaged input, and ss run here on a socket the test listens on."""
import os
import shutil
import socket
import subprocess

import pytest

from grammar import listening
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "listening"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["ss -ltnp", "ss -tlnp", "ss -ltn", "netstat -ltnp", "netstat -plnt", "netstat -lntu"])
def test_commands_are_listening(command):
    assert kind_for_command(command)[0] == "listening"


@pytest.mark.parametrize("command", ["ss -tan", "netstat -rn", "netstat -i", "ssh -v host"])
def test_commands_are_not_listening(command):
    assert kind_for_command(command)[0] != "listening"


def test_ss_and_netstat_agree():
    def sockets(name):
        return sorted((r["address"].replace("*", "::"), r["port"], r["process"])
                      for r in listening.parse((FIXTURES / KIND / f"{name}.out").read_text()).records)
    assert sockets("ss_ltnp_three_listeners") == sockets("netstat_ltnp_three_listeners")
    assert kind_for_text((FIXTURES / KIND / "netstat_ltnp_three_listeners.out").read_text()) == "listening"


def test_damaged_line_names_its_line():
    text = (FIXTURES / KIND / "ss_ltnp_three_listeners.out").read_text()
    lines = text.splitlines()
    lines[2] = lines[2][:20]
    result = listening.parse("\n".join(lines) + "\n")
    assert len(result.records) == 2 and [p.line for p in result.problems] == [3]


@pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2)")
def test_real_ss_sees_a_socket_listening_in_the_test():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, timeout=30).stdout
    mine = [r for r in listening.parse(out, "ss -ltnp").records if r["port"] == port]
    assert [(r["address"], r["proto"]) for r in mine] == [("127.0.0.1", "tcp")]
    if os.geteuid() == 0:
        assert mine[0]["pid"] == os.getpid()
