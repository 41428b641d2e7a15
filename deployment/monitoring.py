"""Part 3: monitoring a model in production: latency, throughput, errors, accuracy, drift.

A deployed model fails quietly. The server stays up while requests get
slower, errors creep in, labels (when they finally arrive) show accuracy
falling, and the data drifts away from what the model was trained on.
``ModelMonitor`` watches all of it from inside the serving process:

* every request logs its latency, its input rows and its prediction, in a
  few microseconds, into fixed-size ring buffers: memory stays flat however
  long the server runs, and the statistics describe a sliding window (the
  last ``window_size`` requests, and optionally only the last ``window_s``
  seconds);
* running totals (requests, errors by type, a latency histogram) cover all
  time, for Prometheus, which computes rates from counters that only grow;
* ``get_metrics()`` summarises the window; ``to_prometheus()`` renders the
  metrics for a Prometheus server to scrape from ``GET /metrics``;
* ``detect_data_drift`` compares production rows to the training data
  (see ``deployment.drift``).

>>> clock = iter(range(100)).__next__  # a fake clock: 0 s, 1 s, 2 s, ...
>>> monitor = ModelMonitor(window_size=100, clock=clock)
>>> for latency_ms in (10.0, 20.0, 30.0):
...     _ = monitor.log_prediction([0.5, 1.5], 1, latency_ms)
>>> monitor.get_metrics()["p50_latency_ms"]
20.0
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any, Callable

import numpy as np
import psutil

from .drift import (
    DRIFT_METHODS,
    PSI_THRESHOLD,
    WASSERSTEIN_THRESHOLD,
    detect_data_drift,
    drift_over_time,
    ks_p_values,
    ks_statistics,
    psi_scores,
    wasserstein_scores,
)
from .errors import ValidationError

__all__ = [
    "ModelMonitor", "DEFAULT_LATENCY_BUCKETS_MS",
    # from deployment.drift, so `from deployment import drift_over_time` works
    "DRIFT_METHODS", "PSI_THRESHOLD", "WASSERSTEIN_THRESHOLD", "detect_data_drift", "drift_over_time",
    "ks_p_values", "ks_statistics", "psi_scores", "wasserstein_scores",
]

DEFAULT_LATENCY_BUCKETS_MS = (1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
"""Upper bounds of the latency histogram's buckets, in ms (Prometheus gets them in seconds)."""

TASKS = ("classification", "regression")

RESERVED_LABELS = ("le", "quantile", "error")
"""Label names ``to_prometheus`` writes itself, so the constructor's ``labels`` may not use them."""

_LABELLED = object()
"""Marks a label slot whose prediction has its label (or holds none): a prediction may itself be None."""


_FLOAT64 = np.dtype(np.float64)
"""The rows' dtype: a numpy row of it takes ``log_prediction``'s fast path (numpy keeps one such object)."""


def _is_number(value: Any) -> bool:
    """True for an int, float or numpy number that is not a bool."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _is_number(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
    )


def _check_latency(latency_ms: Any, where: str) -> None:
    """Raise ValidationError unless ``latency_ms`` is a finite number at least 0 (the hot path: two comparisons)."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _check_latency(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
    )


def _ring_slots(count: int, written: int, size: int) -> np.ndarray:
    """The slots of the last ``count`` of ``written`` items in a ring of ``size`` slots, oldest first."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _ring_slots(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
    )


class ModelMonitor:
    """Watch a deployed model: latency percentiles, throughput, errors, accuracy, resources, drift.

    One call to ``log_prediction`` logs one request (one predict call, of one
    row or a batch). Statistics describe a sliding *window*: the last
    ``window_size`` requests (successful or failed), and, when ``window_s``
    is set, only those of the last ``window_s`` seconds. Totals
    (``total_predictions``, errors by type, the Prometheus histogram) cover
    all time. The input rows are kept in a window of their own, the last
    ``feature_window`` rows (default ``window_size``), for drift checks.

    Memory is fixed when the monitor is built (the rows' buffer when the
    first row shows how many features there are): logging ten million
    requests uses no more than logging ten thousand.

    Args:
        window_size: how many requests the window holds (and how long, in
            predictions, a prediction waits for its label).
        window_s: if set, the window also drops requests older than this
            many seconds.
        clock: returns the time in seconds; inject a fake one in tests.
        feature_window: how many input rows (and labelled rows) to keep.
        task: ``"classification"`` (accuracy) or ``"regression"`` (mean
            absolute error); by default guessed from the first label:
            whole numbers, booleans or text mean classification.
        latency_buckets_ms: the Prometheus histogram's bucket bounds, in ms.
        labels: Prometheus labels added to every sample, e.g.
            ``{"model": "cancer", "version": "1.0.0"}``.

    >>> monitor = ModelMonitor(window_size=1000)
    >>> request_id = monitor.log_prediction([[0.1, 0.2], [0.3, 0.4]], [0, 1], latency_ms=3.2)
    >>> monitor.log_ground_truth(request_id, [0, 0])
    True
    >>> monitor.get_metrics()["accuracy"]
    0.5
    """

    def __init__(
        self,
        window_size: int = 10_000,
        window_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        feature_window: int | None = None,
        task: str | None = None,
        latency_buckets_ms: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS_MS,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Check the arguments and allocate every buffer the monitor will ever need (see the class docstring).

        Raises ValidationError, naming the argument, when ``window_size`` or
        ``feature_window`` is not an ``int`` of at least 1 (a float such as
        ``10.0`` or a bool is refused: "must be a whole number"), ``window_s``
        is not a positive finite number of seconds, ``task`` is not
        ``"classification"``, ``"regression"`` or None, or
        ``latency_buckets_ms`` is not a non-empty, strictly increasing
        sequence of positive numbers, or a key of ``labels`` is not a
        Prometheus label name (letters, digits and ``_``, not starting with a
        digit) or is one the monitor uses itself (``le``, ``quantile``,
        ``error``).

        A design that meets the cost and memory promises: numpy arrays of
        ``window_size`` slots for the latencies, the times (s) and whether each
        request succeeded, written as a ring (request number *i* writes slot
        *i* % ``window_size``); a list of ``window_size`` slots for the
        predictions waiting for their labels (by prediction id %
        ``window_size``); arrays of ``feature_window`` slots for the input
        rows (rows x features, allocated when the first row shows the width)
        and for the labelled rows' outcomes; all-time counters (requests,
        predictions, errors by type, late labels) and the Prometheus
        histogram's bucket counts and latency sum. Take a first
        ``psutil.Process().cpu_percent(None)`` reading here: psutil's first
        reading is always 0.

        >>> ModelMonitor(window_size=0)
        Traceback (most recent call last):
        ...
        deployment.errors.ValidationError: ModelMonitor: window_size 0 must be a whole number, at least 1.
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.__init__(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def log_prediction(self, features: Any, prediction: Any, latency_ms: float) -> int:
        """Log one successful request; return its prediction id (0, 1, 2, ... in order).

        ``features`` is the request's input: one row (1-D, one value per
        feature) or a batch (2-D, rows x features); every row is kept for
        drift checks. ``prediction`` is what the model answered: a scalar,
        or one value per row. It is kept (by reference, not copied) until
        ``log_ground_truth`` joins its label or ``window_size`` newer
        predictions push it out. ``latency_ms`` is the request's latency in
        milliseconds, a number at least 0.

        Costs a few microseconds for a numpy row of the right width (more
        for a list, which numpy must convert) and allocates nothing that
        lasts. Raises ValidationError, and logs nothing, for a latency that is
        not a number, negative, NaN or infinite (a message naming
        ``latency_ms``), or features that are not numbers, not 1-D or 2-D,
        rows with no values, or a width that differs from the first
        request's (a message naming ``features``).

        >>> monitor = ModelMonitor()
        >>> monitor.log_prediction(np.array([1.0, 2.0]), 0.7, latency_ms=4.5)
        0
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.log_prediction(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def log_error(self, latency_ms: float, error: BaseException | str) -> None:
        """Log one failed request: how long it took (ms) and what went wrong.

        ``error`` is the exception raised (or its class), or a short name
        for it; errors are counted by type name (``type(error).__name__``
        for an exception, the string itself for a string), for Prometheus.
        A failed request takes a slot in the window, so it counts in
        ``error_rate`` and ``throughput_rps`` but not in the latency
        percentiles, which describe the successful predictions. Raises
        ValidationError, and logs nothing, for a latency that is not a finite
        number at least 0, as ``log_prediction`` does.

        >>> monitor = ModelMonitor()
        >>> monitor.log_error(0.8, ValueError("bad row"))
        >>> monitor.get_metrics()["error_rate"]
        1.0
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.log_error(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def _log_request(self, latency_ms: float, now: float, ok: bool) -> None:
        """Write one request into its ring slot and count it, folding a full ring into the histogram."""
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor._log_request(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def _store_rows(self, features: Any, now: float) -> None:
        """Copy one row or a batch of rows into the rows' ring buffer."""
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor._store_rows(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def _update_histogram(self) -> None:
        """Add the successful requests logged since the last update to the all-time histogram."""
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor._update_histogram(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def _window(self, now: float) -> np.ndarray:
        """The slots of the requests in the window at time ``now`` (s), oldest first."""
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor._window(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def log_ground_truth(self, prediction_id: int, actual: Any) -> bool:
        """Join the true answer to a logged prediction, once it is known (often hours later).

        ``actual`` has the shape of that request's prediction (a scalar, or
        one value per row). Each labelled row then counts in ``accuracy``
        (classification: the share of rows predicted right) or ``mae``
        (regression: mean absolute error) over the last ``feature_window``
        labelled rows. Returns True when joined, and False when the
        prediction is too old (``window_size`` newer predictions pushed it out;
        counted in ``late_labels``): a label that arrives too late is
        common in production, not a bug.

        Raises ValidationError for an id that is not an ``int`` ("is not a
        whole number": ``"0"`` and ``0.0`` are refused too), an id never
        returned by ``log_prediction`` ("no prediction has id 7"), a
        prediction that already has its label ("already"), or an ``actual``
        whose shape differs from the prediction's ("shape"). The first label fixes ``task`` when the constructor
        did not: classification when both prediction and label are whole
        numbers, booleans or text (numpy dtype kinds ``b i u U S O``),
        regression otherwise.

        >>> monitor = ModelMonitor()
        >>> request_id = monitor.log_prediction([1.0, 2.0], 3.0, latency_ms=1.0)
        >>> monitor.log_ground_truth(request_id, 2.5)
        True
        >>> monitor.get_metrics()["mae"]
        0.5
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.log_ground_truth(). Read notebooks/03_monitoring_and_drift.ipynb, section '3. Labels that arrive late'. Check it with: make grade PART=3 SECTION=3"
        )

    def get_metrics(self) -> dict[str, Any]:
        """The window's statistics, as a dict; an empty monitor gives zeros and None, never an error.

        Keys:

        * ``avg_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``,
          ``p99_latency_ms``, ``max_latency_ms``: over the successful
          requests in the window; percentiles are ``numpy.percentile``'s
          default (linear interpolation), so they can be checked exactly.
        * ``window_requests``, ``window_errors``: requests and failed
          requests in the window; ``error_rate`` = failed / all of them.
        * ``throughput_rps``: requests per second in the window: the
          requests after the oldest one, divided by the seconds since it
          (so it falls when traffic stops).
        * ``total_predictions``, ``total_errors``: all time.
        * ``accuracy`` (classification) or ``mae`` (regression): over the
          last ``feature_window`` labelled rows; None until a label
          arrives, and None for the other task. ``labelled_rows``: how many
          rows that is; ``late_labels``: labels that came too late (all time).
        * ``cpu_percent`` (this process, since the previous call; 100 is one
          core) and ``memory_mb`` (its resident memory, MiB).

        >>> ModelMonitor().get_metrics()["p95_latency_ms"]
        0.0
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.get_metrics(). Read notebooks/03_monitoring_and_drift.ipynb, section '1. Logging requests: latency, throughput, errors'. Check it with: make grade PART=3 SECTION=1"
        )

    def recent_latencies_ms(self) -> np.ndarray:
        """The latencies (ms) of the successful requests in the window, oldest first, for a histogram.

        The same values ``get_metrics`` takes its percentiles from.

        >>> monitor = ModelMonitor(window_size=2)
        >>> for latency_ms in (5.0, 7.0, 9.0):
        ...     _ = monitor.log_prediction([1.0], 0, latency_ms)
        >>> monitor.recent_latencies_ms()
        array([7., 9.])
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.recent_latencies_ms(). Read notebooks/03_monitoring_and_drift.ipynb, section '2. Percentiles over time'. Check it with: make grade PART=3 SECTION=2"
        )

    def recent_features(self) -> np.ndarray:
        """The input rows in the window, oldest first (rows x features), for a drift check.

        At most ``feature_window`` rows, and, when ``window_s`` is set, only
        those logged in the last ``window_s`` seconds. Before any row was
        logged, an empty array of shape (0, 0).

        >>> monitor = ModelMonitor()
        >>> _ = monitor.log_prediction([[1.0, 2.0], [3.0, 4.0]], [0, 1], latency_ms=2.0)
        >>> monitor.recent_features()
        array([[1., 2.],
               [3., 4.]])
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.recent_features(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
        )

    def detect_data_drift(
        self, new_data: Any, reference_data: Any, *, method: str = "ks", alpha: float = 0.05
    ) -> dict[str, Any]:
        """Compare ``new_data`` (e.g. ``recent_features()``) with ``reference_data``: see ``deployment.drift.detect_data_drift``."""
        return detect_data_drift(new_data, reference_data, method=method, alpha=alpha)

    def to_prometheus(self) -> str:
        """The metrics in the Prometheus text exposition format (version 0.0.4), for ``GET /metrics``.

        Prometheus scrapes this text every few seconds and computes rates and
        percentiles itself, so it needs totals that only ever grow:

        * ``model_prediction_latency_seconds``: a histogram of the latency of
          every successful prediction since the start (seconds, Prometheus's
          base unit): ``_bucket{le="0.005"}`` counts those that took at most
          5 ms, up to ``le="+Inf"`` (all of them), then ``_sum`` and ``_count``;
        * ``model_predictions_total`` and ``model_prediction_errors_total``
          (one sample per error type, label ``error``): counters;
        * gauges for the window: ``model_latency_window_milliseconds`` with a
          ``quantile`` label (0.5, 0.95, 0.99), ``model_error_rate``,
          ``model_throughput_rps``, ``model_accuracy`` or ``model_mae`` once
          labels arrived, ``model_monitor_cpu_percent`` and
          ``model_monitor_memory_bytes``.

        The constructor's ``labels`` are added to every sample (before
        ``le``, ``error`` or ``quantile``), with backslashes, double quotes
        and newlines escaped. Each metric has ``# HELP`` and ``# TYPE`` lines;
        whole numbers are written without a decimal point; the text ends
        with a newline. ``prometheus_client.parser.text_string_to_metric_families``
        must read it back.

        >>> monitor = ModelMonitor(latency_buckets_ms=(5.0, 10.0), labels={"model": "cancer"})
        >>> for latency_ms in (3.0, 7.5):
        ...     _ = monitor.log_prediction([1.0], 0, latency_ms)
        >>> monitor.log_error(2.0, "Timeout")
        >>> print(monitor.to_prometheus())  # doctest: +ELLIPSIS
        # HELP model_prediction_latency_seconds Latency of successful predictions, in seconds.
        # TYPE model_prediction_latency_seconds histogram
        model_prediction_latency_seconds_bucket{model="cancer",le="0.005"} 1
        model_prediction_latency_seconds_bucket{model="cancer",le="0.01"} 2
        model_prediction_latency_seconds_bucket{model="cancer",le="+Inf"} 2
        model_prediction_latency_seconds_sum{model="cancer"} 0.0105
        model_prediction_latency_seconds_count{model="cancer"} 2
        # HELP model_predictions_total Successful predictions (requests) since the start.
        # TYPE model_predictions_total counter
        model_predictions_total{model="cancer"} 2
        # HELP model_prediction_errors_total Failed requests since the start, by error type.
        # TYPE model_prediction_errors_total counter
        model_prediction_errors_total{model="cancer",error="Timeout"} 1
        # HELP model_latency_window_milliseconds Latency percentiles over the window, in ms.
        # TYPE model_latency_window_milliseconds gauge
        model_latency_window_milliseconds{model="cancer",quantile="0.5"} 5.25
        ...
        model_error_rate{model="cancer"} 0.3333333333333333
        ...
        """
        raise NotImplementedError(
            "Part 3 (monitoring): write ModelMonitor.to_prometheus(). Read notebooks/03_monitoring_and_drift.ipynb, section '4. Metrics for Prometheus'. Check it with: make grade PART=3 SECTION=4"
        )


def _number(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a point, floats in full."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _number(). Read notebooks/03_monitoring_and_drift.ipynb, section '4. Metrics for Prometheus'. Check it with: make grade PART=3 SECTION=4"
    )


def _label_text(labels: dict[str, str]) -> str:
    """``{a="1",b="x"}`` with backslashes, quotes and newlines escaped; empty without labels."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _label_text(). Read notebooks/03_monitoring_and_drift.ipynb, section '4. Metrics for Prometheus'. Check it with: make grade PART=3 SECTION=4"
    )
