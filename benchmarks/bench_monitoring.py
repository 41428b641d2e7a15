"""Benchmark Part 3: what monitoring costs a request, its memory over time, and drift at scale.

Every figure is measured in the same run as a baseline, so the ratios hold
on a noisy shared machine. Targets (issue 4):

* ``log_prediction`` under 3 microseconds a call (one row of 30 features),
  Prometheus counting included;
* memory flat after 10 million calls (at most the window);
* KS drift on 100,000 x 50 at least as fast as a loop of ``scipy.stats.ks_2samp``
  with identical values (both sort every column: the gain is one call instead
  of 50), and against evidently's data drift report when evidently is
  installed (not a pinned dependency). Also shown, without a target: 5,000 x 30,
  where scipy's exact p-values are most of the cost for both.

It also shows why ``metrics.PrometheusMetrics`` keeps plain counts in one
process: ``prometheus_client``'s own counter and histogram cost more per
request, and in multiprocess mode (several workers) each update is a write
to a shared file.

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python benchmarks/bench_monitoring.py [--calls N] [--only drift]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections import deque

import numpy as np
import psutil
from scipy import stats

from deployment import ModelMonitor, detect_data_drift, psi_scores, wasserstein_scores
import deployment.drift as drift_module
from deployment.metrics import DEFAULT_LATENCY_BUCKETS_MS, MULTIPROCESS_DIR_VARIABLE, PrometheusMetrics
from deployment.recorder import LatencyRecorder

N_FEATURES = 30
CALLS_PER_RUN = 100_000
REPEATS = 5


def best_time_s(action, repeats: int = REPEATS) -> float:
    """The fastest of several runs: the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def per_call_us(log, argument_sets, calls: int = CALLS_PER_RUN) -> float:
    """Microseconds per call of ``log(*arguments)``, cycling through a few prepared argument sets."""
    cycle = [argument_sets[i % len(argument_sets)] for i in range(calls)]

    def run():
        for arguments in cycle:
            log(*arguments)

    return best_time_s(run) / calls * 1e6


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def bench_logging() -> None:
    print("== log_prediction: cost per call (one request), best of", REPEATS, "runs of", f"{CALLS_PER_RUN:,}")
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=N_FEATURES) for _ in range(64)]
    batches = [rng.normal(size=(32, N_FEATURES)) for _ in range(64)]
    one_row = [(row, 1, float(latency)) for row, latency in zip(rows, rng.lognormal(1.0, 0.5, 64))]
    list_row = [(row.tolist(), 1, latency) for row, _, latency in one_row]
    batch_of_32 = [(batch, np.ones(32, dtype=int), latency) for batch, (_, _, latency) in zip(batches, one_row)]

    unbounded: list = []
    bounded: deque = deque(maxlen=10_000)
    counts = PrometheusMetrics({"model": "cancer", "version": "1.0.0"})
    figures = {
        "list.append (baseline, grows forever)": per_call_us(lambda *a: unbounded.append(a), one_row),
        "deque(maxlen=10,000).append": per_call_us(lambda *a: bounded.append(a), one_row),
        "PrometheusMetrics.count_prediction": per_call_us(lambda r, p, latency: counts.count_prediction(latency, 1),
                                                          one_row),
        "prometheus_client Counter x2 + Histogram": per_call_us(_prometheus_client_objects(), one_row),
        "LatencyRecorder (the server's stand-in)": per_call_us(LatencyRecorder().log_prediction, one_row),
        "ModelMonitor: numpy row": per_call_us(ModelMonitor().log_prediction, one_row),
        "ModelMonitor: Python list row": per_call_us(ModelMonitor().log_prediction, list_row),
        "ModelMonitor: batch of 32 rows": per_call_us(ModelMonitor().log_prediction, batch_of_32),
    }
    unbounded.clear()
    baseline = figures["list.append (baseline, grows forever)"]
    for name, us in figures.items():
        print(f"  {name:42} {us:6.2f} us/call   {us / baseline:5.1f}x list.append")
    verdict = "meets" if figures["ModelMonitor: numpy row"] < 3.0 else "MISSES"
    print(f"  target: under 3 us for one numpy row -> {verdict} it here (this run's list.append took "
          f"{baseline:.2f} us; on a quiet machine it takes about 0.1 us, so judge by the ratio on a loaded one)")
    print(f"  several workers (prometheus_client multiprocess mode): {_multiprocess_us():.2f} us/call for "
          "PrometheusMetrics.count_prediction, measured in a worker process")


def _prometheus_client_objects():
    """log(row, prediction, latency_ms) updating prometheus_client's own objects: what a plain exporter does."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    labels = ("cancer", "1.0.0")
    requests = Counter("requests", "Requests.", ["model", "version"], registry=registry).labels(*labels)
    rows = Counter("rows", "Rows.", ["model", "version"], registry=registry).labels(*labels)
    latency = Histogram("latency_seconds", "Latency.", ["model", "version"], registry=registry,
                        buckets=[bound / 1000 for bound in DEFAULT_LATENCY_BUCKETS_MS]).labels(*labels)

    def log(row, prediction, latency_ms):
        requests.inc()
        rows.inc(1)
        latency.observe(latency_ms / 1000)

    return log


MULTIPROCESS_SCRIPT = """
import time
from deployment.metrics import PrometheusMetrics
metrics = PrometheusMetrics({"model": "cancer", "version": "1.0.0"})
best = float("inf")
for _ in range(5):
    started = time.perf_counter()
    for i in range(20_000):
        metrics.count_prediction(1.0 + i % 13, 1)
    best = min(best, time.perf_counter() - started)
print(best / 20_000 * 1e6)
"""


def _multiprocess_us() -> float:
    """Microseconds a count costs in a process started with PROMETHEUS_MULTIPROC_DIR set (a worker of serve)."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT], capture_output=True, text=True,
                                env={**os.environ, MULTIPROCESS_DIR_VARIABLE: folder}, check=True)
    return float(result.stdout)


def bench_memory(calls: int, budget_s: float) -> None:
    print(f"\n== memory: {calls:,} calls into a monitor with a 10,000-request window (time budget {budget_s:.0f} s)")
    row = np.random.default_rng(1).normal(size=N_FEATURES)
    monitor = ModelMonitor(window_size=10_000)
    log = monitor.log_prediction
    for i in range(20_000):  # buffers allocated, the ring wrapped
        log(row, 1, 1.0 + i % 13)
    gc.collect()
    start_mb, started = rss_mb(), time.perf_counter()
    done, checkpoint = 0, max(calls // 5, 1)
    while done < calls and time.perf_counter() - started < budget_s:
        for i in range(min(checkpoint, calls - done)):
            log(row, 1, 1.0 + i % 13)
        done += min(checkpoint, calls - done)
        print(f"  after {done:>12,} calls: RSS {rss_mb():8.1f} MB ({rss_mb() - start_mb:+.1f} MB)")
    if done < calls:
        print(f"  stopped at {done:,} calls (time budget); pass --calls to change the count")
    print(f"  total_predictions = {monitor.get_metrics()['total_predictions']:,}")

    unbounded = []
    before = rss_mb()
    for i in range(1_000_000):
        unbounded.append((row, 1, 1.0 + i % 13))
    print(f"  baseline: a list of the same calls grows by {rss_mb() - before:.1f} MB per million calls")
    del unbounded


def bench_get_metrics() -> None:
    print("\n== get_metrics over a full window of 100,000 requests")
    rng = np.random.default_rng(2)
    monitor = ModelMonitor(window_size=100_000)
    latencies = rng.lognormal(1.0, 0.5, size=100_000)
    row = rng.normal(size=N_FEATURES)
    for latency in latencies:
        monitor.log_prediction(row, 1, float(latency))
    ours = best_time_s(monitor.get_metrics, repeats=20)
    baseline = best_time_s(lambda: np.percentile(latencies, [50, 95, 99]), repeats=20)
    prometheus = best_time_s(monitor.to_prometheus, repeats=20)
    print(f"  get_metrics      {ours * 1e3:7.2f} ms  ({ours / baseline:4.1f}x numpy.percentile of the same 100,000 values)")
    print(f"  to_prometheus    {prometheus * 1e3:7.2f} ms  (all-time counts and the process metrics, "
          "whatever the window)")


def psi_one_feature_at_a_time(new: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSI written the plain way, one feature per loop turn: the baseline for ``psi_scores``."""
    scores = []
    for j in range(reference.shape[1]):
        edges = np.quantile(reference[:, j], np.linspace(0.1, 0.9, 9))
        shares = [np.bincount(np.searchsorted(edges, sample[:, j], side="right"), minlength=10) / len(sample)
                  for sample in (reference, new)]
        r, n = (np.where(share == 0, 1e-4, share) for share in shares)
        scores.append(np.sum((n - r) * np.log(n / r)))
    return np.array(scores)


def _ks_versus_scipy(n_rows: int, n_features: int, repeats: int, target: bool) -> None:
    """detect_data_drift(method='ks') against a loop of scipy.stats.ks_2samp on the same samples."""
    rng = np.random.default_rng(n_rows)
    reference = rng.normal(size=(n_rows, n_features))
    new = rng.normal(size=(n_rows, n_features))
    new[:, 7] += 0.05

    def ours_cold():
        drift_module._ks_p_value.cache_clear()  # no p-value remembered from an earlier round
        detect_data_drift(new, reference)

    ours = best_time_s(ours_cold, repeats=repeats)
    scipy_loop = best_time_s(lambda: [stats.ks_2samp(reference[:, j], new[:, j]) for j in range(n_features)],
                             repeats=repeats)
    result = detect_data_drift(new, reference)
    expected = [stats.ks_2samp(reference[:, j], new[:, j]) for j in range(n_features)]
    worst = max(max(abs(e.statistic - f["statistic"]), abs(e.pvalue - f["p_value"]))
                for e, f in zip(expected, result["features"]))
    exact = n_rows <= drift_module.KS_EXACT_MAX_ROWS
    print(f"  {n_rows:,} x {n_features} ({'exact' if exact else 'asymptotic'} p-values, best of {repeats})")
    verdict = f" ({'meets' if ours <= scipy_loop else 'MISSES'} the target: at least as fast)" if target else ""
    print(f"    detect_data_drift(method='ks')   {ours:7.3f} s")
    print(f"    loop of scipy.stats.ks_2samp     {scipy_loop:7.3f} s   -> ours is {scipy_loop / ours:.2f}x as fast"
          + verdict)
    print(f"    largest difference from scipy (statistic or p-value): {worst:.1e}; drifted: "
          f"{[f['feature'] for f in result['features'] if f['drifted']]}")


def bench_drift() -> None:
    print("\n== KS drift against a loop of scipy.stats.ks_2samp, identical values")
    _ks_versus_scipy(100_000, 50, repeats=3, target=True)
    _ks_versus_scipy(5_000, 30, repeats=3, target=False)
    print("\n== PSI and Wasserstein on 100,000 rows x 50 features, best of 3")
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(100_000, 50))
    new = rng.normal(size=(100_000, 50))
    new[:, 7] += 0.05
    ours = best_time_s(lambda: detect_data_drift(new, reference), repeats=1)
    psi_s = best_time_s(lambda: psi_scores(new, reference), repeats=3)
    psi_loop_s = best_time_s(lambda: psi_one_feature_at_a_time(new, reference), repeats=3)
    ours_w = best_time_s(lambda: wasserstein_scores(new, reference), repeats=3)
    scipy_w = best_time_s(lambda: [stats.wasserstein_distance(reference[:, j], new[:, j]) for j in range(50)], repeats=3)
    print(f"  psi_scores                         {psi_s:6.2f} s   vs a loop over features (quantile, searchsorted) "
          f"{psi_loop_s:.2f} s ({psi_loop_s / psi_s:.2f}x)")
    print(f"  wasserstein_scores                 {ours_w:6.2f} s   vs loop of scipy.stats.wasserstein_distance "
          f"{scipy_w:.2f} s ({scipy_w / ours_w:.2f}x)")
    try:
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError as exc:  # not pinned: compared only where it is installed and imports
        print(f"  evidently: not importable here ({exc}); comparison skipped (it is not a pinned dependency)")
        return
    import pandas as pd

    columns = [f"x{j}" for j in range(50)]
    ref_frame, new_frame = pd.DataFrame(reference, columns=columns), pd.DataFrame(new, columns=columns)
    try:  # the API of evidently 0.7; other versions differ
        evidently_s = best_time_s(lambda: Report([DataDriftPreset()]).run(new_frame, ref_frame), repeats=1)
    except Exception as exc:  # an evidently whose API this script does not know
        print(f"  evidently: installed, but its drift report failed here ({type(exc).__name__}: {exc}); skipped")
        return
    # On more than 1,000 rows evidently scores numeric columns with the scaled Wasserstein distance.
    print(f"  evidently DataDriftPreset          {evidently_s:6.2f} s   -> detect_data_drift is {evidently_s / ours:.1f}x "
          f"as fast (ks), wasserstein_scores {evidently_s / ours_w:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000, help="calls for the memory test")
    parser.add_argument("--budget-s", type=float, default=60.0, help="time budget of the memory test")
    parser.add_argument("--only", choices=["logging", "memory", "metrics", "drift"], help="run one part")
    args = parser.parse_args()
    parts = {
        "logging": bench_logging,
        "memory": lambda: bench_memory(args.calls, args.budget_s),
        "metrics": bench_get_metrics,
        "drift": bench_drift,
    }
    for name, run in parts.items():
        if args.only in (None, name):
            run()


if __name__ == "__main__":
    main()
