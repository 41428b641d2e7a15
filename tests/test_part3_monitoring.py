"""Part 3: monitoring a deployed model: latency, throughput, errors, labels, Prometheus, data drift.

Read with notebooks/03_monitoring_and_drift.ipynb. Run just this part with
``pytest -m part3`` (or ``make grade PART=3``).
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pandas as pd
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats

from deployment import (
    ModelMonitor,
    ValidationError,
    detect_data_drift,
    drift_over_time,
    ks_statistics,
    psi_scores,
    wasserstein_scores,
)

pytestmark = pytest.mark.part3


class FakeClock:
    """A clock that only moves when told to: ``clock.now += 0.5``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def _latencies(n: int, seed: int = 0) -> np.ndarray:
    """Skewed, realistic latencies in ms: mostly a few ms, with a long tail."""
    return np.random.default_rng(seed).lognormal(mean=1.0, sigma=0.6, size=n)


def _samples(monitor_text: str) -> dict[tuple[str, tuple], float]:
    """Parse Prometheus text with prometheus_client's own parser: {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(monitor_text)
        for sample in family.samples
    }


# --- latency, throughput, errors --------------------------------------------------------

def test_prediction_ids_count_up_from_zero():
    monitor = ModelMonitor()
    ids = [monitor.log_prediction(np.array([1.0, 2.0]), 0, latency_ms=1.0) for _ in range(5)]
    assert ids == [0, 1, 2, 3, 4]


def test_percentiles_equal_numpy_percentile_over_the_window():
    latencies = _latencies(2_500)
    monitor = ModelMonitor(window_size=1_000)
    for latency in latencies:
        monitor.log_prediction(np.array([0.0, 1.0]), 1, float(latency))
    metrics = monitor.get_metrics()
    window = latencies[-1_000:]
    for q in (50, 95, 99):
        assert metrics[f"p{q}_latency_ms"] == np.percentile(window, q)
    assert metrics["avg_latency_ms"] == pytest.approx(window.mean(), rel=1e-12)


def test_window_holds_the_last_window_size_requests_but_totals_count_all():
    monitor = ModelMonitor(window_size=100)
    for i in range(250):
        monitor.log_prediction([float(i)], 0, latency_ms=float(i))
    metrics = monitor.get_metrics()
    assert metrics["window_requests"] == 100
    assert metrics["total_predictions"] == 250
    assert metrics["p50_latency_ms"] == np.percentile(np.arange(150, 250.0), 50)


def test_recent_latencies_are_the_successful_requests_in_the_window_oldest_first():
    monitor = ModelMonitor(window_size=4)
    for latency in (1.0, 2.0, 3.0):
        monitor.log_prediction([1.0], 0, latency)
    monitor.log_error(50.0, "Timeout")
    monitor.log_prediction([1.0], 0, 4.0)
    np.testing.assert_array_equal(monitor.recent_latencies_ms(), [2.0, 3.0, 4.0])


def test_time_window_drops_requests_older_than_window_s(clock):
    monitor = ModelMonitor(window_size=1_000, window_s=10.0, clock=clock)
    for latency in (100.0, 200.0, 300.0):  # at t = 0 s, 5 s, 10 s
        monitor.log_prediction([1.0], 0, latency)
        clock.now += 5.0
    clock.now -= 5.0  # read at t = 10 s: all three are within the last 10 s
    assert monitor.get_metrics()["window_requests"] == 3
    clock.now += 1.0  # t = 11 s: the one at t = 0 s is out
    metrics = monitor.get_metrics()
    assert metrics["window_requests"] == 2
    assert metrics["p50_latency_ms"] == 250.0
    assert metrics["total_predictions"] == 3


def test_error_rate_is_failed_over_all_requests_in_the_window():
    monitor = ModelMonitor(window_size=10)
    for _ in range(6):
        monitor.log_prediction([1.0], 0, latency_ms=2.0)
    for _ in range(2):
        monitor.log_error(1.0, ValueError("bad row"))
    assert monitor.get_metrics()["error_rate"] == 2 / 8
    for _ in range(10):  # ten successes push both errors out of the window
        monitor.log_prediction([1.0], 0, latency_ms=2.0)
    metrics = monitor.get_metrics()
    assert metrics["error_rate"] == 0.0
    assert metrics["total_errors"] == 2


def test_failed_requests_stay_out_of_the_latency_percentiles():
    monitor = ModelMonitor()
    for latency in (10.0, 20.0, 30.0):
        monitor.log_prediction([1.0], 0, latency)
    monitor.log_error(5_000.0, "Timeout")
    metrics = monitor.get_metrics()
    assert metrics["p99_latency_ms"] == np.percentile([10.0, 20.0, 30.0], 99)
    assert metrics["max_latency_ms"] == 30.0
    assert metrics["total_predictions"] == 3


def test_throughput_is_requests_per_second_by_the_clock(clock):
    monitor = ModelMonitor(clock=clock)
    for _ in range(101):
        monitor.log_prediction([1.0], 0, latency_ms=1.0)
        clock.now += 0.01
    clock.now -= 0.01  # read at the moment of the last request
    assert monitor.get_metrics()["throughput_rps"] == pytest.approx(100.0)


def test_throughput_falls_when_traffic_stops(clock):
    monitor = ModelMonitor(clock=clock)
    for _ in range(11):
        monitor.log_prediction([1.0], 0, latency_ms=1.0)
        clock.now += 0.1
    busy = monitor.get_metrics()["throughput_rps"]
    clock.now += 60.0
    assert monitor.get_metrics()["throughput_rps"] < busy / 10


def test_empty_monitor_returns_zeros_and_none_without_raising():
    metrics = ModelMonitor().get_metrics()
    for key in ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                "error_rate", "throughput_rps"):
        assert metrics[key] == 0.0, key
    assert metrics["total_predictions"] == 0
    assert metrics["accuracy"] is None and metrics["mae"] is None


def test_empty_monitor_has_no_rows_or_latencies_and_renders_zero_counts():
    monitor = ModelMonitor()
    assert monitor.recent_features().shape == (0, 0)
    assert len(monitor.recent_latencies_ms()) == 0
    samples = _samples(monitor.to_prometheus())
    assert samples[("model_prediction_latency_seconds_count", ())] == 0
    assert samples[("model_predictions_total", ())] == 0


def test_cpu_percent_sees_this_process_working():
    monitor = ModelMonitor()
    started = time.process_time()
    while time.process_time() - started < 0.2:  # 0.2 s of CPU, however busy the machine is
        sum(range(1_000))
    assert monitor.get_metrics()["cpu_percent"] > 0.0


def test_memory_mb_is_this_process_resident_memory():
    memory_mb = ModelMonitor().get_metrics()["memory_mb"]
    assert memory_mb == pytest.approx(psutil.Process().memory_info().rss / 2**20, rel=0.1)


def test_memory_stays_bounded_by_the_window():
    monitor = ModelMonitor(window_size=1_000)
    row = np.arange(8.0)

    def log(n):
        for i in range(n):
            monitor.log_prediction(row, 1, 1.0 + i % 7)

    log(3_000)  # buffers allocated, the ring wrapped a few times
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        log(30_000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, f"memory grew by {grown} bytes over 30,000 calls"
    assert monitor.get_metrics()["total_predictions"] == 33_000


def test_every_row_of_a_batch_is_kept_for_drift_checks_newest_last():
    monitor = ModelMonitor(feature_window=5)
    monitor.log_prediction(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]), np.array([0, 1, 0]), 4.0)
    monitor.log_prediction([4.0, 40.0], 1, 2.0)
    monitor.log_prediction([[5.0, 50.0], [6.0, 60.0]], [0, 0], 3.0)
    np.testing.assert_array_equal(monitor.recent_features()[:, 0], [2.0, 3.0, 4.0, 5.0, 6.0])
    assert monitor.get_metrics()["total_predictions"] == 3  # requests, not rows


def test_rows_of_another_width_are_refused():
    monitor = ModelMonitor()
    monitor.log_prediction([1.0, 2.0, 3.0], 0, 1.0)
    with pytest.raises(ValidationError, match="features"):
        monitor.log_prediction(np.array([1.0, 2.0]), 0, 1.0)


def test_a_numpy_row_of_text_after_good_rows_is_refused_and_nothing_is_logged():
    monitor = ModelMonitor()
    monitor.log_prediction(np.array([1.0, 2.0]), 0, 1.0)
    with pytest.raises(ValidationError, match="features"):
        monitor.log_prediction(np.array(["1.5", "fast"]), 0, 1.0)
    assert monitor.get_metrics()["total_predictions"] == 1
    np.testing.assert_array_equal(monitor.recent_features(), [[1.0, 2.0]])


@pytest.mark.parametrize("latency_ms", [-1.0, math.nan, math.inf, None, "fast"])
def test_impossible_latency_is_refused_and_nothing_is_logged(latency_ms):
    monitor = ModelMonitor()
    with pytest.raises(ValidationError, match="latency_ms"):
        monitor.log_prediction([1.0], 0, latency_ms)
    with pytest.raises(ValidationError, match="latency_ms"):
        monitor.log_error(latency_ms, "Timeout")
    metrics = monitor.get_metrics()
    assert metrics["window_requests"] == 0 and metrics["total_errors"] == 0


@pytest.mark.parametrize("features", [["a", "b"], np.zeros((2, 2, 2)), [[]]], ids=["text", "3-D", "no-features"])
def test_features_that_are_not_rows_of_numbers_are_refused_and_nothing_is_logged(features):
    monitor = ModelMonitor()
    with pytest.raises(ValidationError, match="features"):
        monitor.log_prediction(features, 0, 1.0)
    assert monitor.get_metrics()["total_predictions"] == 0
    assert monitor.recent_features().shape == (0, 0)


@pytest.mark.parametrize("options, match", [
    ({"window_size": 0}, "window_size"),
    ({"window_size": 2.5}, "window_size"),
    ({"window_size": True}, "window_size"),
    ({"feature_window": 0}, "feature_window"),
    ({"window_s": 0.0}, "window_s"),
    ({"window_s": math.inf}, "window_s"),
    ({"window_s": "10"}, "window_s"),
    ({"task": "ranking"}, "task"),
    ({"latency_buckets_ms": ()}, "latency_buckets_ms"),
    ({"latency_buckets_ms": (5.0, 1.0)}, "latency_buckets_ms"),
    ({"latency_buckets_ms": (0.0, 1.0)}, "latency_buckets_ms"),
    ({"labels": {"model-name": "x"}}, "label name 'model-name'"),
    ({"labels": {"le": "x"}}, "label name 'le'"),
])
def test_impossible_monitor_settings_are_refused(options, match):
    with pytest.raises(ValidationError, match=match):
        ModelMonitor(**options)


def test_time_window_also_bounds_the_rows_kept_for_drift(clock):
    monitor = ModelMonitor(window_s=10.0, clock=clock)
    for value in (1.0, 2.0, 3.0):  # at t = 0 s, 6 s, 12 s
        monitor.log_prediction([value], 0, 1.0)
        clock.now += 6.0
    clock.now -= 6.0  # read at t = 12 s: the row of t = 0 s is out
    np.testing.assert_array_equal(monitor.recent_features(), [[2.0], [3.0]])


# --- labels that arrive late ----------------------------------------------------------------

def test_labels_arriving_late_and_out_of_order_give_accuracy():
    monitor = ModelMonitor()
    ids = [monitor.log_prediction([float(i)], prediction, 1.0) for i, prediction in enumerate([1, 0, 1, 1])]
    assert monitor.get_metrics()["accuracy"] is None
    for prediction_id, actual in zip(reversed(ids), [1, 0, 1, 1]):  # truths of ids 3, 2, 1, 0
        assert monitor.log_ground_truth(prediction_id, actual) is True
    metrics = monitor.get_metrics()
    assert metrics["accuracy"] == 0.5  # ids 0 and 3 right, 1 and 2 wrong
    assert metrics["mae"] is None
    assert metrics["labelled_rows"] == 4
    samples = _samples(monitor.to_prometheus())
    assert samples[("model_accuracy", ())] == 0.5
    assert ("model_mae", ()) not in samples


def test_regression_labels_give_mean_absolute_error():
    monitor = ModelMonitor()
    first = monitor.log_prediction([1.0], 10.0, 1.0)
    second = monitor.log_prediction([2.0], 20.0, 1.0)
    monitor.log_ground_truth(second, 23.0)
    monitor.log_ground_truth(first, 9.0)
    metrics = monitor.get_metrics()
    assert metrics["mae"] == 2.0
    assert metrics["accuracy"] is None


def test_a_batch_label_counts_every_row():
    monitor = ModelMonitor()
    batch = monitor.log_prediction([[1.0], [2.0], [3.0], [4.0]], np.array([0, 1, 1, 0]), 2.0)
    single = monitor.log_prediction([5.0], 1, 1.0)
    monitor.log_ground_truth(batch, np.array([0, 1, 0, 0]))
    monitor.log_ground_truth(single, 0)
    assert monitor.get_metrics()["accuracy"] == 3 / 5


def test_label_for_a_prediction_out_of_the_window_is_dropped_and_counted():
    monitor = ModelMonitor(window_size=3)
    old = monitor.log_prediction([1.0], 1, 1.0)
    for _ in range(3):
        monitor.log_prediction([1.0], 1, 1.0)
    assert monitor.log_ground_truth(old, 1) is False
    metrics = monitor.get_metrics()
    assert metrics["late_labels"] == 1 and metrics["accuracy"] is None


def test_accuracy_covers_the_last_feature_window_labelled_rows():
    monitor = ModelMonitor(feature_window=4)
    ids = [monitor.log_prediction([1.0], 1, 1.0) for _ in range(8)]
    for prediction_id, actual in zip(ids, [0, 0, 0, 0, 1, 1, 1, 0]):
        monitor.log_ground_truth(prediction_id, actual)
    assert monitor.get_metrics()["accuracy"] == 3 / 4


@pytest.mark.parametrize("prediction_id, actual, match", [
    (7, 1, "no prediction"),
    (-1, 1, "no prediction"),
    ("0", 1, "whole number"),
    (0.0, 1, "whole number"),
    (0, [1, 0], "shape"),
])
def test_bad_labels_are_refused(prediction_id, actual, match):
    monitor = ModelMonitor()
    monitor.log_prediction([1.0], 1, 1.0)
    with pytest.raises(ValidationError, match=match):
        monitor.log_ground_truth(prediction_id, actual)


def test_a_second_label_for_one_prediction_is_refused():
    monitor = ModelMonitor()
    prediction_id = monitor.log_prediction([1.0], 1, 1.0)
    monitor.log_ground_truth(prediction_id, 1)
    with pytest.raises(ValidationError, match="already"):
        monitor.log_ground_truth(prediction_id, 0)


# --- Prometheus -------------------------------------------------------------------------------

def test_prometheus_histogram_parses_and_counts_every_prediction():
    latencies = _latencies(500, seed=3)
    monitor = ModelMonitor(window_size=100)  # the histogram covers all time, not the window
    for latency in latencies:
        monitor.log_prediction([1.0], 0, float(latency))
    families = {f.name: f for f in text_string_to_metric_families(monitor.to_prometheus())}
    histogram = families["model_prediction_latency_seconds"]
    assert histogram.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["+Inf"] == 500
    for le, count in buckets.items():
        if le != "+Inf":
            assert count == np.sum(latencies / 1000 <= float(le)), le
    values = {s.name: s.value for s in histogram.samples}
    assert values["model_prediction_latency_seconds_count"] == 500
    assert values["model_prediction_latency_seconds_sum"] == pytest.approx(latencies.sum() / 1000, rel=1e-9)


def test_prometheus_histogram_counts_each_prediction_once_across_scrapes():
    latencies = _latencies(730, seed=4)
    monitor = ModelMonitor(window_size=100)
    counts = []
    for i, latency in enumerate(latencies):
        monitor.log_prediction([1.0], 0, float(latency))
        if i % 3 == 0:
            monitor.log_error(float(latency), "Timeout")  # failed requests stay out of the histogram
        if i in (41, 250, 399, 400, 729):  # scrapes inside the ring, at its wrap, and at the end
            samples = _samples(monitor.to_prometheus())
            counts.append(samples[("model_prediction_latency_seconds_count", ())])
    assert counts == [42, 251, 400, 401, 730]
    assert samples[("model_prediction_latency_seconds_bucket", (("le", "0.005"),))] == np.sum(latencies <= 5.0)
    assert samples[("model_prediction_latency_seconds_sum", ())] == pytest.approx(latencies.sum() / 1000, rel=1e-9)


def test_prometheus_counts_predictions_and_errors_by_type():
    monitor = ModelMonitor()
    for _ in range(4):
        monitor.log_prediction([1.0], 0, 1.0)
    monitor.log_error(2.0, ValueError("bad row"))
    monitor.log_error(3.0, ValueError("another"))
    monitor.log_error(9.0, "Timeout")
    monitor.log_error(4.0, KeyError)  # a class counts under its name too
    samples = _samples(monitor.to_prometheus())
    assert samples[("model_predictions_total", ())] == 4
    assert samples[("model_prediction_errors_total", (("error", "ValueError"),))] == 2
    assert samples[("model_prediction_errors_total", (("error", "Timeout"),))] == 1
    assert samples[("model_prediction_errors_total", (("error", "KeyError"),))] == 1
    assert samples[("model_error_rate", ())] == pytest.approx(4 / 8)


def test_prometheus_window_percentiles_match_get_metrics():
    monitor = ModelMonitor()
    for latency in _latencies(300, seed=5):
        monitor.log_prediction([1.0], 0, float(latency))
    samples = _samples(monitor.to_prometheus())
    metrics = monitor.get_metrics()
    assert samples[("model_latency_window_milliseconds", (("quantile", "0.95"),))] == pytest.approx(
        metrics["p95_latency_ms"], rel=1e-12)


def test_prometheus_samples_carry_the_monitor_labels_escaped():
    monitor = ModelMonitor(labels={"model": "cancer", "note": 'say "hi"\\now\nthen'})
    monitor.log_prediction([1.0], 0, 1.0)
    samples = _samples(monitor.to_prometheus())
    labels = (("model", "cancer"), ("note", 'say "hi"\\now\nthen'))
    assert samples[("model_predictions_total", labels)] == 1


# --- data drift -------------------------------------------------------------------------------

@pytest.mark.parametrize("n_reference, n_new", [(400, 400), (300, 200), (57, 91), (12_000, 11_000)])
def test_ks_statistic_and_p_value_equal_scipy(n_reference, n_new):
    rng = np.random.default_rng(n_reference)
    reference = rng.normal(size=(n_reference, 4))
    new = rng.normal(size=(n_new, 4)) + [0.0, 0.05, 0.1, 0.3]
    result = detect_data_drift(new, reference)
    for j, feature in enumerate(result["features"]):
        expected = stats.ks_2samp(reference[:, j], new[:, j])
        assert feature["feature"] == j
        assert feature["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
        assert feature["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_handles_tied_values_as_scipy_does():
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 5, size=(300, 3)).astype(float)
    new = rng.integers(0, 6, size=(250, 3)).astype(float)
    statistics = ks_statistics(new, reference)
    expected = [stats.ks_2samp(reference[:, j], new[:, j]).statistic for j in range(3)]
    np.testing.assert_allclose(statistics, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_reference, n_new", [(300, 250), (12_000, 10_500)], ids=["exact", "asymptotic"])
def test_ks_p_values_with_tied_values_equal_scipy(n_reference, n_new):
    rng = np.random.default_rng(n_new)
    reference = rng.integers(0, 8, size=(n_reference, 3)).astype(float)
    new = rng.integers(0, 8, size=(n_new, 3)).astype(float) + (rng.random((n_new, 3)) < [0.0, 0.02, 0.2])
    for j, feature in enumerate(detect_data_drift(new, reference)["features"]):
        expected = stats.ks_2samp(reference[:, j], new[:, j])
        assert feature["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
        assert feature["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_score_is_the_largest_statistic_and_drift_uses_bonferroni():
    rng = np.random.default_rng(11)
    reference, new = rng.normal(size=(500, 10)), rng.normal(size=(500, 10))
    new[:, 6] += 0.4
    result = detect_data_drift(new, reference, alpha=0.05)
    statistics = [f["statistic"] for f in result["features"]]
    assert result["score"] == max(statistics)
    assert result["threshold"] == pytest.approx(0.05 / 10)
    assert [f["drifted"] for f in result["features"]] == [f["p_value"] < 0.005 for f in result["features"]]
    assert result["is_drift"] and result["features"][6]["drifted"]


def test_a_feature_below_alpha_but_above_the_bonferroni_threshold_is_not_drift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(1_000, 20))
    for seed in range(200):  # find a clean sample whose smallest p-value lies in (alpha / 20, alpha)
        new = np.random.default_rng(seed).normal(size=(1_000, 20))
        p_values = [f["p_value"] for f in detect_data_drift(new, reference)["features"]]
        if 0.05 / 20 < min(p_values) < 0.05:
            break
    else:
        pytest.fail("no sample with a p-value between alpha / 20 and alpha")
    assert detect_data_drift(new, reference)["is_drift"] is False


def _psi_one_feature(new: np.ndarray, reference: np.ndarray) -> float:
    """PSI written out plainly, one bin at a time."""
    edges = [-np.inf, *np.quantile(reference, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), np.inf]
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        r = np.mean((reference >= low) & (reference < high)) or 1e-4
        n = np.mean((new >= low) & (new < high)) or 1e-4
        total += (n - r) * math.log(n / r)
    return total


def test_psi_uses_reference_deciles_and_a_floor_for_empty_bins():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(2_000, 3))
    new = np.column_stack([rng.normal(size=800), rng.normal(0.5, 1.0, size=800), np.full(800, 0.1)])
    expected = [_psi_one_feature(new[:, j], reference[:, j]) for j in range(3)]
    np.testing.assert_allclose(psi_scores(new, reference), expected, rtol=1e-9)


def test_psi_flags_drift_above_0_2():
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(5_000, 2))
    new = np.column_stack([rng.normal(size=5_000), rng.normal(0.8, 1.0, size=5_000)])
    result = detect_data_drift(new, reference, method="psi")
    assert [f["drifted"] for f in result["features"]] == [False, True]
    assert [f["p_value"] for f in result["features"]] == [None, None]
    assert result["score"] == pytest.approx(result["features"][1]["statistic"]) and result["score"] > 0.2


def test_wasserstein_is_scipys_distance_over_the_reference_std():
    rng = np.random.default_rng(5)
    reference = rng.gamma(2.0, 3.0, size=(700, 3))
    new = rng.gamma(2.2, 3.0, size=(450, 3))
    new[:, 2] = np.round(new[:, 2])  # ties
    expected = [stats.wasserstein_distance(reference[:, j], new[:, j]) / reference[:, j].std() for j in range(3)]
    np.testing.assert_allclose(wasserstein_scores(new, reference), expected, rtol=1e-9)


def test_wasserstein_flags_drift_at_a_tenth_of_a_standard_deviation():
    rng = np.random.default_rng(6)
    reference = rng.normal(0.0, 3.0, size=(4_000, 2))
    spread = reference.std(axis=0)
    new = reference + [0.09 * spread[0], 0.11 * spread[1]]  # every value moved by 0.09 and 0.11 std
    result = detect_data_drift(new, reference, method="wasserstein")
    assert [f["drifted"] for f in result["features"]] == [False, True]
    assert [f["statistic"] for f in result["features"]] == pytest.approx([0.09, 0.11], rel=1e-9)


def test_wasserstein_drift_includes_exactly_a_tenth_of_a_standard_deviation():
    reference = np.tile([[-10.0], [10.0]], (50, 1))  # standard deviation exactly 10
    result = detect_data_drift(reference + 1.0, reference, method="wasserstein")
    assert result["features"][0]["statistic"] == 0.1
    assert result["is_drift"] is True


def test_the_false_alarm_rate_on_same_distribution_samples_is_at_most_alpha():
    rng = np.random.default_rng(2024)
    trials, alpha = 2_000, 0.05
    alarms = sum(
        detect_data_drift(rng.normal(size=(150, 20)), rng.normal(size=(150, 20)), alpha=alpha)["is_drift"]
        for _ in range(trials)
    )
    assert alarms / trials <= alpha


def test_a_shift_of_a_fifth_of_a_standard_deviation_in_one_of_20_features_is_found():
    rng = np.random.default_rng(99)
    trials, found = 60, 0
    for _ in range(trials):
        reference, new = rng.normal(size=(5_000, 20)), rng.normal(size=(5_000, 20))
        new[:, 13] += 0.2
        result = detect_data_drift(new, reference)
        found += result["is_drift"] and result["features"][13]["drifted"]
    assert found / trials >= 0.95


@pytest.mark.parametrize("new, reference, match", [
    (np.zeros((10, 3)), np.zeros((10, 4)), "features"),
    (np.zeros((1, 3)), np.zeros((10, 3)), "new_data has 1 rows"),
    (np.zeros((10, 3)), np.zeros((1, 3)), "reference_data has 1 rows"),
    (np.array([[0.0, np.nan]] * 5), np.zeros((5, 2)), r"new_data\[0, 1\] is nan"),
    (np.zeros((5, 2)), np.array([[np.inf, 0.0]] * 5), r"reference_data\[0, 0\] is inf"),
    ([["a", "b"]] * 5, np.zeros((5, 2)), "new_data must be a 2-D array of numbers"),
    (np.zeros((5, 2)), None, "reference_data must be 2-D"),
    (np.zeros((5, 2, 2)), np.zeros((5, 2)), "new_data must be 2-D"),
], ids=["feature-counts", "one-new-row", "one-reference-row", "nan", "inf", "text", "none", "3-D"])
@pytest.mark.parametrize("method", ["ks", "psi", "wasserstein"])
def test_bad_samples_are_refused(new, reference, match, method):
    with pytest.raises(ValidationError, match=match):
        detect_data_drift(new, reference, method=method)


@pytest.mark.parametrize("options, match", [
    ({"method": "chi2"}, "method 'chi2'"),
    ({"method": None}, "method None"),
    ({"alpha": 0.0}, "alpha 0.0"),
    ({"alpha": 1.5}, "alpha 1.5"),
    ({"alpha": "0.05"}, "alpha '0.05'"),
    ({"alpha": None}, "alpha None"),
])
def test_bad_method_or_alpha_is_refused(options, match):
    with pytest.raises(ValidationError, match=match):
        detect_data_drift(np.zeros((5, 2)), np.ones((5, 2)), **options)


def test_a_dataframe_reference_names_the_features():
    rng = np.random.default_rng(8)
    reference = pd.DataFrame(rng.normal(size=(200, 2)), columns=["age", "income"])
    result = detect_data_drift(rng.normal(size=(200, 2)), reference)
    assert [f["feature"] for f in result["features"]] == ["age", "income"]


def test_dataframes_with_columns_in_another_order_are_refused():
    rng = np.random.default_rng(8)
    reference = pd.DataFrame(rng.normal(size=(200, 2)), columns=["age", "income"])
    with pytest.raises(ValidationError, match="columns"):
        detect_data_drift(reference[["income", "age"]], reference)


def test_the_monitor_checks_its_own_recent_rows_for_drift():
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(2_000, 3))
    monitor = ModelMonitor(feature_window=1_000)
    for row in rng.normal(size=(1_000, 3)) + [0.0, 0.0, 1.0]:
        monitor.log_prediction(row, 0, 1.0)
    result = monitor.detect_data_drift(monitor.recent_features(), reference)
    assert [f["drifted"] for f in result["features"]] == [False, False, True]


def test_drift_over_time_scores_consecutive_windows_and_finds_a_sudden_shift():
    rng = np.random.default_rng(10)
    reference = rng.normal(size=(2_000, 3))
    stream = rng.normal(size=(3_000, 3))
    stream[1_500:, 1] += 1.0  # a sudden shift halfway
    table = drift_over_time(stream, reference, window=500)
    assert table["start"].tolist() == [0, 500, 1000, 1500, 2000, 2500]
    assert table["stop"].tolist() == [500, 1000, 1500, 2000, 2500, 3000]
    assert table["is_drift"].tolist() == [False, False, False, True, True, True]
    window = stream[1_500:2_000]
    assert table.loc[3, "score"] == pytest.approx(detect_data_drift(window, reference)["score"])
    assert table.loc[3, "1"] == pytest.approx(stats.ks_2samp(reference[:, 1], window[:, 1]).statistic)


def test_drift_over_time_can_overlap_windows():
    rng = np.random.default_rng(12)
    stream, reference = rng.normal(size=(1_000, 2)), rng.normal(size=(500, 2))
    table = drift_over_time(stream, reference, window=400, step=200, method="psi", feature_names=["a", "b"])
    assert table["start"].tolist() == [0, 200, 400, 600]
    assert table["stop"].tolist() == [400, 600, 800, 1_000]
    assert {"a", "b", "score", "threshold", "n_drifted"} <= set(table.columns)
    assert (table["threshold"] == 0.2).all()
    assert table.loc[1, "a"] == pytest.approx(psi_scores(stream[200:600], reference)[0])


@pytest.mark.parametrize("window, step, match", [
    (1, None, "window 1"), (100.0, None, "window 100.0"), (5_000, None, "fewer than one window"), (100, 0, "step 0"),
])
def test_drift_over_time_refuses_impossible_windows(window, step, match):
    with pytest.raises(ValidationError, match=match):
        drift_over_time(np.zeros((1_000, 2)), np.zeros((100, 2)), window=window, step=step)


@pytest.mark.parametrize("stream, reference, options, match", [
    ([["a", "b"]] * 1_000, np.zeros((100, 2)), {}, "stream must be a 2-D array of numbers"),
    (np.full((1_000, 2), np.nan), np.zeros((100, 2)), {}, r"stream\[0, 0\] is nan"),
    (np.zeros((1_000, 3)), np.zeros((100, 2)), {}, "stream has 3 features but reference_data has 2"),
    (np.zeros((1_000, 2)), np.zeros((100, 2)), {"feature_names": ["a"]}, "1 feature names for 2 features"),
], ids=["text", "nan", "feature-counts", "names"])
def test_drift_over_time_refuses_bad_streams_before_the_first_window(stream, reference, options, match):
    with pytest.raises(ValidationError, match=match):
        drift_over_time(stream, reference, window=100, **options)
