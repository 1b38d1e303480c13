"""Hardening (issue 9): the rule engine's background thread, bad blocks, sizes, file
system edges."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_durable_rules_never_enters_its_engine_from_a_background_thread():
    # durable-rules' own Host polled the C engine from timer threads: with no lock that
    # raced request threads, and even under the lock its dispatch crashed the chat
    # server (SIGSEGV) on the state sessions leave behind. Nothing may poll it: the
    # engine is driven without durable's Python package (its Host), in a fresh process
    # so that no other test's import of it counts.
    script = (
        "import sys, threading, time\n"
        "from kb import engine\n"
        "rules = {'noop': {'all': [{'m': {'type': 'noop'}}],\n"
        "                  'run': lambda s, c: s.emit({'seen': c.m.type, 'thread': threading.current_thread().name})}}\n"
        "e = engine.Engine(rules, identity='test-hardening-no-poll')\n"
        "with e.session() as session:\n"
        "    session.assert_facts([{'type': 'noop'}])\n"
        "    print(session.outputs)\n"
        "time.sleep(1.0)\n"   # five of durable's polling periods
        "print(sorted(t.name for t in threading.enumerate()))\n"
        "print(sorted(m for m in sys.modules if m == 'durable' or m.startswith('durable.')))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    outputs, threads, durable_modules = done.stdout.splitlines()
    assert outputs == "[{'seen': 'noop', 'thread': 'MainThread'}]"   # the action ran on the caller's thread
    assert threads == "['MainThread']"
    assert durable_modules == "[]"


# --- one bad block is that block's problem only ---------------------------------------

import json

from grammar import kinds
from grammar.transcript import read_transcript

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
    reading = parser.each_record

    def broken(text, command=""):
        raise RecursionError("maximum recursion depth exceeded")

    def broken_midway(lines, command="", problems=None):
        # the reader makes facts of the records as they come: those before the failure
        yield from reading(lines[:4], command, problems)
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(parser, "parse", broken)
    monkeypatch.setattr(parser, "each_record", broken_midway)
    evidence = read_transcript(SEED, "seed.txt")
    failed = [u for u in evidence.unparsed if "iptables" in (u["command"] or "")]
    assert failed and all("RecursionError" in u["reason"] for u in failed)
    assert any(f["type"] == "route" for f in evidence.facts)
    assert not any(f["type"].startswith("iptables") for f in evidence.facts)


def test_env_piped_to_grep_is_the_output_of_env_not_of_a_command_named_pipe():
    evidence = read_transcript("root@n1:~# env | grep OS_\nOS_USERNAME=admin\n"
                               "OS_AUTH_URL=http://192.0.2.5:5000/v2.0\n", "env.txt")
    assert [u["reason"] for u in evidence.unparsed] == ["stackdoc does not read the output of 'env'"]
    assert evidence.unparsed[0]["command"] == "env | grep OS_"


# --- sizes and the file system ---------------------------------------------------------

import os
import tempfile

import pytest

from collectors import files as collector

ROUTES = "root@net01:~# ip route\ndefault via 192.0.2.1 dev ens3\n"


def _without_read_override() -> list[str]:
    """Root reads every file whatever its mode: drop the capabilities that let it, so
    the CLI meets files it cannot read."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def test_a_file_name_that_is_not_utf8_is_escaped_and_json_stays_valid(tmp_path):
    folder = tmp_path / "evidence" / "net01"
    folder.mkdir(parents=True)
    raw = os.path.join(os.fsencode(folder), b"routes-\xff\xfe.txt")
    with open(raw, "w") as handle:  # a route, and a line that names its file when not read
        handle.write(ROUTES + "192.0.2.0/24 dev\n")
    done = subprocess.run([sys.executable, "app.py", "diagnose", str(folder.parent), "--format",
                           "json"], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.decode("utf-8"))  # strict UTF-8: no raw bytes
    assert report["facts"] == 1
    assert [os.path.basename(u["source"]) for u in report["unparsed"]] == ["routes-\\xff\\xfe.txt"]
    target = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "app.py", "diagnose", str(folder.parent), "--format",
                           "text", "--out", str(target)], cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "routes-\\xff\\xfe.txt" in target.read_text(encoding="utf-8")
    sources = collector.sources([str(folder.parent)])
    assert sources[0].name.endswith("routes-\\xff\\xfe.txt") and sources[0].node == "net01"


def _remove_deep_tree(top: str) -> None:
    """shutil.rmtree recurses (and so does pytest's clean-up of old temporary
    directories, shared with other runs): take the tree down by descriptors."""
    chain = [os.open(top, os.O_RDONLY)]
    names: list[str] = []
    while chain:
        here = chain[-1]
        below = None
        for entry in os.scandir(here):
            if entry.is_dir(follow_symlinks=False):
                below = entry.name
            else:
                os.unlink(entry.name, dir_fd=here)
        if below is not None:
            names.append(below)
            chain.append(os.open(below, os.O_RDONLY, dir_fd=here))
            continue
        os.close(chain.pop())
        if chain:
            os.rmdir(names.pop(), dir_fd=chain[-1])
    os.rmdir(top)


def test_a_tree_2200_directories_deep_is_read_without_recursion():
    top = tempfile.mkdtemp(prefix="stackdoc-deep-")
    try:
        Path(top, "routes.txt").write_text(ROUTES)
        fd = os.open(top, os.O_RDONLY)
        try:
            for _ in range(2200):  # deeper than any path the kernel opens by name
                os.mkdir("d", dir_fd=fd)
                child = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = child
            with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as out:
                out.write(ROUTES)
        finally:
            os.close(fd)
        done = _run("diagnose", top, "--format", "json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["facts"] >= 1
        assert all("cannot be read" in u["reason"] for u in report["unparsed"])
    finally:
        _remove_deep_tree(top)


def test_an_unreadable_file_and_directory_are_each_reported_and_the_rest_is_diagnosed(tmp_path):
    root = tmp_path
    (root / "net01").mkdir()
    (root / "net01" / "routes.txt").write_text(ROUTES)
    (root / "net01" / "secret.txt").write_text(ROUTES)
    (root / "net02").mkdir()
    (root / "net02" / "routes.txt").write_text(ROUTES)
    os.chmod(root / "net01" / "secret.txt", 0)
    os.chmod(root / "net02", 0)
    done = subprocess.run([*_without_read_override(), sys.executable, "app.py", "diagnose",
                           str(root), "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["facts"] == 1
    reasons = {u["source"].rsplit("/", 1)[-1]: u["reason"] for u in report["unparsed"]}
    assert reasons == {"secret.txt": "cannot be read: Permission denied",
                       "net02": "directory cannot be read: Permission denied"}


def test_input_over_the_cap_is_a_clear_message_with_exit_2_before_it_is_read(tmp_path):
    big = tmp_path / "huge.txt"
    with open(big, "wb") as handle:  # text where it is sniffed, then sparse: no disk spent
        handle.write(ROUTES.encode() * (collector.BINARY_SNIFF_BYTES // len(ROUTES) + 1))
        handle.truncate(collector.MAX_INPUT_BYTES + 1)
    done = _run("diagnose", str(big))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"stackdoc: {big}: the evidence is larger than 64 MB in all, "
                                   "more than one diagnosis reads; give the files that matter "
                                   "(the commands' output and the logs around the problem)")


def test_standard_input_over_the_cap_stops_at_the_cap():
    class Endless:
        read_bytes = 0

        def read(self, size):
            self.read_bytes += size
            return b"x" * size

    stream = Endless()
    with pytest.raises(collector.InputTooLarge):
        collector.sources(["-"], stdin=stream, max_bytes=5_000_000)
    assert stream.read_bytes <= 5_000_000 + collector.READ_CHUNK_BYTES


def test_a_large_binary_file_is_known_from_its_first_bytes(tmp_path):
    blob = tmp_path / "core.dump"
    with open(blob, "wb") as handle:
        handle.write(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100)
        handle.truncate(500 * 1024 * 1024)  # sparse: 500 MB that are never read
    (tmp_path / "routes.txt").write_text(ROUTES)
    evidence = collector.read_evidence([str(tmp_path)])
    assert [(u["source"], u["reason"]) for u in evidence.unparsed] == [
        (str(blob), "binary data, not terminal text")]
    assert len(evidence.facts) == 1


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "html"])
def test_a_full_device_is_a_one_line_error_with_exit_2(fmt):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "app.py", "diagnose", str(INVESTIGATION),
                               "--format", fmt], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "stackdoc: cannot write the report: No space left on device\n"


def test_a_closed_pipe_is_a_one_line_error_with_exit_2():
    process = subprocess.Popen([sys.executable, "app.py", "diagnose", str(INVESTIGATION)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    error = process.stderr.read()
    assert process.wait(timeout=120) == 2
    assert error == "stackdoc: cannot write the report: Broken pipe\n"


def test_control_characters_and_bidi_overrides_in_evidence_are_shown_escaped():
    paste = ("root@net01:~# ip route\ndefault via 192.0.2.1 dev ens3\n"
             "192.0.2.0/24 dev ens3 \x1bc\u202e\x9b2J\n")
    for fmt in ("text", "markdown", "html", "json"):
        done = _run("diagnose", "-", "--format", fmt, stdin=paste)
        assert done.returncode in (0, 1), done.stderr
        assert not any(ch in done.stdout for ch in "\x1b\u202e\x9b"), fmt
        if fmt == "json":
            reasons = [u["reason"] for u in json.loads(done.stdout)["unparsed"]]
            assert reasons and "\x1b" in "".join(reasons) + "\x1b"
