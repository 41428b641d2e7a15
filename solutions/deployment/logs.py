"""The server's request log (given): one JSON line per request, written by a thread, not the event loop.

``InferenceAPI`` logs one JSON line per request to the ``deployment``
loggers at INFO. Writing to a terminal or a file can block, and a blocked
event loop answers nobody, so ``log_requests`` follows the logging
cookbook's recipe for handlers that block: the loop only puts each record
on a queue (``logging.handlers.QueueHandler``), and a
``logging.handlers.QueueListener`` thread writes them. The lines hold the
message alone, since each message is a JSON object already.

A listener blocked on an empty queue is woken by every record, and on a
server pinned to one core each wake-up takes the core from the event loop
(measured: the loop lost its core about three times a request, an eighth
of the throughput of a server answering one request at a time). So
``BatchingQueueListener`` waits ``pause_s`` (10 ms) whenever the queue is
empty, then writes every record that arrived meanwhile: a line appears at
most 10 ms late, and the loop is interrupted about a hundred times a
second instead of once a request.

>>> import io
>>> listener = log_requests("info", stream=io.StringIO())
>>> listener.stop()   # writes what is still queued, then ends the thread
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import time
from typing import Any, TextIO

__all__ = ["log_requests", "BatchingQueueListener"]


class BatchingQueueListener(logging.handlers.QueueListener):
    """A ``QueueListener`` that, finding its queue empty, waits ``pause_s`` seconds for records to pile up.

    It overrides ``dequeue``, the method the ``logging.handlers`` documentation
    names for changing how records are taken from the queue.
    """

    pause_s = 0.010

    def dequeue(self, block: bool) -> logging.LogRecord:
        if block and self.queue.empty():
            time.sleep(self.pause_s)  # records put meanwhile wake nobody
        return self.queue.get(block)


def log_requests(level: str = "info", stream: TextIO | Any = None) -> BatchingQueueListener:
    """Write the package's log (``deployment.*``) at ``level`` and above to ``stream`` (default stderr).

    Replaces any handler an earlier call installed, so calling it twice does
    not write each line twice. Returns the started ``BatchingQueueListener``:
    call its ``stop()`` before the process ends to write what is still queued.
    """
    package_logger = logging.getLogger("deployment")
    for handler in list(package_logger.handlers):
        if isinstance(handler, logging.handlers.QueueHandler):
            package_logger.removeHandler(handler)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = logging.StreamHandler(stream)
    writer.setFormatter(logging.Formatter("%(message)s"))
    listener = BatchingQueueListener(records, writer)
    package_logger.addHandler(logging.handlers.QueueHandler(records))
    package_logger.setLevel(level.upper())
    package_logger.propagate = False
    listener.start()
    return listener
