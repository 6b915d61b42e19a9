"""`volcast serve` as a user starts it: a real process on 127.0.0.1, stopped with Ctrl-C."""

import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_then_stops_on_ctrl_c(store, tmp_path):
    store.close()  # the server process opens the file itself
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "volcast.cli", "serve", "--db", str(store.path), "--port",
         str(port), "--models", str(tmp_path / "models")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health, deadline = None, time.monotonic() + 60
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert health == {"status": "ok", "version": "0.1.0", "series": 2}
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "volcast dashboard" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/vendor/plotly.min.js").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err


def test_serve_on_a_locked_database_is_one_line(store, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "volcast.cli", "serve", "--db", str(store.path), "--port",
         str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
