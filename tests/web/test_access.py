"""Who may do what: the Host names the server answers (DNS rebinding), the API token on
requests that change state (and on reads with --token-for-reads), and cross-site writes."""

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import BTC
from volcast.errors import VolcastError
from volcast.web.access import Access, name_of, read_token
from volcast.web.app import create_app

TOKEN = "s3cret-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LOOPBACK = Access.for_bind("127.0.0.1", ["127.0.0.1"], [], None)


def client_of(workspace, access: Access) -> TestClient:
    return TestClient(create_app(workspace, access=access), base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize(("header", "name"), [
    ("127.0.0.1:8000", "127.0.0.1"), ("LOCALHOST.", "localhost"), ("[::1]:8000", "::1"),
    ("::1", "::1"), ("volcast.example:443", "volcast.example"), ("", "")])
def test_host_names(header, name):
    assert name_of(header) == name


def test_loopback_answers_its_own_names_only(workspace):
    with client_of(workspace, LOOPBACK) as client:
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
            assert client.get("/health", headers={"host": host}).status_code == 200
        rebound = client.get("/api/series", headers={"host": "attacker.example:8000"})
        assert rebound.status_code == 421
        assert rebound.json() == {"detail": "this server does not answer to host "
                                            "'attacker.example'; its operator can allow that "
                                            "name with `volcast serve --allow-host NAME`"}
        assert "\n" not in rebound.text


def test_allowed_names_and_a_wildcard_bind(workspace):
    allowed = Access.for_bind("127.0.0.1", ["127.0.0.1"], ["Dash.Example"], None)
    with client_of(workspace, allowed) as client:
        assert client.get("/health", headers={"host": "dash.example"}).status_code == 200
        assert client.get("/health", headers={"host": "other.example"}).status_code == 421
    everywhere = Access.for_bind("0.0.0.0", ["0.0.0.0"], [], TOKEN)
    with client_of(workspace, everywhere) as client:  # rebinding needs a name, not an address
        assert client.get("/health", headers={"host": "192.168.1.7:8000"}).status_code == 200
        assert client.get("/health", headers={"host": "[fe80::1]:8000"}).status_code == 200
        assert client.get("/health", headers={"host": "attacker.example"}).status_code == 421


def test_off_loopback_a_token_is_required():
    with pytest.raises(VolcastError, match=r"listen on 0\.0\.0\.0 without an API token"):
        Access.for_bind("0.0.0.0", ["0.0.0.0"], [], None)
    with pytest.raises(VolcastError, match="without an API token"):
        Access.for_bind("192.168.1.7", ["192.168.1.7"], [], None)
    with pytest.raises(VolcastError, match="--token-for-reads needs an API token"):
        Access.for_bind("127.0.0.1", ["127.0.0.1"], [], None, token_for_reads=True)
    assert Access.for_bind("localhost", ["127.0.0.1", "::1"], [], None).token is None


def test_the_token_guards_every_change_of_state(workspace):
    guarded = Access.for_bind("0.0.0.0", ["0.0.0.0"], [], TOKEN)
    with client_of(workspace, guarded) as client:
        assert client.get("/api/auth").json() == {"writes": True, "reads": False}
        assert client.get("/api/series").status_code == 200  # reads stay open
        start = BTC | {"kind": "fetch", "since": "not a date"}  # 422 once let through
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}):
            refused = client.post("/api/jobs", json=start, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in refused.text
            assert client.delete("/api/jobs/abc123", headers=headers).status_code == 401
        assert client.post("/api/jobs", json=start, headers=BEARER).status_code == 422
        assert client.delete("/api/jobs/abc123", headers=BEARER).status_code == 404
        assert client.get("/api/jobs").json() == []


def test_with_token_for_reads_only_the_page_and_health_are_open(workspace):
    guarded = Access.for_bind("127.0.0.1", ["127.0.0.1"], [], TOKEN, token_for_reads=True)
    with client_of(workspace, guarded) as client:
        for path in ("/", "/health", "/api/auth", "/static/app.js", "/vendor/plotly.min.js"):
            assert client.get(path).status_code == 200, path
        assert client.get("/api/auth").json() == {"writes": True, "reads": True}
        for path in ("/api/series", "/api/overview", "/api/jobs"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=BEARER).status_code == 200, path


def test_writes_from_another_site_are_refused(workspace):
    with client_of(workspace, LOOPBACK) as client:
        cross = client.delete("/api/jobs/abc123", headers={"origin": "https://attacker.example"})
        assert cross.status_code == 403
        same = client.delete("/api/jobs/abc123", headers={"origin": "http://127.0.0.1:8000"})
        assert same.status_code == 404
        assert client.get("/api/series", headers={"origin": "https://a.example"}).status_code \
            == 200  # reading is harmless: the browser keeps the answer from the other site


def test_on_loopback_without_a_token_the_api_works_as_before(workspace):
    with client_of(workspace, LOOPBACK) as client:
        assert client.get("/api/auth").json() == {"writes": False, "reads": False}
        assert client.post("/api/jobs", json=BTC | {"kind": "fetch",
                                                    "since": "nope"}).status_code == 422
        assert client.delete("/api/jobs/abc123").status_code == 404


def test_tokens_are_read_from_a_file_or_the_environment(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    assert read_token(path, "ignored-when-a-file-is-given") == TOKEN
    assert read_token(None, f" {TOKEN} ") == TOKEN
    assert read_token(None, None) is None and read_token(None, "") is None
    path.write_text("short")
    with pytest.raises(VolcastError, match="at least 16 printable ASCII characters"):
        read_token(path, None)
    with pytest.raises(VolcastError, match="cannot read --token-file"):
        read_token(tmp_path / "missing", None)
