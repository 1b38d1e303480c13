"""``python app.py diagnose`` as a person runs it: what it prints and how it exits."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "rules" / "examples"


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_pasting_the_seeds_network_node_outputs_names_the_snat_interface_mismatch():
    done = run("diagnose", "-", stdin=(EXAMPLES / "seed-network-node.txt").read_text())
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "fip-snat-wrong-interface" in out
    assert "SNAT on network-node applies only to packets leaving by eth1, but its default route leaves by eth0" in out
    # the evidence lines themselves, with where they were printed
    assert "<stdin>:6" in out and "default via 10.0.0.1 dev eth0" in out
    assert "<stdin>:73" in out and "SNAT       all  --  any    eth1    10.99.0.0/22" in out
    assert "public_interface=eth0" in out


def test_json_output_follows_the_contract():
    done = run("diagnose", str(EXAMPLES / "seed-network-node.txt"), "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert set(report) >= {"findings", "unparsed", "facts"}
    finding = next(f for f in report["findings"] if f["cause"] == "fip-snat-wrong-interface")
    assert finding["node"] == "network-node" and finding["status"] == "established"
    assert finding["service"] is None and finding["fix"] and finding["explanation"]
    lines = {(e["line"], e["command"]) for e in finding["evidence"]}
    assert (6, "ip route") in lines and (73, "iptables -L -t nat -v") in lines
    for item in finding["evidence"]:
        assert set(item) == {"node", "command", "source", "line", "text"}
    assert report["facts"] > 30 and report["unparsed"] == []


def test_markdown_html_and_out_file(tmp_path):
    target = tmp_path / "report.html"
    done = run("diagnose", str(EXAMPLES / "seed-network-node.txt"), "--format", "html", "--out", str(target))
    assert done.returncode == 1 and done.stdout == ""
    page = target.read_text()
    assert "<code>fip-snat-wrong-interface</code>" in page and "&lt;" not in page.split("<body>")[0]
    done = run("diagnose", str(EXAMPLES / "seed-network-node.txt"), "--format", "markdown")
    assert done.stdout.startswith("# stackdoc: 1 root cause found")


def test_possible_cause_names_what_would_decide_it():
    done = run("diagnose", str(EXAMPLES / "seed-cinder-api.log"), "--node", "volume-node", "--format", "json")
    report = json.loads(done.stdout)
    finding = next(f for f in report["findings"] if f["cause"] == "cinder-glance-endpoint")
    assert finding["status"] == "possible" and finding["service"] == "cinder-api"
    assert any("ip addr" in step for step in finding["decide_by"])
    assert "10.0.0.8:9292" in finding["title"]


def test_exit_status_two_for_unusable_input_and_usage():
    assert run("diagnose", "/nonexistent/evidence").returncode == 2
    assert run("diagnose").returncode == 2
    assert run("diagnose", "x", "--format", "pdf").returncode == 2
    done = run("diagnose", "-", "--format", "json", stdin="\x00\x01binary\x02")
    assert done.returncode == 2
    assert json.loads(done.stdout)["unparsed"][0]["reason"].startswith("binary")
    done = run("diagnose", "-", "--format", "json", stdin="")
    assert done.returncode == 2
    assert json.loads(done.stdout)["unparsed"][0]["reason"].startswith("empty")


def test_exit_status_zero_when_evidence_shows_nothing_wrong():
    healthy = ROOT / "tests" / "fixtures" / "labs" / "other-healthy"
    done = run("diagnose", *sorted(str(p) for p in healthy.glob("*.txt")))
    assert done.returncode == 0, done.stdout
    assert "no root cause found" in done.stdout


def test_the_whole_course_chapter_pasted_as_is_is_read_without_a_crash():
    seed = ROOT.parent / "shared" / "seed" / "000_b5ca1447ebd72748.txt"
    if not seed.exists():
        import pytest
        pytest.skip("the seed chapter is not beside this checkout")
    done = run("diagnose", str(seed), "--format", "json")
    report = json.loads(done.stdout)
    found = {f["cause"]: f for f in report["findings"]}
    # the chapter applies its own floating-IP fixes (route add, MASQUERADE), so those
    # are set aside; its cinder logs still show both cinder problems
    assert "cinder-qemu-img-missing" in found and "cinder-glance-endpoint" in found
    assert not [c for c in found if c.startswith("fip-")]
    assert report["superseded"] and report["unparsed"]
    assert done.returncode == 1
