"""A real OpenSSH server per lab node, and the keys that go with it.

Each node's sshd is the system's ``/usr/sbin/sshd`` started inside the node's network
namespace with a configuration of its own, written into the lab's state folder: it
listens on the node's own address, port 22, with a host key generated for this lab,
accepts only the lab's own client key for root (public key only, no password, no PAM),
and logs to a file of the lab's. Nothing under /etc/ssh is read or changed.

sshd insists on its privilege-separation folder (``/run/sshd`` on Debian); when it is
missing it is created, and :func:`created_privsep_dir` says so, so that ``lab down``
removes it again.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lab import netns

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def available() -> tuple[bool, str]:
    if not Path(SSHD).is_file():
        return False, (f"{SSHD} is missing: install openssh-server (apt-get install openssh-server, "
                       "or make install as root)")
    if shutil.which("ssh-keygen") is None:
        return False, "ssh-keygen is missing: install openssh-client"
    return True, "sshd and ssh-keygen are installed"


def generate_key(path: Path, comment: str) -> Path:
    """A new ed25519 key pair at ``path`` (and ``path.pub``), without a passphrase."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + ".pub")):
        if stale.exists():
            stale.unlink()
    result = netns.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                       timeout=20)
    netns.check(result, f"generating {path.name}")
    return path


def public_key(path: Path) -> str:
    return path.with_name(path.name + ".pub").read_text().strip()


def ensure_privsep_dir() -> bool:
    """Create sshd's privilege-separation folder if missing; True if we created it."""
    if PRIVSEP_DIR.is_dir():
        return False
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    return True


def config_text(*, listen: str, host_key: Path, authorized_keys: Path) -> str:
    return "\n".join([
        "# Written by stackdoc's practice lab (lab/sshd.py); removed by `lab down`.",
        "Port 22",
        f"ListenAddress {listen}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized_keys}",
        # the state folder belongs to whoever checked out the repository
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        # PAM's session modules (loginuid, systemd) fail inside containers; keys need no PAM
        "UsePAM no",
        # The nodes share the host's files, but the host's ~/.bashrc (its pyenv, its
        # aliases) is not theirs: bash reads it for sshd's commands only at level 1.
        "SetEnv SHLVL=1",
        "PrintMotd no",
        "PrintLastLog no",
        "PidFile none",
        "MaxStartups 50",
        "LogLevel ERROR",
        "",
    ])


def start(session: netns.NetnsSession, node: netns.Namespace, config: Path, log: Path):
    """sshd in the foreground inside ``node`` (the session ends it); checked first with -t."""
    netns.check(node.exec([SSHD, "-t", "-f", str(config)], timeout=10), f"sshd -t on {node.role}")
    with open(log, "ab") as handle:
        return session.spawn(node, [SSHD, "-D", "-e", "-f", str(config)],
                             stdout=subprocess.DEVNULL, stderr=handle)


def wait_listening(node: netns.Namespace, process, timeout: float = 10.0) -> None:
    """Until something listens on tcp 22 inside ``node``; raises if sshd died or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd on {node.role} exited with status {process.returncode}")
        listening = node.exec(["ss", "-Hltn", "sport", "=", ":22"], timeout=5).stdout
        if listening.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd on {node.role} is not listening after {timeout:g} s")


def remove_privsep_dir() -> bool:
    """Remove /run/sshd when empty (our own doing); never a folder with anything in it."""
    try:
        os.rmdir(PRIVSEP_DIR)
        return True
    except OSError:
        return False
