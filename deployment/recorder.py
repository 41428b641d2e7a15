"""A minimal request recorder (given): latency percentiles, errors and a /metrics page.

``LatencyRecorder`` has the four methods the server and ``InferenceAPI`` call
on a monitor, so serving works before Part 3's ``ModelMonitor`` is written:

- ``log_prediction(features, prediction, latency_ms) -> int``: one answered request;
- ``log_error(latency_ms, error)``: one failed request (``error``: an exception or a short string);
- ``get_metrics() -> dict``: latency percentiles, counts, error rate, throughput;
- ``to_prometheus() -> str``: the same in Prometheus' text format (version 0.0.4).

It keeps only the latencies of the last ``window_size`` requests and counts,
nothing about the rows: drift detection is Part 3's job.

>>> recorder = LatencyRecorder(window_size=1000)
>>> recorder.log_prediction([[0.1, 0.2]], [1], latency_ms=2.5)
1
>>> recorder.get_metrics()["p50_latency_ms"]
2.5
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any, Callable

import numpy as np

from .errors import ValidationError

__all__ = ["LatencyRecorder"]


class LatencyRecorder:
    """Latencies of the last ``window_size`` requests, and counts of answers and errors since the start.

    ``clock`` returns seconds on a monotonic clock (injectable for tests);
    throughput is the number of requests in the window divided by the seconds
    from the window's first request to now.
    """

    def __init__(self, window_size: int = 10_000, *, clock: Callable[[], float] = time.monotonic,
                 labels: dict[str, str] | None = None) -> None:
        if type(window_size) is not int or window_size < 1:
            raise ValidationError(f"LatencyRecorder: window_size must be a positive integer, got {window_size!r}.")
        self._clock = clock
        self._labels = dict(labels or {})  # Prometheus labels for every sample, e.g. {"model": "cancer"}
        self._window: deque[tuple[float, float, bool]] = deque(maxlen=window_size)  # (time_s, latency_ms, ok)
        self._lock = threading.Lock()
        self.total_predictions = 0
        self.total_errors = 0
        self.errors_by_type: Counter[str] = Counter()

    def log_prediction(self, features: Any, prediction: Any, latency_ms: float) -> int:
        """Record one answered request; return its id (1, 2, 3, ...)."""
        with self._lock:
            self._window.append((self._clock(), float(latency_ms), True))
            self.total_predictions += 1
            return self.total_predictions

    def log_error(self, latency_ms: float, error: BaseException | str) -> None:
        """Record one failed request; ``error`` is counted by its type name (or the string itself)."""
        kind = error if isinstance(error, str) else type(error).__name__
        with self._lock:
            self._window.append((self._clock(), float(latency_ms), False))
            self.total_errors += 1
            self.errors_by_type[kind] += 1

    def get_metrics(self) -> dict[str, Any]:
        """Latency statistics (ms) and error rate over the window; totals since the start."""
        with self._lock:
            window = list(self._window)
            errors_by_type = dict(self.errors_by_type)
            totals = (self.total_predictions, self.total_errors)
        latencies = np.array([latency for _, latency, _ in window])
        if len(window):
            p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
            avg = float(latencies.mean())
            span_s = self._clock() - window[0][0]
            throughput = len(window) / span_s if span_s > 0 else 0.0
            error_rate = sum(not ok for _, _, ok in window) / len(window)
        else:
            avg = p50 = p95 = p99 = throughput = error_rate = 0.0
        return {
            "avg_latency_ms": avg, "p50_latency_ms": p50, "p95_latency_ms": p95, "p99_latency_ms": p99,
            "total_predictions": totals[0], "total_errors": totals[1], "errors_by_type": errors_by_type,
            "error_rate": error_rate, "throughput_rps": throughput, "window_requests": len(window),
        }

    def to_prometheus(self) -> str:
        """The metrics in Prometheus' text exposition format (version 0.0.4)."""
        m = self.get_metrics()
        lines = [
            "# HELP deployment_predictions_total Requests answered with a prediction.",
            "# TYPE deployment_predictions_total counter",
            f"deployment_predictions_total {m['total_predictions']}",
            "# HELP deployment_errors_total Requests that failed, by error type.",
            "# TYPE deployment_errors_total counter",
        ]
        for kind, count in sorted(m["errors_by_type"].items()):
            label = kind.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'deployment_errors_total{{type="{label}"}} {count}')
        lines += [
            "# HELP deployment_latency_ms Request latency over the recent window, in milliseconds.",
            "# TYPE deployment_latency_ms gauge",
        ]
        for quantile, key in (("0.5", "p50_latency_ms"), ("0.95", "p95_latency_ms"), ("0.99", "p99_latency_ms")):
            lines.append(f'deployment_latency_ms{{quantile="{quantile}"}} {m[key]:.6g}')
        lines += [
            "# HELP deployment_error_rate Fraction of the recent window's requests that failed.",
            "# TYPE deployment_error_rate gauge",
            f"deployment_error_rate {m['error_rate']:.6g}",
            "# HELP deployment_throughput_rps Requests a second over the recent window.",
            "# TYPE deployment_throughput_rps gauge",
            f"deployment_throughput_rps {m['throughput_rps']:.6g}",
        ]
        return "\n".join(lines) + "\n"
