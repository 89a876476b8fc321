"""``seqclf serve``: the HTTP API, its bad-request table, micro-batching, overload and shutdown.

Most tests run a real uvicorn server in a thread with a fake predictor (fast, and able to be
slow or fail on demand); the shapes, ``/v1/model`` and SIGTERM tests use a tiny trained run.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import (
    HOST,
    FakePredictor,
    LiveServer,
    call,
    detail_of,
    p_pos,
    predict,
    raw_exchange,
    read_reply,
    status_of,
)
from tiny_run import tiny_run

import seqclf
from seqclf.batcher import MicroBatcher, QueueFull
from seqclf.serve import ServeSettings, create_app

READ_TIMEOUT = 1.0


def head(length: int | None = None, chunked: bool = False) -> bytes:
    lines = ["POST /v1/predict HTTP/1.1", f"Host: {HOST}", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="module")
def server():
    fake = FakePredictor()
    app = create_app(fake, ServeSettings(read_timeout_s=READ_TIMEOUT))
    with LiveServer(app) as live:
        live.fake = fake
        yield live


def assert_serving(port: int) -> None:
    """The server still answers a good request, correctly."""
    status, body = predict(port, ["still here?"])
    assert status == 200, body
    assert body["predictions"][0]["probabilities"]["pos"] == pytest.approx(p_pos("still here?"))


def test_predict_returns_label_and_probabilities_per_text(server):
    texts = ["a fine film", "no", "", "x" * 17]
    status, body = predict(server.port, texts)
    assert status == 200
    assert len(body["predictions"]) == 4
    for text, pred in zip(texts, body["predictions"], strict=True):
        assert set(pred) == {"label", "probabilities"}
        assert pred["probabilities"]["pos"] == pytest.approx(p_pos(text))
        assert pred["probabilities"]["neg"] == pytest.approx(1 - p_pos(text))
        assert pred["label"] == ("pos" if p_pos(text) > 0.5 else "neg")


def test_explain_adds_tokens_and_attributions(server):
    status, body = predict(server.port, ["Quite a good film"], explain=True)
    assert status == 200, body
    (pred,) = body["predictions"]
    assert pred["label"] == "pos" and pred["probabilities"]["pos"] == pytest.approx(0.75)
    e = pred["explanation"]
    assert e["tokens"] == ["quite", "a", "good", "film"]
    assert e["attributions"] == pytest.approx([-1, -1 / 3, 1 / 3, 1])
    assert "text" not in e and e["completeness_error"] == 0.0


def test_healthz_model_and_page(server):
    status, _, body = call(server.port, "GET", "/healthz")
    assert status == 200 and body["status"] == "ready"
    status, _, body = call(server.port, "GET", "/v1/model")
    assert status == 200
    assert body["classes"] == ["neg", "pos"] and body["buckets"] == [8, 16]
    assert body["server"]["limits"]["max_texts"] == 256 and body["explain"] is True
    status, headers, page = call(server.port, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert 'id="text"' in page and "v1/predict" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


MB10 = 10_000_000
BAD_REQUESTS = {
    # name: (body, status, the start of the message)
    "malformed JSON": (b'{"texts": ["unfinished"', 422, "body: not valid JSON"),
    "not an object": (b'["a", "b"]', 422, "body: expected a JSON object"),
    "nested too deeply": (b"[" * 100_000, 422, "body: JSON nested too deeply"),
    "texts missing": (b'{"explain": false}', 422, "texts: missing"),
    "unknown field": (b'{"text": ["a"]}', 422, "text: unknown field"),
    "texts not a list": (b'{"texts": "one text"}', 422, "texts: expected a list of strings"),
    "a text not a string": (b'{"texts": ["ok", 3]}', 422, "texts[1]: expected a string"),
    "a null text": (b'{"texts": [null]}', 422, "texts[0]: expected a string, got null"),
    "explain not a boolean": (b'{"texts": ["a"], "explain": 1}', 422, "explain: expected"),
    "empty list": (b'{"texts": []}', 422, "texts: empty list"),
    "invalid UTF-8": (b'{"texts": ["caf\xe9"]}', 422, "body: not valid UTF-8"),
    "lone surrogate": (b'{"texts": ["\\ud800"]}', 422, "texts[0]: not valid Unicode"),
    "257 texts": (json.dumps({"texts": ["a"] * 257}).encode(), 413, "texts: 257 texts"),
    "17 texts to explain": (
        json.dumps({"texts": ["a"] * 17, "explain": True}).encode(),
        413,
        "texts: 17 texts",
    ),
    "1 M-word text": (
        json.dumps({"texts": ["word " * 1_000_000]}).encode(),
        413,
        "texts[0]: 5000000 characters, more than the limit of 100000",
    ),
    "10 MB body": (
        json.dumps({"texts": ["x" * (MB10 // 256)] * 256}).encode(),
        413,
        "body: ",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_the_server_keeps_serving(server, case):
    body, status, message = BAD_REQUESTS[case]
    got, _, answer = call(
        server.port, "POST", "/v1/predict", body, {"Content-Type": "application/json"}
    )
    assert got == status, answer
    assert answer["detail"].startswith(message), answer
    assert_serving(server.port)


def test_a_huge_declared_body_is_refused_before_it_is_read(server):
    """Content-Length over 4x the limit: 413 at once, without waiting for the body."""
    huge = 40 * 2**20
    reply = raw_exchange(server.port, [head(huge)])
    assert status_of(reply) == 413
    assert detail_of(reply) == f"body: {huge} bytes, more than the limit of {8 * 2**20}"
    assert b"connection: close" in reply.lower()
    assert_serving(server.port)


def test_10mb_chunked_body_is_refused_while_it_streams(server):
    """No Content-Length: the size is counted as the chunks arrive."""
    chunk = b"x" * 2**20
    chunks = [head(chunked=True)] + [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 10
    reply = raw_exchange(server.port, chunks)
    assert status_of(reply) == 413
    assert detail_of(reply).startswith("body: more than the limit of")
    assert_serving(server.port)


def test_slow_client_gets_408_and_others_are_served_meanwhile(server):
    body = json.dumps({"texts": ["a slow one"]}).encode()
    result: dict[str, bytes] = {}
    # Half the body, then nothing for longer than the read timeout.
    slow = threading.Thread(
        target=lambda: result.setdefault(
            "reply", raw_exchange(server.port, [head(len(body)) + body[:10]])
        )
    )
    start = time.monotonic()
    slow.start()
    time.sleep(0.1)
    assert_serving(server.port)  # not held up by the slow client
    slow.join(10)
    assert status_of(result["reply"]) == 408
    assert detail_of(result["reply"]) == f"body: not received within {READ_TIMEOUT:g} s"
    assert READ_TIMEOUT <= time.monotonic() - start < READ_TIMEOUT + 5
    assert_serving(server.port)


def test_client_disconnect_mid_body_and_mid_prediction(server):
    import socket

    body = json.dumps({"texts": ["gone"]}).encode()
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(head(len(body)) + body[:5])  # then hangs up mid-body
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(head(len(body)) + body)  # hangs up before the answer
    time.sleep(0.2)
    assert_serving(server.port)
    status, _, health = call(server.port, "GET", "/healthz")
    assert status == 200 and health["status"] == "ready"


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_error_in_prediction_is_a_500_for_that_request_only():
    fake = FakePredictor()
    app = create_app(fake, ServeSettings(max_wait_ms=0, batch_workers=1))
    with LiveServer(app) as live:
        fake.gate = threading.Event()  # after the warm-up: hold the worker...
        fake.entered.clear()
        fake.calls.clear()
        with ThreadPoolExecutor(3) as pool:
            hold = pool.submit(predict, live.port, ["held"])
            assert fake.entered.wait(10)
            bad = pool.submit(predict, live.port, ["boom"])
            good = pool.submit(predict, live.port, ["fine"])
            wait_until(lambda: app.state.batcher.queued() == 2)  # ...until both are queued
            fake.gate.set()
            bad_status, bad_body = bad.result(30)
            good_status, good_body = good.result(30)
            assert hold.result(30)[0] == 200
        assert bad_status == 500
        assert bad_body["detail"] == "prediction failed: RuntimeError: the model fell over"
        assert good_status == 200
        assert good_body["predictions"][0]["probabilities"]["pos"] == pytest.approx(p_pos("fine"))
        batched = sorted(fake.calls[1])
        assert batched == ["boom", "fine"]  # one call for both...
        assert sorted(fake.calls[2:]) == [["boom"], ["fine"]]  # ...then each alone
        _, _, health = call(live.port, "GET", "/healthz")
        assert health["failed_requests"] == 1 and health["requests"] == 3
        assert_serving(live.port)


@pytest.mark.parametrize("batching, workers", [(True, 1), (True, 2), (False, 1)])
def test_micro_batching_shares_calls_between_requests(batching, workers):
    n = 32
    fake = FakePredictor()
    settings = ServeSettings(batching=batching, max_wait_ms=20, threads=4, batch_workers=workers)
    app = create_app(fake, settings)
    texts = [f"review number {i} " + "w" * i for i in range(n)]
    with LiveServer(app) as live:
        fake.calls.clear()  # the warm-up calls
        fake.gate = threading.Event()
        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(predict, live.port, [t]) for t in texts]
            # Every request arrived (being scored or queued) before the worker(s) may go on.
            wait_until(lambda: sum(map(len, fake.calls)) + app.state.batcher.queued() == n)
            fake.gate.set()
            results = [f.result(60) for f in futures]
        _, _, health = call(live.port, "GET", "/healthz")
    for text, (status, body) in zip(texts, results, strict=True):
        assert status == 200
        assert body["predictions"][0]["probabilities"]["pos"] == pytest.approx(p_pos(text))
    assert sorted(t for c in fake.calls for t in c) == sorted(texts)  # each scored once
    if batching:
        # Each worker's first call (with whatever arrived within max_wait), then one call for
        # all the requests that queued behind them.
        assert len(fake.calls) <= workers + 1, [len(c) for c in fake.calls]
    else:
        assert len(fake.calls) == n and {len(c) for c in fake.calls} == {1}
    assert health["requests"] == n and health["calls"] == len(fake.calls)


def test_a_full_queue_answers_503_with_retry_after():
    gate = threading.Event()
    fake = FakePredictor()
    app = create_app(fake, ServeSettings(max_queue=1, max_wait_ms=0, batch_workers=1))
    with LiveServer(app) as live:
        fake.gate = gate  # after the warm-up: from now on every call waits for the test
        fake.entered.clear()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(predict, live.port, ["first"])
            assert fake.entered.wait(10)  # the worker holds "first"
            second = pool.submit(predict, live.port, ["second"])
            deadline = time.monotonic() + 10
            while app.state.batcher.queued() < 1:  # "second" waits in the queue, now full
                assert time.monotonic() < deadline
                time.sleep(0.01)
            status, headers, body = call(live.port, "POST", "/v1/predict", {"texts": ["third"]})
            assert status == 503
            assert headers["retry-after"] == "1"
            assert body["detail"].startswith("busy: 1 requests are already waiting")
            gate.set()
            assert first.result(10)[0] == 200 and second.result(10)[0] == 200
        assert_serving(live.port)


def test_warm_up_calls_each_bucket_before_the_first_request():
    fake = FakePredictor()
    with LiveServer(create_app(fake, ServeSettings())):
        warm = [c[0] for c in fake.calls]
        warm_explain = [c[0] for c in fake.explain_calls]
    # One text of exactly each bucket's number of tokens, so each (batch, bucket) shape is run.
    assert [len(t.split()) for t in warm] == FakePredictor.buckets
    assert [len(t.split()) for t in warm_explain] == FakePredictor.buckets


def test_batcher_close_finishes_queued_requests_and_then_refuses():
    fake = FakePredictor(delay=0.02)
    batcher = MicroBatcher(fake, max_wait_ms=0, max_queue=4)
    futures = [batcher.submit([f"t{i}"]) for i in range(4)]  # queued before the worker starts
    with pytest.raises(QueueFull):
        batcher.submit(["one too many"])
    batcher.start()
    batcher.close(timeout=10)
    assert [f.result(0)[0][1] for f in futures] == pytest.approx([p_pos(f"t{i}") for i in range(4)])
    with pytest.raises(Exception, match="shutting down"):
        batcher.submit(["late"])


# -- with a real (tiny) trained model ---------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)  # tests/tiny_run.py: trained once a session


@pytest.mark.filterwarnings("ignore::seqclf.predict.EmptyTextWarning")  # "" is sent on purpose
def test_real_model_every_shape_is_compiled_at_start_up(run_dir):
    """After the app's start-up no request compiles anything: neither a prediction nor an
    explanation, whatever the texts' lengths (jit caches counted before and after)."""
    predictor = seqclf.load(run_dir, batch_size=16)
    assert len(predictor.buckets) == 2 and predictor.row_sizes == (8, 16)
    texts = ["great", "the film was " * 3, "awful " * 40, "", "fine and loved " * 9] * 3
    with LiveServer(create_app(predictor, ServeSettings(explain_steps=8))) as live:
        compiled = predictor._forward._cache_size()
        explain_compiled = predictor._integrated_gradients._cache_size()
        status, body = predict(live.port, texts)
        explain_status, explained = predict(live.port, texts[:5], explain=True)
        _, _, model = call(live.port, "GET", "/v1/model")
        _, _, health = call(live.port, "GET", "/healthz")
    assert compiled == len(predictor.buckets) * len(predictor.row_sizes)  # 8 or 16 rows each
    # The integrated-gradients function is shared by every predictor of one model configuration
    # in a process, so other tests may have compiled more shapes of it already.
    assert explain_compiled >= len(predictor.buckets)
    assert predictor._forward._cache_size() == compiled  # no request compiled anything
    assert predictor._integrated_gradients._cache_size() == explain_compiled

    assert status == 200
    expected = predictor.predict_proba(texts)
    got = [[p["probabilities"][c] for c in predictor.classes] for p in body["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert [p["label"] for p in body["predictions"]] == predictor.predict(texts)
    # 15 texts of one request: one predictor call (one device call of 16 rows)
    assert health["texts"] == 15 + 5 and health["calls"] == 2

    assert explain_status == 200, explained
    reference = predictor.explain(texts[:5], steps=8)
    for pred, ref in zip(explained["predictions"], reference, strict=True):
        assert pred["label"] == ref.label
        assert pred["explanation"]["tokens"] == ref.tokens
        np.testing.assert_allclose(pred["explanation"]["attributions"], ref.attributions, 1e-5)
        assert pred["explanation"]["completeness_error"] == pytest.approx(
            ref.completeness_error, abs=1e-6
        )
    assert len(explained["predictions"][2]["explanation"]["tokens"]) == 24  # truncated

    assert model["classes"] == ["neg", "pos"] and model["config"]["hidden_size"] == 8
    assert model["max_len"] == 24 and model["batch_size"] == 16 and model["explain"] is True
    assert set(model["versions"]) >= {"seqclf", "jax", "python"}


def start_cli_server(run: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    """``seqclf serve RUN --port 0`` in a subprocess; returns it and its port once it is ready."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqclf.cli", "serve", str(run), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    line = proc.stdout.readline()  # "seqclf serve: http://127.0.0.1:PORT/ ..."
    assert line.startswith(f"seqclf serve: http://{HOST}:"), line + proc.stderr.read()
    port = int(line.split(":")[3].split("/")[0])
    deadline = time.monotonic() + 60
    while True:
        try:
            if call(port, "GET", "/healthz", timeout=2)[0] == 200:
                return proc, port
        except OSError:
            pass
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "not ready within 60 s"
        time.sleep(0.1)


def test_sigterm_finishes_the_request_in_flight_and_exits_0(run_dir):
    import socket

    proc, port = start_cli_server(run_dir, "--no-warm-up-explain", "--no-access-log")
    try:
        body = json.dumps({"texts": ["great fun", "boring waste"]}).encode()
        with socket.create_connection((HOST, port), timeout=20) as s:
            s.sendall(head(len(body)) + body[:7])  # in flight: half sent when SIGTERM comes
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert proc.poll() is None  # still waiting for this request
            s.sendall(body[7:])
            reply = read_reply(s)
        assert status_of(reply) == 200, reply
        answer = json.loads(reply.partition(b"\r\n\r\n")[2])
        assert [p["label"] in ("neg", "pos") for p in answer["predictions"]] == [True, True]
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        with pytest.raises(OSError):
            call(port, "GET", "/healthz", timeout=2)  # gone
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_serve_port_in_use_is_a_one_line_error(tmp_path, capsys):
    """Checked before the model is even loaded (the run here does not exist)."""
    import socket

    from seqclf.cli import main

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["serve", str(tmp_path / "no-run"), "--port", str(port)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith(f"seqclf serve: error: cannot listen on {HOST}:{port}: "), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_page_in_a_headless_browser(run_dir, tmp_path):
    """Type a review into the page at /, click Classify, read the label, the probabilities and
    the coloured words; save a screenshot (``SEQCLF_SCREENSHOT=PATH`` also copies it there)."""
    from cdp import Chromium, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium; .ci/run does)")
    predictor = seqclf.load(run_dir, batch_size=8)
    review = "A great, moving film: superb fun from start to end."
    expected = predictor.predict_proba([review])[0]
    with LiveServer(create_app(predictor, ServeSettings(warm_up_explain=False))) as live:
        browser = Chromium(binary, tmp_path / "profile")
        try:
            browser.open(f"http://{HOST}:{live.port}/")
            browser.type_into("#text", review)
            browser.click("#go")
            state = browser.wait_for(
                "['done', 'error'].includes(document.getElementById('result').dataset.state)"
                " && document.getElementById('result').dataset.state"
            )
            error = browser.js("document.getElementById('error').textContent")
            assert state == "done", error
            label = browser.js("document.getElementById('label').textContent")
            shown = browser.js(
                "[...document.querySelectorAll('#bars .bar')].map(b => "
                "[b.querySelector('.name').textContent, +b.querySelector('.value').textContent])"
            )
            words = browser.js(
                "[...document.querySelectorAll('#tokens span')].map(s => "
                "[s.textContent, getComputedStyle(s).backgroundColor])"
            )
            model_line = browser.js("document.getElementById('model').textContent")
            shot = browser.screenshot(tmp_path / "serve.png")
        finally:
            browser.close()
    assert label == predictor.classes[int(expected.argmax())]
    assert [name for name, _ in shown] == predictor.classes
    np.testing.assert_allclose([p for _, p in shown], expected, atol=6e-4)  # shown to 3 places
    assert [w for w, _ in words] == predictor.explain([review])[0].tokens
    assert any("rgba(22, 163, 74" in colour for _, colour in words)  # green: toward the label
    assert any("rgba(220, 38, 38" in colour for _, colour in words)  # red: away from it
    assert "classes: neg, pos" in model_line
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    if target := os.environ.get("SEQCLF_SCREENSHOT"):
        Path(target).write_bytes(shot.read_bytes())
