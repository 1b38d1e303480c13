"""The chat under hostile load: concurrent maximum-size pastes on a busy machine.

Issue 9 found the server dying with SIGSEGV when six students pasted ~1 MB
``iptables -S`` listings at once (8 of 19 runs; 3 of 4 on a busy machine): durable-rules'
background thread raced the request threads inside its C engine. This benchmark does
what those students did, on purpose and bounded:

- the server is ``python app.py serve`` in a child process, on loopback only;
- ``BUSY_PROCESSES`` processes spin on the CPU for the whole run (a busy machine);
- ``STUDENTS`` students, each in their own session, post ``ROUNDS`` pastes of just
  under the paste limit (a nova-network node's nat table, ``iptables -t nat -S``, from
  benchmarks/gen_nova_nat.py) at the same moment, round after round;
- every request must be answered (HTTP 200 with a reply), the server must still be
  alive and answer /healthz at the end: otherwise the run fails (exit status 1).

The baseline, measured in the same run, is one such paste alone on the idle server;
reported are the concurrent replies' median and p95 against it, and the server's peak
memory.

    python -m benchmarks.bench_load        (or make bench)
"""
from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import gen_nova_nat
from benchmarks.bench_chat import _wait_until_up

ROOT = Path(__file__).resolve().parent.parent
STUDENTS = 6
ROUNDS = 3
BUSY_PROCESSES = os.cpu_count() or 2
TIME_LIMIT_S = 420
PASTE_LIMIT_BYTES = 1_000_000   # web.MAX_PASTE_BYTES


def maximum_paste() -> str:
    """``iptables -t nat -S`` of a network node with as many floating IPs as fit under
    the paste limit (iptables -S prints -P for policies, -N for user chains)."""
    floating = 2000
    while True:
        text = _listing_s(floating + 100)
        if len(text.encode()) > PASTE_LIMIT_BYTES - 2000:
            return _listing_s(floating)
        floating += 100


def _listing_s(floating_ips: int) -> str:
    lines = ["root@net01:~# iptables -t nat -S"]
    for line in gen_nova_nat.save_text(floating_ips).splitlines():
        if line.startswith(":"):
            chain, policy = line[1:].split()[:2]
            lines.append(f"-P {chain} {policy}" if policy != "-" else f"-N {chain}")
        elif line.startswith("-A"):
            lines.append(line)
    return "\n".join(lines) + "\n"


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _post(port: int, path: str, body=None, timeout: float = 300) -> tuple[int, dict, float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    connection.request("POST", path, body=json.dumps(body) if body is not None else "",
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload, time.perf_counter() - started


def _new_session(port: int) -> str:
    status, created, _ = _post(port, "/api/sessions")
    assert status == 201, created
    path = f"/api/sessions/{created['session']}/messages"
    _post(port, path, {"text": "why can't my VM ping google?"})
    return path


def _healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def run() -> dict:
    paste = maximum_paste()
    port = _free_port()
    failures: list[str] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen([sys.executable, "app.py", "serve", "--port", str(port),
                                   "--db", os.path.join(folder, "load.db")], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        burners: list[multiprocessing.Process] = []
        try:
            _wait_until_up(port, timeout=90)
            solo_path = _new_session(port)
            solo = [_post(port, solo_path, {"text": paste})[2] for _ in range(2)]
            paths = [_new_session(port) for _ in range(STUDENTS)]
            stop_at = time.time() + TIME_LIMIT_S
            burners = [multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True)
                       for _ in range(BUSY_PROCESSES)]
            for burner in burners:
                burner.start()
            started = time.perf_counter()
            for round_ in range(ROUNDS):
                if time.time() > stop_at:
                    failures.append(f"time limit reached before round {round_ + 1}")
                    break
                gate = threading.Barrier(STUDENTS)

                def student(path: str) -> None:
                    gate.wait()  # all at the same moment
                    try:
                        status, reply, seconds = _post(port, path, {"text": paste})
                    except Exception as error:  # a dropped connection is the failure sought
                        failures.append(f"round {round_ + 1}: {type(error).__name__}: {error}")
                        return
                    if status != 200 or not reply.get("reply"):
                        failures.append(f"round {round_ + 1}: HTTP {status}: {str(reply)[:120]}")
                    else:
                        latencies.append(seconds)

                threads = [threading.Thread(target=student, args=(path,)) for path in paths]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(TIME_LIMIT_S)
            elapsed = time.perf_counter() - started
            alive = server.poll() is None and _healthy(port)
            peak_kib = _rss_kib(server.pid)
        finally:
            for burner in burners:
                burner.terminate()
            server.terminate()
            try:
                _, stderr = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, stderr = server.communicate()
    if not alive:
        last_words = [line for line in (stderr or "").splitlines() if "queue depth" not in line]
        failures.insert(0, f"the server died (exit status {server.returncode}); its last words:\n"
                        + "\n".join(last_words[-30:]))
    return {"paste_bytes": len(paste.encode()), "solo_s": statistics.median(solo),
            "latencies": latencies, "elapsed_s": elapsed, "failures": failures,
            "peak_mb": peak_kib / 1024, "requests": STUDENTS * ROUNDS}


def main() -> None:
    result = run()
    answered = len(result["latencies"])
    print(f"load: {STUDENTS} students pasting {result['paste_bytes'] / 1e6:.2f} MB "
          f"(iptables -t nat -S) at once, {ROUNDS} rounds, {BUSY_PROCESSES} CPU burners "
          f"({result['elapsed_s']:.0f} s)")
    print(f"  answered {answered} of {result['requests']} requests; server peak memory "
          f"{result['peak_mb']:.0f} MB")
    if answered:
        median = statistics.median(result["latencies"])
        p95 = sorted(result["latencies"])[min(answered - 1, int(round(0.95 * (answered - 1))))]
        print(f"  one paste alone (baseline): {result['solo_s']:.1f} s; concurrent median "
              f"{median:.1f} s ({median / result['solo_s']:.1f}x), p95 {p95:.1f} s "
              f"({p95 / result['solo_s']:.1f}x)")
    if result["failures"]:
        for failure in result["failures"][:5]:
            print(f"  FAILED: {failure}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
