"""Part 5: routing users, A/B tests decided by statistics, canary and shadow rollouts.

Read with notebooks/05_ab_testing.ipynb. Run just this part with
``pytest -m part5`` (or ``make grade PART=5``).
"""

from __future__ import annotations

import hashlib
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from bisect import bisect_right

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from deployment import (
    ABTest,
    CanaryRollout,
    LogisticRegression,
    Pipeline,
    ShadowDeployment,
    StandardScaler,
    TrafficRouter,
    ValidationError,
    VariantStats,
    load_dataset,
    required_sample_size,
    simulate_ab_test,
    two_proportion_ztest,
    user_bucket,
    welch_ttest,
)

pytestmark = pytest.mark.part5

CANCER = load_dataset("breast_cancer", seed=0)
V1 = LogisticRegression(C=1e-4).fit(CANCER.X_train, CANCER.y_train)  # "v1.1.0": about 89% right
V2 = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.1))]).fit(
    CANCER.X_train, CANCER.y_train)  # "v2.0.0": about 96% right
USERS = [f"user-{i}" for i in range(20_000)]


class Constant:
    """A model that answers ``value`` for every row."""

    def __init__(self, value):
        self.value = value
        self.calls = 0

    def predict(self, X):
        self.calls += 1
        return np.full(len(np.asarray(X)), self.value)


def _router(weights=None, **kwargs):
    weights = weights or {"a": 0.5, "b": 0.5}
    return TrafficRouter({name: Constant(i) for i, name in enumerate(weights)}, weights, **kwargs)


# -- 2. Routing users to versions ---------------------------------------------------------------

def test_route_is_sticky_for_the_same_user():
    router = _router()
    first = [router.route(user) for user in USERS[:500]]
    assert [router.route(user) for user in USERS[:500]] == first
    assert set(first) == {"a", "b"}


def test_route_is_stable_across_processes():
    router = _router({"a": 0.3, "b": 0.3, "c": 0.4}, salt="exp-7")
    here = [router.route(user) for user in USERS[:200]]
    code = (
        "import json, sys\n"
        "from deployment import TrafficRouter\n"
        "class M:\n    def predict(self, X): return X\n"
        "r = TrafficRouter({'a': M(), 'b': M(), 'c': M()}, {'a': 0.3, 'b': 0.3, 'c': 0.4}, salt='exp-7')\n"
        "print(json.dumps([r.route(f'user-{i}') for i in range(200)]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different salt for Python's own hash()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(here).replace("'", '"')


def test_user_bucket_is_in_unit_interval_and_uniform():
    buckets = np.array([user_bucket(user) for user in USERS])
    assert ((buckets >= 0) & (buckets < 1)).all()
    assert stats.kstest(buckets, "uniform").pvalue > 0.01


def test_user_bucket_is_the_documented_blake2b_hash():
    # Any server, in any language, can route the same way from the docstring alone.
    digest = hashlib.blake2b(b"exp-1:alice", digest_size=8).digest()
    assert user_bucket("alice", "exp-1") == (int.from_bytes(digest, "big") >> 11) / 2**53
    assert user_bucket(7, "exp-1") == user_bucket("7", "exp-1")


def test_user_bucket_depends_on_the_salt():
    same = sum(user_bucket(u, "exp-1") == user_bucket(u, "exp-1") for u in USERS[:100])
    different = sum(user_bucket(u, "exp-1") != user_bucket(u, "exp-2") for u in USERS[:100])
    assert same == 100 and different == 100


def test_route_picks_the_slice_of_the_cumulative_weights_that_holds_the_bucket():
    router = _router({"a": 0.2, "b": 0.5, "c": 0.3}, salt="s")
    edges = [0.2, 0.7]  # slices [0, 0.2), [0.2, 0.7), [0.7, 1)
    for user in USERS[:1000]:
        expected = "abc"[bisect_right(edges, user_bucket(user, "s"))]
        assert router.route(user) == expected


def test_split_matches_the_weights_chi_squared():
    weights = {"a": 0.1, "b": 0.3, "c": 0.6}
    router = _router(weights)
    names = [router.route(user) for user in USERS]
    observed = [names.count(name) for name in weights]
    expected = [w * len(USERS) for w in weights.values()]
    assert stats.chisquare(observed, expected).pvalue > 0.01


def test_zero_weight_variant_gets_no_users():
    router = _router({"a": 0.0, "b": 1.0, "c": 0.0})
    assert {router.route(user) for user in USERS[:2000]} == {"b"}


BAD_WEIGHTS = {  # for variants "a" and "b"
    "negative": {"a": -0.1, "b": 1.1},
    "sum-above-1": {"a": 0.5, "b": 0.6},
    "sum-below-1": {"a": 0.5, "b": 0.4},
    "missing-name": {"a": 1.0},
    "extra-name": {"a": 0.5, "b": 0.25, "c": 0.25},
    "wrong-name": {"a": 0.5, "x": 0.5},
    "string": {"a": "0.5", "b": 0.5},
    "none": {"a": None, "b": 1.0},
    "bool": {"a": True, "b": 0.0},
    "nan": {"a": math.nan, "b": 0.5},
    "infinite": {"a": math.inf, "b": -math.inf},
    "not-a-mapping": [0.5, 0.5],
}


@pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValidationError):
        TrafficRouter({"a": Constant(0), "b": Constant(1)}, weights)


def test_a_bad_weight_is_refused_naming_its_variant():
    with pytest.raises(ValidationError, match="'b'"):
        TrafficRouter({"a": Constant(0), "b": Constant(1)}, {"a": 1.5, "b": -0.5})


@pytest.mark.parametrize("variants", [{}, [Constant(0)], {"": Constant(0)}], ids=["none", "a-list", "empty-name"])
def test_router_without_named_variants_is_refused(variants):
    with pytest.raises(ValidationError):
        TrafficRouter(variants, {"": 1.0})


def test_weights_summing_to_one_within_rounding_are_accepted():
    names = [f"v{i}" for i in range(10)]
    router = TrafficRouter({n: Constant(i) for i, n in enumerate(names)}, {n: 0.1 for n in names})
    assert sum(router.weights.values()) != 1.0  # 0.1 ten times is 0.9999999999999999
    assert {router.route(user) for user in USERS[:2000]} == set(names)


def test_variant_without_predict_is_refused():
    with pytest.raises(ValidationError):
        TrafficRouter({"a": Constant(0), "b": object()}, {"a": 0.5, "b": 0.5})


def test_set_weights_changes_the_split_at_run_time():
    router = _router()
    router.set_weights({"a": 1.0, "b": 0.0})
    assert {router.route(user) for user in USERS[:1000]} == {"a"}
    assert router.weights == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_set_weights_refuses_bad_weights_and_keeps_the_old_ones(weights):
    router = _router({"a": 0.25, "b": 0.75})
    before = [router.route(user) for user in USERS[:500]]
    with pytest.raises(ValidationError):
        router.set_weights(weights)
    assert router.weights == {"a": 0.25, "b": 0.75}
    assert [router.route(user) for user in USERS[:500]] == before


def test_growing_the_first_variants_weight_only_moves_users_to_it():
    router = _router({"new": 0.05, "old": 0.95})
    on_new_before = {u for u in USERS if router.route(u) == "new"}
    router.set_weights({"new": 0.25, "old": 0.75})
    on_new_after = {u for u in USERS if router.route(u) == "new"}
    assert on_new_before < on_new_after


def test_routing_while_weights_change_in_another_thread_never_fails():
    router = _router({"a": 0.5, "b": 0.5})
    seen, errors, passes, stop = set(), [], [0, 0], threading.Event()

    def route_many(worker: int):
        try:
            while not stop.is_set():
                seen.update(router.route(user) for user in USERS[:200])
                passes[worker] += 1
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so routing really runs between weight changes
    try:
        workers = [threading.Thread(target=route_many, args=(worker,)) for worker in range(2)]
        for worker in workers:
            worker.start()
        deadline, i = time.monotonic() + 30, 0
        while min(passes) < 20 and time.monotonic() < deadline:
            router.set_weights({"a": i % 201 / 200, "b": 1 - i % 201 / 200})
            i += 1
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
    finally:
        sys.setswitchinterval(interval)
    assert not errors and seen <= {"a", "b"}
    assert min(passes) >= 20 and seen == {"a", "b"}


def test_predict_answers_with_the_routed_variant_and_names_it():
    router = TrafficRouter({"v1.1.0": V1, "v2.0.0": V2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
    for user in USERS[:20]:
        answer = router.predict(CANCER.X_test[:3], user_id=user)
        assert answer["variant"] == router.route(user)
        expected = (V1 if answer["variant"] == "v1.1.0" else V2).predict(CANCER.X_test[:3])
        assert answer["predictions"] == expected.tolist()


def test_predict_keeps_the_fields_of_an_api_answer():
    class Api:
        def predict(self, instances):
            return {"predictions": [7] * len(instances), "version": "2.0.0", "timestamp": "now"}

    router = TrafficRouter({"api": Api()}, {"api": 1.0})
    answer = router.predict([[1.0], [2.0]], user_id="alice")
    assert answer == {"predictions": [7, 7], "version": "2.0.0", "timestamp": "now", "variant": "api"}


def test_predict_through_part2_inference_apis_names_variant_and_version():
    from deployment import APIConfig, InferenceAPI

    apis = {"v1.1.0": InferenceAPI(V1, APIConfig(version="1.1.0")),
            "v2.0.0": InferenceAPI(V2, APIConfig(version="2.0.0"))}
    router = TrafficRouter(apis, {"v1.1.0": 0.5, "v2.0.0": 0.5})
    for user in USERS[:10]:
        answer = router.predict(CANCER.X_test[:2].tolist(), user_id=user)
        assert answer["variant"] == router.route(user)
        assert answer["version"] == answer["variant"][1:]
        expected = (V1 if answer["variant"] == "v1.1.0" else V2).predict(CANCER.X_test[:2])
        assert answer["predictions"] == expected.tolist()


# -- 3. Recording outcomes ------------------------------------------------------------------------

def test_running_stats_stay_exact_on_large_numbers_in_batches():
    # Summing squares would lose about 1e-4 of the variance here; Welford's update does not.
    rng = np.random.default_rng(3)
    values = 1e6 + rng.normal(0, 1, 10_001)
    summary = VariantStats()
    for chunk in np.array_split(values, 37):
        summary.add(chunk)
    summary.add(values[:0])
    assert summary.count == values.size
    assert summary.mean == pytest.approx(statistics.fmean(values), rel=1e-15)
    assert summary.variance == pytest.approx(statistics.variance(values.tolist()), rel=1e-9)


def test_counts_means_and_lift_of_conversions():
    test = ABTest("control", "treatment")
    test.record_many("control", [1] * 10 + [0] * 90)
    test.record_many("treatment", [1] * 15 + [0] * 85)
    test.record("treatment", 1)
    result = test.result()
    assert result.counts == {"control": 100, "treatment": 101}
    assert result.means["control"] == pytest.approx(0.10)
    assert result.means["treatment"] == pytest.approx(16 / 101)
    assert result.absolute_lift == pytest.approx(16 / 101 - 0.10)
    assert result.relative_lift == pytest.approx((16 / 101 - 0.10) / 0.10)


@pytest.mark.parametrize("value", [2, -1, 0.5, math.nan, "1", None])
def test_conversion_outcomes_must_be_zero_or_one(value):
    test = ABTest("control", "treatment")
    with pytest.raises(ValidationError):
        test.record_many("control", [0, 1, value])
    assert test.counts() == {"control": 0, "treatment": 0}


@pytest.mark.parametrize("values", [[math.inf], ["3.5"], [None]], ids=["infinite", "string", "none"])
def test_numeric_outcomes_must_be_finite_numbers(values):
    test = ABTest("control", "treatment", metric="numeric")
    with pytest.raises(ValidationError):
        test.record_many("treatment", [1.0] + values)
    assert test.counts() == {"control": 0, "treatment": 0}


def test_outcomes_come_as_numbers_lists_arrays_or_iterables():
    test = ABTest("control", "treatment")
    test.record("control", 1)
    test.record_many("control", np.array([True, False]))
    test.record_many("control", (value for value in [0, 0, 1]))
    assert test.counts() == {"control": 6, "treatment": 0}
    assert test.stats["control"].mean == pytest.approx(0.5)  # 1, True, False, 0, 0, 1
    test.record_many("treatment", {1})  # a set, or dict.values(): any iterable
    test.record_many("treatment", {"u1": 0, "u2": 1}.values())
    assert test.counts() == {"control": 6, "treatment": 3}


def test_unknown_variant_is_refused():
    test = ABTest("control", "treatment")
    with pytest.raises(ValidationError):
        test.record("v3", 1)


@pytest.mark.parametrize("kwargs", [
    {"metric": "revenue"}, {"alpha": 0.0}, {"alpha": 1.5}, {"min_samples": 1}, {"treatment": "control"},
])
def test_bad_test_settings_are_refused(kwargs):
    with pytest.raises(ValidationError):
        ABTest(**{"control": "control", "treatment": "treatment", **kwargs})


def test_result_needs_outcomes_in_both_variants():
    test = ABTest("control", "treatment")
    test.record_many("control", [0, 1])
    with pytest.raises(ValidationError):
        test.result()


# -- 4. Deciding with a significance test ---------------------------------------------------------

@pytest.mark.parametrize("x_t, n_t, x_c, n_c", [
    (120, 1000, 100, 1000), (5, 40, 9, 37), (4_980, 50_000, 4_700, 49_000), (1, 3, 0, 5),
])
def test_two_proportion_ztest_matches_statsmodels(x_t, n_t, x_c, n_c):
    z, p = two_proportion_ztest(x_t, n_t, x_c, n_c)
    expected_z, expected_p = proportions_ztest([x_t, x_c], [n_t, n_c])
    assert z == pytest.approx(expected_z, rel=1e-9, abs=1e-12)
    assert p == pytest.approx(expected_p, rel=1e-9, abs=1e-12)


def test_two_proportion_ztest_without_variation_says_no_difference():
    assert two_proportion_ztest(0, 50, 0, 70) == (0.0, 1.0)


@pytest.mark.parametrize("x_t, n_t, x_c, n_c", [(11, 10, 5, 10), (-1, 10, 5, 10), (0, 0, 5, 10), (2.5, 10, 5, 10)],
                         ids=["more-successes-than-users", "negative", "no-users", "not-an-integer"])
def test_two_proportion_ztest_refuses_impossible_counts(x_t, n_t, x_c, n_c):
    with pytest.raises(ValidationError):
        two_proportion_ztest(x_t, n_t, x_c, n_c)


def test_welch_ttest_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10.3, 2.0, 40), rng.normal(10.0, 5.0, 25)
    t, df, p = welch_ttest(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size)
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(expected.statistic, rel=1e-9)
    assert df == pytest.approx(expected.df, rel=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)


def test_conversion_result_matches_statsmodels():
    rng = np.random.default_rng(2)
    control, treatment = rng.random(3_000) < 0.10, rng.random(2_800) < 0.12
    test = ABTest("control", "treatment", alpha=0.05)
    test.record_many("control", control.astype(int))
    test.record_many("treatment", treatment.astype(int))
    result = test.result()
    z, p = proportions_ztest([treatment.sum(), control.sum()], [treatment.size, control.size])
    assert result.test == "two-proportion z-test"
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_numeric_result_matches_scipy_welch():
    rng = np.random.default_rng(4)
    control, treatment = rng.exponential(5.0, 900), rng.exponential(5.6, 700)
    test = ABTest("control", "treatment", metric="numeric")
    for chunk in np.array_split(control, 7):
        test.record_many("control", chunk)
    test.record_many("treatment", treatment)
    result = test.result()
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    assert result.test == "Welch's t-test"
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert result.extra["degrees_of_freedom"] == pytest.approx(expected.df, rel=1e-9)
    assert result.means["treatment"] == pytest.approx(treatment.mean(), rel=1e-12)


def test_conversion_intervals_match_statsmodels():
    test = ABTest("control", "treatment", alpha=0.10)
    test.record_many("control", [1] * 90 + [0] * 910)
    test.record_many("treatment", [1] * 130 + [0] * 1070)
    result = test.result()
    for name, (x, n) in {"control": (90, 1000), "treatment": (130, 1200)}.items():
        expected = proportion_confint(x, n, alpha=0.10, method="normal")
        assert result.confidence_intervals[name] == pytest.approx(expected, rel=1e-9)
    expected = confint_proportions_2indep(130, 1200, 90, 1000, method="wald", compare="diff", alpha=0.10)
    assert result.lift_confidence_interval == pytest.approx(expected, rel=1e-9)


def test_numeric_intervals_match_scipy():
    rng = np.random.default_rng(5)
    control, treatment = rng.normal(3.0, 1.0, 60), rng.normal(3.5, 2.0, 45)
    test = ABTest("control", "treatment", metric="numeric", alpha=0.01)
    test.record_many("control", control)
    test.record_many("treatment", treatment)
    result = test.result()
    for name, values in {"control": control, "treatment": treatment}.items():
        expected = stats.t.interval(0.99, values.size - 1, loc=values.mean(), scale=stats.sem(values))
        assert result.confidence_intervals[name] == pytest.approx(expected, rel=1e-9)
    expected = stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.99)
    assert result.lift_confidence_interval == pytest.approx(tuple(expected), rel=1e-9)


def _conversions(x_control, x_treatment, n=2_000, **kwargs):
    test = ABTest("control", "treatment", **kwargs)
    test.record_many("control", [1] * x_control + [0] * (n - x_control))
    test.record_many("treatment", [1] * x_treatment + [0] * (n - x_treatment))
    return test.result()


def test_decision_is_keep_collecting_before_the_planned_sample_size():
    result = _conversions(200, 300, min_samples=5_000)
    assert result.p_value < 1e-5
    assert result.decision == "keep collecting"


def test_decision_is_ship_treatment_when_significantly_better():
    result = _conversions(200, 300, min_samples=1_000)
    assert result.significant and result.decision == "ship treatment"


def test_decision_is_keep_control_when_not_significant():
    result = _conversions(200, 215, min_samples=1_000)
    assert result.p_value > 0.05 and result.decision == "keep control"


def test_decision_is_keep_control_when_significantly_worse():
    result = _conversions(300, 200, min_samples=1_000)
    assert result.p_value < 0.05 and result.decision == "keep control"


def test_lower_is_better_ships_the_lower_treatment():
    result = _conversions(300, 200, min_samples=1_000, higher_is_better=False)
    assert result.decision == "ship treatment"


def test_result_alpha_overrides_the_tests_alpha():
    result = _conversions(200, 240, min_samples=1_000)  # p about 0.04
    assert 0.01 < result.p_value < 0.05
    test = ABTest("control", "treatment", min_samples=1_000)
    test.record_many("control", [1] * 200 + [0] * 1_800)
    test.record_many("treatment", [1] * 240 + [0] * 1_760)
    assert test.result(alpha=0.01).decision == "keep control"
    assert test.result().decision == "ship treatment"


# -- 5. How many users you need -------------------------------------------------------------------

@pytest.mark.parametrize("p1, mde, alpha, power", [
    (0.10, 0.02, 0.05, 0.8), (0.05, 0.01, 0.05, 0.9), (0.30, -0.05, 0.01, 0.8), (0.5, 0.1, 0.1, 0.95),
])
def test_required_sample_size_matches_the_standard_formula(p1, mde, alpha, power):
    p2 = p1 + mde
    pooled = (p1 + p2) / 2
    root = (stats.norm.ppf(1 - alpha / 2) * math.sqrt(2 * pooled * (1 - pooled))
            + stats.norm.ppf(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
    assert required_sample_size(p1, mde, alpha=alpha, power=power) == math.ceil(root**2 / mde**2)


@pytest.mark.parametrize("p1, mde", [(0.10, 0.02), (0.02, 0.005), (0.5, 0.05), (0.3, -0.05)])
def test_required_sample_size_is_close_to_statsmodels_power(p1, mde):
    effect = proportion_effectsize(p1 + mde, p1)
    statsmodels_n = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1.0)
    assert required_sample_size(p1, mde) == pytest.approx(statsmodels_n, rel=0.02)


def test_required_sample_size_of_a_textbook_case():
    assert required_sample_size(0.10, 0.02) == 3841


@pytest.mark.parametrize("p1, mde, alpha, power", [
    (0.0, 0.1, 0.05, 0.8), (0.1, 0.0, 0.05, 0.8), (0.95, 0.1, 0.05, 0.8), (0.1, 0.02, 0.0, 0.8), (0.1, 0.02, 0.05, 1.0),
])
def test_required_sample_size_refuses_impossible_settings(p1, mde, alpha, power):
    with pytest.raises(ValidationError):
        required_sample_size(p1, mde, alpha=alpha, power=power)


# -- 6. Simulating the A/B test -------------------------------------------------------------------

def _simulate(seed=0, n_users=20_000, **kwargs):
    return simulate_ab_test({"v1.1.0": V1, "v2.0.0": V2}, CANCER.X_test, CANCER.y_test,
                            n_users=n_users, seed=seed, progress=False, **kwargs)


def test_simulation_is_reproducible_from_its_seed():
    test_a, log_a = _simulate(seed=7)
    test_b, log_b = _simulate(seed=7)
    _, log_c = _simulate(seed=8)
    assert log_a.equals(log_b)
    assert test_a.result() == test_b.result()
    assert not log_a["converted"].equals(log_c["converted"])


def test_simulation_log_has_one_row_per_user_routed_by_the_router():
    _, log = _simulate(seed=3, n_users=5_000, weights={"v1.1.0": 0.8, "v2.0.0": 0.2})
    assert len(log) == 5_000 and log["user_id"].is_unique
    assert set(log.columns) >= {"user_id", "variant", "row", "prediction", "correct", "converted"}
    router = TrafficRouter({"v1.1.0": V1, "v2.0.0": V2}, {"v1.1.0": 0.8, "v2.0.0": 0.2}, salt="sim-3")
    assert log["variant"].tolist() == [router.route(user) for user in log["user_id"]]


def test_simulation_shows_each_user_the_real_prediction_of_their_version():
    _, log = _simulate(seed=1, n_users=3_000)
    for name, model in {"v1.1.0": V1, "v2.0.0": V2}.items():
        mine = log[log["variant"] == name]
        expected = model.predict(CANCER.X_test[mine["row"].to_numpy()])
        assert (mine["prediction"].to_numpy() == expected).all()
    assert (log["correct"] == (log["prediction"] == CANCER.y_test[log["row"]])).all()


def test_simulation_outcomes_follow_correctness():
    _, log = _simulate(seed=2, n_users=40_000, conversion_if_correct=0.3, conversion_if_wrong=0.0)
    assert log.loc[~log["correct"], "converted"].sum() == 0
    assert log.loc[log["correct"], "converted"].mean() == pytest.approx(0.3, abs=0.01)


def test_simulation_records_every_outcome_in_the_test():
    test, log = _simulate(seed=4, n_users=8_000)
    result = test.result()
    by_variant = log.groupby("variant")["converted"]
    assert result.counts == by_variant.size().to_dict()
    assert result.means == pytest.approx(by_variant.mean().to_dict(), rel=1e-12)


def test_simulation_finds_the_more_accurate_version_better():
    test, _ = _simulate(seed=0, n_users=100_000, min_samples=30_000)
    result = test.result()
    assert result.absolute_lift > 0
    assert result.decision == "ship treatment"


@pytest.mark.parametrize("kwargs", [{"n_users": 0}, {"batch_size": 0}, {"weights": {}},
                                    {"conversion_if_correct": 1.5}, {"conversion_if_wrong": math.nan}])
def test_simulation_refuses_bad_settings(kwargs):
    with pytest.raises(ValidationError):
        _simulate(**{"n_users": 100, **kwargs})


def test_simulation_compares_exactly_two_versions():
    with pytest.raises(ValidationError):
        simulate_ab_test({"a": V1, "b": V2, "c": V1}, CANCER.X_test, CANCER.y_test, n_users=100, progress=False)


def test_simulation_progress_bar_can_be_shown_or_hidden(capsys):
    simulate_ab_test({"a": V1, "b": V2}, CANCER.X_test, CANCER.y_test, n_users=500, progress=False)
    assert capsys.readouterr().err == ""
    simulate_ab_test({"a": V1, "b": V2}, CANCER.X_test, CANCER.y_test, n_users=500, progress=True)
    assert "500/500" in capsys.readouterr().err


# -- 7. Canary rollout ------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class LocalMonitor:
    """The two numbers a canary reads, computed from what a server logged."""

    def __init__(self):
        self.latencies_ms, self.errors = [], 0

    def log_prediction(self, features, prediction, latency_ms):
        self.latencies_ms.append(latency_ms)

    def log_error(self, latency_ms, error):
        self.errors += 1

    def get_metrics(self):
        total = len(self.latencies_ms) + self.errors
        return {"error_rate": self.errors / total if total else 0.0,
                "p95_latency_ms": float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else None}


class Served:
    """A model behind a tiny server: takes ``latency_ms`` on the fake clock, logs to its monitor,
    and fails while ``failing`` is set."""

    def __init__(self, model, clock, latency_ms, monitor=None):
        self.model, self.clock, self.latency_ms = model, clock, latency_ms
        self.monitor, self.failing = monitor or LocalMonitor(), False

    def predict(self, X):
        self.clock.advance(self.latency_ms / 1000)
        if self.failing:
            self.monitor.log_error(self.latency_ms, "RuntimeError")
            raise RuntimeError("model crashed")
        predictions = self.model.predict(X)
        self.monitor.log_prediction(X, predictions, self.latency_ms)
        return predictions


def _canary(candidate_latency_ms=10.0, **kwargs):
    clock = FakeClock()
    old, new = Served(V1, clock, 10.0), Served(V2, clock, candidate_latency_ms)
    rollout = CanaryRollout(old, new, baseline_monitor=old.monitor, candidate_monitor=new.monitor,
                            names=("v1.1.0", "v2.0.0"), min_step_duration_s=60, min_requests=50,
                            clock=clock, **kwargs)
    return rollout, clock, old, new


def _traffic(clock, users_per_tick=400):
    counter = iter(range(10**9))

    def send(rollout):
        for _ in range(users_per_tick):
            try:
                rollout.predict(CANCER.X_test[:1], user_id=f"user-{next(counter)}")
            except RuntimeError:
                pass
        clock.advance(30)

    return send


def test_healthy_canary_moves_through_every_step_to_all_users():
    rollout, clock, _, _ = _canary()
    assert rollout.run(_traffic(clock)) == "completed"
    shares = [event["candidate_share"] for event in rollout.history]
    assert sorted(set(shares)) == [0.01, 0.05, 0.25, 0.5, 1.0]
    assert shares == sorted(shares)
    assert rollout.candidate_share == 1.0 and rollout.reason is None
    assert {rollout.router.route(f"user-{i}") for i in range(500)} == {"v2.0.0"}


def test_canary_holds_a_step_until_its_time_and_requests_are_in():
    rollout, clock, _, _ = _canary()
    rollout.start()
    assert rollout.candidate_share == 0.01
    assert rollout.check() == "hold"  # no requests, no time
    clock.advance(120)
    assert rollout.check() == "hold"  # time, but no requests yet
    _traffic(clock, users_per_tick=20_000)(rollout)
    assert rollout.served["v2.0.0"] >= 50
    assert rollout.check() == "advance" and rollout.candidate_share == 0.05


def test_canary_counts_each_request_once_for_the_version_that_answered():
    rollout, clock, _, _ = _canary()
    rollout.start()
    rollout.router.set_weights({"v2.0.0": 0.5, "v1.1.0": 0.5})
    answered = [rollout.predict(CANCER.X_test[:1], user_id=user)["variant"] for user in USERS[:2_000]]
    assert rollout.served == {"v1.1.0": answered.count("v1.1.0"), "v2.0.0": answered.count("v2.0.0")}
    assert sum(rollout.served.values()) == 2_000


def test_canary_must_start_once_before_it_checks():
    rollout, _, _, _ = _canary()
    with pytest.raises(ValidationError):
        rollout.check()
    rollout.start()
    with pytest.raises(ValidationError):
        rollout.start()


def test_canary_rolls_back_when_the_candidate_is_slower():
    rollout, clock, _, _ = _canary(candidate_latency_ms=25.0)
    assert rollout.run(_traffic(clock)) == "rolled back"
    assert rollout.candidate_share == 0.0
    assert "p95" in rollout.reason
    assert rollout.history[-1]["action"] == "rollback" and rollout.history[-1]["reason"] == rollout.reason
    assert {rollout.router.route(f"user-{i}") for i in range(500)} == {"v1.1.0"}


def test_canary_rolls_back_on_an_error_burst_mid_rollout():
    rollout, clock, _, new = _canary()
    send = _traffic(clock)
    rollout.start()
    while rollout.candidate_share < 0.25:
        send(rollout)
        rollout.check()
    new.failing = True  # the candidate starts crashing at 25%
    send(rollout)
    assert rollout.check() == "rollback"
    assert rollout.status == "rolled back" and "error rate" in rollout.reason
    assert rollout.history[-1]["candidate"]["error_rate"] > 0.01


@pytest.mark.parametrize("failure", ["slowdown", "errors"])
def test_canary_reads_the_part3_model_monitor(failure):
    from deployment import ModelMonitor

    clock = FakeClock()
    old = Served(V1, clock, 10.0, ModelMonitor(clock=clock))
    new = Served(V2, clock, 30.0 if failure == "slowdown" else 10.0, ModelMonitor(clock=clock))
    new.failing = failure == "errors"
    rollout = CanaryRollout(old, new, baseline_monitor=old.monitor, candidate_monitor=new.monitor,
                            min_step_duration_s=60, min_requests=50, clock=clock)
    assert rollout.run(_traffic(clock)) == "rolled back"
    assert ("p95" if failure == "slowdown" else "error rate") in rollout.reason


def test_canary_tolerates_a_slowdown_within_its_ratio():
    rollout, clock, _, _ = _canary(candidate_latency_ms=11.0, max_p95_latency_ratio=1.2)
    assert rollout.run(_traffic(clock)) == "completed"


def test_canary_after_a_rollback_changes_nothing():
    rollout, clock, _, _ = _canary(candidate_latency_ms=50.0)
    rollout.run(_traffic(clock))
    clock.advance(1_000)
    assert rollout.check() == "rolled back"
    assert rollout.candidate_share == 0.0


@pytest.mark.parametrize("steps", [(), (0.1, 0.05, 1.0), (0.01, 0.5), (0.0, 1.0), (0.5, 1.5)])
def test_canary_refuses_bad_steps(steps):
    with pytest.raises(ValidationError):
        CanaryRollout(V1, V2, baseline_monitor=LocalMonitor(), candidate_monitor=LocalMonitor(), steps=steps)


# -- 8. Shadow mode ---------------------------------------------------------------------------------

def test_shadow_predictions_are_never_returned():
    primary, shadow = Constant(0), Constant(99)
    serving = ShadowDeployment(primary, shadow)
    for n in (1, 5, 3):
        assert serving.predict(np.zeros((n, 2))).tolist() == [0] * n
    assert shadow.calls == 3
    assert serving.agreement_rate() == 0.0
    assert [record["shadow"] for record in serving.log] == [[99], [99] * 5, [99] * 3]


def test_shadow_returns_the_primarys_answer_object_unchanged():
    class Api:
        def predict(self, instances):
            self.last = {"predictions": [1] * len(instances), "version": "1.1.0"}
            return self.last

    api = Api()
    serving = ShadowDeployment(api, Constant(1))
    answer = serving.predict([[0.0], [1.0]])
    assert answer == {"predictions": [1, 1], "version": "1.1.0"}
    assert answer is api.last
    assert serving.agreement_rate() == 1.0


def test_shadow_receives_a_copy_it_cannot_change():
    class Vandal:
        def predict(self, X):
            X[:] = -1.0
            return np.zeros(len(X))

    X = np.ones((4, 2))
    serving = ShadowDeployment(Constant(0), Vandal())
    serving.predict(X)
    assert (X == 1.0).all()


def test_a_failing_shadow_is_never_felt_by_the_user():
    class Broken:
        def predict(self, X):
            raise RuntimeError("shadow crashed")

    serving = ShadowDeployment(V1, Broken())
    assert serving.predict(CANCER.X_test[:4]).tolist() == V1.predict(CANCER.X_test[:4]).tolist()
    assert serving.summary()["shadow_errors"] == 1
    assert "shadow crashed" in serving.log[-1]["error"]


def test_a_shadow_answer_of_the_wrong_shape_is_an_error_not_an_agreement():
    class OneTooMany:
        def predict(self, X):
            return np.ones(len(X) + 1)

    serving = ShadowDeployment(Constant(1), OneTooMany())
    assert serving.predict(np.zeros((3, 2))).tolist() == [1, 1, 1]
    assert serving.summary() == {"requests": 1, "rows": 3, "agreement_rate": 0.0, "shadow_errors": 1}


def test_shadow_agreement_rate_counts_rows_over_requests():
    serving = ShadowDeployment(V1, V2)
    for start in range(0, len(CANCER.X_test), 10):
        serving.predict(CANCER.X_test[start:start + 10])
    expected = np.mean(V1.predict(CANCER.X_test) == V2.predict(CANCER.X_test))
    assert serving.agreement_rate() == pytest.approx(expected)
    assert serving.summary()["rows"] == len(CANCER.X_test)


def test_shadow_agreement_for_numbers_uses_a_tolerance():
    class Plus:
        def __init__(self, delta):
            self.delta = delta

        def predict(self, X):
            return np.asarray(X, dtype=float)[:, 0] + self.delta

    serving = ShadowDeployment(Plus(0.0), Plus(0.05), atol=0.1)
    serving.predict([[1.0], [2.0]])
    assert serving.agreement_rate() == 1.0
