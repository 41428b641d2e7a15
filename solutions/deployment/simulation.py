"""Part 5: an A/B test on simulated users and real models.

Each simulated user arrives, is routed to a version by the ``TrafficRouter``,
and is shown that version's prediction for one real held-out row (a row the
models never trained on). Whether the user *converts* depends on whether
that prediction was right: a right answer converts with probability
``conversion_if_correct``, a wrong one with ``conversion_if_wrong``. So the
better model earns more conversions, by an amount no one picked by hand:
it follows from the models' real accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import ValidationError
from .experiment import ABTest
from .routing import TrafficRouter, predictions_of

__all__ = ["simulate_ab_test"]


def simulate_ab_test(
    variants: Mapping[str, Any],
    X: Any,
    y: Any,
    *,
    n_users: int = 10_000,
    weights: Mapping[str, float] | None = None,
    conversion_if_correct: float = 0.10,
    conversion_if_wrong: float = 0.02,
    alpha: float = 0.05,
    min_samples: int = 1_000,
    seed: int = 0,
    progress: bool = True,
    batch_size: int = 1_024,
) -> tuple[ABTest, pd.DataFrame]:
    """Drive ``n_users`` simulated users through a router to two real model versions.

    ``variants`` maps exactly two names to anything with ``predict``: the
    first is the control, the second the treatment. ``X`` and ``y`` are
    held-out rows and their true labels. ``weights`` defaults to 50/50.

    Every random number comes from ``rng = np.random.default_rng(seed)``,
    drawn in this order, so the same seed gives the same result, row for
    row, on every machine:

    1. each user's held-out row, ``rng.integers(0, len(X), n_users)``,
       then one uniform number per user, ``rng.random(n_users)``;
    2. user ``i`` (id ``"user-{i}"``) is routed by ``router``, the
       ``TrafficRouter`` salted ``"sim-{seed}"`` made for you above (with
       a tqdm bar over the users, on stderr, when ``progress`` is true);
    3. each version predicts its users' rows in batches of ``batch_size``
       rows (one ``predict`` call per batch, never one per user: that is
       what makes 100,000 users take about a second);
    4. a prediction equal to the row's label is correct; the user converts
       when their uniform number is below ``conversion_if_correct`` (right)
       or ``conversion_if_wrong`` (wrong).

    Returns ``(test, log)``: the ``ABTest`` (metric ``"conversion"``, the
    first variant as control and the second as treatment, with ``alpha``
    and ``min_samples``) with every outcome recorded, and a DataFrame with
    one row per user in arrival order: ``user_id`` (str), ``variant``
    (str), ``row`` (int, into ``X``), ``prediction``, ``correct`` (bool)
    and ``converted`` (0 or 1).

    Raises ValidationError for other than two variants, ``X`` not 2-D or
    not matching ``y``, ``n_users`` or ``batch_size`` not a positive
    integer, a conversion probability outside [0, 1], or bad ``weights``
    (as ``TrafficRouter``).

    >>> test, log = simulate_ab_test({"v1.1.0": v1, "v2.0.0": v2}, X_test, y_test, n_users=2_000, progress=False)
    >>> log.columns.tolist()
    ['user_id', 'variant', 'row', 'prediction', 'correct', 'converted']
    >>> test.counts()
    {'v1.1.0': 992, 'v2.0.0': 1008}
    """
    names = list(variants)
    if len(names) != 2:
        raise ValidationError(f"simulate_ab_test compares exactly two variants, got {names}.")
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) == 0 or len(X) != len(y):
        raise ValidationError(f"simulate_ab_test needs X 2-D with one label in y per row; got X {X.shape} and y {y.shape}.")
    for name, count in (("n_users", n_users), ("batch_size", batch_size)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValidationError(f"simulate_ab_test {name} must be a positive integer, got {count!r}.")
    for name, rate in (("conversion_if_correct", conversion_if_correct), ("conversion_if_wrong", conversion_if_wrong)):
        if not 0 <= rate <= 1:
            raise ValidationError(f"simulate_ab_test {name} must be a probability in [0, 1], got {rate}.")
    weights = {name: 0.5 for name in names} if weights is None else weights
    router = TrafficRouter(variants, weights, salt=f"sim-{seed}")
    ### BEGIN SOLUTION part=5 section="6. Simulating the A/B test"
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(X), size=n_users)
    draws = rng.random(n_users)  # one draw per user, whatever version serves them

    user_ids = [f"user-{i}" for i in range(n_users)]
    assigned = np.array([router.route(user) for user in tqdm(user_ids, desc="users", disable=not progress)])

    predictions = np.empty(n_users, dtype=y.dtype)
    users_of = {name: np.flatnonzero(assigned == name) for name in names}
    for name, users in users_of.items():
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            predictions[batch] = predictions_of(variants[name].predict(X[rows[batch]]))
    correct = predictions == y[rows]
    converted = (draws < np.where(correct, conversion_if_correct, conversion_if_wrong)).astype(np.int64)

    test = ABTest(names[0], names[1], metric="conversion", alpha=alpha, min_samples=min_samples)
    for name in names:
        test.record_many(name, converted[users_of[name]])
    log = pd.DataFrame({"user_id": user_ids, "variant": assigned, "row": rows,
                        "prediction": predictions, "correct": correct, "converted": converted})
    return test, log
    ### END SOLUTION
