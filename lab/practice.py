"""The practice lab: the seed's testbed with chosen faults, a real sshd on every node.

``python app.py lab up [--faults ID,...] [--naming seed|other]`` builds what
:class:`lab.testbed.Testbed` builds for the tests - VM, compute node, network node,
the physical node (gateway) and an outside host, as network namespaces - and starts an
OpenSSH server on each (lab/sshd.py). Then ``lab inventory`` gives an Ansible
inventory and a known_hosts of the lab's own host keys, so ``python app.py collect
--inventory .lab/inventory.ini`` gathers the evidence and ``diagnose`` finds the faults
that were built; ``lab shell NODE`` opens a root shell on a node (its prompt names the
node, so what a student copies from it is a transcript ``diagnose`` reads), and
``lab down`` removes everything.

How the collector on the host reaches an sshd inside a namespace, without linking any
lab namespace to the host's network: each host of the inventory carries an OpenSSH
``ProxyCommand`` (in ``ansible_ssh_common_args``, which Ansible's own ssh would use
too) of the form ``ip netns exec <node's namespace> nc %h %p``. The SSH client's bytes
travel over the pipes of that small ``nc`` process; the TCP connection itself is made
*inside* the node's namespace, to the node's own address - a console cable, as a
hypervisor's serial console would be. No veth, route or address ever appears on the
host, a fault in the lab (a dropped FORWARD, a missing route) never cuts the collector
off from a node, and what the nodes see is an ordinary SSH login.

Who owns what, so that ``lab down`` leaves nothing even after an interrupted ``up``:
``up`` starts a *keeper* process (``python -m lab.practice keep``, in its own session)
that builds the testbed under a namespace prefix carrying the keeper's pid
(``sdlab-<pid>-<hex>-``, so lab.netns's sweeper leaves a live lab alone and takes a
dead one), starts the sshds, writes the state, and waits. ``down`` asks the keeper to
stop (it closes the testbed: processes ended, namespaces deleted), then removes
whatever is still there by the recorded prefix - namespaces and the processes inside,
/etc/netns entries, sshds started with the lab's configuration - and finally the
state folder. The state lives in ``.lab/`` at the repository's top (git-ignored), or
where ``STACKDOC_LAB_DIR`` says.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab import netns, sshd
from lab.testbed import COMPUTE, FAULTS, GATEWAY, NETWORK, OTHER, OUTSIDE, ROLES, SEED, VM, Testbed

REPO = Path(__file__).resolve().parent.parent
NAMINGS = {"seed": SEED, "other": OTHER}

GROUPS = {NETWORK: "network", COMPUTE: "compute", GATEWAY: "gateway", VM: "instances", OUTSIDE: "outside"}
"""The inventory group of each machine; rules/collect.yaml maps group names to roles."""

UP_TIMEOUT = 90.0


class LabError(Exception):
    """Something the person can act on: not root, no sshd, no lab up, a lab already up."""


def state_dir() -> Path:
    return Path(os.environ.get("STACKDOC_LAB_DIR") or REPO / ".lab").resolve()


def listen_address(names, role: str) -> str:
    """Where a node's sshd listens: its own address (the VM's on every address it has)."""
    return {VM: "0.0.0.0", COMPUTE: names.compute_mgmt_ip, NETWORK: names.network_mgmt_ip,
            GATEWAY: names.gateway_mgmt_ip, OUTSIDE: names.upstream_ip}[role]


def connect_address(names, role: str) -> str:
    return names.vm_ip if role == VM else listen_address(names, role)


@dataclass
class Paths:
    root: Path

    @property
    def state(self) -> Path: return self.root / "state.json"
    @property
    def ready(self) -> Path: return self.root / "ready"
    @property
    def log(self) -> Path: return self.root / "keeper.log"
    @property
    def client_key(self) -> Path: return self.root / "id_ed25519"
    @property
    def authorized_keys(self) -> Path: return self.root / "authorized_keys"
    @property
    def known_hosts(self) -> Path: return self.root / "known_hosts"
    @property
    def inventory(self) -> Path: return self.root / "inventory.ini"

    def host_key(self, role: str) -> Path: return self.root / "hostkeys" / f"{role}_ed25519"
    def sshd_config(self, role: str) -> Path: return self.root / "sshd" / f"{role}.conf"
    def sshd_log(self, role: str) -> Path: return self.root / "sshd" / f"{role}.log"


def require_root() -> None:
    ok, reason = netns.available()
    if not ok:
        if os.geteuid() != 0:
            raise LabError("the practice lab needs root (it creates network namespaces and runs "
                           "sshd in them): run it as root, e.g. sudo .venv/bin/python app.py lab up")
        raise LabError(f"the practice lab cannot run here: {reason}")
    ok, reason = sshd.available()
    if not ok:
        raise LabError(reason)


def read_state(paths: Paths) -> dict | None:
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return None


def _write_state(paths: Paths, state: dict) -> None:
    temporary = paths.state.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(paths.state)


def _runs_with(pid: int, marker: str) -> bool:
    """True if process ``pid`` has ``marker`` (a path of this lab) on its command line, so
    that a pid reused by an unrelated process is never signalled."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


def _keeper_alive(state: dict | None, paths: Paths) -> bool:
    pid = (state or {}).get("keeper_pid")
    return bool(pid) and netns.pid_alive(pid) and _runs_with(pid, str(paths.root))


# --------------------------------------------------------------------------- up
def up(faults=(), naming: str = "seed", *, paths: Paths | None = None,
       timeout: float = UP_TIMEOUT) -> dict:
    """Build the lab and start its sshds; returns the state. Raises LabError."""
    paths = paths or Paths(state_dir())
    require_root()
    unknown = sorted(set(faults) - FAULTS.keys())
    if unknown:
        raise LabError(f"unknown fault {unknown[0]!r}; the faults are: {', '.join(sorted(FAULTS))}")
    if naming not in NAMINGS:
        raise LabError(f"unknown naming {naming!r}: seed or other")
    state = read_state(paths)
    if _keeper_alive(state, paths):
        raise LabError(f"a lab is already up ({state.get('naming')}, faults: "
                       f"{', '.join(state.get('faults') or []) or 'none'}): python app.py lab down first")
    if paths.root.exists():
        down(paths=paths)          # what an interrupted or crashed earlier lab left
    paths.root.mkdir(parents=True)
    os.chmod(paths.root, 0o700)
    sshd.generate_key(paths.client_key, "stackdoc practice lab")
    paths.authorized_keys.write_text(sshd.public_key(paths.client_key) + "\n")
    command = [sys.executable, "-m", "lab.practice", "keep", str(paths.root), naming, ",".join(sorted(faults))]
    with open(paths.log, "ab") as log:
        keeper = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not paths.ready.exists():
            if keeper.poll() is not None:
                raise LabError(f"the lab could not be built:\n{_tail(paths.log)}")
            if time.monotonic() > deadline:
                raise LabError(f"the lab was not up after {timeout:g} s:\n{_tail(paths.log)}")
            time.sleep(0.05)
    except BaseException:
        # Ctrl-C or failure: stop the keeper (it closes what it built), then leave nothing
        if keeper.poll() is None:
            keeper.terminate()
            try:
                keeper.wait(30)
            except subprocess.TimeoutExpired:
                keeper.kill()
        down(paths=paths)
        raise
    return read_state(paths)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def keep(root: str, naming: str, faults: str) -> int:
    """The keeper: build, serve, and on SIGTERM/SIGINT/SIGHUP close everything."""
    paths = Paths(Path(root))
    names = NAMINGS[naming]
    chosen = sorted(f for f in faults.split(",") if f)

    def stop(signum, frame):
        raise SystemExit(0)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)

    prefix = netns.new_prefix()
    state = {"keeper_pid": os.getpid(), "prefix": prefix, "naming": naming, "faults": chosen,
             "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "created_privsep_dir": False,
             "nodes": {}}
    _write_state(paths, state)
    testbed = Testbed(faults=chosen, names=names, prefix=prefix, vm_listener=False)
    try:
        state["created_privsep_dir"] = sshd.ensure_privsep_dir()
        _write_state(paths, state)
        testbed.build()
        for role in ROLES:
            key = sshd.generate_key(paths.host_key(role), f"stackdoc lab {names.hostname(role)}")
            config = paths.sshd_config(role)
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(sshd.config_text(listen=listen_address(names, role), host_key=key,
                                               authorized_keys=paths.authorized_keys))
            node = testbed.node(role)
            process = sshd.start(testbed.session, node, config, paths.sshd_log(role))
            state["nodes"][role] = {"host": names.hostname(role), "group": GROUPS[role],
                                    "namespace": node.name, "address": connect_address(names, role),
                                    "sshd_pid": process.pid, "sshd_config": str(config)}
            _write_state(paths, state)
            sshd.wait_listening(node, process)
        _write_files(paths, state)
        paths.ready.write_text(f"{os.getpid()}\n")
        print(f"lab up: {naming}, faults: {', '.join(chosen) or 'none'}", flush=True)
        while True:
            signal.pause()
    finally:
        problems = testbed.close()
        for problem in problems:
            print(f"cleanup: {problem}", flush=True)
    return 0


def _write_files(paths: Paths, state: dict) -> None:
    """The inventory and the known_hosts of the lab's own host keys."""
    known, groups = [], {}
    for role, node in state["nodes"].items():
        known.append(f"{node['address']} {sshd.public_key(paths.host_key(role))}")
        proxy = f"{netns.which('ip') or 'ip'} netns exec {node['namespace']} {netns.which('nc') or 'nc'} %h %p"
        args = f'-o ProxyCommand="{proxy}" -o UserKnownHostsFile={paths.known_hosts}'
        groups.setdefault(node["group"], []).append(
            f"{node['host']} ansible_host={node['address']} ansible_ssh_common_args='{args}'")
    paths.known_hosts.write_text("\n".join(known) + "\n")
    lines = [f"# stackdoc practice lab: naming {state['naming']}, faults: "
             f"{', '.join(state['faults']) or 'none'}",
             "# Made by `python app.py lab up`; gone with `lab down`. The ProxyCommand opens each",
             "# node's SSH connection inside its own network namespace (see lab/practice.py)."]
    for group, hosts in groups.items():
        lines += ["", f"[{group}]", *hosts]
    lines += ["", "[all:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={paths.client_key}", ""]
    paths.inventory.write_text("\n".join(lines))


# --------------------------------------------------------------------------- down
def down(*, paths: Paths | None = None, grace: float = 15.0) -> list[str]:
    """Stop the keeper and remove everything the lab made; returns what was removed."""
    paths = paths or Paths(state_dir())
    state = read_state(paths) or {}
    done: list[str] = []
    pid = state.get("keeper_pid")
    if _keeper_alive(state, paths):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while netns.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if netns.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        done.append(f"stopped the lab's keeper (pid {pid})")
    for node in (state.get("nodes") or {}).values():
        sshd_pid = node.get("sshd_pid")
        if sshd_pid and netns.pid_alive(sshd_pid) and _runs_with(sshd_pid, node.get("sshd_config", "\0")):
            netns.end_pid(sshd_pid)
            done.append(f"ended sshd of {node.get('host')}")
    prefix = state.get("prefix")
    if prefix and prefix.startswith(netns.FAMILY_PREFIX):
        leftovers = [n for n in netns.list_namespaces() if n.startswith(prefix)]
        if netns.NETNS_ETC.is_dir():
            leftovers += [p.name for p in netns.NETNS_ETC.iterdir() if p.name.startswith(prefix)]
        for name in sorted(set(leftovers)):
            netns.delete_namespace(name)
            done.append(f"removed namespace {name}")
    if state.get("created_privsep_dir") and sshd.remove_privsep_dir():
        done.append(f"removed {sshd.PRIVSEP_DIR}")
    if paths.root.exists():
        shutil.rmtree(paths.root, ignore_errors=True)
        done.append(f"removed {paths.root}")
    return done


# --------------------------------------------------------------------------- status, shell
def status(*, paths: Paths | None = None) -> str:
    paths = paths or Paths(state_dir())
    state = read_state(paths)
    if not state:
        return "no practice lab is up (python app.py lab up)\n"
    alive = _keeper_alive(state, paths)
    lines = [f"practice lab: naming {state['naming']}, faults: {', '.join(state['faults']) or 'none'}, "
             f"up since {state.get('started')}" + ("" if alive else
                                                   " - BROKEN: its keeper is gone; python app.py lab down")]
    namespaces = set(netns.list_namespaces())
    for role, node in state.get("nodes", {}).items():
        running = node.get("sshd_pid") and netns.pid_alive(node["sshd_pid"])
        lines.append(f"  {node['host']:<14} {role:<8} {node['address']:<15} "
                     f"sshd {'running' if running else 'NOT running'}"
                     f"{'' if node['namespace'] in namespaces else ', namespace missing'}")
    if paths.inventory.exists():
        lines.append(f"inventory: {paths.inventory}  (python app.py collect --inventory {paths.inventory})")
    return "\n".join(lines) + "\n"


def node_of(name: str, state: dict) -> dict:
    nodes = state.get("nodes") or {}
    for role, node in nodes.items():
        if name in (role, node["host"]):
            return node
    known = ", ".join(f"{n['host']} ({r})" for r, n in nodes.items())
    raise LabError(f"no node {name!r} in the lab; its nodes: {known}")


def shell_argv(name: str, *, paths: Paths | None = None) -> tuple[list[str], dict]:
    """``ip netns exec NS bash`` with a prompt naming the node, as a transcript needs."""
    paths = paths or Paths(state_dir())
    state = read_state(paths)
    if not state or not _keeper_alive(state, paths):
        raise LabError("no practice lab is up (python app.py lab up)")
    node = node_of(name, state)
    env = dict(os.environ, PS1=f"root@{node['host']}:\\w# ", HOME=os.environ.get("HOME", "/root"))
    return ["ip", "netns", "exec", node["namespace"], "bash", "--norc", "--noprofile", "-i"], env


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "keep":
    sys.exit(keep(sys.argv[2], sys.argv[3], sys.argv[4]))
