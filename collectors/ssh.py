"""Running the planned commands on one node: over SSH (paramiko) or on this machine.

One SSH connection per host, one channel per command. Everything is bounded: the TCP
connect and the SSH handshake (``connect_timeout``), each command
(``command_timeout``: then it is interrupted, as a person's ^C), each command's output
(``max_output`` bytes: the rest is not read), and the host as a whole
(``host_timeout``: the commands not started by then are not run).

What a remote shell sees is built here only: every word of a command is
``shlex.quote``-d, behind ``env PATH=... LC_ALL=C`` (sbin tools, C-locale output), and
``sudo -n`` in front only when the inventory says ``ansible_become``. The commands are
the knowledge's read-only allowlisted ones (collectors/knowledge.py).

Host keys are checked against known_hosts (the inventory's ``UserKnownHostsFile``, else
``~/.ssh/known_hosts``): an unknown key or a changed one refuses the host, with the
fingerprint and what to do; ``accept_new`` adds an unknown key (OpenSSH's
``StrictHostKeyChecking=accept-new``) and still refuses a changed one. Passwords and
passphrases never appear in a message: a key that needs a passphrase is refused with
the advice to load it into ssh-agent.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from collectors.inventory import Host
from collectors.knowledge import Command

REMOTE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# For each word: a program (no "/") is printed if the shell finds it, a path if it exists.
_PROBE_SCRIPT = ('for a in "$@"; do case "$a" in '
                 '/*) [ -e "$a" ] && printf "%s\\n" "$a";; '
                 '*) command -v "$a" >/dev/null 2>&1 && printf "%s\\n" "$a";; '
                 'esac; done; exit 0')

MISSING_RC = 127

# paramiko logs handshake errors at ERROR; every one of them reaches the person as a
# HostFailure instead, so its log stays out of the terminal.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False


class HostFailure(Exception):
    """The host cannot be collected from at all; ``kind`` says which way, the text what to do."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass
class Output:
    """What one command did on one node."""

    command: Command
    text: str = ""
    rc: int | None = None
    status: str = "ok"  # ok failed timeout interrupted truncated binary missing lost refused not-run
    note: str = ""
    elapsed: float = 0.0
    size: int = 0
    file: str | None = None   # where the transcript was written, relative to the folder


@dataclass
class Limits:
    command_timeout: float = 10.0
    host_timeout: float = 60.0
    connect_timeout: float = 5.0
    max_output: int = 8_000_000

    @classmethod
    def from_knowledge(cls, limits: dict) -> "Limits":
        return cls(float(limits["command_timeout"]), float(limits["host_timeout"]),
                   float(limits["connect_timeout"]), int(limits["max_output"]))


def fingerprint(key) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_host_name(host: Host) -> str:
    return host.address if host.port == 22 else f"[{host.address}]:{host.port}"


def remote_line(argv, become: bool) -> str:
    """The command line a remote shell runs: every word quoted."""
    words = ["env", f"PATH={REMOTE_PATH}", "LC_ALL=C", *argv]
    if become:
        words = ["sudo", "-n", *words]
    return " ".join(shlex.quote(w) for w in words)


def classify(output: Output, data: bytes, limits: Limits) -> None:
    """Fill ``text``/``status``/``note`` of a finished command from its raw bytes."""
    output.size = len(data)
    if b"\x00" in data[:65536] or _mostly_binary(data[:65536]):
        output.status, output.text = "binary", ""
        output.note = f"printed {len(data)} bytes of binary data; not kept"
        return
    text = data.decode("utf-8", errors="replace")
    if output.status == "truncated":
        cut = text.rfind("\n")
        text = text[:cut + 1] if cut >= 0 else ""
        output.note = f"printed more than {limits.max_output} bytes; the rest was not read"
    output.text = text
    if output.status == "ok" and output.rc == MISSING_RC and "not found" in text:
        output.status, output.note = "missing", f"{output.command.program}: command not found on the node"
    elif output.status == "ok" and output.rc not in (0, None):
        output.status = "failed"
        output.note = f"exit status {output.rc}"
        if text.startswith("sudo:") and "password" in text:
            output.status = "refused"
            output.note += ": sudo asks for a password; ansible_become needs passwordless sudo (sudo -n)"


def _mostly_binary(sample: bytes) -> bool:
    if not sample:
        return False
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32 or b == 127)
    return controls / len(sample) > 0.1


# --------------------------------------------------------------------------- known_hosts
_KNOWN_HOSTS_LOCK = threading.Lock()


class _HostKeyPolicy:
    """Unknown key: refuse with its fingerprint, or (accept_new) add it to known_hosts."""

    def __init__(self, host: Host, known_hosts: Path, accept_new: bool):
        self.host, self.known_hosts, self.accept_new = host, known_hosts, accept_new
        self.added: str | None = None

    def missing_host_key(self, client, hostname, key):
        what = f"{key.get_name()} {fingerprint(key)}"
        if not self.accept_new:
            raise HostFailure("host-key-unknown", (
                f"host key not known: {_where(self.host)} offers {what}, which is not in "
                f"{self.known_hosts}. Check that fingerprint on the node (ssh-keygen -lf "
                f"/etc/ssh/ssh_host_{key.get_name().replace('ssh-', '').split('-')[0]}_key.pub), "
                f"then add it (ssh-keyscan -p {self.host.port} {self.host.address} >> "
                f"{self.known_hosts}) or collect again with --accept-new"))
        entry = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _KNOWN_HOSTS_LOCK:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.known_hosts, "a", encoding="utf-8") as handle:
                handle.write(entry)
        self.added = f"added {what} for {hostname} to {self.known_hosts}"


def _where(host: Host) -> str:
    return f"{host.name} ({host.address} port {host.port})"


# --------------------------------------------------------------------------- SSH
class SSHNode:
    """One SSH connection to one host; :meth:`run` opens a channel per command."""

    def __init__(self, host: Host, limits: Limits, *, known_hosts: Path | None = None,
                 accept_new: bool = False):
        self.host, self.limits = host, limits
        self.known_hosts = Path(os.path.expanduser(
            str(known_hosts or host.known_hosts or "~/.ssh/known_hosts")))
        self.accept_new = accept_new
        self.client = None
        self.notes: list[str] = []
        self.stop = threading.Event()   # set by the collection on Ctrl-C: end the running command

    @property
    def prompt(self) -> str:
        user = self.host.user or _local_user()
        return f"{user}@{self.host.name}:~{'#' if user == 'root' else '$'} "

    @property
    def shown_prefix(self) -> str:
        return "sudo " if self.host.become else ""

    def connect(self) -> None:
        import paramiko
        host, limits = self.host, self.limits
        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            try:
                client.load_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException, ValueError) as error:
                raise HostFailure("known-hosts-unreadable",
                                  f"{self.known_hosts} cannot be read: {error}") from None
        policy = _HostKeyPolicy(host, self.known_hosts, self.accept_new)
        client.set_missing_host_key_policy(policy)
        sock = None
        pkey = self._load_key() if host.key_file else None
        try:
            if host.proxy_command:
                sock = paramiko.ProxyCommand(host.proxy_command.replace("%h", host.address)
                                             .replace("%p", str(host.port)))
            client.connect(host.address, port=host.port, username=host.user or _local_user(),
                           password=host.password, pkey=pkey,
                           timeout=limits.connect_timeout, banner_timeout=limits.connect_timeout,
                           auth_timeout=limits.connect_timeout, channel_timeout=limits.connect_timeout,
                           sock=sock, allow_agent=True, look_for_keys=host.key_file is None)
        except HostFailure:
            client.close()
            raise
        except paramiko.BadHostKeyException as error:
            client.close()
            raise HostFailure("host-key-changed", (
                f"HOST KEY CHANGED: {_where(host)} offers {error.key.get_name()} "
                f"{fingerprint(error.key)}, but {self.known_hosts} has "
                f"{fingerprint(error.expected_key)}. Someone may be intercepting the "
                f"connection, or the node was reinstalled. Not collected. If the change is "
                f"expected: ssh-keygen -R '{_known_host_name(host)}' -f {self.known_hosts}, "
                f"then collect again")) from None
        except paramiko.PasswordRequiredException:
            # only keys found in ~/.ssh get here: a named key was loaded above
            client.close()
            raise HostFailure("key-needs-passphrase", (
                f"{_where(host)}: the keys in ~/.ssh are protected by a passphrase; load "
                f"the right one into ssh-agent (ssh-add) and collect again")) from None
        except paramiko.AuthenticationException:
            client.close()
            tried = ", ".join(filter(None, [
                f"key {host.key_file}" if host.key_file else "keys in ~/.ssh and ssh-agent",
                "a password" if host.password else None]))
            raise HostFailure("auth-failed", (
                f"authentication failed on {_where(host)} as {host.user or _local_user()} "
                f"(tried {tried}); check ansible_user and ansible_ssh_private_key_file")) from None
        except (socket.timeout, TimeoutError):
            client.close()
            raise HostFailure("timeout", (
                f"{_where(host)} did not answer within {limits.connect_timeout:g} s")) from None
        except (paramiko.SSHException, EOFError) as error:
            client.close()
            text = str(error) or type(error).__name__
            if any(w in text.lower() for w in ("timeout", "timed out", "banner", "no existing session")):
                # paramiko's words for a peer that accepted TCP but never spoke SSH in time
                raise HostFailure("timeout", (
                    f"{_where(host)} did not complete the SSH handshake within "
                    f"{limits.connect_timeout:g} s ({text})")) from None
            raise HostFailure("ssh-failed", f"{_where(host)}: SSH failed: {text}") from None
        except OSError as error:
            client.close()
            inner = list(getattr(error, "errors", {}).values())   # paramiko's NoValidConnectionsError
            reason = (inner[0].strerror if inner and inner[0].strerror else None) or error.strerror or str(error)
            raise HostFailure("unreachable", f"{_where(host)} cannot be reached: {reason}") from None
        if policy.added:
            self.notes.append(policy.added)
        self.client = client

    def _load_key(self):
        import paramiko
        path = self.host.key_file
        try:
            try:
                return paramiko.PKey.from_path(path)
            except TypeError as error:   # paramiko/cryptography's word for a locked key
                if "encrypted" in str(error) or "password" in str(error):
                    raise paramiko.PasswordRequiredException(str(error)) from None
                raise ValueError(str(error)) from None
        except paramiko.PasswordRequiredException:
            raise HostFailure("key-needs-passphrase", (
                f"{_where(self.host)}: the key {path} is protected by a passphrase; load it "
                f"into ssh-agent (ssh-add {path}) and leave ansible_ssh_private_key_file out")) from None
        except FileNotFoundError:
            raise HostFailure("key-unreadable", f"{_where(self.host)}: the key {path} does not exist") from None
        except (OSError, ValueError, paramiko.SSHException) as error:
            raise HostFailure("key-unreadable", f"{_where(self.host)}: the key {path} cannot be used: "
                              f"{getattr(error, 'strerror', None) or error}") from None

    def probe(self, words: list[str]) -> set[str] | None:
        """Which of these programs and paths exist on the node (None: could not tell)."""
        if not words:
            return set()
        argv = ["sh", "-c", _PROBE_SCRIPT, "stackdoc-probe", *words]
        result = self.run(Command(tuple(argv), "probe"), self.limits.command_timeout)
        if result.status not in ("ok",):
            return None
        return {line.strip() for line in result.text.splitlines() if line.strip()}

    def run(self, command: Command, timeout: float) -> Output:
        output = Output(command)
        transport = self.client.get_transport() if self.client else None
        if transport is None or not transport.is_active():
            output.status, output.note = "lost", "the connection to the node was lost"
            return output
        started = time.monotonic()
        try:
            channel = transport.open_session(timeout=self.limits.connect_timeout)
        except Exception as error:  # paramiko raises SSHException or EOFError here
            output.status = "lost"
            output.note = f"the node refused a new channel: {error or type(error).__name__}"
            return output
        data = bytearray()
        try:
            self._exchange(channel, command, timeout, started, output, data, transport)
        except Exception as error:  # paramiko: SSHException, EOFError, socket errors
            if transport.is_active():
                output.status = "refused"
                output.note = f"the node would not run it: {error or type(error).__name__}"
                output.elapsed = time.monotonic() - started
                return output
            output.status, output.rc = "lost", None
        finally:
            channel.close()
        output.elapsed = time.monotonic() - started
        if output.status == "lost":
            output.text = bytes(data).decode("utf-8", errors="replace")
            output.note = "the connection was lost during this command"
            return output
        classify(output, bytes(data), self.limits)
        if output.status in ("timeout", "interrupted"):
            output.note = (f"still running after {timeout:g} s; interrupted" if output.status == "timeout"
                           else "interrupted by Ctrl-C while it ran")
            output.text = output.text + ("" if output.text.endswith("\n") or not output.text else "\n") + "^C\n"
        return output

    def _exchange(self, channel, command: Command, timeout: float, started: float, output: Output,
                  data: bytearray, transport) -> None:
        """Run one command on its channel, reading at most max_output bytes until the deadline."""
        channel.set_combine_stderr(True)   # stdout and stderr in terminal order
        channel.exec_command(remote_line(command.argv, self.host.become))
        channel.shutdown_write()
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                output.status = "timeout"
                break
            if self.stop.is_set():
                output.status = "interrupted"
                break
            channel.settimeout(min(left, 0.5))
            try:
                chunk = channel.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            room = self.limits.max_output - len(data)
            if len(chunk) >= room:
                data += chunk[:room]
                output.status = "truncated"
                break
            data += chunk
        if output.status == "ok":
            if channel.status_event.wait(min(2.0, max(0.1, deadline - time.monotonic()))):
                output.rc = channel.recv_exit_status()
            if not transport.is_active() or output.rc in (None, -1):
                output.status, output.rc = "lost", None

    def close(self) -> None:
        if self.client:
            self.client.close()
            self.client = None


# --------------------------------------------------------------------------- local
class LocalNode:
    """This machine, run the same way (no shell: the words go straight to the program)."""

    def __init__(self, name: str, limits: Limits):
        self.limits = limits
        self.host = Host(name=name, address="localhost", user=_local_user())
        self.notes: list[str] = []
        self.stop = threading.Event()

    @property
    def prompt(self) -> str:
        user = self.host.user
        return f"{user}@{self.host.name}:~{'#' if user == 'root' else '$'} "

    shown_prefix = ""

    def connect(self) -> None:
        return None

    def probe(self, words: list[str]) -> set[str] | None:
        import shutil
        env_path = os.environ.get("PATH", "") + os.pathsep + REMOTE_PATH.replace(":", os.pathsep)
        return {w for w in words if (os.path.exists(w) if w.startswith("/") else shutil.which(w, path=env_path))}

    def run(self, command: Command, timeout: float) -> Output:
        output = Output(command)
        env = dict(os.environ, LC_ALL="C", PATH=os.environ.get("PATH", "") + ":" + REMOTE_PATH)
        started = time.monotonic()
        try:
            process = subprocess.Popen(list(command.argv), stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        except FileNotFoundError:
            output.status, output.rc = "missing", MISSING_RC
            output.note = f"{command.program}: command not found on this machine"
            return output
        data = bytearray()
        reader = threading.Thread(target=_drain, args=(process, data, self.limits.max_output, output))
        reader.start()
        deadline = time.monotonic() + timeout
        while reader.is_alive() and time.monotonic() < deadline and not self.stop.is_set():
            reader.join(min(0.2, max(0.0, deadline - time.monotonic())))
        if reader.is_alive():
            output.status = "interrupted" if self.stop.is_set() else "timeout"
        if process.poll() is None:
            process.kill()
        reader.join(5)
        process.wait(5)
        output.rc = process.returncode if output.status == "ok" else None
        output.elapsed = time.monotonic() - started
        classify(output, bytes(data), self.limits)
        if output.status in ("timeout", "interrupted"):
            output.note = (f"still running after {timeout:g} s; interrupted" if output.status == "timeout"
                           else "interrupted by Ctrl-C while it ran")
            output.text += "^C\n"
        return output

    def close(self) -> None:
        return None


def _drain(process, data: bytearray, limit: int, output: Output) -> None:
    while True:
        chunk = process.stdout.read1(65536) if hasattr(process.stdout, "read1") else process.stdout.read(65536)
        if not chunk:
            break
        room = limit - len(data)
        if len(chunk) >= room:
            data += chunk[:room]
            output.status = "truncated"
            process.kill()
            break
        data += chunk
    process.stdout.close()


def _local_user() -> str:
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container: say root's uid honestly
        return "root" if os.geteuid() == 0 else str(os.geteuid())
