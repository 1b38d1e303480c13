"""ini: fixture pairs, recognition, grep prefixes, continuation lines, damaged input."""
import pytest
from hypothesis import given, settings, strategies as st

from grammar import ini
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "ini"


def fixture(name: str) -> str:
    return (FIXTURES / KIND / f"{name}.out").read_text()


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("path", [
    "/etc/nova/nova.conf", "/etc/cinder/cinder.conf", "/etc/glance/glance-api.conf",
    "/etc/nova/api-paste.ini", "/etc/neutron/plugins/ml2/ml2_conf.ini", "/etc/mysql/my.cnf",
    "/etc/mysql/mariadb.conf.d/50-server.cnf", "/etc/keystone/keystone.conf", "/etc/swift/proxy-server.conf",
    "/etc/pip.conf", "/etc/heat/heat.conf",
])
def test_files_match(path):
    assert ini.FILES.search(path)


@pytest.mark.parametrize("path", [
    "/etc/rabbitmq/rabbitmq.config", "/etc/resolv.conf", "/etc/sysctl.conf", "/etc/sysctl.d/99-sysctl.conf",
    "/etc/apache2/apache2.conf", "/etc/nsswitch.conf", "/etc/ntp.conf", "/var/log/nova/nova-api.log",
    "/etc/network/interfaces", "/etc/rabbitmq/rabbitmq-env.conf", "/home/user/nova.conf",
    "/etc/nova/nova.conf.bak",
])
def test_files_do_not_match(path):
    assert not ini.FILES.search(path)


@pytest.mark.parametrize("command", [
    "cat /etc/nova/nova.conf", "grep rabbit /etc/nova/nova.conf", "grep -n rabbit /etc/cinder/cinder.conf",
    "grep -v '^#' /etc/nova/nova.conf | grep -v '^$'", "grep -H rabbit /etc/nova/nova.conf /etc/cinder/cinder.conf",
])
def test_commands_match(command):
    assert ini.COMMANDS.search(command)


@pytest.mark.parametrize("command", [
    "cat /etc/rabbitmq/rabbitmq.config", "cat /etc/resolv.conf", "sysctl -p /etc/sysctl.conf", "ip route",
    "dpkg -l", "service nova-api restart", "sed -i 's/a/b/' /etc/nova/nova.conf", "cat /etc/sysctl.conf",
    "tail /var/log/nova/nova-api.log",
])
def test_commands_do_not_match(command):
    assert not ini.COMMANDS.search(command)


@pytest.mark.parametrize("name", ["grep_v_comments_nova_conf_debian12", "cat_nova_api_paste_ini_debian12",
                                  "cat_cinder_api_paste_ini_debian12", "cat_mariadb_cnf",
                                  "cat_pip_conf_this_machine", "grep_h_two_files_debian12",
                                  "grep_hn_b1_context_debian12", "grep_v_comments_mariadb_cnf"])
def test_looks_like(name):
    assert ini.looks_like(fixture(name))


@pytest.mark.parametrize("text", [
    "", "rabbit_host=openstack\n",  # a lone key=value could be a shell environment file
    "default via 10.0.0.1 dev eth0\n", "net.ipv4.ip_forward = 1\n",
    (FIXTURES / "oslo_log" / "neutron_server_icehouse_amqp_unreachable.out").read_text(),
    (FIXTURES / "dpkg_list" / "dpkg_s_python3_debian12.out").read_text(),
    "--\n--\n",
])
def test_looks_like_rejects(text):
    assert not ini.looks_like(text)


def test_sections_and_colon_delimiter():
    records = ini.parse(fixture("cat_nova_api_paste_ini_debian12")).records
    urlmap = [r for r in records if r["section"] == "composite:osapi_compute"]
    assert [(r["key"], r["value"]) for r in urlmap] == [
        ("use", "call:nova.api.openstack.urlmap:urlmap_factory"), ("/", "oscomputeversions"),
        ("/v2", "oscomputeversion_legacy_v2"), ("/v2.1", "oscomputeversion_v2"),
        ("/v2/+", "openstack_compute_api_v21_legacy_v2_compatible"), ("/v2.1/+", "openstack_compute_api_v21")]


def test_grep_prefixes_and_context_lines():
    records = ini.parse(fixture("grep_n_a1_lvm_section_debian12")).records
    assert records == [{"type": "config_option", "line": 2, "file": None, "section": "lvm",
                        "key": "volume_driver", "value": "cinder.volume.drivers.lvm.LVMVolumeDriver"}]
    records = ini.parse(fixture("grep_hn_b1_context_debian12")).records
    assert {r["file"] for r in records} == {"/etc/nova/nova.conf"}


def test_grep_separator_forgets_the_section():
    text = "31:[database]\n32-connection=mysql://nova:nova@openstack/nova\n--\n43:auth_strategy=keystone\n"
    records = ini.parse(text).records
    assert [r["section"] for r in records] == ["database", None]


def test_continuation_lines_are_appended():
    # nova.conf's real lines, the second indented the way a hand edit leaves it.
    text = "[DEFAULT]\nenabled_apis=ec2,osapi_compute,metadata\n    ,osapi_volume\nauth_strategy=keystone\n"
    records = ini.parse(text).records
    assert records[0]["value"] == "ec2,osapi_compute,metadata\n,osapi_volume"
    assert records[1]["key"] == "auth_strategy"


def test_quotes_and_spaces():
    records = ini.parse('[DEFAULT]\nlogging_context_format_string = "%(asctime)s %(message)s"\nkey=\n').records
    assert records[0]["value"] == "%(asctime)s %(message)s"
    assert records[1]["value"] == ""


def test_options_without_value():
    records = ini.parse("[mysqld]\nskip-name-resolve\nuser = mysql\n").records
    assert records[0] == {"type": "config_option", "line": 2, "file": None, "section": "mysqld",
                          "key": "skip-name-resolve", "value": None}


def test_broken_lines_are_problems_and_the_rest_is_read():
    lines = fixture("grep_v_comments_nova_conf_debian12").splitlines()
    lines.insert(17, "[database")          # a section header missing its bracket
    lines.insert(1, "    stray indented line")  # continues nothing: blank-free but right after a header
    result = ini.parse("\n".join(lines) + "\n")
    assert [p.line for p in result.problems] == [2, 19]
    assert len(result.records) == 33


def test_empty_binary_truncated():
    assert ini.parse("").records == [] and ini.parse("").problems == []
    blob = bytes(range(256)).decode("latin-1")
    result = ini.parse(blob + "\n[DEFAULT]\ndebug=True\n")
    assert result.records[-1]["key"] == "debug"
    assert all(p.line >= 1 for p in result.problems)
    text = fixture("grep_v_comments_nova_conf_debian12")
    cut = ini.parse(text[: text.index("connection = sqlite") + 19])
    assert cut.records[-1] == {"type": "config_option", "line": 18, "file": None, "section": "database",
                               "key": "connection", "value": "sqlite"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_raises(text):
    result = ini.parse(text)
    assert all(p.line >= 1 for p in result.problems)
    ini.looks_like(text)


def test_a_broken_line_read_again_is_the_same_problem_at_its_own_line():
    # each distinct line (and lark's error for it) is kept: the second copy of a file
    # says the same, at its own lines
    lines = fixture("grep_v_comments_nova_conf_debian12").splitlines()
    lines.insert(17, "[database")
    text = "\n".join(lines) + "\n"
    once = ini.parse(text)
    twice = ini.parse(text + "\n" + text)
    offset = len(lines) + 1
    assert [(p.line, p.reason, p.column) for p in twice.problems] == [
        (p.line + extra, p.reason, p.column) for extra in (0, offset) for p in once.problems]
    assert len(twice.records) == 2 * len(once.records)
