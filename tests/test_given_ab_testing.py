"""The given code of Part 5: argument checks and bookkeeping around the student's functions.

Not graded (unmarked): these checks run before any student code, so they
pass before Part 5 is written. They guard what every graded Part 5 test and
notebook 05 rely on: bad settings are refused with one clear sentence, and
nothing is half-built.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deployment import (
    ABResult,
    ABTest,
    CanaryRollout,
    RoutingTable,
    ShadowDeployment,
    TrafficRouter,
    ValidationError,
    VariantStats,
    predictions_of,
    required_sample_size,
    routed_answer,
    simulate_ab_test,
)
from deployment.recorder import LatencyRecorder


class Model:
    def predict(self, X):
        return np.zeros(len(X))


X = np.zeros((10, 2))
Y = np.zeros(10, dtype=int)


# -- routing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("variants, named", [
    ({}, "variant"),
    ([Model()], "variant"),
    ({"": Model()}, "non-empty string"),
    ({3: Model()}, "non-empty string"),
    ({"a": Model(), "b": object()}, "'b'"),
], ids=["none", "a-list", "empty-name", "int-name", "no-predict"])
def test_router_refuses_variants_it_cannot_route_to(variants, named):
    with pytest.raises(ValidationError, match=named):
        TrafficRouter(variants, {"a": 0.5, "b": 0.5})


def test_routed_answer_names_the_variant_of_an_array_or_a_dict():
    assert routed_answer("v2", np.array([1, 0])) == {"variant": "v2", "predictions": [1, 0]}
    assert routed_answer("v2", {"predictions": [1], "version": "2.0.0"}) == {
        "predictions": [1], "version": "2.0.0", "variant": "v2"}


def test_predictions_of_reads_an_array_or_a_dict():
    assert predictions_of({"predictions": [3, 4]}).tolist() == [3, 4]
    assert predictions_of(np.array([5])).tolist() == [5]


def test_routing_table_is_a_named_tuple_of_weights_names_and_edges():
    table = RoutingTable({"a": 1.0}, ("a",), (1.0,))
    assert table._fields == ("weights", "names", "edges")
    assert table.edges == (1.0,)


# -- experiment -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"metric": "revenue"}, {"alpha": 0.0}, {"alpha": 1.5}, {"alpha": math.nan}, {"min_samples": 1},
    {"min_samples": 2.5}, {"treatment": "control"},
], ids=["metric", "alpha-0", "alpha-above-1", "alpha-nan", "min-samples-1", "min-samples-float", "same-names"])
def test_bad_test_settings_are_refused(kwargs):
    with pytest.raises(ValidationError):
        ABTest(**{"control": "control", "treatment": "treatment", **kwargs})


@pytest.mark.parametrize("metric, counts", [("conversion", {"control": 2, "treatment": 0}),
                                            ("numeric", {"control": 2, "treatment": 1})])
def test_result_needs_outcomes_in_both_variants(metric, counts):
    test = ABTest("control", "treatment", metric=metric)
    for name, count in counts.items():
        test.stats[name] = VariantStats(count=count, mean=0.5, m2=0.5 if count > 1 else 0.0)
    with pytest.raises(ValidationError, match="(?i)needs at least"):
        test.result()


def test_result_refuses_an_alpha_outside_zero_and_one():
    test = ABTest("control", "treatment")
    with pytest.raises(ValidationError, match="alpha"):
        test.result(alpha=1.0)


def test_variance_needs_two_values():
    assert math.isnan(VariantStats(count=1, mean=2.0, m2=0.0).variance)
    assert VariantStats(count=3, mean=2.0, m2=4.0).variance == 2.0


def test_a_result_is_significant_below_alpha():
    fields = dict(control="a", treatment="b", metric="conversion", test="two-proportion z-test",
                  counts={}, means={}, confidence_intervals={}, absolute_lift=0.0,
                  lift_confidence_interval=(0.0, 0.0), relative_lift=0.0, statistic=0.0,
                  alpha=0.05, min_samples=2, decision="keep control")
    assert ABResult(p_value=0.049, **fields).significant
    assert not ABResult(p_value=0.05, **fields).significant


@pytest.mark.parametrize("p1, alpha, power, named", [
    (0.0, 0.05, 0.8, "baseline_rate"), (1.0, 0.05, 0.8, "baseline_rate"), (0.1, 0.0, 0.8, "alpha"),
    (0.1, 0.05, 1.0, "power"), (0.1, math.nan, 0.8, "alpha"),
])
def test_required_sample_size_refuses_rates_outside_zero_and_one(p1, alpha, power, named):
    with pytest.raises(ValidationError, match=named):
        required_sample_size(p1, 0.01, alpha=alpha, power=power)


# -- simulation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"n_users": 0}, {"n_users": 2.5}, {"batch_size": 0}, {"conversion_if_correct": 1.5},
    {"conversion_if_wrong": math.nan},
], ids=["no-users", "float-users", "no-batch", "rate-above-1", "rate-nan"])
def test_simulation_refuses_bad_settings(kwargs):
    # Bad weights are refused too, by the router (TrafficRouter.set_weights, graded in section 2).
    with pytest.raises(ValidationError, match=next(iter(kwargs))):
        simulate_ab_test({"a": Model(), "b": Model()}, X, Y, **{"n_users": 100, **kwargs})


@pytest.mark.parametrize("variants", [{"a": Model()}, {"a": Model(), "b": Model(), "c": Model()}])
def test_simulation_compares_exactly_two_versions(variants):
    with pytest.raises(ValidationError, match="two"):
        simulate_ab_test(variants, X, Y, n_users=100)


@pytest.mark.parametrize("rows, labels", [(np.zeros(10), Y), (X, Y[:5]), (X[:0], Y[:0])],
                         ids=["1-D", "fewer-labels", "empty"])
def test_simulation_refuses_rows_that_do_not_match_labels(rows, labels):
    with pytest.raises(ValidationError, match="2-D"):
        simulate_ab_test({"a": Model(), "b": Model()}, rows, labels, n_users=100)


# -- rollout --------------------------------------------------------------------------------------

def _canary(**kwargs):
    return CanaryRollout(Model(), Model(), baseline_monitor=LatencyRecorder(), candidate_monitor=LatencyRecorder(),
                         **kwargs)


@pytest.mark.parametrize("steps", [(), (0.1, 0.05, 1.0), (0.01, 0.5), (0.0, 1.0), (0.5, 1.5), (0.5, 0.5, 1.0)])
def test_canary_refuses_bad_steps(steps):
    with pytest.raises(ValidationError, match="step"):
        _canary(steps=steps)


@pytest.mark.parametrize("kwargs", [
    {"max_error_rate_increase": -0.01}, {"max_p95_latency_ratio": 0.9}, {"max_p95_latency_ratio": math.nan},
    {"min_step_duration_s": -1}, {"min_requests": 0}, {"names": ("v1", "v1")}, {"names": ("v1",)},
])
def test_canary_refuses_bad_settings(kwargs):
    with pytest.raises(ValidationError):
        _canary(**kwargs)


def test_canary_refuses_a_monitor_without_get_metrics():
    with pytest.raises(ValidationError, match="get_metrics"):
        CanaryRollout(Model(), Model(), baseline_monitor=LatencyRecorder(), candidate_monitor=object())


def _built(make):
    """``make()``, or skip the test when it needs the router the student writes (Part 5, section 2)."""
    try:
        return make()
    except NotImplementedError:
        pytest.skip("needs TrafficRouter.set_weights (Part 5, section 2)")


def test_canary_checks_only_after_it_starts_and_starts_once():
    rollout = _built(_canary)
    with pytest.raises(ValidationError, match="start"):
        rollout.check()
    rollout.start()
    with pytest.raises(ValidationError, match="already started"):
        rollout.start()


def test_canary_reads_missing_metrics_as_nan():
    class Quiet:
        def get_metrics(self):
            return {"error_rate": None}

    rollout = _built(lambda: CanaryRollout(Model(), Model(), baseline_monitor=Quiet(),
                                           candidate_monitor=LatencyRecorder()))
    metrics = rollout.metrics()
    assert math.isnan(metrics["baseline"]["error_rate"]) and math.isnan(metrics["baseline"]["p95_latency_ms"])
    assert metrics["candidate"]["error_rate"] == 0.0


@pytest.mark.parametrize("kwargs", [{"atol": -1.0}, {"atol": math.nan}, {"log_size": 0}, {"log_size": 2.5}])
def test_shadow_refuses_bad_settings(kwargs):
    with pytest.raises(ValidationError):
        ShadowDeployment(Model(), Model(), **kwargs)


def test_shadow_refuses_a_version_without_predict():
    with pytest.raises(ValidationError, match="predict"):
        ShadowDeployment(Model(), object())


def test_shadow_agreement_is_nan_before_any_request():
    serving = ShadowDeployment(Model(), Model())
    assert math.isnan(serving.agreement_rate())
    assert serving.summary()["requests"] == 0
