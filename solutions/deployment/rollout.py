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
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
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
                                    self._weights(0.0))
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
        ### END SOLUTION

    ### BEGIN SOLUTION part=5 section="7. Canary rollout"
    def _weights(self, share: float) -> dict[str, float]:
        return {self.candidate_name: share, self.baseline_name: 1.0 - share}

    def _set_share(self, share: float, action: str, reason: str, metrics: dict[str, dict]) -> None:
        self.router.set_weights(self._weights(share))
        self.history.append({
            "time_s": self.clock() - self._started_at, "action": action, "step": self.step_index,
            "candidate_share": share, "reason": reason, **metrics,
        })

    def _breach(self, metrics: dict[str, dict]) -> str | None:
        """Why the candidate breaches a guardrail, or None."""
        base, cand = metrics["baseline"], metrics["candidate"]
        error_limit = base["error_rate"] + self.max_error_rate_increase
        if cand["error_rate"] > error_limit:
            return (f"error rate {cand['error_rate']:.2%} is above the baseline's "
                    f"{base['error_rate']:.2%} + {self.max_error_rate_increase:.2%}")
        latency_limit = base["p95_latency_ms"] * self.max_p95_latency_ratio
        if cand["p95_latency_ms"] > latency_limit:
            return (f"p95 latency {cand['p95_latency_ms']:.1f} ms is above {self.max_p95_latency_ratio:g} x "
                    f"the baseline's {base['p95_latency_ms']:.1f} ms")
        return None
    ### END SOLUTION

    @property
    def candidate_share(self) -> float:
        """The candidate's current share of users, read from the router's weights.

        0.0 before ``start`` and after a rollback, ``steps[step_index]``
        while running, 1.0 once completed.

        >>> rollout.candidate_share      # after start() with the default steps
        0.01
        """
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        return self.router.weights[self.candidate_name]
        ### END SOLUTION

    def metrics(self) -> dict[str, dict[str, float]]:
        """``{"baseline": {...}, "candidate": {...}}``: each version's error_rate and p95_latency_ms now.

        A metric that is missing or None is NaN (a monitor of another kind may
        say None when it has no traffic; Part 3's ``ModelMonitor`` says 0.0,
        which is why guardrails wait for ``min_requests`` before judging).

        >>> rollout.metrics()            # a ModelMonitor with no requests yet reads 0.0
        {'baseline': {'error_rate': 0.0, 'p95_latency_ms': 11.1}, 'candidate': {'error_rate': 0.0, 'p95_latency_ms': 0.0}}
        """
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        out = {}
        for role, name in (("baseline", self.baseline_name), ("candidate", self.candidate_name)):
            raw = self.monitors[name].get_metrics()
            out[role] = {key: float(raw[key]) if raw.get(key) is not None else math.nan
                         for key in ("error_rate", "p95_latency_ms")}
        return out
        ### END SOLUTION

    def start(self) -> None:
        """Begin: send the first step's share of users to the candidate.

        Sets ``status`` to "running" and ``step_index`` to 0, starts the
        step's clock and request count, and records a "start" event in
        ``history``. Raises ValidationError if already started.
        """
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        if self.status != "pending":
            raise ValidationError(f"This canary rollout has already started (status {self.status!r}).")
        self.status, self.step_index = "running", 0
        self._started_at = self._step_started_at = self.clock()
        self._step_served_from = self.served[self.candidate_name]
        self._set_share(self.steps[0], "start", f"{self.steps[0]:.0%} of users to {self.candidate_name}",
                        self.metrics())
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        name = self.router.route(user_id)  # once: check() may change the weights meanwhile
        self.served[name] += 1
        return routed_answer(name, self.router.variants[name].predict(instances))
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        if self.status == "pending":
            raise ValidationError("CanaryRollout.check() needs a started rollout: call start() first.")
        if self.status != "running":
            return self.status
        metrics, served = self.metrics(), self.served[self.candidate_name]
        if min(self.served.values()) >= self.min_requests:
            breach = self._breach(metrics)
            if breach is not None:
                self.status, self.reason = "rolled back", breach
                self._set_share(0.0, "rollback", breach, metrics)
                return "rollback"
        now = self.clock()
        if (now - self._step_started_at < self.min_step_duration_s
                or served - self._step_served_from < self.min_requests):
            return "hold"
        if self.step_index == len(self.steps) - 1:
            self.status = "completed"
            self._set_share(1.0, "complete", f"{self.candidate_name} serves every user", metrics)
            return "complete"
        self.step_index += 1
        self._step_started_at, self._step_served_from = now, served
        share = self.steps[self.step_index]
        self._set_share(share, "advance", f"{share:.0%} of users to {self.candidate_name}", metrics)
        return "advance"
        ### END SOLUTION

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
        ### BEGIN SOLUTION part=5 section="7. Canary rollout"
        if self.status == "pending":
            self.start()
        for _ in range(max_checks):
            if self.status != "running":
                break
            send_traffic(self)
            self.check()
        return self.status
        ### END SOLUTION


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
        ### BEGIN SOLUTION part=5 section="8. Shadow mode"
        for name, variant in (("primary", primary), ("shadow", shadow)):
            if not callable(getattr(variant, "predict", None)):
                raise ValidationError(f"ShadowDeployment {name} version has no predict method.")
        if not atol >= 0:  # NaN too
            raise ValidationError(f"ShadowDeployment atol must be >= 0, got {atol}.")
        if log_size < 1:
            raise ValidationError(f"ShadowDeployment log_size must be >= 1, got {log_size}.")
        self.primary, self.shadow, self.atol = primary, shadow, atol
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.requests = self.rows = self.agreed_rows = self.shadow_errors = 0
        ### END SOLUTION

    def predict(self, instances: Any) -> Any:
        """The primary's answer, unchanged; the shadow's is only logged.

        Copy the instances, ask the primary, then ask the shadow (catching
        any exception), compare, update the counts and append to ``log``.

        >>> shadow.predict(X_test[18:21])   # the primary's answer, whatever the shadow said
        array([1, 0, 0])
        >>> shadow.log[-1]
        {'rows': 3, 'agreed': 2, 'primary': [1, 0, 0], 'shadow': [1, 0, 1], 'error': None}
        """
        ### BEGIN SOLUTION part=5 section="8. Shadow mode"
        copy = deepcopy(instances)
        answer = self.primary.predict(instances)
        primary = predictions_of(answer)
        record: dict[str, Any] = {"rows": int(primary.size), "agreed": 0, "primary": primary.tolist(),
                                  "shadow": None, "error": None}
        try:
            shadow = predictions_of(self.shadow.predict(copy))
            if shadow.shape != primary.shape:
                raise ValueError(f"shadow returned shape {shadow.shape}, primary {primary.shape}")
            if self.atol > 0:
                agree = np.isclose(shadow.astype(float), primary.astype(float), rtol=0.0, atol=self.atol)
            else:
                agree = shadow == primary
            record["shadow"], record["agreed"] = shadow.tolist(), int(np.count_nonzero(agree))
        except Exception as exc:  # the shadow must never hurt the user
            record["error"] = f"{type(exc).__name__}: {exc}"
            self.shadow_errors += 1
        self.requests += 1
        self.rows += record["rows"]
        self.agreed_rows += record["agreed"]
        self.log.append(record)
        return answer
        ### END SOLUTION

    def agreement_rate(self) -> float:
        """Share of all primary rows (since creation) where the shadow agreed; NaN before any.

        Rows where the shadow failed count as disagreements.
        """
        ### BEGIN SOLUTION part=5 section="8. Shadow mode"
        return self.agreed_rows / self.rows if self.rows else math.nan
        ### END SOLUTION

    def summary(self) -> dict[str, Any]:
        """``{"requests", "rows", "agreement_rate", "shadow_errors"}`` since creation.

        >>> shadow.summary()
        {'requests': 15, 'rows': 143, 'agreement_rate': 0.895..., 'shadow_errors': 0}
        """
        ### BEGIN SOLUTION part=5 section="8. Shadow mode"
        return {"requests": self.requests, "rows": self.rows,
                "agreement_rate": self.agreement_rate(), "shadow_errors": self.shadow_errors}
        ### END SOLUTION
