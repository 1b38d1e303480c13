"""service_status: fixture pairs, recognition, each init system's forms, damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import service_status
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "service_status"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


def states(text, command=""):
    return [(r["service"], r["running"], r["state"], r["pid"]) for r in service_status.parse(text, command).records]


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", [
    "service nova-network restart", "service rabbitmq-server status", "service --status-all",
    "status nova-api", "restart nova-compute", "stop nova-network", "/etc/init.d/rabbitmq-server status",
    "systemctl status nova-api", "systemctl status openstack-nova-compute.service",
    "systemctl --no-pager status nova-api", "systemctl restart neutron-server", "rabbitmqctl status",
    "openstack-service status", "initctl status nova-api",
])
def test_commands_match(command):
    assert service_status.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "rabbitmqctl list_queues", "systemctl daemon-reload", "systemctl list-units", "nova service-list",
    "openstack compute service list", "nova-manage service list", "ip route", "dpkg -l",
    "cat /etc/nova/nova.conf", "service", "journalctl -u nova-api",
])
def test_commands_do_not_match(command):
    assert not service_status.COMMANDS.search(command)
    assert service_status.FILES is None


# systemctl in a container without systemd says nothing about any service: it is
# among the texts test_looks_like_rejects checks.
STATUS_CASES = [case for case in cases(KIND) if case[0] != "systemd_not_pid1_container"]


@pytest.mark.parametrize("name,out,expected", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_looks_like_every_status_fixture(name, out, expected):
    assert service_status.looks_like(out.read_text())


@pytest.mark.parametrize("text", [
    "", "default via 10.0.0.1 dev eth0\n", "[DEFAULT]\ndebug = True\n",
    (FIXTURES / "oslo_log" / "neutron_server_icehouse_amqp_unreachable.out").read_text(),
    (FIXTURES / "dpkg_list" / "dpkg_l_python3_qemu_utils_debian12.out").read_text(),
    (FIXTURES / "traceback" / "py311_urlopen_refused_chained.out").read_text(),
    fixture("systemd_not_pid1_container"),
])
def test_looks_like_rejects(text):
    assert not service_status.looks_like(text)


def test_upstart_restart():
    assert states(fixture("upstart_nova_network_restart"), "service nova-network restart") == [
        ("nova-network", False, "stop/waiting", None), ("nova-network", True, "start/running", 2168)]


def test_name_from_the_command_when_the_output_has_none():
    # Upstart's "stop" of a job that is not running names no job (upstart cannot run on
    # this Debian machine, so its one-line message is written here), then the seed's start.
    text = "stop: Unknown instance: \n" + fixture("upstart_nova_network_restart").splitlines()[1] + "\n"
    assert states(text, "service nova-network restart")[0] == (
        "nova-network", False, "unknown instance", None)
    # without the command there is nobody to name: a problem, the other line still read
    result = service_status.parse(text)
    assert [p.line for p in result.problems] == [1] and len(result.records) == 1


def test_announcement_names_without_a_command():
    assert states(fixture("debian_cron_restart"))[1] == ("cron", True, "started", None)
    assert states(fixture("debian_dbus_restart"))[1] == ("dbus", True, "started", None)
    assert states(fixture("debian_rabbitmq_restart")) == [("rabbitmq-server", True, "restarted", None)]
    # the name glued to the warning that follows it, the result on the next line
    assert states(fixture("debian_rabbitmq_start_failed")) == [
        ("rabbitmq-server", False, "failed to start", None)]
    assert states(fixture("debian_rabbitmq_start_already_running")) == [
        ("rabbitmq-server", True, "started", None)]


def test_systemd_units():
    assert states(fixture("systemd_manpage_bluetooth_status")) == [("bluetooth", True, "active (running)", 930)]
    assert states(fixture("systemd_manpage_timesyncd_status")) == [
        ("systemd-timesyncd", True, "active (running)", 595)]
    # No systemd runs here: the other states are the manual's example with the marks and
    # states systemctl(1) documents ("○" inactive, "×" failed, Loaded: "not-found"), in
    # the wording of systemctl's own format strings (" (Result: %s)", "(code=%s, status=...)",
    # "Unit %s could not be found.") and sub-states (systemctl --state=help: dead, failed).
    example = fixture("systemd_manpage_bluetooth_status")
    inactive = (example.replace("● bluetooth", "○ bluetooth").replace("active (running)", "inactive (dead)")
                .replace("Main PID: 930 (bluetoothd)", "Main PID: 930 (code=killed, signal=TERM)"))
    assert states(inactive) == [("bluetooth", False, "inactive (dead)", None)]  # a dead process is no pid
    failed = (example.replace("● bluetooth", "× bluetooth")
              .replace("active (running)", "failed (Result: exit-code)")
              .replace("Main PID: 930 (bluetoothd)", "Main PID: 930 (code=exited, status=1/FAILURE)"))
    assert states(failed) == [("bluetooth", False, "failed (Result: exit-code)", None)]
    not_found = inactive.replace("Loaded: loaded", "Loaded: not-found")
    assert states(not_found) == [("bluetooth", False, "not-found", None)]
    assert states("Unit nova-api.service could not be found.\n") == [("nova-api", False, "not-found", None)]


def test_systemd_report_cut_before_active():
    # "systemctl status systemd-timesyncd bluetooth": two reports, the second cut after
    # its Loaded: line.
    first = fixture("systemd_manpage_timesyncd_status")
    second = fixture("systemd_manpage_bluetooth_status").splitlines()[:2]
    text = first + "\n" + "\n".join(second) + "\n"
    result = service_status.parse(text)
    assert states(text) == [("systemd-timesyncd", True, "active (running)", 595)]
    assert [p.line for p in result.problems] == [len(first.splitlines()) + 2]


def test_rabbitmqctl():
    assert states(fixture("rabbitmqctl_status_running_3_10")) == [("rabbit@localhost", True, "running", 8841)]
    result = service_status.parse(fixture("rabbitmqctl_status_nodedown_3_10"))
    (record,) = result.records
    assert record["service"] == "rabbit@localhost" and record["running"] is False
    assert record["state"].startswith("unable to perform an operation on node 'rabbit@localhost'")
    assert result.problems == []  # the diagnostics after the error are part of its report


def test_not_running_forms():
    assert states(fixture("debian_dbus_status_not_running")) == [("dbus", False, "is not running", None)]
    assert states(fixture("debian_cron_unrecognized")) == [("cron", False, "unrecognized service", None)]
    assert states(fixture("debian_status_all"))[0] == ("dbus", False, "[ - ]", None)
    assert states(fixture("debian_status_all_dbus_up"))[0] == ("dbus", True, "[ + ]", None)


def test_container_without_systemd_says_nothing():
    result = service_status.parse(fixture("systemd_not_pid1_container"), "systemctl status nova-api")
    assert result.records == [] and result.problems == []


def test_garbage_between_status_lines():
    lines = fixture("debian_status_all_cron_up").splitlines()
    lines.insert(4, "\x1b[0m\x00garbage")
    result = service_status.parse("\n".join(lines))
    assert [p.line for p in result.problems] == [5]
    assert len(result.records) == 7


def test_empty_binary_truncated():
    assert service_status.parse("").records == []
    result = service_status.parse(bytes(range(256)).decode("latin-1"))
    assert all(p.line >= 1 for p in result.problems)
    cut = service_status.parse("nova-network start/running, proc")
    assert cut.records == [] and [p.line for p in cut.problems] == [1]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["", "service nova-api restart", "systemctl status x"]))
def test_never_raises(text, command):
    result = service_status.parse(text, command)
    assert all(p.line >= 1 for p in result.problems)
    assert all(not any(k.startswith("_") for k in r) for r in result.records)
    service_status.looks_like(text)
