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
    (a fraction) and ``p95_latency_ms`` (Part 3's ``ModelMonitor``, or the
    given ``recorder.LatencyRecorder``), each fed by whatever serves that
    version (an ``InferenceAPI`` built with ``monitor=``).

    Each step holds the candidate at ``steps[step_index]`` of the users
    for at least ``min_step_duration_s`` seconds (on ``clock``) and until
    the candidate served ``min_requests`` requests in it; guardrails are
    judged once each version served ``min_requests`` requests in all
    (fewer say nothing). ``max_error_rate_increase`` (0.01 = one
    percentage point) and ``max_p95_latency_ratio`` (1.2 = 20% slower) are
    the guardrails (see ``guardrail_breach``). ``names`` are the two
    versions' names (baseline, candidate) in the router, the answers and
    ``served``.

    Given: the bookkeeping. State for people and dashboards to read:

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
      metrics at that moment (see ``metrics``).

    Raises ValidationError for steps that are not strictly increasing in
    (0, 1] and ending at 1.0, a monitor without ``get_metrics``, a
    threshold below its lowest value (ratio 1, the others 0, min_requests
    1), or two equal ``names``.

    A rollout of two versions that both answer in 10 ms, on a fake clock:

    >>> from deployment.recorder import LatencyRecorder
    >>> class Served:                          # a model behind a server that takes 10 ms
    ...     def __init__(self, model):
    ...         self.model, self.monitor = model, LatencyRecorder()
    ...     def predict(self, X):
    ...         answer = self.model.predict(X)
    ...         self.monitor.log_prediction(X, answer, latency_ms=10.0)
    ...         return answer
    >>> now = [0.0]
    >>> old, new = Served(v1), Served(v2)
    >>> rollout = CanaryRollout(old, new, baseline_monitor=old.monitor, candidate_monitor=new.monitor,
    ...                         names=("v1.1.0", "v2.0.0"), clock=lambda: now[0])
    >>> def send_traffic(rollout):             # 2,000 requests, then 30 s pass
    ...     for i in range(2_000):
    ...         rollout.predict(X_test[:1], user_id=i)
    ...     now[0] += 30
    >>> rollout.run(send_traffic)
    'completed'
    >>> [(event["action"], event["candidate_share"]) for event in rollout.history]
    [('start', 0.01), ('advance', 0.05), ('advance', 0.25), ('advance', 0.5), ('advance', 1.0), ('complete', 1.0)]
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
        steps = tuple(float(s) for s in steps)
        if not steps or any(not 0 < s <= 1 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValidationError(f"Canary steps must increase strictly within (0, 1], got {steps}.")
        if steps[-1] != 1.0:
            raise ValidationError(f"The last canary step must be 1.0 (every user), got {steps[-1]}.")
        for name, monitor in (("baseline_monitor", baseline_monitor), ("candidate_monitor", candidate_monitor)):
            if not callable(getattr(monitor, "get_metrics", None)):
                raise ValidationError(f"CanaryRollout {name} has no get_metrics method.")
        for name, value, lowest in (("max_error_rate_increase", max_error_rate_increase, 0),
                                    ("max_p95_latency_ratio", max_p95_latency_ratio, 1),
                                    ("min_step_duration_s", min_step_duration_s, 0),
                                    ("min_requests", min_requests, 1)):
            if not value >= lowest:  # NaN too
                raise ValidationError(f"CanaryRollout {name} must be >= {lowest}, got {value}.")
        if len(names) != 2 or names[0] == names[1]:
            raise ValidationError(f"CanaryRollout names must be two different names (baseline, candidate), got {names!r}.")
        self.baseline_name, self.candidate_name = names
        self.router = TrafficRouter({self.candidate_name: candidate, self.baseline_name: baseline},
                                    {self.candidate_name: 0.0, self.baseline_name: 1.0})
        self.monitors = {self.baseline_name: baseline_monitor, self.candidate_name: candidate_monitor}
        self.steps = steps
        self.max_error_rate_increase = max_error_rate_increase
        self.max_p95_latency_ratio = max_p95_latency_ratio
        self.min_step_duration_s = min_step_duration_s
        self.min_requests = min_requests
        self.clock = clock
        self.served = {self.baseline_name: 0, self.candidate_name: 0}
        self.status = "pending"
        self.step_index = -1
        self.reason: str | None = None
        self.history: list[dict[str, Any]] = []
        self._started_at = self._step_started_at = 0.0
        self._step_served_from = 0

    @property
    def candidate_share(self) -> float:
        """The candidate's current share of users: 0.0 before ``start`` and after a rollback."""
        return self.router.weights[self.candidate_name]

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"baseline": {...}, "candidate": {...}}``: each version's ``error_rate`` and ``p95_latency_ms`` now.

        A metric that is missing or None is NaN (a monitor may say None
        when it has no traffic yet).
        """
        out = {}
        for role, name in (("baseline", self.baseline_name), ("candidate", self.candidate_name)):
            raw = self.monitors[name].get_metrics()
            out[role] = {key: float(raw[key]) if raw.get(key) is not None else math.nan
                         for key in ("error_rate", "p95_latency_ms")}
        return out

    def step_progress(self) -> tuple[float, int]:
        """``(seconds, requests)``: how long the current step has lasted, and how many requests the candidate served in it."""
        return self.clock() - self._step_started_at, self.served[self.candidate_name] - self._step_served_from

    def _set_share(self, share: float, action: str, metrics: dict[str, dict], reason: str | None = None) -> None:
        """Give the candidate ``share`` of the users now, restart the step's time and count, and record it in ``history``."""
        self.router.set_weights({self.candidate_name: share, self.baseline_name: 1.0 - share})
        self._step_started_at, self._step_served_from = self.clock(), self.served[self.candidate_name]
        self.history.append({
            "time_s": self._step_started_at - self._started_at, "action": action, "step": self.step_index,
            "candidate_share": share, "reason": reason or f"{share:.0%} of users to {self.candidate_name}",
            **metrics,
        })

    def start(self) -> None:
        """Begin: send the first step's share of users to the candidate.

        Sets ``status`` to "running" and ``step_index`` to 0, and records a
        "start" event in ``history``. Raises ValidationError if already
        started.
        """
        if self.status != "pending":
            raise ValidationError(f"This canary rollout has already started (status {self.status!r}).")
        self.status, self.step_index, self._started_at = "running", 0, self.clock()
        self._set_share(self.steps[0], "start", self.metrics())

    def predict(self, instances: Any, user_id: str | int) -> dict[str, Any]:
        """Answer like ``TrafficRouter.predict``, and count the request in ``served``.

        Routes once (``check`` may change the weights meanwhile, so the
        version counted is the one that answers). A version that raises
        still counts as having served the request (its monitor records
        the failure); the error reaches the caller.
        """
        name = self.router.route(user_id)
        self.served[name] += 1
        return routed_answer(name, self.router.variants[name].predict(instances))

    def guardrail_breach(self, metrics: dict[str, dict[str, float]]) -> str | None:
        """Why the candidate breaches a guardrail, given ``metrics()``; None when it breaches none.

        In this order (the first breach is the reason):

        * errors: the candidate's error rate exceeds the baseline's plus
          ``max_error_rate_increase``; the reason reads
          ``f"error rate {candidate:.2%} is above the baseline's {baseline:.2%} + {increase:.2%}"``,
          e.g. "error rate 12.00% is above the baseline's 0.00% + 1.00%";
        * latency: the candidate's p95 exceeds ``max_p95_latency_ratio``
          times the baseline's; the reason reads
          ``f"p95 latency {candidate:.1f} ms is above {ratio:g} x the baseline's {baseline:.1f} ms"``,
          e.g. "p95 latency 14.2 ms is above 1.2 x the baseline's 11.1 ms".

        Exactly at a limit is no breach, and a metric that is NaN (no
        data) breaches nothing.

        >>> from deployment.recorder import LatencyRecorder
        >>> rollout = CanaryRollout(v1, v2, baseline_monitor=LatencyRecorder(), candidate_monitor=LatencyRecorder())
        >>> rollout.guardrail_breach({"baseline": {"error_rate": 0.0, "p95_latency_ms": 11.1},
        ...                           "candidate": {"error_rate": 0.005, "p95_latency_ms": 14.2}})
        "p95 latency 14.2 ms is above 1.2 x the baseline's 11.1 ms"
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.guardrail_breach(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def check(self) -> str:
        """Judge the candidate now and act; return the action taken.

        * ``"rollback"``: once both versions served ``min_requests`` in
          all, a breached guardrail (``guardrail_breach``) sends every user
          back to the baseline; ``status`` becomes "rolled back" and
          ``reason`` says why;
        * ``"hold"``: the step has not yet lasted ``min_step_duration_s``,
          or the candidate has not served ``min_requests`` in it (see
          ``step_progress``);
        * ``"advance"``: otherwise the next step's share applies;
        * ``"complete"``: or, after the last step (every user), ``status``
          becomes "completed".

        Every action but "hold" goes through ``_set_share`` (weights and
        ``history``; the rollback's with its reason). After completion or
        a rollback, ``check`` changes nothing and returns the status.
        Raises ValidationError before ``start``.
        """
        if self.status == "pending":
            raise ValidationError("CanaryRollout.check() needs a started rollout: call start() first.")
        raise NotImplementedError(
            "Part 5 (A/B testing): write CanaryRollout.check(). Read notebooks/05_ab_testing.ipynb, section '7. Canary rollout'. Check it with: make grade PART=5 SECTION=7"
        )

    def run(self, send_traffic: Callable[["CanaryRollout"], None], *, max_checks: int = 10_000) -> str:
        """Start (if needed), then alternate ``send_traffic(self)`` and ``check()`` until done.

        ``send_traffic`` sends some requests through ``self.predict`` (and,
        in a simulation, advances the fake clock). Returns the final
        status: ``"completed"``, ``"rolled back"``, or ``"running"`` if
        ``max_checks`` ran out first.
        """
        if self.status == "pending":
            self.start()
        for _ in range(max_checks):
            if self.status != "running":
                break
            send_traffic(self)
            self.check()
        return self.status


class ShadowDeployment:
    """Serve ``primary`` to users; send ``shadow`` a copy of each request and compare.

    ``predict(instances)`` returns exactly the primary's answer; the
    shadow's answer is only compared and logged. Predictions agree when
    equal, or within ``atol`` for numbers (use ``atol`` > 0 for
    regression).

    Given: the state. ``log`` is a deque of the last ``log_size``
    requests' comparisons; ``requests``, ``rows`` (the primary's rows),
    ``agreed_rows`` and ``shadow_errors`` count since creation and give
    ``agreement_rate`` and ``summary``.

    Raises ValidationError for a version without ``predict``, an ``atol``
    below 0 (or NaN), or a ``log_size`` that is not a positive integer.

    Here the shadow runs after the primary in the same thread, which adds
    its latency to the request; a production system sends the copy
    asynchronously (a queue, a thread pool, or the proxy mirroring it).

    >>> shadow = ShadowDeployment(v1, v2)         # v1 serves; v2 answers in the shadow
    >>> for start in range(0, len(X_test), 10):
    ...     _ = shadow.predict(X_test[start:start + 10])   # v1's answers
    >>> shadow.summary()
    {'requests': 15, 'rows': 143, 'agreement_rate': 0.951..., 'shadow_errors': 0}
    """

    def __init__(self, primary: Any, shadow: Any, *, atol: float = 0.0, log_size: int = 10_000) -> None:
        for name, variant in (("primary", primary), ("shadow", shadow)):
            if not callable(getattr(variant, "predict", None)):
                raise ValidationError(f"ShadowDeployment {name} version has no predict method.")
        if not atol >= 0:  # NaN too
            raise ValidationError(f"ShadowDeployment atol must be >= 0, got {atol}.")
        if isinstance(log_size, bool) or not isinstance(log_size, int) or log_size < 1:
            raise ValidationError(f"ShadowDeployment log_size must be an integer >= 1, got {log_size!r}.")
        self.primary, self.shadow, self.atol = primary, shadow, atol
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.requests = self.rows = self.agreed_rows = self.shadow_errors = 0

    def predict(self, instances: Any) -> Any:
        """The primary's answer, unchanged (the same object); the shadow's is only compared and logged.

        * The shadow gets its own deep copy of ``instances``, made before
          the primary answers: it cannot change the caller's data, and it
          sees what the user sent.
        * A shadow that raises anything, or answers with a shape other
          than the primary's, is never felt by the user: it is an error,
          counted in ``shadow_errors``, with 0 rows agreed. A shape that
          differs is the error "ValueError: shadow answered shape (4,) for
          the primary's (3,)".
        * Each request appends ``{"rows": primary's row count, "agreed":
          rows where the shadow agreed, "primary": list, "shadow": list or
          None, "error": None or "ExceptionType: message"}`` to ``log``
          and adds to the counts.

        Answers are read with ``predictions_of``, so the primary or the
        shadow may be a model or an ``InferenceAPI``.

        >>> shadow = ShadowDeployment(v1, v2)
        >>> shadow.predict(X_test[12:15])   # the primary's answer, whatever the shadow said
        array([1, 0, 1])
        >>> shadow.log[-1]
        {'rows': 3, 'agreed': 2, 'primary': [1, 0, 1], 'shadow': [1, 1, 1], 'error': None}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write ShadowDeployment.predict(). Read notebooks/05_ab_testing.ipynb, section '8. Shadow mode'. Check it with: make grade PART=5 SECTION=8"
        )

    def agreement_rate(self) -> float:
        """Share of all primary rows (since creation) where the shadow agreed; NaN before any.

        Rows where the shadow failed count as disagreements.
        """
        return self.agreed_rows / self.rows if self.rows else math.nan

    def summary(self) -> dict[str, Any]:
        """``{"requests", "rows", "agreement_rate", "shadow_errors"}`` since creation."""
        return {"requests": self.requests, "rows": self.rows,
                "agreement_rate": self.agreement_rate(), "shadow_errors": self.shadow_errors}
