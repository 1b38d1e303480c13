"""The practice lab against real OpenSSH servers: for each fault combination built,
``collect`` over SSH then ``diagnose`` finds exactly the faults built; ``lab down``
leaves nothing behind, even after an interrupted ``up`` or a killed keeper.

Root only (network namespaces, sshd from openssh-server); elsewhere the tests skip
with the reason. A few combinations, each one build; every lab lives in a temporary
state folder of its own."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# What the diagnosis must name for each fault of lab/testbed.py (the seed's reasoning).
CAUSE_OF_FAULT = {
    "snat_wrong_interface": "fip-snat-wrong-interface",
    "gateway_no_return_route": "fip-upstream-no-return-route",
    "gateway_no_masquerade": "fip-upstream-no-masquerade",
    "gateway_forward_blocked": "fip-upstream-forward-blocked",
    "gateway_ip_forward_off": "fip-upstream-forward-blocked",
}
COMBINATIONS = [
    ("seed", frozenset()),
    ("seed", frozenset({"snat_wrong_interface", "gateway_no_return_route", "gateway_no_masquerade",
                        "gateway_forward_blocked"})),
    ("other", frozenset({"snat_wrong_interface"})),
    ("other", frozenset({"gateway_no_return_route", "gateway_ip_forward_off"})),
]


def _practice():
    from lab import netns, practice, sshd
    ok, reason = netns.available()
    if not ok:
        pytest.skip(reason)
    ok, reason = sshd.available()
    if not ok:
        pytest.skip(reason)
    return practice


def _leftovers(state: dict, root: Path) -> list[str]:
    from lab import netns
    prefix = state["prefix"]
    found = [n for n in netns.list_namespaces() if n.startswith(prefix)]
    if netns.NETNS_ETC.is_dir():
        found += [f"/etc/netns/{p.name}" for p in netns.NETNS_ETC.iterdir() if p.name.startswith(prefix)]
    for node in state.get("nodes", {}).values():
        if netns.pid_alive(node["sshd_pid"]):
            found.append(f"sshd pid {node['sshd_pid']}")
    if netns.pid_alive(state["keeper_pid"]):
        found.append(f"keeper pid {state['keeper_pid']}")
    if root.exists():
        found.append(str(root))
    if state.get("created_privsep_dir") and Path("/run/sshd").exists():
        found.append("/run/sshd")
    return found


def _app(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "app.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.root
@pytest.mark.parametrize("naming, faults", COMBINATIONS,
                         ids=[f"{n}-{'+'.join(sorted(f)) or 'healthy'}" for n, f in COMBINATIONS])
def test_collect_then_diagnose_finds_exactly_the_faults_built(naming, faults, tmp_path):
    practice = _practice()
    root = tmp_path / "lab"
    env = dict(os.environ, STACKDOC_LAB_DIR=str(root))
    up = _app("lab", "up", "--naming", naming, "--faults", ",".join(sorted(faults)), env=env)
    state = json.loads((root / "state.json").read_text()) if (root / "state.json").exists() else None
    try:
        assert up.returncode == 0, up.stderr
        assert "sshd running" in up.stdout and "NOT running" not in up.stdout
        inventory = _app("lab", "inventory", env=env)
        assert inventory.returncode == 0 and "[gateway]" in inventory.stdout
        out = tmp_path / "evidence"
        collected = _app("collect", "--inventory", str(root / "inventory.ini"), "--out", str(out), env=env)
        assert collected.returncode == 0, collected.stderr
        assert "collected 5 of 5 nodes" in collected.stderr
        names = practice.NAMINGS[naming]
        network = names.network_host
        route = (out / network / "ip-route.txt").read_text()
        assert route.startswith(f"root@{network}:~# ip route\n")
        diagnosed = _app("diagnose", str(out), "--format", "json", env=env)
        report = json.loads(diagnosed.stdout)
        found = {f["cause"] for f in report["findings"] if f["status"] == "established"}
        assert found == {CAUSE_OF_FAULT[f] for f in faults}
        assert diagnosed.returncode == (1 if faults else 0)
        # the one-step form gives the same diagnosis
        again = _app("diagnose", "--inventory", str(root / "inventory.ini"), "--format", "json",
                     "--evidence", str(tmp_path / "again"), env=env)
        assert {f["cause"] for f in json.loads(again.stdout)["findings"]
                if f["status"] == "established"} == found
    finally:
        down = _app("lab", "down", env=env)
        assert down.returncode == 0, down.stderr
    assert state is not None
    assert _leftovers(state, root) == []


@pytest.mark.root
def test_status_shell_and_a_second_up(tmp_path):
    practice = _practice()
    paths = practice.Paths(tmp_path / "lab")
    state = practice.up(["gateway_no_masquerade"], "other", paths=paths)
    try:
        text = practice.status(paths=paths)
        assert "faults: gateway_no_masquerade" in text and text.count("sshd running") == 5
        with pytest.raises(practice.LabError, match="already up"):
            practice.up([], "seed", paths=paths)
        argv, env = practice.shell_argv("gw01", paths=paths)
        shell = subprocess.run(argv, input="ip route\nexit\n", capture_output=True, text=True,
                               env=env, timeout=20)
        assert "default via 192.0.2.1" in shell.stdout           # the gateway's own table
        assert "root@gw01:" in shell.stderr                       # the prompt names the node
        with pytest.raises(practice.LabError, match="no node 'nowhere'"):
            practice.shell_argv("nowhere", paths=paths)
        # Ansible reads the lab's inventory as stackdoc does (ProxyCommand and known_hosts too)
        from collectors.inventory import load_inventory
        from test_inventory import _ansible_hosts, _ansible_view
        view = _ansible_view(paths.inventory, tmp_path)
        ours = {h.name: h for h in load_inventory(paths.inventory, ssh_config_path="/nonexistent")}
        theirs = _ansible_hosts(view)
        assert {n: (h.address, h.port, h.user, list(h.groups)) for n, h in ours.items()} == {
            n: (h["address"], h["port"], h["user"], h["groups"]) for n, h in theirs.items()}
        for name, host in ours.items():
            args = view["_meta"]["hostvars"][name]["ansible_ssh_common_args"]
            assert host.proxy_command in args and str(paths.known_hosts) in args
    finally:
        practice.down(paths=paths)
    assert _leftovers(state, paths.root) == []
    assert "no practice lab is up" in practice.status(paths=paths)


@pytest.mark.root
def test_down_after_an_interrupted_up_or_a_killed_keeper_leaves_nothing(tmp_path):
    _practice()
    root = tmp_path / "lab"
    env = dict(os.environ, STACKDOC_LAB_DIR=str(root))
    # Ctrl-C while the lab is being built
    up = subprocess.Popen([sys.executable, "app.py", "lab", "up"], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (root / "state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    state = json.loads((root / "state.json").read_text())
    time.sleep(0.3)                                # somewhere in the middle of the build
    up.send_signal(signal.SIGINT)
    up.wait(60)
    assert up.returncode != 0
    down = _app("lab", "down", env=env)
    assert down.returncode == 0
    assert _leftovers(state, root) == []
    # a keeper killed outright (kill -9): down still removes its namespaces and sshds
    assert _app("lab", "up", env=env).returncode == 0
    state = json.loads((root / "state.json").read_text())
    os.kill(state["keeper_pid"], signal.SIGKILL)
    time.sleep(0.2)
    assert "BROKEN" in _app("lab", "status", env=env).stdout
    down = _app("lab", "down", env=env)
    assert down.returncode == 0 and "removed namespace" in down.stdout
    assert _leftovers(state, root) == []


def test_not_root_is_said_clearly(monkeypatch, tmp_path):
    from lab import practice
    monkeypatch.setattr(practice.netns, "available", lambda: (False, "not running as root"))
    monkeypatch.setattr(practice.os, "geteuid", lambda: 1000)
    with pytest.raises(practice.LabError, match="needs root"):
        practice.up([], "seed", paths=practice.Paths(tmp_path / "lab"))
    assert not (tmp_path / "lab").exists()


def test_unknown_fault_and_naming_are_refused(monkeypatch, tmp_path):
    from lab import practice
    monkeypatch.setattr(practice, "require_root", lambda: None)
    with pytest.raises(practice.LabError, match="unknown fault 'gateway_on_fire'.*gateway_no_masquerade"):
        practice.up(["gateway_on_fire"], "seed", paths=practice.Paths(tmp_path / "lab"))
    with pytest.raises(practice.LabError, match="unknown naming"):
        practice.up([], "moon", paths=practice.Paths(tmp_path / "lab"))


def test_status_and_inventory_without_a_lab(tmp_path):
    env = dict(os.environ, STACKDOC_LAB_DIR=str(tmp_path / "none"))
    assert "no practice lab is up" in _app("lab", "status", env=env).stdout
    inventory = _app("lab", "inventory", env=env)
    assert inventory.returncode == 2 and "no practice lab is up" in inventory.stderr
