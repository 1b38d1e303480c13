"""The chat under load: 50 simulated students on loopback, each in their own session.

The server is ``python app.py serve`` in a child process (waitress, a fresh SQLite file),
so its memory is measured alone. Every student starts a session, says the symptom, then
sends messages without new evidence ("hint", "why") and 200-line pastes (the network
node's NAT listing and captures, as a lab prints them). Like a student, each one reads
the reply before sending the next message (a think time of 1 to 4 seconds, seeded), so
the 50 are concurrent the way a class is; the run is bounded in students, messages and
seconds. Reported: median and p95 latency of a reply for each kind of message, the
replies per second the run sustained, and the server's memory per idle session.

    python -m benchmarks.bench_chat        (or make bench)
"""
from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDENTS = 50
PLAIN_MESSAGES = 4          # per student: hint/why, no new evidence
PASTES = 2                  # per student: a 200-line paste
IDLE_SESSIONS = 500
TIME_LIMIT_S = 180
THINK_TIME_S = (1.0, 4.0)   # reading the reply, typing or pasting the next message


def paste_of_200_lines(student: int) -> str:
    """200 lines of a real lab capture (the namespace lab, net01 and its gateway), each
    student starting at another node, as a student pastes one long chunk of terminal."""
    captures = sorted((ROOT / "tests" / "fixtures" / "labs" / "other-snat-wrong-interface").glob("*.txt"))
    start = student % len(captures)
    lines: list[str] = []
    for capture in captures[start:] + captures[:start]:
        lines.extend(capture.read_text().splitlines())
    return "\n".join(lines[:200]) + "\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Client:
    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body=None) -> tuple[int, dict, float]:
        data = json.dumps(body) if body is not None else ""
        started = time.perf_counter()
        self.connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        return response.status, payload, time.perf_counter() - started


def _student(port: int, number: int, plain: list, pasted: list, errors: list, deadline: float) -> None:
    think = random.Random(number)
    try:
        time.sleep(think.uniform(0, THINK_TIME_S[1]))    # a class does not start in one instant
        client = _Client(port)
        _, created, _ = client.post("/api/sessions")
        path = f"/api/sessions/{created['session']}/messages"
        client.post(path, {"text": "why can't my VM ping google?"})
        paste = paste_of_200_lines(number)
        for round_ in range(max(PLAIN_MESSAGES, PASTES)):
            if time.perf_counter() > deadline:
                return
            time.sleep(think.uniform(*THINK_TIME_S))
            if round_ < PASTES:
                status, _, seconds = client.post(path, {"text": paste})
                (pasted if status == 200 else errors).append(seconds if status == 200 else status)
            if round_ < PLAIN_MESSAGES:
                time.sleep(think.uniform(*THINK_TIME_S))
                status, _, seconds = client.post(path, {"text": "hint" if round_ % 2 else "why"})
                (plain if status == 200 else errors).append(seconds if status == 200 else status)
    except Exception as error:  # a failed student is reported, not hidden
        errors.append(repr(error))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def run() -> dict:
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen([sys.executable, "app.py", "serve", "--port", str(port),
                                   "--db", os.path.join(folder, "bench.db")], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_until_up(port)
            # one student alone first: the service time, without any queueing
            solo_plain, solo_paste = [], []
            client = _Client(port)
            _, created, _ = client.post("/api/sessions")
            path = f"/api/sessions/{created['session']}/messages"
            client.post(path, {"text": "why can't my VM ping google?"})
            for round_ in range(PASTES):
                solo_paste.append(client.post(path, {"text": paste_of_200_lines(1000 + round_)})[2])
                for word in ("hint", "why"):
                    solo_plain.append(client.post(path, {"text": word})[2])
            plain, pasted, errors = [], [], []
            deadline = time.perf_counter() + TIME_LIMIT_S
            threads = [threading.Thread(target=_student, args=(port, n, plain, pasted, errors, deadline))
                       for n in range(STUDENTS)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIME_LIMIT_S)
            elapsed = time.perf_counter() - started

            # memory per idle session: sessions that said one thing and went quiet
            client = _Client(port)
            for _ in range(20):                   # settle allocator pools first
                client.post("/api/sessions")
            before = _rss_kib(server.pid)
            for _ in range(IDLE_SESSIONS):
                _, created, _ = client.post("/api/sessions")
                client.post(f"/api/sessions/{created['session']}/messages",
                            {"text": "why can't my VM ping google?"})
            after = _rss_kib(server.pid)
            database = os.path.join(folder, "bench.db")
            disk = sum(os.path.getsize(database + suffix) for suffix in ("", "-wal")
                       if os.path.exists(database + suffix))
            sessions = STUDENTS + 20 + IDLE_SESSIONS
        finally:
            server.terminate()
            server.wait(10)
    return {"students": STUDENTS, "elapsed_s": elapsed, "errors": errors,
            "plain_ms": [s * 1000 for s in plain], "paste_ms": [s * 1000 for s in pasted],
            "solo_plain_ms": statistics.median(solo_plain) * 1000,
            "solo_paste_ms": statistics.median(solo_paste) * 1000,
            "idle_kib_per_session": max(0, after - before) / IDLE_SESSIONS,
            "disk_kib_per_session": disk / 1024 / sessions}


def _wait_until_up(port: int, timeout: float = 60) -> None:
    limit = time.time() + timeout
    while time.time() < limit:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the chat server did not start")


def main() -> None:
    result = run()
    replies = len(result["plain_ms"]) + len(result["paste_ms"])
    print(f"chat: {result['students']} concurrent students on loopback, think time "
          f"{THINK_TIME_S[0]:g}-{THINK_TIME_S[1]:g} s ({replies} replies in {result['elapsed_s']:.1f} s, "
          f"{replies / result['elapsed_s']:.1f}/s, {len(result['errors'])} errors)")
    for label, key, aim in (("reply, no new evidence", "plain_ms", 100),
                            ("reply, 200-line paste ", "paste_ms", 300)):
        values = result[key]
        if values:
            print(f"  {label}: median {statistics.median(values):7.1f} ms   "
                  f"p95 {_p95(values):7.1f} ms  (aim p95 < {aim} ms, n={len(values)})")
    print(f"  one student alone (service time): no new evidence {result['solo_plain_ms']:.1f} ms, "
          f"200-line paste {result['solo_paste_ms']:.1f} ms (medians)")
    print(f"  memory per idle session:  {result['idle_kib_per_session']:7.1f} KiB  (aim < 1024 KiB; "
          f"server RSS growth over {IDLE_SESSIONS} sessions)")
    print(f"  disk per session:         {result['disk_kib_per_session']:7.1f} KiB  (SQLite, all sessions)")
    if result["errors"]:
        print(f"  first errors: {result['errors'][:3]}")


if __name__ == "__main__":
    main()
