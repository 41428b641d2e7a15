"""Part 2: the inference API, in process and over real HTTP.

Read with notebooks/02_inference_api.ipynb. Run just this part with
``pytest -m part2`` (or ``make grade PART=2``), one section with
``pytest -m "part2 and section6"`` (or ``make grade PART=2 SECTION=6``).
Each test is marked with the notebook section that teaches what it
checks, and needs only that section and the ones before it. The HTTP
tests start a real uvicorn server on a free loopback port; the
command-line test also needs Part 1's ``save_model`` and ``load_model``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from deployment import (
    APIConfig,
    AuthenticationError,
    InferenceAPI,
    LinearRegression,
    LogisticRegression,
    Pipeline,
    RateLimitError,
    StandardScaler,
    ValidationError,
    inference,
    load_dataset,
)
from deployment.inference import BatchTooLargeError, ModelUnavailableError, TokenBucket
from deployment.loadtest import run_load_test
from deployment.recorder import LatencyRecorder
from deployment.server import BackgroundServer, ServerLimits, create_app

pytestmark = pytest.mark.part2

CANCER = load_dataset("breast_cancer", seed=0)
DIABETES = load_dataset("diabetes", seed=0)
IRIS = load_dataset("iris", seed=0)
CLASSIFIER = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(CANCER.X_train, CANCER.y_train)
REGRESSOR = LinearRegression().fit(DIABETES.X_train, DIABETES.y_train)
MULTICLASS = LogisticRegression().fit(IRIS.X_train, IRIS.y_train)  # 3 classes, softmax
SIMPLE = LogisticRegression(C=0.01).fit(CANCER.X_train, CANCER.y_train)  # a fallback with the same classes
HUGE = 1e308  # finite, but the model's scores overflow
ROWS = CANCER.X_test[:5].tolist()
WIDTH = CANCER.n_features


class FakeClock:
    """A monotonic clock that moves only when the test (or a ``TimedModel``) moves it."""

    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class FakeMonitor:
    """Remembers what the API told it."""

    def __init__(self) -> None:
        self.predictions: list[tuple[np.ndarray, np.ndarray, float]] = []
        self.errors: list[tuple[float, object]] = []

    def log_prediction(self, features, prediction, latency_ms):
        self.predictions.append((np.asarray(features), np.asarray(prediction), latency_ms))
        return len(self.predictions)

    def log_error(self, latency_ms, error):
        self.errors.append((latency_ms, error))


class BrokenModel:
    """Fitted-looking, but every call fails."""

    n_features_in_ = WIDTH
    classes_ = CLASSIFIER.classes_

    def predict(self, X):
        raise RuntimeError("the model's weights are gone")

    def predict_proba(self, X):
        raise RuntimeError("the model's weights are gone")


class CountingModel:
    """Wraps a model and counts its predict calls and the rows they held."""

    def __init__(self, model) -> None:
        self.model, self.n_features_in_, self.calls = model, model.n_features_in_, []

    def predict(self, X):
        self.calls.append(len(X))
        return self.model.predict(X)


class CountingClassifier(CountingModel):
    """A classifier that counts every call, ``predict`` or ``predict_proba``."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.classes_ = model.classes_

    def predict_proba(self, X):
        self.calls.append(len(X))
        return self.model.predict_proba(X)


class TimedModel(CountingModel):
    """A model that takes ``seconds`` of ``clock`` time per call (it moves the fake clock)."""

    def __init__(self, model, clock: FakeClock, seconds: float) -> None:
        super().__init__(model)
        self.clock, self.seconds = clock, seconds

    def predict(self, X):
        self.clock.advance(self.seconds)
        return super().predict(X)


def _api(model=CLASSIFIER, **config) -> InferenceAPI:
    monitor = config.pop("monitor", None)
    clock = config.pop("clock", None)
    extra = {"clock": clock} if clock is not None else {}
    return InferenceAPI(model, APIConfig(**config), monitor=monitor, **extra)


def _row(value, column=3):
    row = list(ROWS[0])
    row[column] = value
    return row


def _log_lines(caplog, level=logging.INFO) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "deployment.inference" and r.levelno == level]


# --- 2. Validating requests ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    True, False, "1.5", None, float("nan"), float("inf"), -float("inf"), [1.0], {"x": 1.0}, 10**400,
], ids=["true", "false", "string", "none", "nan", "inf", "minus-inf", "nested-list", "dict", "huge-int"])
@pytest.mark.section2
def test_a_bad_value_is_refused_naming_its_row_and_column(value):
    with pytest.raises(ValidationError, match=r"row 2, column 3\b"):
        _api().validate([ROWS[0], ROWS[1], _row(value, column=3)])


@pytest.mark.section2
def test_a_boolean_is_refused_as_not_a_number():
    with pytest.raises(ValidationError, match=r"row 0, column 3 is the boolean True, not a number\."):
        _api().validate([_row(True)])


@pytest.mark.section2
def test_nan_is_refused_as_not_finite():
    with pytest.raises(ValidationError, match=r"row 1, column 3 is nan, not a finite number\."):
        _api().validate([ROWS[0], _row(float("nan"))])


@pytest.mark.section2
def test_a_nan_in_an_array_is_refused_naming_its_row_and_column():
    X = np.array(ROWS)
    X[3, 8] = np.inf
    with pytest.raises(ValidationError, match=r"row 3, column 8 is inf"):
        _api().validate(X)


@pytest.mark.section2
def test_a_boolean_array_is_refused():
    with pytest.raises(ValidationError, match=r"row 0, column 0"):
        _api().validate(np.ones((2, WIDTH), dtype=bool))


@pytest.mark.section2
def test_ragged_rows_are_refused_naming_the_row():
    with pytest.raises(ValidationError, match=r"row 1\b.*29"):
        _api().validate([ROWS[0], ROWS[1][:-1], ROWS[2]])


@pytest.mark.section2
def test_a_row_that_is_not_a_list_is_refused():
    with pytest.raises(ValidationError, match=r"row 1\b"):
        _api().validate([ROWS[0], "not a row"])


@pytest.mark.section2
@pytest.mark.parametrize("instances", [[], np.empty((0, WIDTH))], ids=["list", "array"])
def test_empty_instances_are_refused(instances):
    with pytest.raises(ValidationError, match="(?i)empty"):
        _api().validate(instances)


@pytest.mark.section2
@pytest.mark.parametrize("instances", [ROWS[0], 3.0, "rows", {"instances": ROWS}, None],
                         ids=["flat-row", "number", "string", "dict", "none"])
def test_instances_that_are_not_2d_are_refused(instances):
    with pytest.raises(ValidationError):
        _api().validate(instances)


@pytest.mark.section2
@pytest.mark.parametrize("instances, kind", [(3.0, "float"), ("rows", "str"), ({"instances": ROWS}, "dict"),
                                             (None, "NoneType")], ids=["number", "string", "dict", "none"])
def test_instances_that_are_not_a_list_are_refused_naming_their_type(instances, kind):
    with pytest.raises(ValidationError, match=rf"2-D list of numbers, got {kind}\."):
        _api().validate(instances)


@pytest.mark.section2
@pytest.mark.parametrize("instances", [np.array(3.0), np.zeros(WIDTH), np.zeros((1, 1, WIDTH))],
                         ids=["0-d", "1-d", "3-d"])
def test_an_array_that_is_not_2d_is_refused_naming_its_dimensions(instances):
    with pytest.raises(ValidationError, match=rf"\b{instances.ndim}-D\b"):
        _api().validate(instances)


@pytest.mark.section2
def test_wrong_width_is_refused_naming_both_widths():
    with pytest.raises(ValidationError, match=r"29.*30"):
        _api().validate([row[:-1] for row in ROWS])


@pytest.mark.section2
def test_too_many_rows_raise_batch_too_large_naming_the_count_and_limit():
    api = _api(max_batch_size=4)
    api.validate(ROWS[:4])
    with pytest.raises(BatchTooLargeError, match=r"\b5 rows.*\b4 rows"):
        api.validate(ROWS[:5])
    assert issubclass(BatchTooLargeError, ValidationError)


@pytest.mark.section2
def test_validate_returns_a_float_array_of_the_models_width():
    X = _api().validate([[int(v) for v in row] for row in ROWS])
    assert X.dtype == np.float64 and X.shape == (5, WIDTH)
    np.testing.assert_array_equal(X, np.array([[int(v) for v in row] for row in ROWS], dtype=float))


@pytest.mark.section2
def test_validate_accepts_numpy_scalars_and_tuples():
    rows = tuple(tuple(np.float32(v) for v in row) for row in ROWS[:2])
    np.testing.assert_allclose(_api().validate(rows), np.array(ROWS[:2]), rtol=1e-6)


# --- 3. Authentication -------------------------------------------------------------------------------

@pytest.mark.section3
def test_a_missing_api_key_is_refused():
    with pytest.raises(AuthenticationError, match="no API key"):
        _api(api_keys={"s3cret"})._check_api_key(None)


@pytest.mark.section3
def test_a_wrong_api_key_of_the_same_length_is_refused():
    with pytest.raises(AuthenticationError, match="not valid"):
        _api(api_keys={"s3cret"})._check_api_key("s3cre7")


@pytest.mark.section3
def test_every_configured_api_key_is_accepted_and_named_by_its_fingerprint():
    api = _api(api_keys={"s3cret", "other-key", "third"})
    fingerprints = {key: api._check_api_key(key) for key in ("s3cret", "other-key", "third")}
    assert len(set(fingerprints.values())) == 3
    assert all(re.fullmatch(r"key-[0-9a-f]{8}", f) for f in fingerprints.values())
    assert fingerprints["s3cret"] == "key-1ec1c26b"  # the first 8 hex digits of sha256("s3cret")
    assert not any(key in f for key, f in fingerprints.items())  # a fingerprint never shows the key


@pytest.mark.section3
def test_a_prefix_or_extension_of_a_key_is_refused():
    api = _api(api_keys={"s3cret-key"})
    for guess in ("s3cret", "s3cret-key-", "S3CRET-KEY", "s3cret-kez", ""):
        with pytest.raises(AuthenticationError):
            api._check_api_key(guess)


@pytest.mark.section3
def test_a_refusal_never_repeats_the_key():
    with pytest.raises(AuthenticationError) as error:
        _api(api_keys={"s3cret"})._check_api_key("guess-4711")
    assert "4711" not in str(error.value)


@pytest.mark.section3
def test_a_key_that_is_not_a_string_is_refused_naming_its_type():
    with pytest.raises(AuthenticationError, match=r"must be a string, got int\."):
        _api(api_keys={"s3cret"})._check_api_key(12345)


@pytest.mark.section3
def test_no_keys_configured_means_no_authentication():
    assert _api()._check_api_key(None) is None


# --- 4. Rate limiting --------------------------------------------------------------------------------

@pytest.mark.section4
def test_token_bucket_grants_a_burst_then_tells_how_long_to_wait():
    bucket = TokenBucket(rate_per_s=2.0, capacity=2, now_s=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0


@pytest.mark.section4
def test_token_bucket_never_holds_more_than_its_capacity():
    bucket = TokenBucket(rate_per_s=1.0, capacity=2, now_s=0.0)
    granted = [bucket.take(1000.0) == 0.0 for _ in range(3)]  # idle for 1000 s: still only 2 tokens
    assert granted == [True, True, False]


@pytest.mark.section4
def test_token_bucket_adds_nothing_when_the_clock_goes_backwards():
    bucket = TokenBucket(rate_per_s=1.0, capacity=1, now_s=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) == pytest.approx(1.0)


@pytest.mark.section4
def test_rate_limit_refuses_after_the_burst_with_retry_after():
    api = _api(rate_limit_rps=1.0, burst=3)
    for _ in range(3):
        api._check_rate_limit("alice", 10.0)
    with pytest.raises(RateLimitError) as error:
        api._check_rate_limit("alice", 10.0)
    assert error.value.retry_after_s == pytest.approx(1.0)


@pytest.mark.section4
def test_rate_limit_refills_with_time():
    api = _api(rate_limit_rps=2.0, burst=1)
    api._check_rate_limit("alice", 10.0)
    with pytest.raises(RateLimitError):
        api._check_rate_limit("alice", 10.0)
    api._check_rate_limit("alice", 10.5)


@pytest.mark.section4
def test_rate_limits_count_per_client():
    api = _api(rate_limit_rps=1.0, burst=1)
    api._check_rate_limit("alice", 10.0)
    api._check_rate_limit("bob", 10.0)
    with pytest.raises(RateLimitError, match="alice"):
        api._check_rate_limit("alice", 10.0)


@pytest.mark.section4
def test_rate_limit_bucket_defaults_to_the_rate_rounded_up():
    api = _api(rate_limit_rps=2.5)  # no burst: ceil(2.5) = 3 requests at once
    for _ in range(3):
        api._check_rate_limit("alice", 10.0)
    with pytest.raises(RateLimitError):
        api._check_rate_limit("alice", 10.0)


@pytest.mark.section4
def test_rate_limits_forget_the_least_recently_seen_client_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(inference, "MAX_TRACKED_CLIENTS", 2)
    api = _api(rate_limit_rps=0.001, burst=1)  # one request, then a very long wait
    for client in ("alice", "bob"):
        api._check_rate_limit(client, 10.0)
    with pytest.raises(RateLimitError):
        api._check_rate_limit("alice", 10.0)  # alice is now the most recently seen
    api._check_rate_limit("carol", 10.0)  # a third client: bob, the least recent, is forgotten
    api._check_rate_limit("bob", 10.0)  # so bob comes back with a full bucket...
    with pytest.raises(RateLimitError):
        api._check_rate_limit("carol", 10.0)  # ...while carol is still remembered
    assert len(api._buckets) <= 2


@pytest.mark.section4
def test_no_rate_limit_configured_never_refuses():
    api = _api()
    for _ in range(1000):
        api._check_rate_limit("alice", 10.0)


# --- 5. Logging and monitoring ---------------------------------------------------------------------------

@pytest.mark.section5
def test_record_logs_one_json_line_with_the_requests_fields_in_order(caplog):
    caplog.set_level(logging.INFO, logger="deployment.inference")
    clock = FakeClock()
    api = _api(version="2.0.0", clock=clock)
    started_s = clock()
    clock.advance(0.0042)
    api._record("demo-1", "alice", 3, started_s, features=np.array(ROWS[:3]), predictions=np.array([1, 0, 0]))
    assert _log_lines(caplog) == [{"event": "predict", "request_id": "demo-1", "client": "alice", "rows": 3,
                                   "latency_ms": 4.2, "outcome": "ok", "version": "2.0.0"}]
    assert list(_log_lines(caplog)[0]) == ["event", "request_id", "client", "rows", "latency_ms", "outcome",
                                           "version"]


@pytest.mark.section5
def test_record_returns_the_latency_in_milliseconds():
    clock = FakeClock()
    api = _api(clock=clock)
    started_s = clock()
    clock.advance(0.25)
    assert api._record("r-1", "alice", 0, started_s, error=RateLimitError("slow down", 1.0)) == pytest.approx(250.0)


@pytest.mark.section5
@pytest.mark.parametrize("error, fallback, outcome", [
    (None, False, "ok"), (None, True, "fallback"), (RateLimitError("slow down", 1.0), False, "RateLimitError"),
    (BatchTooLargeError("too many rows"), False, "BatchTooLargeError"),
], ids=["ok", "fallback", "rate-limited", "too-large"])
def test_record_logs_the_outcome(caplog, error, fallback, outcome):
    caplog.set_level(logging.INFO, logger="deployment.inference")
    api = _api()
    answer = {} if error is not None else {"features": np.array(ROWS[:1]), "predictions": np.array([1])}
    api._record("r-1", "alice", 1, api._clock(), error=error, fallback=fallback, **answer)
    assert [line["outcome"] for line in _log_lines(caplog)] == [outcome]


@pytest.mark.section5
def test_record_tells_the_monitor_about_an_answer_with_its_rows_and_latency():
    monitor, clock = FakeMonitor(), FakeClock()
    api = _api(monitor=monitor, clock=clock)
    started_s = clock()
    clock.advance(0.003)
    api._record("r-1", "alice", 2, started_s, features=np.array(ROWS[:2]), predictions=np.array([1, 0]))
    assert monitor.errors == []
    [(features, predictions, latency_ms)] = monitor.predictions
    np.testing.assert_array_equal(features, np.array(ROWS[:2]))
    assert predictions.tolist() == [1, 0] and latency_ms == pytest.approx(3.0)


@pytest.mark.section5
def test_record_tells_the_monitor_about_an_error_with_its_latency():
    monitor, clock = FakeMonitor(), FakeClock()
    api = _api(monitor=monitor, clock=clock)
    started_s = clock()
    clock.advance(0.001)
    error = ValidationError("row 0, column 3 is None (NoneType), not a number.")
    api._record("r-1", "alice", 1, started_s, error=error)
    assert monitor.predictions == [] and monitor.errors == [(pytest.approx(1.0), error)]


@pytest.mark.section5
def test_a_failing_monitor_never_fails_a_request_and_is_reported_once(caplog):
    class Broken(FakeMonitor):
        def log_prediction(self, *args):
            raise RuntimeError("disk full")

    caplog.set_level(logging.INFO, logger="deployment.inference")
    api = _api(monitor=Broken())
    for request_id in ("r-1", "r-2"):
        api._record(request_id, "alice", 1, api._clock(), features=np.array(ROWS[:1]), predictions=np.array([1]))
    assert [line["outcome"] for line in _log_lines(caplog)] == ["ok", "ok"]
    warnings = _log_lines(caplog, logging.WARNING)
    assert len(warnings) == 1 and "disk full" in warnings[0]["error"]


# --- 6. Answering a request ------------------------------------------------------------------------------

@pytest.mark.section6
def test_predict_returns_predictions_version_and_utc_timestamp():
    before = datetime.now(timezone.utc)
    response = _api(version="1.4.2").predict(ROWS)
    assert set(response) == {"predictions", "version", "timestamp"}
    assert response["version"] == "1.4.2"
    assert response["timestamp"].tzinfo is not None and response["timestamp"].utcoffset().total_seconds() == 0
    assert before <= response["timestamp"] <= datetime.now(timezone.utc)


@pytest.mark.section6
def test_classifier_predictions_are_the_models_labels_as_python_values():
    predictions = _api().predict(ROWS)["predictions"]
    assert predictions == CLASSIFIER.predict(np.array(ROWS)).tolist()
    assert all(type(p) is int for p in predictions)


@pytest.mark.section6
def test_regressor_predictions_are_numbers():
    rows = DIABETES.X_test[:4]
    predictions = _api(REGRESSOR).predict(rows.tolist())["predictions"]
    np.testing.assert_allclose(predictions, REGRESSOR.predict(rows))
    assert all(type(p) is float for p in predictions)


@pytest.mark.section6
def test_a_numpy_array_is_accepted():
    assert _api().predict(np.array(ROWS))["predictions"] == _api().predict(ROWS)["predictions"]


@pytest.mark.section6
def test_predict_proba_is_reachable_for_classifiers():
    response = _api().predict_proba(ROWS)
    np.testing.assert_allclose(response["probabilities"], CLASSIFIER.predict_proba(np.array(ROWS)))
    assert response["classes"] == [0, 1]


@pytest.mark.section6
def test_infer_answers_many_requests_with_one_model_call():
    model = CountingModel(CLASSIFIER)
    api = _api(model)
    admitted = [api.admit([row]) for row in ROWS] + [api.admit(ROWS[:2])]
    outcomes = api.infer(admitted)
    assert model.calls == [len(ROWS) + 2]
    assert [o["predictions"] for o in outcomes[:-1]] == [[p] for p in CLASSIFIER.predict(np.array(ROWS)).tolist()]
    assert outcomes[-1]["predictions"] == CLASSIFIER.predict(np.array(ROWS[:2])).tolist()


@pytest.mark.section6
def test_a_classifier_is_called_once_a_request_and_labels_match_predict():
    model = CountingClassifier(MULTICLASS)
    predictions = _api(model).predict(IRIS.X_test)["predictions"]
    assert predictions == MULTICLASS.predict(IRIS.X_test).tolist()
    assert model.calls == [len(IRIS.X_test)]


@pytest.mark.section6
def test_bad_requests_never_reach_the_model():
    model = CountingModel(CLASSIFIER)
    api = _api(model)
    with pytest.raises(ValidationError):
        api.predict([_row(None)])
    assert model.calls == []


@pytest.mark.section6
def test_rate_limits_count_per_api_key_before_client_id():
    api = _api(rate_limit_rps=1.0, burst=1, api_keys={"k1", "k2"}, clock=FakeClock())
    api.predict(ROWS, api_key="k1", client_id="same-address")
    api.predict(ROWS, api_key="k2", client_id="same-address")
    with pytest.raises(RateLimitError):
        api.predict(ROWS, api_key="k1", client_id="other-address")


@pytest.mark.section6
def test_authorize_names_the_client_by_key_fingerprint_then_client_id_then_anonymous():
    keyed = _api(api_keys={"s3cret"})
    assert keyed.authorize(api_key="s3cret", client_id="10.0.0.7").client == "key-1ec1c26b"
    assert _api().authorize(client_id="10.0.0.7").client == "10.0.0.7"
    assert _api().authorize().client == "anonymous"


@pytest.mark.section6
def test_every_request_gets_its_own_id():
    api = _api()
    assert len({api.authorize().request_id for _ in range(100)}) == 100


@pytest.mark.section6
def test_a_non_finite_prediction_is_a_validation_error():
    api = _api(REGRESSOR)
    row = [HUGE] * DIABETES.n_features
    with pytest.raises(ValidationError, match=r"row 1: the model's output is not finite"):
        api.predict([list(DIABETES.X_test[0]), row])


@pytest.mark.section6
def test_a_label_from_non_finite_probabilities_is_refused_naming_the_row():
    with np.errstate(all="ignore"):
        assert np.isnan(MULTICLASS.predict_proba([[HUGE] * 4])).all()  # yet predict() returns a label
    api = _api(MULTICLASS)
    with pytest.raises(ValidationError, match=r"row 1\b"):
        api.predict([list(IRIS.X_test[0]), [HUGE] * 4])


@pytest.mark.section6
def test_a_row_the_model_refuses_is_a_validation_error_quoting_the_model():
    with pytest.raises(ValidationError, match=r"cannot answer these instances \(.*X\[0, \d+\].*\): a value is far"):
        _api().predict([[HUGE] * WIDTH])  # the scaler turns 1e308 into inf; the logistic step refuses it


@pytest.mark.section6
def test_one_requests_bad_row_does_not_fail_the_others_answered_with_it():
    api = _api()
    good, bad = api.admit(ROWS[:2]), api.admit([ROWS[0], [HUGE] * WIDTH])
    outcomes = api.infer([good, bad, api.admit(ROWS[2:3])])
    assert outcomes[0]["predictions"] == CLASSIFIER.predict(np.array(ROWS[:2])).tolist()
    assert isinstance(outcomes[1], ValidationError)
    assert outcomes[2]["predictions"] == CLASSIFIER.predict(np.array(ROWS[2:3])).tolist()


@pytest.mark.section6
def test_a_non_finite_row_counts_within_its_own_request():
    api = _api(REGRESSOR)
    first, second = api.admit(DIABETES.X_test[:3].tolist()), api.admit([DIABETES.X_test[0].tolist(),
                                                                          [HUGE] * DIABETES.n_features])
    outcomes = api.infer([first, second])
    assert "predictions" in outcomes[0]
    assert re.match(r"row 1\b", str(outcomes[1]))  # row 4 of the call, row 1 of its request


@pytest.mark.section6
def test_a_failing_model_without_fallback_is_model_unavailable_for_every_request():
    api = _api(BrokenModel())
    with pytest.raises(ModelUnavailableError, match="no fallback"):
        api.predict(ROWS)
    outcomes = api.infer([api.admit(ROWS[:1]), api.admit(ROWS[1:3])])
    assert [type(outcome) for outcome in outcomes] == [ModelUnavailableError] * 2


@pytest.mark.section6
def test_infer_refuses_an_unknown_method():
    api = _api(REGRESSOR)
    with pytest.raises(ValidationError, match="predict_proba"):
        api.infer([api.admit(DIABETES.X_test[:1].tolist())], method="predict_proba")


@pytest.mark.section6
def test_cache_is_off_by_default():
    model = CountingModel(CLASSIFIER)
    api = _api(model)
    api.predict(ROWS)
    api.predict(ROWS)
    assert model.calls == [5, 5]
    assert api.cache_info()["hits"] == 0


@pytest.mark.section6
def test_each_request_logs_one_json_line(caplog):
    caplog.set_level(logging.INFO, logger="deployment.inference")
    api = _api(version="2.0.0")
    api.predict(ROWS, client_id="alice")
    with pytest.raises(ValidationError):
        api.predict([_row(None)], client_id="bob")
    lines = _log_lines(caplog)
    assert len(lines) == 2
    ok, refused = lines
    assert {"request_id", "client", "rows", "latency_ms", "outcome"} <= set(ok)
    assert (ok["client"], ok["rows"], ok["outcome"]) == ("alice", 5, "ok")
    assert (refused["client"], refused["rows"], refused["outcome"]) == ("bob", 1, "ValidationError")
    assert ok["request_id"] != refused["request_id"]


@pytest.mark.section6
def test_a_refused_caller_is_logged_with_no_rows(caplog):
    caplog.set_level(logging.INFO, logger="deployment.inference")
    with pytest.raises(AuthenticationError):
        _api(api_keys={"s3cret"}).predict(ROWS, client_id="mallory")
    assert [(line["client"], line["rows"], line["outcome"]) for line in _log_lines(caplog)] == [
        ("mallory", 0, "AuthenticationError")]


@pytest.mark.section6
def test_the_log_never_holds_the_api_key(caplog):
    caplog.set_level(logging.DEBUG)
    api = _api(api_keys={"top-secret-key"})
    api.predict(ROWS, api_key="top-secret-key")
    with pytest.raises(AuthenticationError):
        api.predict(ROWS, api_key="top-secret-kez")
    assert len(_log_lines(caplog)) == 2
    assert "top-secret-ke" not in caplog.text


@pytest.mark.section6
def test_the_monitor_gets_every_prediction_and_error_with_latency_in_ms():
    monitor, clock = FakeMonitor(), FakeClock()
    api = _api(TimedModel(CLASSIFIER, clock, 0.005), monitor=monitor, clock=clock)  # 5 ms a model call
    api.predict(ROWS)
    api.predict([ROWS[0]])
    with pytest.raises(ValidationError):
        api.predict([_row(float("nan"))])
    assert len(monitor.predictions) == 2 and len(monitor.errors) == 1
    features, prediction, latency_ms = monitor.predictions[0]
    assert features.shape == (5, WIDTH)
    assert prediction.tolist() == CLASSIFIER.predict(np.array(ROWS)).tolist()
    assert latency_ms == pytest.approx(5.0)
    assert isinstance(monitor.errors[0][1], ValidationError)


# --- 7. Caching ------------------------------------------------------------------------------------------

@pytest.mark.section7
def test_cache_counts_hits_and_misses_per_row():
    model = CountingModel(CLASSIFIER)
    api = _api(model, cache_size=100)
    first = api.predict(ROWS[:3])
    second = api.predict(ROWS[:4])
    assert first["predictions"] == second["predictions"][:3]
    assert api.cache_info() == {"hits": 3, "misses": 4, "size": 4, "max_size": 100}
    assert model.calls == [3, 1]


@pytest.mark.section7
def test_cache_answers_mixed_hits_and_misses_in_the_requests_order():
    model = CountingClassifier(MULTICLASS)
    api = _api(model, cache_size=100)
    api.predict(IRIS.X_test[[0, 1]])
    rows = IRIS.X_test[[5, 0, 6, 1, 7]]
    assert api.predict(rows)["predictions"] == MULTICLASS.predict(rows).tolist()
    assert model.calls == [2, 3]


@pytest.mark.section7
def test_cached_probabilities_are_the_models_own():
    api = _api(cache_size=100)
    first = api.predict_proba(ROWS[:3])["probabilities"]
    mixed = api.predict_proba(ROWS[:5])["probabilities"]  # 3 hits, 2 misses
    np.testing.assert_allclose(first, CLASSIFIER.predict_proba(np.array(ROWS[:3])), rtol=1e-12)
    np.testing.assert_allclose(mixed, CLASSIFIER.predict_proba(np.array(ROWS[:5])), rtol=1e-12)


@pytest.mark.section7
def test_cache_evicts_the_least_recently_used_row():
    model = CountingModel(CLASSIFIER)
    api = _api(model, cache_size=2)
    api.predict([ROWS[0]])
    api.predict([ROWS[1]])
    api.predict([ROWS[0]])  # row 0 is now the most recent
    api.predict([ROWS[2]])  # evicts row 1
    model.calls.clear()
    api.predict([ROWS[0]])
    api.predict([ROWS[1]])
    assert model.calls == [1]
    assert api.cache_info()["size"] == 2


@pytest.mark.section7
def test_a_request_answered_from_the_cache_never_calls_the_model():
    model = CountingModel(CLASSIFIER)
    api = _api(model, cache_size=10)
    api.predict(ROWS)
    assert api.predict(ROWS[::-1])["predictions"] == CLASSIFIER.predict(np.array(ROWS[::-1])).tolist()
    assert model.calls == [5]


# --- 8. Falling back ---------------------------------------------------------------------------------------

@pytest.mark.section8
def test_fallback_answers_when_the_model_raises_and_says_so():
    api = _api(BrokenModel(), fallback_model=SIMPLE)
    response = api.predict(ROWS)
    assert response["fallback"] is True
    assert response["predictions"] == SIMPLE.predict(np.array(ROWS)).tolist()


@pytest.mark.section8
def test_fallback_probabilities_are_the_fallbacks_own():
    response = _api(BrokenModel(), fallback_model=SIMPLE).predict_proba(ROWS)
    np.testing.assert_allclose(response["probabilities"], SIMPLE.predict_proba(np.array(ROWS)), rtol=1e-12)
    assert response["fallback"] is True


@pytest.mark.section8
def test_fallback_is_logged_as_a_warning_naming_the_models_error(caplog):
    caplog.set_level(logging.INFO, logger="deployment.inference")
    _api(BrokenModel(), fallback_model=SIMPLE).predict(ROWS)
    assert _log_lines(caplog, logging.WARNING) == [{"event": "fallback",
                                                    "error": "RuntimeError: the model's weights are gone"}]
    assert [line["outcome"] for line in _log_lines(caplog)] == ["fallback"]


@pytest.mark.section8
def test_a_failing_fallback_is_model_unavailable_naming_both_errors():
    class BrokenFallback(BrokenModel):
        def predict_proba(self, X):
            raise ValueError("no weights either")

    with pytest.raises(ModelUnavailableError, match=r"RuntimeError.*fallback.*ValueError") as error:
        _api(BrokenModel(), fallback_model=BrokenFallback()).predict(ROWS)
    assert isinstance(error.value.__cause__, ValueError)


@pytest.mark.section8
def test_the_model_answers_again_once_it_is_back():
    model = CountingClassifier(CLASSIFIER)
    api = _api(model, fallback_model=SIMPLE)
    model.predict_proba = BrokenModel().predict_proba
    assert api.predict(ROWS)["fallback"] is True
    del model.predict_proba  # the class's own method again
    assert "fallback" not in api.predict(ROWS)


@pytest.mark.section8
def test_fallback_answers_are_never_cached():
    model = CountingClassifier(CLASSIFIER)
    api = _api(model, cache_size=100, fallback_model=SIMPLE)
    model.predict_proba = BrokenModel().predict_proba
    assert api.predict(ROWS[:2])["fallback"] is True
    del model.predict_proba
    response = api.predict(ROWS[:2])
    assert "fallback" not in response
    assert response["predictions"] == CLASSIFIER.predict(np.array(ROWS[:2])).tolist()
    assert api.cache_info()["hits"] == 0


# --- 9. Health -----------------------------------------------------------------------------------------------

@pytest.mark.section9
def test_health_is_healthy_with_the_recent_p95_latency_of_the_model():
    clock = FakeClock()
    api = _api(TimedModel(CLASSIFIER, clock, 0.002), clock=clock)  # every model call takes 2 ms
    for _ in range(10):
        api.predict(ROWS)
    health = api.health()
    assert health["status"] == "healthy" and health["reasons"] == []
    assert health["latency_ms"] == pytest.approx(2.0)
    assert health["error_rate"] == 0.0


@pytest.mark.section9
def test_health_before_any_request_is_healthy_with_zero_latency():
    health = _api(version="1.2.3").health()
    assert (health["status"], health["latency_ms"], health["error_rate"], health["version"]) == (
        "healthy", 0.0, 0.0, "1.2.3")


@pytest.mark.section9
def test_health_uptime_is_the_seconds_since_the_api_was_made():
    clock = FakeClock()
    api = _api(clock=clock)
    clock.advance(7.5)
    assert api.health()["uptime_s"] == pytest.approx(7.5)


@pytest.mark.section9
def test_health_is_degraded_when_p95_latency_exceeds_the_slo():
    clock = FakeClock()
    api = _api(TimedModel(CLASSIFIER, clock, 0.2), clock=clock, latency_slo_ms=50)
    for _ in range(5):
        api.predict(ROWS)
    health = api.health()
    assert health["status"] == "degraded"
    assert health["latency_ms"] == pytest.approx(200.0)
    assert health["reasons"] == ["p95 latency 200.0 ms is above the 50 ms SLO"]


@pytest.mark.section9
def test_health_latency_is_the_95th_percentile_of_the_recent_model_calls():
    clock = FakeClock()
    model = TimedModel(CLASSIFIER, clock, 0.0)
    api = _api(model, clock=clock, health_window=20)
    for milliseconds in range(1, 41):  # 1 ms, 2 ms, ... 40 ms: the window keeps the last 20
        model.seconds = milliseconds / 1000
        api.predict(ROWS[:1])
    assert api.health()["latency_ms"] == pytest.approx(np.percentile(np.arange(21, 41), 95))


@pytest.mark.section9
def test_health_is_degraded_when_the_error_rate_is_high():
    model = CountingClassifier(CLASSIFIER)
    api = _api(model, max_error_rate=0.1)
    api.predict(ROWS)
    model.predict_proba = BrokenModel().predict_proba
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            api.predict(ROWS)
    del model.predict_proba
    health = api.health()
    assert health["status"] == "degraded"
    assert health["error_rate"] == pytest.approx(2 / 3)
    assert health["reasons"] == ["error rate 66.7% is above 10.0%"]


@pytest.mark.section9
def test_health_is_degraded_while_the_fallback_answers():
    api = _api(BrokenModel(), fallback_model=SIMPLE, max_error_rate=1.0)
    api.predict(ROWS)
    health = api.health()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["the model fails a probe (RuntimeError); the fallback answers",
                                 "the fallback answered the last model call"]


@pytest.mark.section9
def test_health_is_healthy_again_once_the_model_answers_after_the_fallback():
    model = CountingClassifier(CLASSIFIER)
    api = _api(model, fallback_model=SIMPLE, max_error_rate=1.0)
    model.predict_proba = BrokenModel().predict_proba
    api.predict(ROWS)
    assert "the fallback answered the last model call" in api.health()["reasons"]
    del model.predict_proba
    api.predict(ROWS)
    assert (api.health()["status"], api.health()["reasons"]) == ("healthy", [])


@pytest.mark.section9
def test_health_is_unhealthy_when_nothing_answers_a_probe():
    health = _api(BrokenModel()).health()
    assert health["status"] == "unhealthy"
    assert health["reasons"] == ["the model fails a probe (RuntimeError) and nothing else answers"]


@pytest.mark.section9
def test_client_mistakes_do_not_degrade_health():
    api = _api()
    for _ in range(20):
        with pytest.raises(ValidationError):
            api.predict([_row("x")])
    assert api.health()["status"] == "healthy"


@pytest.mark.section9
def test_a_row_the_model_refuses_leaves_health_healthy():
    api = _api()
    with pytest.raises(ValidationError):
        api.predict([[HUGE] * WIDTH])
    assert api.health()["status"] == "healthy"


# --- over real HTTP ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    """The classifier behind a key, served on a free loopback port."""
    recorder = LatencyRecorder()
    api = InferenceAPI(CLASSIFIER, APIConfig(version="3.1.0", api_keys={"k"}, max_batch_size=100), monitor=recorder)
    limits = ServerLimits(failed_keys_per_minute=10_000)  # these tests send many keyless requests on purpose
    with BackgroundServer(create_app(api, name="cancer", limits=limits)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers={"X-API-Key": "k"}, timeout=10) as http:
        yield http


def _assert_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "type"} and body["type"] == kind
    return body["error"]


@pytest.mark.section10
def test_http_predict_answers_like_the_class(client):
    response = client.post("/predict", json={"instances": ROWS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == CLASSIFIER.predict(np.array(ROWS)).tolist()
    assert body["version"] == "3.1.0"
    assert body["timestamp"].endswith("Z")
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))


@pytest.mark.section10
def test_http_kserve_route_and_model_metadata(client):
    response = client.post("/v1/models/cancer:predict", json={"instances": ROWS[:1]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == CLASSIFIER.predict(np.array(ROWS[:1])).tolist()
    metadata = client.get("/v1/models/cancer").json()
    assert metadata == {"name": "cancer", "version": "3.1.0", "ready": True, "n_features": WIDTH}
    _assert_error(client.post("/v1/models/other:predict", json={"instances": ROWS}), 404, "ModelNotFoundError")


@pytest.mark.section10
def test_http_bearer_key_works_and_a_missing_or_wrong_key_is_401(server, client):
    bearer = httpx.post(server.url + "/predict", json={"instances": ROWS}, headers={"Authorization": "Bearer k"})
    assert bearer.status_code == 200, bearer.text
    missing = httpx.post(server.url + "/predict", json={"instances": ROWS})
    _assert_error(missing, 401, "AuthenticationError")
    wrong = httpx.post(server.url + "/predict", json={"instances": ROWS}, headers={"X-API-Key": "nope"})
    _assert_error(wrong, 401, "AuthenticationError")


@pytest.mark.section10
def test_http_bad_input_is_400_naming_row_and_column(client):
    message = _assert_error(client.post("/predict", json={"instances": [ROWS[0], _row(True, 7)]}),
                            400, "ValidationError")
    assert "row 1, column 7" in message
    nan = client.post("/predict", content=b'{"instances": [[' + b",".join([b"NaN"] * WIDTH) + b"]]}",
                      headers={"content-type": "application/json"})
    assert "row 0, column 0" in _assert_error(nan, 400, "ValidationError")


@pytest.mark.section10
def test_http_too_many_rows_is_413(client):
    _assert_error(client.post("/predict", json={"instances": ROWS * 21}), 413, "BatchTooLargeError")


@pytest.mark.section10
@pytest.mark.parametrize("model, where", [(REGRESSOR, r"row 0\b"), (MULTICLASS, r"row 0\b"), (CLASSIFIER, r"X\[0, ")],
                         ids=["regressor-output", "multiclass-probabilities", "pipeline-refuses"])
def test_http_non_finite_prediction_is_a_client_error_not_a_500(model, where):
    api = InferenceAPI(model, APIConfig())
    with BackgroundServer(create_app(api)) as running:
        response = httpx.post(running.url + "/predict", json={"instances": [[HUGE] * model.n_features_in_]})
        health = httpx.get(running.url + "/health")
    assert re.search(where, _assert_error(response, 400, "ValidationError"))
    assert health.json()["status"] == "healthy"


@pytest.mark.section10
def test_http_rate_limit_is_429_with_retry_after_rounded_up():
    api = InferenceAPI(CLASSIFIER, APIConfig(rate_limit_rps=0.01, burst=1))  # a token every 100 s
    with BackgroundServer(create_app(api)) as running:
        first = httpx.post(running.url + "/predict", json={"instances": ROWS})
        second = httpx.post(running.url + "/predict", json={"instances": ROWS})
    assert first.status_code == 200, first.text
    _assert_error(second, 429, "RateLimitError")
    assert second.headers["Retry-After"] == "100"  # 99.x s to wait (the second request came a moment later)


@pytest.mark.section10
def test_http_failing_model_is_503_and_health_503():
    api = InferenceAPI(BrokenModel(), APIConfig())
    with BackgroundServer(create_app(api)) as running:
        predict = httpx.post(running.url + "/predict", json={"instances": ROWS})
        health = httpx.get(running.url + "/health")
    _assert_error(predict, 503, "ModelUnavailableError")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"


@pytest.mark.section10
def test_http_fallback_answers_and_health_is_degraded_but_200():
    api = InferenceAPI(BrokenModel(), APIConfig(fallback_model=CLASSIFIER))
    with BackgroundServer(create_app(api)) as running:
        predict = httpx.post(running.url + "/predict", json={"instances": ROWS})
        health = httpx.get(running.url + "/health")
    assert predict.status_code == 200 and predict.json()["fallback"] is True
    assert health.status_code == 200 and health.json()["status"] == "degraded"


@pytest.mark.section10
def test_http_health_is_200_when_healthy(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


@pytest.mark.section10
def test_http_metrics_are_the_monitors_prometheus_text_after_the_request():
    recorder = LatencyRecorder(clock=FakeClock())  # time stands still: the rates are the same at every reading
    with BackgroundServer(create_app(InferenceAPI(CLASSIFIER, APIConfig(), monitor=recorder))) as running:
        assert httpx.post(running.url + "/predict", json={"instances": ROWS}).status_code == 200
        response = httpx.get(running.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert recorder.get_metrics()["total_predictions"] == 1

    def model_lines(text):  # the monitor's own samples (process_* metrics move between two readings)
        return [line for line in text.splitlines() if line.startswith("model_")]

    assert model_lines(response.text) and model_lines(response.text) == model_lines(recorder.to_prometheus())
    list(text_string_to_metric_families(response.text))  # parses as Prometheus text


@pytest.mark.section11
def test_http_micro_batching_answers_concurrent_requests_in_fewer_model_calls():
    model = CountingModel(CLASSIFIER)
    api = InferenceAPI(model, APIConfig())
    app = create_app(api, micro_batching=True, max_wait_ms=50)
    rows = CANCER.X_test[:32].tolist()

    async def send_all(url):
        async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=32)) as http:
            return await asyncio.gather(*(http.post("/predict", json={"instances": [row]}) for row in rows))

    with BackgroundServer(app) as running:
        responses = asyncio.run(send_all(running.url))
    assert [r.json()["predictions"][0] for r in responses] == CLASSIFIER.predict(np.array(rows)).tolist()
    assert len(model.calls) < len(rows) and sum(model.calls) == len(rows)


@pytest.mark.section11
def test_http_without_micro_batching_each_request_is_one_model_call():
    model = CountingModel(CLASSIFIER)
    with BackgroundServer(create_app(InferenceAPI(model, APIConfig()), micro_batching=False)) as running:
        for row in ROWS:
            assert httpx.post(running.url + "/predict", json={"instances": [row]}).status_code == 200
    assert model.calls == [1] * len(ROWS)


_json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers()
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)
_bad_rows = st.lists(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(), st.text(max_size=3),
              st.integers(min_value=-10**400, max_value=10**400), st.lists(st.floats(), max_size=2)),
    min_size=0, max_size=WIDTH + 2,
)
_malformed_bodies = st.one_of(
    st.binary(max_size=64),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["instances", "inputs", "rows"]), _json_values, max_size=2)
    .map(lambda v: json.dumps(v).encode()),
    st.lists(_bad_rows, min_size=0, max_size=4).map(lambda rows: json.dumps({"instances": rows}).encode()),
)


@pytest.mark.section10
def test_http_fuzzed_malformed_bodies_never_get_a_5xx(client):
    sent = []

    @settings(max_examples=500, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(body=_malformed_bodies)
    def one_body(body):
        response = client.post("/predict", content=body)
        sent.append(response.status_code)
        assert response.status_code < 500, (body[:200], response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"error", "type"}

    one_body()
    assert len(sent) >= 500


@pytest.mark.section12
def test_http_stopping_the_server_finishes_the_requests_in_flight():
    started = threading.Event()

    class SlowModel(CountingModel):
        def predict(self, X):
            started.set()
            time.sleep(0.5)
            return super().predict(X)

    running = BackgroundServer(create_app(InferenceAPI(SlowModel(CLASSIFIER), APIConfig()))).start()
    replies = []
    sender = threading.Thread(target=lambda: replies.append(
        httpx.post(running.url + "/predict", json={"instances": ROWS}, timeout=10)))
    sender.start()
    try:
        deadline = time.monotonic() + 5
        while not started.wait(0.02) and sender.is_alive() and time.monotonic() < deadline:
            pass
        assert started.is_set(), f"the request never reached the model: {replies and replies[0].text}"
    finally:
        running.stop()
        sender.join(10)
    assert not running.running
    assert replies and replies[0].status_code == 200, replies and replies[0].text


# --- load and the command line -------------------------------------------------------------------

@pytest.mark.section11
def test_load_test_in_process_counts_every_request_and_its_latency():
    result = run_load_test(_api(), CANCER.X_test, n_requests=200, concurrency=4, progress=False)
    assert result.n_requests == 200 and result.ok == 200 and result.errors == {}
    assert len(result.latencies_ms) == 200 and (result.latencies_ms > 0).all()
    assert result.p50_ms <= result.p95_ms <= result.p99_ms
    assert result.throughput_rps > 0


@pytest.mark.section11
def test_load_test_over_http_counts_errors_by_type(server):
    result = run_load_test(server.url + "/predict", CANCER.X_test, n_requests=60, concurrency=6, progress=False)
    assert result.errors == {"HTTP 401": 60}  # no key sent
    keyed = run_load_test(server.url + "/predict", CANCER.X_test, n_requests=60, concurrency=6,
                          api_key="k", progress=False)
    assert keyed.ok == 60 and keyed.statuses == {200: 60}


@pytest.mark.section11
def test_loadtest_command_reports_every_request_as_json(server):
    command = [sys.executable, "-m", "deployment", "loadtest", server.url + "/predict", "--requests", "40",
               "--concurrency", "4", "--features", str(WIDTH), "--api-key", "k", "--json"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads(finished.stdout)
    assert (summary["requests"], summary["ok"], summary["errors"]) == (40, 40, 0)
    assert 0 < summary["p50_ms"] <= summary["p99_ms"]


@pytest.mark.section12
def test_serve_command_serves_a_saved_model_and_stops_cleanly_on_sigterm(tmp_path):
    from deployment import save_model

    path = save_model(CLASSIFIER, tmp_path / "cancer.json", version="2.5.0")
    process = subprocess.Popen(  # port 0: the server binds a free port itself and prints its URL
        [sys.executable, "-m", "deployment", "serve", str(path), "--port", "0", "--api-key", "secret-key-7",
         "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first_line = process.stdout.readline()  # generous: waits as long as a loaded machine needs
        match = re.search(r"on (http://127\.0\.0\.1:\d+) ", first_line)
        assert match, (first_line, process.poll() is None or process.communicate()[1][-2000:])
        url = match.group(1)
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the server did not answer within 90 s"
            try:
                httpx.get(url + "/v1/models/cancer", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        response = httpx.post(url + "/v1/models/cancer:predict", json={"instances": ROWS},
                              headers={"X-API-Key": "secret-key-7"})
        assert response.status_code == 200, response.text
        assert response.json()["version"] == "2.5.0"
        assert "# TYPE" in httpx.get(url + "/metrics").text
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    assert "SIGTERM" in stdout
    # The request log (stderr) holds the request's JSON line, written before the process ended, never the key.
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [(line["event"], line["outcome"], line["rows"]) for line in lines] == [("predict", "ok", len(ROWS))]
    assert "secret-key-7" not in stderr
