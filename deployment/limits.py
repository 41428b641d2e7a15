"""What a hostile client cannot do to the server (given): sizes, timeouts, connections, key guessing.

A server behind nothing but a firewall meets clients that send a 64 MB
header, one byte a second, thousands of idle connections, endless key
guesses. ``ServerLimits`` holds the limits, with defaults a production
engineer would pick; ``python -m deployment serve`` sets each one from an
option (``--help`` lists them). Each is enforced with the documented
option of the library that owns it where one exists:

- ``X-Forwarded-For`` is believed only from ``forwarded_allow_ips``
  (uvicorn's ``proxy_headers`` and ``forwarded_allow_ips``; uvicorn's own
  default trusts loopback, which would let any local client pick its address);
- idle keep-alive connections close after ``keep_alive_s`` (uvicorn's
  ``timeout_keep_alive``);
- the body is read after the key and rate checks, at most
  ``max_body_bytes`` and within ``body_timeout_s`` (``payloads.read_body``);
- ``FailedKeyThrottle`` answers 429 to an address after
  ``failed_keys_per_minute`` wrong keys.

uvicorn has no option for the rest, so ``GuardedHttpToolsProtocol`` adds
them to uvicorn's httptools protocol: a request head (request line and
headers) larger than ``max_header_bytes`` or with more than
``max_headers`` headers is refused with 431 as soon as it passes the
limit; a head not complete within ``header_timeout_s`` closes the
connection (a client sending one byte a second); beyond
``max_connections`` open connections a new one is answered 503 and closed
at once, so idle connections cannot use up the process's file
descriptors (uvicorn's ``limit_concurrency`` answers 503 only once a
request head arrives, while idle connections keep theirs); and a client
that half-closes its side after sending a request still gets the answer.

>>> from deployment.server import create_app
>>> limits = ServerLimits(max_connections=200, forwarded_allow_ips="10.0.0.1")
>>> config = uvicorn_config(create_app(api, limits=limits), limits, port=8000)
>>> config.forwarded_allow_ips, config.timeout_keep_alive
('10.0.0.1', 5)
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import RateLimitError, ValidationError

__all__ = ["ServerLimits", "FailedKeyThrottle", "GuardedHttpToolsProtocol", "uvicorn_options", "uvicorn_config"]

MAX_TRACKED_ADDRESSES = 100_000
"""Addresses whose failed keys are remembered at most; the least recently seen is forgotten first."""


@dataclass(frozen=True)
class ServerLimits:
    """The server's limits on what one client may send or hold (the defaults suit a public endpoint).

    - ``max_header_bytes``: the request line and headers together (431 past it).
    - ``max_headers``: headers in one request (431 past it).
    - ``header_timeout_s``: seconds a connection may take to send a request head.
    - ``body_timeout_s``: seconds a request may take to send its body (408 past it).
    - ``max_body_bytes``: the largest body; ``None``: room for ``max_batch_size``
      rows of the served model (``body_limit``).
    - ``max_connections``: open connections at once; one more is answered 503 and closed.
    - ``keep_alive_s``: seconds an idle keep-alive connection stays open.
    - ``forwarded_allow_ips``: addresses of proxies whose ``X-Forwarded-For`` is
      believed (comma-separated, ``"*"`` for any); ``None``: believe no one.
    - ``failed_keys_per_minute``: wrong API keys an address may send a minute
      before it is answered 429.
    """

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_body_bytes: int | None = None
    max_connections: int = 1000
    keep_alive_s: int = 5
    forwarded_allow_ips: str | None = None
    failed_keys_per_minute: int = 10

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_headers", "max_connections", "keep_alive_s", "failed_keys_per_minute"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValidationError(f"ServerLimits.{name} must be a positive integer, got {value!r}.")
        if self.max_body_bytes is not None and (type(self.max_body_bytes) is not int or self.max_body_bytes < 1):
            raise ValidationError(f"ServerLimits.max_body_bytes must be a positive integer, got {self.max_body_bytes!r}.")
        for name in ("header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValidationError(f"ServerLimits.{name} must be a positive number of seconds, got {value!r}.")

    def body_limit(self, max_rows: int, n_features: int) -> int:
        """``max_body_bytes``, or enough for ``max_rows`` rows of ``n_features`` numbers (32 bytes each) plus 64 KiB."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return 64 * 1024 + 32 * max_rows * n_features


class FailedKeyThrottle:
    """At most ``limit`` wrong API keys per client address in any ``window_s`` seconds; then 429.

    ``check(address)`` raises RateLimitError while the address has used up
    its failures (``retry_after_s``: until its oldest failure leaves the
    window); ``failed(address)`` records one wrong key. Guessing a key then
    takes at least ``window_s / limit`` seconds a guess from one address.

    >>> throttle = FailedKeyThrottle(limit=2, window_s=60.0, clock=lambda: 0.0)
    >>> throttle.failed("10.0.0.9"); throttle.failed("10.0.0.9")
    >>> throttle.check("10.0.0.9")
    Traceback (most recent call last):
    ...
    deployment.errors.RateLimitError: Too many wrong API keys from 10.0.0.9; retry in 60 s.
    """

    def __init__(self, limit: int = 10, window_s: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # address -> times, LRU order

    def _recent(self, address: str, now_s: float) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now_s - self.window_s:
            times.popleft()
        return times

    def check(self, address: str) -> None:
        """Raise RateLimitError if ``address`` sent ``limit`` wrong keys in the last ``window_s`` seconds."""
        now_s = self._clock()
        times = self._recent(address, now_s)
        if len(times) >= self.limit:
            wait_s = times[0] + self.window_s - now_s
            raise RateLimitError(f"Too many wrong API keys from {address}; retry in {wait_s:.0f} s.", wait_s)

    def failed(self, address: str) -> None:
        """Record one wrong (or missing) key from ``address``."""
        now_s = self._clock()
        times = self._recent(address, now_s)
        times.append(now_s)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)
        while len(times) > self.limit:
            times.popleft()


def _raw_response(status: int, reason: str, message: str, kind: str) -> bytes:
    """A complete HTTP/1.1 response with the JSON error body, closing the connection."""
    body = json.dumps({"error": message, "type": kind}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on request heads, connections, and an answer after a half-close.

    uvicorn makes one per connection; ``uvicorn_config`` passes ``limits``.
    """

    def __init__(self, *args: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.received_bytes = 0  # bytes received since the current request head began
        self.head_bytes = 0  # the size of the head parsed so far
        self.reading_head = False  # waiting for (the rest of) a request head
        self.head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.refuse(503, "Service Unavailable", "The server has too many open connections; retry later.",
                        "TooManyConnections")
            return
        self.wait_for_head()

    def wait_for_head(self) -> None:
        """Start waiting for a request head: count its bytes, and close the connection if it takes too long."""
        self.received_bytes = self.head_bytes = 0
        self.reading_head = True
        self.head_deadline = self.loop.call_later(self.limits.header_timeout_s, self.head_too_slow)

    def head_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.logger.info("Closed a connection whose request head took over %g s.", self.limits.header_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.reading_head and not self.transport.is_closing():  # a head still arriving: count what came
            self.received_bytes += len(data)
            if self.received_bytes > self.limits.max_header_bytes:
                self.refuse(431, "Request Header Fields Too Large",
                            f"The request line and headers are over {self.limits.max_header_bytes:,} bytes.",
                            "HeaderLimitError")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes = max(self.head_bytes, len(self.url)) + len(name) + len(value) + 4  # "name: value\r\n"
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        if self.head_deadline is not None:
            self.head_deadline.cancel()
        if self.head_bytes > self.limits.max_header_bytes:  # a whole head that arrived in one piece
            self.refuse(431, "Request Header Fields Too Large",
                        f"The request line and headers are over {self.limits.max_header_bytes:,} bytes.",
                        "HeaderLimitError")
            return
        if len(self.headers) > self.limits.max_headers:
            self.refuse(431, "Request Header Fields Too Large",
                        f"The request has {len(self.headers)} headers; the limit is {self.limits.max_headers}.",
                        "HeaderLimitError")
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.wait_for_head()  # the next request on this keep-alive connection

    def eof_received(self) -> bool | None:
        # The client half-closed: it will send nothing more, but may still read. With a whole request
        # in flight, keep the connection open to write its answer, then close it. A request cut off
        # mid-body can never be answered: close, and the app sees the client leave.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            cycle.keep_alive = False
            return True
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
        super().connection_lost(exc)

    def refuse(self, status: int, reason: str, message: str, kind: str) -> None:
        """Answer with the JSON error body and close the connection, without reading more."""
        self.reading_head = False
        if self.head_deadline is not None:
            self.head_deadline.cancel()
        self.transport.write(_raw_response(status, reason, message, kind))
        self.transport.close()


def uvicorn_options(limits: ServerLimits) -> dict[str, Any]:
    """The settings of ``uvicorn.Config`` (or ``uvicorn.run``) that enforce ``limits``."""
    return {
        "http": functools.partial(GuardedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": limits.keep_alive_s,
        "proxy_headers": limits.forwarded_allow_ips is not None,
        "forwarded_allow_ips": limits.forwarded_allow_ips,
        "access_log": False,  # the package logs one JSON line per request itself
    }


def uvicorn_config(app: Any, limits: ServerLimits | None = None, **options: Any) -> uvicorn.Config:
    """A ``uvicorn.Config`` serving ``app`` with ``limits``; ``options`` (``host``, ``port``...) go to it as they are."""
    return uvicorn.Config(app, **(uvicorn_options(limits or ServerLimits()) | options))
