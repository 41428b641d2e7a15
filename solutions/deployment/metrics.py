"""What every monitor promises the server (given): the ``Monitor`` protocol, and metrics shared by workers.

The server talks to its monitor through four methods, whichever monitor it
is: the given stand-in ``recorder.LatencyRecorder`` until Part 3 is written,
then Part 3's ``ModelMonitor``. Both follow this one contract, with the same
meaning, so ``GET /metrics`` keeps its shape when Part 3 lands.

``python -m deployment serve --workers N`` runs N processes, each with its
own monitor. Prometheus must still see one total, so the workers keep their
all-time counters in a folder they share (``prometheus_client``'s
multiprocess mode, the mechanism Prometheus users run with gunicorn):
``shared_metrics_directory`` makes that folder and names it in the
``PROMETHEUS_MULTIPROC_DIR`` environment variable before the workers start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

__all__ = ["Monitor", "MULTIPROCESS_DIR_VARIABLE", "shared_metrics_directory"]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable ``prometheus_client`` reads to share metrics between processes."""


@runtime_checkable
class Monitor(Protocol):
    """The four methods the server and ``InferenceAPI`` call on a monitor."""

    def log_prediction(self, features: Any, prediction: Any, latency_ms: float) -> int:
        """Record one answered request (its rows, its predictions, its latency in ms); return its id."""
        ...

    def log_error(self, latency_ms: float, error: BaseException | str) -> None:
        """Record one failed request: its latency (ms) and its error (an exception, or a short name)."""
        ...

    def get_metrics(self) -> dict[str, Any]:
        """The recent window's statistics (latency percentiles in ms, error rate, throughput) and totals."""
        ...

    def to_prometheus(self) -> str:
        """The metrics in Prometheus' text exposition format, for ``GET /metrics``."""
        ...


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
