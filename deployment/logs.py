"""The server's request log (given): one JSON line per request, written by a thread, not the event loop.

``InferenceAPI`` logs one JSON line per request to the ``deployment``
loggers at INFO. Writing to a terminal or a file can block, and a blocked
event loop answers nobody, so ``log_requests`` follows the logging
cookbook's recipe for handlers that block: the loop only puts each record
on a queue (``logging.handlers.QueueHandler``), and a
``logging.handlers.QueueListener`` thread writes them. The lines hold the
message alone, since each message is a JSON object already.

>>> import io
>>> listener = log_requests("info", stream=io.StringIO())
>>> listener.stop()   # writes what is still queued, then ends the thread
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from typing import Any, TextIO

__all__ = ["log_requests"]


def log_requests(level: str = "info", stream: TextIO | Any = None) -> logging.handlers.QueueListener:
    """Write the package's log (``deployment.*``) at ``level`` and above to ``stream`` (default stderr).

    Replaces any handler an earlier call installed, so calling it twice does
    not write each line twice. Returns the started ``QueueListener``: call its
    ``stop()`` before the process ends to write what is still queued.
    """
    package_logger = logging.getLogger("deployment")
    for handler in list(package_logger.handlers):
        if isinstance(handler, logging.handlers.QueueHandler):
            package_logger.removeHandler(handler)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    listener = logging.handlers.QueueListener(records, writer)
    package_logger.addHandler(logging.handlers.QueueHandler(records))
    package_logger.setLevel(level.upper())
    package_logger.propagate = False
    listener.start()
    return listener
