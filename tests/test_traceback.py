"""traceback: fixture pairs, recognition, chains, damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import traceback
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "traceback"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_looks_like_every_fixture(name, out, expected):
    assert traceback.looks_like(out.read_text())


@pytest.mark.parametrize("text", [
    "", "Traceback (most recent call last):\n",  # a header alone is not enough
    "default via 10.0.0.1 dev eth0\n", "[DEFAULT]\ndebug = True\n",
    "ImportError: No module named argparse\n",
    (FIXTURES / "oslo_log" / "y2014_cinder_api_glance_refused.out").read_text(),  # TRACE lines: oslo_log's
])
def test_looks_like_rejects(text):
    assert not traceback.looks_like(text)


@pytest.mark.parametrize("command", [
    "python x.py", "elasticluster list-templates", "ip route", "dpkg -l", "service nova-api status",
])
def test_no_command_is_claimed(command):
    # Found by content instead: a Python program prints other things too.
    assert not traceback.COMMANDS.search(command)
    assert traceback.FILES is None


def test_python26_egg_frames():
    (record,) = traceback.parse(fixture("elasticluster_py26_importerror")).records
    assert record["python_version"] == "2.6"
    assert record["exception_type"] == "ImportError"
    assert record["exception_message"] == "No module named argparse"
    assert [f["code"] for f in record["frames"][1:4]] == [None, None, None]
    assert record["frames"][-1] == {"file": "/root/elasticluster/lib/python2.6/site-packages/oauth2client/tools.py",
                                   "line": 27, "function": "<module>", "code": "import argparse"}


def test_chained_tracebacks():
    (record,) = traceback.parse(fixture("py311_urlopen_refused_chained")).records
    assert record["exception_type"] == "urllib.error.URLError"
    assert record["causes"] == [{"exception_type": "ConnectionRefusedError",
                                 "exception_message": "[Errno 111] Connection refused"}]
    assert (record["line"], record["end_line"]) == (1, 44)
    # 3.11's ^^^^ markers are not code
    assert all(f["code"] is None or not set(f["code"]) <= set("^~ ") for f in record["frames"])


def test_text_around_a_traceback_is_not_a_problem():
    text = "Setting up keystone ...\n" + fixture("elasticluster_py26_importerror") + "root@api-node:~# exit\n"
    result = traceback.parse(text)
    assert result.problems == []
    assert result.records[0]["line"] == 2 and result.records[0]["end_line"] == 18


def test_indented_traceback():
    text = "".join("   " + line + "\n" for line in fixture("elasticluster_py26_importerror").splitlines())
    (record,) = traceback.parse(text).records
    assert record["exception_type"] == "ImportError" and len(record["frames"]) == 9


def test_two_tracebacks():
    text = fixture("py311_json_decode_carets") + "\n" + fixture("elasticluster_py26_importerror")
    records = traceback.parse(text).records
    assert [r["exception_type"] for r in records] == ["json.decoder.JSONDecodeError", "ImportError"]
    assert records[1]["line"] == 13


def test_truncated_traceback_gives_a_record_and_a_problem():
    lines = fixture("elasticluster_py26_importerror").splitlines()[:10]
    result = traceback.parse("\n".join(lines) + "\n")
    (record,) = result.records
    assert record["exception_type"] is None and len(record["frames"]) == 6
    assert [p.line for p in result.problems] == [10]


def test_a_line_cut_inside_a_frame_keeps_the_frames_before_it():
    text = fixture("elasticluster_py26_importerror")
    cut = text[: text.index("elasticluster/conf.py") + 4]
    result = traceback.parse(cut)
    assert result.records and len(result.records[0]["frames"]) == 6
    assert result.problems and all(p.line == 11 for p in result.problems)


def test_empty_and_binary():
    assert traceback.parse("").records == []
    blob = bytes(range(256)).decode("latin-1")
    result = traceback.parse(blob + "\n" + fixture("py311_warning_then_importerror"))
    assert result.records[0]["exception_type"] == "ModuleNotFoundError"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(fixture("py311_urlopen_refused_chained").splitlines()
                                + fixture("elasticluster_py26_importerror").splitlines()
                                + ["", "garbage", "  File \"x", "    ^^^"]), max_size=50))
def test_shuffled_real_lines_never_raise(lines):
    text = "\n".join(lines)
    result = traceback.parse(text)
    assert all(1 <= p.line <= len(lines) for p in result.problems)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    traceback.parse(text)
    traceback.looks_like(text)


def test_a_traceback_read_again_reads_the_same_and_is_its_own():
    # a service logs the same traceback over and over: read once, each record its own
    text = fixture("elasticluster_py26_importerror")
    first = traceback.parse(text).records
    again = traceback.parse(text).records
    assert first == again and first[0]["frames"]
    first[0]["frames"][0]["line"] = -1
    assert again[0]["frames"][0]["line"] != -1
    assert traceback.parse(text).records[0]["frames"][0]["line"] != -1
