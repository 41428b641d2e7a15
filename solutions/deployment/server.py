"""The HTTP layer (given): an ``InferenceAPI`` behind a FastAPI app that speaks three protocols.

Routes (``{name}`` is the model's name, by default the model file's stem):

======================================  ==========================================================
``POST /predict``                       the workbook's: ``{"instances": rows}`` -> ``{"predictions", "version", "timestamp"}``
``POST /predict_proba``                 a classifier's ``{"probabilities", "classes", "version", "timestamp"}``
``GET /``                               KServe V1 liveness: ``{"status": "alive"}``
``GET /v1/models``                      KServe V1: ``{"models": [name]}``
``GET /v1/models/{name}``               KServe V1 readiness: ``{"name", "ready", "version", "n_features"}``; 503 when not ready
``POST /v1/models/{name}:predict``      KServe V1: ``{"instances": rows}`` or ``{"inputs": rows}``, answered like ``/predict``
``POST /v1/models/{name}:explain``      KServe V1 explanations: 501, not implemented here
``POST /invocations``                   MLflow: ``inputs``, ``instances``, ``dataframe_split``, ``dataframe_records`` or CSV -> ``{"predictions"}``
``GET /ping``, ``GET /version``         MLflow: health (200 or 503), the model's version (text)
``GET /health``                         ``InferenceAPI.health()``; 200 when healthy or degraded, 503 when unhealthy
``GET /metrics``                        the monitor's ``to_prometheus()``, in Prometheus' text format
``GET /openapi.json``, ``GET /docs``    the OpenAPI document, and a page that shows it
======================================  ==========================================================

Every route goes through the same ``InferenceAPI``: the same validation,
keys, rate limits, cache, monitor and log line. Every error is the JSON
body of ``responses.py``, ``{"error": "<one sentence>", "type": "<class>"}``,
with the status a client can act on (400, 401, 404, 405, 408, 413, 415,
429, 501, 503; never a traceback). Send the key as ``Authorization:
Bearer <key>`` or ``X-API-Key: <key>``; only the predict routes need one.

A predict request is checked in the order that costs a hostile client the
most and the server the least: the key and the client's rate first (a
FastAPI dependency, ``InferenceAPI.authorize``: 401 or 429 before a byte of
the body is read), then the body (``payloads.py``: its type, its size, its
time, strict JSON), then the rows (``InferenceAPI.admit``), then the model
(``InferenceAPI.infer``, through the ``MicroBatcher`` for one-row
requests). An address that sends too many wrong keys is answered 429
(``limits.FailedKeyThrottle``).

The handlers are ``async`` and call the model on the event loop: for a
small numpy model (tens of microseconds a call) that is faster than
handing each request to a thread. A slow model would block the loop; run
it in a thread pool (``starlette.concurrency.run_in_threadpool``) instead.
A request the ``MicroBatcher`` does not take (several rows, probabilities,
micro-batching off) lets the loop turn once before its model call: under
load, with 32 connections, that took the p99 latency of
``serve --no-micro-batching`` from 219 to 84 ms with a scikit-learn
pipeline and from 60 to 14 ms with the workbook's model.

State lives in each process: with ``serve --workers N``, each worker has
its own rate limits, cache and failed-key counts (so a client may get up
to N times its rate); only ``/metrics`` is summed over the workers.

>>> from deployment.server import BackgroundServer, create_app
>>> app = create_app(InferenceAPI(model, APIConfig(version="1.0.0")), name="cancer")
>>> with BackgroundServer(app) as server:      # a free loopback port, in a thread
...     httpx.post(server.url + "/v1/models/cancer:predict", json={"inputs": [row]}).json()["predictions"]
[1]
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Path as PathParameter, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.convertors import Convertor, register_url_convertor

import uvicorn

from .batching import MicroBatcher
from .errors import (
    AuthenticationError,
    DeploymentError,
    ModelNotFoundError,
    ModelUnavailableError,
    RateLimitError,
    ValidationError,
)
from .inference import APIConfig, Caller, InferenceAPI
from .limits import FailedKeyThrottle, ServerLimits, uvicorn_config
from .logs import log_requests
from .metrics import Monitor
from .openapi import (
    Health,
    Liveness,
    MlflowPrediction,
    ModelList,
    ModelReady,
    Prediction,
    Probabilities,
    csv_example,
    error_responses,
    request_body,
    rows_schema,
)
from .payloads import (
    CSV,
    JSON,
    ClientDisconnect,
    csv_instances,
    kserve_instances,
    mlflow_instances,
    parse_json,
    read_body,
    require_media_type,
)
from .recorder import LatencyRecorder
from .responses import NotImplementedHereError, add_error_handlers, error_response, json_response
from .serialization import build_model, load_serialized, utc_timestamp

__all__ = ["create_app", "build_app", "default_monitor", "BackgroundServer", "MicroBatcher", "error_response",
           "log_requests", "ServerLimits"]

logger = logging.getLogger("deployment.server")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class ModelName(Convertor):
    """A model name in a path: no ``/`` and no ``:``, so ``cancer:explain`` is never taken for a name."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model_name", ModelName())


def client_address(request: Request) -> str:
    """The client's address (the proxy's, unless ``--forwarded-allow-ips`` names it)."""
    return request.client.host if request.client else "unknown"


def create_app(
    api: InferenceAPI,
    *,
    monitor: Monitor | None = None,
    name: str = "model",
    micro_batching: bool = True,
    max_batch_rows: int = 64,
    max_wait_ms: float = 0.0,
    limits: ServerLimits | None = None,
) -> FastAPI:
    """The ASGI app serving ``api`` as the model ``name``; run it with uvicorn (``limits.uvicorn_config``).

    ``monitor`` backs ``GET /metrics`` (by default the API's own monitor);
    requests refused before the API knows them (too many wrong keys) are
    reported to it too. ``micro_batching`` gathers concurrent one-row
    requests into one model call (``MicroBatcher``). ``limits`` sets the
    body's size and time limits and the failed-key throttle
    (``ServerLimits``); the server that runs the app reads the rest from
    ``app.state.limits``.
    """
    monitor = monitor if monitor is not None else api.monitor
    limits = limits or ServerLimits()
    batcher = MicroBatcher(api, max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms) if micro_batching else None
    max_body_bytes = limits.body_limit(api.config.max_batch_size, api.n_features)
    failed_keys = FailedKeyThrottle(limits.failed_keys_per_minute, window_s=60.0)
    needs_key = api.config.api_keys is not None

    app = FastAPI(
        title=f"{name} inference API",
        version=api.version,
        description=(f"Predictions from the model {name!r} (version {api.version}): the workbook's /predict, "
                     "KServe's V1 data plane and MLflow's scoring protocol. Every error is "
                     '{"error": "<one sentence>", "type": "<error class>"}.'),
    )
    app.state.api, app.state.monitor, app.state.batcher = api, monitor, batcher
    app.state.name, app.state.limits = name, limits
    add_error_handlers(app)

    # --- who is calling: checked before the body is read -----------------------------------------

    def authorize(request: Request, api_key: str | None) -> Caller:
        address = client_address(request)
        if needs_key:
            try:
                failed_keys.check(address)
            except RateLimitError as error:
                report_refusal(request, error)
                raise
        try:
            return api.authorize(api_key=api_key, client_id=address)
        except AuthenticationError:
            failed_keys.failed(address)
            raise

    bearer = HTTPBearer(auto_error=False, description="An API key, sent as Authorization: Bearer KEY.")
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")

    async def keyed_caller(request: Request, token: HTTPAuthorizationCredentials | None = Security(bearer),
                           header_key: str | None = Security(key_header)) -> Caller:
        # One key a request: an Authorization header wins, and one that is not "Bearer <key>" is a wrong key.
        authorization = request.headers.get("authorization")
        if authorization is not None:
            return authorize(request, token.credentials if token is not None else authorization)
        return authorize(request, header_key)

    async def open_caller(request: Request) -> Caller:
        return authorize(request, None)

    caller_of = keyed_caller if needs_key else open_caller

    def report_refusal(request: Request, error: BaseException) -> None:
        """A request refused before the API knew it: one log line, and the monitor hears of it."""
        if monitor is not None:
            monitor.log_error(0.0, error)
        logger.info(json.dumps({"event": "refused", "client": client_address(request), "path": request.url.path,
                                "outcome": type(error).__name__}))

    # --- reading the body, answering -------------------------------------------------------------

    async def read_document(request: Request, caller: Caller, accepted: tuple[str, ...] = (JSON,)) -> Any:
        """The body as a JSON object (or CSV rows); a refusal is recorded under the caller's request id."""
        try:
            kind = require_media_type(request, accepted)
            body = await read_body(request, max_bytes=max_body_bytes, timeout_s=limits.body_timeout_s)
            return csv_instances(body) if kind == CSV else parse_json(body)
        except ClientDisconnect:
            api.refuse(caller, ClientDisconnect())
            raise
        except DeploymentError as error:
            raise api.refuse(caller, error) from None

    async def answer(caller: Caller, instances: Any, method: str = "predict") -> dict[str, Any]:
        admitted = api.admit(instances, caller=caller)
        if batcher is not None and method == "predict" and len(admitted.X) == 1:
            return await batcher.submit(admitted)
        # Answered alone, the model holds the event loop for its whole call. Letting the loop turn
        # once first (asyncio.sleep(0), asyncio's documented way) makes uvloop serve the connections
        # more evenly under load: a shorter tail (see MagicStack/uvloop#123).
        await asyncio.sleep(0)
        outcome = api.infer([admitted], method=method)[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def check_name(caller: Caller | None, model_name: str) -> None:
        if model_name != name:
            error = ModelNotFoundError(f"No model named {model_name!r} here; this server serves {name!r}.")
            raise (api.refuse(caller, error) if caller is not None else error)

    def workbook_answer(outcome: dict[str, Any]) -> Response:
        return json_response(dict(outcome, timestamp=utc_timestamp(outcome["timestamp"])))

    async def answer_rows(request: Request, caller: Caller) -> Response:
        """A ``{"instances": rows}`` or ``{"inputs": rows}`` body, predicted and answered as ``/predict`` answers."""
        document = await read_document(request, caller)
        try:
            instances = kserve_instances(document)
        except ValidationError as error:
            raise api.refuse(caller, error) from None
        return workbook_answer(await answer(caller, instances))

    rows = rows_schema(api.n_features, api.config.max_batch_size)
    example_row = [0.0] * api.n_features
    instances_body = request_body({"type": "object", "required": ["instances"], "additionalProperties": False,
                                   "properties": {"instances": rows}}, {"instances": [example_row]})
    kserve_body = request_body({"oneOf": [
        {"type": "object", "required": ["instances"], "additionalProperties": False, "properties": {"instances": rows}},
        {"type": "object", "required": ["inputs"], "additionalProperties": False, "properties": {"inputs": rows}},
    ]}, {"instances": [example_row]})
    predict_errors = error_responses(400, 408, 413, 415, 429, 503) | (error_responses(401) if needs_key else {})

    # --- the workbook's routes --------------------------------------------------------------------

    @app.post("/predict", summary="Predict: one answer per row", tags=["workbook"],
              openapi_extra={"requestBody": instances_body},
              responses={200: {"model": Prediction, "description": "One prediction per row"}, **predict_errors})
    async def predict(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        return await answer_rows(request, caller)

    @app.post("/predict_proba", summary="A classifier's probabilities, one list per row", tags=["workbook"],
              openapi_extra={"requestBody": instances_body},
              responses={200: {"model": Probabilities, "description": "One list of probabilities per row"},
                         **predict_errors})
    async def predict_proba(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        document = await read_document(request, caller)
        try:
            if not api.is_classifier:
                raise ValidationError(f"The model {name!r} is not a classifier: it has no probabilities.")
            instances = kserve_instances(document)
        except ValidationError as error:
            raise api.refuse(caller, error) from None
        return workbook_answer(await answer(caller, instances, "predict_proba"))

    @app.get("/health", summary="healthy or degraded (200), unhealthy (503)", tags=["workbook"],
             responses={200: {"model": Health}, 503: {"model": Health, "description": "Nothing can answer"}})
    async def health() -> Response:
        report = api.health()
        return JSONResponse(report, status_code=503 if report["status"] == "unhealthy" else 200)

    @app.get("/metrics", summary="Metrics in Prometheus' text format", tags=["workbook"], response_class=Response,
             responses={200: {"content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}},
                              "description": "Prometheus text format 0.0.4"},
                        **error_responses(404)})
    async def metrics() -> Response:
        if monitor is None:
            raise ModelNotFoundError("No monitor is attached to this server.")
        return Response(monitor.to_prometheus(), media_type=PROMETHEUS_TEXT)

    # --- KServe V1 ----------------------------------------------------------------------------------

    model_name_parameter = PathParameter(description=f"The model's name: this server serves {name!r}.",
                                         examples=[name])

    @app.get("/", summary="Liveness (KServe V1)", tags=["KServe V1"], response_model=Liveness)
    async def liveness() -> Response:
        return JSONResponse({"status": "alive"})

    @app.get("/v1/models", summary="The models served (KServe V1)", tags=["KServe V1"], response_model=ModelList)
    async def model_list() -> Response:
        return JSONResponse({"models": [name]})

    @app.get("/v1/models/{model_name:model_name}", summary="Readiness of a model (KServe V1)", tags=["KServe V1"],
             responses={200: {"model": ModelReady, "description": "The model is ready"},
                        **error_responses(404, 503)})
    async def model_ready(model_name: str = model_name_parameter) -> Response:
        check_name(None, model_name)
        report = api.health()
        if report["status"] == "unhealthy":
            raise ModelUnavailableError(f"The model {name!r} is not ready: {'; '.join(report['reasons'])}.")
        return JSONResponse({"name": name, "ready": True, "version": api.version, "n_features": api.n_features})

    @app.post("/v1/models/{model_name:model_name}:predict", summary="Predict (KServe V1)", tags=["KServe V1"],
              openapi_extra={"requestBody": kserve_body},
              responses={200: {"model": Prediction, "description": "One prediction per row"},
                         **predict_errors, **error_responses(404)})
    async def kserve_predict(request: Request, model_name: str = model_name_parameter,
                             caller: Caller = Depends(caller_of)) -> Response:
        check_name(caller, model_name)
        return await answer_rows(request, caller)

    @app.post("/v1/models/{model_name:model_name}:explain", summary="Explain (KServe V1): not implemented here",
              tags=["KServe V1"], responses=error_responses(404, 501))
    async def kserve_explain(model_name: str = model_name_parameter) -> Response:
        check_name(None, model_name)
        raise NotImplementedHereError(f"The model {name!r} has no explainer: this server answers :predict only.")

    # --- MLflow's scoring protocol ----------------------------------------------------------------------

    mlflow_schema = {"type": "object", "oneOf": [
        {"required": ["inputs"], "additionalProperties": False, "properties": {"inputs": rows}},
        {"required": ["instances"], "additionalProperties": False, "properties": {"instances": rows}},
        {"required": ["dataframe_split"], "additionalProperties": False, "properties": {"dataframe_split": {
            "type": "object", "required": ["data"], "properties": {
                "columns": {"type": "array", "items": {"type": "string"}, "minItems": api.n_features,
                            "maxItems": api.n_features, "uniqueItems": True},
                "data": rows}}}},
        {"required": ["dataframe_records"], "additionalProperties": False, "properties": {"dataframe_records": {
            "type": "array", "minItems": 1, "maxItems": api.config.max_batch_size,
            "items": {"type": "object", "minProperties": api.n_features, "maxProperties": api.n_features,
                      "additionalProperties": {"type": "number"}}}}},
    ]}
    mlflow_body = request_body(mlflow_schema, {"inputs": [example_row]}, csv=csv_example(api.n_features))

    @app.post("/invocations", summary="Predict (MLflow scoring protocol)", tags=["MLflow"],
              openapi_extra={"requestBody": mlflow_body},
              responses={200: {"model": MlflowPrediction, "description": "One prediction per row"}, **predict_errors})
    async def invocations(request: Request, caller: Caller = Depends(caller_of)) -> Response:
        document = await read_document(request, caller, accepted=(JSON, CSV))
        try:
            instances = document if isinstance(document, list) else mlflow_instances(document)
        except ValidationError as error:
            raise api.refuse(caller, error) from None
        outcome = await answer(caller, instances)
        return json_response({"predictions": outcome["predictions"]})

    @app.get("/ping", summary="Health (MLflow): 200 while the model answers, else 503", tags=["MLflow"],
             responses={200: {"model": Liveness}, **error_responses(503)})
    async def ping() -> Response:
        report = api.health()
        if report["status"] == "unhealthy":
            raise ModelUnavailableError(f"The model {name!r} cannot answer: {'; '.join(report['reasons'])}.")
        return JSONResponse({"status": report["status"]})

    @app.get("/version", summary="The served model's version (MLflow)", tags=["MLflow"], response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "A semantic version"}})
    async def version() -> Response:
        return PlainTextResponse(api.version)

    def openapi_document() -> dict[str, Any]:
        """FastAPI's document, without the 422 answers it adds to every route with parameters (none happen here)."""
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for unused in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi_document  # FastAPI's documented way to change the generated document
    return app


def default_monitor(labels: dict[str, str] | None = None) -> Monitor:
    """Part 3's ``ModelMonitor`` once it is written, else the given ``LatencyRecorder`` (the same contract).

    The fallback happens only when Part 3 raises ``NotImplementedError``
    (not written yet), and says so in one log line (a warning of
    ``deployment.server``). Any other error of the monitor's first
    ``get_metrics()`` or ``to_prometheus()`` is a bug in it: raised as a
    DeploymentError naming the error, so the server refuses to start
    rather than silently serving with another monitor.
    """
    from .monitoring import ModelMonitor

    try:
        monitor = ModelMonitor(labels=labels)
        monitor.get_metrics()
        monitor.to_prometheus()
    except NotImplementedError:
        logger.warning(json.dumps({"event": "monitor", "monitor": "LatencyRecorder",
                                   "reason": "Part 3's ModelMonitor is not written yet"}))
        return LatencyRecorder(labels=labels)
    except Exception as error:
        raise DeploymentError(f"Part 3's ModelMonitor failed its first check ({type(error).__name__}: {error}); "
                              "fix it, or the server cannot report its metrics.") from error
    return monitor


def build_app(
    model_path: str | os.PathLike,
    *,
    name: str | None = None,
    api_keys: list[str] | None = None,
    rate_limit_rps: float | None = None,
    burst: int | None = None,
    micro_batching: bool = True,
    max_wait_ms: float = 0.0,
    signing_key: bytes | str | None = None,
    limits: ServerLimits | None = None,
) -> FastAPI:
    """The app serving a saved model file, as ``python -m deployment serve`` runs it.

    The model's version is the one saved in the file; ``name`` defaults to
    the file's stem. With ``signing_key``, a file that is not signed with it
    (unsigned, or changed and re-signed with another key) is refused with
    Part 1's ModelFormatError before anything is served. The monitor
    (``default_monitor``) carries the labels ``model`` and ``version``.
    Last, the objects made so far are frozen (``freeze_startup_objects``),
    which keeps garbage collection from pausing the server for long.
    """
    path = Path(model_path)
    serialized = load_serialized(path, signing_key=signing_key)  # read and checked once
    model = build_model(serialized, str(path))
    name = name or path.stem
    config = APIConfig(version=serialized.version, api_keys=frozenset(api_keys) if api_keys else None,
                       rate_limit_rps=rate_limit_rps, burst=burst)
    monitor = default_monitor(labels={"model": name, "version": serialized.version})
    api = InferenceAPI(model, config, monitor=monitor)
    app = create_app(api, monitor=monitor, name=name, micro_batching=micro_batching, max_wait_ms=max_wait_ms,
                     limits=limits)
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Keep what starting made (modules, the model, the app) out of every later garbage collection.

    Python's cycle collector runs a full collection over every object it
    tracks; after importing FastAPI, scikit-learn and pandas that is about
    160,000 objects, 50 to 150 ms on these machines, during which no request
    is answered. Under load, the objects of the requests in flight outlive
    the young collections, which then start a full one every second or so:
    those pauses were the server's p99 latency. The startup objects live as
    long as the server, so ``gc.freeze()`` (the documented means, see the
    ``gc`` module) moves them where no collection looks; a full collection
    then walks a few thousand objects in a few milliseconds. Collecting first
    frees what starting left behind, instead of freezing it.
    """
    gc.collect()
    gc.freeze()


SERVE_OPTIONS_VARIABLE = "DEPLOYMENT_SERVE_OPTIONS"
"""Where ``serve --workers N`` hands each worker process its options (JSON)."""


def app_from_environment() -> FastAPI:
    """``build_app`` with the options ``python -m deployment serve --workers N`` put in the environment.

    The worker's request log is written to the end: its listener is stopped
    (writing what is still queued) when the worker process exits.
    """
    options = json.loads(os.environ[SERVE_OPTIONS_VARIABLE])
    atexit.register(log_requests(options.pop("log_level", "info")).stop)
    key_file = options.pop("signing_key_file", None)
    limits = ServerLimits(**options.pop("limits", {}))
    signing_key = Path(key_file).read_bytes().strip() if key_file else None
    return build_app(options.pop("model_path"), signing_key=signing_key, limits=limits, **options)


class BackgroundServer:
    """Run an ASGI app with uvicorn in a background thread, on a free loopback port; stop it cleanly.

    For notebooks and tests. The server keeps the app's ``ServerLimits``
    (``app.state.limits``, when ``create_app`` made it). ``start()`` waits (at
    most ``startup_timeout_s``) until the server accepts connections;
    ``stop()`` asks it to finish the requests in flight and waits for the
    thread to end.

    >>> with BackgroundServer(create_app(api)) as server:
    ...     httpx.get(server.url + "/health").json()["status"]
    'healthy'
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout_s: float = 60.0, log_level: str = "warning") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # port 0: the system picks a free one
        self.host, self.port = self._socket.getsockname()[:2]
        limits = getattr(getattr(app, "state", None), "limits", None)
        config = uvicorn_config(app, limits, host=self.host, port=self.port, log_level=log_level,
                                timeout_graceful_shutdown=10)
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
