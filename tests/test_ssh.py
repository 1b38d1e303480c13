"""ssh: ssh -v fixture pairs (real OpenSSH 9.2 output in two namespaces), recognition,
damaged input, the OpenSSH 6 login line, and ssh -v run here against a real sshd inside
a namespace the test creates: open, refused and filtered."""
import os
import shutil

import pytest

from grammar import ssh
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ssh"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["ssh -v root@10.20.4.5", "ssh -vvv -p 2222 cirros@203.0.113.40",
                                     "ssh -i key.pem -v ubuntu@vm01", "ssh -Tv git@host"])
def test_verbose_ssh_is_ssh(command):
    assert kind_for_command(command)[0] == "ssh"


@pytest.mark.parametrize("command", ["ssh net01 ip route", "ssh-keygen -v -l -f key", "sshd -t"])
def test_other_commands_are_not_ssh(command):
    assert kind_for_command(command)[0] != "ssh"


def test_ssh_without_v_is_known_by_what_it_printed():
    refused = (FIXTURES / KIND / "ssh_refused.out").read_text()
    assert kind_for_text(refused) == "ssh"
    assert kind_for_text((FIXTURES / KIND / "ssh_v_timed_out.out").read_text()) == "ssh"


def test_the_outcomes_tell_filtered_from_refused_from_no_route():
    outcome = {name: ssh.parse((FIXTURES / KIND / f"{name}.out").read_text()).records[0]["outcome"]
               for name in ("ssh_v_timed_out", "ssh_v_refused", "ssh_v_no_route", "ssh_v_permission_denied")}
    assert outcome == {"ssh_v_timed_out": "no-answer", "ssh_v_refused": "refused",
                       "ssh_v_no_route": "unreachable", "ssh_v_permission_denied": "answered"}


def test_the_target_and_port_come_from_the_command_when_ssh_names_none():
    result = ssh.parse("Connection closed by 192.0.2.7 port 2222\n", "ssh -o BatchMode=yes -p 2222 admin@192.0.2.7 uptime")
    assert [(r["target"], r["port"], r["outcome"]) for r in result.records] == [("192.0.2.7", 2222, "answered")]


def test_openssh_6_login_line():
    # OpenSSH 6.6 (Ubuntu 14.04) says "Authentication succeeded" where 9.x says
    # "Authenticated to": sshconnect2.c, ssh_userauth2(),
    # debug("Authentication succeeded (%s).", authctxt.method->name)
    text = ("debug1: Connecting to 10.20.4.5 [10.20.4.5] port 22.\n"
            "debug1: Connection established.\n"
            "debug1: Authentication succeeded (publickey).\n"
            "uptime output of the instance\n")
    result = ssh.parse(text, "ssh -v cirros@10.20.4.5")
    assert result.problems == []
    assert [(r["target"], r["outcome"], r["detail"], r["line"]) for r in result.records] == [
        ("10.20.4.5", "answered", "Connection established; authenticated (publickey)", 2)]


def test_damaged_line_names_its_line():
    lines = (FIXTURES / KIND / "ssh_v_refused.out").read_text().splitlines()
    lines[2] = "debug1: Connecting to 198.51.100.2 [198.51.1"
    result = ssh.parse("\n".join(lines) + "\n", "ssh -v -p 2222 root@198.51.100.2")
    assert [p.line for p in result.problems] == [3]
    assert [r["outcome"] for r in result.records] == ["refused"]  # the rest is still read


def test_an_unresolved_name_is_a_problem_not_a_fact():
    result = ssh.parse("ssh: Could not resolve hostname vm-nowhere: Name or service not known\n",
                       "ssh vm-nowhere")
    assert result.records == [] and "did not resolve" in result.problems[0].reason


def _live_ready() -> str | None:
    if os.geteuid() != 0:
        return "needs root: network namespaces and an sshd inside one"
    from lab import netns, sshd
    ok, why = netns.available()
    if not ok:
        return why
    ok, why = sshd.available()
    if not ok:
        return why
    if shutil.which("ssh") is None:
        return "needs the OpenSSH client (ssh)"
    return None


@pytest.mark.skipif(_live_ready() is not None, reason=str(_live_ready()))
def test_real_ssh_v_against_a_real_sshd_open_refused_and_filtered(tmp_path):
    from lab import netns, sshd
    made_privsep = sshd.ensure_privsep_dir()
    try:
        with netns.NetnsSession() as session:
            client = session.namespace("sshc")
            server = session.namespace("sshs")
            netns.add_veth(client, "veth-c", server, "veth-s")
            client.add_address("veth-c", "198.51.100.1/24")
            server.add_address("veth-s", "198.51.100.2/24")
            host_key = sshd.generate_key(tmp_path / "host_key", "test host")
            other_key = sshd.generate_key(tmp_path / "other_key", "not authorized")
            authorized = tmp_path / "authorized_keys"
            authorized.write_text("")
            config = tmp_path / "sshd_config"
            config.write_text(sshd.config_text(listen="198.51.100.2", host_key=host_key,
                                               authorized_keys=authorized))
            process = sshd.start(session, server, config, tmp_path / "sshd.log")
            sshd.wait_listening(server, process)

            def probe(port: int) -> dict:
                command = ["ssh", "-v", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
                           "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
                           "-o", "IdentitiesOnly=yes", "-i", str(other_key), "-p", str(port),
                           "root@198.51.100.2", "true"]
                ran = client.exec(command, timeout=20, merge_stderr=True)
                result = ssh.parse(ran.stdout, " ".join(command))
                assert result.problems == [], (ran.stdout, result.problems)
                [record] = result.records
                return record

            opened = probe(22)
            assert (opened["outcome"], opened["target"], opened["port"]) == ("answered", "198.51.100.2", 22)
            assert "Permission denied (publickey)" in opened["detail"]
            assert probe(2222)["outcome"] == "refused"
            server.check(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "DROP"])
            filtered = probe(22)
            assert (filtered["outcome"], filtered["detail"]) == ("no-answer", "Connection timed out")
    finally:
        if made_privsep:
            sshd.remove_privsep_dir()
