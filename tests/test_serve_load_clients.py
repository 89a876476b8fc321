"""benchmarks/serve_load.py's two load generators against a stdlib HTTP server that stands in for
``seqclf serve``: every request is counted once, non-200 answers are errors, a connection the
server drops is an error and the client carries on, and the CPU columns are filled."""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import serve_load  # noqa: E402


class FakeServe(BaseHTTPRequestHandler):
    """``/healthz`` with call and text counters; ``/v1/predict`` answers 200, or 503 for a body
    containing "busy", or drops the connection for "drop"."""

    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    counts = {"calls": 0, "texts": 0}
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with self.lock:
            self._json(200, dict(self.counts))

    def do_POST(self) -> None:
        texts = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["texts"]
        if texts == ["drop"]:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        with self.lock:
            self.counts["calls"] += 1
            self.counts["texts"] += len(texts)
        if texts == ["busy"]:
            self._json(503, {"detail": "busy"})
        else:
            self._json(200, {"predictions": [{"label": "pos"} for _ in texts]})


@pytest.fixture
def fake_server():
    server = ThreadingHTTPServer((serve_load.HOST, 0), FakeServe)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("client", ["asyncio", "threads"])
def test_every_request_is_counted_once(fake_server, client):
    texts = ["fine", "busy", "good", "drop", "ok"]  # 60 requests: 12 of each
    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    row = serve_load.run_level(
        fake_server, bodies, 1, 4, 60, 30, client=client, server_pid=os.getpid()
    )
    assert row["requests"] == 60 and row["texts"] == 36  # "fine", "good", "ok": 12 each
    assert row["errors"] == 24
    assert "HTTP 503: 12" in row["note"]
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert row["texts_per_call"] == pytest.approx(48 / 48)  # the fake counts 503s as calls
    assert row["client_cpu_ms"] > 0  # microseconds, from getrusage
    assert row["server_cpu_ms"] >= 0  # here the same process, in 10 ms clock ticks


def test_an_unknown_client_kind_is_refused(fake_server):
    with pytest.raises(ValueError, match="client must be"):
        serve_load.run_level(fake_server, [b"{}"], 1, 1, 1, 1, client="curl")
