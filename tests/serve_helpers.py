"""Helpers of the serving tests: a fake predictor, a uvicorn server in a thread, plain HTTP.

Every server listens on 127.0.0.1 only, on a port the OS picks.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any

import numpy as np

from seqclf.explain import Explanation

HOST = "127.0.0.1"


def p_pos(text: str) -> float:
    """The fake model's probability of "pos": a function of the text alone, so that every answer
    can be checked against its own text (a batcher that mixed up rows would fail)."""
    return (len(text) % 10 + 0.5) / 10


# The real Explanation (a frozen dataclass with to_dict), made by the fake predictor below.
FakeExplanation = Explanation


class FakePredictor:
    """Stands in for ``seqclf.Predictor``: records every call; optionally slow, blocking or failing.

    Attributes:
      calls: the texts of each ``predict_proba`` call, in order.
      delay: seconds each call sleeps.
      gate: when set, every call waits for this event first.
      entered: set when a call starts (so a test knows the worker is busy).
    """

    classes = ["neg", "pos"]
    buckets = [8, 16]
    batch_size = 64
    max_len = 16

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None):
        self.calls: list[list[str]] = []
        self.explain_calls: list[list[str]] = []
        self.delay = delay
        self.gate = gate
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def _enter(self, texts: list[str], log: list[list[str]]) -> None:
        with self._lock:
            log.append(list(texts))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        time.sleep(self.delay)
        if any(t == "boom" for t in texts):
            raise RuntimeError("the model fell over")

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self._enter(texts, self.calls)
        p = np.array([p_pos(t) for t in texts])
        return np.stack([1 - p, p], axis=1)

    def explain(self, texts: list[str], steps: int = 32) -> list[FakeExplanation]:
        self._enter(texts, self.explain_calls)
        out = []
        for t in texts:
            p = p_pos(t)
            words = t.lower().split()
            out.append(
                FakeExplanation(
                    t,
                    words,
                    np.linspace(-1, 1, len(words)),
                    "pos" if p > 0.5 else "neg",
                    {"neg": 1 - p, "pos": p},
                    0.0,
                )
            )
        return out


class LiveServer:
    """``uvicorn.Server`` for an app, in a thread, on 127.0.0.1 and a free port."""

    def __init__(self, app: Any):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop within 15 s"


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request on its own connection: (status, headers, JSON body or text)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        kind = response.getheader("content-type", "")
        payload = json.loads(data) if kind.startswith("application/json") else data.decode()
        return response.status, dict(response.getheaders()), payload
    finally:
        conn.close()


def predict(port: int, texts: list[str], explain: bool = False) -> tuple[int, Any]:
    status, _, body = call(port, "POST", "/v1/predict", {"texts": texts, "explain": explain})
    return status, body


def raw_exchange(port: int, chunks: list[bytes], pause: float = 0.0, timeout: float = 10) -> bytes:
    """Send bytes on a plain socket (``pause`` seconds between chunks), then read the reply."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has answered and closed; read what it said
            time.sleep(pause)
        return read_reply(s)


def read_reply(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
            if _complete(data):
                break
    except ConnectionResetError:
        pass
    return data


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(reply: bytes) -> int:
    """The status code of a raw HTTP reply."""
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1])


def detail_of(reply: bytes) -> str:
    return json.loads(reply.partition(b"\r\n\r\n")[2])["detail"]
