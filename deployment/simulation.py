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

    The steps, every random number from ``rng = np.random.default_rng(seed)``:

    1. draw each user's held-out row, ``rng.integers(0, len(X), n_users)``,
       and one uniform number per user, ``rng.random(n_users)``;
    2. route user ``i`` (id ``"user-{i}"``) with a ``TrafficRouter`` salted
       ``"sim-{seed}"``, under a tqdm bar over the users (on stderr) when
       ``progress`` is true;
    3. predict per version in batches of ``batch_size`` rows (one
       ``predict`` call per batch, not per user);
    4. a prediction equal to the row's label is correct; the user converts
       when their uniform number is below ``conversion_if_correct`` (right)
       or ``conversion_if_wrong`` (wrong).

    So the same seed gives the same result, row for row.

    Returns ``(test, log)``: the ``ABTest`` (metric ``"conversion"``, the
    first variant as control and the second as treatment, with ``alpha``
    and ``min_samples``) with every outcome recorded, and a DataFrame with one
    row per user in arrival order: ``user_id`` (str), ``variant`` (str),
    ``row`` (int, into ``X``), ``prediction``, ``correct`` (bool) and
    ``converted`` (0 or 1).

    Raises ValidationError for other than two variants, ``X`` not 2-D or
    not matching ``y``, ``n_users`` or ``batch_size`` not a positive
    integer, a conversion probability outside [0, 1], or bad ``weights``
    (as ``TrafficRouter``).

    >>> test, log = simulate_ab_test({"v1.1.0": v1, "v2.0.0": v2}, data.X_test, data.y_test,
    ...                              n_users=110_000, min_samples=53_729, seed=0, progress=False)
    >>> test.result().decision
    'ship treatment'
    """
    raise NotImplementedError(
        "Part 5 (A/B testing): write simulate_ab_test(). Read notebooks/05_ab_testing.ipynb, section '6. Simulating the A/B test'. Check it with: make grade PART=5 SECTION=6"
    )
