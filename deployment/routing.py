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
    bucket("grace") = 0.007  ->  "v2.0.0"      bucket("alice") = 0.985  ->  "v1.1.0"

Because the slices follow the variants' order, growing the first variant's
weight (0.01 -> 0.05 -> 0.25) only moves users *to* it: nobody who already
saw the new version is sent back. That is why a canary lists the
candidate first.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ValidationError

__all__ = ["TrafficRouter", "user_bucket", "predictions_of", "routed_answer"]

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


def routed_answer(name: str, answer: Any) -> dict[str, Any]:
    """The response to a routed request: the variant's answer, plus ``"variant": name``.

    A dict answer (an ``InferenceAPI``'s) keeps every field it has
    (``predictions``, ``version``, ``timestamp``); a bare model's array
    becomes ``{"variant": name, "predictions": list}``.

    >>> routed_answer("v2.0.0", np.array([1, 0]))
    {'variant': 'v2.0.0', 'predictions': [1, 0]}
    """
    if isinstance(answer, Mapping):
        return {**answer, "variant": name}
    return {"variant": name, "predictions": np.asarray(answer).tolist()}


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
        "Part 5 (A/B testing): write user_bucket(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
    )


class TrafficRouter:
    """Split users between variants by weight; sticky and stable across processes.

    ``variants`` maps a name (a non-empty string) to anything with
    ``predict(instances)``; ``weights`` maps exactly the same names to
    numbers >= 0 that sum to 1 (within ``WEIGHT_TOLERANCE``); a variant of
    weight 0 gets no users. The order of ``variants`` sets the order of the
    slices (see the module docstring). ``salt`` names the experiment (see
    ``user_bucket``). ``variants`` and ``salt`` are kept as attributes of
    the same names.

    Keep one precomputed *table*: the names of the variants with a weight
    above 0, in order, and their cumulative weights (the slices' upper
    edges, the last one exactly 1.0). Then routing costs one hash and one
    binary search (``bisect``), about a microsecond. ``set_weights`` builds
    a new table and swaps it in with one assignment, so a request routed
    while the weights change sees the old table or the new one, never half
    of each.

    Raises ValidationError, naming the variant at fault, for no variants, a
    name that is not a non-empty string, a variant without ``predict``, or
    bad weights (see ``set_weights``).

    >>> router = TrafficRouter({"v1.1.0": v1, "v2.0.0": v2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
    >>> router.route("alice")
    'v2.0.0'
    >>> router.predict(X_test[:2], user_id="alice")
    {'variant': 'v2.0.0', 'predictions': [1, 0]}
    """

    def __init__(self, variants: Mapping[str, Any], weights: Mapping[str, float], *, salt: str = "") -> None:
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.__init__(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def _table(self, weights: Mapping[str, float]) -> tuple[tuple[str, ...], tuple[float, ...], dict[str, float]]:
        """Validate ``weights``; return (names, cumulative upper edges, weights as floats)."""
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter._table(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    @property
    def weights(self) -> dict[str, float]:
        """The current weights of every variant (0 included), as a new dict: changing it changes nothing.

        >>> router.weights
        {'v1.1.0': 0.5, 'v2.0.0': 0.5}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.weights(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Validate ``weights`` and switch to them at once (thread-safe).

        Raises ValidationError, and keeps the old weights, when ``weights``
        is not a mapping, its names differ from the variants', a weight is
        not a real number (a string, None, a bool), is NaN, infinite or
        negative, or the weights do not sum to 1 within ``WEIGHT_TOLERANCE``.
        The message names the variant at fault, e.g. "Weight of 'v2.0.0'
        must be a finite number >= 0, got -0.1."

        >>> router.set_weights({"v1.1.0": 0.75, "v2.0.0": 0.25})
        >>> router.weights
        {'v1.1.0': 0.75, 'v2.0.0': 0.25}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.set_weights(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def route(self, user_id: str | int) -> str:
        """The name of the variant that serves ``user_id``: sticky, stable, by weight.

        With ``bucket = user_bucket(user_id, self.salt)``, the answer is the
        first variant (in the order of ``variants``, skipping weight 0)
        whose cumulative weight is above ``bucket``: with weights
        ``{"a": 0.2, "b": 0.5, "c": 0.3}`` a bucket of 0.1 is "a", 0.2 and
        0.65 are "b", 0.7 is "c".

        >>> router.route("alice")      # user_bucket("alice") is 0.98...
        'v2.0.0'
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.route(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def predict(self, instances: Any, user_id: str | int) -> dict[str, Any]:
        """Route ``user_id``, ask that variant, and say which variant answered.

        Route once, call that variant's ``predict(instances)`` once, and
        return ``routed_answer(name, answer)`` (given above):
        ``{"variant": name, "predictions": list}``, plus every other field
        of the variant's answer when it is a dict (an InferenceAPI adds
        ``version`` and ``timestamp``). An error of the variant reaches the
        caller.

        >>> router.predict(X_test[:2], user_id="alice")
        {'variant': 'v2.0.0', 'predictions': [1, 0]}
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.predict(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )
