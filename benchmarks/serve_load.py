"""Load test of ``seqclf serve``: N concurrent clients sending IMDB reviews to a local server.

For each server mode (micro-batching on, and ``--no-batching``) the script starts
``seqclf serve RUN --port 0`` itself, on 127.0.0.1 only, and for each number of clients sends
``--requests`` requests (or for at most ``--level-seconds``), each client on its own keep-alive
connection, one after another. It records throughput (texts/s), p50/p95/p99 latency, errors
(non-200 answers and failed connections), the texts per predictor call (from ``/healthz``), and
the server's resident memory over time (VmRSS from /proc/PID/status). A soak phase then sends
``--soak`` requests to the batching server (the issue's 10,000-request run: 0 errors, flat RSS).
SIGTERM stops each server; its exit status is recorded.

Offline, in this process, on the same texts and end to end from raw text: ``Predictor.
predict_proba``, and, where the packages are installed, fastText's ``predict`` (a model trained
here on the IMDB train split), Keras ``model.predict`` and a PyTorch model in ``eval()`` mode
(the run's CNN-RNN part, without its n-gram heads, untrained: speed does not depend on the
weights; the seqclf vocabulary tokenizes for them; not run where this was written, as neither
package was installed there). A missing package is a note in the report, not an error.

    python benchmarks/serve_load.py --run runs/imdb            # a trained run
    python benchmarks/serve_load.py --train-quick              # trains the default recipe on
                                                               # 2,000 reviews for 1 epoch first
    python benchmarks/serve_load.py --run R --clients 1,8 --requests 200 --soak 0   # quick look

Writes ``serve_load.csv`` (one row per mode and client count, and per offline predictor),
``serve_load_rss.csv`` (mode, seconds, MiB, phase), ``serve_load.md`` and ``serve_load.png``
into ``--out``, each with the machine, date and command. Bounded: every level stops after its
requests or seconds, the whole run after ``--time-limit`` seconds (remaining levels skipped).
Clients and server share the machine's cores, as they would on one host.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import itertools
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402  (benchmarks/common.py: puts the checkout on sys.path too)

HOST = "127.0.0.1"
SHARED = common.REPO.parent / "shared" / "tensorflow_datasets"
COLUMNS = [
    "mode",
    "clients",
    "requests",
    "texts",
    "errors",
    "seconds",
    "texts_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "texts_per_call",
    "server_cpu_ms",
    "client_cpu_ms",
    "note",
]
# serve_load.md's table: the CSV's columns without the raw text count and duration.
TABLE_COLUMNS = [c for c in COLUMNS if c not in ("texts", "seconds")]
MODES = {"batching": [], "no-batching": ["--no-batching"]}
CLIENT_KINDS = {
    "asyncio": "coroutines of one asyncio event loop in this process (raw HTTP/1.1)",
    "threads": "threads of this process with http.client",
}


# ---------------------------------------------------------------------------------------------
# The server: a subprocess, its memory sampled from /proc
# ---------------------------------------------------------------------------------------------


class Server:
    """``seqclf serve RUN --port 0`` in a subprocess, ready when constructed."""

    def __init__(self, run: Path, extra: list[str], timeout: float = 300):
        cmd = [sys.executable, "-m", "seqclf.cli", "serve", str(run), "--port", "0"]
        cmd += ["--no-access-log", "--no-warm-up-explain", *extra]
        self.command = cmd
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started = time.monotonic()
        # stderr (uvicorn's log) is drained by a thread, so a full pipe never blocks the server.
        self.log: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline()  # "seqclf serve: http://127.0.0.1:PORT/ ..."
        if not line.startswith(f"seqclf serve: http://{HOST}:"):
            self.stop()
            raise RuntimeError(f"the server did not start: {line}{''.join(self.log[-20:])}")
        self.port = int(line.split(":")[3].split("/")[0])
        deadline = time.monotonic() + timeout
        while True:
            try:
                if get(self.port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server was not ready:\n" + "".join(self.log[-20:]))
            time.sleep(0.1)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line)

    def rss_mib(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, then the exit status (killed after ``timeout``: None)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return None
        return self.proc.returncode


class RssSampler:
    """A thread recording (mode, seconds since the server started, MiB, phase) every interval."""

    def __init__(self, server: Server, mode: str, interval: float, rows: list[dict]):
        self.server, self.mode, self.interval, self.rows = server, mode, interval, rows
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        rss = self.server.rss_mib()
        if rss is not None:
            t = round(time.monotonic() - self.server.started, 2)
            self.rows.append(
                {"mode": self.mode, "t_s": t, "rss_mib": round(rss, 1), "phase": self.phase}
            )

    def set_phase(self, phase: str) -> None:
        """A sample at the end of the phase before and one at the start of this one, so that even
        a phase shorter than the interval is seen."""
        self.sample()
        self.phase = phase
        self.sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def get(port: int, path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


def run_level(
    port: int,
    bodies: list[bytes],
    per_request: int,
    clients: int,
    requests: int,
    seconds: float,
    client: str = "asyncio",
    server_pid: int | None = None,
) -> dict[str, Any]:
    """``clients`` concurrent clients, each with one keep-alive connection, sending requests one
    after another until ``requests`` are sent in all or ``seconds`` have passed.

    ``client``: ``"asyncio"`` (one event loop, raw HTTP/1.1 on asyncio streams: the lighter
    load generator, as ``wrk`` or ``hey`` would be) or ``"threads"`` (a thread per client with
    ``http.client``, which costs the shared cores more per request). The CPU time this process
    (the clients) and the server (``server_pid``) spent during the level is reported per request.
    """
    if client not in CLIENT_KINDS:
        raise ValueError(f"client must be one of {sorted(CLIENT_KINDS)}, got {client!r}")
    stop_at = time.monotonic() + seconds
    latencies: list[float] = []
    errors: Counter = Counter()
    before = get(port, "/healthz")[1]
    cpu_before = _cpu_seconds(None), _cpu_seconds(server_pid)
    start = time.perf_counter()
    clients_of_kind = _async_clients if client == "asyncio" else _thread_clients
    clients_of_kind(port, bodies, clients, requests, stop_at, latencies, errors)
    wall = time.perf_counter() - start
    cpu_after = _cpu_seconds(None), _cpu_seconds(server_pid)
    after = get(port, "/healthz")[1]
    calls = after["calls"] - before["calls"]
    ms = sorted(1e3 * x for x in latencies)
    sent = len(latencies) + sum(errors.values())

    def cpu_ms(i: int) -> float | str:
        if cpu_before[i] is None or cpu_after[i] is None or not sent:
            return ""
        return round(1e3 * (cpu_after[i] - cpu_before[i]) / sent, 3)

    return {
        "clients": clients,
        "requests": sent,
        "texts": len(latencies) * per_request,
        "errors": sum(errors.values()),
        "seconds": round(wall, 3),
        "texts_per_s": round(len(latencies) * per_request / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "texts_per_call": round((after["texts"] - before["texts"]) / calls, 2) if calls else "",
        "server_cpu_ms": cpu_ms(1),
        "client_cpu_ms": cpu_ms(0),
        "note": ", ".join(f"{k}: {v}" for k, v in errors.items()),
    }


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of this process (None) or of process ``pid`` (from /proc)."""
    if pid is None:  # getrusage: microseconds (os.times counts 10 ms clock ticks)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _thread_clients(port, bodies, clients, requests, stop_at, latencies, errors) -> None:
    tickets = itertools.count()
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while (i := next(tickets)) < requests and time.monotonic() < stop_at:
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", bodies[i % len(bodies)], headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as err:
                errors[type(err).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                continue
            if response.status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[f"HTTP {response.status}"] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _async_clients(port, bodies, clients, requests, stop_at, latencies, errors) -> None:
    """The clients as coroutines of one event loop; each request is sent as prepared bytes and
    its answer read by its Content-Length (the server never sends chunked answers)."""
    tickets = itertools.count()
    prepared = [
        b"POST /v1/predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (HOST.encode(), len(body), body)
        for body in bodies
    ]

    async def answer(reader: asyncio.StreamReader) -> int:
        status = int((await reader.readline()).split()[1])
        length = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise ValueError("an answer without Content-Length")
        await reader.readexactly(length)
        return status

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while (i := next(tickets)) < requests and time.monotonic() < stop_at:
                start = time.perf_counter()
                try:
                    writer.write(prepared[i % len(prepared)])
                    async with asyncio.timeout(60):
                        status = await answer(reader)
                except (
                    OSError,
                    ValueError,
                    IndexError,
                    TimeoutError,
                    asyncio.IncompleteReadError,
                ) as err:
                    errors[type(err).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[f"HTTP {status}"] += 1
        finally:
            writer.close()

    async def all_clients() -> None:
        await asyncio.gather(*(client() for _ in range(clients)))

    asyncio.run(all_clients())


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (nan for an empty one)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# ---------------------------------------------------------------------------------------------
# Offline predictors, end to end from raw text
# ---------------------------------------------------------------------------------------------


def time_offline(fn, texts: list[str], repeats: int = 1) -> float:
    """Texts per second of ``fn(texts)``, the best of ``repeats``, after one untimed call on the
    same texts (it compiles every padded length they need, as a server does at start-up)."""
    fn(texts)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def offline_rows(args, predictor, texts: list[str], train_texts, train_labels) -> list[dict]:
    rows = []

    def row(mode: str, fn=None, note: str = "") -> None:
        if fn is None:
            rows.append({"mode": mode, "note": note})
            print(f"  {mode}: {note}", flush=True)
            return
        try:
            rate = time_offline(fn, texts, args.offline_repeats)
        except Exception as err:  # an optional peer that fails is reported, not fatal
            rows.append({"mode": mode, "note": f"failed: {type(err).__name__}: {err}"})
            print(f"  {mode}: failed: {err}", flush=True)
            return
        rows.append(
            {"mode": mode, "texts": len(texts), "texts_per_s": round(rate, 1), "note": note}
        )
        print(f"  {mode}: {rate:.1f} texts/s", flush=True)

    row(
        "offline seqclf predict_proba",
        predictor.predict_proba,
        f"batch {predictor.batch_size}, buckets {predictor.buckets}",
    )
    for name, build in (
        ("fasttext", fasttext_predict),
        ("keras", keras_predict),
        ("torch", torch_predict),
    ):
        if name not in args.peers:
            continue
        if not installed(name):
            row(f"offline {name}", note=f"skipped: {name} is not installed")
            continue
        try:
            fn, note = build(predictor, train_texts, train_labels, args)
        except Exception as err:
            row(f"offline {name}", note=f"failed to build: {type(err).__name__}: {err}")
            continue
        row(f"offline {name}", fn, note)
    return rows


def installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def fasttext_predict(predictor, train_texts, train_labels, args):
    """fastText trained here (bigrams, 2^20 buckets, 16 dimensions, 5 epochs: the fastText head's
    shape); ``predict`` on a list of texts, newlines replaced (fastText rejects them)."""
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for text, label in zip(train_texts, train_labels, strict=True):
            f.write(f"__label__{label} {text.replace(chr(10), ' ')}\n")
        path = f.name
    try:
        model = fasttext.train_supervised(
            path, epoch=5, wordNgrams=2, dim=16, bucket=2**20, thread=os.cpu_count(), verbose=0
        )
    finally:
        os.unlink(path)

    def fn(texts):
        return model.predict([t.replace("\n", " ") for t in texts], k=-1)

    return fn, f"fasttext trained on {len(train_texts)} reviews, {os.cpu_count()} threads"


def _encode_padded(predictor, texts):
    """seqclf's vocabulary and truncation, padded at the end to max_len: int32 (N, max_len)."""
    import numpy as np

    ids = predictor.vocabulary.encode_batch(texts)
    out = np.zeros((len(ids), predictor.max_len), np.int32)
    for i, row in enumerate(ids):
        row = (
            row[-predictor.max_len :] if predictor.truncating == "pre" else row[: predictor.max_len]
        )
        out[i, : len(row)] = row
    return out


def keras_predict(predictor, train_texts, train_labels, args):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers

    c = predictor.config
    model = keras.Sequential(
        [
            keras.Input((predictor.max_len,), dtype="int32"),
            layers.Embedding(c.vocab_size, c.embed_dim),
        ]
    )
    ceil = getattr(c, "pool_ceil", False)  # ceil-mode pooling keeps the last partial window
    for filters in c.conv_filters:
        model.add(
            layers.Conv1D(
                filters, c.conv_kernel_size, padding=c.conv_padding, activation=c.conv_activation
            )
        )
        model.add(layers.MaxPooling1D(c.pool_size, padding="same" if ceil else "valid"))
    cell = {"lstm": layers.LSTM, "gru": layers.GRU, "rnn": layers.SimpleRNN}[c.rnn]
    for layer in range(c.num_layers):
        sequences = layer < c.num_layers - 1 or c.reduce != "last"
        rnn = cell(c.hidden_size, return_sequences=sequences)
        model.add(layers.Bidirectional(rnn) if c.bidirectional else rnn)
    if c.reduce != "last":
        model.add(
            layers.GlobalMaxPooling1D() if c.reduce == "max" else layers.GlobalAveragePooling1D()
        )
    model.add(layers.Dense(c.num_classes, activation="softmax"))

    def fn(texts):
        return model.predict(
            _encode_padded(predictor, texts), batch_size=predictor.batch_size, verbose=0
        )

    return fn, (
        f"keras {keras.__version__} ({keras.backend.backend()}), the CNN-RNN without the "
        f"n-gram heads, untrained, every text padded to {predictor.max_len}"
    )


def torch_predict(predictor, train_texts, train_labels, args):
    import torch
    from torch import nn

    c = predictor.config

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
            convs, width = [], c.embed_dim
            for filters in c.conv_filters:
                convs += [
                    nn.Conv1d(width, filters, c.conv_kernel_size, padding=c.conv_padding),
                    nn.ReLU(),
                    nn.MaxPool1d(c.pool_size, ceil_mode=getattr(c, "pool_ceil", False)),
                ]
                width = filters
            self.convs = nn.Sequential(*convs)
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c.rnn](
                width,
                c.hidden_size,
                num_layers=c.num_layers,
                bidirectional=c.bidirectional,
                batch_first=True,
            )
            self.out = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.num_classes)

        def forward(self, tokens):  # (B, T)
            x = self.convs(self.embedding(tokens).transpose(1, 2)).transpose(1, 2)
            ys, _ = self.rnn(x)  # (B, T', D)
            pooled = {
                "max": lambda: ys.max(1).values,
                "mean": lambda: ys.mean(1),
                "last": lambda: ys[:, -1],
            }[c.reduce]()
            return torch.softmax(self.out(pooled), -1)

    model = Classifier().eval()
    torch.set_num_threads(os.cpu_count() or 1)

    def fn(texts):
        x = torch.from_numpy(_encode_padded(predictor, texts)).long()
        with torch.no_grad():
            return [
                model(x[lo : lo + predictor.batch_size]).numpy()
                for lo in range(0, len(x), predictor.batch_size)
            ]

    return fn, (
        f"torch {torch.__version__}, eval(), {torch.get_num_threads()} threads, the "
        f"CNN-RNN (relu) without the n-gram heads, untrained, every text padded to "
        f"{predictor.max_len}"
    )


# ---------------------------------------------------------------------------------------------
# A run to serve
# ---------------------------------------------------------------------------------------------


def train_quick(args, out: Path) -> Path:
    """seqclf's default recipe (what ``seqclf train --train imdb_reviews`` gives: the settings
    it resolves from the data) trained on ``--quick-train-size`` reviews for one epoch, with the
    ``--set`` overrides: the served model's shapes, and so its speed, without the wait for a full
    training (its accuracy is not the point)."""
    import imdb_accuracy

    import seqclf

    run = out / "quick-run"
    if (run / "checkpoints").is_dir():
        print(f"Using the quick run already in {run}", flush=True)
        return run
    model, training, _ = imdb_accuracy.apply_overrides({}, {"epochs": 1}, args.set)
    train = seqclf.read_tfds(split=f"train[:{args.quick_train_size}]", data_dir=args.data_dir)
    print(f"Training a quick run on {len(train)} reviews into {run}", flush=True)
    text_config, train_config = imdb_accuracy.split_settings(training)
    seqclf.train_text_classifier(
        train,
        run,
        model_options=model,
        text_config=text_config,
        train_config=train_config,
        progress=False,
    )
    return run


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def write_csv(rows: list[dict], columns: list[str], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def targets(rows: list[dict], rss: list[dict], soak_row: dict | None) -> list[str]:
    """The issue's targets, checked on what was measured (or said to be unmeasured)."""
    out = []
    served = {(r["mode"], r["clients"]): r for r in rows if r.get("clients")}
    offline = next((r for r in rows if r["mode"] == "offline seqclf predict_proba"), None)
    top = served.get(("batching", 64))
    if top and offline and offline.get("texts_per_s"):
        share = top["texts_per_s"] / offline["texts_per_s"]
        out.append(
            f"- served throughput at 64 clients = {share:.0%} of offline predict_proba "
            f"(target >= 80 %): {'met' if share >= 0.8 else 'missed'}"
        )
    else:
        out.append("- served vs offline throughput at 64 clients: not measured")
    half = served.get(("batching", 32))
    if half:
        p99 = half["p99_ms"]
        out.append(
            f"- p99 latency at 32 clients = {p99} ms (target <= 250 ms): "
            f"{'met' if p99 <= 250 else 'missed'}"
        )
    else:
        out.append("- p99 latency at 32 clients: not measured")
    if soak_row:
        soak = [r["rss_mib"] for r in rss if r["phase"] == "soak"]
        tenth = max(1, len(soak) // 10)
        if len(soak) >= 2:
            first, last = statistics.median(soak[:tenth]), statistics.median(soak[-tenth:])
            flat = f"RSS {first:.0f} -> {last:.0f} MiB (first vs last tenth of the soak)"
        else:
            flat = "too short to judge the RSS"
        out.append(
            f"- soak of {soak_row['requests']} requests: {soak_row['errors']} errors "
            f"(target 0), {flat}"
        )
    return out


def write_markdown(path: Path, rows, rss, soak_row, header: list[str], notes: list[str]) -> None:
    lines = [
        "# seqclf serve: load test",
        "",
        *header,
        "",
        "| mode | clients | requests | errors | texts/s | p50 ms | p95 ms | p99 ms | "
        "texts per call | server CPU ms/request | client CPU ms/request | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(k, "")) for k in TABLE_COLUMNS) + " |")
    lines += ["", "Targets (issue 19):", "", *targets(rows, rss, soak_row), "", *notes, ""]
    path.write_text("\n".join(lines))


def write_plot(path: Path, rows: list[dict], rss: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l, ax_m) = plt.subplots(1, 3, figsize=(16, 4.8))
    for mode in MODES:
        level = [r for r in rows if r["mode"] == mode and r.get("clients")]
        if not level:
            continue
        x = [r["clients"] for r in level]
        ax_t.plot(x, [r["texts_per_s"] for r in level], "o-", label=mode)
        ax_l.plot(x, [r["p99_ms"] for r in level], "o-", label=f"{mode} p99")
        ax_l.plot(x, [r["p50_ms"] for r in level], "o--", label=f"{mode} p50", alpha=0.6)
    for r in rows:
        if r["mode"].startswith("offline") and r.get("texts_per_s"):
            ax_t.axhline(r["texts_per_s"], ls=":", color="gray")
            ax_t.annotate(r["mode"], (1, r["texts_per_s"]), fontsize=8, color="gray")
    ax_t.set(xscale="log", xlabel="concurrent clients", ylabel="texts / s", title="throughput")
    ax_l.set(xscale="log", yscale="log", xlabel="concurrent clients", ylabel="ms", title="latency")
    for mode in {r["mode"] for r in rss}:
        pts = [r for r in rss if r["mode"] == mode]
        ax_m.plot([r["t_s"] for r in pts], [r["rss_mib"] for r in pts], label=mode)
    ax_m.set(xlabel="seconds since the server started", ylabel="MiB", title="server RSS")
    for ax in (ax_t, ax_l, ax_m):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="the --output-dir of a training run to serve")
    p.add_argument(
        "--train-quick",
        action="store_true",
        help="without --run: train the default recipe on a few reviews first",
    )
    p.add_argument("--quick-train-size", type=int, default=2000, help="reviews for --train-quick")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="FIELD=VALUE override of the --train-quick model/training (repeatable)",
    )
    p.add_argument(
        "--data-dir",
        default=str(SHARED) if SHARED.is_dir() else None,
        help="TFDS data_dir holding imdb_reviews",
    )
    p.add_argument("--texts", type=int, default=2000, help="IMDB test reviews to send")
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--clients", default="1,4,16,32,64", help="comma-separated client counts")
    p.add_argument("--requests", type=int, default=2000, help="requests per level")
    p.add_argument("--level-seconds", type=float, default=60, help="at most this long per level")
    p.add_argument("--modes", default="batching,no-batching", help=f"of {list(MODES)}")
    p.add_argument("--soak", type=int, default=10000, help="requests of the soak run (0: none)")
    p.add_argument("--soak-clients", type=int, default=32)
    p.add_argument(
        "--client",
        choices=sorted(CLIENT_KINDS),
        default="asyncio",
        help="the load generator: asyncio (lighter on the shared cores) or threads",
    )
    p.add_argument("--batch-size", type=int, default=64, help="the server's compiled batch")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=4, help="--no-batching workers")
    p.add_argument("--rss-interval", type=float, default=0.5, help="seconds between samples")
    p.add_argument("--peers", default="fasttext,keras,torch", help="offline comparisons")
    p.add_argument("--fasttext-train", type=int, default=25000, help="reviews to train fastText")
    p.add_argument("--offline-repeats", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=1800, help="seconds for the whole run")
    p.add_argument("--out", type=Path, default=HERE / "results" / "serve")
    args = p.parse_args(argv)
    if args.run is None and not args.train_quick:
        p.error("give --run DIR (a trained run) or --train-quick")
    args.client_counts = [int(x) for x in args.clients.split(",") if x.strip()]
    args.mode_list = [m for m in args.modes.split(",") if m]
    unknown = set(args.mode_list) - set(MODES)
    if unknown:
        p.error(f"unknown mode(s) {sorted(unknown)}; choose from {list(MODES)}")
    args.peers = [x for x in args.peers.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    began = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    import seqclf

    run = args.run or train_quick(args, args.out)
    predictor = seqclf.load(run, batch_size=args.batch_size)
    test = seqclf.read_tfds(split=f"test[:{args.texts}]", data_dir=args.data_dir)
    texts = test.texts
    k = args.texts_per_request
    bodies = [
        json.dumps({"texts": [texts[(i * k + j) % len(texts)] for j in range(k)]}).encode()
        for i in range(len(texts))
    ]

    print(f"Offline, {len(texts)} reviews:", flush=True)
    needs_train = "fasttext" in args.peers and installed("fasttext")  # fastText trains here
    train = (
        seqclf.read_tfds(split=f"train[:{args.fasttext_train}]", data_dir=args.data_dir)
        if needs_train
        else None
    )
    rows = offline_rows(
        args,
        predictor,
        texts,
        train.texts if train else [],
        [train.classes[y] for y in train.labels] if train else [],
    )
    del predictor  # its memory is not the server's; the servers run in their own processes

    served: list[dict] = []
    rss: list[dict] = []
    soak_row = None
    notes = []
    server_args = [
        "--batch-size",
        str(args.batch_size),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--threads",
        str(args.threads),
    ]
    for mode in args.mode_list:
        server = Server(run, MODES[mode] + server_args)
        level = dict(client=args.client, server_pid=server.proc.pid)
        sampler = RssSampler(server, mode, args.rss_interval, rss)
        try:
            for clients in args.client_counts:
                if time.monotonic() - began > args.time_limit:
                    notes.append(f"- {mode}, {clients} clients: skipped (--time-limit reached)")
                    continue
                sampler.set_phase(f"{clients} clients")
                # A few untimed requests first: connections, the server's first batches.
                run_level(server.port, bodies, k, clients, clients * 2, args.level_seconds, **level)
                result = {
                    "mode": mode,
                    **run_level(
                        server.port, bodies, k, clients, args.requests, args.level_seconds, **level
                    ),
                }
                served.append(result)
                print(
                    f"  {mode}, {clients} clients: {result['texts_per_s']} texts/s, "
                    f"p99 {result['p99_ms']} ms, {result['errors']} errors",
                    flush=True,
                )
            if mode == "batching" and args.soak and time.monotonic() - began < args.time_limit:
                sampler.set_phase("soak")
                soak_row = {
                    "mode": "batching soak",
                    **run_level(
                        server.port,
                        bodies,
                        k,
                        args.soak_clients,
                        args.soak,
                        max(args.time_limit - (time.monotonic() - began), 1),
                        **level,
                    ),
                }
                served.append(soak_row)
                sampler.set_phase("after the soak")
                print(
                    f"  soak: {soak_row['requests']} requests, {soak_row['errors']} errors",
                    flush=True,
                )
        finally:
            sampler.close()
            status = server.stop()
        notes.append(
            f"- the {mode} server exited with status {status} after SIGTERM "
            f"(`{shlex.join(server.command[1:])}`)"
        )

    rows = served + rows
    title = f"seqclf serve load test; {common.stamp('cpu')}"
    header = [
        f"Machine, versions, date: {common.stamp('cpu')}.",
        f"Command: `{shlex.join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}`.",
        f"Run served: `{run}`; {len(texts)} IMDB test reviews, {k} per request; each level "
        f"{args.requests} requests (or {args.level_seconds:g} s), after 2 untimed requests "
        f"per client. Clients: {CLIENT_KINDS[args.client]}, one keep-alive connection each; "
        "clients and server share the machine's cores.",
    ]
    write_csv(rows, COLUMNS, args.out / "serve_load.csv")
    write_csv(rss, ["mode", "t_s", "rss_mib", "phase"], args.out / "serve_load_rss.csv")
    write_markdown(args.out / "serve_load.md", rows, rss, soak_row, header, notes)
    write_plot(args.out / "serve_load.png", rows, rss, title)
    print(f"Wrote serve_load.csv, serve_load_rss.csv, serve_load.md, serve_load.png to {args.out}")
    return {"rows": rows, "rss": rss}


if __name__ == "__main__":
    main()
