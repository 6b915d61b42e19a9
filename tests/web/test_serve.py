"""`volcast serve` as a user starts it: a real process on 127.0.0.1, stopped with Ctrl-C; and
the ways it refuses to start (one line, exit 2)."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

TOKEN = "s3cret-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "volcast.cli", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=None if env is None else os.environ | env)


def wait_for_health(port: int) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("volcast serve did not answer")


def stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=20)


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    """The one line `volcast serve ARGS` exits 2 with."""
    result = subprocess.run([sys.executable, "-m", "volcast.cli", "serve", *args],
                            capture_output=True, text=True, timeout=60,
                            env=None if env is None else os.environ | env)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    return result.stderr


def test_serve_answers_then_stops_on_ctrl_c(store, tmp_path):
    store.close()  # the server process opens the file itself
    port = free_port()
    process = serve("--db", str(store.path), "--port", str(port), "--models",
                    str(tmp_path / "models"))
    try:
        assert wait_for_health(port) == {"status": "ok", "version": "0.1.0", "series": 2,
                                         "watching": 0, "stale": [], "failing": [],
                                         "errors": {}, "trainings": []}
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "volcast dashboard" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/vendor/plotly.min.js").status_code == 200
    finally:
        out, err = stop(process)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err


def test_a_busy_port_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = refused("--db", str(tmp_path / "v.duckdb"), "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert not (tmp_path / "v.duckdb").exists()  # refused before the store was touched


@pytest.mark.parametrize(("host", "says"), [
    ("bad..host", "cannot listen on bad..host: not a valid host name"),
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),  # TEST-NET-1: never local
])
def test_a_bad_host_is_one_line(tmp_path, host, says):
    line = refused("--db", str(tmp_path / "v.duckdb"), "--host", host, "--port",
                   str(free_port()), env={"VOLCAST_API_TOKEN": TOKEN})
    assert says in line


def test_beyond_loopback_a_token_is_required(tmp_path):
    line = refused("--db", str(tmp_path / "v.duckdb"), "--host", "0.0.0.0", "--port",
                   str(free_port()), env={"VOLCAST_API_TOKEN": ""})
    assert "refusing to listen on 0.0.0.0 without an API token" in line
    (tmp_path / "token").write_text("short\n")
    line = refused("--db", str(tmp_path / "v.duckdb"), "--token-file", str(tmp_path / "token"))
    assert "at least 16" in line and "short" not in line


def test_the_token_is_required_for_jobs_and_never_written_out(store, tmp_path):
    store.close()
    port = free_port()
    (tmp_path / "token").write_text(TOKEN)
    process = serve("--db", str(store.path), "--port", str(port), "--models",
                    str(tmp_path / "models"), "--token-file", str(tmp_path / "token"))
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_health(port)["series"] == 2
        assert httpx.get(f"{url}/api/auth").json() == {"writes": True, "reads": False}
        assert httpx.delete(f"{url}/api/jobs/abc123").status_code == 401
        wrong = {"Authorization": "Bearer not-the-token-0123456789"}
        assert httpx.delete(f"{url}/api/jobs/abc123", headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.delete(f"{url}/api/jobs/abc123", headers=right).status_code == 404
        assert httpx.get(f"{url}/health", headers={"host": "attacker.example"}).status_code \
            == 421
    finally:
        out, err = stop(process)
    assert process.returncode == 0, err
    assert "the API token is required for requests that change state" in out
    assert TOKEN not in out + err
    assert not any(TOKEN in p.read_text(errors="replace") for p in tmp_path.rglob("*")
                   if p.is_file() and p.name != "token")
