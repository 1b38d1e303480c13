"""``python app.py batch``: a class of twenty labs built from the real namespace captures
(tests/fixtures/class/, renamed and renumbered per lab), each diagnosed with exactly the
faults its capture was built with; the summary in every format; unusable labs listed
without stopping the others; the same labs twice give the same reports byte for byte."""
import contextlib
import fcntl
import filecmp
import io
import json
import os
import pty
import shutil
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from app import main
from benchmarks import gen_class

ROOT = Path(__file__).resolve().parent.parent
CLASS = ROOT / "tests" / "fixtures" / "class"
LABS = CLASS / "labs"
EXPECTED = json.loads((CLASS / "expected.json").read_text())


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def batch(capsys, *args, db):
    code = main(["batch", *map(str, args), "--db", str(db)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def class_json(tmp_path_factory):
    """The whole class, diagnosed once in two local processes."""
    db = tmp_path_factory.mktemp("class") / "history.db"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["batch", "--class", str(LABS), "--format", "json", "--workers", "2", "--db", str(db)])
    return code, json.loads(out.getvalue())


def test_each_lab_gets_exactly_the_faults_it_was_built_with(class_json):
    code, summary = class_json
    assert code == 1
    assert [lab["lab"] for lab in summary["labs"]] == sorted(EXPECTED)
    for lab in summary["labs"]:
        assert lab["error"] is None, lab["lab"]
        assert sorted({f["cause"] for f in lab["findings"]}) == EXPECTED[lab["lab"]]["causes"], lab["lab"]
        assert all(f["status"] == "established" for f in lab["findings"])
        # everything is read, the probes' own output (ping, nc) too
        assert lab["unparsed"] == []


def test_the_summary_counts_labs_per_cause_and_keeps_the_issue_shape(class_json):
    _, summary = class_json
    assert set(summary) == {"labs", "causes"}
    assert all(set(lab) == {"lab", "findings", "unparsed", "error"} for lab in summary["labs"])
    expected: dict[str, int] = {}
    for lab in EXPECTED.values():
        for cause in lab["causes"]:
            expected[cause] = expected.get(cause, 0) + 1
    assert summary["causes"] == expected
    counts = list(summary["causes"].values())
    assert counts == sorted(counts, reverse=True)


def test_findings_speak_in_each_labs_own_names(class_json):
    _, summary = class_json
    by_lab = {lab["lab"]: lab for lab in summary["labs"]}
    for name, expected in EXPECTED.items():
        renamed = gen_class.node_names(expected["case"], int(name.split("-")[1]))
        for finding in by_lab[name]["findings"]:
            assert finding["node"] in renamed.values()
            assert all(line["source"].startswith(str(LABS / name)) for line in finding["evidence"])


def test_text_summary_lists_each_lab_the_causes_and_the_labs_with_nothing_found(capsys, tmp_path):
    code, out, _ = batch(capsys, "--class", LABS, "--workers", "1", db=tmp_path / "h.db")
    assert code == 1
    assert out.startswith("stackdoc batch: 20 labs: 14 with root causes, 6 with nothing found, 0 not diagnosed")
    healthy = sorted(name for name, lab in EXPECTED.items() if not lab["causes"])
    assert f"Nothing found in: {', '.join(healthy)}" in out
    assert "fip-snat-wrong-interface        6  ######" in out
    lab_09 = out[out.index("lab-09"):out.index("lab-10")]
    assert "[established] fip-upstream-no-return-route (gw09)" in lab_09


def test_out_writes_one_report_per_lab_in_the_diagnose_renderers(capsys, tmp_path):
    code, out, _ = batch(capsys, "--class", LABS, "--format", "markdown", "--out", tmp_path / "md",
                         "--workers", "1", db=tmp_path / "h.db")
    assert code == 1 and out == ""
    written = sorted(p.name for p in (tmp_path / "md").iterdir())
    assert written == sorted([f"{name}.md" for name in EXPECTED] + ["summary.md"])
    assert "[lab-09](lab-09.md)" in (tmp_path / "md" / "summary.md").read_text()
    lab = (tmp_path / "md" / "lab-06.md").read_text()
    assert lab.startswith("# stackdoc: 1 root cause found")
    assert "## `fip-snat-wrong-interface` (established) — on lab06-network" in lab


def test_the_same_labs_twice_give_identical_reports_whatever_the_workers(capsys, tmp_path):
    for fmt in ("json", "html"):
        first, second = tmp_path / f"{fmt}-1", tmp_path / f"{fmt}-2"
        batch(capsys, "--class", LABS, "--format", fmt, "--out", first, "--workers", "1", db=tmp_path / "h.db")
        batch(capsys, "--class", LABS, "--format", fmt, "--out", second, "--workers", "2", db=tmp_path / "h.db")
        names = sorted(p.name for p in first.iterdir())
        assert names == sorted(p.name for p in second.iterdir()) and len(names) == 21
        match, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
        assert mismatch == [] and errors == []


def test_an_unusable_lab_is_listed_and_the_others_are_diagnosed(capsys, tmp_path):
    classroom = tmp_path / "class"
    shutil.copytree(LABS / "lab-06", classroom / "lab-a")
    shutil.copytree(LABS / "lab-05", classroom / "lab-b")
    (classroom / "lab-c").mkdir()                                     # handed in nothing
    (classroom / "lab-d").mkdir()
    (classroom / "lab-d" / "notes.txt").write_text("I rebooted it twice and it still fails\n")
    (classroom / "lab-e.ini").write_text(f"[network]\nnet01 ansible_host=127.0.0.1 ansible_port={closed_port()}\n")
    (classroom / "README.md").write_text("the class of Tuesday\n")
    code, out, err = batch(capsys, "--class", classroom, "--format", "json", "--workers", "2",
                           db=tmp_path / "h.db")
    assert code == 2
    labs = {lab["lab"]: lab for lab in json.loads(out)["labs"]}
    assert list(labs) == ["lab-a", "lab-b", "lab-c", "lab-d", "lab-e.ini"]
    assert [f["cause"] for f in labs["lab-a"]["findings"]] == ["fip-snat-wrong-interface"]
    assert labs["lab-b"]["findings"] == [] and labs["lab-b"]["error"] is None
    assert "the directory holds no files" in labs["lab-c"]["error"]
    assert "nothing in the evidence could be read" in labs["lab-d"]["error"]
    assert labs["lab-d"]["unparsed"][0]["source"].endswith("notes.txt")
    # collected from first: its one node refuses the connection, so nothing to diagnose
    assert "lab-e.ini: no node could be collected from (net01: " in labs["lab-e.ini"]["error"]
    assert "refused" in labs["lab-e.ini"]["error"]
    tried = Path(labs["lab-e.ini"]["error"].rsplit("recorded in ", 1)[1])   # a temporary folder: no --out
    try:
        assert tried.name == "lab-e.ini" and tried.parent.name.startswith("stackdoc-batch-evidence-")
        assert "net01: " in (tried / "net01" / "unreachable.txt").read_text()
    finally:
        shutil.rmtree(tried.parent)
    assert "README.md: neither a lab folder nor an inventory file" in err


def test_labs_named_on_the_command_line_in_name_order(capsys, tmp_path):
    code, out, _ = batch(capsys, LABS / "lab-10", LABS / "lab-02", tmp_path / "missing", "--format", "json",
                         "--workers", "1", db=tmp_path / "h.db")
    assert code == 2
    labs = json.loads(out)["labs"]
    assert [lab["lab"] for lab in labs] == ["lab-02", "lab-10", "missing"]
    assert "no such file or directory" in labs[2]["error"]


def test_nothing_found_anywhere_exits_0(capsys, tmp_path):
    healthy = [LABS / name for name, lab in EXPECTED.items() if not lab["causes"]][:3]
    code, out, _ = batch(capsys, *healthy, "--workers", "1", db=tmp_path / "h.db")
    assert code == 0
    assert "3 labs: 0 with root causes, 3 with nothing found, 0 not diagnosed" in out


def test_usage_mistakes_are_said_plainly(capsys, tmp_path):
    code, _, err = batch(capsys, "--class", LABS, "--format", "html", db=tmp_path / "h.db")
    assert code == 2 and "--format html writes a folder of pages" in err
    code, _, err = batch(capsys, "--class", tmp_path / "nowhere", db=tmp_path / "h.db")
    assert code == 2 and "no such class folder" in err
    code, _, err = batch(capsys, db=tmp_path / "h.db")
    assert code == 2 and "no labs" in err
    code, _, err = batch(capsys, LABS / "lab-01", "--rules", tmp_path / "no-rules", db=tmp_path / "h.db")
    assert code == 2 and "no such folder" in err


def test_the_class_fixture_is_the_generator_applied_to_the_real_captures(tmp_path):
    made = gen_class.write_class(tmp_path, len(EXPECTED), width=2)
    assert {name: case for name, case in made.items()} == {n: e["case"] for n, e in EXPECTED.items()}
    for lab in made:
        comparison = filecmp.dircmp(tmp_path / lab, LABS / lab)
        assert not comparison.left_only and not comparison.right_only
        for file in (tmp_path / lab).rglob("*.txt"):
            assert file.read_bytes() == (LABS / lab / file.relative_to(tmp_path / lab)).read_bytes()


def test_renumbering_keeps_prefixes_and_column_widths():
    line = "    0     0 SNAT       all  --  any    eth1    10.99.0.0/22         anywhere             to:10.0.0.7"
    moved = gen_class.renumber(line, 3)
    assert len(moved) == len(line)
    assert "10.99." not in moved and "/22" in moved
    assert gen_class.renumber("inet 203.0.113.10/24 and 127.0.0.1", 5) == "inet 203.0.113.10/24 and 127.0.0.1"
    seconds = {gen_class.renumber(f"10.{b}.0.1", 4).split(".")[1] for b in range(256)}
    assert len(seconds) == 256                                        # one-to-one


def test_rules_from_another_folder_are_the_ones_used_in_every_worker(capsys, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    # the copy words one cause's title its own way: every worker must use the copy
    renamed = rules / "floating-ips" / "fip-upstream-no-masquerade.yaml"
    text = renamed.read_text()
    renamed.write_text(text.replace("\ntitle: \"", "\ntitle: \"(from the copied rules) ", 1))
    code, out, _ = batch(capsys, LABS / "lab-09", LABS / "lab-19", LABS / "lab-07", "--rules", rules,
                         "--format", "json", "--workers", "2", db=tmp_path / "h.db")
    labs = {lab["lab"]: lab for lab in json.loads(out)["labs"]}
    assert sorted(f["cause"] for f in labs["lab-09"]["findings"]) == sorted(EXPECTED["lab-09"]["causes"])
    titles = [f["title"] for f in labs["lab-09"]["findings"] if f["cause"] == "fip-upstream-no-masquerade"]
    assert titles and all(t.startswith("(from the copied rules) ") for t in titles)
    assert sorted(f["cause"] for f in labs["lab-07"]["findings"]) == sorted(EXPECTED["lab-07"]["causes"])
    assert all(f["title"].startswith("(from the copied rules) ") for f in labs["lab-07"]["findings"])
    assert code == 1

    (rules / "floating-ips" / "broken.yaml").write_text("cause: [unclosed\n")
    code, _, err = batch(capsys, LABS / "lab-09", "--rules", rules, db=tmp_path / "h.db")
    assert code == 2 and "a rule file cannot be used" in err and "broken.yaml:" in err


@pytest.mark.parametrize("columns, rows", [(100, 30), (0, 0)])     # 0 x 0: a terminal that says no size
def test_a_progress_bar_on_a_terminal_and_none_elsewhere(tmp_path, columns, rows):
    labs = [str(LABS / name) for name in ("lab-01", "lab-02", "lab-03")]
    command = [sys.executable, str(ROOT / "app.py"), "batch", *labs, "--workers", "1",
               "--db", str(tmp_path / "h.db")]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 1 and piped.stderr == ""

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal, text=True,
                          env=environment) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:                      # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        out = process.stdout.read()
    os.close(controller)
    assert process.returncode == 1 and out.startswith("stackdoc batch: 3 labs")
    bar = shown.decode().split("\r")[1]
    assert bar.startswith("diagnosing:   0%|") and "0/3" in bar
    assert len(bar) == (columns or 80)                                   # as wide as the terminal


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_each_labs_report_is_what_diagnose_prints_for_it(capsys, tmp_path, fmt):
    labs = [str(LABS / "lab-09"), str(LABS / "lab-05")]
    batch(capsys, *labs, "--format", fmt, "--out", tmp_path / fmt, "--workers", "2", db=tmp_path / "h.db")
    extension = {"text": "txt", "json": "json", "markdown": "md"}[fmt]
    for lab in labs:
        main(["diagnose", lab, "--format", fmt])
        assert (tmp_path / fmt / f"{Path(lab).name}.{extension}").read_text() == capsys.readouterr().out
