"""Network-namespace primitives the lab is built from.

The seed's testbed is a handful of machines (a VM, compute-1, network-node and the
physical node gks-061) wired together by Linux bridges. Here each machine is a network
namespace: its own interfaces, addresses, routes, sysctls and iptables tables, and a
process started "on" a machine is a process started inside its namespace.

Everything this module creates carries a per-run name prefix,
``sdlab-<owner pid>-<random>-``, so that

* two runs (or two test sessions) never collide,
* cleanup touches only what this run made, and
* a stale-namespace sweeper can tell a crashed run's leftovers (owner pid gone) from a
  live run's namespaces, and never touches names outside the ``sdlab-`` family.

Nothing here ever moves an interface into, or creates one in, the host's own network
namespace: veth pairs are created with both ends directly inside lab namespaces, so no
packet the lab sends can leave the namespaces it created.
"""
from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

FAMILY_PREFIX = "sdlab-"
"""Every namespace this package creates starts with this. The sweeper never looks elsewhere."""

_OWNED_NAME = re.compile(r"^sdlab-(?P<pid>\d+)-(?P<run>[0-9a-f]+)-(?P<role>[A-Za-z0-9_.-]+)$")

DEFAULT_TIMEOUT = 10.0
"""Seconds any single command may take. Every subprocess here has a timeout."""

NETNS_ETC = Path("/etc/netns")
"""``ip netns exec NAME`` bind-mounts /etc/netns/NAME/<file> over /etc/<file>."""

# iproute2/iptables live in sbin; a non-login root shell may lack it on PATH.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    parts = env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    env["PATH"] = os.pathsep.join(parts + [d for d in _SBIN_DIRS if d not in parts])
    # Commands print what a terminal in the C locale prints: the transcripts are evidence.
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def which(tool: str) -> str | None:
    """Path of ``tool`` on PATH or in the sbin directories, else None."""
    return shutil.which(tool, path=_env()["PATH"])


@dataclass(frozen=True)
class CommandResult:
    """What one command did: its argv, stdout, stderr, return code, and whether it timed out."""

    argv: tuple[str, ...]
    stdout: str
    stderr: str
    rc: int
    timed_out: bool = False
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout then stderr, as one text (for merged captures stderr is empty)."""
        return self.stdout + self.stderr


class CommandFailed(RuntimeError):
    """A command that had to succeed did not; carries its :class:`CommandResult`."""

    def __init__(self, result: CommandResult, context: str = ""):
        self.result = result
        what = " ".join(result.argv)
        why = "timed out" if result.timed_out else f"rc={result.rc}"
        detail = (result.stderr or result.stdout).strip()
        super().__init__(f"{context + ': ' if context else ''}{what} ({why}) {detail}".strip())


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def run(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, input: str | None = None,
        merge_stderr: bool = False) -> CommandResult:
    """Run ``argv`` (no shell) with a timeout; never raises for a failing command.

    ``merge_stderr`` sends stderr into the same pipe as stdout, so the text keeps the
    order a terminal would have shown (tcpdump's banner before its packets).
    """
    if timeout is None or timeout <= 0:
        raise ValueError("every command needs a positive timeout")
    argv = tuple(str(a) for a in argv)
    started = time.monotonic()
    try:
        done = subprocess.run(argv, input=input, capture_output=not merge_stderr,
                              stdout=subprocess.PIPE if merge_stderr else None,
                              stderr=subprocess.STDOUT if merge_stderr else None,
                              text=True, timeout=timeout, env=_env(),
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        return CommandResult(argv, _text(expired.stdout), _text(expired.stderr), 124,
                             timed_out=True, elapsed=time.monotonic() - started)
    except FileNotFoundError as missing:
        return CommandResult(argv, "", f"{missing}\n", 127, elapsed=time.monotonic() - started)
    return CommandResult(argv, done.stdout or "", done.stderr or "", done.returncode,
                         elapsed=time.monotonic() - started)


def check(result: CommandResult, context: str = "") -> CommandResult:
    """``result`` if it succeeded, else raise :class:`CommandFailed`."""
    if not result.ok:
        raise CommandFailed(result, context)
    return result


def list_namespaces() -> list[str]:
    """Names from ``ip netns list`` (the "(id: N)" suffix dropped)."""
    result = run(["ip", "netns", "list"], timeout=5)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def namespace_pids(name: str) -> list[int]:
    """Processes running inside namespace ``name`` (``ip netns pids``)."""
    result = run(["ip", "netns", "pids", name], timeout=5)
    return [int(tok) for tok in result.stdout.split() if tok.isdigit()]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def end_pid(pid: int, grace: float = 1.0) -> None:
    """SIGTERM one process we started, then SIGKILL it if it lingers."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def delete_namespace(name: str) -> list[str]:
    """Remove one lab namespace and its /etc/netns files; returns problems, never raises.

    A namespace with processes still inside outlives ``ip netns del`` (with its
    interfaces), so the processes inside - all started by the lab - are ended first.
    """
    problems: list[str] = []
    if not name.startswith(FAMILY_PREFIX):
        return [f"refusing to delete {name!r}: not a {FAMILY_PREFIX} namespace"]
    for pid in namespace_pids(name):
        if pid != os.getpid():
            end_pid(pid)
    if name in list_namespaces():
        result = run(["ip", "netns", "del", name], timeout=10)
        if not result.ok:
            problems.append(f"ip netns del {name}: {result.stderr.strip()}")
    etc = NETNS_ETC / name
    if etc.exists():
        shutil.rmtree(etc, ignore_errors=True)
    return problems


def sweep_stale(prefix: str = FAMILY_PREFIX) -> list[str]:
    """Delete leftovers of crashed runs; returns the names removed.

    Only names that start with ``prefix`` (which must itself be in the ``sdlab-``
    family) *and* whose owner pid (encoded in the name) is no longer alive are removed:
    namespaces of a run still in progress - this one or a concurrent one - are left alone.
    """
    if not prefix.startswith(FAMILY_PREFIX):
        raise ValueError(f"the sweeper only handles its own {FAMILY_PREFIX!r} family")
    candidates = set(list_namespaces())
    if NETNS_ETC.is_dir():
        candidates.update(p.name for p in NETNS_ETC.iterdir())
    removed = []
    for name in sorted(candidates):
        match = _OWNED_NAME.match(name)
        if not name.startswith(prefix) or not match:
            continue
        if pid_alive(int(match["pid"])):
            continue
        delete_namespace(name)
        removed.append(name)
    return removed


def new_prefix() -> str:
    """A fresh per-run prefix: ``sdlab-<this pid>-<6 hex>-``."""
    return f"{FAMILY_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-"


_NSSWITCH = """\
# Written by stackdoc's lab: name lookups inside the lab read files only, so
# `iptables -L` turns 10.0.0.7 into a node name from /etc/hosts and never asks
# a DNS server outside the lab.
passwd:         files
group:          files
shadow:         files
hosts:          files
networks:       files
protocols:      files
services:       files
ethers:         files
rpc:            files
"""


class Namespace:
    """One lab machine: a network namespace and the commands that configure it."""

    def __init__(self, name: str, role: str):
        self.name = name
        self.role = role

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    # -- running commands -------------------------------------------------------------
    def exec(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
             input: str | None = None, merge_stderr: bool = False) -> CommandResult:
        """Run ``argv`` inside this namespace (``ip netns exec``), timeout always set."""
        return run(["ip", "netns", "exec", self.name, *argv], timeout=timeout,
                   input=input, merge_stderr=merge_stderr)

    def check(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
              input: str | None = None) -> CommandResult:
        """Like :meth:`exec` but raise :class:`CommandFailed` unless it succeeded."""
        return check(self.exec(argv, timeout=timeout, input=input), f"on {self.role}")

    def ip(self, *args: str) -> CommandResult:
        """``ip -n NAME args`` - configure without entering the namespace; must succeed."""
        return check(run(["ip", "-n", self.name, *args], timeout=DEFAULT_TIMEOUT),
                     f"on {self.role}")

    # -- configuration primitives ------------------------------------------------------
    def set_up(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "up")

    def add_bridge(self, name: str, ports: Iterable[str] = (), mac: str | None = None) -> None:
        """A Linux bridge inside this namespace (br100, br1 ...) with ``ports`` enslaved."""
        extra = ["address", mac] if mac else []
        self.ip("link", "add", name, *extra, "type", "bridge")
        for port in ports:
            self.ip("link", "set", port, "master", name)
            self.set_up(port)
        self.set_up(name)

    def add_address(self, ifname: str, cidr: str, label: str | None = None) -> None:
        extra = ["label", label] if label else []
        self.ip("addr", "add", cidr, "dev", ifname, *extra)

    def del_address(self, ifname: str, cidr: str) -> None:
        self.ip("addr", "del", cidr, "dev", ifname)

    def add_route(self, destination: str, *, via: str | None = None,
                  dev: str | None = None) -> None:
        args = ["route", "add", destination]
        if via:
            args += ["via", via]
        if dev:
            args += ["dev", dev]
        self.ip(*args)

    def del_route(self, destination: str, *, dev: str | None = None) -> None:
        args = ["route", "del", destination] + (["dev", dev] if dev else [])
        self.ip(*args)

    def sysctl(self, key: str, value: str | int) -> None:
        """Set a sysctl for this namespace only (net.* sysctls are per network namespace)."""
        self.check(["sysctl", "-q", "-w", f"{key}={value}"])

    def has_sysctl(self, key: str) -> bool:
        return self.exec(["sysctl", "-n", key], timeout=5).ok

    def iptables_restore(self, ruleset: str) -> None:
        """Load whole tables the way nova's iptables_manager does (iptables-restore)."""
        self.check(["iptables-restore"], input=ruleset)


def add_veth(a: Namespace, a_ifname: str, b: Namespace, b_ifname: str, *,
             a_mac: str | None = None, b_mac: str | None = None) -> None:
    """A cable between two lab machines: a veth pair born with one end in each namespace.

    Created from inside ``a`` with the peer placed straight into ``b``, so neither end
    ever exists in the host's namespace.
    """
    a_extra = ["address", a_mac] if a_mac else []
    b_extra = ["address", b_mac] if b_mac else []
    a.ip("link", "add", a_ifname, *a_extra, "type", "veth",
         "peer", "name", b_ifname, *b_extra, "netns", b.name)
    a.set_up(a_ifname)
    b.set_up(b_ifname)


class NetnsSession:
    """The namespaces (and background processes) of one lab run; a context manager.

    Leaving the ``with`` block - normally or by an exception - ends every process the
    session started and deletes every namespace it created. :meth:`close` is idempotent
    and is also what a half-finished build calls on failure.
    """

    def __init__(self, prefix: str | None = None):
        self.prefix = prefix or new_prefix()
        if not _OWNED_NAME.match(self.prefix + "x"):
            raise ValueError(f"prefix must look like {FAMILY_PREFIX}<pid>-<hex>-: {self.prefix!r}")
        self.namespaces: dict[str, Namespace] = {}
        self._processes: list[subprocess.Popen] = []
        self.closed = False

    def __enter__(self) -> "NetnsSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def namespace(self, role: str, *, hosts: str | None = None) -> Namespace:
        """Create the namespace for ``role`` with loopback up and files-only name lookup.

        ``hosts`` becomes that machine's /etc/hosts (as in the seed, where
        ``iptables -L`` prints ``network-node`` for 10.0.0.7).
        """
        if self.closed:
            raise RuntimeError("session already closed")
        if role in self.namespaces:
            raise ValueError(f"role {role!r} already has a namespace")
        name = f"{self.prefix}{role}"
        etc = NETNS_ETC / name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts or "127.0.0.1\tlocalhost\n")
        (etc / "nsswitch.conf").write_text(_NSSWITCH)
        # No nameserver at all: nothing in the lab may query a resolver.
        (etc / "resolv.conf").write_text("# stackdoc lab: no resolver\n")
        namespace = Namespace(name, role)
        self.namespaces[role] = namespace  # registered first so close() removes it on failure
        check(run(["ip", "netns", "add", name], timeout=DEFAULT_TIMEOUT), f"creating {role}")
        namespace.set_up("lo")
        return namespace

    def spawn(self, namespace: Namespace, argv: Sequence[str], **popen_kwargs) -> subprocess.Popen:
        """Start a background process inside ``namespace``; ended by :meth:`close`."""
        process = subprocess.Popen(["ip", "netns", "exec", namespace.name, *argv],
                                   env=_env(), stdin=subprocess.DEVNULL, **popen_kwargs)
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen, grace: float = 1.0) -> None:
        """End one background process this session started: SIGTERM, then SIGKILL."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    def close(self) -> list[str]:
        """End our processes and delete our namespaces; returns problems (never raises)."""
        problems: list[str] = []
        if self.closed:
            return problems
        self.closed = True
        for process in self._processes:
            try:
                self.stop(process)
            except Exception as exc:  # cleanup must go on whatever one step did
                problems.append(f"stopping pid {process.pid}: {exc}")
        for namespace in reversed(list(self.namespaces.values())):
            try:
                problems += delete_namespace(namespace.name)
            except Exception as exc:
                problems.append(f"deleting {namespace.name}: {exc}")
        return problems

    def leftovers(self) -> list[str]:
        """Namespaces or /etc/netns entries of this session that still exist."""
        names = [n for n in list_namespaces() if n.startswith(self.prefix)]
        if NETNS_ETC.is_dir():
            names += [p.name for p in NETNS_ETC.iterdir() if p.name.startswith(self.prefix)]
        return sorted(set(names))


REQUIRED_TOOLS = ("ip", "iptables", "iptables-restore", "iptables-save", "sysctl", "ping", "nc")


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """``(True, why)`` if the lab can run here, else ``(False, reason)``.

    Needs Linux, root, the tools in :data:`REQUIRED_TOOLS`, and a kernel that lets us
    create a namespace, a bridge and a veth pair in it, and use iptables nat inside it.
    The check builds a throwaway namespace and removes it again.
    """
    if not sys.platform.startswith("linux"):
        return False, f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return False, "the lab needs root (network namespaces, iptables); not running as root"
    missing = [tool for tool in REQUIRED_TOOLS if which(tool) is None]
    if missing:
        return False, f"missing tools: {', '.join(missing)}"
    try:
        with NetnsSession() as session:
            probe = session.namespace("probe")
            other = session.namespace("probe2")
            probe.add_bridge("br-probe")
            add_veth(probe, "veth-a", other, "veth-b")
            probe.check(["iptables", "-t", "nat", "-L", "-n"])
            probe.iptables_restore("*nat\n:POSTROUTING ACCEPT [0:0]\n"
                                   "-A POSTROUTING -s 192.0.2.0/24 -o veth-a -j MASQUERADE\nCOMMIT\n")
            hosts = probe.check(["cat", "/etc/hosts"]).stdout
            if "localhost" not in hosts:
                return False, "ip netns exec does not bind-mount /etc/netns/<name>/hosts"
    except CommandFailed as failed:
        return False, f"network namespaces unusable here: {failed}"
    except OSError as exc:
        return False, f"network namespaces unusable here: {exc}"
    return True, "root; ip netns, bridges, veth pairs and iptables nat work"
