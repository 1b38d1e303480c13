"""An instructor's own rules folder (``--rules DIR`` / STACKDOC_RULES) brings its own
rules/intents.yml: the chat reads what students ask for from that copy, not the shipped one."""
import shutil
from pathlib import Path

import app as stackdoc

ROOT = Path(__file__).resolve().parent.parent
OWN_WORDS = "throw me a bone"


def _chat(tmp_path, monkeypatch, rules: Path | None):
    if rules is not None:
        monkeypatch.setenv("STACKDOC_RULES", str(rules))
    else:
        monkeypatch.delenv("STACKDOC_RULES", raising=False)
    client = stackdoc.create_app({"DATABASE": str(tmp_path / "chat.db"), "TESTING": True}).test_client()
    session = client.post("/api/sessions").get_json()["session"]

    def say(text):
        reply = client.post(f"/api/sessions/{session}/messages", json={"text": text})
        assert reply.status_code == 200
        return reply.get_json()
    return say


def test_the_intents_of_the_instructors_folder_are_the_ones_read(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    intents = tmp_path / "rules" / "intents.yml"
    intents.write_text(intents.read_text().replace(
        "hint:\n", f"hint:\n  - \"{OWN_WORDS}\"\n", 1))
    say = _chat(tmp_path, monkeypatch, tmp_path / "rules")
    say("my VM can't ping google")
    assert say(OWN_WORDS)["reply"].startswith("**Hint:** Run tcpdump on the compute node")


def test_the_shipped_intents_do_not_know_those_words(tmp_path, monkeypatch):
    say = _chat(tmp_path, monkeypatch, None)
    say("my VM can't ping google")
    assert "**Hint:**" not in say(OWN_WORDS)["reply"]
