"""Part 5: routing users, A/B tests decided by statistics, canary and shadow rollouts.

Read with notebooks/05_ab_testing.ipynb. Each class holds the tests of one
section of the notebook: run one with ``make grade PART=5 SECTION=2`` (or
``pytest -m "part5 and section2"``), the whole part with
``make grade PART=5`` (or ``pytest -m part5``). Part 5 needs no other part:
the models, the data and the latency recorder these tests use are given.
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
    RoutingTable,
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
from deployment.recorder import LatencyRecorder

CANCER = load_dataset("breast_cancer", seed=0)
V1 = LogisticRegression(C=1e-4).fit(CANCER.X_train, CANCER.y_train)  # "v1.1.0": about 89% right
V2 = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.1))]).fit(
    CANCER.X_train, CANCER.y_train)  # "v2.0.0": about 96% right
USERS = [f"user-{i}" for i in range(20_000)]

pytestmark = pytest.mark.part5  # and each class below carries the section of the notebook it checks


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


class TestRoutingUsersToVersions:
    """2. Routing users to versions: ``user_bucket``, ``TrafficRouter.set_weights`` and ``route``."""

    pytestmark = pytest.mark.section2

    def test_user_bucket_is_the_documented_blake2b_hash(self):
        # Any server, in any language, can route the same way from the docstring alone.
        for user, salt in [("alice", "exp-1"), ("bob", ""), ("user-123", "sim-0"), ("Zoë", "exp-ß")]:
            digest = hashlib.blake2b(f"{salt}:{user}".encode(), digest_size=8).digest()
            assert user_bucket(user, salt) == (int.from_bytes(digest, "big") >> 11) / 2**53

    def test_user_bucket_of_an_integer_id_is_the_bucket_of_its_text(self):
        assert user_bucket(7, "exp-1") == user_bucket("7", "exp-1")
        assert user_bucket(np.int64(7), "exp-1") == user_bucket("7", "exp-1")

    @pytest.mark.parametrize("user_id", [None, 1.0, True, "", b"alice", ["alice"]],
                             ids=["none", "float", "bool", "empty", "bytes", "list"])
    def test_user_bucket_refuses_an_id_that_is_not_a_string_or_an_integer(self, user_id):
        with pytest.raises(ValidationError, match="user id must be a non-empty string or an integer"):
            user_bucket(user_id)

    def test_user_bucket_is_in_unit_interval_and_uniform(self):
        buckets = np.array([user_bucket(user) for user in USERS])
        assert ((buckets >= 0) & (buckets < 1)).all()
        assert stats.kstest(buckets, "uniform").pvalue > 0.01

    def test_a_new_salt_reshuffles_the_users(self):
        # The treatment half of one experiment is not the treatment half of the next: about half overlap.
        first = {user for user in USERS[:4_000] if user_bucket(user, "exp-1") < 0.5}
        second = {user for user in USERS[:4_000] if user_bucket(user, "exp-2") < 0.5}
        assert 0.45 < len(first & second) / len(first) < 0.55

    def test_set_weights_builds_the_documented_table(self):
        router = _router({"d": 0.1, "c": 0.0, "a": 0.2, "b": 0.7})
        table = router.table
        assert isinstance(table, RoutingTable)
        assert table.weights == {"d": 0.1, "c": 0.0, "a": 0.2, "b": 0.7}
        assert list(table.weights) == ["d", "c", "a", "b"]  # the order of the variants
        assert table.names == ("d", "a", "b")
        assert table.edges == pytest.approx((0.1, 0.3, 1.0), abs=1e-12)

    def test_the_table_holds_every_weight_as_a_float(self):
        router = _router({"a": 0, "b": np.float32(0.25), "c": np.int64(0), "d": 0.75})
        assert router.table.weights == {"a": 0.0, "b": 0.25, "c": 0.0, "d": 0.75}
        assert [type(weight) for weight in router.table.weights.values()] == [float] * 4
        router.set_weights({"a": 1, "b": 0, "c": 0, "d": 0})
        assert [type(weight) for weight in router.table.weights.values()] == [float] * 4

    def test_slices_follow_the_order_of_the_variants_not_their_names(self):
        router = _router({"zeta": 0.5, "alpha": 0.5}, salt="s")
        expected = ["zeta" if user_bucket(user, "s") < 0.5 else "alpha" for user in USERS[:1000]]
        assert [router.route(user) for user in USERS[:1000]] == expected

    def test_weights_summing_to_one_within_the_tolerance_are_accepted(self):
        router = _router({"a": 0.5 + 5e-10, "b": 0.5})  # WEIGHT_TOLERANCE is 1e-9
        assert router.table.edges == (0.5 + 5e-10, 1.0)
        with pytest.raises(ValidationError):
            router.set_weights({"a": 0.5 + 2e-9, "b": 0.5})

    def test_the_last_edge_is_exactly_one_when_the_weights_sum_a_little_below(self):
        names = [f"v{i}" for i in range(10)]
        router = TrafficRouter({n: Constant(i) for i, n in enumerate(names)}, {n: 0.1 for n in names})
        assert math.fsum([0.1] * 10) == 1.0 and sum([0.1] * 10) != 1.0  # 0.9999999999999999 added in order
        assert router.table.edges[-1] == 1.0
        assert {router.route(user) for user in USERS[:2000]} == set(names)

    def test_route_picks_the_slice_of_the_cumulative_weights_that_holds_the_bucket(self):
        router = _router({"a": 0.2, "b": 0.5, "c": 0.3}, salt="s")
        edges = [0.2, 0.7]  # slices [0, 0.2), [0.2, 0.7), [0.7, 1)
        for user in USERS[:1000]:
            expected = "abc"[bisect_right(edges, user_bucket(user, "s"))]
            assert router.route(user) == expected

    def test_route_is_sticky_for_a_user_across_calls_and_routers(self):
        first, second = _router(), _router()
        assignments = [first.route(user) for user in USERS[:500]]
        assert set(assignments) == {"a", "b"}
        for user, variant in reversed(list(zip(USERS[:500], assignments))):
            assert second.route(user) == variant and first.route(user) == variant

    def test_route_is_stable_across_processes(self):
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

    def test_route_refuses_a_bad_user_id(self):
        with pytest.raises(ValidationError, match="user id"):
            _router().route(None)

    def test_route_salts_the_bucket_with_the_routers_salt(self):
        router = _router(salt="exp-9")
        expected = ["a" if user_bucket(user, "exp-9") < 0.5 else "b" for user in USERS[:1000]]
        assert [router.route(user) for user in USERS[:1000]] == expected

    def test_split_matches_the_weights_chi_squared(self):
        weights = {"a": 0.1, "b": 0.3, "c": 0.6}
        router = _router(weights)
        names = [router.route(user) for user in USERS]
        observed = [names.count(name) for name in weights]
        expected = [w * len(USERS) for w in weights.values()]
        assert stats.chisquare(observed, expected).pvalue > 0.01

    def test_zero_weight_variant_gets_no_users(self):
        router = _router({"a": 0.0, "b": 1.0, "c": 0.0})
        assert {router.route(user) for user in USERS[:2000]} == {"b"}

    @pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
    def test_bad_weights_are_refused(self, weights):
        with pytest.raises(ValidationError):
            TrafficRouter({"a": Constant(0), "b": Constant(1)}, weights)

    @pytest.mark.parametrize("weights", [{"a": 0.5, "b": -0.5}, {"a": 0.5, "b": math.nan}, {"a": 0.5, "b": "x"}],
                             ids=["negative", "nan", "string"])
    def test_a_bad_weight_is_refused_naming_its_variant_only(self, weights):
        with pytest.raises(ValidationError) as refused:
            TrafficRouter({"a": Constant(0), "b": Constant(1)}, weights)
        assert "Weight of 'b'" in str(refused.value) and "'a'" not in str(refused.value)

    @pytest.mark.parametrize("weights, wording", [
        ([0.5, 0.5], "Weights must be a mapping of variant name to weight, got list."),
        ({"a": 1.0}, "Weights name ['a'] but the variants are ['a', 'b']; give exactly one weight per variant."),
        ({"a": 0.5, "b": 0.6}, "Weights must sum to 1, but {'a': 0.5, 'b': 0.6} sum to 1.1."),
        ({"a": 0.5, "b": "0.5"}, "Weight of 'b' must be a number, got '0.5'."),
        ({"a": 1.1, "b": -0.1}, "Weight of 'b' must be a finite number >= 0, got -0.1."),
    ], ids=["not-a-mapping", "names", "sum", "string", "negative"])
    def test_refused_weights_read_as_documented(self, weights, wording):
        with pytest.raises(ValidationError) as refused:
            _router().set_weights(weights)
        assert str(refused.value) == wording

    def test_set_weights_changes_the_split_at_run_time(self):
        router = _router()
        router.set_weights({"a": 1.0, "b": 0.0})
        assert {router.route(user) for user in USERS[:1000]} == {"a"}
        assert router.weights == {"a": 1.0, "b": 0.0}

    @pytest.mark.parametrize("weights", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
    def test_set_weights_refuses_bad_weights_and_keeps_the_old_ones(self, weights):
        router = _router({"a": 0.25, "b": 0.75})
        before = [router.route(user) for user in USERS[:500]]
        with pytest.raises(ValidationError):
            router.set_weights(weights)
        assert router.weights == {"a": 0.25, "b": 0.75}
        assert [router.route(user) for user in USERS[:500]] == before

    def test_growing_the_first_variants_weight_only_moves_users_to_it(self):
        router = _router({"new": 0.05, "old": 0.95})
        on_new_before = {u for u in USERS if router.route(u) == "new"}
        router.set_weights({"new": 0.25, "old": 0.75})
        on_new_after = {u for u in USERS if router.route(u) == "new"}
        assert on_new_before < on_new_after

    def test_routing_while_weights_change_in_another_thread_never_fails(self):
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

    def test_predict_answers_with_the_routed_variant_and_names_it(self):
        router = TrafficRouter({"v1.1.0": V1, "v2.0.0": V2}, {"v1.1.0": 0.5, "v2.0.0": 0.5})
        for user in USERS[:20]:
            answer = router.predict(CANCER.X_test[:3], user_id=user)
            assert answer["variant"] == router.route(user)
            expected = (V1 if answer["variant"] == "v1.1.0" else V2).predict(CANCER.X_test[:3])
            assert answer["predictions"] == expected.tolist()

    def test_predict_keeps_the_fields_of_an_api_answer(self):
        class Api:
            def predict(self, instances):
                return {"predictions": [7] * len(instances), "version": "2.0.0", "timestamp": "now"}

        router = TrafficRouter({"api": Api()}, {"api": 1.0})
        answer = router.predict([[1.0], [2.0]], user_id="alice")
        assert answer == {"predictions": [7, 7], "version": "2.0.0", "timestamp": "now", "variant": "api"}


class TestRecordingOutcomes:
    """3. Recording outcomes: ``VariantStats.add`` and ``ABTest.record_many``."""

    pytestmark = pytest.mark.section3

    def test_variant_stats_of_batches_equal_the_stats_of_all_values(self):
        values = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
        summary = VariantStats()
        for batch in (values[:3], values[3:4], values[4:]):
            summary.add(batch)
        assert summary.count == 8
        assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
        assert summary.m2 == pytest.approx(((values - values.mean()) ** 2).sum(), rel=1e-12)

    def test_variant_stats_take_a_single_number_and_an_empty_batch(self):
        summary = VariantStats()
        summary.add(4.0)
        summary.add([])
        summary.add(np.array([8.0]))
        assert (summary.count, summary.mean, summary.m2) == (2, 6.0, 8.0)

    def test_running_stats_stay_exact_on_large_numbers_in_batches(self):
        # Summing squares would lose about 1e-4 of the variance here; Welford's update does not.
        rng = np.random.default_rng(3)
        values = 1e6 + rng.normal(0, 1, 10_001)
        summary = VariantStats()
        for chunk in np.array_split(values, 37):
            summary.add(chunk)
        assert summary.count == values.size
        assert summary.mean == pytest.approx(statistics.fmean(values), rel=1e-15)
        assert summary.variance == pytest.approx(statistics.variance(values.tolist()), rel=1e-9)

    def test_record_many_folds_outcomes_into_the_variants_stats(self):
        test = ABTest("control", "treatment", metric="numeric")
        test.record_many("control", [2.0, 4.0])
        test.record_many("treatment", np.array([10.0, 20.0, 30.0]))
        test.record_many("control", [6.0])
        assert (test.stats["control"].count, test.stats["control"].mean) == (3, 4.0)
        assert test.stats["control"].variance == pytest.approx(4.0)
        assert (test.stats["treatment"].count, test.stats["treatment"].mean) == (3, 20.0)

    @pytest.mark.parametrize("value", [2, -1, 0.5, math.nan, "1", None])
    def test_conversion_outcomes_must_be_zero_or_one(self, value):
        test = ABTest("control", "treatment")
        with pytest.raises(ValidationError):
            test.record_many("control", [0, 1, value])
        assert test.counts() == {"control": 0, "treatment": 0}

    def test_a_refused_conversion_names_the_variant_and_the_value(self):
        test = ABTest("v1.1.0", "v2.0.0")
        with pytest.raises(ValidationError, match=r"Conversion outcomes for 'v2\.0\.0' must be 0 or 1, got 2"):
            test.record_many("v2.0.0", [0, 1, 2])

    @pytest.mark.parametrize("values", [[math.inf], ["3.5"], [None]], ids=["infinite", "string", "none"])
    def test_numeric_outcomes_must_be_finite_numbers(self, values):
        test = ABTest("control", "treatment", metric="numeric")
        with pytest.raises(ValidationError):
            test.record_many("treatment", [1.0] + values)
        assert test.counts() == {"control": 0, "treatment": 0}

    def test_outcomes_come_as_numbers_lists_arrays_or_iterables(self):
        test = ABTest("control", "treatment")
        test.record("control", 1)
        test.record_many("control", np.array([True, False]))
        test.record_many("control", (value for value in [0, 0, 1]))
        assert test.counts() == {"control": 6, "treatment": 0}
        assert test.stats["control"].mean == pytest.approx(0.5)  # 1, True, False, 0, 0, 1
        test.record_many("treatment", {1})  # a set, or dict.values(): any iterable
        test.record_many("treatment", {"u1": 0, "u2": 1}.values())
        assert test.counts() == {"control": 6, "treatment": 3}

    def test_unknown_variant_is_refused(self):
        test = ABTest("v1.1.0", "v2.0.0")
        with pytest.raises(ValidationError) as refused:
            test.record_many("v3", [1])
        assert str(refused.value) == "Unknown variant 'v3'; this test compares ['v1.1.0', 'v2.0.0']."

    @pytest.mark.parametrize("metric, value", [("numeric", math.nan), ("numeric", "3.5"), ("conversion", None)])
    def test_an_outcome_that_is_not_a_finite_number_reads_as_documented(self, metric, value):
        test = ABTest("v1.1.0", "v2.0.0", metric=metric)
        with pytest.raises(ValidationError) as refused:
            test.record_many("v2.0.0", [1, value])
        assert str(refused.value) == "Outcomes for 'v2.0.0' must be finite numbers."


class TestDecidingWithASignificanceTest:
    """4. Deciding with a significance test: ``two_proportion_ztest``, ``welch_ttest``, ``ABTest.result``."""

    pytestmark = pytest.mark.section4

    @pytest.mark.parametrize("x_t, n_t, x_c, n_c", [
        (120, 1000, 100, 1000), (5, 40, 9, 37), (4_980, 50_000, 4_700, 49_000), (1, 3, 0, 5),
    ])
    def test_two_proportion_ztest_matches_statsmodels(self, x_t, n_t, x_c, n_c):
        z, p = two_proportion_ztest(x_t, n_t, x_c, n_c)
        expected_z, expected_p = proportions_ztest([x_t, x_c], [n_t, n_c])
        assert z == pytest.approx(expected_z, rel=1e-9, abs=1e-12)
        assert p == pytest.approx(expected_p, rel=1e-9, abs=1e-12)

    @pytest.mark.parametrize("x_t, n_t, x_c, n_c", [(0, 50, 0, 70), (50, 50, 70, 70)], ids=["all-0", "all-1"])
    def test_two_proportion_ztest_without_variation_says_no_difference(self, x_t, n_t, x_c, n_c):
        assert two_proportion_ztest(x_t, n_t, x_c, n_c) == (0.0, 1.0)

    @pytest.mark.parametrize("x_t, n_t, x_c, n_c", [
        (11, 10, 5, 10), (-1, 10, 5, 10), (0, 0, 5, 10), (2.5, 10, 5, 10), (5, 10, 5, 10.0), (True, 10, 5, 10),
    ], ids=["more-successes-than-users", "negative", "no-users", "not-an-integer", "float-users", "bool"])
    def test_two_proportion_ztest_refuses_impossible_counts(self, x_t, n_t, x_c, n_c):
        with pytest.raises(ValidationError):
            two_proportion_ztest(x_t, n_t, x_c, n_c)

    def test_two_proportion_ztest_checks_the_control_too(self):
        with pytest.raises(ValidationError, match="control"):
            two_proportion_ztest(5, 10, 11, 10)

    def test_welch_ttest_matches_scipy(self):
        rng = np.random.default_rng(1)
        a, b = rng.normal(10.3, 2.0, 40), rng.normal(10.0, 5.0, 25)
        t, df, p = welch_ttest(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size)
        expected = stats.ttest_ind(a, b, equal_var=False)
        assert t == pytest.approx(expected.statistic, rel=1e-9)
        assert df == pytest.approx(expected.df, rel=1e-9)
        assert p == pytest.approx(expected.pvalue, rel=1e-9)

    def test_welch_ttest_needs_two_values_per_group(self):
        with pytest.raises(ValidationError, match=r"needs at least two values in each group, got 1 \(treatment\)"):
            welch_ttest(1.0, 0.5, 1, 2.0, 0.5, 10)
        with pytest.raises(ValidationError, match=r"and 1 \(control\)"):
            welch_ttest(1.0, 0.5, 10, 2.0, 0.5, 1)

    def test_welch_ttest_without_variance_is_certain(self):
        t, df, p = welch_ttest(3.0, 0.0, 5, 3.0, 0.0, 8)
        assert (t, p) == (0.0, 1.0) and math.isnan(df)
        t, df, p = welch_ttest(2.0, 0.0, 5, 3.0, 0.0, 8)
        assert (t, p) == (-math.inf, 0.0) and math.isnan(df)

    def test_counts_means_and_lift_of_conversions(self):
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

    def test_relative_lift_over_a_control_of_zero_is_nan(self):
        test = ABTest("control", "treatment")
        test.record_many("control", [0] * 50)
        test.record_many("treatment", [1] + [0] * 49)
        assert math.isnan(test.result().relative_lift)

    def test_conversion_result_matches_statsmodels(self):
        rng = np.random.default_rng(2)
        control, treatment = rng.random(3_000) < 0.10, rng.random(2_800) < 0.12
        test = ABTest("control", "treatment", alpha=0.05)
        test.record_many("control", control.astype(int))
        test.record_many("treatment", treatment.astype(int))
        result = test.result()
        z, p = proportions_ztest([treatment.sum(), control.sum()], [treatment.size, control.size])
        assert result.test == "two-proportion z-test" and result.metric == "conversion"
        assert result.statistic == pytest.approx(z, rel=1e-9)
        assert result.p_value == pytest.approx(p, rel=1e-9)
        assert result.extra == {}

    def test_numeric_result_matches_scipy_welch(self):
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

    def test_conversion_intervals_match_statsmodels(self):
        test = ABTest("control", "treatment", alpha=0.10)
        test.record_many("control", [1] * 90 + [0] * 910)
        test.record_many("treatment", [1] * 130 + [0] * 1070)
        result = test.result()
        for name, (x, n) in {"control": (90, 1000), "treatment": (130, 1200)}.items():
            expected = proportion_confint(x, n, alpha=0.10, method="normal")
            assert result.confidence_intervals[name] == pytest.approx(expected, rel=1e-9)
        expected = confint_proportions_2indep(130, 1200, 90, 1000, method="wald", compare="diff", alpha=0.10)
        assert result.lift_confidence_interval == pytest.approx(expected, rel=1e-9)

    def test_numeric_intervals_match_scipy(self):
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

    @staticmethod
    def _conversions(x_control, x_treatment, n=2_000, **kwargs):
        test = ABTest("control", "treatment", **kwargs)
        test.record_many("control", [1] * x_control + [0] * (n - x_control))
        test.record_many("treatment", [1] * x_treatment + [0] * (n - x_treatment))
        return test.result()

    def test_decision_is_keep_collecting_before_the_planned_sample_size(self):
        result = self._conversions(200, 300, min_samples=5_000)
        assert result.p_value < 1e-5
        assert result.decision == "keep collecting"

    def test_decision_waits_for_both_variants_to_reach_the_planned_size(self):
        test = ABTest("control", "treatment", min_samples=1_000)
        test.record_many("control", [1] * 200 + [0] * 1_800)
        test.record_many("treatment", [1] * 150 + [0] * 650)  # 800 users: 200 short
        assert test.result().p_value < 1e-3 and test.result().decision == "keep collecting"

    def test_decision_is_ship_treatment_when_significantly_better(self):
        result = self._conversions(200, 300, min_samples=1_000)
        assert result.significant and result.decision == "ship treatment"

    def test_decision_is_keep_control_when_not_significant(self):
        result = self._conversions(200, 215, min_samples=1_000)
        assert result.p_value > 0.05 and result.decision == "keep control"

    def test_decision_is_keep_control_when_significantly_worse(self):
        result = self._conversions(300, 200, min_samples=1_000)
        assert result.p_value < 0.05 and result.decision == "keep control"

    def test_lower_is_better_ships_the_lower_treatment(self):
        result = self._conversions(300, 200, min_samples=1_000, higher_is_better=False)
        assert result.decision == "ship treatment"

    def test_result_alpha_overrides_the_tests_alpha(self):
        test = ABTest("control", "treatment", min_samples=1_000)
        test.record_many("control", [1] * 200 + [0] * 1_800)
        test.record_many("treatment", [1] * 240 + [0] * 1_760)
        default, strict = test.result(), test.result(alpha=0.01)
        assert 0.01 < default.p_value < 0.05  # about 0.04
        assert default.decision == "ship treatment" and strict.decision == "keep control"
        assert strict.alpha == 0.01
        assert strict.lift_confidence_interval[0] < default.lift_confidence_interval[0]  # a 99% interval is wider


class TestHowManyUsersYouNeed:
    """5. How many users you need: ``required_sample_size``."""

    pytestmark = pytest.mark.section5

    @pytest.mark.parametrize("p1, mde, alpha, power", [
        (0.10, 0.02, 0.05, 0.8), (0.05, 0.01, 0.05, 0.9), (0.30, -0.05, 0.01, 0.8), (0.5, 0.1, 0.1, 0.95),
    ])
    def test_required_sample_size_matches_the_standard_formula(self, p1, mde, alpha, power):
        p2 = p1 + mde
        pooled = (p1 + p2) / 2
        root = (stats.norm.ppf(1 - alpha / 2) * math.sqrt(2 * pooled * (1 - pooled))
                + stats.norm.ppf(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
        assert required_sample_size(p1, mde, alpha=alpha, power=power) == math.ceil(root**2 / mde**2)

    @pytest.mark.parametrize("p1, mde", [(0.10, 0.02), (0.02, 0.005), (0.5, 0.05), (0.3, -0.05)])
    def test_required_sample_size_is_close_to_statsmodels_power(self, p1, mde):
        effect = proportion_effectsize(p1 + mde, p1)
        statsmodels_n = NormalIndPower().solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1.0)
        assert required_sample_size(p1, mde) == pytest.approx(statsmodels_n, rel=0.02)

    def test_required_sample_size_of_a_textbook_case(self):
        assert required_sample_size(0.10, 0.02) == 3841

    @pytest.mark.parametrize("p1, mde", [(0.1, 0.0), (0.95, 0.1), (0.05, -0.05)],
                             ids=["no-effect", "rate-above-1", "rate-of-0"])
    def test_required_sample_size_refuses_an_effect_that_cannot_be(self, p1, mde):
        with pytest.raises(ValidationError, match="minimum_detectable_effect must be non-zero"):
            required_sample_size(p1, mde)


def _simulate(seed=0, n_users=20_000, **kwargs):
    return simulate_ab_test({"v1.1.0": V1, "v2.0.0": V2}, CANCER.X_test, CANCER.y_test,
                            n_users=n_users, seed=seed, progress=False, **kwargs)


class TestSimulatingTheABTest:
    """6. Simulating the A/B test: ``simulate_ab_test``."""

    pytestmark = pytest.mark.section6

    def test_simulation_is_reproducible_from_its_seed(self):
        test_a, log_a = _simulate(seed=7)
        test_b, log_b = _simulate(seed=7)
        _, log_c = _simulate(seed=8)
        assert log_a.equals(log_b)
        assert test_a.result() == test_b.result()
        assert not log_a["converted"].equals(log_c["converted"])

    def test_simulation_draws_rows_then_uniforms_from_the_seed(self):
        _, log = _simulate(seed=5, n_users=3_000, conversion_if_correct=0.4, conversion_if_wrong=0.2)
        rng = np.random.default_rng(5)
        rows, draws = rng.integers(0, len(CANCER.X_test), 3_000), rng.random(3_000)
        assert (log["row"].to_numpy() == rows).all()
        expected = np.where(log["correct"], draws < 0.4, draws < 0.2).astype(int)
        assert (log["converted"].to_numpy() == expected).all()

    def test_simulation_log_has_one_row_per_user_routed_by_the_router(self):
        _, log = _simulate(seed=3, n_users=5_000, weights={"v1.1.0": 0.8, "v2.0.0": 0.2})
        assert len(log) == 5_000 and log["user_id"].tolist() == [f"user-{i}" for i in range(5_000)]
        assert list(log.columns) == ["user_id", "variant", "row", "prediction", "correct", "converted"]
        router = TrafficRouter({"v1.1.0": V1, "v2.0.0": V2}, {"v1.1.0": 0.8, "v2.0.0": 0.2}, salt="sim-3")
        assert log["variant"].tolist() == [router.route(user) for user in log["user_id"]]

    def test_simulation_shows_each_user_the_real_prediction_of_their_version(self):
        _, log = _simulate(seed=1, n_users=3_000)
        for name, model in {"v1.1.0": V1, "v2.0.0": V2}.items():
            mine = log[log["variant"] == name]
            expected = model.predict(CANCER.X_test[mine["row"].to_numpy()])
            assert (mine["prediction"].to_numpy() == expected).all()
        assert (log["correct"] == (log["prediction"] == CANCER.y_test[log["row"]])).all()

    def test_simulation_predicts_in_batches_not_per_user(self):
        class Counting(Constant):
            def predict(self, X):
                assert len(X) <= 256
                return super().predict(X)

        control, treatment = Counting(1), Counting(0)
        simulate_ab_test({"a": control, "b": treatment}, CANCER.X_test, CANCER.y_test,
                         n_users=4_000, batch_size=256, progress=False)
        assert control.calls + treatment.calls <= 4_000 // 256 + 2

    def test_simulation_outcomes_follow_correctness(self):
        _, log = _simulate(seed=2, n_users=40_000, conversion_if_correct=0.3, conversion_if_wrong=0.0)
        assert log.loc[~log["correct"], "converted"].sum() == 0
        assert log.loc[log["correct"], "converted"].mean() == pytest.approx(0.3, abs=0.01)

    def test_simulation_records_every_outcome_in_the_test(self):
        test, log = _simulate(seed=4, n_users=8_000, alpha=0.01, min_samples=5_000)
        result = test.result()
        by_variant = log.groupby("variant")["converted"]
        assert (result.control, result.treatment, result.metric) == ("v1.1.0", "v2.0.0", "conversion")
        assert (result.alpha, result.min_samples) == (0.01, 5_000)
        assert result.counts == by_variant.size().to_dict()
        assert result.means == pytest.approx(by_variant.mean().to_dict(), rel=1e-12)

    def test_simulation_finds_the_more_accurate_version_better(self):
        test, _ = _simulate(seed=0, n_users=100_000, min_samples=30_000)
        result = test.result()
        assert result.absolute_lift > 0
        assert result.decision == "ship treatment"

    def test_simulation_progress_bar_can_be_shown_or_hidden(self, capsys):
        simulate_ab_test({"a": V1, "b": V2}, CANCER.X_test, CANCER.y_test, n_users=500, progress=False)
        assert capsys.readouterr().err == ""
        simulate_ab_test({"a": V1, "b": V2}, CANCER.X_test, CANCER.y_test, n_users=500, progress=True)
        assert "500/500" in capsys.readouterr().err


class FakeClock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Served:
    """A model behind a tiny server: takes ``latency_ms`` on the fake clock, logs to its recorder,
    and fails while ``failing`` is set."""

    def __init__(self, model, clock, latency_ms):
        self.model, self.clock, self.latency_ms = model, clock, latency_ms
        self.monitor, self.failing = LatencyRecorder(clock=clock), False

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
    settings = {"names": ("v1.1.0", "v2.0.0"), "min_step_duration_s": 60, "min_requests": 50, **kwargs}
    rollout = CanaryRollout(old, new, baseline_monitor=old.monitor, candidate_monitor=new.monitor,
                            clock=clock, **settings)
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


def _metrics(base_errors=0.0, base_p95=10.0, cand_errors=0.0, cand_p95=10.0):
    return {"baseline": {"error_rate": base_errors, "p95_latency_ms": base_p95},
            "candidate": {"error_rate": cand_errors, "p95_latency_ms": cand_p95}}


class TestCanaryRollout:
    """7. Canary rollout: ``CanaryRollout.guardrail_breach`` and ``check``."""

    pytestmark = pytest.mark.section7

    def test_guardrail_breach_of_the_error_rate_reads_as_documented(self):
        rollout, _, _, _ = _canary()
        reason = rollout.guardrail_breach(_metrics(base_errors=0.0, cand_errors=0.12))
        assert reason == "error rate 12.00% is above the baseline's 0.00% + 1.00%"

    def test_guardrail_breach_of_the_p95_latency_reads_as_documented(self):
        rollout, _, _, _ = _canary(max_p95_latency_ratio=1.5)
        reason = rollout.guardrail_breach(_metrics(base_p95=11.12, cand_p95=17.04))
        assert reason == "p95 latency 17.0 ms is above 1.5 x the baseline's 11.1 ms"

    def test_guardrail_breach_names_the_error_rate_first(self):
        rollout, _, _, _ = _canary()
        assert rollout.guardrail_breach(_metrics(cand_errors=0.5, cand_p95=100.0)).startswith("error rate")

    def test_guardrail_breach_uses_the_rollouts_own_limits(self):
        rollout, _, _, _ = _canary(max_error_rate_increase=0.05, max_p95_latency_ratio=2.0)
        assert rollout.guardrail_breach(_metrics(base_errors=0.01, cand_errors=0.059, cand_p95=19.9)) is None
        assert rollout.guardrail_breach(_metrics(base_errors=0.01, cand_errors=0.061)).startswith("error rate")
        assert rollout.guardrail_breach(_metrics(cand_p95=20.1)).startswith("p95 latency")

    def test_guardrail_breach_is_none_exactly_at_the_limits(self):
        rollout, _, _, _ = _canary(max_error_rate_increase=0.25, max_p95_latency_ratio=1.5)
        assert rollout.guardrail_breach(_metrics(base_errors=0.25, cand_errors=0.5, base_p95=10.0, cand_p95=15.0)) is None

    def test_guardrail_breach_is_none_for_metrics_without_data(self):
        rollout, _, _, _ = _canary()
        assert rollout.guardrail_breach(_metrics(cand_errors=math.nan, cand_p95=math.nan)) is None
        assert rollout.guardrail_breach(_metrics(base_errors=math.nan, base_p95=math.nan, cand_errors=0.9)) is None

    def test_healthy_canary_moves_through_every_step_to_all_users(self):
        rollout, clock, _, _ = _canary()
        assert rollout.run(_traffic(clock)) == "completed"
        assert [event["action"] for event in rollout.history] == ["start"] + ["advance"] * 4 + ["complete"]
        assert [event["candidate_share"] for event in rollout.history] == [0.01, 0.05, 0.25, 0.5, 1.0, 1.0]
        assert [event["step"] for event in rollout.history] == [0, 1, 2, 3, 4, 4]
        assert rollout.candidate_share == 1.0 and rollout.reason is None
        assert {rollout.router.route(f"user-{i}") for i in range(500)} == {"v2.0.0"}

    def test_canary_holds_a_step_until_its_time_and_requests_are_in(self):
        rollout, clock, _, _ = _canary()
        rollout.start()
        assert rollout.candidate_share == 0.01
        assert rollout.check() == "hold"  # no requests, no time
        clock.advance(120)
        assert rollout.check() == "hold"  # time, but no requests yet
        _traffic(clock, users_per_tick=20_000)(rollout)
        assert rollout.served["v2.0.0"] >= 50
        assert rollout.check() == "advance" and rollout.candidate_share == 0.05
        assert rollout.check() == "hold"  # the new step starts from zero time and requests

    def test_canary_holds_a_step_with_requests_but_not_enough_time(self):
        rollout, clock, _, _ = _canary(min_step_duration_s=600)
        rollout.start()
        for _ in range(10):
            _traffic(clock, users_per_tick=2_000)(rollout)  # 30 s and about 20 candidate requests each
            assert rollout.check() == "hold"
        assert rollout.served["v2.0.0"] >= 50

    def test_canary_counts_each_request_once_for_the_version_that_answered(self):
        rollout, _, _, _ = _canary()
        rollout.start()
        rollout.router.set_weights({"v2.0.0": 0.5, "v1.1.0": 0.5})
        answered = [rollout.predict(CANCER.X_test[:1], user_id=user)["variant"] for user in USERS[:2_000]]
        assert rollout.served == {"v1.1.0": answered.count("v1.1.0"), "v2.0.0": answered.count("v2.0.0")}
        assert sum(rollout.served.values()) == 2_000

    def test_canary_rolls_back_when_the_candidate_is_slower(self):
        rollout, clock, _, _ = _canary(candidate_latency_ms=25.0)
        assert rollout.run(_traffic(clock)) == "rolled back"
        assert rollout.status == "rolled back" and rollout.candidate_share == 0.0
        assert rollout.reason == "p95 latency 25.0 ms is above 1.2 x the baseline's 10.0 ms"
        assert rollout.history[-1]["action"] == "rollback" and rollout.history[-1]["reason"] == rollout.reason
        assert {rollout.router.route(f"user-{i}") for i in range(500)} == {"v1.1.0"}

    def test_canary_rolls_back_on_an_error_burst_mid_rollout(self):
        rollout, clock, _, new = _canary()
        send = _traffic(clock)
        rollout.start()
        while rollout.candidate_share < 0.25:
            send(rollout)
            rollout.check()
        new.failing = True  # the candidate starts crashing at 25%
        send(rollout)
        assert rollout.check() == "rollback"
        assert rollout.status == "rolled back" and rollout.reason.startswith("error rate")
        assert rollout.history[-1]["candidate"]["error_rate"] > 0.01

    def test_canary_does_not_judge_before_min_requests(self):
        rollout, clock, _, new = _canary(min_requests=500)
        new.failing = True
        rollout.start()
        _traffic(clock, users_per_tick=10_000)(rollout)  # about 100 failed candidate requests: too few to judge
        assert 0 < rollout.served["v2.0.0"] < 500
        assert rollout.check() == "hold" and rollout.status == "running"

    def test_canary_tolerates_a_slowdown_within_its_ratio(self):
        rollout, clock, _, _ = _canary(candidate_latency_ms=11.0, max_p95_latency_ratio=1.2)
        assert rollout.run(_traffic(clock)) == "completed"

    def test_canary_after_a_rollback_changes_nothing(self):
        rollout, clock, _, _ = _canary(candidate_latency_ms=50.0)
        rollout.run(_traffic(clock))
        events = len(rollout.history)
        clock.advance(1_000)
        assert rollout.check() == "rolled back"
        assert rollout.candidate_share == 0.0 and len(rollout.history) == events

    def test_canary_after_completion_changes_nothing(self):
        rollout, clock, _, _ = _canary()
        rollout.run(_traffic(clock))
        events = len(rollout.history)
        _traffic(clock)(rollout)
        assert rollout.check() == "completed"
        assert rollout.candidate_share == 1.0 and len(rollout.history) == events

    @pytest.mark.parametrize("failure", ["slowdown", "errors"])
    def test_canary_reads_each_versions_own_monitor(self, failure):
        # The baseline is the one in trouble: a canary that mixed up the monitors would roll back.
        clock = FakeClock()
        old = Served(V1, clock, 30.0 if failure == "slowdown" else 10.0)
        new = Served(V2, clock, 10.0)
        old_failures = iter(range(10**9))
        original = old.predict

        def flaky(X):  # the baseline fails one request in 10
            old.failing = next(old_failures) % 10 == 0
            try:
                return original(X)
            finally:
                old.failing = False

        if failure == "errors":
            old.predict = flaky
        rollout = CanaryRollout(old, new, baseline_monitor=old.monitor, candidate_monitor=new.monitor,
                                min_step_duration_s=60, min_requests=50, clock=clock)
        assert rollout.run(_traffic(clock)) == "completed"


class TestShadowMode:
    """8. Shadow mode: ``ShadowDeployment.predict``."""

    pytestmark = pytest.mark.section8

    def test_shadow_predictions_are_never_returned(self):
        primary, shadow = Constant(0), Constant(99)
        serving = ShadowDeployment(primary, shadow)
        for n in (1, 5, 3):
            assert serving.predict(np.zeros((n, 2))).tolist() == [0] * n
        assert shadow.calls == 3
        assert serving.agreement_rate() == 0.0
        assert [record["shadow"] for record in serving.log] == [[99], [99] * 5, [99] * 3]

    def test_shadow_log_records_each_request_as_documented(self):
        serving = ShadowDeployment(Constant(1), V1)
        serving.predict(CANCER.X_test[:4])
        shadow = V1.predict(CANCER.X_test[:4]).tolist()
        assert list(serving.log) == [{"rows": 4, "agreed": shadow.count(1), "primary": [1, 1, 1, 1],
                                      "shadow": shadow, "error": None}]

    def test_shadow_returns_the_primarys_answer_object_unchanged(self):
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

    def test_shadow_receives_a_copy_it_cannot_change(self):
        class Vandal:
            def predict(self, X):
                X[:] = -1.0
                return np.zeros(len(X))

        X = np.ones((4, 2))
        serving = ShadowDeployment(Constant(0), Vandal())
        serving.predict(X)
        assert (X == 1.0).all()

    def test_shadow_sees_what_the_user_sent_even_if_the_primary_changes_it(self):
        class Vandal:
            def predict(self, X):
                X[:] = -1.0
                return np.zeros(len(X))

        class Echo:
            def predict(self, X):
                self.seen = np.array(X, copy=True)
                return np.zeros(len(X))

        echo = Echo()
        ShadowDeployment(Vandal(), echo).predict(np.ones((3, 2)))
        assert (echo.seen == 1.0).all()

    def test_a_failing_shadow_is_never_felt_by_the_user(self):
        class Broken:
            def predict(self, X):
                raise RuntimeError("shadow crashed")

        serving = ShadowDeployment(V1, Broken())
        assert serving.predict(CANCER.X_test[:4]).tolist() == V1.predict(CANCER.X_test[:4]).tolist()
        assert serving.summary()["shadow_errors"] == 1
        assert serving.log[-1]["error"] == "RuntimeError: shadow crashed"
        assert serving.log[-1]["agreed"] == 0 and serving.log[-1]["shadow"] is None

    def test_a_shadow_answer_of_the_wrong_shape_is_an_error_not_an_agreement(self):
        class OneTooMany:
            def predict(self, X):
                return np.ones(len(X) + 1)

        serving = ShadowDeployment(Constant(1), OneTooMany())
        assert serving.predict(np.zeros((3, 2))).tolist() == [1, 1, 1]
        assert serving.summary() == {"requests": 1, "rows": 3, "agreement_rate": 0.0, "shadow_errors": 1}
        assert serving.log[-1]["error"] == "ValueError: shadow answered shape (4,) for the primary's (3,)"

    def test_shadow_agreement_rate_counts_rows_over_requests(self):
        serving = ShadowDeployment(V1, V2)
        for start in range(0, len(CANCER.X_test), 10):
            serving.predict(CANCER.X_test[start:start + 10])
        expected = np.mean(V1.predict(CANCER.X_test) == V2.predict(CANCER.X_test))
        assert serving.agreement_rate() == pytest.approx(expected)
        assert serving.summary()["rows"] == len(CANCER.X_test)

    def test_shadow_counts_every_request_beyond_the_log(self):
        serving = ShadowDeployment(Constant(1), Constant(1), log_size=2)
        for n in (1, 2, 3, 4, 5):
            serving.predict(np.zeros((n, 2)))
        assert len(serving.log) == 2 and [record["rows"] for record in serving.log] == [4, 5]
        assert serving.summary() == {"requests": 5, "rows": 15, "agreement_rate": 1.0, "shadow_errors": 0}

    def test_shadow_returns_a_regressions_numbers_exactly(self):
        class Probability:  # a model that answers numbers, like a regression
            def predict(self, X):
                return V2.predict_proba(X)[:, 1]

        serving = ShadowDeployment(Probability(), Constant(0.5), atol=0.1)
        answer = serving.predict(CANCER.X_test[:20])
        assert answer.tolist() == V2.predict_proba(CANCER.X_test[:20])[:, 1].tolist()

    def test_shadow_agreement_for_numbers_uses_a_tolerance(self):
        class Plus:
            def __init__(self, delta):
                self.delta = delta

            def predict(self, X):
                return np.asarray(X, dtype=float)[:, 0] + self.delta

        within = ShadowDeployment(Plus(0.0), Plus(0.01), atol=0.02)
        within.predict([[1.0], [2.0]])
        beyond = ShadowDeployment(Plus(0.0), Plus(0.03), atol=0.02)
        beyond.predict([[1.0], [2.0]])
        exact = ShadowDeployment(Plus(0.0), Plus(0.01))
        exact.predict([[1.0], [2.0]])
        assert (within.agreement_rate(), beyond.agreement_rate(), exact.agreement_rate()) == (1.0, 0.0, 0.0)
