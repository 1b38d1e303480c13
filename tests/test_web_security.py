"""The chat's surfaces as an unfriendly client meets them (issue 9, item 6): the
instructor page closed by default, sessions rate-limited, every /api/ answer JSON with
the security headers — waitress's own included."""
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from web import SECURITY_HEADERS, create_app, instructor_token
from web import server as web_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "web.db")})


@pytest.fixture
def client(app):
    return app.test_client()


def _assert_secure(response):
    for name, value in SECURITY_HEADERS:
        assert response.headers.get(name) == value, name


def _assert_api_json(response, status):
    assert response.status_code == status
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    assert isinstance(response.get_json()["error"], str) and response.get_json()["error"]
    assert response.headers["Cache-Control"] == "no-store"
    _assert_secure(response)


# --- the instructor page ---------------------------------------------------------------

def test_the_instructor_page_is_404_without_its_token_and_never_cached(app, client):
    for url in ("/instructor", "/instructor?token=", "/instructor?token=wrong",
                "/instructor?token=%ED%A0%80"):
        response = client.get(url)
        assert response.status_code == 404, url
        _assert_secure(response)
    page = client.get(f"/instructor?token={app.config['INSTRUCTOR_TOKEN']}")
    assert page.status_code == 200 and "<h1>Sessions</h1>" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    _assert_secure(page)


def test_the_token_is_created_once_beside_the_database_for_its_owner_only(tmp_path):
    database = str(tmp_path / "class.db")
    first = create_app({"DATABASE": database})
    again = create_app({"DATABASE": database})
    assert first.config["INSTRUCTOR_TOKEN_CREATED"] and not again.config["INSTRUCTOR_TOKEN_CREATED"]
    assert first.config["INSTRUCTOR_TOKEN"] == again.config["INSTRUCTOR_TOKEN"]
    assert len(first.config["INSTRUCTOR_TOKEN"]) >= 32
    kept = Path(database + ".instructor-token")
    assert kept.read_text().strip() == first.config["INSTRUCTOR_TOKEN"]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert instructor_token(database) == (first.config["INSTRUCTOR_TOKEN"], False)


class _ServerThatStops:
    def __init__(self, *args, **kwargs):
        pass

    def run(self):
        return None


def _serve(tmp_path, monkeypatch, capsys, host):
    monkeypatch.setattr(web_server, "make_server", lambda app, host, port: _ServerThatStops())
    args = SimpleNamespace(db=str(tmp_path / "serve.db"), host=host, port=5099)
    assert web_server.serve(args) == 0
    return capsys.readouterr()


def test_serve_prints_the_instructor_address_once_and_warns_off_loopback(tmp_path, monkeypatch, capsys):
    first = _serve(tmp_path, monkeypatch, capsys, "127.0.0.1")
    token = Path(str(tmp_path / "serve.db") + ".instructor-token").read_text().strip()
    assert f"http://127.0.0.1:5099/instructor?token={token}" in first.out
    assert "warning" not in first.err
    second = _serve(tmp_path, monkeypatch, capsys, "0.0.0.0")
    assert token not in second.out + second.err
    assert ("stackdoc: warning: --host 0.0.0.0 is not loopback: the chat and the instructor "
            "page are reachable from the network") in second.err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True),
                                            ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("::", False),
                                            ("192.0.2.10", False), ("lab.example", False)])
def test_which_hosts_are_loopback(host, loopback):
    assert web_server.is_loopback(host) is loopback


# --- session creation is rate-limited per client address ---------------------------------

def test_session_creation_is_rate_limited_per_client_address(tmp_path):
    app = create_app({"DATABASE": str(tmp_path / "rate.db"), "SESSION_BURST": 5,
                      "SESSION_REFILL_SECONDS": 60})
    client = app.test_client()
    here = {"REMOTE_ADDR": "192.0.2.7"}
    assert [client.post("/api/sessions", environ_base=here).status_code
            for _ in range(5)] == [201] * 5
    refused = client.post("/api/sessions", environ_base=here)
    _assert_api_json(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # another address is not held up by the first
    assert client.post("/api/sessions", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 201


def test_the_limiter_refills_and_forgets_idle_addresses():
    from web import ratelimit
    now = [0.0]
    limiter = ratelimit.RateLimiter(burst=2, refill_seconds=10, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 10]
    now[0] = 10
    assert limiter.take("a") == 0
    for number in range(ratelimit.MAX_ADDRESSES + 50):
        limiter.take(f"2001:db8::{number:x}")
    assert len(limiter._buckets) == ratelimit.MAX_ADDRESSES


# --- every answer under /api/ is JSON with the headers ------------------------------------

def test_unknown_api_paths_and_wrong_methods_answer_json(client):
    _assert_api_json(client.get("/api/nothing-here"), 404)
    _assert_api_json(client.get("/api/sessions"), 405)
    _assert_api_json(client.delete("/api/sessions/abc"), 405)
    assert "GET" in client.delete("/api/sessions/abc").headers["Allow"]
    # outside /api/ the pages keep their own errors, with the headers too
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    _assert_secure(page)


def test_bodies_over_the_limit_answer_json(client):
    session = client.post("/api/sessions").get_json()["session"]
    response = client.post(f"/api/sessions/{session}/messages", data=b"[" * 3_000_000,
                           content_type="application/json")
    _assert_api_json(response, 413)


@pytest.mark.parametrize("body, reason", [
    (b'{"text": "\\ud800"}', None),
    (b'{"text": "root@n:~# ip route\\n\\udfff\\ud800default via 192.0.2.1 dev x0"}', None),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not valid JSON"),
    (b"\xff\xfe\xfd", "not valid JSON"),
    (b'{"text": "hint"' + b" " * 10, "not valid JSON"),
    (b'{"text": NaN}', "must be a string"),
    (b'{"text": {"text": "hint"}}', "must be a string"),
])
def test_odd_json_never_gives_a_500(client, body, reason):
    session = client.post("/api/sessions").get_json()["session"]
    response = client.post(f"/api/sessions/{session}/messages", data=body,
                           content_type="application/json")
    if reason is None:  # a lone surrogate is read as U+FFFD
        assert response.status_code == 200, response.get_data(as_text=True)
        transcript = client.get(f"/api/sessions/{session}").get_json()
        assert "\ufffd" in transcript["messages"][-2]["text"]
        json.dumps(transcript, ensure_ascii=False).encode("utf-8")
    else:
        _assert_api_json(response, 400)
        assert reason in response.get_json()["error"]
    # and the session goes on
    assert client.post(f"/api/sessions/{session}/messages", json={"text": "hint"}).status_code == 200


def test_an_error_of_ours_is_a_json_500_without_a_traceback(app, client, monkeypatch):
    from tutor.conversation import Tutor

    def broken(self, session_id, text):
        raise KeyError("deep inside")

    monkeypatch.setattr(Tutor, "respond", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    session = client.post("/api/sessions").get_json()["session"]
    response = client.post(f"/api/sessions/{session}/messages", json={"text": "hint"})
    _assert_api_json(response, 500)
    assert "deep inside" not in response.get_data(as_text=True)


# --- waitress's own answers ----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running_server(tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "app.py", "serve", "--port", str(port),
                               "--db", str(tmp_path / "live.db")],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("the server did not start")
    yield port
    server.terminate()
    server.communicate(timeout=20)


def test_waitress_own_413_for_a_chunked_body_is_json_with_the_headers(running_server):
    connection = http.client.HTTPConnection("127.0.0.1", running_server, timeout=30)
    connection.putrequest("POST", "/api/sessions/abc/messages")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(64):  # 4 MB, over waitress's own limit, with no Content-Length
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except OSError:
        pass  # waitress may answer and close before the body ends
    response = connection.getresponse()
    body = response.read()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/json"
    assert "error" in json.loads(body)
    for name, value in SECURITY_HEADERS:
        assert response.getheader(name) == value, name
    assert response.getheader("Cache-Control") == "no-store"
