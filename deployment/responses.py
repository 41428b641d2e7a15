"""Errors and answers over HTTP (given): one JSON error body, and the status each error deserves.

Every error the server sends, on every route, is one JSON object::

    {"error": "The API key is not valid.", "type": "AuthenticationError"}

``error`` is one sentence a person can act on (KServe's clients read this
string); ``type`` is the error's class, for programs. The body never holds
a traceback, a file path or a key: an unexpected failure (a bug) is
answered ``{"error": "The server failed to answer; ...", "type":
"InternalServerError"}`` and its traceback goes to the server's log only.

>>> error_response(RateLimitError("Client 'alice' is over its limit.", retry_after_s=1.2)).headers["Retry-After"]
'2'
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .errors import (
    AuthenticationError,
    BatchTooLargeError,
    DeploymentError,
    ModelNotFoundError,
    ModelUnavailableError,
    RateLimitError,
    ValidationError,
)

__all__ = [
    "UnsupportedMediaTypeError", "RequestTimeoutError", "NotImplementedHereError",
    "error_status", "error_response", "json_response", "add_error_handlers",
]

logger = logging.getLogger("deployment.server")


class UnsupportedMediaTypeError(ValidationError):
    """A body whose ``Content-Type`` the route does not read (HTTP 415)."""


class RequestTimeoutError(DeploymentError):
    """A body that did not arrive within the server's body timeout (HTTP 408)."""


class NotImplementedHereError(DeploymentError):
    """A route of a protocol that this server does not implement, such as KServe's ``:explain`` (HTTP 501)."""


STATUS_OF_ERROR: list[tuple[type[BaseException], int]] = [  # the first matching class decides: subclasses first
    (BatchTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (ValidationError, 400),
    (AuthenticationError, 401),
    (ModelNotFoundError, 404),
    (RequestTimeoutError, 408),
    (RateLimitError, 429),
    (NotImplementedHereError, 501),
    (NotImplementedError, 501),  # a part of the package not written yet
    (ModelUnavailableError, 503),
]

INTERNAL_ERROR = "The server failed to answer; the error is in its log."


def error_status(error: BaseException) -> int:
    """The HTTP status for ``error``: 400, 401, 404, 408, 413, 415, 429, 501 or 503; 500 for anything else."""
    return next((status for kind, status in STATUS_OF_ERROR if isinstance(error, kind)), 500)


def error_response(error: BaseException, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The response for ``error``: its status and ``{"error": message, "type": class name}``.

    A ``RateLimitError`` adds ``Retry-After`` (whole seconds, rounded up, at
    least 1); an ``AuthenticationError`` adds ``WWW-Authenticate: Bearer``.
    An error that is not the package's (status 500) is answered with a
    fixed sentence: its message might hold internals.
    """
    status = error_status(error)
    if status == 500:
        body = {"error": INTERNAL_ERROR, "type": "InternalServerError"}
    else:
        body = {"error": str(error), "type": type(error).__name__}
    headers = dict(headers or {})
    if isinstance(error, RateLimitError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, headers=headers)


def json_response(document: Any, status_code: int = 200) -> Response:
    """``document`` as a JSON response; NaN or infinity in it is a bug, refused by ``json.dumps``."""
    return Response(json.dumps(document, allow_nan=False), status_code=status_code, media_type="application/json")


_HTTP_ERROR_TYPES = {404: "NotFound", 405: "MethodNotAllowed"}


def add_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer with the JSON error body (FastAPI's exception handlers).

    - the package's errors (``DeploymentError``) and ``NotImplementedError``: ``error_response``;
    - an unknown route (404) or a wrong method (405, with ``Allow``): a sentence naming the
      method and the path;
    - a client that left while sending its body (``ClientDisconnect``): nothing to answer (the
      request's own log line already says so), and no traceback;
    - anything else (a bug): answered 500 with a fixed sentence; Starlette then raises it
      again, so uvicorn writes its traceback to the server's log.
    """

    @app.exception_handler(DeploymentError)
    @app.exception_handler(NotImplementedError)
    async def package_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        if error.status_code == 404:
            message = f"Nothing answers {where}; GET /openapi.json lists the routes."
        elif error.status_code == 405:
            allowed = (error.headers or {}).get("Allow", "another method")
            message = f"{where} is not allowed; this path answers {allowed}."
        else:
            message = str(error.detail)
        kind = _HTTP_ERROR_TYPES.get(error.status_code, "HTTPError")
        return JSONResponse({"error": message, "type": kind}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, error: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody is there to read it

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(ValidationError(f"The request is not valid at {where or 'its root'}: "
                                              f"{first.get('msg', 'unknown problem')}."))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return error_response(error)
