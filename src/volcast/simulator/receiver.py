"""A local webhook receiver: what tests and ``bench/live.py`` point alert webhooks at, so
that delivery (retries included) is exercised over real HTTP on 127.0.0.1."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT_S = 30.0
"""How long a held answer waits for its ``gate`` at most."""


@dataclass
class Receiver:
    """Answers ``fail`` (a status) to the first ``failures`` POSTs, then 200; ``gate``, when
    given, holds every answer until it is set. Keeps every body, path and arrival time."""

    failures: int = 0
    fail: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    gate: threading.Event | None = None
    bodies: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    accepted: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.bodies.append(handler.rfile.read(int(handler.headers["Content-Length"])))
        self.paths.append(handler.path)
        self.times.append(time.monotonic())
        self.arrived.set()
        if self.gate is not None:
            self.gate.wait(WAIT_S)
        failing = len(self.bodies) <= self.failures
        self.accepted += not failing  # before answering: the sender may be told at once
        handler.send_response(self.fail if failing else 200)
        for name, value in (self.headers if failing else {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


@contextmanager
def receiving(state: Receiver | None = None, path: str = "/hooks/SECRET-TOKEN"
              ) -> Iterator[Receiver]:
    """Serve ``state`` on 127.0.0.1 (a free port, ``state.url`` ending in ``path``) from a
    background thread for the duration of the block."""
    state = state or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.answer(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}{path}"
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        server.shutdown()
        server.server_close()
