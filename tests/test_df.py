"""df: fixture pairs (real df of a full tmpfs), recognition, wrapped rows, damaged
input, and df run here on a filesystem the test fills."""
import os
import shutil
import subprocess

import pytest

from grammar import df
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "df"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["df", "df -h", "df -h /var/lib/nova/instances", "df -k", "df -P", "df -T -h", "df -i"])
def test_commands_are_df(command):
    assert kind_for_command(command)[0] == "df"


@pytest.mark.parametrize("command", ["dfx", "du -sh /var/lib/nova/instances", "ip addr"])
def test_commands_are_not_df(command):
    assert kind_for_command(command)[0] != "df"


def test_text_with_no_command_is_recognised():
    assert kind_for_text((FIXTURES / KIND / "coreutils_h_instances_full_tmpfs.out").read_text()) == "df"
    assert not df.looks_like("default via 10.0.0.1 dev eth0\n")


def test_the_full_filesystem_reads_as_full():
    rows = df.parse((FIXTURES / KIND / "coreutils_h_path_instances_full.out").read_text()).records
    assert [(r["mounted_on"], r["use_percent"], r["available"]) for r in rows] == [
        ("/var/lib/nova/instances", 100, "0")]


def test_a_wrapped_row_is_one_record():
    # coreutils before 8.21 (Ubuntu 12.04, CentOS 6) wraps a long device name onto a
    # line of its own, the numbers on the next (df -P never does).
    text = ("Filesystem           1K-blocks      Used Available Use% Mounted on\n"
            "/dev/mapper/ubuntu--vg-root\n"
            "                      19478204   5112060  13353664  28% /\n"
            "udev                    493912         4    493908   1% /dev\n")
    rows = df.parse(text).records
    assert [(r["line"], r["filesystem"], r["use_percent"], r["mounted_on"]) for r in rows] == [
        (2, "/dev/mapper/ubuntu--vg-root", 28, "/"), (4, "udev", 1, "/dev")]


def test_a_wrapped_typed_row_keeps_its_type():
    # df -T on those versions wraps the same way: the type starts the second half
    text = ("Filesystem                  Type 1K-blocks    Used Available Use% Mounted on\n"
            "/dev/mapper/ubuntu--vg-root\n"
            "                            ext4  19478204 5112060  13353664  28% /\n"
            "udev                   devtmpfs    493912       4    493908   1% /dev\n")
    rows = df.parse(text, "df -T").records
    assert [(r["line"], r["filesystem"], r["fstype"], r["size"]) for r in rows] == [
        (2, "/dev/mapper/ubuntu--vg-root", "ext4", "19478204"), (4, "udev", "devtmpfs", "493912")]


def test_damaged_input_names_its_line():
    text = (FIXTURES / KIND / "coreutils_h_instances_free.out").read_text()
    lines = text.splitlines()
    lines.insert(2, "tmpfs 1.0M \x00garbage")
    lines.append("/dev/sdb1")  # cut after the name
    result = df.parse("\n".join(lines) + "\n")
    assert len(result.records) == 4
    assert [p.line for p in result.problems] == [3, 7]
    assert "no numbers after it" in result.problems[1].reason


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root to mount a tmpfs")
def test_real_df_of_a_filled_tmpfs(tmp_path):
    # a private mount namespace: the tmpfs is never seen by the host
    script = (f"mount -t tmpfs -o size=256k tmpfs {tmp_path} && "
              f"(dd if=/dev/zero of={tmp_path}/fill bs=4k 2>/dev/null; true) && df -h {tmp_path}")
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=60).stdout
    rows = df.parse(out, f"df -h {tmp_path}").records
    assert [(r["filesystem"], r["use_percent"], r["mounted_on"]) for r in rows] == [("tmpfs", 100, str(tmp_path))]
