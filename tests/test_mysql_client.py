"""mysql_client: the mysql client's connection and login errors (real MariaDB 10.11
output from a namespace; MySQL 5.5's 2014 forms from its source), recognition, damaged
input, and the real client run here against a port and a socket where no server is."""
import shutil
import socket
import subprocess

import pytest

from grammar import mysql_client
from grammar.kinds import kind_for_command, kind_for_text
from tests.fixture_pairs import FIXTURES, cases, check_case

KIND = "mysql_client"


@pytest.mark.parametrize("name,out,expected", cases(KIND), ids=[c[0] for c in cases(KIND)])
def test_fixture_pairs(name, out, expected):
    check_case(KIND, out, expected)


@pytest.mark.parametrize("command", ["mysql -u nova -p -h controller nova", "mysql", "mariadb -uroot -e 'select 1'"])
def test_mysql_commands(command):
    assert kind_for_command(command)[0] == "mysql_client"


@pytest.mark.parametrize("command", ["mysqladmin status", "mysqldump nova", "service mysql status"])
def test_other_commands_are_not_the_client(command):
    assert kind_for_command(command)[0] != "mysql_client"


def test_a_refused_login_is_told_from_a_server_that_does_not_answer():
    def said(name):
        [record] = mysql_client.parse((FIXTURES / KIND / f"{name}.out").read_text()).records
        return record["code"], record["error"]
    assert said("access_denied_wrong_password") == (1045, "access-denied")
    # MySQL 5.5 (2014) and MariaDB 10.11 say "nothing listens" in different words
    assert said("mysql55_refused") == (2003, "refused")
    assert said("refused_server_stopped") == (2002, "refused")
    assert said("timed_out_filtered") == (2002, "timed-out")
    assert said("no_socket_server_stopped") == said("mysql55_no_socket") == (2002, "no-socket")


def test_an_error_pasted_without_its_command_is_recognised():
    assert kind_for_text((FIXTURES / KIND / "mysql55_refused.out").read_text()) == "mysql_client"
    assert kind_for_text((FIXTURES / KIND / "access_denied_wrong_password.out").read_text()) == "mysql_client"


def test_a_query_result_is_no_error_and_no_problem():
    result = mysql_client.parse((FIXTURES / KIND / "connected_show_databases.out").read_text(), "mysql -e 'SHOW DATABASES'")
    assert result.records == [] and result.problems == []


def test_an_error_line_cut_short_names_its_line():
    text = "+---+\n| 1 |\n+---+\nERROR 1045 (28000: Access denied\n"
    result = mysql_client.parse(text, "mysql -u nova")
    assert result.records == [] and [p.line for p in result.problems] == [4]


def test_an_unknown_message_is_kept_as_other():
    [record] = mysql_client.parse("ERROR 1040 (08004): Too many connections\n", "mysql -u nova -h db01").records
    assert (record["error"], record["server"], record["message"]) == ("other", "db01", "Too many connections")


@pytest.mark.skipif(shutil.which("mysql") is None, reason="needs the mysql client (make install: mariadb-client)")
def test_the_real_client_against_a_closed_port_and_a_missing_socket(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = ["mysql", "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", "nova", "nova"]
    out = subprocess.run(closed, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    [refused] = mysql_client.parse(out.stdout + out.stderr, " ".join(closed)).records
    assert (refused["error"], refused["server"], refused["local"]) == ("refused", "127.0.0.1", False)
    missing = ["mysql", "--no-defaults", "-S", str(tmp_path / "mysqld.sock"), "-u", "nova", "nova"]
    out = subprocess.run(missing, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    [no_socket] = mysql_client.parse(out.stdout + out.stderr, " ".join(missing)).records
    assert (no_socket["code"], no_socket["error"], no_socket["local"], no_socket["errno"]) == (2002, "no-socket", True, 2)
