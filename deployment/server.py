"""The HTTP layer (given): an ``InferenceAPI`` behind a FastAPI app, served by uvicorn.

Routes (``{name}`` is the model's name, by default the model file's stem):

==========================  =====================================================
``POST /predict``           ``{"instances": [[...], ...]}`` -> ``{"predictions": [...], "version", "timestamp"}``
``POST /v1/models/{name}:predict``  the same, on the KServe V1 route
``POST /predict_proba``     a classifier's ``{"probabilities", "classes", ...}``
``GET /v1/models/{name}``   ``{"name", "version", "ready", "n_features"}``
``GET /health``             ``InferenceAPI.health()``; 200 when healthy or degraded, 503 when unhealthy
``GET /metrics``            the monitor's metrics in Prometheus' text format
``GET /openapi.json``       the OpenAPI spec (``/docs`` shows it)
==========================  =====================================================

Every error is JSON, ``{"error": {"type": ..., "message": ...}}``, with the
status a client can act on: 400 bad input, 401 no or wrong key, 404 unknown
model, 413 too many rows, 429 over the rate limit (with ``Retry-After`` in
whole seconds, rounded up), 503 the model cannot answer. A client's mistake
is never a 500. Send the key as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``; only the predict routes need one.

Micro-batching: concurrent one-row requests are gathered for up to
``max_wait_ms`` (or until ``max_batch_rows`` are waiting) and answered by
one model call (``InferenceAPI.infer``), so a model's per-call cost is
paid once per batch. The default wait, 0 ms, gathers the requests that
arrived while the event loop was busy, and adds no delay when it is idle;
a longer wait makes bigger batches for a slow model, at the price of
latency. ``create_app(api, micro_batching=False)`` turns it off.

The handlers are ``async`` and call the model directly on the event loop:
for a small numpy model (tens of microseconds a call) that is faster than
handing each request to a thread. A slow model would block the loop; run it
in a thread pool (``starlette.concurrency.run_in_threadpool``) instead.

>>> app = create_app(InferenceAPI(model, APIConfig(version="1.0.0")), name="cancer")
>>> with BackgroundServer(app) as server:      # a free loopback port, in a thread
...     httpx.post(server.url + "/predict", json={"instances": [[0.0] * 30]}).json()
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import (
    AuthenticationError,
    BatchTooLargeError,
    DeploymentError,
    ModelNotFoundError,
    ModelUnavailableError,
    RateLimitError,
    ValidationError,
)
from .inference import AdmittedRequest, APIConfig, InferenceAPI
from .recorder import LatencyRecorder
from .serialization import build_model, load_serialized, utc_timestamp

__all__ = ["create_app", "build_app", "default_monitor", "BackgroundServer", "MicroBatcher", "error_response",
           "log_requests", "LoopTurnHandler", "MessageFormatter"]

logger = logging.getLogger("deployment.server")

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Request bodies larger than this are refused with 413 before they are parsed."""

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

_STATUS = [  # the first matching type decides; order matters (subclasses first)
    (BatchTooLargeError, 413),
    (ValidationError, 400),
    (AuthenticationError, 401),
    (RateLimitError, 429),
    (ModelNotFoundError, 404),
    (ModelUnavailableError, 503),
    (NotImplementedError, 501),  # a part of the package not written yet
]

_PREDICT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["instances"],
        "properties": {"instances": {
            "type": "array", "minItems": 1,
            "items": {"type": "array", "items": {"type": "number"}},
            "description": "One row per instance, each with the model's number of features.",
        }},
    }, "example": {"instances": [[0.5, 1.2, 3.4]]}}},
}
_ERROR_SCHEMA = {"application/json": {"schema": {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}}},
}}}
_PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Predictions, one per row", "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "predictions": {"type": "array"}, "version": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"}, "fallback": {"type": "boolean"},
        }}}}},
    400: {"description": "Bad input (the message names the row and column)", "content": _ERROR_SCHEMA},
    401: {"description": "Missing or wrong API key", "content": _ERROR_SCHEMA},
    413: {"description": "Too many rows, or a body too large", "content": _ERROR_SCHEMA},
    429: {"description": "Over the rate limit; see Retry-After", "content": _ERROR_SCHEMA},
    503: {"description": "The model cannot answer", "content": _ERROR_SCHEMA},
}


def error_response(error: BaseException) -> JSONResponse:
    """The JSON error response for ``error``: its status, type name and message (and Retry-After)."""
    status = next((code for kind, code in _STATUS if isinstance(error, kind)), 500)
    if status == 500:
        # A bug of ours, not the client's: say so without leaking internals.
        body = {"type": "InternalServerError", "message": "The server failed to answer; the error is in its log."}
    else:
        body = {"type": type(error).__name__, "message": str(error)}
    headers = {}
    if isinstance(error, RateLimitError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _api_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>``, else from ``X-API-Key``, else None."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    return request.headers.get("x-api-key") or None


async def _read_instances(request: Request) -> Any:
    """The ``instances`` of a JSON body ``{"instances": ...}``, or a ValidationError saying what is wrong."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise BatchTooLargeError(f"The request body is {int(length):,} bytes; the limit is {MAX_BODY_BYTES:,}.")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BatchTooLargeError(f"The request body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}.")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValidationError(f"The request body is not valid JSON ({str(exc)[:80]}).") from None
    if not isinstance(document, dict) or "instances" not in document:
        raise ValidationError('The request body must be a JSON object {"instances": [[...], ...]}.')
    return document["instances"]


_to_json = json.JSONEncoder(allow_nan=False).encode  # made once: json.dumps(allow_nan=False) makes one a call


def _success(outcome: dict[str, Any]) -> Response:
    document = dict(outcome, timestamp=utc_timestamp(outcome["timestamp"]))
    return Response(_to_json(document), media_type="application/json")


class _DirectRoute(APIRoute):
    """A route that hands its endpoint the Request as it is (and the path's parameters).

    The predict endpoints read and check their body themselves
    (``_read_instances``) and return a ready ``Response``, so FastAPI's work
    around an endpoint (solving its parameters, serializing its result) finds
    nothing to do, yet costs tens of microseconds a request: a fifth of a
    one-row answer. It is still an ``APIRoute``, so the OpenAPI spec shows it.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request=request, **request.path_params)

        return handler


class MicroBatcher:
    """Gathers admitted one-row requests for up to ``max_wait_ms`` and answers them with one model call.

    Runs on the server's event loop: ``submit`` queues a request and returns
    a future; the batch is answered (``api.infer``) when ``max_batch_rows``
    requests wait, or ``max_wait_ms`` after the first one arrived (0: at the
    loop's next turn, gathering whatever arrived meanwhile). ``batches`` and
    ``requests`` count what it did: their ratio is the mean batch size.
    """

    def __init__(self, api: InferenceAPI, *, max_batch_rows: int = 64, max_wait_ms: float = 0.0) -> None:
        if max_batch_rows < 1 or max_wait_ms < 0:
            raise ValidationError(f"MicroBatcher: max_batch_rows must be >= 1 and max_wait_ms >= 0, "
                                  f"got {max_batch_rows!r} and {max_wait_ms!r}.")
        self.api = api
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_ms / 1000.0
        self.batches = 0
        self.requests = 0
        self._pending: list[tuple[AdmittedRequest, asyncio.Future]] = []
        self._timer: asyncio.Handle | None = None

    def submit(self, request: AdmittedRequest) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) >= self.max_batch_rows:
            self.flush()
        elif self._timer is None:
            if self.max_wait_s > 0:
                self._timer = loop.call_later(self.max_wait_s, self.flush)
            else:
                self._timer = loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            outcomes = self.api.infer([request for request, _ in batch])
        except Exception as error:  # a bug: every request of the batch gets it
            outcomes = [error] * len(batch)
        self.batches += 1
        self.requests += len(batch)
        for (_, future), outcome in zip(batch, outcomes):
            if future.done():  # the client went away
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def create_app(
    api: InferenceAPI,
    *,
    monitor: Any = None,
    name: str = "model",
    micro_batching: bool = True,
    max_batch_rows: int = 64,
    max_wait_ms: float = 0.0,
) -> FastAPI:
    """The ASGI app serving ``api`` as the model ``name``; run it with uvicorn.

    ``monitor`` backs ``GET /metrics`` (anything with ``to_prometheus()`` and
    ``log_error``); by default the API's own monitor. Requests refused before
    they reach the API (a body that is not JSON, an unknown model name) are
    logged here and reported to that monitor. ``micro_batching`` gathers
    concurrent one-row requests into one model call (see ``MicroBatcher``).
    """
    monitor = monitor if monitor is not None else api.monitor
    batcher = MicroBatcher(api, max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms) if micro_batching else None
    app = FastAPI(
        title=f"{name} inference API",
        version=api.version,
        description="Predictions from a saved model, with validation, API keys, rate limits and health.",
    )
    app.state.api, app.state.monitor, app.state.batcher, app.state.name = api, monitor, batcher, name
    needs_key = api.config.api_keys is not None

    def refused(request: Request, started_s: float, error: BaseException) -> JSONResponse:
        """A request refused by the server itself: log it like the API logs its own."""
        latency_ms = (time.monotonic() - started_s) * 1000.0
        if monitor is not None:
            try:
                monitor.log_error(latency_ms, error)
            except Exception:
                pass
        logger.info(json.dumps({
            "event": "refused", "client": request.client.host if request.client else "unknown",
            "path": request.url.path, "latency_ms": round(latency_ms, 3), "outcome": type(error).__name__,
        }))
        return error_response(error)

    async def answer(request: Request, method: str) -> Response:
        started_s = time.monotonic()
        try:
            instances = await _read_instances(request)
        except DeploymentError as error:
            return refused(request, started_s, error)
        try:
            client = request.scope.get("client")
            api_key = _api_key(request) if needs_key else None  # no keys configured: nothing to read
            admitted = api.admit(instances, api_key=api_key, client_id=client[0] if client else None)
            if batcher is not None and method == "predict" and len(admitted.X) == 1:
                outcome = await batcher.submit(admitted)
            else:
                outcome = api.infer([admitted], method=method)[0]
                if isinstance(outcome, BaseException):
                    raise outcome
        except Exception as error:
            if not isinstance(error, (DeploymentError, NotImplementedError)):
                logger.exception("predict failed")
            return error_response(error)
        return _success(outcome)

    def check_name(request: Request, model_name: str) -> JSONResponse | None:
        if model_name != name:
            return refused(request, time.monotonic(),
                           ModelNotFoundError(f"No model named {model_name!r} here; this server serves {name!r}."))
        return None

    def post(path: str, **documentation: Any) -> Callable[[Callable], Callable]:
        """Like ``@app.post``, for the predict routes: a ``_DirectRoute`` serves them."""
        def register(endpoint: Callable) -> Callable:
            app.router.add_api_route(path, endpoint, methods=["POST"], route_class_override=_DirectRoute,
                                     **documentation)
            return endpoint
        return register

    @post("/predict", openapi_extra={"requestBody": _PREDICT_BODY}, responses=_PREDICT_RESPONSES,
          summary="Predict: one answer per row")
    async def predict(request: Request) -> Response:
        return await answer(request, "predict")

    @post("/predict_proba", openapi_extra={"requestBody": _PREDICT_BODY}, responses=_PREDICT_RESPONSES,
          summary="A classifier's class probabilities, one list per row")
    async def predict_proba(request: Request) -> Response:
        if not api.is_classifier:
            return refused(request, time.monotonic(), ValidationError(f"The model {name!r} is not a classifier."))
        return await answer(request, "predict_proba")

    @post("/v1/models/{model_name}:predict", openapi_extra={"requestBody": _PREDICT_BODY},
          responses={**_PREDICT_RESPONSES, 404: {"description": "No such model", "content": _ERROR_SCHEMA}},
          summary="Predict (KServe V1 protocol)")
    async def kserve_predict(model_name: str, request: Request) -> Response:
        return check_name(request, model_name) or await answer(request, "predict")

    @app.get("/v1/models/{model_name}", summary="The model's name, version and readiness (KServe V1)",
             responses={404: {"description": "No such model", "content": _ERROR_SCHEMA}})
    async def model_metadata(model_name: str, request: Request) -> Response:
        problem = check_name(request, model_name)
        if problem is not None:
            return problem
        ready = api.health()["status"] != "unhealthy"
        return JSONResponse({"name": name, "version": api.version, "ready": ready, "n_features": api.n_features})

    @app.get("/health", summary="healthy, degraded (200) or unhealthy (503)")
    async def health() -> Response:
        report = api.health()
        return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)

    @app.get("/metrics", summary="Metrics in Prometheus' text format",
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}})
    async def metrics() -> Response:
        if monitor is None:
            return error_response(ModelNotFoundError("No monitor is attached to this server."))
        return Response(monitor.to_prometheus(), media_type=PROMETHEUS_TEXT)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return JSONResponse({"error": {"type": kind, "message": str(exc.detail)}},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ValidationError(f"The request is not valid: {exc.errors()[:1]}"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    return app


def default_monitor() -> Any:
    """Part 3's ``ModelMonitor`` if it is written, else a ``LatencyRecorder`` (same four methods)."""
    from . import monitoring

    monitor_class = getattr(monitoring, "ModelMonitor", None)
    if monitor_class is not None:
        try:
            monitor = monitor_class()
            monitor.get_metrics()
            monitor.to_prometheus()
            return monitor
        except Exception:  # NotImplementedError until Part 3 is written
            pass
    return LatencyRecorder()


def build_app(
    model_path: str | os.PathLike,
    *,
    name: str | None = None,
    api_keys: list[str] | None = None,
    rate_limit_rps: float | None = None,
    burst: int | None = None,
    micro_batching: bool = True,
    max_wait_ms: float = 0.0,
) -> FastAPI:
    """The app serving a saved model file: its version is the one saved in the file; a monitor for /metrics."""
    path = Path(model_path)
    serialized = load_serialized(path)  # read and checked once: the model and its version come from it
    model = build_model(serialized, str(path))
    config = APIConfig(version=serialized.version, api_keys=frozenset(api_keys) if api_keys else None,
                       rate_limit_rps=rate_limit_rps, burst=burst)
    monitor = default_monitor()
    api = InferenceAPI(model, config, monitor=monitor)
    return create_app(api, monitor=monitor, name=name or path.stem, micro_batching=micro_batching,
                      max_wait_ms=max_wait_ms)


SERVE_OPTIONS_VARIABLE = "DEPLOYMENT_SERVE_OPTIONS"


class LoopTurnHandler(logging.StreamHandler):
    """A StreamHandler that writes the lines logged during one event-loop turn with one write.

    On a busy server, writing each request's line on its own costs a system
    call a request (stderr is line-buffered), more than building the line.
    On an event loop's thread this handler keeps the lines in a list, and a
    callback that the loop runs at its next turn writes them all, in order:
    the loop never waits for input with a line unwritten. Off a loop (another
    thread, a script) a line is written at once, after any still waiting.
    ``flush()`` and ``close()`` (``logging.shutdown`` at exit) write what waits.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop that will write them

    def emit(self, record: logging.LogRecord) -> None:  # called by handle(), which holds self.lock
        try:
            self._waiting.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop's thread
            loop = None
        if loop is not None and self._flush_on is loop:
            return  # the callback of this turn will write it
        if loop is not None and self._flush_on is None:
            self._flush_on = loop
            loop.call_soon(self.flush)
            return
        self.flush()  # off a loop, or on another loop than the one that will write: write now

    def flush(self) -> None:
        with self.lock:
            lines, self._waiting, self._flush_on = "".join(self._waiting), [], None
            if lines and self.stream is not None:
                self.stream.write(lines)
        super().flush()


class MessageFormatter(logging.Formatter):
    """The record's message alone (plus its traceback, if any): the lines are JSON objects already.

    ``logging.Formatter("%(message)s")`` prints the same, after filling in a
    template from every field of the record: a few microseconds a request.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.stack_info:
            return super().format(record)
        return record.getMessage()


def log_requests(level: str = "info", stream: Any = None) -> LoopTurnHandler:
    """Write the package's log (one JSON line per request at INFO) to ``stream`` (stderr), at ``level`` and above.

    It replaces uvicorn's access log: one line per request, with the request
    id, client, rows, latency and outcome; the lines of one event-loop turn
    go out in one write (``LoopTurnHandler``). The lines hold only their
    message (``MessageFormatter``), so the process stops collecting what
    nothing prints: each record's thread, process and calling line
    (microseconds a request; these switches are listed under "Optimization"
    in Python's logging HOWTO). Returns the handler.
    """
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # the documented switch: no sys._getframe() walk to find the caller
    handler = LoopTurnHandler(stream)
    handler.setFormatter(MessageFormatter())
    package_logger = logging.getLogger("deployment")
    package_logger.addHandler(handler)
    package_logger.setLevel(level.upper())
    package_logger.propagate = False
    return handler


def app_from_environment() -> FastAPI:
    """``build_app`` with the options ``python -m deployment serve --workers N`` put in the environment."""
    options = json.loads(os.environ[SERVE_OPTIONS_VARIABLE])
    log_requests(options.pop("log_level", "info"))
    return build_app(options.pop("model_path"), **options)


class BackgroundServer:
    """Run an ASGI app with uvicorn in a background thread, on a free loopback port; stop it cleanly.

    For notebooks and tests. ``start()`` waits (at most ``startup_timeout_s``)
    until the server accepts connections; ``stop()`` asks it to finish the
    requests in flight and waits for the thread to end.

    >>> with BackgroundServer(app) as server:
    ...     httpx.get(server.url + "/health").json()["status"]
    'healthy'
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 60.0, log_level: str = "warning") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # port 0: the system picks a free one
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=10)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"uvicorn-{self.port}", daemon=True)
        self.startup_timeout_s = startup_timeout_s

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise DeploymentError(f"The server on {self.url} stopped while starting; see its log.")
            if time.monotonic() > deadline:
                self.stop()
                raise DeploymentError(f"The server on {self.url} did not start within {self.startup_timeout_s} s.")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._socket.close()
        if self._thread.is_alive():
            raise DeploymentError(f"The server on {self.url} did not stop within {timeout_s} s.")

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
