"""du: fixture pairs (real coreutils du on a filled tmpfs mounted on
/var/lib/nova/instances), which path fills the folder, units, recognition, damaged
input, and du run here."""
import subprocess

import pytest

from grammar import du
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "du"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["du -sh /var/lib/nova/instances/*", "du", "du -h --max-depth=1 /var"])
def test_du_commands(command):
    assert kind_for_command(command)[0] == "du"


def test_the_largest_names_what_fills_the_folder():
    def largest(name, command):
        records = du.parse((FIXTURES / KIND / f"{name}.out").read_text(), command).records
        return [r["location"] for r in records if r["largest"]]
    assert largest("du_sh_instances_star", "du -sh /var/lib/nova/instances/*") == ["/var/lib/nova/instances/fill.img"]
    assert largest("du_s_kilobytes", "du -s /var/lib/nova/instances/*") == ["/var/lib/nova/instances/fill.img"]
    # -c's total and a folder listed beside its own sub-folders are sums, never the culprit
    assert largest("du_sch_total", "du -sch a b") == ["/var/lib/nova/instances/fill.img"]
    # --max-depth=1 lists folders only: the 46M file beside them is not listed, so no
    # folder is named for it
    assert largest("du_h_max_depth_1", "du -h --max-depth=1 /var/lib/nova/instances") == []


def test_human_sizes_and_blocks_agree():
    human = {r["location"]: r["kbytes"] for r in du.parse((FIXTURES / KIND / "du_sh_instances_star.out").read_text(), "du -sh").records}
    blocks = {r["location"]: r["kbytes"] for r in du.parse((FIXTURES / KIND / "du_s_kilobytes.out").read_text(), "du -s").records}
    assert human.keys() == blocks.keys()
    for path, kbytes in blocks.items():
        assert abs(human[path] - kbytes) <= max(0.05 * kbytes, 1024), path  # -h rounds to 2 digits


def test_pasted_with_spaces_for_tabs_and_without_its_command():
    text = (FIXTURES / KIND / "du_sh_instances_star.out").read_text().replace("\t", "    ")
    assert kind_for_text((FIXTURES / KIND / "du_sh_instances_star.out").read_text()) == "du"
    records = du.parse(text, "").records
    assert [r["location"] for r in records if r["largest"]] == ["/var/lib/nova/instances/fill.img"]


def test_a_damaged_line_names_its_line():
    result = du.parse("12M\t/var/lib/nova/instances/_base\nM46 /var/lib/nova/instances/fill.img\n", "du -sh")
    assert len(result.records) == 1 and [p.line for p in result.problems] == [2]


def test_real_du_here(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 300_000)
    (tmp_path / "small").write_bytes(b"x" * 10_000)
    out = subprocess.run(["du", "-sk", str(tmp_path / "big"), str(tmp_path / "small")],
                         capture_output=True, text=True, timeout=30).stdout
    records = du.parse(out, "du -sk").records
    assert [r["location"] for r in records if r["largest"]] == [str(tmp_path / "big")]
    assert records[0]["kbytes"] >= 290
