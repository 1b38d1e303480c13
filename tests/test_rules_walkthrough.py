"""rules/README.md, followed word for word in a copy of the rules folder: the files it
shows are written as shown, the commands it shows give what it says, and the new cause
is diagnosed and taught in the chat without a line of Python."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import app as stackdoc

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "rules" / "README.md").read_text()
BLOCK = re.compile(r"^```(\w*)(?: file=(\S+))?\n(.*?)^```", re.M | re.S)
CAUSE = "libvirt-not-running"
EVIDENCE = "rules/examples/compute-libvirt-stopped.txt"


def blocks(language=None):
    return [(lang, name, body) for lang, name, body in BLOCK.findall(README)
            if language in (None, lang)]


@pytest.fixture
def lab(tmp_path):
    """A copy of the shipped rules with the README's files added, as an instructor would."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    written = []
    for _lang, name, body in blocks():
        if name:
            target = tmp_path / name
            assert not target.exists(), f"the walkthrough overwrites {name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
            written.append(target)
    assert [p.suffix for p in written] == [".yaml", ".txt", ".yaml"]   # no Python
    return tmp_path


def run(lab, *args):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=lab,
                          capture_output=True, text=True, timeout=120)


def test_the_example_evidence_is_the_real_capture_unchanged():
    evidence = next(body for _l, name, body in blocks() if name == EVIDENCE)
    capture = ROOT / "tests" / "fixtures" / "catalog_c" / "logs" / "ubuntu-nova-compute-libvirt-down.log"
    assert evidence == "root@cmp07:~# tail -n 8 /var/log/nova/nova-compute.log\n" + capture.read_text()


def test_check_and_test_say_what_the_walkthrough_says(lab):
    commands = [body.strip() for _l, _n, body in blocks("sh")]
    assert commands == ["python app.py rules check", f"python app.py rules test {CAUSE}",
                        f"python app.py diagnose {EVIDENCE}"]
    done = run(lab, "rules", "check", "rules")
    assert done.returncode == 0 and done.stdout.endswith("files checked, 0 problems\n"), done.stdout

    shown = [body for lang, name, body in blocks("") if "SD200" in body or "passed" in body]
    misspelt_output, test_output = shown
    path = lab / "rules" / "compute" / f"{CAUSE}.yaml"
    good = path.read_text()
    path.write_text(good.replace("type: log_entry", "type: log_entri"))
    done = run(lab, "rules", "check", "rules")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == misspelt_output.strip()
    path.write_text(good)

    done = run(lab, "rules", "test", "rules", CAUSE)
    assert done.returncode == 0
    assert done.stdout == test_output


def test_the_new_cause_is_diagnosed_with_the_rules_folder(lab):
    done = run(lab, "diagnose", EVIDENCE, "--rules", "rules", "--format", "json")
    assert done.returncode == 1, done.stderr
    import json
    findings = json.loads(done.stdout)["findings"]
    ours = [f for f in findings if f["cause"] == CAUSE]
    assert [(f["cause"], f["status"], f["node"], f["service"]) for f in ours] == [
        (CAUSE, "established", "cmp07", "libvirt-bin")]
    assert ours[0]["fix"][0] == "On cmp07: service libvirt-bin start (RDO and later Ubuntu: service libvirtd start)"
    assert any("libvirt-sock" in line["text"] for line in ours[0]["evidence"])
    # the shipped rules do not know this cause: the walkthrough adds it, it overlaps none
    done = run(lab, "diagnose", EVIDENCE, "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["findings"] == []


def test_the_new_cause_is_taught_in_the_chat(lab, monkeypatch):
    monkeypatch.setenv("STACKDOC_RULES", str(lab / "rules"))
    client = stackdoc.create_app({"DATABASE": str(lab / "chat.db"), "TESTING": True}).test_client()
    session = client.post("/api/sessions").get_json()["session"]

    def say(text):
        reply = client.post(f"/api/sessions/{session}/messages", json={"text": text})
        assert reply.status_code == 200
        return reply.get_json()

    first = say("nova hypervisor-list does not show my compute node any more")
    assert "a compute node's hypervisor is missing" in first["reply"]
    assert "tail -n 50 /var/log/nova/nova-compute.log" in first["reply"] and "compute node" in first["reply"]

    pasted = say((lab / EVIDENCE).read_text())
    assert "Which daemon does nova-compute on cmp07 fail to reach" in pasted["reply"]
    assert pasted["findings"] == []          # asked, not told

    hint = say("hint")
    assert hint["hint_level"] == 1
    assert "Which daemon does it ask, and does that daemon answer on cmp07?" in hint["reply"]

    answer = say("it is libvirt, on cmp07")
    assert [f["cause"] for f in answer["findings"]] == [CAUSE]
    assert "service libvirt-bin start" in answer["reply"]
