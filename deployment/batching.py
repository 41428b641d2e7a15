"""Micro-batching (given): concurrent one-row requests answered by one model call.

A model call has a fixed cost (checks, Python calls, numpy's set-up) on
top of its cost per row. When many clients each send one row at the same
moment, answering them one call each pays the fixed cost again and again;
gathering the rows that arrived together into one call pays it once.

``MicroBatcher`` runs on the server's event loop. A request's handler
``await``s ``submit(admitted)``; the batcher answers every waiting request
with one ``InferenceAPI.infer`` call when ``max_batch_rows`` are waiting,
or ``max_wait_ms`` after the first one arrived. The default wait, 0 ms,
adds no delay: the batch is answered at the event loop's next turn, with
whatever arrived while the loop was busy (nothing, when the server is
idle). A longer wait makes bigger batches for a slow model, at the price
of latency.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import ValidationError
from .inference import AdmittedRequest, InferenceAPI

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Gathers admitted one-row requests for up to ``max_wait_ms`` and answers them with one model call.

    ``batches`` and ``requests`` count what it did: their ratio is the mean
    batch size.
    """

    def __init__(self, api: InferenceAPI, *, max_batch_rows: int = 64, max_wait_ms: float = 0.0) -> None:
        if max_batch_rows < 1 or max_wait_ms < 0:
            raise ValidationError(f"MicroBatcher: max_batch_rows must be >= 1 and max_wait_ms >= 0, "
                                  f"got {max_batch_rows!r} and {max_wait_ms!r}.")
        self.api = api
        self.max_batch_rows = max_batch_rows
        self.max_wait_s = max_wait_ms / 1000.0
        self.batches = 0
        self.requests = 0
        self._waiting: list[tuple[AdmittedRequest, asyncio.Future]] = []
        self._timer: asyncio.Handle | None = None

    async def submit(self, request: AdmittedRequest) -> Any:
        """The outcome of ``request`` once its batch is answered: the response dict, or its error raised."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((request, future))
        if len(self._waiting) >= self.max_batch_rows:
            self.flush()
        elif self._timer is None:
            if self.max_wait_s > 0:
                self._timer = loop.call_later(self.max_wait_s, self.flush)
            else:
                self._timer = loop.call_soon(self.flush)
        return await future

    def flush(self) -> None:
        """Answer every waiting request now, with one ``api.infer`` call."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if not batch:
            return
        try:
            outcomes = self.api.infer([request for request, _ in batch])
        except Exception as error:  # a bug: every request of the batch gets it
            outcomes = [error] * len(batch)
        self.batches += 1
        self.requests += len(batch)
        for (_, future), outcome in zip(batch, outcomes):
            if future.done():  # its client went away and the handler was cancelled
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
