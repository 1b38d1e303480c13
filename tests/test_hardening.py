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
