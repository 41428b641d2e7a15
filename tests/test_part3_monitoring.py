"""Part 3: monitoring a deployed model: latency, throughput, errors, labels, Prometheus, data drift.

Read with notebooks/03_monitoring_and_drift.ipynb. Run just this part with
``pytest -m part3`` (or ``make grade PART=3``), one section with
``pytest -m "part3 and section4"`` (or ``make grade PART=3 SECTION=4``).
"""

from __future__ import annotations

import math
import subprocess
import textwrap
import time
import tracemalloc

import numpy as np
import pandas as pd
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_rules import model_lines, problems, promtool_problems, sample_values
from scipy import stats

from deployment import (
    ModelMonitor,
    ValidationError,
    detect_data_drift,
    drift_over_time,
    histogram_quantile,
    ks_statistics,
    psi_scores,
    wasserstein_scores,
)
from deployment.metrics import WINDOW_METRICS
from deployment.recorder import LatencyRecorder

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
    return sample_values(monitor_text)


# --- 1. logging requests: latency, throughput, errors ---------------------------------------

class TestLoggingRequests:
    pytestmark = pytest.mark.section1

    def test_prediction_ids_count_up_from_zero(self):
        monitor = ModelMonitor()
        ids = [monitor.log_prediction(np.array([1.0, 2.0]), 0, latency_ms=1.0) for _ in range(5)]
        assert ids == [0, 1, 2, 3, 4]

    def test_get_metrics_has_every_key_of_the_monitor_contract(self):
        monitor = ModelMonitor()
        monitor.log_prediction([1.0], 0, 2.0)
        assert set(WINDOW_METRICS) <= set(monitor.get_metrics())

    def test_percentiles_equal_numpy_percentile_over_the_window(self):
        latencies = _latencies(2_500)
        monitor = ModelMonitor(window_size=1_000)
        for latency in latencies:
            monitor.log_prediction(np.array([0.0, 1.0]), 1, float(latency))
        metrics = monitor.get_metrics()
        window = latencies[-1_000:]
        for q in (50, 95, 99):
            assert metrics[f"p{q}_latency_ms"] == np.percentile(window, q)
        assert metrics["avg_latency_ms"] == pytest.approx(window.mean(), rel=1e-12)
        assert metrics["max_latency_ms"] == window.max()

    def test_window_holds_the_last_window_size_requests_but_totals_count_all(self):
        monitor = ModelMonitor(window_size=100)
        for i in range(250):
            monitor.log_prediction([float(i)], 0, latency_ms=float(i))
        metrics = monitor.get_metrics()
        assert metrics["window_requests"] == 100
        assert metrics["total_predictions"] == 250
        assert metrics["p50_latency_ms"] == np.percentile(np.arange(150, 250.0), 50)

    def test_time_window_drops_requests_older_than_window_s(self, clock):
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

    def test_error_rate_is_failed_over_all_requests_in_the_window(self):
        monitor = ModelMonitor(window_size=10)
        for _ in range(6):
            monitor.log_prediction([1.0], 0, latency_ms=2.0)
        for _ in range(2):
            monitor.log_error(1.0, ValueError("bad row"))
        metrics = monitor.get_metrics()
        assert metrics["error_rate"] == 2 / 8
        assert (metrics["window_requests"], metrics["window_errors"]) == (8, 2)
        for _ in range(10):  # ten successes push both errors out of the window
            monitor.log_prediction([1.0], 0, latency_ms=2.0)
        metrics = monitor.get_metrics()
        assert metrics["error_rate"] == 0.0
        assert metrics["total_errors"] == 2

    def test_failed_requests_stay_out_of_the_latency_percentiles(self):
        monitor = ModelMonitor()
        for latency in (10.0, 20.0, 30.0):
            monitor.log_prediction([1.0], 0, latency)
        monitor.log_error(5_000.0, "Timeout")
        metrics = monitor.get_metrics()
        assert metrics["p99_latency_ms"] == np.percentile([10.0, 20.0, 30.0], 99)
        assert metrics["max_latency_ms"] == 30.0
        assert metrics["total_predictions"] == 3

    def test_throughput_is_requests_after_the_oldest_over_the_seconds_since_it(self, clock):
        monitor = ModelMonitor(clock=clock)
        for _ in range(101):
            monitor.log_prediction([1.0], 0, latency_ms=1.0)
            clock.now += 0.01
        clock.now -= 0.01  # read at the moment of the last request: 100 requests after the first, in 1 s
        assert monitor.get_metrics()["throughput_rps"] == pytest.approx(100.0)

    def test_throughput_falls_when_traffic_stops(self, clock):
        monitor = ModelMonitor(clock=clock)
        for _ in range(11):
            monitor.log_prediction([1.0], 0, latency_ms=1.0)
            clock.now += 0.1
        busy = monitor.get_metrics()["throughput_rps"]
        clock.now += 60.0
        assert monitor.get_metrics()["throughput_rps"] < busy / 10

    def test_empty_monitor_returns_zeros_and_none_without_raising(self):
        metrics = ModelMonitor().get_metrics()
        for key in ("avg_latency_ms", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms",
                    "error_rate", "throughput_rps"):
            assert metrics[key] == 0.0, key
        assert metrics["total_predictions"] == 0
        assert metrics["accuracy"] is None and metrics["mae"] is None

    def test_cpu_percent_sees_this_process_working(self):
        monitor = ModelMonitor()
        monitor.get_metrics()
        started = time.process_time()
        while time.process_time() - started < 0.2:  # 0.2 s of CPU, however busy the machine is
            sum(range(1_000))
        assert monitor.get_metrics()["cpu_percent"] > 0.0

    def test_memory_mb_is_this_process_resident_memory(self):
        memory_mb = ModelMonitor().get_metrics()["memory_mb"]
        assert memory_mb == pytest.approx(psutil.Process().memory_info().rss / 2**20, rel=0.1)

    def test_memory_stays_bounded_by_the_window(self):
        monitor = ModelMonitor(window_size=1_000)
        row = np.arange(8.0)

        def log(n):
            for i in range(n):
                monitor.log_prediction(row, 1, 1.0 + i % 7)

        tracemalloc.start()
        try:
            log(3_000)  # the window turned over three times: everything it holds was made while tracing
            before = tracemalloc.get_traced_memory()[0]
            log(30_000)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 50_000, f"memory grew by {grown} bytes over 30,000 calls"
        assert monitor.get_metrics()["total_predictions"] == 33_000

    def test_rows_of_another_width_are_refused(self):
        monitor = ModelMonitor()
        monitor.log_prediction([1.0, 2.0, 3.0], 0, 1.0)
        with pytest.raises(ValidationError, match="features"):
            monitor.log_prediction(np.array([1.0, 2.0]), 0, 1.0)
        assert monitor.get_metrics()["total_predictions"] == 1

    def test_a_numpy_row_of_text_after_good_rows_is_refused_and_nothing_is_logged(self):
        monitor = ModelMonitor()
        monitor.log_prediction(np.array([1.0, 2.0]), 0, 1.0)
        with pytest.raises(ValidationError, match="features"):
            monitor.log_prediction(np.array(["1.5", "fast"]), 0, 1.0)
        assert monitor.get_metrics()["total_predictions"] == 1
        assert monitor.get_metrics()["window_requests"] == 1

    @pytest.mark.parametrize("latency_ms", [-1.0, math.nan, math.inf, None, "fast"])
    def test_impossible_latency_is_refused_and_nothing_is_logged(self, latency_ms):
        monitor = ModelMonitor()
        with pytest.raises(ValidationError, match="latency_ms"):
            monitor.log_prediction([1.0], 0, latency_ms)
        with pytest.raises(ValidationError, match="latency_ms"):
            monitor.log_error(latency_ms, "Timeout")
        metrics = monitor.get_metrics()
        assert metrics["window_requests"] == 0 and metrics["total_errors"] == 0

    @pytest.mark.parametrize("features", [["a", "b"], np.zeros((2, 2, 2)), [[]]],
                             ids=["text", "3-D", "no-features"])
    def test_features_that_are_not_rows_of_numbers_are_refused_and_nothing_is_logged(self, features):
        monitor = ModelMonitor()
        with pytest.raises(ValidationError, match="features"):
            monitor.log_prediction(features, 0, 1.0)
        assert monitor.get_metrics()["total_predictions"] == 0
        assert monitor.get_metrics()["window_requests"] == 0

    def test_to_prometheus_counts_requests_rows_and_errors_by_type(self):
        monitor = ModelMonitor()
        for _ in range(4):
            monitor.log_prediction([1.0], 0, 1.0)
        monitor.log_prediction([[1.0], [2.0], [3.0]], [0, 1, 0], 1.0)  # one request, three rows
        monitor.log_error(2.0, ValueError("bad row"))
        monitor.log_error(3.0, ValueError("another"))
        monitor.log_error(9.0, "Timeout")
        monitor.log_error(4.0, KeyError)  # a class counts under its name too
        samples = _samples(monitor.to_prometheus())
        assert samples[("model_requests_total", ())] == 5 + 4
        assert samples[("model_predicted_rows_total", ())] == 4 + 3
        assert samples[("model_request_errors_total", (("error_type", "ValueError"),))] == 2
        assert samples[("model_request_errors_total", (("error_type", "Timeout"),))] == 1
        assert samples[("model_request_errors_total", (("error_type", "KeyError"),))] == 1
        assert samples[("model_prediction_latency_seconds_count", ())] == 5  # answered requests only

    def test_the_latency_histogram_counts_every_answered_request_since_the_start(self):
        latencies = _latencies(500, seed=3)
        monitor = ModelMonitor(window_size=100)  # the histogram covers all time, not the window
        for i, latency in enumerate(latencies):
            monitor.log_prediction([1.0], 0, float(latency))
            if i % 3 == 0:
                monitor.log_error(float(latency), "Timeout")  # failed requests stay out of the histogram
        families = {f.name: f for f in text_string_to_metric_families(monitor.to_prometheus())}
        histogram = families["model_prediction_latency_seconds"]
        assert histogram.type == "histogram"
        buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
        assert buckets["+Inf"] == 500
        for le, count in buckets.items():
            assert count == np.sum(latencies / 1000 <= float(le)), le
        values = {s.name: s.value for s in histogram.samples}
        assert values["model_prediction_latency_seconds_count"] == 500
        assert values["model_prediction_latency_seconds_sum"] == pytest.approx(latencies.sum() / 1000, rel=1e-9)

    def test_every_scrape_counts_each_request_once(self):
        monitor = ModelMonitor(window_size=100)
        counts = []
        for i in range(730):
            monitor.log_prediction([1.0], 0, 2.0)
            if i in (41, 250, 399, 400, 729):
                counts.append(_samples(monitor.to_prometheus())[("model_requests_total", ())])
        assert counts == [42, 251, 400, 401, 730]

    def test_prometheus_samples_carry_the_monitor_labels_escaped(self):
        labels = {"model": "cancer", "note": 'say "hi"\\now\nthen'}
        monitor = ModelMonitor(labels=labels)
        monitor.log_prediction([1.0], 0, 1.0)
        text = monitor.to_prometheus()
        assert _samples(text)[("model_requests_total", tuple(sorted(labels.items())))] == 1
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("model_"):
                    assert {k: sample.labels[k] for k in labels} == labels, sample

    def test_metrics_page_follows_the_prometheus_rules(self):
        monitor = ModelMonitor(labels={"model": "cancer", "version": "1.0.0"})
        for latency in _latencies(200, seed=8):
            monitor.log_prediction([1.0, 2.0], 1, float(latency))
        monitor.log_error(1.0, ValueError("bad row"))
        text = monitor.to_prometheus()
        assert problems(text) == []
        assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
        report = promtool_problems(text)  # None when promtool (Debian package prometheus) is not installed
        assert report in (None, [])

    def test_a_monitor_and_the_servers_stand_in_report_the_same_for_the_same_requests(self, clock):
        labels = {"model": "cancer", "version": "1.0.0"}
        monitor, recorder = ModelMonitor(clock=clock, labels=labels), LatencyRecorder(clock=clock, labels=labels)
        ids: dict[str, list[int]] = {"monitor": [], "recorder": []}
        for i, latency in enumerate(_latencies(60, seed=9)):
            for name, each in (("monitor", monitor), ("recorder", recorder)):
                if i % 7 == 3:
                    each.log_error(float(latency), KeyError("x") if i % 2 else "Timeout")
                else:
                    rows = 1 + i % 3
                    ids[name].append(each.log_prediction([[1.0, 2.0]] * rows, [0] * rows, float(latency)))
            clock.now += 0.25
        assert ids["monitor"] == ids["recorder"] == list(range(len(ids["monitor"])))
        ours, theirs = monitor.get_metrics(), recorder.get_metrics()
        assert {key: ours[key] for key in WINDOW_METRICS} == pytest.approx({key: theirs[key] for key in WINDOW_METRICS})
        assert model_lines(monitor.to_prometheus()) == model_lines(recorder.to_prometheus())


# --- 2. percentiles over time ----------------------------------------------------------------

class TestPercentilesOverTime:
    pytestmark = pytest.mark.section2

    def test_recent_latencies_are_the_answered_requests_in_the_window_oldest_first(self):
        monitor = ModelMonitor(window_size=4)
        for latency in (1.0, 2.0, 3.0):
            monitor.log_prediction([1.0], 0, latency)
        monitor.log_error(50.0, "Timeout")
        monitor.log_prediction([1.0], 0, 4.0)
        np.testing.assert_array_equal(monitor.recent_latencies_ms(), [2.0, 3.0, 4.0])

    def test_recent_latencies_follow_the_time_window(self, clock):
        monitor = ModelMonitor(window_s=30.0, clock=clock)
        for latency in (5.0, 6.0, 7.0, 8.0):  # at t = 0 s, 20 s, 40 s, 60 s
            monitor.log_prediction([1.0], 0, latency)
            clock.now += 20.0
        clock.now -= 20.0  # read at t = 60 s: the last 30 s hold t = 40 s and 60 s
        np.testing.assert_array_equal(monitor.recent_latencies_ms(), [7.0, 8.0])

    def test_an_empty_monitor_has_no_recent_latencies(self):
        assert len(ModelMonitor().recent_latencies_ms()) == 0

    def test_recent_latencies_give_the_percentiles_of_get_metrics(self):
        monitor = ModelMonitor(window_size=300)
        for latency in _latencies(1_000, seed=4):
            monitor.log_prediction([1.0], 0, float(latency))
        recent = monitor.recent_latencies_ms()
        assert len(recent) == 300
        assert np.percentile(recent, 99) == monitor.get_metrics()["p99_latency_ms"]


# --- 3. labels that arrive late --------------------------------------------------------------

class TestLateLabels:
    pytestmark = pytest.mark.section3

    def test_labels_arriving_late_and_out_of_order_give_accuracy(self):
        monitor = ModelMonitor()
        ids = [monitor.log_prediction([float(i)], prediction, 1.0) for i, prediction in enumerate([1, 0, 1, 1])]
        assert monitor.get_metrics()["accuracy"] is None
        for prediction_id, actual in zip(reversed(ids), [1, 0, 1, 1]):  # truths of ids 3, 2, 1, 0
            assert monitor.log_ground_truth(prediction_id, actual) is True
        metrics = monitor.get_metrics()
        assert metrics["accuracy"] == 0.5  # ids 0 and 3 right, 1 and 2 wrong
        assert metrics["mae"] is None
        assert metrics["labelled_rows"] == 4

    def test_regression_labels_give_mean_absolute_error(self):
        monitor = ModelMonitor()
        first = monitor.log_prediction([1.0], 10.0, 1.0)
        second = monitor.log_prediction([2.0], 20.0, 1.0)
        monitor.log_ground_truth(second, 23.0)
        monitor.log_ground_truth(first, 9.0)
        metrics = monitor.get_metrics()
        assert metrics["mae"] == 2.0
        assert metrics["accuracy"] is None

    def test_a_batch_label_counts_every_row(self):
        monitor = ModelMonitor()
        batch = monitor.log_prediction([[1.0], [2.0], [3.0], [4.0]], np.array([0, 1, 1, 0]), 2.0)
        single = monitor.log_prediction([5.0], 1, 1.0)
        monitor.log_ground_truth(batch, np.array([0, 1, 0, 0]))
        monitor.log_ground_truth(single, 0)
        assert monitor.get_metrics()["accuracy"] == 3 / 5

    def test_label_for_a_prediction_out_of_the_window_is_dropped_and_counted(self):
        monitor = ModelMonitor(window_size=3)
        old = monitor.log_prediction([1.0], 1, 1.0)
        for _ in range(3):
            monitor.log_prediction([1.0], 1, 1.0)
        assert monitor.log_ground_truth(old, 1) is False
        metrics = monitor.get_metrics()
        assert metrics["late_labels"] == 1 and metrics["accuracy"] is None

    def test_the_last_prediction_still_in_the_window_can_get_its_label(self):
        monitor = ModelMonitor(window_size=3)
        ids = [monitor.log_prediction([1.0], 1, 1.0) for _ in range(4)]
        assert monitor.log_ground_truth(ids[1], 1) is True  # three newer predictions would push it out; two did

    def test_accuracy_covers_the_last_feature_window_labelled_rows(self):
        monitor = ModelMonitor(feature_window=4)
        ids = [monitor.log_prediction([1.0], 1, 1.0) for _ in range(8)]
        for prediction_id, actual in zip(ids, [0, 0, 0, 0, 1, 1, 1, 0]):
            monitor.log_ground_truth(prediction_id, actual)
        assert monitor.get_metrics()["accuracy"] == 3 / 4

    @pytest.mark.parametrize("prediction_id, actual, match", [
        (7, 1, "no prediction has id 7"),
        (-1, 1, "no prediction"),
        ("0", 1, "whole number"),
        (0.0, 1, "whole number"),
        (0, [1, 0], "shape"),
    ])
    def test_bad_labels_are_refused(self, prediction_id, actual, match):
        monitor = ModelMonitor()
        monitor.log_prediction([1.0], 1, 1.0)
        with pytest.raises(ValidationError, match=match):
            monitor.log_ground_truth(prediction_id, actual)

    def test_a_second_label_for_one_prediction_is_refused(self):
        monitor = ModelMonitor()
        prediction_id = monitor.log_prediction([1.0], 1, 1.0)
        monitor.log_ground_truth(prediction_id, 1)
        with pytest.raises(ValidationError, match="already"):
            monitor.log_ground_truth(prediction_id, 0)

    def test_prometheus_counts_labelled_rows_by_outcome_so_accuracy_is_a_ratio_of_rates(self):
        monitor = ModelMonitor()
        batch = monitor.log_prediction([[1.0], [2.0], [3.0]], np.array([0, 1, 1]), 2.0)
        single = monitor.log_prediction([4.0], 1, 1.0)
        monitor.log_ground_truth(batch, np.array([0, 1, 0]))
        monitor.log_ground_truth(single, 1)
        samples = _samples(monitor.to_prometheus())
        correct = samples[("model_labelled_rows_total", (("outcome", "correct"),))]
        wrong = samples[("model_labelled_rows_total", (("outcome", "wrong"),))]
        assert (correct, wrong) == (3, 1)
        assert correct / (correct + wrong) == monitor.get_metrics()["accuracy"]

    def test_prometheus_sums_the_absolute_errors_of_regression_labels(self):
        monitor = ModelMonitor()
        first = monitor.log_prediction([1.0], 10.0, 1.0)
        second = monitor.log_prediction([[2.0], [3.0]], np.array([20.0, 30.0]), 1.0)
        monitor.log_ground_truth(first, 9.0)
        monitor.log_ground_truth(second, np.array([23.0, 30.5]))
        samples = _samples(monitor.to_prometheus())
        assert samples[("model_labelled_rows_total", (("outcome", "scored"),))] == 3
        assert samples[("model_absolute_error_total", ())] == pytest.approx(1.0 + 3.0 + 0.5)
        assert ("model_labelled_rows_total", (("outcome", "correct"),)) not in samples

    def test_the_metrics_page_with_labels_follows_the_prometheus_rules(self):
        monitor = ModelMonitor(labels={"model": "cancer"})
        ids = [monitor.log_prediction([1.0], i % 2, 1.0) for i in range(10)]
        for prediction_id in ids:
            monitor.log_ground_truth(prediction_id, 1)
        text = monitor.to_prometheus()
        assert problems(text) == []
        assert promtool_problems(text) in (None, [])  # None when promtool is not installed


# --- 4. metrics for Prometheus: histogram_quantile -----------------------------------------

class TestHistogramQuantile:
    pytestmark = pytest.mark.section4

    def test_the_quantile_is_interpolated_inside_the_bucket_that_holds_its_rank(self):
        buckets = {0.1: 10, 0.2: 30, 0.5: 36, math.inf: 40}
        assert histogram_quantile(0.5, buckets) == pytest.approx(0.15)  # rank 20: halfway through (0.1, 0.2]
        assert histogram_quantile(0.75, buckets) == pytest.approx(0.2)  # rank 30: the top of (0.1, 0.2]
        assert histogram_quantile(0.8, buckets) == pytest.approx(0.2 + 0.3 * 2 / 6)  # rank 32: 2 of 6 into (0.2, 0.5]

    def test_the_lowest_bucket_starts_at_zero(self):
        assert histogram_quantile(0.25, {0.004: 8, 0.008: 10, math.inf: 10}) == pytest.approx(0.00125)

    def test_a_rank_in_the_inf_bucket_gives_the_largest_finite_bound(self):
        assert histogram_quantile(0.99, {0.1: 50, 0.25: 90, math.inf: 100}) == 0.25

    def test_buckets_may_come_in_any_order(self):
        assert histogram_quantile(0.5, {math.inf: 40, 0.2: 30, 0.1: 10}) == pytest.approx(0.15)

    def test_no_observations_give_nan(self):
        assert math.isnan(histogram_quantile(0.5, {0.1: 0, math.inf: 0}))

    @pytest.mark.parametrize("quantile, buckets, match", [
        (1.5, {0.1: 1, math.inf: 1}, "quantile 1.5"),
        (-0.1, {0.1: 1, math.inf: 1}, "quantile -0.1"),
        (0.5, {0.1: 1, 0.2: 2}, r"\+Inf"),
    ])
    def test_impossible_quantiles_and_buckets_without_inf_are_refused(self, quantile, buckets, match):
        with pytest.raises(ValidationError, match=match):
            histogram_quantile(quantile, buckets)

    def test_the_estimate_from_a_monitors_metrics_lies_in_the_bucket_of_the_true_percentile(self):
        latencies = _latencies(5_000, seed=6)
        monitor = ModelMonitor(window_size=5_000)
        for latency in latencies:
            monitor.log_prediction([1.0], 0, float(latency))
        buckets = {float(s.labels["le"]): s.value
                   for family in text_string_to_metric_families(monitor.to_prometheus())
                   for s in family.samples if s.name == "model_prediction_latency_seconds_bucket"}
        bounds = sorted(buckets)
        for q in (0.5, 0.9, 0.99):
            true_s = np.percentile(latencies, 100 * q) / 1000
            upper = next(b for b in bounds if b >= true_s)
            lower = max([0.0] + [b for b in bounds if b < true_s])
            assert lower <= histogram_quantile(q, buckets) <= upper, q

    def test_the_increase_between_two_scrapes_gives_the_quantile_of_that_period_alone(self):
        monitor = ModelMonitor()

        def buckets():
            return {float(s.labels["le"]): s.value
                    for family in text_string_to_metric_families(monitor.to_prometheus())
                    for s in family.samples if s.name == "model_prediction_latency_seconds_bucket"}

        for _ in range(1_000):
            monitor.log_prediction([1.0], 0, 0.3)  # fast: (0.25, 0.5] ms
        before = buckets()
        for _ in range(100):
            monitor.log_prediction([1.0], 0, 40.0)  # slow: (25, 50] ms
        after = buckets()
        increase = {le: after[le] - before[le] for le in after}  # what rate() sees over the period
        assert 0.025 <= histogram_quantile(0.5, increase) <= 0.05
        assert histogram_quantile(0.5, after) <= 0.0005  # over all time the fast ones still dominate

    def test_the_answer_is_what_prometheus_computes(self, tmp_path):
        """The Go code of Prometheus's bucketQuantile, transcribed; and promtool's PromQL engine when installed."""
        rng = np.random.default_rng(11)
        bounds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01]
        cases = []
        for _ in range(6):
            counts = np.cumsum(rng.integers(0, 50, size=len(bounds) + 1))
            cases += [(q, dict(zip(bounds + [math.inf], counts.tolist()))) for q in (0.1, 0.5, 0.9, 0.99)]
        cases.append((0.5, {0.001: 10, 0.002: 10, math.inf: 20}))  # the rank in the +Inf bucket
        cases.append((0.3, {0.002: 5, 0.001: 5, math.inf: 10}))  # a bucket that stays empty
        for q, buckets in cases:
            assert histogram_quantile(q, buckets) == pytest.approx(_bucket_quantile(q, buckets), rel=1e-12), (q, buckets)
        theirs = _promtool_histogram_quantiles(tmp_path, cases)
        if theirs is not None:
            assert len(theirs) == len(cases)
            for number, (q, buckets) in enumerate(cases):
                assert histogram_quantile(q, buckets) == pytest.approx(theirs[number], rel=1e-12), (q, buckets)


def _bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus's bucketQuantile (promql/quantile.go) for sorted, monotonic buckets, line by line."""
    ordered = sorted(buckets.items())
    observations = ordered[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, (_, count) in enumerate(ordered[:-1] + [(math.inf, math.inf)]) if count >= rank)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    bucket_start, bucket_end, count = 0.0, ordered[b][0], ordered[b][1]
    if b > 0:
        bucket_start = ordered[b - 1][0]
        count -= ordered[b - 1][1]
        rank -= ordered[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def _promtool_histogram_quantiles(folder, cases) -> dict[int, float] | None:
    """What promtool's PromQL engine answers for ``histogram_quantile`` on each case; None without promtool.

    Each case is expected to be -1, which it never is, so promtool reports
    every answer it got ("got: {case="3"} 1.5E-03").
    """
    import re
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    series, tests = [], []
    for number, (q, buckets) in enumerate(cases):
        for le, count in buckets.items():
            le_text = "+Inf" if le == math.inf else repr(le)
            series.append(f"- series: 'h_bucket{{case=\"{number}\",le=\"{le_text}\"}}'\n  values: '{count}'")
        tests.append(f"- expr: histogram_quantile({q}, h_bucket{{case=\"{number}\"}})\n  eval_time: 0\n"
                     f"  exp_samples:\n  - labels: '{{case=\"{number}\"}}'\n    value: -1")
    (folder / "rules.yml").write_text("groups: []\n")
    (folder / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n"
        + textwrap.indent("\n".join(series), "  ") + "\n  promql_expr_test:\n" + textwrap.indent("\n".join(tests), "  ")
        + "\n")
    result = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=folder, capture_output=True, text=True,
                            timeout=120)
    got = re.findall(r'got: \{case="(\d+)"\} (\S+)', result.stdout + result.stderr)
    return {int(number): float(value) for number, value in got}


# --- 6. detecting data drift with the KS test ---------------------------------------------

@pytest.mark.section6
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


@pytest.mark.section6
def test_ks_handles_tied_values_as_scipy_does():
    rng = np.random.default_rng(7)
    reference = rng.integers(0, 5, size=(300, 3)).astype(float)
    new = rng.integers(0, 6, size=(250, 3)).astype(float)
    statistics = ks_statistics(new, reference)
    expected = [stats.ks_2samp(reference[:, j], new[:, j]).statistic for j in range(3)]
    np.testing.assert_allclose(statistics, expected, rtol=0, atol=1e-12)


@pytest.mark.section6
@pytest.mark.parametrize("n_reference, n_new", [(300, 250), (12_000, 10_500)], ids=["exact", "asymptotic"])
def test_ks_p_values_with_tied_values_equal_scipy(n_reference, n_new):
    rng = np.random.default_rng(n_new)
    reference = rng.integers(0, 8, size=(n_reference, 3)).astype(float)
    new = rng.integers(0, 8, size=(n_new, 3)).astype(float) + (rng.random((n_new, 3)) < [0.0, 0.02, 0.2])
    for j, feature in enumerate(detect_data_drift(new, reference)["features"]):
        expected = stats.ks_2samp(reference[:, j], new[:, j])
        assert feature["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
        assert feature["p_value"] == pytest.approx(expected.pvalue, abs=1e-9)


@pytest.mark.section6
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


@pytest.mark.section6
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


@pytest.mark.section6
def test_the_false_alarm_rate_on_same_distribution_samples_is_at_most_alpha():
    rng = np.random.default_rng(2024)
    trials, alpha = 2_000, 0.05
    alarms = sum(
        detect_data_drift(rng.normal(size=(150, 20)), rng.normal(size=(150, 20)), alpha=alpha)["is_drift"]
        for _ in range(trials)
    )
    assert alarms / trials <= alpha


@pytest.mark.section6
def test_a_shift_of_a_fifth_of_a_standard_deviation_in_one_of_20_features_is_found():
    rng = np.random.default_rng(99)
    trials, found = 60, 0
    for _ in range(trials):
        reference, new = rng.normal(size=(5_000, 20)), rng.normal(size=(5_000, 20))
        new[:, 13] += 0.2
        result = detect_data_drift(new, reference)
        found += result["is_drift"] and result["features"][13]["drifted"]
    assert found / trials >= 0.95


@pytest.mark.section6
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


@pytest.mark.section6
def test_a_dataframe_reference_names_the_features():
    rng = np.random.default_rng(8)
    reference = pd.DataFrame(rng.normal(size=(200, 2)), columns=["age", "income"])
    result = detect_data_drift(rng.normal(size=(200, 2)), reference)
    assert [f["feature"] for f in result["features"]] == ["age", "income"]


@pytest.mark.section6
def test_dataframes_with_columns_in_another_order_are_refused():
    rng = np.random.default_rng(8)
    reference = pd.DataFrame(rng.normal(size=(200, 2)), columns=["age", "income"])
    with pytest.raises(ValidationError, match="columns"):
        detect_data_drift(reference[["income", "age"]], reference)


@pytest.mark.section6
def test_the_monitor_checks_its_own_recent_rows_for_drift():
    rng = np.random.default_rng(9)
    reference = rng.normal(size=(2_000, 3))
    monitor = ModelMonitor(feature_window=1_000)
    for row in rng.normal(size=(1_000, 3)) + [0.0, 0.0, 1.0]:
        monitor.log_prediction(row, 0, 1.0)
    result = monitor.detect_data_drift(monitor.recent_features(), reference)
    assert [f["drifted"] for f in result["features"]] == [False, False, True]


@pytest.mark.section1  # log_prediction keeps the rows; recent_features (given) reads them
def test_every_row_of_a_batch_is_kept_for_drift_checks_newest_last():
    monitor = ModelMonitor(feature_window=5)
    monitor.log_prediction(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]), np.array([0, 1, 0]), 4.0)
    monitor.log_prediction([4.0, 40.0], 1, 2.0)
    monitor.log_prediction([[5.0, 50.0], [6.0, 60.0]], [0, 0], 3.0)
    np.testing.assert_array_equal(monitor.recent_features()[:, 0], [2.0, 3.0, 4.0, 5.0, 6.0])
    assert monitor.get_metrics()["total_predictions"] == 3  # requests, not rows


@pytest.mark.section1  # log_prediction keeps the rows; recent_features (given) reads them
def test_time_window_also_bounds_the_rows_kept_for_drift(clock):
    monitor = ModelMonitor(window_s=10.0, clock=clock)
    for value in (1.0, 2.0, 3.0):  # at t = 0 s, 6 s, 12 s
        monitor.log_prediction([value], 0, 1.0)
        clock.now += 6.0
    clock.now -= 6.0  # read at t = 12 s: the row of t = 0 s is out
    np.testing.assert_array_equal(monitor.recent_features(), [[2.0], [3.0]])


@pytest.mark.section1  # log_prediction keeps the rows; recent_features (given) reads them
def test_a_refused_row_is_not_kept_for_drift_checks():
    monitor = ModelMonitor()
    monitor.log_prediction(np.array([1.0, 2.0]), 0, 1.0)
    with pytest.raises(ValidationError, match="features"):
        monitor.log_prediction(np.array(["1.5", "fast"]), 0, 1.0)
    with pytest.raises(ValidationError, match="features"):
        monitor.log_prediction(np.array([1.0, 2.0, 3.0]), 0, 1.0)
    np.testing.assert_array_equal(monitor.recent_features(), [[1.0, 2.0]])


@pytest.mark.section1  # log_prediction keeps the rows; recent_features (given) reads them
def test_recent_features_are_a_copy_of_the_rows_logged():
    monitor = ModelMonitor()
    row = np.array([1.0, 2.0])
    monitor.log_prediction(row, 0, 1.0)
    row[0] = 99.0  # the caller reuses its array
    np.testing.assert_array_equal(monitor.recent_features(), [[1.0, 2.0]])


# --- 7. PSI and Wasserstein ------------------------------------------------------------------

def _psi_one_feature(new: np.ndarray, reference: np.ndarray) -> float:
    """PSI written out plainly, one bin at a time."""
    edges = [-np.inf, *np.quantile(reference, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), np.inf]
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        r = np.mean((reference >= low) & (reference < high)) or 1e-4
        n = np.mean((new >= low) & (new < high)) or 1e-4
        total += (n - r) * math.log(n / r)
    return total


@pytest.mark.section7
def test_psi_uses_reference_deciles_and_a_floor_for_empty_bins():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(2_000, 3))
    new = np.column_stack([rng.normal(size=800), rng.normal(0.5, 1.0, size=800), np.full(800, 0.1)])
    expected = [_psi_one_feature(new[:, j], reference[:, j]) for j in range(3)]
    np.testing.assert_allclose(psi_scores(new, reference), expected, rtol=1e-9)


@pytest.mark.section7
def test_psi_flags_drift_above_0_2():
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(5_000, 2))
    new = np.column_stack([rng.normal(size=5_000), rng.normal(0.8, 1.0, size=5_000)])
    result = detect_data_drift(new, reference, method="psi")
    assert [f["drifted"] for f in result["features"]] == [False, True]
    assert [f["p_value"] for f in result["features"]] == [None, None]
    assert result["score"] == pytest.approx(result["features"][1]["statistic"]) and result["score"] > 0.2


@pytest.mark.section7
def test_wasserstein_is_scipys_distance_over_the_reference_std():
    rng = np.random.default_rng(5)
    reference = rng.gamma(2.0, 3.0, size=(700, 3))
    new = rng.gamma(2.2, 3.0, size=(450, 3))
    new[:, 2] = np.round(new[:, 2])  # ties
    expected = [stats.wasserstein_distance(reference[:, j], new[:, j]) / reference[:, j].std() for j in range(3)]
    np.testing.assert_allclose(wasserstein_scores(new, reference), expected, rtol=1e-9)


@pytest.mark.section7
def test_wasserstein_flags_drift_at_a_tenth_of_a_standard_deviation():
    rng = np.random.default_rng(6)
    reference = rng.normal(0.0, 3.0, size=(4_000, 2))
    spread = reference.std(axis=0)
    new = reference + [0.09 * spread[0], 0.11 * spread[1]]  # every value moved by 0.09 and 0.11 std
    result = detect_data_drift(new, reference, method="wasserstein")
    assert [f["drifted"] for f in result["features"]] == [False, True]
    assert [f["statistic"] for f in result["features"]] == pytest.approx([0.09, 0.11], rel=1e-9)


@pytest.mark.section7
def test_wasserstein_drift_includes_exactly_a_tenth_of_a_standard_deviation():
    reference = np.tile([[-10.0], [10.0]], (50, 1))  # standard deviation exactly 10
    result = detect_data_drift(reference + 1.0, reference, method="wasserstein")
    assert result["features"][0]["statistic"] == 0.1
    assert result["is_drift"] is True


@pytest.mark.section7
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


# --- 8. drift over time ---------------------------------------------------------------------

@pytest.mark.section8
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


@pytest.mark.section8
def test_drift_over_time_can_overlap_windows():
    rng = np.random.default_rng(12)
    stream, reference = rng.normal(size=(1_000, 2)), rng.normal(size=(500, 2))
    table = drift_over_time(stream, reference, window=400, step=200, method="psi", feature_names=["a", "b"])
    assert table["start"].tolist() == [0, 200, 400, 600]
    assert table["stop"].tolist() == [400, 600, 800, 1_000]
    assert {"a", "b", "score", "threshold", "n_drifted"} <= set(table.columns)
    assert (table["threshold"] == 0.2).all()
    assert table.loc[1, "a"] == pytest.approx(psi_scores(stream[200:600], reference)[0])


@pytest.mark.section8
@pytest.mark.parametrize("window, step, match", [
    (1, None, "window 1"), (100.0, None, "window 100.0"), (5_000, None, "fewer than one window"), (100, 0, "step 0"),
])
def test_drift_over_time_refuses_impossible_windows(window, step, match):
    with pytest.raises(ValidationError, match=match):
        drift_over_time(np.zeros((1_000, 2)), np.zeros((100, 2)), window=window, step=step)


@pytest.mark.section8
@pytest.mark.parametrize("stream, reference, options, match", [
    ([["a", "b"]] * 1_000, np.zeros((100, 2)), {}, "stream must be a 2-D array of numbers"),
    (np.full((1_000, 2), np.nan), np.zeros((100, 2)), {}, r"stream\[0, 0\] is nan"),
    (np.zeros((1_000, 3)), np.zeros((100, 2)), {}, "stream has 3 features but reference_data has 2"),
    (np.zeros((1_000, 2)), np.zeros((100, 2)), {"feature_names": ["a"]}, "1 feature names for 2 features"),
], ids=["text", "nan", "feature-counts", "names"])
def test_drift_over_time_refuses_bad_streams_before_the_first_window(stream, reference, options, match):
    with pytest.raises(ValidationError, match=match):
        drift_over_time(stream, reference, window=100, **options)
