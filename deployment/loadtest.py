"""A load generator (given): send many requests, some at once, and keep every latency.

``run_load_test(target, instances, ...)`` sends requests to either an
in-process ``InferenceAPI`` (anything with ``predict``; ``concurrency``
threads call it) or a URL (``concurrency`` connections from one asyncio
client). Stop after ``n_requests`` or after ``duration_s`` seconds.

Closed loop by default: each worker sends its next request as soon as the
last one is answered, so the load adapts to the server. With ``rate_rps``
the load is open: request ``i`` is due at ``start + i / rate_rps`` whatever
happened before, and its latency counts from when it was due, not from
when a free worker sent it. A slow server then shows up as long latencies
instead of hiding behind fewer requests ("coordinated omission").

One Python client saturates near a few hundred requests a second on a small
machine: to measure a server's top throughput use ``wrk`` or several client
processes (``benchmarks/bench_inference.py`` does).

>>> result = run_load_test(api, X_test, n_requests=200, concurrency=4, progress=False)  # or a URL
>>> result.n_requests, result.ok, result.errors
(200, 200, {})
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from .errors import ValidationError

__all__ = ["LoadTestResult", "run_load_test"]


@dataclass
class LoadTestResult:
    """What a load test saw: every latency (ms), the error counts by type, the wall time (s).

    ``latencies_ms`` holds one latency per request, answered or failed, in
    the order they finished. ``errors`` maps a type (``"HTTP 429"``,
    ``"ConnectError"``, ``"RateLimitError"``) to its count.
    """

    latencies_ms: np.ndarray
    ok: int
    errors: dict[str, int]
    duration_s: float
    concurrency: int
    rate_rps: float | None = None
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP only: status code -> count

    @property
    def n_requests(self) -> int:
        return int(len(self.latencies_ms))

    @property
    def throughput_rps(self) -> float:
        """Requests finished a second (answered or not)."""
        return self.n_requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.n_requests if self.n_requests else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.n_requests else float("nan")

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p95_ms(self) -> float:
        return self.percentile_ms(95)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    def summary(self) -> dict[str, Any]:
        """The figures in one dict (for a table: ``pandas.DataFrame([r.summary() for r in results])``)."""
        return {
            "concurrency": self.concurrency, "requests": self.n_requests, "ok": self.ok,
            "errors": sum(self.errors.values()), "throughput_rps": round(self.throughput_rps, 1),
            "p50_ms": round(self.p50_ms, 3), "p95_ms": round(self.p95_ms, 3), "p99_ms": round(self.p99_ms, 3),
        }

    def __str__(self) -> str:
        errors = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.errors.items())) or "none"
        return (f"{self.n_requests} requests in {self.duration_s:.2f} s at concurrency {self.concurrency}: "
                f"{self.throughput_rps:,.0f} req/s, latency p50 {self.p50_ms:.2f} ms, "
                f"p95 {self.p95_ms:.2f} ms, p99 {self.p99_ms:.2f} ms; errors: {errors}")


class _Plan:
    """Hands out request numbers (tickets) until the count or the time is up; paces them with a rate."""

    def __init__(self, n_requests: int | None, duration_s: float | None, rate_rps: float | None) -> None:
        self.n_requests, self.duration_s, self.rate_rps = n_requests, duration_s, rate_rps
        self._next = 0
        self._lock = threading.Lock()
        self.start_s = time.perf_counter()

    def take(self) -> tuple[int, float] | None:
        """The next ticket and the time it is due (perf_counter seconds), or None when done."""
        with self._lock:
            ticket = self._next
            if self.n_requests is not None and ticket >= self.n_requests:
                return None
            due_s = self.start_s + ticket / self.rate_rps if self.rate_rps else time.perf_counter()
            if self.duration_s is not None and due_s - self.start_s >= self.duration_s:
                return None
            self._next += 1
            return ticket, due_s


def run_load_test(
    target: Any,
    instances: Any,
    *,
    n_requests: int | None = None,
    duration_s: float | None = None,
    concurrency: int = 8,
    rate_rps: float | None = None,
    rows_per_request: int = 1,
    api_key: str | None = None,
    timeout_s: float = 10.0,
    progress: bool = True,
) -> LoadTestResult:
    """Load-test ``target`` (an ``InferenceAPI`` or a predict URL) with rows taken in turn from ``instances``.

    Give ``n_requests`` or ``duration_s`` (seconds) or both (whichever ends
    first). ``concurrency`` requests are in flight at once; ``rate_rps``
    (optional) paces them, open loop. Request ``i`` sends
    ``rows_per_request`` rows starting at row ``k * rows_per_request``,
    ``k = i % min(len(instances), 1000)`` (wrapping around the rows): at most
    1,000 different batches are made. ``progress`` shows a tqdm bar on stderr.
    """
    if n_requests is None and duration_s is None:
        raise ValidationError("run_load_test: give n_requests, duration_s, or both.")
    if concurrency < 1 or rows_per_request < 1:
        raise ValidationError("run_load_test: concurrency and rows_per_request must be at least 1.")
    if rate_rps is not None and rate_rps <= 0:
        raise ValidationError("run_load_test: rate_rps must be positive.")
    try:
        rows = np.asarray(instances, dtype=np.float64)
    except (TypeError, ValueError):
        rows = np.empty(0)
    if rows.ndim != 2 or len(rows) == 0:
        raise ValidationError("run_load_test: instances must be a non-empty 2-D array of rows.")
    batches = [np.take(rows, range(i, i + rows_per_request), axis=0, mode="wrap")
               for i in range(0, min(len(rows), 1000) * rows_per_request, rows_per_request)]
    bar = tqdm(total=n_requests, unit="req", file=sys.stderr, disable=not progress, mininterval=0.25,
               desc=f"load test, concurrency {concurrency}")
    plan = _Plan(n_requests, duration_s, rate_rps)
    try:
        if isinstance(target, str):
            bodies = [json.dumps({"instances": batch.tolist()}).encode() for batch in batches]
            coroutine = _run_http(target, bodies, plan, concurrency, api_key, timeout_s, bar)
            # A fresh thread owns the event loop, so this works inside Jupyter's running loop too.
            with ThreadPoolExecutor(1) as pool:
                latencies, statuses, errors = pool.submit(asyncio.run, coroutine).result()
        else:
            payloads = [batch.tolist() for batch in batches]
            latencies, errors = _run_in_process(target, payloads, plan, concurrency, api_key, bar)
            statuses = {}
    finally:
        bar.close()
    duration_s_measured = time.perf_counter() - plan.start_s
    ok = len(latencies) - sum(errors.values())
    return LoadTestResult(np.asarray(latencies, dtype=np.float64), ok, dict(errors), duration_s_measured,
                          concurrency, rate_rps, dict(statuses))


def _wait_until(due_s: float) -> float:
    delay_s = due_s - time.perf_counter()
    return delay_s if delay_s > 0 else 0.0


def _run_in_process(api: Any, payloads: list, plan: _Plan, concurrency: int, api_key: str | None,
                    bar: tqdm) -> tuple[list[float], Counter]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    keywords = {"api_key": api_key} if api_key is not None else {}

    def worker() -> None:
        while (ticket := plan.take()) is not None:
            number, due_s = ticket
            time.sleep(_wait_until(due_s))
            error = None
            try:
                api.predict(payloads[number % len(payloads)], **keywords)
            except Exception as exc:
                error = type(exc).__name__
            latency_ms = (time.perf_counter() - due_s) * 1000.0
            with lock:
                latencies.append(latency_ms)
                if error is not None:
                    errors[error] += 1
            bar.update(1)

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


async def _run_http(url: str, bodies: list[bytes], plan: _Plan, concurrency: int, api_key: str | None,
                    timeout_s: float, bar: tqdm) -> tuple[list[float], Counter, Counter]:
    import httpx

    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    headers = {"content-type": "application/json"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout_s, headers=headers) as client:

        async def worker() -> None:
            while (ticket := plan.take()) is not None:
                number, due_s = ticket
                await asyncio.sleep(_wait_until(due_s))
                try:
                    response = await client.post(url, content=bodies[number % len(bodies)])
                    statuses[response.status_code] += 1
                    if response.status_code >= 400:
                        errors[f"HTTP {response.status_code}"] += 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                latencies.append((time.perf_counter() - due_s) * 1000.0)
                bar.update(1)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, errors
