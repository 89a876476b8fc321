"""An HTTP JSON API for one trained model: ``create_app(predictor)`` → a FastAPI app.

Endpoints: ``POST /v1/predict``, ``GET /healthz``, ``GET /v1/model`` and, at ``/``, a page to try
the model. Requests go through a ``MicroBatcher`` (``seqclf.batcher``), so concurrent requests
share predictor calls. Every (batch, length-bucket) shape is compiled in the app's start-up,
which uvicorn runs before it accepts connections, so no request pays for compilation. The
request body is read and checked here (size, time, UTF-8, JSON, types, limits) rather than by
FastAPI's body parameters, which would read a body of any size before any check could run.
``docs/serving.md`` lists every status the API answers. The module runs past ~400 lines because
those request checks, each with its status and message, sit next to the routes they guard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import platform
import socket
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

from seqclf.batcher import MicroBatcher, QueueFull, ShuttingDown
from seqclf.serve_settings import ServeSettings

log = logging.getLogger("uvicorn.error")  # uvicorn's own application log, so one stream
DRAIN_FACTOR = 4  # a body over the limit is read (and dropped) up to this many times the limit


class PredictRequest(BaseModel):
    """The body of ``POST /v1/predict`` (documents the API; the checks are ``parse_request``)."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, description="texts to classify")
    explain: bool = Field(False, description="also give per-token attributions")


class HTTPProblem(Exception):
    """A request the API refuses: its status and a one-line message that names the field."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def parse_request(body: bytes, settings: ServeSettings) -> tuple[list[str], bool]:
    """The texts and the explain flag of a ``/v1/predict`` body.

    Raises:
      HTTPProblem: 422 for a body that is not UTF-8 JSON of the right shape and types, 413 for
        one over a limit; the message starts with the field (``body``, ``texts``, ``texts[3]``,
        ``explain``).
    """
    try:
        obj = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise HTTPProblem(422, f"body: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise HTTPProblem(
            422, f"body: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except RecursionError:  # e.g. [[[[...]]]]: Python's parser recurses once per level
        raise HTTPProblem(422, "body: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise HTTPProblem(
            422, f'body: expected a JSON object {{"texts": [...]}}, got {_json_type(obj)}'
        )
    unknown = sorted(set(obj) - {"texts", "explain"})
    if unknown:
        raise HTTPProblem(
            422, f"{unknown[0]}: unknown field (the fields are 'texts' and 'explain')"
        )
    if "texts" not in obj:
        raise HTTPProblem(422, "texts: missing (a list of strings to classify)")
    texts = obj["texts"]
    if not isinstance(texts, list):
        raise HTTPProblem(422, f"texts: expected a list of strings, got {_json_type(texts)}")
    if not texts:
        raise HTTPProblem(422, "texts: empty list; give at least one text")
    explain = obj.get("explain", False)
    if not isinstance(explain, bool):
        raise HTTPProblem(422, f"explain: expected true or false, got {_json_type(explain)}")
    limit = settings.max_explain_texts if explain else settings.max_texts
    if len(texts) > limit:
        what = "texts with explain" if explain else "texts"
        raise HTTPProblem(
            413, f"texts: {len(texts)} texts, more than the limit of {limit} {what} per request"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise HTTPProblem(422, f"texts[{i}]: expected a string, got {_json_type(text)}")
        if len(text) > settings.max_chars:
            raise HTTPProblem(
                413,
                f"texts[{i}]: {len(text)} characters, more than the limit of "
                f"{settings.max_chars} per text",
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # JSON allows "\ud800", which no UTF-8 text contains
            raise HTTPProblem(
                422, f"texts[{i}]: not valid Unicode (a lone surrogate at character {e.start})"
            ) from None
    return texts, explain


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole request body, at most ``limit`` bytes, received within ``timeout_s``.

    A body over the limit is still read, and thrown away, up to ``DRAIN_FACTOR * limit`` bytes:
    a client that sends its whole body before it reads the answer (Python's ``http.client``,
    ``requests``) would otherwise see its connection closed under it and never the 413. A body
    declared larger than that is refused at once and the connection closed.

    Raises:
      HTTPProblem: 413 for a body over the limit; 408 when the client is too slow.
      ClientDisconnect: the client went away.
    """
    close = {"Connection": "close"}
    declared = request.headers.get("content-length")
    declared = int(declared) if declared is not None and declared.isdigit() else None
    if declared is not None and declared > DRAIN_FACTOR * limit:
        raise HTTPProblem(413, f"body: {declared} bytes, more than the limit of {limit}", close)
    size = 0

    async def receive() -> bytes:
        nonlocal size
        chunks = []
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > DRAIN_FACTOR * limit:
                raise HTTPProblem(413, f"body: more than the limit of {limit} bytes", close)
        if size > limit:
            raise HTTPProblem(413, f"body: {size} bytes, more than the limit of {limit}")
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(receive(), timeout_s)
    except asyncio.TimeoutError:
        if size > limit or (declared is not None and declared > limit):
            raise HTTPProblem(413, f"body: more than the limit of {limit} bytes", close) from None
        raise HTTPProblem(408, f"body: not received within {timeout_s:g} s", close) from None


def warm_up(predictor: Any, settings: ServeSettings) -> int:
    """Compile every shape a request can need: one call per length bucket and row size (the
    predictor pads each device call to one of its ``row_sizes``, so (rows, bucket) are all the
    shapes), for predictions and, if asked and possible, explanations. Returns the number of
    calls made."""
    buckets = list(getattr(predictor, "buckets", None) or [predictor.max_len])
    texts = [" ".join(["a"] * b) for b in buckets]  # b tokens: exactly bucket b
    row_sizes = getattr(predictor, "row_sizes", (1,))
    calls = 0
    for rows in row_sizes:
        for text in texts:
            predictor.predict_proba([text] * rows)  # `rows` texts: padded to exactly `rows`
            calls += 1
    if settings.warm_up_explain and hasattr(predictor, "explain"):
        for text in texts:
            predictor.explain([text], steps=settings.explain_steps)
            calls += 1
    return calls


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("seqclf", "jax", "jaxlib", "flax"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def describe(predictor: Any, settings: ServeSettings, run_dir: str | None) -> dict[str, Any]:
    """The ``/v1/model`` document: classes, configuration, text pipeline, limits, versions."""
    config = getattr(predictor, "config", None)
    vocabulary = getattr(predictor, "vocabulary", None)
    limits = {
        k: getattr(settings, k)
        for k in ("max_texts", "max_chars", "max_explain_texts", "max_body_bytes", "read_timeout_s")
    }
    return {
        "run": run_dir,
        "classes": list(predictor.classes),
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None,
        "max_len": getattr(predictor, "max_len", None),
        "truncating": getattr(predictor, "truncating", None),
        "buckets": list(getattr(predictor, "buckets", None) or []),
        "batch_size": getattr(predictor, "batch_size", None),
        "vocabulary_size": len(vocabulary) if vocabulary is not None else None,
        "explain": hasattr(predictor, "explain"),
        "server": {
            "batching": settings.batching,
            "max_wait_ms": settings.max_wait_ms,
            "max_batch_texts": settings.max_batch_texts or getattr(predictor, "batch_size", None),
            "max_queue": settings.max_queue,
            "explain_steps": settings.explain_steps,
            "limits": limits,
        },
        "versions": _versions(),
    }


def _predictions(classes: list[str], result: Any, explain: bool) -> list[dict[str, Any]]:
    """Per text: label and probabilities, and with ``explain`` the tokens and attributions."""
    out = []
    if not explain:
        for row in result:
            probs = {c: float(p) for c, p in zip(classes, row, strict=True)}
            out.append({"label": classes[int(row.argmax())], "probabilities": probs})
        return out
    for explanation in result:
        d = dict(explanation.to_dict())
        d.pop("text", None)  # the client sent it
        label, probs = d.pop("label"), d.pop("probabilities")
        out.append({"label": label, "probabilities": probs, "explanation": d})
    return out


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def create_app(
    predictor: Any, settings: ServeSettings | None = None, run_dir: str | Path | None = None
) -> FastAPI:
    """The API for one predictor, shared by all requests (see the module docstring).

    Args:
      predictor: a ``seqclf.Predictor`` (or anything with ``classes``, ``predict_proba`` and,
        for explanations, ``explain``).
      settings: limits and batching; default ``ServeSettings()``.
      run_dir: the run directory, shown by ``/v1/model``.

    Returns:
      A FastAPI app whose lifespan compiles every shape, starts the batcher, and on shutdown
      finishes the queued requests.
    """
    settings = settings or ServeSettings()
    classes = list(predictor.classes)
    batcher = MicroBatcher(
        predictor,
        batching=settings.batching,
        max_wait_ms=settings.max_wait_ms,
        max_batch_texts=settings.max_batch_texts,
        max_queue=settings.max_queue,
        batch_workers=settings.batch_workers,
        threads=settings.threads,
        explain_steps=settings.explain_steps,
    )
    model_doc = describe(predictor, settings, None if run_dir is None else str(run_dir))
    page = resources.files("seqclf").joinpath("serve_page.html").read_text("utf-8")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.status = "warming up"
        calls = await asyncio.to_thread(warm_up, predictor, settings)
        log.info("seqclf: %d shapes compiled; ready", calls)
        batcher.start()
        app.state.status = "ready"
        try:
            yield
        finally:
            app.state.status = "stopping"
            await asyncio.to_thread(batcher.close)

    app = FastAPI(title="seqclf", version=model_doc["versions"]["seqclf"], lifespan=lifespan)
    app.state.status = "starting"
    app.state.batcher = batcher

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """``ready`` (200) once every shape is compiled; 503 while starting or stopping."""
        stats = dataclasses.asdict(batcher.stats)
        body = {"status": app.state.status, "queued": batcher.queued(), **stats}
        return JSONResponse(body, status_code=200 if app.state.status == "ready" else 503)

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        """Classes, model configuration, text pipeline, server limits and versions."""
        return model_doc

    @app.post(
        "/v1/predict",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
    )
    async def predict(request: Request) -> Response:
        """Labels and class probabilities of ``texts`` (and attributions when ``explain``)."""
        try:
            body = await read_body(request, settings.max_body_bytes, settings.read_timeout_s)
            texts, explain = parse_request(body, settings)
            if explain and not hasattr(predictor, "explain"):
                raise HTTPProblem(501, "explain: this server's predictor cannot explain")
            try:
                future = batcher.submit(texts, explain)
            except (QueueFull, ShuttingDown) as err:
                retry = {"Retry-After": str(settings.retry_after_s)}
                raise HTTPProblem(503, f"busy: {err}; retry later", retry) from None
            try:
                result = await asyncio.wrap_future(future)
            except Exception as err:
                log.exception("seqclf: prediction failed")
                raise HTTPProblem(500, f"prediction failed: {type(err).__name__}: {err}") from err
        except HTTPProblem as p:
            return _problem(p.status, p.message, p.headers)
        except ClientDisconnect:
            log.info("seqclf: the client disconnected before sending its whole request")
            return Response(status_code=400)  # never delivered: nobody is listening
        return JSONResponse({"predictions": _predictions(classes, result, explain)})

    return app


def bind(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), not yet listening.

    Raises:
      OSError: the address cannot be used (in use, not this machine's), in one line.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def serve(
    predictor: Any,
    settings: ServeSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sock: socket.socket | None = None,
    run_dir: str | Path | None = None,
    access_log: bool = True,
    graceful_timeout_s: float = 30.0,
) -> None:
    """Serve ``create_app(predictor)`` with uvicorn until SIGINT or SIGTERM.

    Listens on ``sock`` if given (from ``bind``: the CLI binds before it loads the model, so that
    a port in use is reported at once), else on ``host:port``; the URL is printed to stdout
    first. On SIGTERM uvicorn stops accepting connections, finishes the requests in flight (for
    at most ``graceful_timeout_s``), then the app's shutdown finishes the queued ones; this
    returns normally (uvicorn would re-raise the signal afterwards, killing the process with it,
    so SIGTERM gets a handler of its own that does nothing).
    """
    import signal

    import uvicorn

    sock = sock or bind(host, port)
    address, bound = sock.getsockname()[:2]
    shown = f"[{address}]" if sock.family == socket.AF_INET6 else address
    print(f"seqclf serve: http://{shown}:{bound}/ (compiling, then ready)", flush=True)
    app = create_app(predictor, settings, run_dir=run_dir)
    config = uvicorn.Config(
        app,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout_s,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started:
        raise RuntimeError("the server did not start (its log above says why)")
