"""Part 5: rolling out a new version safely, as a canary or in the shadows.

**Canary.** The new version (the *candidate*) first serves a small share of
users (1%), then more (5%, 25%, 50%, 100%), while its health is compared
with the version it replaces (the *baseline*). Each version's health comes
from its own monitor (a ``ModelMonitor``, or anything whose
``get_metrics()`` gives ``error_rate`` and ``p95_latency_ms``). A breach of
a guardrail sends every user back to the baseline at once and records why:
a bad version hurts 1% of users for a minute, not everyone for a day.

**Shadow.** The candidate receives a copy of every live request; its
answers are logged and compared with production's, and never returned to
the user. It shows how often the new version would disagree, at no risk.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import numpy as np

from .errors import ValidationError
from .routing import TrafficRouter, predictions_of, routed_answer

__all__ = ["CanaryRollout", "ShadowDeployment", "DEFAULT_CANARY_STEPS", "CANARY_STATUSES"]

DEFAULT_CANARY_STEPS = (0.01, 0.05, 0.25, 0.5, 1.0)
"""The candidate's share of users at each step of a canary rollout."""

CANARY_STATUSES = ("pending", "running", "completed", "rolled back")
"""The states a canary rollout moves through."""


class CanaryRollout:
    """Move users to a candidate version in steps; roll back on a breached guardrail.

    ``baseline`` and ``candidate`` are anything with ``predict``; their
    monitors are anything with ``get_metrics()`` returning ``error_rate``
    (a fraction) and ``p95_latency_ms``, each fed by whatever serves that
    version (an ``InferenceAPI`` built with ``monitor=``).

    Guardrails, checked by ``check()`` in this order (the first breached
    one is the reason):

    * errors: the candidate's error rate may exceed the baseline's by at
      most ``max_error_rate_increase`` (0.01 = one percentage point); a
      breach's reason starts with "error rate", e.g. "error rate 12.00% is
      above the baseline's 0.00% + 1.00%";
    * latency: the candidate's p95 may be at most ``max_p95_latency_ratio``
      times the baseline's; a breach's reason starts with "p95 latency",
      e.g. "p95 latency 14.2 ms is above 1.2 x the baseline's 11.1 ms".

    A metric that is NaN (no data yet) breaches nothing.

    A step is held for at least ``min_step_duration_s`` seconds (on
    ``clock``) and until the candidate served ``min_requests`` requests in
    it; guardrails are judged only once each version served
    ``min_requests`` requests in all (too few requests say nothing).
    ``names`` are the two versions' names (baseline, candidate) in the
    router, the answers and ``served``.

    State, for people and dashboards to read:

    * ``router``: a ``TrafficRouter`` listing the candidate first (so a
      user moved to it stays on it as its share grows), created at
      weights ``{candidate: 0.0, baseline: 1.0}``;
    * ``status`` (one of ``CANARY_STATUSES``), ``step_index`` (into
      ``steps``; -1 before ``start``), ``reason`` (why it rolled back,
      else None);
    * ``served``: requests answered per version name, counted by
      ``predict``;
    * ``history``: one dict per change of share, with ``time_s`` (since
      ``start``), ``action`` ("start", "advance", "complete",
      "rollback"), ``step`` (``step_index`` then), ``candidate_share``,
      ``reason``, and ``"baseline"`` and ``"candidate"``: each version's
      metrics at that moment (see ``metrics()``).

    Raises ValidationError for steps that are not strictly increasing in
    (0, 1] and ending at 1.0, a monitor without ``get_metrics``, a
    threshold below its lowest value (ratio 1, the others 0, min_requests
    1), or two equal ``names``.

    >>> rollout = CanaryRollout(v1_api, v2_api, baseline_monitor=m1, candidate_monitor=m2)
    >>> rollout.start()                      # 1% of users on v2
    >>> rollout.predict(X[:1], user_id="alice")
    >>> rollout.check()                      # after some traffic: 'hold', 'advance', ...
    """

    def __init__(
        self,
        baseline: Any,
        candidate: Any,
        *,
        baseline_monitor: Any,
        candidate_monitor: Any,
        steps: tuple[float, ...] = DEFAULT_CANARY_STEPS,
        max_error_rate_increase: float = 0.01,
        max_p95_latency_ratio: float = 1.2,
        min_step_duration_s: float = 60.0,
        min_requests: int = 100,
        names: tuple[str, str] = ("baseline", "candidate"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.__init__(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def _weights(self, share: float) -> dict[str, float]:
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout._weights(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def _set_share(self, share: float, action: str, reason: str, metrics: dict[str, dict]) -> None:
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout._set_share(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def _breach(self, metrics: dict[str, dict]) -> str | None:
        """Why the candidate breaches a guardrail, or None."""
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout._breach(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    @property
    def candidate_share(self) -> float:
        """The candidate's current share of users, read from the router's weights.

        0.0 before ``start`` and after a rollback, ``steps[step_index]``
        while running, 1.0 once completed.

        >>> rollout.candidate_share      # after start() with the default steps
        0.01
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.candidate_share(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"baseline": {...}, "candidate": {...}}``: each version's error_rate and p95_latency_ms now.

        A metric that is missing or None is NaN (a monitor of another kind may
        say None when it has no traffic; Part 3's ``ModelMonitor`` says 0.0,
        which is why guardrails wait for ``min_requests`` before judging).

        >>> rollout.metrics()            # a ModelMonitor with no requests yet reads 0.0
        {'baseline': {'error_rate': 0.0, 'p95_latency_ms': 11.1}, 'candidate': {'error_rate': 0.0, 'p95_latency_ms': 0.0}}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.metrics(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def start(self) -> None:
        """Begin: send the first step's share of users to the candidate.

        Sets ``status`` to "running" and ``step_index`` to 0, starts the
        step's clock and request count, and records a "start" event in
        ``history``. Raises ValidationError if already started.
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.start(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def predict(self, instances: Any, user_id: str | int) -> dict[str, Any]:
        """Answer like ``TrafficRouter.predict``, and count the request in ``served``.

        Route ``user_id`` once, add 1 to ``served`` of that version, then
        ask it and return ``routed_answer(name, answer)``. (Calling
        ``router.route`` and then ``router.predict`` would hash twice, and
        could count one version while another answers if ``check()``
        changes the weights in between.) A version that raises still counts
        as having served the request (its monitor records the failure); the
        error reaches the caller.
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.predict(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def check(self) -> str:
        """Judge the candidate now and act; return the action taken.

        ``"rollback"``: a guardrail is breached; every user goes back to the
        baseline and ``reason`` says why. ``"advance"``: the step lasted
        long enough with enough requests and no breach; the next share
        applies. ``"complete"``: the last step (100%) passed too.
        ``"hold"``: not enough time or requests yet. After completion or a
        rollback, ``check()`` returns the status and changes nothing.

        In order: the guardrails, if both versions served ``min_requests``
        in all; then hold, unless the step has lasted ``min_step_duration_s``
        and the candidate served ``min_requests`` during it; then advance
        (or complete). Each action but "hold" appends to ``history``.
        Raises ValidationError before ``start()``.
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.check(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def run(self, send_traffic: Callable[["CanaryRollout"], None], *, max_checks: int = 10_000) -> str:
        """Start (if needed), then alternate ``send_traffic(self)`` and ``check()`` until done.

        ``send_traffic`` sends some requests through ``self.predict`` (and,
        in a simulation, advances the fake clock). Returns the final
        status: ``"completed"``, ``"rolled back"``, or ``"running"`` if
        ``max_checks`` ran out first.

        >>> def send_traffic(rollout):
        ...     for i in range(400):
        ...         rollout.predict(X[:1], user_id=f"user-{i}")
        ...     clock.advance(30)               # a fake clock: 30 s pass
        >>> rollout.run(send_traffic)
        'completed'
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.run(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )


class ShadowDeployment:
    """Serve ``primary`` to users; send ``shadow`` a copy of each request and compare.

    ``predict(instances)`` returns exactly the primary's answer. The shadow
    gets its own deep copy of the instances, made before the primary
    answers (so it cannot change the caller's data, and sees what the user
    sent), and a shadow that fails is counted, never felt by the user.
    Each request's comparison goes to ``log`` (a deque of the last
    ``log_size``): ``{"rows": primary's row count, "agreed": rows where
    the shadow agreed, "primary": list, "shadow": list or None, "error":
    None or "ExceptionType: message"}``. Predictions agree when equal, or
    within ``atol`` for numbers (use ``atol`` > 0 for regression). A
    shadow that raises, or answers with a different shape, is an error:
    0 rows agreed, counted in ``shadow_errors``. Counts since creation
    (not only the logged requests) give ``agreement_rate`` and ``summary``.

    Here the shadow runs after the primary in the same thread, which adds
    its latency to the request; a production system sends the copy
    asynchronously (a queue, a thread pool, or the proxy mirroring it).

    >>> shadow = ShadowDeployment(v1, v2)         # the notebook's models; an InferenceAPI works too
    >>> for start in range(0, len(X_test), 10):
    ...     _ = shadow.predict(X_test[start:start + 10])   # v1's answers
    >>> shadow.agreement_rate()                   # share of rows where v2 agreed
    0.8951...
    """

    def __init__(self, primary: Any, shadow: Any, *, atol: float = 0.0, log_size: int = 10_000) -> None:
        raise NotImplementedError(
            "Part 5 (A/B testing): write ShadowDeployment.__init__(). Read notebooks/05_ab_testing.ipynb, section '8. Shadow mode'. Check it with: make grade PART=5 SECTION=8"
        )

    def predict(self, instances: Any) -> Any:
        """The primary's answer, unchanged; the shadow's is only logged.

        Copy the instances, ask the primary, then ask the shadow (catching
        any exception), compare, update the counts and append to ``log``.

        >>> shadow.predict(X_test[18:21])   # the primary's answer, whatever the shadow said
        array([1, 0, 0])
        >>> shadow.log[-1]
        {'rows': 3, 'agreed': 2, 'primary': [1, 0, 0], 'shadow': [1, 0, 1], 'error': None}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write ShadowDeployment.predict(). Read notebooks/05_ab_testing.ipynb, section '8. Shadow mode'. Check it with: make grade PART=5 SECTION=8"
        )

    def agreement_rate(self) -> float:
        """Share of all primary rows (since creation) where the shadow agreed; NaN before any.

        Rows where the shadow failed count as disagreements.
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write ShadowDeployment.agreement_rate(). Read notebooks/05_ab_testing.ipynb, section '8. Shadow mode'. Check it with: make grade PART=5 SECTION=8"
        )

    def summary(self) -> dict[str, Any]:
        """``{"requests", "rows", "agreement_rate", "shadow_errors"}`` since creation.

        >>> shadow.summary()
        {'requests': 15, 'rows': 143, 'agreement_rate': 0.895..., 'shadow_errors': 0}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write ShadowDeployment.summary(). Read notebooks/05_ab_testing.ipynb, section '8. Shadow mode'. Check it with: make grade PART=5 SECTION=8"
        )
