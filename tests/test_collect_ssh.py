"""Collecting over SSH when things go wrong, against paramiko SSH servers started here on
loopback: a good node, an unknown and a changed host key, a key the node refuses, a
node that never answers, a command that hangs, one that never stops printing, one
that prints binary, a connection dropped in the middle of a command, a missing
command. Each failure is said clearly, recorded in the collected folder, and never
costs the other nodes their evidence. Config files come back with secrets as ***."""
from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from collectors.collect import collect
from collectors.inventory import Host, load_inventory
from collectors.knowledge import load_collect_file, load_knowledge
from collectors.ssh import fingerprint
from grammar.transcript import read_transcript

FIXTURES = Path(__file__).parent / "fixtures"
LAB = FIXTURES / "labs" / "seed-as-found"
NOVA_CONF = (FIXTURES / "collect" / "nova.conf").read_text()


def _outputs_of(transcript: Path) -> dict[str, str]:
    """A saved lab transcript as {command: what it printed} (real output of the lab)."""
    outputs, command, lines = {}, None, []
    for line in transcript.read_text().splitlines(keepends=True):
        if line.startswith(("root@", "[root@")) and ("# " in line):
            if command is not None:
                outputs.setdefault(command, "".join(lines))
            command, lines = line.split("# ", 1)[1].strip(), []
        else:
            lines.append(line)
    if command is not None:
        outputs.setdefault(command, "".join(lines))
    return outputs


SEED_GATEWAY = _outputs_of(LAB / "gks-061.txt")


class Behaviour:
    """What the fake node does for one command."""

    def __init__(self, text: str | bytes = "", rc: int = 0, *, hang: bool = False,
                 endless: bool = False, drop: bool = False, on_start=None):
        self.data = text.encode() if isinstance(text, str) else text
        self.rc, self.hang, self.endless, self.drop = rc, hang, endless, drop
        self.on_start = on_start


class FakeNode(paramiko.ServerInterface):
    def __init__(self, server: "FakeServer"):
        self.server = server

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        if username == self.server.user and key == self.server.client_key:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        line = command.decode()
        self.server.received.append(line)
        threading.Thread(target=self.server.answer, args=(channel, line), daemon=True).start()
        return True


class FakeServer:
    """An SSH server on 127.0.0.1 that answers from a table of behaviours."""

    def __init__(self, client_key, *, user="root", commands=None, files=(), silent=False,
                 sudo_asks_password=False):
        self.sudo_asks_password = sudo_asks_password
        self.host_key = paramiko.ECDSAKey.generate()
        self.client_key, self.user = client_key, user
        self.commands: dict[str, Behaviour] = dict(commands or {})
        self.files = set(files)
        self.silent = silent
        self.received: list[str] = []
        self.transports: list[paramiko.Transport] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self.silent:           # accepts the TCP connection, never says a word
                self.transports.append(sock)
                continue
            transport = paramiko.Transport(sock)
            transport.add_server_key(self.host_key)
            self.transports.append(transport)
            try:
                transport.start_server(server=FakeNode(self))
            except (paramiko.SSHException, EOFError, OSError):
                pass

    def answer(self, channel, line: str):
        time.sleep(0.02)   # let the transport acknowledge the exec request first
        words = shlex.split(line)
        if words[:2] == ["sudo", "-n"]:
            if self.sudo_asks_password:
                channel.sendall(b"sudo: a password is required\n")
                channel.send_exit_status(1)
                channel.close()
                return
            words = words[2:]
        assert words[0] == "env" and words[1].startswith("PATH=") and words[2] == "LC_ALL=C", line
        argv = words[3:]
        if argv[:2] == ["sh", "-c"] and argv[3] == "stackdoc-probe":
            known = {shlex.split(c)[0] for c in self.commands} | self.files
            channel.sendall("".join(f"{w}\n" for w in argv[4:] if w in known).encode())
            channel.send_exit_status(0)
            channel.close()
            return
        behaviour = self.commands.get(shlex.join(argv))
        if behaviour is None:
            channel.sendall(f"sh: 1: {argv[0]}: not found\n".encode())
            channel.send_exit_status(127)
            channel.close()
            return
        if behaviour.on_start:
            behaviour.on_start()
        try:
            if behaviour.endless:
                while not channel.closed:
                    channel.sendall(behaviour.data)
                return
            channel.sendall(behaviour.data)
            if behaviour.drop:
                channel.get_transport().close()
                return
            if behaviour.hang:
                while not channel.closed:
                    time.sleep(0.05)
                return
            channel.send_exit_status(behaviour.rc)
            channel.close()
        except (OSError, EOFError, paramiko.SSHException):
            pass

    def close(self):
        self.closed = True
        self.listener.close()
        for transport in self.transports:
            transport.close()


@pytest.fixture(scope="module")
def client_key(tmp_path_factory):
    key = paramiko.ECDSAKey.generate()
    path = tmp_path_factory.mktemp("keys") / "id_ecdsa"
    key.write_private_key_file(str(path))
    return key, str(path)


@pytest.fixture
def servers(client_key):
    started = []

    def start(**options):
        server = FakeServer(client_key[0], **options)
        started.append(server)
        return server
    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    """The shipped collect file with short limits, so failures show within a second."""
    rules = tmp_path_factory.mktemp("knowledge") / "rules"
    shutil.copytree(Path(__file__).parent.parent / "rules", rules)
    text = (rules / "collect.yaml").read_text()
    text = text.replace("command_timeout: 10", "command_timeout: 1").replace(
        "max_output: 8000000", "max_output: 200000").replace("connect_timeout: 5", "connect_timeout: 1")
    (rules / "collect.yaml").write_text(text)
    return load_knowledge(rules)


def _host(server, key_path, name, **extra) -> Host:
    return Host(name=name, address="127.0.0.1", port=server.port, user="root", key_file=key_path,
                groups=("gateway",), **extra)


def _known(tmp_path, *servers_and_keys) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"[127.0.0.1]:{s.port} {k.get_name()} {k.get_base64()}\n"
                            for s, k in servers_and_keys))
    return path


def _healthy_commands():
    """The gateway's base commands answered with the lab's own real output where it has it."""
    return {
        "ip addr show": Behaviour(SEED_GATEWAY["ip addr show"]),
        "ip route": Behaviour(SEED_GATEWAY["ip route"]),
        "iptables -t nat -L -v -n": Behaviour(SEED_GATEWAY["iptables -L -t nat -v"]),
        "iptables -L FORWARD -v -n": Behaviour(SEED_GATEWAY["iptables -L FORWARD -v"]),
        "iptables-save": Behaviour(SEED_GATEWAY["iptables-save"]),
        "sysctl net.ipv4.ip_forward": Behaviour(SEED_GATEWAY["sysctl net.ipv4.ip_forward"]),
        "cat /etc/nova/nova.conf": Behaviour(NOVA_CONF),
    }


def test_a_good_node_gives_transcripts_diagnose_reads(servers, client_key, knowledge, tmp_path):
    server = servers(commands=_healthy_commands(), files={"/etc/nova/nova.conf"})
    host = _host(server, client_key[1], "gw01")
    out = tmp_path / "out"
    result = collect([host], knowledge, out, known_hosts=_known(tmp_path, (server, server.host_key)),
                     progress=False)
    (report,) = result.hosts
    assert report.failure is None
    route = (out / "gw01" / "ip-route.txt").read_text()
    assert route == "root@gw01:~# ip route\n" + SEED_GATEWAY["ip route"]
    evidence = read_transcript(route, "gw01/ip-route.txt")
    assert {f["node"] for f in evidence.facts} == {"gw01"} and evidence.facts and not evidence.unparsed
    # every planned command was sent quoted, behind env, and nothing else ran
    assert all(line.startswith("env PATH=") for line in server.received)
    manifest = json.loads((out / ".collect.json").read_text())
    statuses = {c["command"]: c["status"] for c in manifest["hosts"][0]["commands"]}
    assert statuses["ip route"] == "ok" and statuses["iptables-save"] == "ok"
    # programs the node lacks (ss, df here) are recorded, not run
    missing = {s["command"] for s in manifest["hosts"][0]["skipped"] if s["status"] == "missing"}
    assert {"ss -ltn", "df -h"} <= missing
    assert not any(line.split()[3:4] == ["ss"] for line in server.received)


def test_config_files_are_redacted_unless_keep_secrets(servers, client_key, knowledge, tmp_path):
    server = servers(commands=_healthy_commands(), files={"/etc/nova/nova.conf"})
    host = Host(name="net01", address="127.0.0.1", port=server.port, user="root",
                key_file=client_key[1], groups=("network",))
    known = _known(tmp_path, (server, server.host_key))
    collect([host], knowledge, tmp_path / "red", known_hosts=known, progress=False)
    text = (tmp_path / "red" / "net01" / "cat-etc-nova-nova.conf.txt").read_text()
    for secret in ("Kq7vRabbit", "Zp3xNovaDb", "Wm9tNovaKs"):
        assert secret not in text
    assert "rabbit_password = ***" in text and "mysql://nova:***@controller/nova" in text
    assert "public_interface = eth1" in text       # the rest stays readable
    collect([host], knowledge, tmp_path / "kept", known_hosts=known, keep_secrets=True, progress=False)
    kept = (tmp_path / "kept" / "net01" / "cat-etc-nova-nova.conf.txt").read_text()
    assert "rabbit_password = Kq7vRabbit" in kept


def test_unknown_host_key_is_refused_with_its_fingerprint_unless_accept_new(servers, client_key,
                                                                            knowledge, tmp_path):
    server = servers(commands=_healthy_commands())
    known = tmp_path / "known_hosts"
    known.write_text("")
    host = _host(server, client_key[1], "gw01")
    result = collect([host], knowledge, tmp_path / "a", known_hosts=known, progress=False)
    failure = result.hosts[0].failure
    assert failure.kind == "host-key-unknown"
    assert fingerprint(server.host_key) in str(failure) and "--accept-new" in str(failure)
    assert server.received == []                  # not one command on an unverified host
    note = (tmp_path / "a" / "gw01" / "unreachable.txt").read_text()
    assert "host key not known" in note and fingerprint(server.host_key) in note
    assert "NOT COLLECTED" in result.summary()
    # --accept-new: added to known_hosts, collected, and said so
    result = collect([host], knowledge, tmp_path / "b", known_hosts=known, accept_new=True, progress=False)
    assert result.hosts[0].failure is None and (tmp_path / "b" / "gw01" / "ip-route.txt").exists()
    assert server.host_key.get_base64() in known.read_text()
    assert "added" in result.summary()


def test_changed_host_key_is_refused_even_with_accept_new(servers, client_key, knowledge, tmp_path):
    server = servers(commands=_healthy_commands())
    other = paramiko.ECDSAKey.generate()
    known = _known(tmp_path, (server, other))
    result = collect([_host(server, client_key[1], "gw01")], knowledge, tmp_path / "out",
                     known_hosts=known, accept_new=True, progress=False)
    failure = result.hosts[0].failure
    assert failure.kind == "host-key-changed"
    assert fingerprint(server.host_key) in str(failure) and fingerprint(other) in str(failure)
    assert "ssh-keygen -R" in str(failure) and server.received == []


def test_auth_failure_and_silent_and_absent_hosts_do_not_stop_the_good_one(servers, client_key,
                                                                           knowledge, tmp_path):
    good = servers(commands=_healthy_commands())
    refusing = servers(commands=_healthy_commands(), user="stack")     # wants another user
    silent = servers(silent=True)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()                                                      # nothing listens there
    known = _known(tmp_path, (good, good.host_key), (refusing, refusing.host_key))
    hosts = [_host(good, client_key[1], "good"), _host(refusing, client_key[1], "refusing"),
             _host(silent, client_key[1], "silent"),
             Host(name="down", address="127.0.0.1", port=closed_port, user="root",
                  key_file=client_key[1], groups=("gateway",))]
    started = time.monotonic()
    result = collect(hosts, knowledge, tmp_path / "out", known_hosts=known, progress=False)
    assert time.monotonic() - started < 8
    kinds = {r.host.name: (r.failure.kind if r.failure else None) for r in result.hosts}
    assert kinds == {"good": None, "refusing": "auth-failed", "silent": "timeout", "down": "unreachable"}
    assert (tmp_path / "out" / "good" / "ip-route.txt").exists()
    for name in ("refusing", "silent", "down"):
        assert (tmp_path / "out" / name / "unreachable.txt").exists()
    summary = result.summary()
    assert "collected 1 of 4 nodes" in summary and "authentication failed" in summary
    # the diagnosis shows the unreachable nodes among what it could not read
    from collectors.files import read_evidence
    unparsed = {u["node"] for u in read_evidence([str(tmp_path / "out")]).unparsed}
    assert {"refusing", "silent", "down"} <= unparsed


def test_hang_endless_binary_missing_and_drop_each_recorded(servers, client_key, knowledge, tmp_path):
    commands = _healthy_commands()
    commands["iptables-save"] = Behaviour("# Generated by iptables-save\n", hang=True)
    commands["iptables -L FORWARD -v -n"] = Behaviour("Chain FORWARD (policy ACCEPT)\n" * 50, endless=True)
    commands["sysctl net.ipv4.ip_forward"] = Behaviour(bytes(range(256)) * 40)
    commands["df -h"] = Behaviour("sh: 1: df: not found\n", rc=127)   # the probe finds it, the shell does not
    troubled = servers(commands=commands)
    dropping = servers(commands={**_healthy_commands(),
                                 "iptables -t nat -L -v -n": Behaviour("Chain PREROUTING", drop=True)})
    known = _known(tmp_path, (troubled, troubled.host_key), (dropping, dropping.host_key))
    result = collect([_host(troubled, client_key[1], "troubled"), _host(dropping, client_key[1], "dropping")],
                     knowledge, tmp_path / "out", known_hosts=known, progress=False)
    status = {r.host.name: {o.command.text: o.status for o in r.outputs} for r in result.hosts}
    assert status["troubled"]["iptables-save"] == "timeout"
    assert status["troubled"]["iptables -L FORWARD -v -n"] == "truncated"
    assert status["troubled"]["sysctl net.ipv4.ip_forward"] == "binary"
    assert status["troubled"]["ip route"] == "ok"
    assert status["dropping"]["iptables -t nat -L -v -n"] == "lost"
    assert status["dropping"]["ip route"] == "ok"                      # before the drop
    assert status["dropping"]["iptables-save"] == "not-run"            # after it
    out = tmp_path / "out"
    hung = (out / "troubled" / "iptables-save.txt").read_text()
    assert hung.startswith("root@troubled:~# iptables-save\n") and hung.endswith("^C\n")
    endless = (out / "troubled" / "iptables-L-FORWARD-v-n.txt").read_bytes()
    assert len(endless) <= 200_100 and endless.endswith(b"\n")
    assert not (out / "troubled" / "sysctl-net.ipv4.ip_forward.txt").exists()
    problems = (out / "troubled" / "collect-problems.txt").read_text()
    assert "binary data" in problems and "interrupted" in problems and "more than 200000 bytes" in problems
    assert "df: command not found" in problems
    assert "connection was lost" in (out / "dropping" / "collect-problems.txt").read_text()


def test_become_puts_sudo_n_in_front_and_shows_it_in_the_prompt(servers, client_key, knowledge, tmp_path):
    server = servers(commands=_healthy_commands(), user="stack")
    host = Host(name="cmp01", address="127.0.0.1", port=server.port, user="stack",
                key_file=client_key[1], groups=("gateway",), become=True)
    collect([host], knowledge, tmp_path / "out", known_hosts=_known(tmp_path, (server, server.host_key)),
            progress=False)
    assert server.received and all(line.startswith("sudo -n env ") for line in server.received)
    assert (tmp_path / "out" / "cmp01" / "ip-route.txt").read_text().startswith("stack@cmp01:~$ sudo ip route\n")


def test_nothing_from_an_inventory_reaches_the_shell_unquoted(servers, client_key, tmp_path):
    rules = tmp_path / "rules"
    (rules / "symptoms").mkdir(parents=True)
    (rules / "collect.yaml").write_text(
        "collect: 1\nroles:\n  gateway:\n    groups: [gateway]\nbase: []\n"
        "allow:\n  - \"cat {path}\"\n  - \"ip route\"\n")
    # a symptom step that tries to smuggle a second command in
    (rules / "symptoms" / "s.yaml").write_text(
        "symptom: s\nsteps:\n  a:\n    role: gateway\n    command: \"cat /etc/hosts$(touch /tmp/pwned)\"\n"
        "  b:\n    role: gateway\n    command: \"ip route; rm -rf /\"\n")
    knowledge = load_knowledge(rules)
    plan = knowledge.plan(["gateway"])
    assert [c.text for c in plan.commands] == ["ip route"]
    reasons = {s.command: s.reason for s in plan.skipped}
    assert "allowlist" in reasons["rm -rf /"] and "allowlist" in reasons["cat /etc/hosts$(touch /tmp/pwned)"]
    server = servers(commands={"ip route": Behaviour("default via 192.0.2.1 dev eth0\n")})
    inventory = tmp_path / "hosts"
    inventory.write_text(f"[gateway]\n'gw;reboot' ansible_host=127.0.0.1 ansible_port={server.port} "
                         f"ansible_user=root ansible_ssh_private_key_file={client_key[1]}\n")
    hosts = load_inventory(inventory, ssh_config_path="/nonexistent")
    result = collect(hosts, knowledge, tmp_path / "out", known_hosts=_known(tmp_path, (server, server.host_key)),
                     progress=False)
    assert result.hosts[0].failure is None
    assert server.received[-1] == "env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C ip route"
    assert (tmp_path / "out" / "gw_reboot" / "ip-route.txt").exists()


def test_the_collect_file_is_checked_with_file_and_line(tmp_path):
    path = tmp_path / "collect.yaml"
    path.write_text("collect: 1\nroles: {}\nbase:\n  - \"ip route\"\n  - \"rm -rf /var/log\"\nallow:\n  - \"ip route\"\n")
    with pytest.raises(ValueError, match=r"collect.yaml:5: 'rm -rf /var/log' matches no 'allow:' pattern"):
        load_collect_file(path)
    path.write_text("collect: 1\nbase: []\nallow: [\"ip route\"]\nlimits:\n  command_timeout: -1\n")
    with pytest.raises(ValueError, match=r"collect.yaml:5: command_timeout must be a positive number"):
        load_collect_file(path)
    path.write_text("collect: 1\nbsae: []\nallow: [\"ip route\"]\n")
    with pytest.raises(ValueError, match=r"collect.yaml:2: unknown key 'bsae'"):
        load_collect_file(path)


def test_what_is_run_comes_from_the_knowledge(tmp_path):
    """A cause file added with a decide_by brings its command into collection, no Python."""
    knowledge = load_knowledge()
    gateway = [c.text for c in knowledge.plan(["gateway"]).commands]
    # the symptom files' gateway steps
    assert "iptables -L FORWARD -v -n" in gateway and "sysctl net.ipv4.ip_forward" in gateway
    # a step with a value only the person knows is not run, and says why
    assert any(s.command.startswith("tcpdump") for s in knowledge.plan(["gateway"]).skipped)
    volume = [c.text for c in knowledge.plan(["cinder"]).commands]
    assert "grep glance_api_servers /etc/cinder/cinder.conf" in volume and "dpkg -l qemu-utils" in volume
    image = [c.text for c in knowledge.plan(["glance"]).commands]
    assert "service glance-api status" in image                       # decide_by: "On the image node: ..."
    assert "service glance-api status" not in gateway
    rules = tmp_path / "rules"
    (rules / "more").mkdir(parents=True)
    (rules / "collect.yaml").write_text((Path(__file__).parent.parent / "rules" / "collect.yaml").read_text())
    (rules / "more" / "rabbit.yaml").write_text(
        "cause: rabbit-host-wrong\ntitle: t\nwhen:\n  a: {type: x}\nstatus: possible\n"
        "decide_by:\n  - \"On the compute node: service nova-compute status. If it runs ...\"\n"
        "  - \"On the compute node: grep rabbit_host /etc/nova/nova.conf. Unset means localhost.\"\n")
    compute = [c.text for c in load_knowledge(rules).plan(["compute"]).commands]
    assert "service nova-compute status" in compute and "grep rabbit_host /etc/nova/nova.conf" in compute


def test_a_password_never_shows_in_messages_or_files(servers, client_key, knowledge, tmp_path, capsys):
    server = servers(commands=_healthy_commands())
    inventory = tmp_path / "hosts"
    inventory.write_text(f"[gateway]\ngw01 ansible_host=127.0.0.1 ansible_port={server.port} "
                         f"ansible_user=admin ansible_password=Hu7-not-for-eyes\n")
    hosts = load_inventory(inventory, ssh_config_path="/nonexistent")
    result = collect(hosts, knowledge, tmp_path / "out",
                     known_hosts=_known(tmp_path, (server, server.host_key)), progress=False)
    assert result.hosts[0].failure.kind == "auth-failed"
    assert "a password" in str(result.hosts[0].failure)
    written = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    for text in (written, result.summary(), repr(result.hosts[0].host), capsys.readouterr().err):
        assert "Hu7-not-for-eyes" not in text


def test_the_command_line_collects_and_says_what_failed(servers, client_key, tmp_path, capsys):
    import app
    good = servers(commands=_healthy_commands())
    known = _known(tmp_path, (good, good.host_key))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars:\n    ansible_user: root\n"
        f"    ansible_ssh_private_key_file: {client_key[1]}\n"
        "  children:\n    gateway:\n      hosts:\n"
        f"        gw01: {{ansible_host: 127.0.0.1, ansible_port: {good.port}}}\n"
        "        gw02: {ansible_host: 127.0.0.1, ansible_port: 1}\n")
    out = tmp_path / "out"
    status = app.main(["collect", "--inventory", str(inventory), "--out", str(out),
                       "--known-hosts", str(known)])
    err = capsys.readouterr().err
    assert status == 1                                   # one node of two collected
    assert "collected 1 of 2 nodes" in err and "gw02: NOT COLLECTED" in err
    assert (out / "gw01" / "ip-route.txt").exists() and (out / "gw02" / "unreachable.txt").exists()
    assert "\r" not in err                               # no progress bar off a terminal
    # --limit, and an output folder that is not ours is refused
    status = app.main(["collect", "--inventory", str(inventory), "--limit", "gw01", "--out", str(out),
                       "--known-hosts", str(known)])
    assert status == 0 and "collected 1 of 1 nodes" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own notes\n")
    assert app.main(["collect", "--inventory", str(inventory), "--out", str(tmp_path / "mine")]) == 2
    assert "not empty and not an earlier collection" in capsys.readouterr().err
    # diagnose --inventory: collect, then the diagnosis of what was collected
    status = app.main(["diagnose", "--inventory", str(inventory), "--limit", "gw01",
                       "--known-hosts", str(known), "--format", "json", "--evidence", str(tmp_path / "ev")])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["facts"] > 0 and "collected 1 of 1 nodes" in captured.err
    # the evidence lines point at the kept transcripts
    assert {e["source"].split("/ev/")[0] for f in report["findings"] for e in f["evidence"]} <= {str(tmp_path)}
    assert (tmp_path / "ev" / "gw01" / "ip-route.txt").exists()


@pytest.mark.parametrize("argv, words", [
    (["collect"], "needs --inventory FILE or --local"),
    (["collect", "--inventory", "/nonexistent/hosts"], "/nonexistent/hosts: cannot be read"),
    (["diagnose"], "needs PATH... or --inventory FILE"),
    (["collect", "--inventory", "INVENTORY", "--limit", "nothing"], "matches none"),
])
def test_command_line_mistakes_exit_2_with_a_reason(argv, words, tmp_path, capsys):
    import app
    inventory = tmp_path / "hosts"
    inventory.write_text("[gateway]\ngw01 ansible_host=127.0.0.1\n")
    argv = [str(inventory) if a == "INVENTORY" else a for a in argv]
    assert app.main(argv) == 2
    assert words in capsys.readouterr().err


def test_the_progress_bar_shows_only_on_a_terminal(capsys):
    from collectors.collect import _Progress
    quiet = _Progress(10, None)           # pytest's stderr is not a terminal
    assert quiet.bar is None
    shown = _Progress(3, True)
    shown.advance(host="net01")
    shown.close()
    assert "collecting:" in capsys.readouterr().err


def test_sudo_that_wants_a_password_is_said_once_per_command_and_nothing_written(servers, client_key,
                                                                                knowledge, tmp_path):
    server = servers(commands=_healthy_commands(), user="stack", sudo_asks_password=True)
    host = Host(name="cmp01", address="127.0.0.1", port=server.port, user="stack",
                key_file=client_key[1], groups=("gateway",), become=True)
    result = collect([host], knowledge, tmp_path / "out",
                     known_hosts=_known(tmp_path, (server, server.host_key)), progress=False)
    (report,) = result.hosts
    assert report.outputs and {o.status for o in report.outputs} == {"refused"}
    assert not (tmp_path / "out" / "cmp01" / "ip-route.txt").exists()
    assert "passwordless sudo (sudo -n)" in (tmp_path / "out" / "cmp01" / "collect-problems.txt").read_text()


def test_ansible_connection_local_is_collected_here_without_ssh(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "collect.yaml").write_text("collect: 1\nbase: [\"nova-manage service list\"]\n"
                                        "allow: [\"nova-manage (service|floating) list\"]\n")
    inventory = tmp_path / "hosts"
    inventory.write_text("[targets]\nlocalhost ansible_connection=local\n")
    hosts = load_inventory(inventory, ssh_config_path="/nonexistent")
    assert hosts[0].connection == "local"
    result = collect(hosts, load_knowledge(rules), tmp_path / "out", progress=False)
    assert result.hosts[0].failure is None                      # no SSH was tried
    assert [s["status"] for s in result.hosts[0].skipped] == ["missing"]


def test_the_host_timeout_bounds_a_slow_node_and_says_what_was_not_run(servers, client_key, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "collect.yaml").write_text(
        "collect: 1\nbase: [\"iptables-save\", \"ip route\", \"ip addr show\"]\n"
        "allow: [\"iptables-save\", \"ip route\", \"ip addr show\"]\n"
        "limits: {command_timeout: 5, host_timeout: 1, connect_timeout: 1}\n")
    commands = _healthy_commands()
    commands["iptables-save"] = Behaviour("", hang=True)
    server = servers(commands=commands)
    started = time.monotonic()
    result = collect([_host(server, client_key[1], "slow")], load_knowledge(rules), tmp_path / "out",
                     known_hosts=_known(tmp_path, (server, server.host_key)), progress=False)
    assert time.monotonic() - started < 3
    status = {o.command.text: o.status for o in result.hosts[0].outputs}
    assert status == {"iptables-save": "timeout", "ip route": "not-run", "ip addr show": "not-run"}
    assert "s were used up" in (tmp_path / "out" / "slow" / "collect-problems.txt").read_text()


@pytest.mark.parametrize("form", ["pem", "openssh"])
def test_a_key_with_a_passphrase_is_refused_without_asking(servers, tmp_path, knowledge, form):
    path = tmp_path / "id_locked"
    if form == "pem":
        paramiko.ECDSAKey.generate().write_private_key_file(str(path), password="correct horse")
    else:
        if not shutil.which("ssh-keygen"):
            pytest.skip("ssh-keygen (openssh-client) is not installed")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(path)],
                       check=True, timeout=30)
    server = servers(commands=_healthy_commands())
    result = collect([_host(server, str(path), "gw01")], knowledge, tmp_path / "out",
                     known_hosts=_known(tmp_path, (server, server.host_key)), progress=False)
    failure = result.hosts[0].failure
    assert failure.kind == "key-needs-passphrase" and f"ssh-add {path}" in str(failure)
    assert server.received == []


def test_a_bug_of_ours_on_one_host_is_recorded_there_and_the_others_are_kept(servers, client_key,
                                                                             knowledge, tmp_path, monkeypatch):
    from collectors import ssh
    good, bad = servers(commands=_healthy_commands()), servers(commands=_healthy_commands())
    original = ssh.SSHNode.run

    def run(self, command, timeout):
        if self.host.name == "bad" and command.program == "iptables":
            raise RuntimeError("a bug")
        return original(self, command, timeout)
    monkeypatch.setattr(ssh.SSHNode, "run", run)
    result = collect([_host(good, client_key[1], "good"), _host(bad, client_key[1], "bad")], knowledge,
                     tmp_path / "out", known_hosts=_known(tmp_path, (good, good.host_key), (bad, bad.host_key)),
                     progress=False)
    kinds = {r.host.name: r.failure.kind if r.failure else None for r in result.hosts}
    assert kinds == {"good": None, "bad": "internal-error"}
    assert (tmp_path / "out" / "good" / "ip-route.txt").exists()
    assert "RuntimeError: a bug" in (tmp_path / "out" / "bad" / "unreachable.txt").read_text()
    assert (tmp_path / "out" / "bad" / "ip-route.txt").exists()        # what came before is kept


def test_ctrl_c_keeps_what_was_collected_and_says_so(servers, client_key, knowledge, tmp_path, capsys):
    import os
    import signal
    import app
    commands = _healthy_commands()
    # the person presses Ctrl-C while iptables-save hangs
    commands["iptables-save"] = Behaviour("# Generated by iptables-save\n", hang=True,
                                          on_start=lambda: os.kill(os.getpid(), signal.SIGINT))
    server = servers(commands=commands)
    inventory = tmp_path / "hosts"
    inventory.write_text(f"[gateway]\ngw01 ansible_host=127.0.0.1 ansible_port={server.port} "
                         f"ansible_user=root ansible_ssh_private_key_file={client_key[1]}\n")
    known = _known(tmp_path, (server, server.host_key))
    started = time.monotonic()
    status = app.main(["collect", "--inventory", str(inventory), "--out", str(tmp_path / "out"),
                       "--known-hosts", str(known)])
    err = capsys.readouterr().err
    assert time.monotonic() - started < 5                             # not the 10 s command timeout
    assert status == 130 and "interrupted" in err
    out = tmp_path / "out"
    assert (out / "gw01" / "ip-route.txt").exists()                 # collected before Ctrl-C
    manifest = json.loads((out / ".collect.json").read_text())
    status = {c["command"]: c["status"] for c in manifest["hosts"][0]["commands"]}
    assert status["iptables-save"] == "interrupted"                  # ended at once, not at its timeout
    assert (out / "gw01" / "iptables-save.txt").read_text().endswith("^C\n")
    assert status["sysctl net.ipv4.ip_forward"] == "not-run"         # never started
