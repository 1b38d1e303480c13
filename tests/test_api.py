"""The chat's JSON API (design.md), through Flask's test client on a temporary SQLite file."""
import json

import pytest

from tests.test_tutor import NETWORK_NAT, SEED_PATH
from web import create_app


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "api.db"),
                       "MAX_PASTE_BYTES": 1_000_000})


@pytest.fixture
def client(app):
    return app.test_client()


def new_session(client) -> str:
    response = client.post("/api/sessions")
    assert response.status_code == 201
    return response.get_json()["session"]


def say(client, session, text):
    return client.post(f"/api/sessions/{session}/messages", json={"text": text})


def test_healthz(client):
    assert client.get("/healthz").status_code == 200


def test_create_session_gives_an_unguessable_id(client):
    ids = {new_session(client) for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) >= 32 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


def test_message_reply_shape(client):
    session = new_session(client)
    response = say(client, session, "why can't my VM ping google?")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= {"reply", "findings", "hint_level"}
    assert isinstance(body["reply"], str) and body["findings"] == [] and body["hint_level"] == 0


def test_the_seed_conversation_through_the_api(client):
    session = new_session(client)
    say(client, session, "why can't my VM ping google?")
    for paste in SEED_PATH:
        body = say(client, session, paste).get_json()
        assert body["findings"] == []
    assert "**Question:**" in body["reply"]
    hint = say(client, session, "give me a hint").get_json()
    assert hint["hint_level"] == 1
    solved = say(client, session, "just tell me the answer").get_json()
    assert [f["cause"] for f in solved["findings"]] == ["fip-snat-wrong-interface"]
    finding = solved["findings"][0]
    assert {"cause", "node", "service", "status", "title", "explanation", "fix", "evidence"} <= set(finding)
    transcript = client.get(f"/api/sessions/{session}").get_json()
    assert transcript["symptom"] == "vm-cannot-reach-internet"
    assert [m["role"] for m in transcript["messages"][:3]] == ["tutor", "student", "tutor"]
    assert transcript["findings"][0]["cause"] == "fip-snat-wrong-interface"
    assert transcript["known"]


def test_the_conversation_survives_a_new_app_on_the_same_database(tmp_path):
    config = {"TESTING": True, "DATABASE": str(tmp_path / "same.db")}
    first = create_app(config).test_client()
    session = new_session(first)
    say(first, session, "why can't my VM ping google?")
    second = create_app(config).test_client()
    transcript = second.get(f"/api/sessions/{session}").get_json()
    assert len(transcript["messages"]) == 3
    assert say(second, session, SEED_PATH[0]).status_code == 200


def test_unknown_session_is_404_everywhere(client):
    new_session(client)
    assert client.get("/api/sessions/not-a-session").status_code == 404
    assert say(client, "not-a-session", "hint").status_code == 404


def test_one_student_cannot_read_another(app, client):
    alice = new_session(client)
    say(client, alice, "my secret lab: why can't my VM ping google?")
    bob = new_session(client)
    assert bob != alice
    transcript = client.get(f"/api/sessions/{bob}").get_json()
    assert "secret" not in json.dumps(transcript)
    # nothing lists sessions with their ids
    instructor = client.get(f"/instructor?token={app.config['INSTRUCTOR_TOKEN']}").get_data(as_text=True)
    assert alice not in instructor and bob not in instructor


def test_malformed_json_is_400_with_a_reason(client):
    session = new_session(client)
    response = client.post(f"/api/sessions/{session}/messages", data="{not json",
                           content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["error"]
    response = client.post(f"/api/sessions/{session}/messages", json={"txt": "hi"})
    assert response.status_code == 400 and "text" in response.get_json()["error"]
    response = client.post(f"/api/sessions/{session}/messages", json={"text": 42})
    assert response.status_code == 400
    response = client.post(f"/api/sessions/{session}/messages", json=["text"])
    assert response.status_code == 400
    response = client.post(f"/api/sessions/{session}/messages", json={"text": "   "})
    assert response.status_code == 400


def test_a_paste_above_the_limit_is_413_and_nothing_breaks(client):
    session = new_session(client)
    big = "x" * 1_000_001
    response = say(client, session, big)
    assert response.status_code == 413
    assert "1 MB" in response.get_json()["error"]
    huge = client.post(f"/api/sessions/{session}/messages",
                       data=json.dumps({"text": "y" * 3_000_000}), content_type="application/json")
    assert huge.status_code == 413 and "limit" in huge.get_json()["error"]
    # the session goes on
    assert say(client, session, "why can't my VM ping google?").status_code == 200
    assert len(client.get(f"/api/sessions/{session}").get_json()["messages"]) == 3


def test_html_of_a_reply_escapes_what_the_student_pasted(client):
    session = new_session(client)
    say(client, session, "why can't my VM ping google?")
    body = say(client, session, "root@<img src=x onerror=alert(1)>:~# ip route\n"
                                "default via 10.0.0.1 dev eth0\n").get_json()
    assert "<img" not in body["html"]


def test_instructor_page_lists_sessions(app, client):
    session = new_session(client)
    say(client, session, "why can't my VM ping google?")
    for paste in SEED_PATH:
        say(client, session, paste)
    say(client, session, "hint")
    say(client, session, "solution")
    page = client.get(f"/instructor?token={app.config['INSTRUCTOR_TOKEN']}").get_data(as_text=True)
    assert "An instance cannot reach the internet" in page
    assert "fip-snat-wrong-interface" in page
    assert "<td>1</td>" in page                       # hints used


def test_pages_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert b"chat.js" in page.data
    assert client.get("/static/chat.js").status_code == 200


def test_app_module_exposes_create_app(tmp_path):
    import app as app_module
    flask_app = app_module.create_app({"TESTING": True, "DATABASE": str(tmp_path / "m.db")})
    assert flask_app.test_client().get("/healthz").status_code == 200


def test_nat_paste_alone_asks_for_the_symptom(client):
    session = new_session(client)
    body = say(client, session, NETWORK_NAT).get_json()
    assert body["findings"] == []


def test_python_app_py_serve_creates_its_database_and_binds_loopback(tmp_path):
    import http.client
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = tmp_path / "first-start.db"
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "app.py", "serve", "--port", str(port), "--db", str(database)],
                              cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline and status != 200:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                status = connection.getresponse().status
            except OSError:
                time.sleep(0.2)
        assert status == 200
        assert database.exists()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in output


def test_the_instructor_page_can_want_a_token(tmp_path):
    client = create_app({"TESTING": True, "DATABASE": str(tmp_path / "t.db"),
                         "INSTRUCTOR_TOKEN": "s3cret"}).test_client()
    assert client.get("/instructor").status_code == 404
    assert client.get("/instructor?token=wrong").status_code == 404
    assert client.get("/instructor?token=s3cret").status_code == 200


def test_a_body_that_is_not_json_says_so(client):
    session = new_session(client)
    response = client.post(f"/api/sessions/{session}/messages", data="text=hint",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "application/json" in response.get_json()["error"]
