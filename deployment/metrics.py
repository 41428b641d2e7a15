"""What every monitor promises the server (given): the ``Monitor`` protocol and the metrics Prometheus scrapes.

The server talks to its monitor through four methods, whichever monitor it
is: the given stand-in ``recorder.LatencyRecorder`` until Part 3 is written,
then Part 3's ``ModelMonitor``. Both follow this one contract, with the same
meaning, so ``GET /metrics`` keeps its shape when Part 3 lands:

* a request that was answered is logged with ``log_prediction`` and gets an
  id, counting from 0; a request that failed is logged with ``log_error``;
* both kinds take a place in the recent *window*, so they count in
  ``error_rate`` and ``throughput_rps``; only answered requests count in the
  latency percentiles;
* ``get_metrics()`` returns at least the keys in ``WINDOW_METRICS``, with the
  meanings given in ``Monitor.get_metrics``;
* ``to_prometheus()`` renders the same metric families, with the same names,
  labels and base units, through one renderer: ``PrometheusMetrics``.

Prometheus computes rates and percentiles itself, from counters that only
grow and from a histogram, so ``/metrics`` holds all-time totals, never a
window statistic:

=========================================  =========  ==================================================
metric                                     type       what it counts, since the process started
=========================================  =========  ==================================================
``model_requests_total``                   counter    requests logged, answered or failed
``model_request_errors_total``             counter    failed requests, label ``error_type``
``model_predicted_rows_total``             counter    rows predicted (a request of 32 rows adds 32)
``model_prediction_latency_seconds``       histogram  latency of answered requests, in seconds
``model_labelled_rows_total``              counter    rows whose true label arrived, label ``outcome``:
                                                      ``correct`` or ``wrong`` (classification),
                                                      ``scored`` (regression)
``model_absolute_error_total``             counter    regression: sum of abs(prediction - label)
``process_*``                              various    CPU seconds, resident memory (bytes), open files
=========================================  =========  ==================================================

A monitor's ``labels`` (``{"model": "cancer", "version": "1.0.0"}``) are on
every ``model_*`` sample. In PromQL, the error rate over five minutes is
``sum(rate(model_request_errors_total[5m])) / sum(rate(model_requests_total[5m]))``,
the accuracy ``sum(rate(model_labelled_rows_total{outcome="correct"}[1h])) /
sum(rate(model_labelled_rows_total[1h]))``, and the 99th percentile latency
``histogram_quantile(0.99, sum by (le) (rate(model_prediction_latency_seconds_bucket[5m])))``.

``python -m deployment serve --workers N`` runs N processes, each with its
own monitor. Prometheus must still see one total, so the workers keep their
all-time counters in a folder they share (``prometheus_client``'s
multiprocess mode, the mechanism Prometheus users run with gunicorn):
``shared_metrics_directory`` makes that folder and names it in the
``PROMETHEUS_MULTIPROC_DIR`` environment variable before the workers start.
Whichever worker answers a scrape reports the sum over all of them. The
window statistics of ``get_metrics()`` stay per worker.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import shutil
import tempfile
import threading
from collections import Counter as Tally
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest, values
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

from .errors import ValidationError

__all__ = [
    "Monitor", "PrometheusMetrics", "DEFAULT_LATENCY_BUCKETS_MS", "WINDOW_METRICS",
    "MULTIPROCESS_DIR_VARIABLE", "shared_metrics_directory",
]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable ``prometheus_client`` reads to share metrics between processes."""

DEFAULT_LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0,
                              1000.0, 2500.0, 5000.0, 10000.0)
"""Upper bounds of the latency histogram's buckets, in ms (Prometheus gets them in seconds).

From 0.1 ms, because a small model answers in well under a millisecond: with
a lowest bucket of 1 ms every answer would land in it, and
``histogram_quantile`` could only say "somewhere below 1 ms".
"""

WINDOW_METRICS = (
    "avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "max_latency_ms",
    "window_requests", "window_errors", "error_rate", "throughput_rps", "total_predictions", "total_errors",
)
"""The keys every monitor's ``get_metrics()`` returns (see ``Monitor.get_metrics``)."""

LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OWN_LABELS = ("le", "error_type", "outcome")
"""Label names the metrics use themselves, so a monitor's ``labels`` may not."""

OUTCOMES = ("correct", "wrong", "scored")
"""The values of the ``outcome`` label of ``model_labelled_rows_total``."""

# name (prometheus_client adds _total to counters), help text, extra label
_REQUESTS = ("model_requests", "Requests logged, answered or failed.", None)
_ERRORS = ("model_request_errors", "Failed requests, by error type.", "error_type")
_ROWS = ("model_predicted_rows", "Rows predicted (a request may hold several).", None)
_LATENCY = ("model_prediction_latency_seconds", "Latency of answered requests, in seconds.", None)
_LABELLED = ("model_labelled_rows", "Predicted rows whose true label arrived, by outcome.", "outcome")
_ABSOLUTE_ERROR = ("model_absolute_error", "Sum of abs(prediction - label) over labelled rows (regression).", None)


@runtime_checkable
class Monitor(Protocol):
    """The four methods the server and ``InferenceAPI`` call on a monitor (see the module docstring)."""

    def log_prediction(self, features: Any, prediction: Any, latency_ms: float) -> int:
        """Record one answered request (its rows, its predictions, its latency in ms); return its id (0, 1, ...)."""
        ...

    def log_error(self, latency_ms: float, error: BaseException | str) -> None:
        """Record one failed request: its latency (ms) and its error (an exception, or a short name)."""
        ...

    def get_metrics(self) -> dict[str, Any]:
        """Statistics of the recent window, and totals since the start; zeros before the first request.

        * ``avg_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``,
          ``p99_latency_ms``, ``max_latency_ms``: over the answered requests
          in the window (``numpy.percentile``'s default interpolation);
        * ``window_requests``, ``window_errors``: requests, and failed ones,
          in the window; ``error_rate`` = failed / all of them;
        * ``throughput_rps``: the requests after the window's oldest one,
          divided by the seconds from it to now (0.0 with fewer than 2);
        * ``total_predictions``, ``total_errors``: answered and failed
          requests since the start.
        """
        ...

    def to_prometheus(self) -> str:
        """The metrics in Prometheus' text exposition format, for ``GET /metrics``."""
        ...


def _check_labels(labels: dict[str, Any] | None) -> dict[str, str]:
    """The labels as text, or ValidationError naming a label name Prometheus would refuse."""
    checked = {}
    for name, value in (labels or {}).items():
        if not (isinstance(name, str) and LABEL_NAME.fullmatch(name)) or name.startswith("__") or name in OWN_LABELS:
            raise ValidationError(
                f"Monitor labels: label name {name!r} must be letters, digits and _ (not first a digit, "
                f"not starting with __) and not one the metrics use: {', '.join(OWN_LABELS)}."
            )
        checked[name] = str(value)
    return checked


def _check_buckets(latency_buckets_ms: Any) -> list[float]:
    """The bucket bounds in seconds, or ValidationError unless they are increasing positive finite numbers."""
    try:
        bounds = [float(bound) for bound in latency_buckets_ms]
    except (TypeError, ValueError):
        bounds = []
    increasing = all(a < b for a, b in zip(bounds, bounds[1:]))
    if not bounds or not increasing or not 0 < bounds[0] <= bounds[-1] < math.inf:
        raise ValidationError(
            f"Monitor: latency_buckets_ms {latency_buckets_ms!r} must be increasing positive numbers of ms."
        )
    return [bound / 1000 for bound in bounds]


class PrometheusMetrics:
    """A monitor's all-time counters and latency histogram, rendered for Prometheus by ``prometheus_client``.

    Both monitors keep one, as ``monitor.prometheus``, and tell it about
    every request; ``render()`` is their ``to_prometheus()``:

    * ``count_prediction(latency_ms, rows)``: an answered request of ``rows`` rows;
    * ``count_error(error_type)``: a failed request (``error_type``: a short name);
    * ``count_classified(correct, wrong)``: labels arrived for classified rows;
    * ``count_scored(rows, absolute_error)``: labels arrived for regression rows,
      ``absolute_error`` the sum of abs(prediction - label) over them.

    ``labels`` are added to every ``model_*`` sample; a label name that
    Prometheus refuses, or one the metrics use (``le``, ``error_type``,
    ``outcome``), is a ValidationError ("label name 'model-name' must be
    ..."), and so are bucket bounds that are not increasing positive numbers.

    ``lock`` guards the counts: hold it while you call a ``count_*`` method
    (a monitor passes its own lock, which it holds anyway while it logs a
    request, so a request takes one lock, not two); ``render()`` takes it to
    read them, so never call it while you hold the lock. By default a new
    ``threading.Lock``, as ``metrics.lock``.

    In one process, the totals are plain numbers kept here: counting costs
    well under a microsecond, and ``render()`` hands them to
    ``prometheus_client`` as a custom collector, with its process collector
    (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ...).
    When ``PROMETHEUS_MULTIPROC_DIR`` was set before the process started
    (``serve --workers N``; see ``shared_metrics_directory``), every count is
    also written at once through ``prometheus_client``'s own counters and
    histogram to this process's file in that folder, and ``render()`` sums
    the files of every worker: any worker can answer a scrape with the
    totals of all. Process metrics are then left out, as ``prometheus_client``
    cannot add up processes.

    >>> metrics = PrometheusMetrics({"model": "cancer"}, latency_buckets_ms=(1.0, 10.0))
    >>> with metrics.lock:
    ...     metrics.count_prediction(0.4, rows=1)
    ...     metrics.count_error("ValidationError")
    >>> print(metrics.render())  # doctest: +ELLIPSIS
    # HELP model_requests_total Requests logged, answered or failed.
    # TYPE model_requests_total counter
    model_requests_total{model="cancer"} 2.0
    # HELP model_request_errors_total Failed requests, by error type.
    # TYPE model_request_errors_total counter
    model_request_errors_total{error_type="ValidationError",model="cancer"} 1.0
    ...
    model_prediction_latency_seconds_bucket{le="0.001",model="cancer"} 1.0
    ...
    """

    def __init__(self, labels: dict[str, Any] | None = None,
                 latency_buckets_ms: Any = DEFAULT_LATENCY_BUCKETS_MS, *, lock: Any = None) -> None:
        self.labels = _check_labels(labels)
        self.bounds_s = _check_buckets(latency_buckets_ms)
        self.lock = threading.Lock() if lock is None else lock
        self.requests = 0
        self.predicted_rows = 0
        self.errors: Tally[str] = Tally()
        self.labelled_rows: Tally[str] = Tally()
        self.absolute_error = 0.0
        self.bucket_counts = [0] * (len(self.bounds_s) + 1)  # not cumulative; the last is +Inf
        self.latency_sum_s = 0.0
        self.shared = os.environ.get(MULTIPROCESS_DIR_VARIABLE) is not None
        if self.shared:
            self._shared = _SharedMetrics(self.labels, self.bounds_s)

    def count_prediction(self, latency_ms: float, rows: int = 1) -> None:
        """Count one answered request of ``rows`` rows that took ``latency_ms`` ms."""
        latency_s = latency_ms / 1000
        self.requests += 1
        self.predicted_rows += rows
        self.bucket_counts[bisect.bisect_left(self.bounds_s, latency_s)] += 1  # the first bound >= it: le is inclusive
        self.latency_sum_s += latency_s
        if self.shared:
            self._shared.count_prediction(latency_s, rows)

    def count_error(self, error_type: str) -> None:
        """Count one failed request under its error type (a short name such as ``"ValidationError"``)."""
        self.requests += 1
        self.errors[error_type] += 1
        if self.shared:
            self._shared.count_error(error_type)

    def count_classified(self, correct: int, wrong: int) -> None:
        """Count classified rows whose labels arrived: ``correct`` predicted right, ``wrong`` not."""
        self.labelled_rows["correct"] += correct
        self.labelled_rows["wrong"] += wrong
        if self.shared:
            self._shared.count_labelled(correct=correct, wrong=wrong)

    def count_scored(self, rows: int, absolute_error: float) -> None:
        """Count regression rows whose labels arrived, and add the sum of their absolute errors."""
        self.labelled_rows["scored"] += rows
        self.absolute_error += absolute_error
        if self.shared:
            self._shared.count_labelled(scored=rows, absolute_error=absolute_error)

    def collect(self) -> Iterator[Any]:
        """The metric families, for ``prometheus_client`` (its custom-collector protocol)."""
        names, values = list(self.labels), list(self.labels.values())

        def family(kind: Any, spec: tuple[str, str, str | None]) -> Any:
            name, text, extra = spec
            return kind(name, text, labels=names + ([extra] if extra else []))

        with self.lock:
            requests, rows, errors = self.requests, self.predicted_rows, sorted(self.errors.items())
            labelled, absolute_error = sorted(self.labelled_rows.items()), self.absolute_error
            counts, latency_sum_s = list(self.bucket_counts), self.latency_sum_s
        metric = family(CounterMetricFamily, _REQUESTS)
        metric.add_metric(values, requests)
        yield metric
        metric = family(CounterMetricFamily, _ERRORS)
        for error_type, count in errors:
            metric.add_metric(values + [error_type], count)
        yield metric
        metric = family(CounterMetricFamily, _ROWS)
        metric.add_metric(values, rows)
        yield metric
        metric = family(HistogramMetricFamily, _LATENCY)
        cumulative, buckets = 0, []
        for bound, count in zip(self.bounds_s + [math.inf], counts):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))  # le as prometheus_client writes it
        metric.add_metric(values, buckets, latency_sum_s)
        yield metric
        metric = family(CounterMetricFamily, _LABELLED)
        for outcome, count in labelled:
            metric.add_metric(values + [outcome], count)
        yield metric
        metric = family(CounterMetricFamily, _ABSOLUTE_ERROR)
        metric.add_metric(values, absolute_error)
        yield metric

    def render(self) -> str:
        """The metrics in Prometheus' text format (version 0.0.4): this process's, or every worker's summed."""
        registry = CollectorRegistry()
        if self.shared:
            MultiProcessCollector(registry)  # reads every worker's file in PROMETHEUS_MULTIPROC_DIR
        else:
            registry.register(self)
            ProcessCollector(registry=registry)
        return generate_latest(registry).decode()


class _SharedMetrics:
    """The same totals as ``prometheus_client`` metrics, which multiprocess mode keeps in a file per worker.

    Used only while ``PROMETHEUS_MULTIPROC_DIR`` is set; prometheus_client
    reads that variable when it is first imported, so it must be set before
    the worker process starts.
    """

    def __init__(self, labels: dict[str, str], bounds_s: list[float]) -> None:
        if values.ValueClass is values.MutexValue:  # prometheus_client was imported before the variable was set
            raise RuntimeError(
                f"{MULTIPROCESS_DIR_VARIABLE} was set after prometheus_client was imported, so this process keeps its "
                "metrics in memory, where other workers cannot read them: set it before the process starts."
            )
        names = list(labels)

        def metric(kind: Any, spec: tuple[str, str, str | None], **options: Any) -> Any:
            name, text, extra = spec
            return kind(name, text, names + ([extra] if extra else []), registry=None, **options)

        self._labels = labels
        self._requests = metric(Counter, _REQUESTS)
        self._errors = metric(Counter, _ERRORS)
        self._rows = metric(Counter, _ROWS)
        self._latency = metric(Histogram, _LATENCY, buckets=bounds_s)
        self._labelled = metric(Counter, _LABELLED)
        self._absolute_error = metric(Counter, _ABSOLUTE_ERROR)
        for each in (self._requests, self._rows, self._latency, self._absolute_error):
            self._child(each)  # create the samples now, so a fresh worker reports zeros

    def _child(self, metric: Any, *extra: str) -> Any:
        return metric.labels(*self._labels.values(), *extra) if self._labels or extra else metric

    def count_prediction(self, latency_s: float, rows: int) -> None:
        self._child(self._requests).inc()
        self._child(self._rows).inc(rows)
        self._child(self._latency).observe(latency_s)

    def count_error(self, error_type: str) -> None:
        self._child(self._requests).inc()
        self._child(self._errors, error_type).inc()

    def count_labelled(self, *, correct: int = 0, wrong: int = 0, scored: int = 0, absolute_error: float = 0.0) -> None:
        for outcome, rows in (("correct", correct), ("wrong", wrong), ("scored", scored)):
            if rows:
                self._child(self._labelled, outcome).inc(rows)
        if absolute_error:
            self._child(self._absolute_error).inc(absolute_error)


@contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """A fresh folder for the workers' shared metrics, named in ``PROMETHEUS_MULTIPROC_DIR`` meanwhile.

    Set before the worker processes start (they inherit the environment),
    removed with its files when the block ends, and the variable restored.

    >>> with shared_metrics_directory() as folder:
    ...     os.environ[MULTIPROCESS_DIR_VARIABLE] == folder
    True
    """
    previous = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    folder = tempfile.mkdtemp(prefix="deployment-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = folder
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_DIR_VARIABLE] = previous
        shutil.rmtree(folder, ignore_errors=True)
