"""``collect --local``: the same plan, run on this machine. As root it runs inside a
network namespace made for the test (a veth to a second namespace, with a documentation address),
so what it collects is known and the host's own state is never read."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.collect import collect_local
from collectors.knowledge import load_knowledge

REPO = Path(__file__).resolve().parent.parent


def _rules(tmp_path: Path, base: list[str]) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    lines = "".join(f'  - "{c}"\n' for c in base)
    (rules / "collect.yaml").write_text(
        "collect: 1\nroles:\n  network:\n    groups: [network]\n"
        f"base:\n{lines}allow:\n  - \"ip( -[46])? (route|addr)( show)?\"\n"
        "  - \"sysctl( [a-z0-9_.]+)+\"\n  - \"nova-manage (service|floating) list\"\n")
    return rules


def test_a_program_this_machine_lacks_is_recorded_not_run(tmp_path):
    knowledge = load_knowledge(_rules(tmp_path, ["nova-manage floating list"]))
    result = collect_local(knowledge, tmp_path / "out", name="here", progress=False)
    (report,) = result.hosts
    assert report.outputs == []
    assert [s["status"] for s in report.skipped] == ["missing"]
    assert "nova-manage: command not found" in (tmp_path / "out" / "here" / "collect-problems.txt").read_text()


@pytest.mark.root
def test_collect_local_inside_a_namespace_gives_transcripts_diagnose_reads(tmp_path):
    from lab import netns
    ok, reason = netns.available()
    if not ok:
        pytest.skip(reason)
    rules = _rules(tmp_path, ["ip addr show", "ip route", "sysctl net.ipv4.ip_forward"])
    out = tmp_path / "out"
    with netns.NetnsSession() as session:
        node = session.namespace("local")
        netns.add_veth(node, "lab0", session.namespace("peer"), "lab1")
        node.add_address("lab0", "192.0.2.5/24")
        done = node.exec([sys.executable, str(REPO / "app.py"), "collect", "--local", "--out", str(out),
                          "--rules", str(rules)], timeout=60)
    assert done.rc == 0, done.output
    host = socket.gethostname()
    route = (out / host / "ip-route.txt").read_text()
    assert route.splitlines()[0].endswith(f"@{host}:~# ip route")
    assert "192.0.2.0/24 dev lab0 proto kernel scope link src 192.0.2.5" in route
    diagnosed = subprocess.run([sys.executable, "app.py", "diagnose", str(out), "--format", "json"],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    report = json.loads(diagnosed.stdout)
    assert report["facts"] > 0 and report["unparsed"] == []
