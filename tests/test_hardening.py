"""Hardening (issue 9): the rule engine's background thread, bad blocks, sizes, file
system edges."""
import threading
import time

from durable import engine as durable_engine

from kb import engine as kb_engine


def test_the_engines_background_polling_holds_the_lock_around_every_call(monkeypatch):
    # durable-rules' own Host polled the C engine from timer threads with no lock: racing
    # an assertion, that crashed the chat server (SIGSEGV). Every poll must hold the lock.
    calls = []

    def spy(original):
        def call(self):
            calls.append(kb_engine._HOST_LOCK._is_owned())
            return original(self)
        return call

    monkeypatch.setattr(durable_engine.Ruleset, "dispatch", spy(durable_engine.Ruleset.dispatch))
    monkeypatch.setattr(durable_engine.Ruleset, "dispatch_timers",
                        spy(durable_engine.Ruleset.dispatch_timers))
    kb_engine.Engine({"noop": {"all": [{"m": {"type": "noop"}}], "run": lambda s, c: None}},
                     identity="test-hardening-poll")
    deadline = time.monotonic() + 5
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls) >= 4, "the engine's poller never ran"
    assert all(calls), "the engine was polled without holding the lock"


def test_durable_rules_starts_no_unlocked_timer_threads():
    names = [thread.name for thread in threading.enumerate()]
    assert "durable-rules-poller" in names
    # durable's own pollers are threading.Timer threads named Thread-N (dispatch_ruleset)
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


# --- one bad block is that block's problem only ---------------------------------------

import json
import subprocess
import sys
from pathlib import Path

from grammar import kinds
from grammar.transcript import read_transcript

ROOT = Path(__file__).resolve().parent.parent
SEED = (ROOT / "rules" / "examples" / "seed-network-node.txt").read_text()


def _run(*args, stdin=None, **kwargs):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=300, **kwargs)


INVESTIGATION = ROOT / "rules" / "examples" / "seed-floating-ip-investigation.txt"


def test_an_invalid_prefix_next_to_dnat_rules_is_one_unparsed_line_and_the_rest_is_diagnosed():
    # issue 9: an ip addr line with /33 plus any DNAT rule was an internal error (exit 2)
    text = INVESTIGATION.read_text()
    assert "DNAT" in text and "inet 10.0.0.7/24 brd" in text
    typo = text.replace("inet 10.0.0.7/24 brd", "inet 10.0.0.7/33 brd", 1)
    line = typo[:typo.index("/33")].count("\n") + 1
    healthy = json.loads(_run("diagnose", "-", "--format", "json", stdin=text).stdout)
    done = _run("diagnose", "-", "--format", "json", stdin=typo)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [f["cause"] for f in report["findings"]] == [f["cause"] for f in healthy["findings"]]
    assert [(u["line"], u["reason"]) for u in report["unparsed"]] == [
        (line, "ip addr: '10.0.0.7/33' is not an address with a prefix: the prefix is longer than 32")]


def test_a_reader_that_fails_costs_only_its_own_block(monkeypatch):
    parser = kinds.parsers()["iptables_list"]

    def broken(text, command=""):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(parser, "parse", broken)
    evidence = read_transcript(SEED, "seed.txt")
    failed = [u for u in evidence.unparsed if "iptables" in (u["command"] or "")]
    assert failed and all("RecursionError" in u["reason"] for u in failed)
    assert any(f["type"] == "route" for f in evidence.facts)


def test_env_piped_to_grep_is_the_output_of_env_not_of_a_command_named_pipe():
    evidence = read_transcript("root@n1:~# env | grep OS_\nOS_USERNAME=admin\n"
                               "OS_AUTH_URL=http://192.0.2.5:5000/v2.0\n", "env.txt")
    assert [u["reason"] for u in evidence.unparsed] == ["stackdoc does not read the output of 'env'"]
    assert evidence.unparsed[0]["command"] == "env | grep OS_"
