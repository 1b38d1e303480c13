"""History across two runs of a class: between them one lab was fixed, another broken,
a third left as it was. ``--since last`` says so per lab, ``history`` lists the runs and
a lab's diagnoses, and the chat's /instructor page shows the runs beside the sessions."""
import json
import shutil

import pytest

from app import main
from benchmarks import gen_class
from web import create_app


@pytest.fixture
def classroom(tmp_path):
    """lab-a: the SNAT fault (seed naming), lab-b: healthy (other naming), lab-c: the
    gateway's missing return route; each renamed as lab 1, 2, 3 of a class would be."""
    root = tmp_path / "class"
    gen_class.write_lab("seed-snat-wrong-interface", root / "lab-a", 1)
    gen_class.write_lab("other-healthy", root / "lab-b", 2)
    gen_class.write_lab("other-gateway-no-return-route", root / "lab-c", 3, node_folders=True)
    return root


def batch(capsys, *args):
    code = main(["batch", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _second_run_after_a_night(classroom, capsys, db, *extra):
    assert batch(capsys, "--class", classroom, "--workers", "1", "--db", db)[0] == 1
    shutil.rmtree(classroom / "lab-a")
    gen_class.write_lab("seed-healthy", classroom / "lab-a", 1)                 # fixed
    shutil.rmtree(classroom / "lab-b")
    gen_class.write_lab("other-gateway-no-masquerade", classroom / "lab-b", 2)  # broken
    return batch(capsys, "--class", classroom, "--workers", "1", "--db", db, "--since", "last", *extra)


def test_since_last_says_what_is_new_fixed_and_still_broken(classroom, capsys, tmp_path):
    code, out, _ = _second_run_after_a_night(classroom, capsys, tmp_path / "h.db", "--format", "json")
    assert code == 1
    labs = {lab["lab"]: lab["since"] for lab in json.loads(out)["labs"]}
    assert labs["lab-a"]["previous_run"] == 1
    assert [(f["cause"], f["node"]) for f in labs["lab-a"]["fixed"]] == \
        [("fip-snat-wrong-interface", "net01")]
    assert labs["lab-a"]["new"] == [] and labs["lab-a"]["still"] == []
    assert [(f["cause"], f["node"]) for f in labs["lab-b"]["new"]] == [("fip-upstream-no-masquerade", "lab02-gateway")]
    assert labs["lab-b"]["fixed"] == [] and not labs["lab-b"]["evidence_unchanged"]
    assert [f["cause"] for f in labs["lab-c"]["still"]] == ["fip-upstream-no-return-route"]
    assert labs["lab-c"]["evidence_unchanged"] is True


def test_since_last_in_the_text_summary_and_on_the_summary_page(classroom, capsys, tmp_path):
    code, out, _ = _second_run_after_a_night(classroom, capsys, tmp_path / "h.db")
    assert "since run 1: fixed: fip-snat-wrong-interface (net01)" in out
    assert "since run 1: new: fip-upstream-no-masquerade (lab02-gateway)" in out
    assert ("since run 1: still broken: fip-upstream-no-return-route (s03-gw01); evidence unchanged"
            in out)
    code, _, _ = batch(capsys, "--class", classroom, "--workers", "1", "--db", tmp_path / "h.db",
                       "--since", "last", "--format", "html", "--out", tmp_path / "html")
    page = (tmp_path / "html" / "index.html").read_text()
    assert "<th scope='col'><button type='button'>Since last run</button></th>" in page
    assert "since run 2: nothing found then or now; evidence unchanged" in page     # lab-a, fixed


def test_the_first_run_of_a_lab_says_so(classroom, capsys, tmp_path):
    code, out, _ = batch(capsys, "--class", classroom, "--workers", "1", "--db", tmp_path / "h.db",
                         "--since", "last", "--format", "json")
    assert [lab["since"]["previous_run"] for lab in json.loads(out)["labs"]] == [None, None, None]
    code, out, _ = batch(capsys, "--class", classroom, "--workers", "1", "--db", tmp_path / "h.db",
                         "--since", "last")
    assert out.count("first diagnosis") == 0 and out.count("since run 1:") == 3


def test_history_lists_runs_and_a_labs_diagnoses(classroom, capsys, tmp_path):
    db = tmp_path / "h.db"
    _second_run_after_a_night(classroom, capsys, db)
    assert main(["history", "--db", str(db)]) == 0
    runs = capsys.readouterr().out.splitlines()
    assert runs[0].split()[:3] == ["run", "started", "status"]
    assert runs[1].split()[0] == "2" and runs[2].split()[0] == "1"
    assert "complete" in runs[1] and "fip-upstream-no-masquerade 1" in runs[1]
    assert "fip-snat-wrong-interface 1" in runs[2] and "fip-snat-wrong-interface" not in runs[1]

    assert main(["history", "lab-a", "--db", str(db)]) == 0
    lab = capsys.readouterr().out
    assert lab.splitlines()[0] == f"lab-a ({classroom / 'lab-a'})"
    newest, oldest = lab.split("  run ")[1:]
    assert newest.startswith("  2") and "nothing found" in newest
    assert oldest.startswith("  1") and "[established] fip-snat-wrong-interface (net01)" in oldest
    assert main(["history", str(classroom / "lab-a"), "--db", str(db)]) == 0      # by its folder
    assert capsys.readouterr().out == lab

    assert main(["history", "lab-z", "--db", str(db)]) == 2
    assert "lab-z: no batch run has diagnosed" in capsys.readouterr().err
    assert main(["history", "--db", str(tmp_path / "none.db")]) == 2


def test_the_instructor_page_shows_batch_runs_beside_chat_sessions(classroom, capsys, tmp_path):
    db = tmp_path / "stackdoc.db"
    app = create_app({"TESTING": True, "DATABASE": str(db)})
    client = app.test_client()
    assert client.get("/instructor").status_code == 404                        # closed without its token
    instructor = f"/instructor?token={app.config['INSTRUCTOR_TOKEN']}"
    page = client.get(instructor).get_data(as_text=True)
    assert "<h1>Sessions</h1>" in page and "No batch run yet" in page
    _second_run_after_a_night(classroom, capsys, db)
    client.post("/api/sessions", json={})
    page = client.get(instructor).get_data(as_text=True)
    assert "<h1>Sessions</h1>" in page and "<h1>Batch runs</h1>" in page
    runs = page[page.index("<h1>Batch runs</h1>"):]
    assert runs.index("<td>2</td>") < runs.index("<td>1</td>")                     # newest first
    assert "<code>fip-upstream-no-masquerade</code> 1" in runs
    assert "<code>fip-upstream-no-return-route</code> 1" in runs
