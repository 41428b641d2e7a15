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
import itertools
import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .errors import ValidationError

__all__ = ["TrafficRouter", "RoutingTable", "user_bucket", "predictions_of", "routed_answer"]

WEIGHT_TOLERANCE = 1e-9
"""How far from 1 the weights may sum (floating-point slack)."""


def predictions_of(answer: Any) -> np.ndarray:
    """The predictions in a variant's answer, as a numpy array.

    A bare model's ``predict`` returns an array; an ``InferenceAPI``
    returns ``{"predictions": [...], "version": ..., ...}``. Code that
    talks to variants takes either through this one function.

    >>> predictions_of({"predictions": [1, 0], "version": "2.0.0"})
    array([1, 0])
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

    The hash is blake2b with an 8-byte digest of the UTF-8 text
    ``f"{salt}:{user_id}"``, read as an unsigned big-endian integer; its
    top 53 bits, divided by 2**53, give the bucket (a float holds 53 bits
    exactly, so the result is never rounded up to 1.0). A different
    ``salt`` per experiment reshuffles users, so the users in one test's
    treatment group are not always the same ones in the next.

    A user id is a non-empty string or an integer (Python's or numpy's,
    but not a bool; ``7`` and ``"7"`` are the same user). Anything else is
    refused with a ValidationError ("A user id must be a non-empty string
    or an integer, got None."): every request without an id would
    otherwise share the bucket of ``"None"``, and ``1.0`` and ``1`` would
    be different users.

    >>> user_bucket("alice")
    0.98495...
    >>> user_bucket("alice", salt="exp-2")    # another experiment, another shuffle
    0.8624...
    """
    raise NotImplementedError(
        "Part 5 (A/B testing): write user_bucket(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
    )


class RoutingTable(NamedTuple):
    """What ``TrafficRouter.route`` reads, replaced whole by ``TrafficRouter.set_weights``.

    ``weights`` maps every variant, in the order of the router's
    ``variants``, to its weight as a float (0.0 included); ``names`` are
    the variants with a weight above 0, in the same order; ``edges`` are
    their cumulative weights, the upper edges of their slices of [0, 1),
    the last one exactly 1.0 (so rounding can never leave a bucket
    without a slice).

    >>> RoutingTable({"a": 0.2, "b": 0.0, "c": 0.8}, ("a", "c"), (0.2, 1.0))
    RoutingTable(weights={'a': 0.2, 'b': 0.0, 'c': 0.8}, names=('a', 'c'), edges=(0.2, 1.0))
    """

    weights: dict[str, float]
    names: tuple[str, ...]
    edges: tuple[float, ...]


class TrafficRouter:
    """Split users between variants by weight; sticky and stable across processes.

    ``variants`` maps a name (a non-empty string) to anything with
    ``predict(instances)``; ``weights`` maps exactly the same names to
    numbers >= 0 that sum to 1 (see ``set_weights``); a variant of weight
    0 gets no users. The order of ``variants`` sets the order of the
    slices (see the module docstring). ``salt`` names the experiment (see
    ``user_bucket``). ``variants`` and ``salt`` are kept as attributes of
    the same names, the weights in ``table``.

    Routing costs one hash and one binary search in ``table`` (``bisect``
    from the standard library), about a microsecond, however many variants
    there are.

    Raises ValidationError, naming the variant at fault, for no variants,
    a name that is not a non-empty string, a variant without ``predict``,
    or bad weights (see ``set_weights``).

    >>> router = TrafficRouter({"v1.1.0": v1, "v2.0.0": v2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
    >>> router.route("alice")                     # user_bucket("alice") is 0.98...
    'v2.0.0'
    >>> router.predict(X_test[:3], user_id="alice")
    {'variant': 'v2.0.0', 'predictions': [1, 0, 0]}
    >>> router.weights
    {'v1.1.0': 0.5, 'v2.0.0': 0.5}
    """

    table: RoutingTable
    """The current weights and slices; ``set_weights`` replaces it with one assignment."""

    def __init__(self, variants: Mapping[str, Any], weights: Mapping[str, float], *, salt: str = "") -> None:
        if not isinstance(variants, Mapping) or not variants:
            raise ValidationError(f"TrafficRouter needs a mapping of at least one variant name to a model, got {variants!r}.")
        for name, variant in variants.items():
            if not isinstance(name, str) or not name:
                raise ValidationError(f"Variant name {name!r} must be a non-empty string.")
            if not callable(getattr(variant, "predict", None)):
                raise ValidationError(f"Variant {name!r} has no predict method.")
        self.variants = dict(variants)
        self.salt = str(salt)
        self.set_weights(weights)

    @property
    def weights(self) -> dict[str, float]:
        """The current weights of every variant (0 included), as a new dict: changing it changes nothing."""
        return dict(self.table.weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Check ``weights``, then switch to them at once: store a new ``RoutingTable`` in ``table``.

        Build the whole new table first and assign it in one statement, so
        a request routed on another thread meanwhile reads the old table
        or the new one, never half of each (no lock needed).

        Raises ValidationError, and keeps the old table, when:

        * ``weights`` is not a mapping ("Weights must be a mapping of
          variant name to weight, got list.");
        * its names differ from the variants' ("Weights name ['v1.1.0']
          but the variants are ['v1.1.0', 'v2.0.0']; give exactly one
          weight per variant.");
        * a weight is not a real number (a string, None, a bool), or is
          NaN, infinite or negative: the message names the variant at
          fault, "Weight of 'v2.0.0' must be a number, got '0.5'." or
          "Weight of 'v2.0.0' must be a finite number >= 0, got -0.1.";
        * the weights do not sum to 1 within ``WEIGHT_TOLERANCE`` ("Weights
          must sum to 1, but {'v1.1.0': 0.5, 'v2.0.0': 0.6} sum to 1.1.").

        >>> router = TrafficRouter({"v1.1.0": v1, "v2.0.0": v2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
        >>> router.set_weights({"v1.1.0": 0.75, "v2.0.0": 0.25})
        >>> router.table
        RoutingTable(weights={'v1.1.0': 0.75, 'v2.0.0': 0.25}, names=('v1.1.0', 'v2.0.0'), edges=(0.75, 1.0))
        >>> router.set_weights({"v1.1.0": 1.0, "v2.0.0": 0})    # v2.0.0 gets no slice
        >>> router.table
        RoutingTable(weights={'v1.1.0': 1.0, 'v2.0.0': 0.0}, names=('v1.1.0',), edges=(1.0,))
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.set_weights(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def route(self, user_id: str | int) -> str:
        """The name of the variant that serves ``user_id``: sticky, stable, by weight.

        The answer is the variant whose slice of [0, 1) holds the user's
        bucket (``user_bucket(user_id, self.salt)``): the first one in
        ``table.names`` whose edge is above the bucket. With weights
        ``{"a": 0.2, "b": 0.5, "c": 0.3}`` the edges are 0.2, 0.7 and 1.0,
        so a bucket of 0.1 is "a", 0.2 and 0.65 are "b", 0.7 is "c". Read
        ``table`` once: ``set_weights`` may replace it meanwhile. A bad
        user id is refused as by ``user_bucket``.

        >>> router = TrafficRouter({"a": v1, "b": v1, "c": v2}, {"a": 0.2, "b": 0.5, "c": 0.3})
        >>> [(user, round(user_bucket(user), 2), router.route(user)) for user in ("grace", "bob", "alice")]
        [('grace', 0.01, 'a'), ('bob', 0.64, 'b'), ('alice', 0.98, 'c')]
        """
        raise NotImplementedError(
            "Part 5 (A/B testing): write TrafficRouter.route(). Read notebooks/05_ab_testing.ipynb, section '2. Routing users to versions'. Check it with: make grade PART=5 SECTION=2"
        )

    def predict(self, instances: Any, user_id: str | int) -> dict[str, Any]:
        """Route ``user_id``, ask that variant, and say which variant answered.

        Returns ``routed_answer(name, answer)``: ``{"variant": name,
        "predictions": list}``, plus every other field of the variant's
        answer when it is a dict (an InferenceAPI adds ``version`` and
        ``timestamp``). An error of the variant reaches the caller.

        >>> router = TrafficRouter({"v1.1.0": v1, "v2.0.0": v2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
        >>> router.predict(X_test[:3], user_id="alice")
        {'variant': 'v2.0.0', 'predictions': [1, 0, 0]}
        """
        name = self.route(user_id)
        return routed_answer(name, self.variants[name].predict(instances))
