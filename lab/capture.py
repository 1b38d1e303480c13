"""Evidence from the running testbed, exactly as a terminal would have shown it.

The seed's troubleshooting is a conversation with the machines: ``ip route`` on
network-node, ``tcpdump -i br1`` on gks-061, ``iptables -L -t nat -v``, a ping from the
VM, ``nc`` to the floating IP. This module runs those real commands inside the lab's
namespaces and returns

* transcripts: prompt lines naming the node (``root@network-node:~# ip route``, and the
  RHEL form ``[root@gks-061 ~]# ip route`` for the physical node) followed by what the
  command printed - stdout and stderr in terminal order;
* probe results: what the kernel did with a ping or a TCP connect (succeeded or not),
  always bounded in packet count and time;
* tcpdump captures taken while a probe runs, ended with SIGINT like a person's ^C.

Transcripts can be written as ``<evidence>/<node>/<command-slug>.txt`` (one file per
command) or as ``<dir>/<node>.txt`` (one file per node, the fixture layout).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from lab.testbed import (COMPUTE, GATEWAY, GATEWAY_TO_FLOATING, NETWORK, PROBES, ROLES, VM,
                         VM_TO_OUTSIDE, Testbed)

EVIDENCE_COMMANDS = (
    "ip route",
    "ip addr show",
    "iptables -L -t nat -v",
    "iptables -L FORWARD -v",
    "iptables-save",
    "sysctl net.ipv4.ip_forward",
)
"""What the seed asks a person to look at on every node."""

COMMAND_TIMEOUT = 10.0


@dataclass(frozen=True)
class Step:
    """One command typed at a node's prompt and what the terminal showed after it."""

    role: str
    hostname: str
    prompt: str
    command: str
    output: str
    rc: int = 0

    @property
    def text(self) -> str:
        out = self.output
        if out and not out.endswith("\n"):
            out += "\n"
        return f"{self.prompt}{self.command}\n{out}"


@dataclass
class NodeTranscript:
    """Everything typed on one node, in order."""

    role: str
    hostname: str
    steps: list[Step] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(step.text for step in self.steps)


def run_command(tb: Testbed, role: str, command: str, *, timeout: float = COMMAND_TIMEOUT) -> Step:
    """Run ``command`` on ``role`` and return it as a transcript :class:`Step`."""
    result = tb.run(role, command, timeout=timeout, merge_stderr=True)
    output = result.stdout
    if result.timed_out:
        output += "^C\n"   # what a person would have had to do
    return Step(role, tb.hostname(role), tb.prompt(role), command, output, result.rc)


def capture_node(tb: Testbed, role: str,
                 commands: Sequence[str] = EVIDENCE_COMMANDS) -> NodeTranscript:
    """Run ``commands`` on one node and return its transcript."""
    transcript = NodeTranscript(role, tb.hostname(role))
    transcript.steps += [run_command(tb, role, command) for command in commands]
    return transcript


def capture_all(tb: Testbed, roles: Sequence[str] = ROLES,
                commands: Sequence[str] = EVIDENCE_COMMANDS) -> dict[str, NodeTranscript]:
    """:func:`capture_node` for every node; keys are host names (``network-node``, ``gks-061``)."""
    return {tb.hostname(role): capture_node(tb, role, commands) for role in roles}


# --------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class ProbeResult:
    """What the kernel did with one probe: ``succeeded`` plus the evidence of it."""

    probe: str
    step: Step
    succeeded: bool
    summary: str
    elapsed: float
    timed_out: bool = False

    @property
    def transcript(self) -> str:
        return self.step.text


_PING_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received[^\n]*")


def ping_outside(tb: Testbed, *, count: int = 2, wait: int = 1,
                 interval: float | None = 0.2) -> ProbeResult:
    """``ping -c N -W 1 <outside host>`` from the VM - the seed's "ping www.google.com".

    Succeeds when at least one echo reply came back. ``interval`` below 1 s is allowed
    for root and keeps a failing probe short (count * interval + wait seconds).
    """
    if not 1 <= count <= 20:
        raise ValueError("count is bounded to 1..20 packets")
    spacing = f" -i {interval:g}" if interval else ""
    command = f"ping -c {count}{spacing} -W {wait} {tb.names.outside_ip}"
    limit = count * (interval or 1.0) + wait + 3
    started = time.monotonic()
    result = tb.run(VM, command, timeout=limit)
    elapsed = time.monotonic() - started
    stats = _PING_STATS.search(result.stdout)
    received = int(stats.group(2)) if stats else 0
    step = Step(VM, tb.hostname(VM), tb.prompt(VM), command,
                result.stdout + ("^C\n" if result.timed_out else ""), result.rc)
    summary = stats.group(0) if stats else (result.stdout.strip().splitlines() or ["no output"])[-1]
    return ProbeResult(VM_TO_OUTSIDE, step, result.ok and received > 0, summary, elapsed,
                       result.timed_out)


def connect_floating(tb: Testbed, *, port: int | None = None, wait: int = 2) -> ProbeResult:
    """``nc -zv -w 2 <floating IP> 22`` from the physical node - the seed's second problem.

    Succeeds when the TCP handshake with the listener in the VM completed.
    """
    port = port or tb.names.vm_service_port
    command = f"nc -zv -w {wait} {tb.names.floating_ip} {port}"
    started = time.monotonic()
    result = tb.run(GATEWAY, command, timeout=wait + 3)
    elapsed = time.monotonic() - started
    step = Step(GATEWAY, tb.hostname(GATEWAY), tb.prompt(GATEWAY), command,
                result.stdout + ("^C\n" if result.timed_out else ""), result.rc)
    summary = (result.stdout.strip().splitlines() or [f"rc={result.rc}"])[-1]
    return ProbeResult(GATEWAY_TO_FLOATING, step, result.ok, summary, elapsed, result.timed_out)


PROBE_FUNCTIONS: dict[str, Callable[..., ProbeResult]] = {
    VM_TO_OUTSIDE: ping_outside,
    GATEWAY_TO_FLOATING: connect_floating,
}


def run_probe(tb: Testbed, probe: str, **options) -> ProbeResult:
    return PROBE_FUNCTIONS[probe](tb, **options)


def run_probes(tb: Testbed, probes: Iterable[str] = PROBES) -> dict[str, ProbeResult]:
    """Run probes side by side (they use separate flows) and return them by name."""
    probes = list(probes)
    with ThreadPoolExecutor(max_workers=max(1, len(probes))) as pool:
        futures = {probe: pool.submit(run_probe, tb, probe) for probe in probes}
        return {probe: future.result() for probe, future in futures.items()}


def record_session(tb: Testbed, order: Sequence[str], fault: str | None) -> tuple[str, dict]:
    """One terminal session across the lab's nodes, in ``order``: "state" runs the
    course's state commands on every node, "probes" the probes, and "plant" / "mend"
    put ``fault`` in or take it out behind the transcript's back (as an instructor does
    behind a student's). The session's text, and what its last probes did."""
    steps: list[Step] = []
    probes = {}
    for what in order:
        if what == "plant":
            tb.inject(fault)
        elif what == "mend":
            tb.fix(fault)
        elif what == "state":
            for role in ROLES:
                steps += [run_command(tb, role, command) for command in EVIDENCE_COMMANDS]
        elif what == "probes":
            for name, result in run_probes(tb).items():
                steps.append(result.step)
                probes[name] = {"succeeded": result.succeeded, "summary": result.summary}
        else:
            raise ValueError(f"unknown step {what!r}: plant, mend, state or probes")
    return "".join(step.text for step in steps), probes


# --------------------------------------------------------------------------- tcpdump
_TCPDUMP_STATS = re.compile(r"^\d+ packets? captured$", re.M)


@dataclass(frozen=True)
class TcpdumpCapture:
    """A tcpdump run on one interface while something happened."""

    step: Step
    interface: str
    packets: tuple[str, ...]
    interrupted: bool   # ended by ^C (SIGINT) rather than by its packet count

    @property
    def transcript(self) -> str:
        return self.step.text


class Tcpdump:
    """``tcpdump -l -n -c N -i IFACE FILTER`` on one node, started and ^C-ed by us.

    Bounded twice: it stops by itself after ``-c max_packets`` packets, and gets SIGINT
    (a person's ^C) ``time_limit`` seconds after it started even if nobody calls
    :meth:`stop` - then SIGKILL if it still lingers. ``-l`` keeps its output
    line-buffered so packets and its messages come out in terminal order.

    Use :meth:`start`/:meth:`stop`, or ``with Tcpdump(...) as dump:`` and read
    ``dump.capture`` afterwards.
    """

    def __init__(self, tb: Testbed, role: str, interface: str, expression: str = "icmp", *,
                 max_packets: int = 20, time_limit: float = 10.0):
        if not 1 <= max_packets <= 1000:
            raise ValueError("max_packets is bounded to 1..1000")
        self.tb, self.role, self.interface = tb, role, interface
        self.command = f"tcpdump -l -n -c {max_packets} -i {interface} {expression}".strip()
        self.time_limit = time_limit
        self.capture: TcpdumpCapture | None = None
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._deadline: threading.Timer | None = None
        self._interrupted = False

    def __enter__(self) -> "Tcpdump":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, ready_timeout: float = 5.0) -> "Tcpdump":
        node = self.tb.node(self.role)
        self._process = self.tb.session.spawn(node, shlex.split(self.command), stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._deadline = threading.Timer(self.time_limit, self._interrupt)
        self._deadline.daemon = True
        self._deadline.start()
        if not self._listening.wait(ready_timeout):
            self.stop()
            raise RuntimeError(f"tcpdump on {self.role} did not start: {''.join(self._lines)!r}")
        return self

    def _read(self) -> None:
        for line in self._process.stdout:
            self._lines.append(line)
            if line.startswith("listening on"):
                self._listening.set()
        self._listening.set()  # exited: unblock start()

    def _interrupt(self) -> None:
        """^C: tcpdump prints its packet counts and exits."""
        if self._process.poll() is None:
            self._interrupted = True
            try:
                os.kill(self._process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def stop(self, settle: float = 0.2) -> TcpdumpCapture:
        """Let late packets arrive, then ^C tcpdump and collect what it printed."""
        if self.capture:
            return self.capture
        process = self._process
        if process.poll() is None:
            time.sleep(settle)
        self._deadline.cancel()
        self._interrupt()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.tb.session.stop(process)
        self._reader.join(timeout=3)
        text = "".join(self._lines)
        if self._interrupted:
            stats = _TCPDUMP_STATS.search(text)
            at = stats.start() if stats else len(text)
            # On SIGINT tcpdump prints a newline before its counts; on a terminal that
            # newline ends the line where the tty echoed "^C".
            if text[:at].endswith("\n\n"):
                text = text[:at - 1] + "^C\n" + text[at:]
            else:
                text = text[:at] + "^C\n" + text[at:]
        packets = tuple(line.rstrip("\n") for line in self._lines
                        if re.match(r"^\d\d:\d\d:\d\d\.\d+ ", line))
        step = Step(self.role, self.tb.hostname(self.role), self.tb.prompt(self.role),
                    self.command, text, process.returncode or 0)
        self.capture = TcpdumpCapture(step, self.interface, packets, self._interrupted)
        return self.capture


def tcpdump_during(tb: Testbed, taps: Sequence[tuple[str, str, str]], action: Callable[[], object], *,
                   max_packets: int = 20, time_limit: float = 10.0):
    """Run tcpdump on each ``(role, interface, expression)`` while ``action()`` runs.

    Returns ``(action's result, [TcpdumpCapture, ...])`` in the order of ``taps``.
    """
    dumps = [Tcpdump(tb, role, iface, expr, max_packets=max_packets, time_limit=time_limit)
             for role, iface, expr in taps]
    started: list[Tcpdump] = []
    try:
        for dump in dumps:
            started.append(dump.start())
        outcome = action()
    finally:
        captures = [dump.stop() for dump in started]
    return outcome, captures


# --------------------------------------------------------------------------- a session
@dataclass
class CaseRecord:
    """One recorded troubleshooting session: per-node transcripts and the probe outcomes."""

    transcripts: dict[str, NodeTranscript]
    probes: dict[str, ProbeResult]


def record_case(tb: Testbed, *, ping_count: int = 2) -> CaseRecord:
    """The seed's troubleshooting session on this testbed, recorded per node.

    1. ping the outside host from the VM while tcpdump watches compute-1's bridge, the
       network node's default-route interface, and the physical node's bridge and uplink;
    2. ``nc`` to the floating IP port 22 from the physical node while tcpdump watches
       its bridge and uplink;
    3. the standard state commands (:data:`EVIDENCE_COMMANDS`) on every node.

    Transcripts are keyed by host name (``network-node``, ``gks-061`` ...).
    """
    n = tb.names
    transcripts = {tb.hostname(role): NodeTranscript(role, tb.hostname(role)) for role in ROLES}

    def add(step: Step) -> None:
        transcripts[step.hostname].steps.append(step)

    icmp_taps = [(COMPUTE, n.compute_bridge, "icmp"),
                 (NETWORK, tb.default_route_iface, "icmp"),
                 (GATEWAY, n.gateway_bridge, "icmp"),
                 (GATEWAY, n.gateway_uplink, "icmp")]
    ping, dumps = tcpdump_during(tb, icmp_taps, lambda: ping_outside(tb, count=ping_count))
    add(ping.step)
    for dump in dumps:
        add(dump.step)

    tcp_taps = [(GATEWAY, n.gateway_bridge, f"tcp port {n.vm_service_port}"),
                (GATEWAY, n.gateway_uplink, f"tcp port {n.vm_service_port}")]
    connect, dumps = tcpdump_during(tb, tcp_taps, lambda: connect_floating(tb))
    for dump in dumps:
        add(dump.step)
    add(connect.step)

    for role in ROLES:
        for command in EVIDENCE_COMMANDS:
            add(run_command(tb, role, command))
    return CaseRecord(transcripts, {VM_TO_OUTSIDE: ping, GATEWAY_TO_FLOATING: connect})


# --------------------------------------------------------------------------- files
def command_slug(command: str) -> str:
    """A file name for a command: ``iptables -L -t nat -v`` -> ``iptables-L-t-nat-v``."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", command).strip("-.")
    return slug[:120] or "command"


def write_evidence(transcripts: Mapping[str, NodeTranscript] | Iterable[NodeTranscript],
                   evidence_dir: str | Path) -> list[Path]:
    """One file per command: ``<evidence_dir>/<node>/<command-slug>.txt``.

    Each file holds the prompt line and the output. A command typed twice on a node
    (before and after a fix) gets ``-2``, ``-3`` ... suffixes, in order.
    """
    nodes = transcripts.values() if isinstance(transcripts, Mapping) else transcripts
    written = []
    for node in nodes:
        directory = Path(evidence_dir) / node.hostname
        directory.mkdir(parents=True, exist_ok=True)
        seen: dict[str, int] = {}
        for step in node.steps:
            slug = command_slug(step.command)
            seen[slug] = seen.get(slug, 0) + 1
            name = slug if seen[slug] == 1 else f"{slug}-{seen[slug]}"
            path = directory / f"{name}.txt"
            path.write_text(step.text)
            written.append(path)
    return written


def write_node_transcripts(transcripts: Mapping[str, NodeTranscript] | Iterable[NodeTranscript],
                           directory: str | Path) -> list[Path]:
    """One file per node: ``<directory>/<node>.txt`` holding its whole transcript."""
    nodes = transcripts.values() if isinstance(transcripts, Mapping) else transcripts
    Path(directory).mkdir(parents=True, exist_ok=True)
    written = []
    for node in nodes:
        path = Path(directory) / f"{node.hostname}.txt"
        path.write_text(node.text)
        written.append(path)
    return written
