"""Part 5: sending each user to one version of the model, by weight.

A router owns a few *variants* (anything with ``predict``: a model or an
``InferenceAPI``) and a weight for each. It sends every user to one variant:

* **sticky**: the same user always sees the same variant, in this process,
  in the next one, and on every other server, so a user's experience does
  not flip between versions and their outcomes can be credited to one;
* **by weight**: over many users the split matches the weights.

Both come from hashing the user id with a *stable* hash (blake2b of the
UTF-8 bytes) into a bucket in [0, 1) and finding the variant whose slice of
the cumulative weights holds that bucket. Python's built-in ``hash`` of a
string will not do: it is salted per process (PYTHONHASHSEED), so the same
user would land elsewhere after a restart.

    weights   {"v2.0.0": 0.1, "v1.1.0": 0.9}
    slices    v2.0.0: [0.0, 0.1)   v1.1.0: [0.1, 1.0)
    bucket("alice") = 0.03  ->  "v2.0.0"

Because the slices follow the variants' order, growing the first variant's
weight (0.01 -> 0.05 -> 0.25) only moves users *to* it: nobody who already
saw the new version is sent back. That is why a canary lists the
candidate first.
"""

from __future__ import annotations

import hashlib
import math
import threading
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = ["TrafficRouter", "user_bucket", "predictions_of"]

WEIGHT_TOLERANCE = 1e-9
"""How far from 1 the weights may sum (floating-point slack)."""

_BUCKETS = 2.0**53  # a float holds 53 bits exactly, so bits / 2**53 is in [0, 1), never 1.0


def predictions_of(answer: Any) -> np.ndarray:
    """The predictions in a variant's answer, as a numpy array.

    A bare model's ``predict`` returns an array; an ``InferenceAPI``
    returns ``{"predictions": [...], "version": ..., ...}``. Code that
    talks to variants takes either through this one function.
    """
    if isinstance(answer, Mapping):
        answer = answer["predictions"]
    return np.asarray(answer)


def user_bucket(user_id: str | int, salt: str = "") -> float:
    """Hash ``user_id`` into a number in [0, 1), the same in every process.

    The hash is blake2b (8-byte digest) of ``salt + ":" + str(user_id)``
    in UTF-8, read as an unsigned big-endian integer; its top 53 bits,
    divided by 2**53, give the bucket (a float holds 53 bits exactly, so
    the result is never rounded up to 1.0).
    A different ``salt`` per experiment reshuffles users, so the users in
    one test's treatment group are not always the same ones in the next.

    >>> user_bucket("alice")
    0.98495...
    """
    raise NotImplementedError(
        "Part 5 (A/B testing): write user_bucket(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
    )


class TrafficRouter:
    """Split users between variants by weight; sticky and stable across processes.

    ``variants`` maps a name to anything with ``predict(instances)``;
    ``weights`` maps exactly the same names to non-negative numbers that sum
    to 1 (within ``WEIGHT_TOLERANCE``). The order of ``variants`` sets the
    order of the slices (see the module docstring). ``salt`` names the
    experiment (see ``user_bucket``).

    Routing reads one precomputed table (names and cumulative weights), so
    it costs one hash and one binary search (about a microsecond).
    ``set_weights`` builds a new table and swaps it in with one assignment,
    so a request routed while the weights change sees the old table or the
    new one, never half of each.

    Raises ValidationError for no variants, a variant without ``predict``,
    or bad weights.

    >>> router = TrafficRouter({"v1.1.0": v1, "v2.0.0": v2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
    >>> router.route("alice")
    'v2.0.0'
    >>> router.predict(X_test[:2], user_id="alice")
    {'variant': 'v2.0.0', 'predictions': [1, 0]}
    """

    def __init__(self, variants: Mapping[str, Any], weights: Mapping[str, float], *, salt: str = "") -> None:
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.__init__(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
        )


    @property
    def weights(self) -> dict[str, float]:
        """The current weights, as a new dict (changing it changes nothing)."""
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.weights(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
        )

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Validate ``weights`` and switch to them at once (thread-safe).

        Raises ValidationError (and keeps the old weights) when a weight is
        negative or not a number, the names differ from the variants', or
        the sum is not 1 within ``WEIGHT_TOLERANCE``.
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.set_weights(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
        )

    def route(self, user_id: str | int) -> str:
        """The name of the variant that serves ``user_id``: sticky, stable, by weight."""
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.route(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
        )

    def predict(self, instances: Any, user_id: str | int) -> dict[str, Any]:
        """Route ``user_id``, ask that variant, and say which variant answered.

        Returns ``{"variant": name, "predictions": list}``, plus every other
        field of the variant's answer when it is a dict (an InferenceAPI
        adds ``version`` and ``timestamp``).
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.predict(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'."
        )
