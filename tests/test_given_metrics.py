"""The given monitoring code: the Monitor contract, the Prometheus metrics, several workers, KS p-values.

Unmarked, not graded: everything here works before Part 3 is written (the
tests that need Parts 1 and 2, a real ``serve --workers 2``, skip until
those parts are written).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_rules import problems, promtool_problems, sample_values
from scipy import stats

import deployment
from deployment import ModelMonitor, ValidationError, ks_p_values
from deployment.metrics import (
    DEFAULT_LATENCY_BUCKETS_MS,
    MULTIPROCESS_DIR_VARIABLE,
    WINDOW_METRICS,
    Monitor,
    PrometheusMetrics,
    shared_metrics_directory,
)
from deployment.monitoring import RowWindow
from deployment.recorder import LatencyRecorder

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def _families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


# --- the stand-in monitor: the same contract as Part 3's ----------------------------------------

def test_the_recorder_implements_the_monitor_protocol():
    assert isinstance(LatencyRecorder(), Monitor)
    assert isinstance(ModelMonitor(), Monitor)  # the given constructor; the methods are Part 3's


def test_recorder_ids_count_from_zero():
    recorder = LatencyRecorder()
    assert [recorder.log_prediction([[0.0]], [1], 1.0) for _ in range(3)] == [0, 1, 2]


def test_recorder_statistics_follow_the_contract():
    clock = FakeClock()
    recorder = LatencyRecorder(clock=clock)
    for latency_ms in range(1, 101):
        recorder.log_prediction([[0.0]], [1], float(latency_ms))
        clock.now_s += 0.01
    recorder.log_error(5_000.0, ValueError("x"))  # at 1.0 s after the first request
    metrics = recorder.get_metrics()
    assert set(WINDOW_METRICS) <= set(metrics)
    assert metrics["total_predictions"] == 100 and metrics["total_errors"] == 1
    assert metrics["p99_latency_ms"] == np.percentile(np.arange(1, 101.0), 99)  # the failure is not a latency
    assert metrics["max_latency_ms"] == 100.0
    assert (metrics["window_requests"], metrics["window_errors"]) == (101, 1)
    assert metrics["error_rate"] == pytest.approx(1 / 101)
    assert metrics["throughput_rps"] == pytest.approx(100 / 1.0)  # 100 requests after the first, in 1 s


def test_recorder_keeps_only_its_window():
    recorder = LatencyRecorder(window_size=10)
    for latency_ms in [1000.0] * 10 + [1.0] * 10:
        recorder.log_prediction(None, None, latency_ms)
    assert recorder.get_metrics()["p99_latency_ms"] == 1.0
    assert recorder.get_metrics()["total_predictions"] == 20


def test_an_empty_recorder_reports_zeros():
    metrics = LatencyRecorder().get_metrics()
    assert all(metrics[key] == 0 for key in WINDOW_METRICS)


def test_recorder_prometheus_counts_requests_rows_and_errors_by_type():
    recorder = LatencyRecorder(labels={"model": "cancer", "version": "1.0.0"})
    recorder.log_prediction(np.zeros((3, 4)), [0, 1, 0], 2.0)
    recorder.log_prediction(np.zeros(4), 1, 0.4)
    recorder.log_error(3.0, ValidationError("bad row"))
    recorder.log_error(3.0, 'odd "type"')
    values = sample_values(recorder.to_prometheus())
    labels = (("model", "cancer"), ("version", "1.0.0"))
    assert values[("model_requests_total", labels)] == 4
    assert values[("model_predicted_rows_total", labels)] == 4
    assert values[("model_prediction_latency_seconds_count", labels)] == 2
    errors = {dict(key)["error_type"]: value for (name, key), value in values.items()
              if name == "model_request_errors_total"}
    assert errors == {"ValidationError": 1, 'odd "type"': 1}


def test_recorder_metrics_page_follows_the_prometheus_rules():
    recorder = LatencyRecorder(labels={"model": "cancer", "version": "1.0.0"})
    for latency_ms in (0.2, 0.8, 3.0, 40.0):
        recorder.log_prediction(None, None, latency_ms)
    recorder.log_error(1.0, "Timeout")
    text = recorder.to_prometheus()
    assert problems(text) == []
    report = promtool_problems(text)
    if report is None:
        pytest.skip("promtool is not installed (Debian package prometheus); the same rules were checked above")
    assert report == []


def test_the_server_shows_the_same_metric_families_before_and_after_part3_lands():
    labels = {"model": "cancer", "version": "1.0.0"}
    names = {name for name in _families(LatencyRecorder(labels=labels).to_prometheus())}
    assert names == {name for name in _families(ModelMonitor(labels=labels).to_prometheus())}


# --- PrometheusMetrics: what Prometheus scrapes -------------------------------------------------

def test_the_default_buckets_separate_a_fifth_of_a_millisecond_from_four_fifths():
    metrics = PrometheusMetrics()
    with metrics.lock:
        metrics.count_prediction(0.2)
        metrics.count_prediction(0.8)
    buckets = {float(s.labels["le"]): s.value for s in _families(metrics.render())["model_prediction_latency_seconds"]
               .samples if s.name.endswith("_bucket")}
    below = [le for le, count in sorted(buckets.items()) if count == 1]
    assert below and below[0] < 0.0008, buckets  # some bucket holds 0.2 ms but not 0.8 ms
    assert min(DEFAULT_LATENCY_BUCKETS_MS) <= 0.1


def test_bucket_bounds_are_configurable_in_ms_and_exposed_in_seconds():
    metrics = PrometheusMetrics(latency_buckets_ms=(5.0, 50.0))
    with metrics.lock:
        for latency_ms in (1.0, 5.0, 7.0, 60.0):
            metrics.count_prediction(latency_ms)
    values = sample_values(metrics.render())
    assert values[("model_prediction_latency_seconds_bucket", (("le", "0.005"),))] == 2  # le is inclusive
    assert values[("model_prediction_latency_seconds_bucket", (("le", "0.05"),))] == 3
    assert values[("model_prediction_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert values[("model_prediction_latency_seconds_sum", ())] == pytest.approx(0.073)


def test_an_empty_page_reports_zero_counts_and_follows_the_rules():
    text = PrometheusMetrics({"model": "m"}).render()
    values = sample_values(text)
    assert values[("model_requests_total", (("model", "m"),))] == 0
    assert values[("model_prediction_latency_seconds_count", (("model", "m"),))] == 0
    assert problems(text) == []


def test_the_page_has_process_metrics_in_base_units():
    text = PrometheusMetrics().render()
    families = _families(text)
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def test_labelled_rows_are_counted_by_outcome_and_regression_errors_summed():
    metrics = PrometheusMetrics({"model": "m"})
    with metrics.lock:
        metrics.count_classified(correct=7, wrong=3)
        metrics.count_scored(rows=2, absolute_error=1.5)
    values = sample_values(metrics.render())
    assert values[("model_labelled_rows_total", (("model", "m"), ("outcome", "correct")))] == 7
    assert values[("model_labelled_rows_total", (("model", "m"), ("outcome", "wrong")))] == 3
    assert values[("model_labelled_rows_total", (("model", "m"), ("outcome", "scored")))] == 2
    assert values[("model_absolute_error_total", (("model", "m"),))] == 1.5


def test_a_monitor_and_its_counters_share_one_lock():
    monitor, recorder = ModelMonitor(), LatencyRecorder()
    assert monitor.prometheus.lock is monitor.lock
    assert recorder.prometheus.lock is recorder._lock


def test_a_recorder_logging_from_many_threads_counts_every_request():
    recorder = LatencyRecorder()

    def work():
        for _ in range(2_000):
            recorder.log_prediction(None, None, 1.0)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample_values(recorder.to_prometheus())[("model_requests_total", ())] == 16_000
    assert [recorder.log_prediction(None, None, 1.0)] == [16_000]  # ids stayed unique and in order


def test_the_metrics_are_a_prometheus_client_collector():
    metrics = PrometheusMetrics({"model": "m"})
    with metrics.lock:
        metrics.count_prediction(2.0)
    registry = CollectorRegistry()
    registry.register(metrics)  # e.g. beside an application's own metrics
    assert 'model_requests_total{model="m"} 1.0' in generate_latest(registry).decode()


@pytest.mark.parametrize("labels, named", [
    ({"model-name": "x"}, "label name 'model-name'"),
    ({"1st": "x"}, "label name '1st'"),
    ({"__name": "x"}, "label name '__name'"),
    ({"le": "x"}, "label name 'le'"),
    ({"error_type": "x"}, "label name 'error_type'"),
    ({"outcome": "x"}, "label name 'outcome'"),
])
def test_label_names_prometheus_refuses_are_refused(labels, named):
    with pytest.raises(ValidationError, match=named):
        PrometheusMetrics(labels)


@pytest.mark.parametrize("buckets", [(), (5.0, 1.0), (0.0, 1.0), (1.0, math.inf), ("fast",), None])
def test_impossible_buckets_are_refused(buckets):
    with pytest.raises(ValidationError, match="latency_buckets_ms"):
        PrometheusMetrics(latency_buckets_ms=buckets)


# --- ModelMonitor's given constructor -----------------------------------------------------------

@pytest.mark.parametrize("options, match", [
    ({"window_size": 0}, "window_size 0"),
    ({"window_size": 2.5}, "window_size 2.5"),
    ({"window_size": True}, "window_size True"),
    ({"feature_window": 0}, "feature_window 0"),
    ({"window_s": 0.0}, "window_s 0.0"),
    ({"window_s": math.inf}, "window_s inf"),
    ({"window_s": "10"}, "window_s '10'"),
    ({"task": "ranking"}, "task 'ranking'"),
    ({"latency_buckets_ms": ()}, "latency_buckets_ms"),
    ({"latency_buckets_ms": (5.0, 1.0)}, "latency_buckets_ms"),
    ({"labels": {"model-name": "x"}}, "label name 'model-name'"),
    ({"labels": {"le": "x"}}, "label name 'le'"),
])
def test_impossible_monitor_settings_are_refused(options, match):
    with pytest.raises(ValidationError, match=match):
        ModelMonitor(**options)


def test_an_empty_monitor_has_no_recent_features():
    assert ModelMonitor().recent_features().shape == (0, 0)


def test_a_row_window_keeps_the_newest_rows_of_a_batch_larger_than_itself():
    window = RowWindow(capacity=3)
    window.append(np.arange(10.0).reshape(5, 2), time_s=1.0)
    window.append(np.array([[10.0, 11.0]]), time_s=2.0)
    np.testing.assert_array_equal(window.recent(), [[6.0, 7.0], [8.0, 9.0], [10.0, 11.0]])
    np.testing.assert_array_equal(window.recent(since_s=2.0), [[10.0, 11.0]])


def test_a_row_window_refuses_rows_of_another_width_and_keeps_what_it_had():
    window = RowWindow(capacity=3)
    window.append(np.ones((1, 2)), time_s=1.0)
    with pytest.raises(ValidationError, match="features have 3 values a row, earlier rows had 2"):
        window.append(np.ones((1, 3)), time_s=2.0)
    np.testing.assert_array_equal(window.recent(), [[1.0, 1.0]])


# --- several worker processes: prometheus_client's multiprocess mode ----------------------------

WORKER = """
import sys
from deployment.metrics import PrometheusMetrics
metrics = PrometheusMetrics({"model": "m", "version": "1.0.0"})
for i in range(int(sys.argv[1])):
    metrics.count_prediction(0.3 + i % 7, rows=1 + i % 3)
metrics.count_error("Timeout")
metrics.count_classified(correct=3, wrong=1)
metrics.count_scored(rows=1, absolute_error=0.25)
"""
RENDER = """
from deployment.metrics import PrometheusMetrics
print(PrometheusMetrics({"model": "m", "version": "1.0.0"}).render(), end="")
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_workers_sharing_a_metrics_folder_report_their_sum(tmp_path):
    env = {**os.environ, MULTIPROCESS_DIR_VARIABLE: str(tmp_path)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(calls)], env=env, stderr=subprocess.PIPE, text=True)
               for calls in (40, 25)]  # two worker processes at once
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()[-2000:]
        worker.stderr.close()
    shared = _python(RENDER, env=env)  # a third process answers the scrape
    alone = PrometheusMetrics({"model": "m", "version": "1.0.0"})  # the same calls in one process
    for calls in (40, 25):
        for i in range(calls):
            alone.count_prediction(0.3 + i % 7, rows=1 + i % 3)
        alone.count_error("Timeout")
        alone.count_classified(correct=3, wrong=1)
        alone.count_scored(rows=1, absolute_error=0.25)
    expected = {key: value for key, value in sample_values(alone.render()).items() if key[0].startswith("model_")}
    assert sample_values(shared) == pytest.approx(expected)
    assert expected[("model_requests_total", (("model", "m"), ("version", "1.0.0")))] == 67
    assert {(f.name, f.type, f.documentation) for f in text_string_to_metric_families(shared)} <= {
        (f.name, f.type, f.documentation) for f in text_string_to_metric_families(alone.render())}
    assert problems(shared) == []
    report = promtool_problems(shared)
    if report is not None:
        assert report == []


def test_a_metrics_folder_named_after_prometheus_client_was_imported_is_refused(tmp_path):
    code = textwrap.dedent(f"""
        import os
        import prometheus_client
        os.environ[{MULTIPROCESS_DIR_VARIABLE!r}] = {str(tmp_path)!r}
        from deployment.metrics import PrometheusMetrics
        try:
            PrometheusMetrics()
        except RuntimeError as error:
            print(error)
    """)
    env = {key: value for key, value in os.environ.items() if key != MULTIPROCESS_DIR_VARIABLE}
    assert "set it before the process starts" in _python(code, env=env)


def test_the_shared_folder_lives_only_while_the_block_runs():
    before = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    with shared_metrics_directory() as folder:
        assert os.environ[MULTIPROCESS_DIR_VARIABLE] == folder and Path(folder).is_dir()
        (Path(folder) / "counter_1.db").write_bytes(b"x")
    assert not Path(folder).exists()
    assert os.environ.get(MULTIPROCESS_DIR_VARIABLE) == before


def _written(*probes) -> bool:
    try:
        for probe in probes:
            probe()
    except NotImplementedError:
        return False
    return True


def _saved_model(folder: Path) -> Path:
    """A small model saved with Part 1, once Parts 1 and 2 are written (else the test is skipped)."""
    from deployment import APIConfig, InferenceAPI, LogisticRegression, save_model

    model = LogisticRegression().fit(np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2)
    if not _written(lambda: save_model(model, folder / "m.json"),
                    lambda: InferenceAPI(model, APIConfig()).predict([[0.0, 0.0, 0.0]])):
        pytest.skip("serving needs Parts 1 and 2 (save_model, InferenceAPI)")
    return folder / "m.json"


def _every_scrape_counts_every_request(url: str) -> None:
    """Send 60 requests (new connections, so workers share them), then check 20 scrapes count them all."""
    rows_sent = 0
    for i in range(60):
        rows = [[0.1 * i, 0.2, -0.3]] * (1 + i % 3)
        response = httpx.post(url + "/predict", json={"instances": rows}, timeout=30)
        assert response.status_code == 200, response.text
        rows_sent += len(rows)
    for _ in range(20):  # whichever worker answers a scrape reports every request
        values = sample_values(httpx.get(url + "/metrics", timeout=30).text)

        def total(name):
            return sum(value for (sample, _), value in values.items() if sample == name)

        assert total("model_prediction_latency_seconds_count") == 60
        assert total("model_predicted_rows_total") == rows_sent
        assert total("model_requests_total") - total("model_request_errors_total") == 60


def test_a_server_reports_every_request_it_served(tmp_path):
    from deployment.server import BackgroundServer, build_app

    with BackgroundServer(build_app(_saved_model(tmp_path))) as server:  # what serve runs with one worker
        _every_scrape_counts_every_request(server.url)


@pytest.mark.slow
def test_serve_with_two_workers_reports_every_request_on_every_scrape(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "deployment", "serve", str(_saved_model(tmp_path)), "--port", "0",
         "--workers", "2", "--log-level", "info"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(process.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120  # generous: a loaded machine imports slowly
        while sum("Application startup complete" in line for line in log) < 2 \
                or not any("Uvicorn running on" in line for line in log):
            assert process.poll() is None, "".join(log)[-2000:]
            assert time.monotonic() < deadline, "the server did not start within 120 s:\n" + "".join(log)[-2000:]
            time.sleep(0.1)
        _every_scrape_counts_every_request(re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", "".join(log))[1])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_worker_writes_the_log_lines_still_queued_when_it_exits(tmp_path):
    from deployment.server import SERVE_OPTIONS_VARIABLE

    options = {"model_path": str(_saved_model(tmp_path)), "log_level": "info"}
    worker = textwrap.dedent("""
        import logging, time
        from deployment.server import app_from_environment
        app_from_environment()                 # what each `serve --workers N` process runs first
        time.sleep(0.1)                        # the log writer is now waiting for lines
        logging.getLogger("deployment.inference").info('{"event": "last"}')
    """)  # ...and the process ends at once, the line still queued
    result = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True, timeout=120,
                            env={**os.environ, SERVE_OPTIONS_VARIABLE: json.dumps(options)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert '{"event": "last"}' in result.stderr.splitlines()


# --- KS p-values: scipy's own, from its public API ----------------------------------------------

@pytest.mark.parametrize("n_reference, n_new", [
    (2, 2), (3, 2), (10, 10), (57, 91), (100, 99), (250, 400), (1_000, 1_000), (1_234, 987), (10_000, 10_000),
    (10_001, 500), (20_000, 15_000),
])
def test_ks_p_values_are_exactly_those_of_ks_2samp(n_reference, n_new):
    rng = np.random.default_rng(n_reference + n_new)
    reference = rng.normal(size=(n_reference, 6))
    new = rng.normal(size=(n_new, 6)) + np.linspace(0.0, 0.3, 6)
    new[:, 5] = np.round(new[:, 5])  # ties
    reference[:, 5] = np.round(reference[:, 5])
    expected = [stats.ks_2samp(reference[:, j], new[:, j]) for j in range(6)]
    p_values = ks_p_values(np.array([e.statistic for e in expected]), n_new, n_reference)
    for p_value, e in zip(p_values, expected):
        assert p_value == pytest.approx(e.pvalue, rel=1e-12, abs=1e-300)


def test_ks_p_values_of_equal_statistics_are_equal_and_zero_gives_one():
    p_values = ks_p_values(np.array([0.0, 0.2, 0.2, 1.0]), 50, 40)
    assert p_values[0] == 1.0 and p_values[1] == p_values[2] and p_values[3] < 1e-20


def test_a_ks_statistic_no_samples_can_have_is_refused():
    with pytest.raises(ValidationError, match="no samples of 3 and 2 rows"):
        ks_p_values(np.array([5 / 6]), 2, 3)


def _python_files() -> list[Path]:
    package = Path(deployment.__file__).resolve().parent
    return sorted([*package.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "tools").glob("*.py")])


def test_no_module_imports_a_private_scipy_module():
    private = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            private += [f"{path.name}:{node.lineno} {name}" for name in names
                        if name.split(".")[0] == "scipy" and any(part.startswith("_") for part in name.split("."))]
        private += [f"{path.name}: {match}" for match in re.findall(r"scipy(?:\.\w+)*\._\w+", path.read_text())]
    assert private == []
