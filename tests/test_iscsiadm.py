"""iscsiadm: fixture pairs (Debian's open-iscsi run here), the session and target lines,
and the real iscsiadm's exit code 21 for a rescan with no session."""
import shutil
import subprocess

import pytest

from grammar import iscsiadm
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "iscsiadm"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


def test_commands_and_text():
    assert kind_for_command("iscsiadm -m session")[0] == "iscsiadm"
    assert kind_for_command("sudo iscsiadm -m discovery -t st -p 10.0.0.41")[0] == "iscsiadm"
    assert kind_for_text("iscsiadm: No session found.\n") == "iscsiadm"


def test_session_and_target_lines():
    # the forms open-iscsi prints for -m session and for discovery / -m node
    text = ("tcp: [1] 10.0.0.41:3260,1 iqn.2010-10.org.openstack:volume-6d6c (non-flash)\n"
            "10.0.0.41:3260,1 iqn.2010-10.org.openstack:volume-6d6c\n"
            "iscsiadm: cannot make connection to 10.0.0.99: Connection refused\n")
    records = iscsiadm.parse(text).records
    assert [(r["type"], r.get("portal"), r.get("reason")) for r in records] == [
        ("iscsi_session", "10.0.0.41", None), ("iscsi_target", "10.0.0.41", None),
        ("iscsiadm_error", "10.0.0.99", "refused")]


@pytest.mark.skipif(not shutil.which("iscsiadm"), reason="needs iscsiadm (open-iscsi; make install)")
def test_real_rescan_with_no_session_exits_21():
    done = subprocess.run(["iscsiadm", "-m", "node", "-T", "iqn.2010-10.org.openstack:volume-test",
                           "-p", "127.0.0.1:3260", "--rescan"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 21
    records = iscsiadm.parse(done.stdout + done.stderr).records
    assert [r["reason"] for r in records] == ["no-session"]
