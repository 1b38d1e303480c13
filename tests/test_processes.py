"""processes: ps aux / ps -ef / pgrep fixture pairs (real procps in a PID namespace with
nova's scripts started as their init jobs start them), the grep that finds itself,
recognition, damaged input, and ps/pgrep run here on a process the test starts."""
import subprocess
import sys
import time

import pytest

from grammar import processes
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "processes"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["ps aux", "ps -ef", "ps aux | grep nova", "pgrep -l nova", "ps -e", "pgrep -fa rabbit"])
def test_process_commands(command):
    assert kind_for_command(command)[0] == "processes"


def test_ps_and_pgrep_agree_on_what_runs():
    def programs(name, command):
        records = processes.parse((FIXTURES / KIND / f"{name}.out").read_text(), command).records
        return sorted((r["pid"], r["program"]) for r in records if r["type"] == "process" and "nova" in r["program"])
    assert programs("ps_aux", "ps aux") == programs("ps_ef", "ps -ef") == programs("pgrep_l_nova", "pgrep -l nova") \
        == programs("pgrep_a_nova", "pgrep -a nova") == [(4, "nova-compute"), (5, "nova-api")]


def test_the_grep_that_finds_itself_is_not_a_process_of_the_service():
    out = (FIXTURES / KIND / "ps_aux_grep_nova_network.out").read_text()
    assert "grep nova-network" in out
    assert processes.parse(out, "ps aux | grep nova-network").records == [
        {"type": "process_search", "line": 1, "tool": "ps", "pattern": "nova-network", "found": 0,
         "service": "nova-network"}]
    # with grep -v grep after it, the pattern is still the first grep's
    searched = processes.parse(out, "ps aux | grep nova-network | grep -v grep").records
    assert [(r["pattern"], r["found"]) for r in searched] == [("nova-network", 0)]


def test_a_listing_without_its_command_is_read_by_its_header():
    text = (FIXTURES / KIND / "ps_ef.out").read_text()
    assert kind_for_text(text) == "processes"
    assert [r["program"] for r in processes.parse(text).records] == ["sh", "nova-compute", "nova-api", "ps"]


def test_ps_o_is_said_not_read():
    result = processes.parse("  PID COMMAND\n 4 nova-compute\n", "ps -eo pid,comm")
    assert result.records == [] and "ps -o" in result.problems[0].reason


def test_a_damaged_line_names_its_line():
    lines = (FIXTURES / KIND / "ps_aux.out").read_text().splitlines()
    lines[2] = "root  four  0.0"
    result = processes.parse("\n".join(lines) + "\n", "ps aux")
    assert [p.line for p in result.problems] == [3] and len(result.records) == 3


def test_real_ps_and_pgrep_on_a_service_started_here(tmp_path):
    script = tmp_path / "nova-scheduler"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    script.chmod(0o755)
    process = subprocess.Popen([str(script), "--config-file=/etc/nova/nova.conf"])
    try:
        time.sleep(0.5)
        pattern = str(script)
        ps = subprocess.run(f"ps auxww | grep {pattern}", shell=True, capture_output=True, text=True, timeout=30).stdout
        records = processes.parse(ps, f"ps auxww | grep {pattern}").records
        mine = [r for r in records if r["type"] == "process" and r["pid"] == process.pid]
        assert [r["program"] for r in mine] == ["nova-scheduler"]
        assert records[-1]["type"] == "process_search" and records[-1]["found"] >= 1
        pgrep = subprocess.run(["pgrep", "-l", "nova-schedul"], capture_output=True, text=True, timeout=30).stdout
        named = {r["pid"]: r["program"] for r in processes.parse(pgrep, "pgrep -l nova-schedul").records if r["type"] == "process"}
        assert named.get(process.pid) == "nova-scheduler"
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_bracket_trick_names_the_service_too():
    # grep [n]ova-compute does not match its own command line, so ps lists no grep line
    text = (FIXTURES / KIND / "ps_aux_grep_nova_compute.out").read_text().splitlines()[0] + "\n"
    search = processes.parse(text, "ps aux | grep [n]ova-compute").records[-1]
    assert (search["pattern"], search["service"], search["found"]) == ("[n]ova-compute", "nova-compute", 1)
