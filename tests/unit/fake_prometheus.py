"""A stand-in Prometheus for tests (a plain module, not a conftest): an HTTP server on a free
localhost port answering /api/v1/query_range and /api/v1/alerts with the hand-written answers of
tests/unit/data (shaped as the HTTP API documents them), and a localhost port where nothing listens."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
RANGE_ANSWER = json.loads((DATA / "prometheus_query_range.json").read_text())
ALERTS_ANSWER = json.loads((DATA / "prometheus_alerts.json").read_text())


class Server(ThreadingHTTPServer):
    #: The panels' queries arrive together: a backlog of 5 (the default) would drop some SYNs.
    request_queue_size = 64


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers with the fixtures; a query of ``bad`` with Prometheus's 400. Each request's path
    and parameters go to ``server.seen``."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        self.server.seen.append((url.path, params))  # type: ignore[attr-defined]
        if params.get("query") == "bad":
            self.answer(400, {"status": "error", "errorType": "bad_data", "error": "1:1: parse error"})
        elif url.path == "/api/v1/query_range":
            self.answer(200, self.server.range_answer)  # type: ignore[attr-defined]
        elif url.path == "/api/v1/alerts":
            self.answer(200, self.server.alerts_answer)  # type: ignore[attr-defined]
        else:
            self.answer(404, {"status": "error", "error": "not found"})

    def answer(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@contextlib.contextmanager
def fake_prometheus(
    range_answer: Any = RANGE_ANSWER, alerts_answer: Any = ALERTS_ANSWER
) -> Iterator[ThreadingHTTPServer]:
    """The fake, serving on a free port until the block ends; the answers may be replaced."""
    server = Server(("127.0.0.1", 0), FakePrometheus)
    server.seen = []  # type: ignore[attr-defined]
    server.range_answer = range_answer  # type: ignore[attr-defined]
    server.alerts_answer = alerts_answer  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def closed_port() -> int:
    """A localhost port where nothing listens (it was just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
