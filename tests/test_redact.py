"""Secrets read *** everywhere (issue 9, item 2).

Every option nova, glance, cinder, keystone and neutron (and the libraries they load
their options from: oslo.messaging, oslo.db, keystonemiddleware) mark ``secret=True``
— tests/fixtures/redact/secret_options.json, read from their sources at the refs it
names — is written into its service's configuration file, next to ``env`` output,
``export``, a mysql command line and log lines that carried passwords in real
OpenStack releases; the whole paste, as typed and wrapped at terminal widths, goes
through the CLI's four formats, the facts, the chat API, the transcript, the
instructor page and the database. No secret, nor any six characters of one, may
appear; the option names stay readable.
"""
import json
import random
import re
import sqlite3
import string
from pathlib import Path

import pytest

import grammar.transcript
from grammar.redact import MASK, redact
from grammar.transcript import read_transcript
from kb.diagnose import diagnose
from report.render import render
from web import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "redact"
FORMATS = ("text", "json", "markdown", "html")
TERMINAL_WIDTHS = (40, 60, 80, 100, 132)

# secret=True options whose value is no credential: user names and file paths.
NOT_CREDENTIALS = {
    "admin_user": "a user name (glance marks it secret)",
    "admin_tenant_name": "a project name (glance marks it secret)",
    "swift_store_user": "a user name",
    "swift_store_config_file": "a file path",
    "netapp_ca_certificate_file": "a file path",
    "netapp_certificate_file": "a file path",
    "netapp_private_key_file": "a file path",
}
# Options whose value is a URL with user:password@ in it.
URL_OPTIONS = {
    "connection": "mysql://nova:{secret}@192.0.2.5/nova",
    "slave_connection": "mysql+pymysql://nova:{secret}@192.0.2.6/nova?charset=utf8",
    "asyncio_connection": "postgresql://nova:{secret}@192.0.2.5/nova",
    "asyncio_slave_connection": "postgresql+asyncpg://nova:{secret}@192.0.2.6/nova",
    "transport_url": "rabbit://openstack:{secret}@192.0.2.5:5672,openstack:{secret}@192.0.2.6:5672/",
    "backend_url": "mysql+pymysql://cinder:{secret}@192.0.2.5/cinder",
    "backup_gcs_proxy_url": "http://proxyuser:{secret}@192.0.2.9:3128",
}
# cinder's replication_device is a dict option: the password is one of its pairs.
DICT_OPTIONS = {
    "replication_device": "backend_id:replica1,san_ip:192.0.2.9,san_login:admin,san_password:{secret}",
}
CONFIG_FILE = {"nova": "/etc/nova/nova.conf", "cinder": "/etc/cinder/cinder.conf",
               "glance": "/etc/glance/glance-api.conf", "keystone": "/etc/keystone/keystone.conf",
               "neutron": "/etc/neutron/neutron.conf", "oslo.messaging": "/etc/nova/nova.conf",
               "oslo.db": "/etc/cinder/cinder.conf", "keystonemiddleware": "/etc/glance/glance-api.conf"}


def _secret(rng) -> str:
    # upper and lower case and digits: never mistaken for hex ids or words of a report
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12)) + "Qz7"


def _real_options() -> dict[str, set[str]]:
    by_project: dict[str, set[str]] = {}
    for entry in json.loads((FIXTURES / "secret_options.json").read_text()):
        by_project.setdefault(entry["project"], set()).update(entry["options"])
    return by_project


def build_paste(seed: int = 9) -> tuple[str, dict[str, str]]:
    """A paste holding every credential option, and the secrets by what holds them."""
    rng = random.Random(seed)
    secrets: dict[str, str] = {}
    blocks = []
    files: dict[str, list[str]] = {}
    for project, options in sorted(_real_options().items()):
        for option in sorted(options - set(NOT_CREDENTIALS)):
            secret = secrets.setdefault(option, _secret(rng))
            template = URL_OPTIONS.get(option) or DICT_OPTIONS.get(option) or "{secret}"
            files.setdefault(CONFIG_FILE[project], []).append(
                f"{option} = {template.format(secret=secret)}")
    for path, lines in files.items():
        blocks.append(f"root@controller:~# grep -v '^#' {path} | grep -v '^$'\n[DEFAULT]\n"
                      + "\n".join(dict.fromkeys(lines)) + "\n")
    named = {name: _secret(rng) for name in ("OS_PASSWORD", "OS_TOKEN", "OS_SERVICE_TOKEN",
                                             "export", "keystone_pass", "iscsi", "context",
                                             "mysql", "curl_token", "wrapped_option")}
    secrets.update({f"env:{k}": v for k, v in named.items()})
    blocks.append(
        "root@controller:~# env | grep OS_\n"
        f"OS_PASSWORD={named['OS_PASSWORD']}\nOS_AUTH_URL=http://192.0.2.5:5000/v2.0\n"
        f"OS_USERNAME=admin\nOS_TOKEN={named['OS_TOKEN']}\nOS_SERVICE_TOKEN={named['OS_SERVICE_TOKEN']}\n"
        f"root@controller:~# export OS_PASSWORD='{named['export']}'\n"
        f"root@controller:~# mysql -unova -p{named['mysql']} nova -e 'select 1'\n"
        "ERROR 1045 (28000): Access denied for user 'nova'@'localhost' (using password: YES)\n"
        "root@controller:~# tail -n 5 /var/log/nova/nova-compute.log\n"
        # python-keystoneclient logged the request body with the password
        "2014-08-28 16:22:33.781 3966 DEBUG keystoneclient.session [-] REQ: curl -i -X POST "
        "http://192.0.2.5:35357/v2.0/tokens -H \"Content-Type: application/json\" -d "
        "'{\"auth\": {\"tenantName\": \"service\", \"passwordCredentials\": {\"username\": "
        f"\"nova\", \"password\": \"{named['keystone_pass']}\"}}}}}}' _http_log_request "
        "/usr/lib/python2.7/dist-packages/keystoneclient/session.py:155\n"
        # nova logged iscsiadm's CHAP password
        "2014-08-28 16:22:34.002 3966 DEBUG nova.openstack.common.processutils [-] Running cmd "
        "(subprocess): sudo nova-rootwrap /etc/nova/rootwrap.conf iscsiadm -m node -T "
        "iqn.2010-10.org.openstack:volume-1 -p 192.0.2.8:3260 --op update -n "
        f"node.session.auth.password -v {named['iscsi']} execute "
        "/usr/lib/python2.7/dist-packages/nova/openstack/common/processutils.py:154\n"
        # the rpc layer logged the request context with its token
        "2014-08-28 16:22:35.123 3966 DEBUG nova.openstack.common.rpc.amqp [-] received "
        "{u'_context_roles': [u'admin'], u'_context_auth_token': "
        f"u'{named['context']}', u'_context_user_id': u'df77e2b579b04b8a81ba0e993a318b19'}} "
        "_safe_log /usr/lib/python2.7/dist-packages/nova/openstack/common/rpc/common.py:276\n"
        "2014-08-28 16:22:35.500 3966 DEBUG novaclient.client [-] REQ: curl -i "
        "http://192.0.2.5:8774/v2/servers -X GET -H \"X-Auth-Project-Id: admin\" "
        f"-H \"X-Auth-Token: {named['curl_token']}\" http_log_req\n"
        "2014-08-28 16:22:36.456 3966 CRITICAL nova [-] OperationalError: (OperationalError) "
        "(1045, \"Access denied for user 'nova'@'192.0.2.6' (using password: YES)\") None None\n"
        # an output line with an option in it, that no reader expects: "Not read" quotes it
        "root@controller:~# ip route\ndefault via 192.0.2.1 dev eth0\n"
        f"192.0.2.0/24 dev eth0 admin_password={named['wrapped_option']}\n")
    return "".join(blocks), secrets


def hard_wrap(text: str, width: int) -> str:
    """What a terminal's copy gives for lines longer than the terminal is wide."""
    return "\n".join(line[i:i + width] for line in text.split("\n")
                     for i in range(0, max(len(line), 1), width))


def leaked(output: str, secrets: dict[str, str]) -> list[str]:
    """The secrets of which any six characters in a row appear in the output."""
    return [name for name, secret in secrets.items()
            if any(secret[i:i + 6] in output for i in range(len(secret) - 5))]


PASTE, SECRETS = build_paste()
VARIANTS = [("as typed", PASTE)] + [(f"wrapped at {w}", hard_wrap(PASTE, w)) for w in TERMINAL_WIDTHS]


def test_every_real_credential_option_is_in_the_paste():
    options = set().union(*_real_options().values()) - set(NOT_CREDENTIALS)
    assert len(options) > 60
    for option in options:
        assert re.search(rf"^{re.escape(option)} = ", PASTE, re.M), option


@pytest.mark.parametrize("name, paste", VARIANTS, ids=[name for name, _ in VARIANTS])
def test_no_secret_reaches_the_facts_or_any_report_format(name, paste):
    evidence = read_transcript(paste, "controller.txt")
    diagnosis = diagnose(evidence)
    outputs = {fmt: render(diagnosis, fmt) for fmt in FORMATS}
    outputs["facts"] = json.dumps([evidence.facts, evidence.unparsed], ensure_ascii=False)
    for where, output in outputs.items():
        assert leaked(output, SECRETS) == [], (name, where)


def test_option_names_and_the_rest_of_the_line_stay_readable():
    evidence = read_transcript(PASTE, "controller.txt")
    options = {f["key"]: f["value"] for f in evidence.facts if f["type"] == "config_option"}
    assert options["rabbit_password"] == MASK and options["admin_token"] == MASK
    assert options["connection"] == "mysql://nova:***@192.0.2.5/nova"
    assert options["transport_url"] == "rabbit://openstack:***@192.0.2.5:5672,openstack:***@192.0.2.6:5672/"
    assert options["replication_device"].startswith("backend_id:replica1,san_ip:192.0.2.9,")
    logs = [f for f in evidence.facts if f["type"] == "log_entry"]
    assert any("(using password: YES)" in f["message"] for f in logs)
    report = render(diagnose(evidence), "text")
    assert "ip route: unexpected 'admin_password=***'" in report


def test_the_check_itself_sees_secrets_when_nothing_redacts(monkeypatch):
    # the harness would catch a leak: without redaction the same paste leaks in every format
    monkeypatch.setattr(grammar.transcript, "redact", lambda text: text)
    evidence = read_transcript(PASTE, "controller.txt")
    diagnosis = diagnose(evidence)
    for fmt in FORMATS:
        assert leaked(render(diagnosis, fmt), SECRETS), fmt
    assert len(leaked(json.dumps(evidence.facts), SECRETS)) > 60


def _database_text(path: str) -> str:
    connection = sqlite3.connect(path)
    try:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type='table'")]
        return "\n".join(repr(row) for table in tables
                         for row in connection.execute(f'select * from "{table}"'))
    finally:
        connection.close()


@pytest.mark.parametrize("name, paste", VARIANTS[:3], ids=[name for name, _ in VARIANTS[:3]])
def test_no_secret_reaches_the_chat_its_transcript_the_instructor_page_or_the_database(tmp_path, name, paste):
    database = str(tmp_path / "chat.db")
    app = create_app({"TESTING": True, "DATABASE": database})
    client = app.test_client()
    session = client.post("/api/sessions").get_json()["session"]
    seen = []
    for text in ("my cinder volume won't create, here is what I see", paste, "hint", "why",
                 "solution"):
        response = client.post(f"/api/sessions/{session}/messages", json={"text": text})
        assert response.status_code == 200
        seen.append(response.get_data(as_text=True))
    seen.append(client.get(f"/api/sessions/{session}").get_data(as_text=True))
    seen.append(client.get(f"/instructor?token={app.config['INSTRUCTOR_TOKEN']}").get_data(as_text=True))
    seen.append(client.get("/").get_data(as_text=True))
    for output in seen:
        assert leaked(output, SECRETS) == [], name
    assert leaked(_database_text(database), SECRETS) == [], name
    # the student's own words and the option names are kept
    stored = _database_text(database)
    assert "rabbit_password = ***" in stored and "my cinder volume" in stored


@pytest.mark.parametrize("line, expected", [
    ("rabbit_password = Zq8ex", "rabbit_password = ***"),
    ("admin_token=ADMIN", "admin_token=***"),
    ("#admin_token = ADMIN", "#admin_token = ***"),
    ("12:rabbit_password=Zq8ex", "12:rabbit_password=***"),
    ("/etc/nova/nova.conf:rabbit_password = Zq8ex", "/etc/nova/nova.conf:rabbit_password = ***"),
    ("OS_PASSWORD=Zq8ex", "OS_PASSWORD=***"),
    ("declare -x OS_TOKEN=\"Zq8ex\"", "declare -x OS_TOKEN=\"***\""),
    ("sql_connection=mysql://nova:Zq8ex@192.0.2.5/nova", "sql_connection=mysql://nova:***@192.0.2.5/nova"),
    ("amqp://guest:Zq8ex@192.0.2.5:5672//", "amqp://guest:***@192.0.2.5:5672//"),
    ("keystone user-create --name nova --pass Zq8ex", "keystone user-create --name nova --pass ***"),
    ("nova --os-password Zq8ex list", "nova --os-password *** list"),
    ("curl -H 'Authorization: Basic Zq8exZq8ex' http://x", "curl -H 'Authorization: Basic ***' http://x"),
    ("auth_type = password", "auth_type = password"),
    ("paste.filter_factory = keystonemiddleware.auth_token:filter_factory",
     "paste.filter_factory = keystonemiddleware.auth_token:filter_factory"),
    ("[keystone_authtoken]", "[keystone_authtoken]"),
    ("(1045, \"Access denied for user 'nova'@'localhost' (using password: YES)\")",
     "(1045, \"Access denied for user 'nova'@'localhost' (using password: YES)\")"),
    ("passwd:         files systemd", "passwd:         files systemd"),
    ("mysql -uroot -p nova", "mysql -uroot -p nova"),
    ("curl -u admin:Zq8ex http://192.0.2.5:15672/api/overview",
     "curl -u admin:*** http://192.0.2.5:15672/api/overview"),
    ("rabbitmqctl add_user -u nova", "rabbitmqctl add_user -u nova"),
])
def test_single_lines(line, expected):
    assert redact(line) == expected


@pytest.mark.parametrize("text", [
    "export OS_PASSWORD=Zq8ex", "admin_token = Zq8ex", "metadata_proxy_shared_secret = Zq8ex",
    "fixed_key = Zq8ex", "server_auth = Zq8ex", "serverauth = Zq8ex", "connection = mysql://nova:Zq8ex@db/nova",
    "mysql -uroot -pZq8ex", "curl -u admin:Zq8ex http://x", "curl --user admin:Zq8ex http://x",
    "Authorization: Basic Zq8exZq8ex",
    "2014-08-28 16:22:33.781 3966 DEBUG nova.openstack.common [-] rabbit_pass\nword=Zq8ex in use",
])
def test_the_quick_look_for_secret_words_finds_what_the_pattern_finds(text):
    """redact() first looks for its trigger words as plain substrings: each text the
    trigger pattern finds a word in, the substrings find too, and the secret goes."""
    from grammar import redact as module
    lowered = text.lower().replace("\n", "")
    assert module._LOWER_TRIGGER.search(lowered)
    assert any(word in lowered for word in module._TRIGGER_LITERALS)
    assert "Zq8ex" not in redact(text)


def test_a_line_seen_before_is_masked_as_a_fresh_one_would_be():
    # each line's secrets are found once; a wrap that adds to a line's spans in one text
    # adds nothing to the next text holding that line
    from grammar import redact as module
    pastes = [paste for _, paste in VARIANTS]
    module._SPANS_SEEN.clear()
    fresh = []
    for paste in pastes:
        module._SPANS_SEEN.clear()
        fresh.append(redact(paste))
    module._SPANS_SEEN.clear()
    assert [redact(paste) for paste in pastes + pastes] == fresh + fresh
    assert module._SPANS_SEEN
    # the spans handed out are the caller's own: redact() adds a wrap's to them
    spans = module.secret_spans("rabbit_password = Zq8ex")
    spans.append((0, 6))
    assert module.secret_spans("rabbit_password = Zq8ex") == spans[:-1]


def test_a_secret_is_not_kept_in_what_redaction_remembers():
    from grammar import redact as module
    redact("rabbit_password = Zq8exKeptNowhere")
    assert module._SPANS_SEEN
    assert "Zq8exKeptNowhere" not in repr(module._SPANS_SEEN)
