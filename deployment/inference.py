"""Part 2: the inference API: a model behind checks a production service cannot do without.

A fitted model answers ``model.predict(X)``. A service must also refuse bad
input with a clear message, know who is calling (API keys), stop one client
from drowning the others (rate limits), leave a trace of every request (a
JSON log line and a monitor), answer repeated questions from a cache, keep
answering when the model breaks (a fallback model), and say whether it is
healthy. ``InferenceAPI`` adds all of that around any model with
``predict`` and ``n_features_in_``.

A request goes through three stages:

1. ``authorize``: check the key and take a token of the client's rate
   limit, before the rows are even read (over HTTP: before the body is);
2. ``admit``: check the instances and turn them into a float array;
3. ``infer``: one model call for one *or many* admitted requests, then one
   response, log line and monitor entry per request.

``predict`` is the three in a row. The HTTP server (``server.py``) calls
them separately: a request with a wrong key is refused before its body is
read, and concurrent one-row requests share one model call (micro-batching).

The notebook's sections build it in order, and each runs once its own
methods are written: 2 ``validate``, 3 ``_check_api_key``, 4
``TokenBucket.take`` and ``_check_rate_limit``, 5 ``_record``, 6
``authorize``, ``admit`` and ``infer`` (now requests are answered), 7
``_cached_outputs`` (reached only with ``cache_size > 0``), 8 ``_fall_back``
(reached only when the model raises and a fallback is configured), 9
``health``.

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
    - ``latency_slo_ms``: health is ``degraded`` when the p95 latency of the recent
      model calls is above this (milliseconds).
    - ``max_error_rate``: health is ``degraded`` when more than this fraction of the
      recent model calls failed or were answered by the fallback.
    - ``health_window``: how many recent model calls health looks at.

    A setting that makes no sense is a ValidationError naming it, e.g.
    ``APIConfig.cache_size must be an integer >= 0, got -1.``

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
    """The ValidationError naming the first bad row or value of ``instances``, a request known to be bad.

    It walks the rows in Python, so call it only once a request is known to
    be bad. Its sentences, for the first problem found (rows and columns
    count from 0):

    - ``row 1 is 13.68 (float), not a list of numbers; instances must be 2-D, e.g. [[0.5, 1.2, ...]].``
    - ``row 1, column 4 is the boolean True, not a number.``
    - ``row 1, column 4 is '0.5' (str), not a number.`` (any other type: its repr, cut to 40 characters)
    - ``row 1, column 4 is too large for a 64-bit float.`` (a Python integer beyond 1.8e308)
    - ``row 1, column 4 is nan, not a finite number.``
    - ``row 1 has 28 values, but the model takes 30 features.``
    """
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
    """A model served safely: validation, API keys, rate limits, logs, a cache, a fallback, health.

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
        self._lock = threading.Lock()  # guards the buckets, the cache and its counters
        # API keys as bytes for hmac.compare_digest, each with a fingerprint safe to log.
        self._keys = [
            (key.encode("utf-8"), "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8])
            for key in sorted(self.config.api_keys or ())
        ]
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # client -> bucket, least recent first
        self._cache: OrderedDict[bytes, Any] = OrderedDict()  # row bytes -> outputs, least recent first
        self.cache_hits = 0
        self.cache_misses = 0
        # The recent model calls, for health: (latency_ms, kind), kind "ok", "fallback" or "unavailable".
        self._recent: deque[tuple[float, str]] = deque(maxlen=self.config.health_window)
        self._monitor_failed = False  # warn once, not on every request
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()  # request ids stay unique across restarts
        self._started_s = clock()

    @property
    def version(self) -> str:
        return self.config.version

    # --- given: the public calls, made of the stages you write ----------------------------------

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

    def refuse(self, caller: Caller, error: BaseException) -> BaseException:
        """Finish an authorized request that failed before its rows were admitted (a bad body, say).

        It is logged and reported to the monitor like any refused request;
        returns ``error`` so the caller can raise it.
        """
        self._record(caller.request_id, caller.client, 0, caller.started_s, error=error)
        return error

    def _new_request_id(self) -> str:
        """A new request id, ``"<8 hex digits>-<n>"``: unique in this process and, by its prefix, across restarts."""
        return f"{self._id_prefix}-{next(self._ids)}"

    # --- 2. Validating requests -------------------------------------------------------------------

    def validate(self, instances: Any) -> np.ndarray:
        """Check ``instances`` and return them as a float64 array of shape (rows, n_features).

        Accepted: a 2-D list (or tuple) of real numbers, or a 2-D numeric numpy
        array, with 1 to ``config.max_batch_size`` rows of exactly
        ``n_features`` finite values. Python's and numpy's integers and floats
        are numbers; booleans are not (``True`` is not 1.0 here: it is almost
        always a client's bug). Refused with a ValidationError, in these
        sentences (rows and columns count from 0):

        - ``instances must be a 2-D list of numbers, got str.`` (not a list, tuple or array)
        - ``instances must be 2-D (rows x features), got a 1-D array.`` (an array of another dimension)
        - ``instances is empty; send at least one row.``
        - ``instances has 101 rows; the limit is 100 rows a request.`` (a ``BatchTooLargeError``)
        - ``instances have 29 columns, but the model takes 30 features.`` (every row the wrong width)
        - ``row 2, column 7 is nan, not a finite number.`` (the first NaN or infinity)
        - a row or value of the wrong kind (a row that is not a list, a boolean, a
          string, None, a nested list, a ragged row, an integer too large for a
          float): the error that the given ``_first_bad_value(instances, n_features)``
          returns, which names the first one.

        It must be cheap, or it costs more than the model: check a good batch
        of 1,000 rows with a few numpy calls, without a Python loop over its
        values; walk a request value by value only once it is known to be bad.
        The notebook measures it.

        >>> api.validate([[0.5] * 29 + [True]])
        Traceback (most recent call last):
        ...
        deployment.errors.ValidationError: row 0, column 29 is the boolean True, not a number.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.validate(). Read notebooks/02_inference_api.ipynb, section '2. Validating requests'. Check it with: make grade PART=2 SECTION=2"
        )

    # --- 3. Authentication ------------------------------------------------------------------------

    def _check_api_key(self, api_key: str | None) -> str | None:
        """The fingerprint of the caller's key, or None when authentication is off (no ``config.api_keys``).

        A fingerprint is ``"key-"`` and the first 8 hex digits of the key's
        SHA-256: it names the key in logs and rate limits without showing it.
        ``self._keys`` holds one ``(key_bytes, fingerprint)`` pair per key.
        With keys configured, raises AuthenticationError (never repeating the key):

        - ``The request has no API key; send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.``
          (None or an empty key)
        - ``The API key must be a string, got int.``
        - ``The API key is not valid.`` (any other key that is not one of them)

        Compare in constant time: the time taken must not depend on how many
        characters of a guess are right, nor on which key matched. ``==``
        stops at the first character that differs, so an attacker who times
        many guesses learns a key one character at a time;
        ``hmac.compare_digest`` does not, and comparing the guess with every
        key, with no early exit, hides which one matched.

        >>> InferenceAPI(model, APIConfig(api_keys={"s3cret"}))._check_api_key("s3cret")
        'key-1ec1c26b'
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._check_api_key(). Read notebooks/02_inference_api.ipynb, section '3. Authentication'. Check it with: make grade PART=2 SECTION=3"
        )

    # --- 4. Rate limiting -------------------------------------------------------------------------

    def _check_rate_limit(self, client: str, now_s: float) -> None:
        """Take a token from ``client``'s bucket at ``now_s`` (seconds on the API's clock), or raise RateLimitError.

        Does nothing when ``config.rate_limit_rps`` is None. Each client has
        its own ``TokenBucket`` in ``self._buckets``, full
        (``config.bucket_capacity`` tokens) on its first request. Memory stays
        bounded whatever the clients: at most ``MAX_TRACKED_CLIENTS`` buckets
        are kept, the least recently seen client forgotten first (it comes
        back with a full bucket). Requests come from many threads: hold
        ``self._lock`` while touching the buckets.

        The error carries ``retry_after_s``, the seconds until the client's
        next token, and says (the rate with ``:g``, the wait to 2 decimals):
        ``Client 'alice' is over its limit of 1 requests a second; retry in 1.00 s.``

        >>> limited = InferenceAPI(model, APIConfig(rate_limit_rps=1.0, burst=1))
        >>> limited._check_rate_limit("alice", 10.0)    # the first token of a full bucket
        >>> limited._check_rate_limit("alice", 10.0)
        Traceback (most recent call last):
        ...
        deployment.errors.RateLimitError: Client 'alice' is over its limit of 1 requests a second; retry in 1.00 s.
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._check_rate_limit(). Read notebooks/02_inference_api.ipynb, section '4. Rate limiting'. Check it with: make grade PART=2 SECTION=4"
        )

    # --- 5. Logging and monitoring ----------------------------------------------------------------

    def _record(self, request_id: str, client: str, rows: int, started_s: float, *,
                error: BaseException | None = None, features: np.ndarray | None = None,
                predictions: np.ndarray | None = None, fallback: bool = False) -> float:
        """Finish one request: measure its latency, tell the monitor, log one JSON line; return the latency (ms).

        Every request ends here exactly once, answered or refused (section 6
        calls it from ``authorize``, ``admit`` and ``infer``). ``started_s``
        is when the request began, on the API's clock (``self._clock``).

        - The monitor, when there is one: ``log_prediction(features,
          predictions, latency_ms)`` for an answer (``error`` is None;
          ``features`` are the request's checked rows), else
          ``log_error(latency_ms, error)``. A monitor that raises must never
          fail the request: the first time, log a warning,
          ``{"event": "monitor_failed", "error": "RuntimeError: disk full"}``,
          then carry on.
        - The log: one ``logger.info`` line, the ``json.dumps`` of a dict with
          these keys, in this order: ``event`` (``"predict"``), ``request_id``,
          ``client``, ``rows``, ``latency_ms`` (rounded to 3 decimals),
          ``outcome`` and ``version`` (``config.version``). ``outcome`` is
          ``"ok"``, ``"fallback"`` (``fallback=True``: the fallback answered)
          or the error's class name (``"ValidationError"``, ...). ``client``
          says who called (a key's fingerprint, never a key):

          ``{"event": "predict", "request_id": "demo-1", "client": "alice", "rows": 3, "latency_ms": 4.2,
          "outcome": "ok", "version": "1.0.0"}``

        >>> started_s = api._clock() - 0.002     # a request that began 2 ms ago
        >>> api._record("5f3a-1", "alice", 0, started_s, error=RateLimitError("slow down", 1.0)) >= 2.0
        True
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._record(). Read notebooks/02_inference_api.ipynb, section '5. Logging and monitoring'. Check it with: make grade PART=2 SECTION=5"
        )

    # --- 6. Answering a request -------------------------------------------------------------------

    def authorize(self, *, api_key: str | None = None, client_id: str | None = None) -> Caller:
        """Stage 1 of a request, before its rows are read: may this caller make a request now?

        Starts the request (``started_s``: now, on the API's clock; an id from
        the given ``_new_request_id()``) and returns ``Caller(request_id,
        client, started_s)``. The client is the key's fingerprint when keys
        are configured (``_check_api_key``), else ``client_id``, else
        ``"anonymous"``; the client then takes a token of its rate limit
        (``_check_rate_limit``). So a rate limit counts per key, even when
        one key calls from many addresses.

        A refused caller (AuthenticationError, RateLimitError) is first
        finished with ``_record`` (0 rows and the error), then the error is raised.

        >>> api.authorize(client_id="10.0.0.7").client
        '10.0.0.7'
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.authorize(). Read notebooks/02_inference_api.ipynb, section '6. Answering a request'. Check it with: make grade PART=2 SECTION=6"
        )

    def admit(self, instances: Any, *, api_key: str | None = None, client_id: str | None = None,
              caller: Caller | None = None) -> AdmittedRequest:
        """Stages 1 and 2: ``authorize`` the caller (unless ``caller`` already was), then ``validate`` its rows.

        Returns ``AdmittedRequest(request_id, client, X, started_s)``: the
        caller's fields and the checked rows. Refused instances are first
        finished with ``_record`` (the error, and their number of rows:
        ``len(instances)`` for a list, a tuple or an array of at least one
        dimension, else 0), then the ValidationError is raised.

        >>> admitted = api.admit([[0.1] * 30], client_id="10.0.0.7")
        >>> admitted.client, admitted.X.shape
        ('10.0.0.7', (1, 30))
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.admit(). Read notebooks/02_inference_api.ipynb, section '6. Answering a request'. Check it with: make grade PART=2 SECTION=6"
        )

    def infer(self, requests: Sequence[AdmittedRequest], *, method: str = "predict") -> list[Any]:
        """Stage 3: answer admitted requests with ONE model call; one outcome per request, in order.

        The rows of all the requests go to the model together, through the
        given ``_predict_rows(X)``, which returns ``(outputs, used_fallback)``:
        a classifier's probabilities (rows x classes), else one prediction per
        row. The outputs are then cut back into one outcome per request: the
        response dict, or that request's exception (returned, never raised).
        Every request is finished with ``_record``.

        - ``{"predictions": [...], "version", "timestamp"}``: JSON-ready Python
          values, ``config.version``, and one UTC datetime for the whole call;
          plus ``"fallback": True`` when the fallback answered. A classifier's
          predictions are its labels, ``self._classes`` at the argmax of each
          row's probabilities (so one call gives both, and a label is never
          taken from NaN probabilities). With ``method="predict_proba"``,
          ``"probabilities"`` (one list per row) and ``"classes"`` replace
          ``"predictions"``.
        - A row whose outputs hold NaN or infinity (an input far outside the
          training range overflowed inside the model): the ValidationError
          ``row 1: the model's output is not finite; the input is outside the range it can answer.``,
          the row counted within its own request (the given ``_rows_not_finite(outputs)``
          lists such rows). The other requests are answered.
        - The model refused the rows itself (``_predict_rows`` raised a
          ValidationError; the package's models do when a value overflows inside
          them): with one request, the ValidationError ``The model cannot
          answer these instances (<the model's message without its final
          period>): a value is far outside the range it was trained on.``;
          with several, answer each request on its own, so one client's bad
          row never fails the others.
        - ``_predict_rows`` raised ModelUnavailableError (the model failed and
          nothing else answered): that error, for every request.

        >>> outcomes = api.infer([api.admit([row]), api.admit([row, [1e308] * 30])])
        >>> outcomes[0]["predictions"], type(outcomes[1]).__name__
        ([1], 'ValidationError')
        """
        if method != "predict" and not (method == "predict_proba" and self.is_classifier):
            raise ValidationError(f"infer: method {method!r} is not 'predict' or, for a classifier, 'predict_proba'.")
        if not requests:
            return []
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.infer(). Read notebooks/02_inference_api.ipynb, section '6. Answering a request'. Check it with: make grade PART=2 SECTION=6"
        )

    # --- given: one model call, through the cache (7) and the fallback (8) when they are on -------

    def _predict_rows(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(outputs, used_fallback)`` for the rows of X: through the cache (``_cached_outputs``) when
        ``config.cache_size > 0``, else one ``_call_model``."""
        if self.config.cache_size > 0:
            return self._cached_outputs(X)
        return self._call_model(X)

    def _call_model(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(outputs, used_fallback)``: ONE call of the model on X, or the fallback's answer when it fails.

        ``outputs`` is the given ``_outputs(model, X, is_classifier)``: a
        classifier's ``predict_proba(X)``, else ``predict(X)``. Each call is
        timed on the API's clock and kept for ``health`` in ``self._recent``
        as ``(latency_ms, kind)``, kind ``"ok"``, ``"fallback"`` or ``"unavailable"``.

        - A ValidationError from the model is raised as it is: the model
          refused the client's rows (a value overflowed inside it). That is not
          the model failing, and health does not count it.
        - Any other exception is the model failing. Without a fallback:
          ModelUnavailableError ``The model failed to answer (RuntimeError) and there is no fallback.``;
          with one, ``_fall_back`` answers (or raises ModelUnavailableError).
        """
        started_s = self._clock()
        try:
            outputs, used_fallback = _outputs(self.model, X, self.is_classifier), False
        except ValidationError:
            raise
        except Exception as error:
            try:
                if self.config.fallback_model is None:
                    raise ModelUnavailableError(
                        f"The model failed to answer ({type(error).__name__}) and there is no fallback."
                    ) from error
                outputs, used_fallback = np.asarray(self._fall_back(X, error)), True
            except ModelUnavailableError:
                self._recent.append(((self._clock() - started_s) * 1000.0, "unavailable"))
                raise
        self._recent.append(((self._clock() - started_s) * 1000.0, "fallback" if used_fallback else "ok"))
        return outputs, used_fallback

    # --- 7. Caching -------------------------------------------------------------------------------

    def _cached_outputs(self, X: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(outputs, used_fallback)`` for the rows of X, each row's outputs remembered in an LRU cache.

        Called instead of ``_call_model`` when ``config.cache_size > 0``. A row
        is known by its bytes (``X[i].tobytes()``); ``self._cache`` maps them
        to the row's outputs, least recently used first (an ``OrderedDict``).
        Rows found are hits, and become the most recently used; the others
        are misses, answered by ONE ``_call_model`` of just those rows (no
        call when every row is a hit), then remembered. Beyond
        ``config.cache_size`` rows, the least recently used are forgotten.
        ``outputs`` holds every row's outputs in X's order;
        ``self.cache_hits`` and ``self.cache_misses`` count rows (``cache_info()``
        reports them).

        Never remember the fallback's answers: once the model is back, the
        cache must not keep answering for the degraded one. Requests come
        from many threads: hold ``self._lock`` while touching the cache and
        its counters, but not during the model call.

        >>> cached = InferenceAPI(model, APIConfig(cache_size=100))
        >>> _ = cached.predict(X[:3]); _ = cached.predict(X[:4])
        >>> cached.cache_info()
        {'hits': 3, 'misses': 4, 'size': 4, 'max_size': 100}
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._cached_outputs(). Read notebooks/02_inference_api.ipynb, section '7. Caching'. Check it with: make grade PART=2 SECTION=7"
        )

    # --- 8. Falling back --------------------------------------------------------------------------

    def _fall_back(self, X: np.ndarray, error: Exception) -> np.ndarray:
        """The fallback model's outputs for X, after the model raised ``error``.

        ``_call_model`` calls it only when ``config.fallback_model`` is set.
        Call the fallback the way the model is called (the given ``_outputs``:
        probabilities for a classifier). Log a warning that names the
        model's error, ``{"event": "fallback", "error": "RuntimeError: weights missing"}``
        (``json.dumps``): the service still answers, but someone must learn
        that its model fails. When the fallback raises too, raise
        ModelUnavailableError, chained to the fallback's error:
        ``The model failed (RuntimeError) and so did its fallback (ValueError).``

        >>> class Broken:
        ...     n_features_in_ = 30
        ...     def predict(self, X):
        ...         raise RuntimeError("weights missing")
        >>> rescued = InferenceAPI(Broken(), APIConfig(fallback_model=model))
        >>> rescued._fall_back(X[:2], RuntimeError("weights missing"))
        array([1, 0])
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI._fall_back(). Read notebooks/02_inference_api.ipynb, section '8. Falling back'. Check it with: make grade PART=2 SECTION=8"
        )

    # --- 9. Health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status", "latency_ms", "uptime_s", "version", "error_rate", "reasons"}``: can this server take traffic?

        Probes the model with one row of zeros, called the way requests call
        it (the given ``_outputs``: ``predict_proba`` for a classifier), and
        reads the recent model calls, which the given ``_call_model`` keeps in
        ``self._recent`` as ``(latency_ms, kind)`` pairs, kind ``"ok"``,
        ``"fallback"`` or ``"unavailable"``.

        - ``status``: ``"unhealthy"`` when neither the model nor the fallback
          answers the probe (take this server out of rotation); else
          ``"degraded"`` when there is any reason below; else ``"healthy"``.
        - ``latency_ms``: the p95 latency of the recent calls; ``error_rate``:
          the fraction of them that are not ``"ok"``; both 0.0 before any call.
        - ``uptime_s``: the seconds since the API was made (``self._started_s``).
        - ``reasons``: one short sentence per problem, in this order:
          ``the model fails a probe (RuntimeError); the fallback answers`` or
          ``the model fails a probe (RuntimeError) and nothing else answers``;
          ``the fallback answered the last model call`` (while something answers);
          ``p95 latency 80.0 ms is above the 50 ms SLO``;
          ``error rate 100.0% is above 5.0%``.

        >>> api.health()["status"], api.health()["reasons"]
        ('healthy', [])
        """
        raise NotImplementedError(
            "Part 2 (the inference API): write InferenceAPI.health(). Read notebooks/02_inference_api.ipynb, section '9. Health'. Check it with: make grade PART=2 SECTION=9"
        )


_MISSING = object()  # a cache miss (None could be a prediction)


# Given helpers of answering (sections 6, 8 and 9).
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
    """One call of ``model``: ``predict_proba(X)`` if ``probabilities``, else ``predict(X)``, as an array.

    Numpy's overflow warnings are silenced: ``infer`` checks the outputs instead.
    """
    with np.errstate(all="ignore"):
        return np.asarray(model.predict_proba(X) if probabilities else model.predict(X))
