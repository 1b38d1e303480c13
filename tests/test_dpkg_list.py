"""dpkg_list: fixture pairs, recognition, dpkg -s stanzas, rpm -q, damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import dpkg_list
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "dpkg_list"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", [
    "dpkg -l", "dpkg -l qemu-utils", "dpkg -l | grep qemu", "dpkg-query -l 'libc6*'", "dpkg -s qemu-utils",
    "dpkg-query -s python3", "dpkg --list", "rpm -q qemu-img", "rpm -qa", "rpm -qa | grep openstack",
])
def test_commands_match(command):
    assert dpkg_list.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "dpkg -L qemu-utils", "dpkg -i foo.deb", "rpm -ql qemu-img", "rpm -qi qemu-img", "rpm -qf /usr/bin/qemu-img",
    "apt-get install qemu-utils", "ip route", "service nova-api status", "yum list installed",
])
def test_commands_do_not_match(command):
    assert not dpkg_list.COMMANDS.search(command)
    assert dpkg_list.FILES is None


@pytest.mark.parametrize("name", [
    "dpkg_l_python3_qemu_utils_debian12", "dpkg_query_l_libc6_glob_debian12", "dpkg_s_python3_debian12",
    "dpkg_s_qemu_utils_missing_debian12", "dpkg_l_grep_python3_debian12", "dpkg_s_python3_and_missing_debian12",
    "rpm_q_two_missing_here",
])
def test_looks_like(name):
    assert dpkg_list.looks_like(fixture(name))


@pytest.mark.parametrize("text", [
    "", "default via 10.0.0.1 dev eth0\n", "[DEFAULT]\ndebug = True\n",
    (FIXTURES / "oslo_log" / "nova_conductor_no_valid_host.out").read_text(),
    "nova-network start/running, process 2168\n",
])
def test_looks_like_rejects(text):
    assert not dpkg_list.looks_like(text)


def test_a_missing_package_and_an_installed_one():
    records = dpkg_list.parse(fixture("dpkg_l_python3_qemu_utils_debian12")).records
    assert [(r["name"], r["installed"], r["status"]) for r in records] == [
        ("qemu-utils", False, None), ("python3", True, "ii")]


def test_dpkg_s_status_becomes_letters():
    (record,) = dpkg_list.parse(fixture("dpkg_s_python3_debian12")).records
    assert record["status"] == "ii" and record["version"] == "3.11.2-1+b1" and record["arch"] == "amd64"
    for status, letters, installed in [
        ("deinstall ok config-files", "rc", False), ("install reinstreq half-installed", "iHR", False),
        ("install ok unpacked", "iU", False), ("install ok triggers-pending", "it", True),
        ("hold ok installed", "hi", True),
    ]:
        text = f"Package: qemu-utils\nStatus: {status}\n"
        (record,) = dpkg_list.parse(text).records
        assert (record["status"], record["installed"]) == (letters, installed)


def test_un_rows_have_no_version():
    records = dpkg_list.parse(fixture("dpkg_query_l_libc6_glob_debian12")).records
    un = [r for r in records if r["status"] == "un"]
    assert un and all(r["version"] is None and r["arch"] is None and r["description"] is None for r in un)


def test_rc_row_from_the_table():
    # The qemu-utils row as dpkg prints it after "apt-get remove" (state rc).
    row = fixture("dpkg_l_python3_qemu_utils_debian12").splitlines()[-1].replace("ii  python3", "rc  python3")
    (record,) = dpkg_list.parse(row).records
    assert record["status"] == "rc" and record["installed"] is False


def test_a_table_without_the_architecture_column():
    # dpkg before 1.16.2 had no Architecture column: drop it from a real table.
    lines = fixture("dpkg_l_python3_qemu_utils_debian12").splitlines()[1:]
    lines[3] = lines[3].replace("Architecture ", "")
    lines[5] = lines[5].replace("amd64        ", "")
    lines[5] = lines[5].replace("  interactive", "  all interactive")  # a description starting like an arch
    (record,) = dpkg_list.parse("\n".join(lines)).records
    assert record["arch"] is None and record["description"].startswith("all interactive")


def test_rpm_names_with_dashes_and_plus():
    records = dpkg_list.parse(fixture("rpm_q_prereqs_mixed")).records
    libstdcxx = [r for r in records if r["name"] == "libstdc++6"]
    assert libstdcxx and libstdcxx[0]["version"] == "12.2.0-14+deb12u1" and libstdcxx[0]["arch"] == "x86_64"
    assert [r["name"] for r in records if not r["installed"]] == [
        "libaio-devel", "qemu-img", "compat-libcap1", "libstdc++-devel"]


def test_garbage_in_the_middle():
    lines = fixture("dpkg_query_l_libc6_glob_debian12").splitlines()
    lines.insert(7, "\x00\x01 binary junk")
    result = dpkg_list.parse("\n".join(lines))
    assert [p.line for p in result.problems] == [8]
    assert len(result.records) == 8


def test_empty_binary_truncated():
    assert dpkg_list.parse("").records == []
    result = dpkg_list.parse(bytes(range(256)).decode("latin-1"))
    assert all(p.line >= 1 for p in result.problems)
    text = fixture("dpkg_l_python3_qemu_utils_debian12")
    cut = dpkg_list.parse(text[: text.index("python3        3.11") + 7])
    assert cut.problems and cut.problems[0].line == 7


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = dpkg_list.parse(text)
    assert all(p.line >= 1 for p in result.problems)
    dpkg_list.looks_like(text)
