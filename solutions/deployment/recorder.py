"""A minimal request recorder (given): latency percentiles, errors and a /metrics page.

``LatencyRecorder`` implements the ``metrics.Monitor`` protocol, so serving
works before Part 3's ``ModelMonitor`` is written, and ``GET /metrics``
shows the same metrics with either:

- ``log_prediction(features, prediction, latency_ms) -> int``: one answered request, ids from 0;
- ``log_error(latency_ms, error)``: one failed request (``error``: an exception or a short string);
- ``get_metrics() -> dict``: latency percentiles, counts, error rate, throughput (``metrics.WINDOW_METRICS``);
- ``to_prometheus() -> str``: all-time counters and a latency histogram, in Prometheus' text format.

It keeps only the time, latency and outcome of the last ``window_size``
requests, and counts: nothing about the rows, so no drift detection
(Part 3's job). The window is this process's own; with several workers
the Prometheus counters add up (see ``metrics``), the window does not.

>>> recorder = LatencyRecorder(window_size=1000)
>>> recorder.log_prediction([[0.1, 0.2]], [1], latency_ms=2.5)
0
>>> recorder.get_metrics()["p50_latency_ms"]
2.5
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from .errors import ValidationError
from .metrics import DEFAULT_LATENCY_BUCKETS_MS, PrometheusMetrics

__all__ = ["LatencyRecorder"]


class LatencyRecorder:
    """Latencies of the last ``window_size`` requests, and counts of answers and errors since the start.

    ``clock`` returns seconds on a monotonic clock (injectable for tests).
    ``labels`` (e.g. ``{"model": "cancer", "version": "1.0.0"}``) go on every
    Prometheus sample; ``latency_buckets_ms`` are the histogram's bucket
    bounds. The statistics follow ``metrics.Monitor.get_metrics``.
    """

    def __init__(self, window_size: int = 10_000, *, clock: Callable[[], float] = time.monotonic,
                 labels: dict[str, str] | None = None,
                 latency_buckets_ms: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS_MS) -> None:
        if type(window_size) is not int or window_size < 1:
            raise ValidationError(f"LatencyRecorder: window_size must be a positive integer, got {window_size!r}.")
        self._clock = clock
        self._lock = threading.Lock()
        self.prometheus = PrometheusMetrics(labels, latency_buckets_ms, lock=self._lock)
        self._window: deque[tuple[float, float, bool]] = deque(maxlen=window_size)  # (time_s, latency_ms, ok)
        self.total_predictions = 0
        self.total_errors = 0

    def log_prediction(self, features: Any, prediction: Any, latency_ms: float) -> int:
        """Record one answered request (one row, or a 2-D batch of rows); return its id (0, 1, 2, ...)."""
        rows = len(features) if np.ndim(features) == 2 else 1
        with self._lock:
            self._window.append((self._clock(), float(latency_ms), True))
            request_id = self.total_predictions
            self.total_predictions += 1
            self.prometheus.count_prediction(latency_ms, rows)
        return request_id

    def log_error(self, latency_ms: float, error: BaseException | str) -> None:
        """Record one failed request; ``error`` is counted by its type name (or the string itself)."""
        kind = error if isinstance(error, str) else type(error).__name__
        with self._lock:
            self._window.append((self._clock(), float(latency_ms), False))
            self.total_errors += 1
            self.prometheus.count_error(kind)

    def get_metrics(self) -> dict[str, Any]:
        """Latency statistics (ms), error rate and throughput over the window; totals since the start."""
        with self._lock:
            window = list(self._window)
            totals = (self.total_predictions, self.total_errors)
            now = self._clock()
        latencies = np.array([latency for _, latency, ok in window if ok])
        failed = sum(not ok for _, _, ok in window)
        if len(latencies):
            p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
            avg, slowest = float(latencies.mean()), float(latencies.max())
        else:
            avg = p50 = p95 = p99 = slowest = 0.0
        span_s = now - window[0][0] if window else 0.0  # from the oldest request in the window to now
        return {
            "avg_latency_ms": avg, "p50_latency_ms": p50, "p95_latency_ms": p95, "p99_latency_ms": p99,
            "max_latency_ms": slowest, "window_requests": len(window), "window_errors": failed,
            "error_rate": failed / len(window) if window else 0.0,
            "throughput_rps": (len(window) - 1) / span_s if len(window) > 1 and span_s > 0 else 0.0,
            "total_predictions": totals[0], "total_errors": totals[1],
        }

    def to_prometheus(self) -> str:
        """All-time counters and the latency histogram in Prometheus' text format (see ``metrics``)."""
        return self.prometheus.render()
