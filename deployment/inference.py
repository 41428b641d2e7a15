"""Part 2: the inference API: a model behind checks a production service cannot do without.

A fitted model answers ``model.predict(X)``. A service must also refuse bad
input with a clear message, know who is calling (API keys), stop one client
from drowning the others (rate limits), answer repeated questions from a
cache, keep answering when the model breaks (a fallback model), and leave a
trace of every request (a JSON log line and a monitor). ``InferenceAPI`` adds
all of that around any model with ``predict`` and ``n_features_in_``.

A request goes through three stages:

1. ``authorize``: check the key and take a token of the client's rate
   limit, before the rows are even read (over HTTP: before the body is);
2. ``admit``: check the instances and turn them into a float array;
3. ``infer``: one model call for one *or many* admitted requests, then one
   response, log line and monitor entry per request.

``predict`` is the three in a row. The HTTP server (``server.py``) calls
them separately: a request with a wrong key is refused before its body is
read, and concurrent one-row requests share one model call (micro-batching).

>>> api = InferenceAPI(model, APIConfig(version="1.0.0"))
>>> api.predict([[0.1] * model.n_features_in_])
{'predictions': [1], 'version': '1.0.0', 'timestamp': datetime.datetime(..., tzinfo=datetime.timezone.utc)}
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from .errors import (  # BatchTooLargeError and ModelUnavailableError are re-exported here
    AuthenticationError,
    BatchTooLargeError,
    ModelUnavailableError,
    RateLimitError,
    ValidationError,
)
from .versions import validate_version

__all__ = [
    "APIConfig", "InferenceAPI", "Caller", "AdmittedRequest", "TokenBucket",
    "BatchTooLargeError", "ModelUnavailableError",
]

logger = logging.getLogger("deployment.inference")
"""One JSON line per request goes here, at INFO (``logging.getLogger("deployment.inference")``)."""

MAX_TRACKED_CLIENTS = 100_000
"""Rate-limit buckets kept at most; the least recently seen client is forgotten first."""


@dataclass(frozen=True)
class APIConfig:
    """How an ``InferenceAPI`` serves its model. Frozen: change a setting by making a new config.

    - ``version``: the model version every response names (a semantic version).
    - ``max_batch_size``: the most rows one request may hold (more: ``BatchTooLargeError``).
    - ``api_keys``: the keys accepted; ``None`` means no authentication.
    - ``rate_limit_rps``: requests a second each client may make on average; ``None``: no limit.
    - ``burst``: requests a client may make at once after being idle (the bucket's size);
      default ``ceil(rate_limit_rps)``, at least 1.
    - ``cache_size``: rows whose predictions are remembered (LRU); 0 turns the cache off.
    - ``fallback_model``: answers when the model raises; ``None``: no fallback.
    - ``latency_slo_ms``: health is ``degraded`` when the recent p95 latency is above this.
    - ``max_error_rate``: health is ``degraded`` when more recent requests than this
      fraction failed on the service's side (model failures, fallback answers).
    - ``health_window``: how many recent requests health looks at.

    >>> APIConfig(version="2.0.0", api_keys={"secret"}, rate_limit_rps=10, burst=20).bucket_capacity
    20.0
    """

    version: str = "1.0.0"
    max_batch_size: int = 1024
    api_keys: frozenset[str] | None = field(default=None, repr=False)  # never print keys
    rate_limit_rps: float | None = None
    burst: int | None = None
    cache_size: int = 0
    fallback_model: Any = None
    latency_slo_ms: float = 100.0
    max_error_rate: float = 0.05
    health_window: int = 1000

    def __post_init__(self) -> None:
        validate_version(self.version)
        for name in ("max_batch_size", "health_window"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValidationError(f"APIConfig.{name} must be a positive integer, got {value!r}.")
        if type(self.cache_size) is not int or self.cache_size < 0:
            raise ValidationError(f"APIConfig.cache_size must be an integer >= 0, got {self.cache_size!r}.")
        if self.api_keys is not None:
            if isinstance(self.api_keys, (str, bytes)):
                raise ValidationError("APIConfig.api_keys must be a collection of keys, not one string.")
            keys = frozenset(self.api_keys)
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise ValidationError("APIConfig.api_keys must hold at least one non-empty string key.")
            object.__setattr__(self, "api_keys", keys)
        if self.rate_limit_rps is not None and not _positive_number(self.rate_limit_rps):
            raise ValidationError(f"APIConfig.rate_limit_rps must be a positive number, got {self.rate_limit_rps!r}.")
        if self.burst is not None and (type(self.burst) is not int or self.burst < 1):
            raise ValidationError(f"APIConfig.burst must be a positive integer, got {self.burst!r}.")
        if self.burst is not None and self.rate_limit_rps is None:
            raise ValidationError("APIConfig.burst needs rate_limit_rps: a burst means nothing without a rate.")
        if not _positive_number(self.latency_slo_ms):
            raise ValidationError(f"APIConfig.latency_slo_ms must be a positive number, got {self.latency_slo_ms!r}.")
        if not (isinstance(self.max_error_rate, (int, float)) and 0 <= self.max_error_rate <= 1):
            raise ValidationError(f"APIConfig.max_error_rate must be between 0 and 1, got {self.max_error_rate!r}.")
        if self.fallback_model is not None and not hasattr(self.fallback_model, "predict"):
            raise ValidationError("APIConfig.fallback_model must have a predict method.")

    @property
    def bucket_capacity(self) -> float:
        """The token bucket's size: ``burst``, or ``ceil(rate_limit_rps)`` (at least 1)."""
        if self.burst is not None:
            return float(self.burst)
        return float(max(1, math.ceil(self.rate_limit_rps or 1)))


def _positive_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


class TokenBucket:
    """A token bucket: ``rate_per_s`` tokens a second flow in, up to ``capacity``; a request takes one.

    A client idle for a while can make ``capacity`` requests at once (a burst),
    then ``rate_per_s`` a second on average. Time comes in as an argument
    (``now_s``, seconds on any monotonic clock), so tests control it.

    >>> bucket = TokenBucket(rate_per_s=2.0, capacity=2, now_s=0.0)
    >>> bucket.take(0.0), bucket.take(0.0), bucket.take(0.0)
    (0.0, 0.0, 0.5)
    """

    __slots__ = ("rate_per_s", "capacity", "tokens", "updated_s")

    def __init__(self, rate_per_s: float, capacity: float, now_s: float) -> None:
        self.rate_per_s = float(rate_per_s)
        self.capacity = float(capacity)
        self.tokens = float(capacity)  # a new client starts with a full bucket
        self.updated_s = float(now_s)

    def take(self, now_s: float) -> float:
        """Take one token at time ``now_s``: return 0.0 if granted, else the seconds to wait for one.

        First add the tokens that flowed in since ``updated_s`` (never above
        ``capacity``; a clock that went backwards adds none), then take one if
        there is a whole token. A refused request takes nothing.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write TokenBucket.take(). Read notebooks/02_inference_api.ipynb, section '4. Rate limiting'. Check it with: make grade PART=2 SECTION=4"
        )


class Caller(NamedTuple):
    """A request whose caller passed ``InferenceAPI.authorize``: its id, who sent it, when it began.

    Its rows are not known yet: over HTTP, the key and the rate are checked
    before the body is read.
    """

    request_id: str
    client: str
    started_s: float  # on the API's clock


class AdmittedRequest(NamedTuple):
    """A request that passed ``InferenceAPI.admit``: its id, who sent it, its rows, when it began."""

    request_id: str
    client: str
    X: np.ndarray  # (rows, n_features) float64, checked
    started_s: float  # on the API's clock


# Given helpers of validation (section 2): they find and describe the first bad value of a bad request.
_NUMBER_TYPES = (int, float, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)


def _is_number_type(kind: type) -> bool:
    """True for Python's and numpy's ints and floats; False for booleans (``True`` is an int in Python)."""
    return issubclass(kind, _NUMBER_TYPES) and not issubclass(kind, _BOOL_TYPES)


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 40 characters: a message must stay one readable sentence."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_bad_value(instances: Sequence[Any], width: int) -> ValidationError:
    """The error naming the first bad row or value. Only runs once a request is known to be bad."""
    for r, row in enumerate(instances):
        if not isinstance(row, (list, tuple, np.ndarray)):
            return ValidationError(
                f"row {r} is {_shown(row)} ({type(row).__name__}), not a list of numbers; "
                "instances must be 2-D, e.g. [[0.5, 1.2, ...]]."
            )
        for c, value in enumerate(row):
            if isinstance(value, _BOOL_TYPES):
                return ValidationError(f"row {r}, column {c} is the boolean {value!r}, not a number.")
            if not isinstance(value, _NUMBER_TYPES):
                return ValidationError(f"row {r}, column {c} is {_shown(value)} ({type(value).__name__}), not a number.")
            if isinstance(value, int) and abs(value) > sys.float_info.max:
                return ValidationError(f"row {r}, column {c} is too large for a 64-bit float.")
            if not math.isfinite(value):
                return ValidationError(f"row {r}, column {c} is {value}, not a finite number.")
        if len(row) != width:
            return ValidationError(f"row {r} has {len(row)} values, but the model takes {width} features.")
    return ValidationError("instances must be a 2-D list of numbers, one row per instance.")


class InferenceAPI:
    """A model served safely: validation, API keys, rate limits, a cache, a fallback, logs, health.

    ``model`` is any fitted model with ``predict`` and ``n_features_in_`` (the
    package's models or scikit-learn's). ``monitor`` (optional) is told about
    every request: ``log_prediction(features, prediction, latency_ms)`` for an
    answer, ``log_error(latency_ms, error)`` for a refusal or failure (a
    Part 3 ``ModelMonitor``, or ``recorder.LatencyRecorder``). ``clock``
    returns seconds on a monotonic clock; latencies, rate limits and uptime
    use it, so tests can pass a fake one.

    >>> api = InferenceAPI(model, APIConfig(version="1.2.0", cache_size=1000))
    >>> api.predict(X_test[:2])["predictions"]
    [1, 0]
    """

    def __init__(
        self,
        model: Any,
        config: APIConfig | None = None,
        *,
        monitor: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not hasattr(model, "predict"):
            raise ValidationError(f"InferenceAPI: a {type(model).__name__} has no predict method.")
        n_features = getattr(model, "n_features_in_", None)
        if n_features is None:
            raise ValidationError(f"InferenceAPI: this {type(model).__name__} is not fitted (no n_features_in_).")
        self.model = model
        self.config = config if config is not None else APIConfig()
        self.monitor = monitor
        self.n_features = int(n_features)
        self.is_classifier = hasattr(model, "predict_proba") and hasattr(model, "classes_")
        self._classes = np.asarray(model.classes_) if self.is_classifier else None
        fallback = self.config.fallback_model
        if self.is_classifier and fallback is not None and not (
                hasattr(fallback, "predict_proba")
                and np.array_equal(getattr(fallback, "classes_", None), self._classes)):
            raise ValidationError(
                "InferenceAPI: the fallback of a classifier must be a classifier with the same classes_."
            )
        self._clock = clock
        self._lock = threading.Lock()  # guards the buckets, the cache and the counters
        # API keys as bytes for hmac.compare_digest, each with a fingerprint safe to log.
        self._keys = [
            (key.encode("utf-8"), "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8])
            for key in sorted(self.config.api_keys or ())
        ]
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # client -> bucket, LRU order
        self._cache: OrderedDict[bytes, Any] = OrderedDict()  # row bytes -> prediction, LRU order
        self.cache_hits = 0
        self.cache_misses = 0
        # Recent requests that reached the model: (latency_ms, outcome), outcome "ok",
        # "fallback" or "unavailable"; health reads them. Client mistakes are not kept.
        self._recent: deque[tuple[float, str]] = deque(maxlen=self.config.health_window)
        self._fallback_active = False  # did the fallback answer the last model call?
        self._monitor_failed = False
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()
        self._started_s = clock()

    @property
    def version(self) -> str:
        return self.config.version

    def predict(self, instances: Any, *, api_key: str | None = None, client_id: str | None = None) -> dict[str, Any]:
        """Answer one request: ``{"predictions": [...], "version": str, "timestamp": datetime (UTC)}``.

        ``instances`` is a 2-D list or array, one row per instance. Classifiers
        answer labels, regressors numbers. When the fallback model answered,
        the response also holds ``"fallback": True``. Raises ValidationError
        (bad instances; ``BatchTooLargeError`` for too many rows),
        AuthenticationError, RateLimitError or ModelUnavailableError.
        """
        outcome = self.infer([self.admit(instances, api_key=api_key, client_id=client_id)])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def predict_proba(self, instances: Any, *, api_key: str | None = None,
                      client_id: str | None = None) -> dict[str, Any]:
        """A classifier's probabilities: ``{"probabilities": [[...]], "classes": [...], "version", "timestamp"}``."""
        if not self.is_classifier:
            raise ValidationError(f"predict_proba: a {type(self.model).__name__} is not a classifier.")
        admitted = self.admit(instances, api_key=api_key, client_id=client_id)
        outcome = self.infer([admitted], method="predict_proba")[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def cache_info(self) -> dict[str, int]:
        """``{"hits", "misses", "size", "max_size"}``: counted in rows, like ``functools.lru_cache``."""
        return {"hits": self.cache_hits, "misses": self.cache_misses,
                "size": len(self._cache), "max_size": self.config.cache_size}

    def validate(self, instances: Any) -> np.ndarray:
        """Check ``instances`` and return them as a float64 array of shape (rows, n_features).

        Accepted: a 2-D list (or tuple) of real numbers, or a 2-D numeric numpy
        array, with 1 to ``max_batch_size`` rows, exactly ``n_features``
        columns and only finite values. Refused with a ValidationError that
        names the row and column of the first bad value: booleans (``True`` is
        not 1.0 here), strings, None, nested lists, NaN, inf and integers too
        large for a 64-bit float; an empty request. A ragged row or a wrong
        width is named with both numbers ("row 1 has 29 values, but the model
        takes 30 features"). More than ``max_batch_size`` rows is a
        ``BatchTooLargeError``.

        Vectorized: a good batch of 1,000 rows is checked without a Python
        loop over rows (numpy does the work in C); only a request already
        known to be bad is walked value by value, by the given
        ``_first_bad_value(instances, n_features)``, which returns the error
        naming the first bad row or value.

        >>> api.validate([[0.5] * 29 + [True]])
        Traceback (most recent call last):
        ...
        deployment.errors.ValidationError: row 0, column 29 is the boolean True, not a number.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.validate(). Read notebooks/02_inference_api.ipynb, section '2. Validating requests'. Check it with: make grade PART=2 SECTION=2"
        )

    def _check_api_key(self, api_key: str | None) -> str | None:
        """Return the key's fingerprint (``"key-1a2b3c4d"``), None when auth is off, or raise.

        With ``config.api_keys`` set, a missing key or one that matches none
        raises AuthenticationError. Compare with ``hmac.compare_digest`` against
        every key (``self._keys`` holds ``(key_bytes, fingerprint)`` pairs): ``==``
        stops at the first differing character, and the time it takes tells an
        attacker how much of a guess was right.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._check_api_key(). Read notebooks/02_inference_api.ipynb, section '3. Authentication'. Check it with: make grade PART=2 SECTION=3"
        )

    def _check_rate_limit(self, client: str, now_s: float) -> None:
        """Take a token from ``client``'s bucket at ``now_s``, or raise RateLimitError.

        Does nothing when ``config.rate_limit_rps`` is None. Each client has a
        ``TokenBucket`` in ``self._buckets`` (made on its first request, full,
        with ``config.bucket_capacity`` tokens), kept in least-recently-seen
        order so at most ``MAX_TRACKED_CLIENTS`` are remembered. The error
        carries ``retry_after_s``, the seconds until a token is back.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._check_rate_limit(). Read notebooks/02_inference_api.ipynb, section '4. Rate limiting'. Check it with: make grade PART=2 SECTION=4"
        )

    def authorize(self, *, api_key: str | None = None, client_id: str | None = None) -> Caller:
        """Stage 1 of a request, before its rows are read: may this caller make a request now?

        Starts the request's clock (``started_s = self._clock()``) and gives it
        an id, ``f"{self._id_prefix}-{next(self._ids)}"`` (unique in this
        process and across restarts). The client is the API key's fingerprint
        when there is a key (``_check_api_key``), else ``client_id``, else
        ``"anonymous"``; then the client takes a rate token
        (``_check_rate_limit(client, started_s)``).

        Returns ``Caller(request_id, client, started_s)``. A refused request is
        first finished with ``_record`` (0 rows, and the error), then its error
        is raised: AuthenticationError or RateLimitError.

        >>> api.authorize(client_id="10.0.0.7").client
        '10.0.0.7'
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.authorize(). Read notebooks/02_inference_api.ipynb, section '5. Answering a request'. Check it with: make grade PART=2 SECTION=5"
        )

    def admit(self, instances: Any, *, api_key: str | None = None, client_id: str | None = None,
              caller: Caller | None = None) -> AdmittedRequest:
        """Stages 1 and 2 of a request: ``authorize`` the caller (unless ``caller`` was), then ``validate``.

        Returns ``AdmittedRequest(request_id, client, X, started_s)``, the
        caller's fields with the checked rows. Refused instances are first
        finished with ``_record`` (their rows: ``len(instances)`` for a list,
        tuple or array with at least one dimension, else 0; and the error),
        then the ValidationError is raised.

        >>> admitted = api.admit([[0.1] * 30], client_id="10.0.0.7")
        >>> admitted.client, admitted.X.shape
        ('10.0.0.7', (1, 30))
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.admit(). Read notebooks/02_inference_api.ipynb, section '5. Answering a request'. Check it with: make grade PART=2 SECTION=5"
        )

    def refuse(self, caller: Caller, error: BaseException) -> BaseException:
        """Finish an authorized request that failed before its rows were admitted (a bad body, say).

        It is logged and reported to the monitor like any refused request;
        returns ``error`` so the caller can raise it.
        """
        self._record(caller.request_id, caller.client, 0, caller.started_s, error=error)
        return error

    def infer(self, requests: Sequence[AdmittedRequest], *, method: str = "predict") -> list[Any]:
        """Stage 2: answer admitted requests with ONE model call; one outcome per request, in order.

        Stack the rows of every request (``np.concatenate``), get the model's
        outputs for all of them from ``_predict_rows`` (one call), then cut
        them back into one outcome per request. An outcome is either the
        response dict or the exception for that request (never raised here):

        - ``{"predictions": [...], "version", "timestamp"}`` (a UTC datetime,
          the same for the whole call), plus ``"fallback": True`` when the
          fallback answered. A classifier's predictions are its labels,
          ``self._classes[argmax]`` of the probabilities ``_predict_rows`` returned;
          with ``method="predict_proba"`` the dict holds ``"probabilities"``
          (one list per row) and ``"classes"`` instead of ``"predictions"``.
        - ValidationError ``"row R: the model's output is not finite; ..."``
          when a row's outputs (scores or probabilities) hold NaN or inf; R counts
          within its own request. An input far outside the training range
          overflows; that is the client's input, not a server fault, and a
          label taken from NaN probabilities would be a made-up answer.
        - ValidationError when the model itself refuses the rows (it raised a
          ValidationError: the package's models do when a value overflows inside
          them); its message quotes the model's own (which names ``X[row, column]``).
          With several requests, each is then answered on its own, so one
          client's bad row never fails the others.
        - ModelUnavailableError, for every request, when no model could answer.

        Each request is logged and reported to the monitor (``_record``).
        ``method`` other than ``"predict"`` or ``"predict_proba"`` (or
        ``"predict_proba"`` for a regressor) is a ValidationError.

        >>> outcomes = api.infer([api.admit([row]), api.admit([row, [1e308] * 30])])
        >>> outcomes[0]["predictions"], type(outcomes[1]).__name__
        ([1], 'ValidationError')
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.infer(). Read notebooks/02_inference_api.ipynb, section '5. Answering a request'. Check it with: make grade PART=2 SECTION=5"
        )

    def _record(self, request_id: str, client: str, rows: int, started_s: float, *,
                error: BaseException | None = None, features: np.ndarray | None = None,
                predictions: np.ndarray | None = None, fallback: bool = False) -> float:
        """Finish one request: measure its latency, log one JSON line, tell the monitor; return the latency.

        - ``latency_ms``: ``(self._clock() - started_s) * 1000``.
        - ``outcome``: ``"ok"``, ``"fallback"`` (the fallback answered), or the error's
          type name (``"ValidationError"``, ``"RateLimitError"``, ...).
        - Health: a request that reached the model (answered, by the fallback or not at
          all: ModelUnavailableError) goes into ``self._recent`` as ``(latency_ms, kind)``,
          kind ``"ok"``, ``"fallback"`` or ``"unavailable"``; a client's mistake does not.
        - Monitor (when there is one): ``log_prediction(features, predictions, latency_ms)``
          for an answer, ``log_error(latency_ms, error)`` otherwise. ``features`` is the
          request's checked rows; one row is passed 1-D (``features[0]``, a view, not a
          copy), the form ``ModelMonitor`` stores fastest. A monitor that raises is
          reported once in the log (a warning) and never fails the request.
        - Log: only when ``logger.isEnabledFor(logging.INFO)`` (the line costs
          microseconds to build: build it only if someone will read it), one
          ``logger.info`` line holding a JSON object with ``event`` ("predict"),
          ``request_id``, ``client``, ``rows``, ``latency_ms``, ``outcome`` and
          ``version``; never the API key (``client`` is the key's fingerprint).

        >>> latency_ms = api._record("5f3a-1", "alice", 1, api._clock() - 0.002, error=RateLimitError("slow", 1.0))
        >>> latency_ms >= 2.0     # the request began 2 ms ago; one line was logged
        True
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._record(). Read notebooks/02_inference_api.ipynb, section '6. Logging and monitoring'. Check it with: make grade PART=2 SECTION=6"
        )

    def _predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(outputs, used_fallback)`` for the rows of X: one model call, through the LRU cache when it is on.

        ``outputs`` are what ``_call_model`` returns: a classifier's
        probabilities (rows x classes), else the model's predictions (one per row).

        With ``config.cache_size > 0``, a row's key is its bytes (``X[i].tobytes()``):
        rows already in ``self._cache`` are hits (moved to the most recent
        end), the others are misses, answered by ONE ``_call_model`` of the
        missing rows and stored, evicting the least recently used rows beyond
        ``cache_size``. ``cache_hits`` and ``cache_misses`` count rows. Fallback
        answers are never cached: the cache must not remember a degraded answer.
        Hold ``self._lock`` while touching the cache, not while the model runs.

        >>> api = InferenceAPI(model, APIConfig(cache_size=100))
        >>> _ = api._predict_rows(X[:3]); _ = api._predict_rows(X[:4])
        >>> api.cache_info()
        {'hits': 3, 'misses': 4, 'size': 4, 'max_size': 100}
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._predict_rows(). Read notebooks/02_inference_api.ipynb, section '7. Caching'. Check it with: make grade PART=2 SECTION=7"
        )

    def _call_model(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(outputs, used_fallback)``: ONE call of the model on X, or of the fallback when the model raises.

        ``outputs`` is ``predict_proba(X)`` for a classifier (``self.is_classifier``:
        labels are taken from it in ``infer``, so a NaN probability cannot hide
        behind a label), else ``predict(X)``, as a numpy array. Numpy overflow
        warnings are silenced (``np.errstate(all="ignore")``): ``infer`` checks
        the outputs instead.

        - A ValidationError from the model is raised as it is: the model refused
          the rows (a value overflowed inside it), the client's fault, not the model's.
        - Any other exception is the model failing: ``config.fallback_model``
          (called the same way) answers, the answer is marked as the fallback's
          (``used_fallback`` True) and ``self._fallback_active`` turns True
          (health is then ``degraded``) until the model answers again. Log a
          warning naming the model's error.
        - No fallback, or the fallback raises too: ModelUnavailableError.

        >>> outputs, used_fallback = api._call_model(X[:2])
        >>> outputs.shape, used_fallback      # a classifier: one probability per class and row
        ((2, 2), False)
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._call_model(). Read notebooks/02_inference_api.ipynb, section '8. Falling back'. Check it with: make grade PART=2 SECTION=8"
        )

    def health(self) -> dict[str, Any]:
        """``{"status", "latency_ms", "uptime_s", "version", "error_rate", "reasons"}``.

        Probes the model with one row of zeros, called as a request calls it
        (``_outputs``: ``predict_proba`` for a classifier). ``status`` is ``"unhealthy"``
        when neither the model nor the fallback answers the probe;
        ``"degraded"`` when only the fallback does, when the fallback answered
        the last request, when the p95 latency of the recent requests is above
        ``latency_slo_ms``, or when their error rate (model failures and
        fallback answers) is above ``max_error_rate``; else ``"healthy"``.
        ``latency_ms`` is that recent p95 (0.0 before any request),
        ``uptime_s`` the seconds since the API was made, ``reasons`` one short
        sentence per problem found.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.health(). Read notebooks/02_inference_api.ipynb, section '9. Health'. Check it with: make grade PART=2 SECTION=9"
        )


_MISSING = object()  # a cache miss (None could be a prediction)


# Given helpers of answering (sections 5 and 8).
def _rows_not_finite(outputs: np.ndarray) -> list[int]:
    """The indices of the rows of ``outputs`` (1-D or 2-D) holding NaN or inf; none for labels."""
    if outputs.dtype.kind != "f":
        return []
    finite = np.isfinite(outputs)
    if np.count_nonzero(finite) == finite.size:  # the usual case; finite.all() costs more on small arrays
        return []
    if finite.ndim > 1:
        finite = finite.all(axis=1)
    return np.flatnonzero(~finite).tolist()


def _outputs(model: Any, X: np.ndarray, probabilities: bool) -> np.ndarray:
    """One call of ``model``: ``predict_proba(X)`` if ``probabilities``, else ``predict(X)``; no overflow warnings."""
    with np.errstate(all="ignore"):
        return np.asarray(model.predict_proba(X) if probabilities else model.predict(X))
