"""The production story, end to end, as ``make demo`` runs it.

Train two versions of a model on real data, save and register them, serve
the production version over real HTTP on loopback, load-test it, watch
its metrics, catch a drift in incoming data, run an A/B test between the
versions and roll the winner out behind a canary. Each step prints what a
production engineer would want to see; plots go to the output folder.

Run with a student package whose parts are not all written, the demo stops
at the first step that needs a missing part and says so in one sentence,
naming the part and the command that checks it (exit status 1).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .ab_testing import CanaryRollout, simulate_ab_test
from .data import load_dataset
from .inference import APIConfig, InferenceAPI
from .loadtest import run_load_test
from .models import LogisticRegression, Pipeline, StandardScaler
from .monitoring import ModelMonitor, drift_over_time
from .registry import ModelRegistry
from .serialization import load_serialized


STUB_MESSAGE = re.compile(r"Part (?P<part>\d) \((?P<topic>[^)]*)\): write (?P<function>[\w.]+)\(\)")
CHECK_COMMAND = re.compile(r"Check it with: (?P<command>make grade PART=\d( SECTION=\d+)?)")


def not_written(stub: NotImplementedError, step: int) -> str:
    """The one sentence the demo prints when it reaches a part that is not written yet.

    The stubs' messages read "Part N (topic): write NAME(). Read ... Check it
    with: make grade PART=N SECTION=K"; the sentence names the part, the
    function and that command (``make grade PART=N`` if the message has none).
    """
    message = str(stub)
    found = STUB_MESSAGE.search(message)
    if found is None:
        return f"The demo stopped at step {step}: something is not written yet (NotImplementedError: {message})."
    command = CHECK_COMMAND.search(message)
    check = command["command"] if command else f"make grade PART={found['part']}"
    return (f"The demo stopped at step {step} because Part {found['part']} ({found['topic']}) is not written yet: "
            f"{found['function']}() raises NotImplementedError; write it, then check it with: {check}")


def _server_stub(log: Path) -> NotImplementedError | None:
    """The NotImplementedError a server process died of, read from its log, if that is how it died."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = [line for line in text.splitlines() if line.startswith("NotImplementedError: ")]
    return NotImplementedError(lines[-1].removeprefix("NotImplementedError: ")) if lines else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout_s: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            stub = _server_stub(log)
            if stub is not None:
                raise stub
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
            raise RuntimeError(f"The server exited with code {server.returncode} while starting:\n{tail}")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"The server on {url} was not healthy within {timeout_s} s.")


class _SimulatedClock:
    """Seconds on a clock that only the models' service times move.

    The canary compares latency percentiles; on a simulated clock they are
    the models' own, not the noise of a busy machine, and every run agrees.
    """

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class _ServiceTime:
    """A model that takes about ``delay_ms`` to answer (like one behind a feature store or a GPU queue).

    Each call moves the simulated ``clock`` by the delay times a log-normal
    factor (median 1, sigma 0.25): answers vary as real ones do.
    """

    def __init__(self, model: Any, delay_ms: float, clock: _SimulatedClock, seed: int) -> None:
        self.model, self.delay_ms, self.clock = model, delay_ms, clock
        self.rng = np.random.default_rng(seed)
        self.n_features_in_ = model.n_features_in_

    def predict(self, X: Any) -> np.ndarray:
        self.clock.now_s += self.delay_ms * self.rng.lognormal(0.0, 0.25) / 1000
        return self.model.predict(X)


def _canary(baseline: Any, candidate: Any, delays_ms: tuple[float, float], X: np.ndarray,
            seed: int) -> CanaryRollout:
    """A canary in process, on a simulated clock: 5% -> 25% -> 50% -> 100% of 100,000 random users."""
    clock = _SimulatedClock()
    monitors = ModelMonitor(), ModelMonitor()
    rollout = CanaryRollout(
        InferenceAPI(_ServiceTime(baseline, delays_ms[0], clock, seed), APIConfig(version="1.0.0"),
                     monitor=monitors[0], clock=clock),
        InferenceAPI(_ServiceTime(candidate, delays_ms[1], clock, seed + 1), APIConfig(version="2.0.0"),
                     monitor=monitors[1], clock=clock),
        baseline_monitor=monitors[0], candidate_monitor=monitors[1], names=("v1.0.0", "v2.0.0"),
        steps=(0.05, 0.25, 0.5, 1.0), max_p95_latency_ratio=1.5, min_step_duration_s=0.0, min_requests=60,
        clock=clock,
    )
    rng = np.random.default_rng(seed)

    def send_traffic(rollout: CanaryRollout) -> None:
        for user, row in zip(rng.integers(0, 100_000, 200), rng.integers(0, len(X), 200)):
            rollout.predict(X[row:row + 1], user_id=f"user-{user}")

    rollout.run(send_traffic, max_checks=100)
    return rollout


def run_demo(out: str | Path = "build/demo") -> int:
    """Run every step; return 0 when each one did what it should, else 1.

    When a step reaches a part that is not written yet (a stub's
    ``NotImplementedError``), print one sentence naming the part and the
    command that checks it (see ``not_written``) and return 1.
    """
    steps: list[int] = [0]

    def step(number: int, title: str) -> None:
        steps.append(number)
        print(f"\n== {number}. {title}", flush=True)

    try:
        return _tell_the_story(Path(out), step)
    except NotImplementedError as stub:
        print(f"\n{not_written(stub, steps[-1])}", flush=True)
        return 1


def _tell_the_story(out: Path, step: Any) -> int:
    """The eight steps of the demo; ``step(number, title)`` announces each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    checks: dict[str, bool] = {}

    step(1, "Train two versions on real data (breast cancer, 30 features)")
    data = load_dataset("breast_cancer", seed=0)
    v1 = LogisticRegression(C=1e-4).fit(data.X_train, data.y_train)
    v2 = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=0.1))]).fit(data.X_train, data.y_train)
    accuracy = {"1.0.0": v1.score(data.X_test, data.y_test), "2.0.0": v2.score(data.X_test, data.y_test)}
    for version, value in accuracy.items():
        print(f"v{version}: test accuracy {value:.3f}")

    step(2, "Save and register both; v1.0.0 to production, v2.0.0 to staging")
    shutil.rmtree(out / "registry", ignore_errors=True)  # every demo starts from an empty registry
    registry = ModelRegistry(out / "registry")
    files = {version: registry.register_model("cancer", version, model, metadata={"accuracy": accuracy[version]})
             for version, model in (("1.0.0", v1), ("2.0.0", v2))}
    registry.promote_model("cancer", "1.0.0", "production", reason="first release")
    registry.promote_model("cancer", "2.0.0", "staging", reason="candidate")
    print(f"registry {out / 'registry'}: versions {registry.list_versions('cancer')}, "
          f"stages {registry.get_stages('cancer')}")
    production_file = files[registry.resolve("cancer", "production")]
    print(f"production model file: {production_file} (version {load_serialized(production_file).version})")

    step(3, "Serve production over HTTP on loopback (python -m deployment serve)")
    InferenceAPI(v1, APIConfig(version="1.0.0")).predict(data.X_test[:1])  # Part 2, in this process first
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = out / "server.log"
    with server_log.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "deployment", "serve", str(production_file), "--name", "cancer", "--port",
             str(port), "--log-level", "warning"],
            env={**os.environ, "PYTHONSAFEPATH": "1"}, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(url, server, server_log)
        import httpx

        answer = httpx.post(f"{url}/v1/models/cancer:predict", json={"instances": data.X_test[:3].tolist()}).json()
        print(f"serving {url}: POST /v1/models/cancer:predict -> {answer['predictions']} (version {answer['version']})")
        bad = httpx.post(f"{url}/predict", json={"instances": [[1.0, 2.0]]})
        print(f"a request with 2 features instead of 30 -> {bad.status_code}: {bad.json()['error']}")
        checks["server answers, refuses bad input with 4xx"] = bad.status_code == 400 and len(answer["predictions"]) == 3

        step(4, "Load-test it: 3,000 single-row requests, 16 at a time")
        result = run_load_test(f"{url}/predict", data.X_test, n_requests=3_000, concurrency=16)
        print(f"throughput {result.throughput_rps:,.0f} requests/s; latency p50 {result.p50_ms:.1f} ms, "
              f"p95 {result.p95_ms:.1f} ms, p99 {result.p99_ms:.1f} ms; errors {result.errors or 'none'}")
        checks["load test without errors"] = not result.errors

        metrics = httpx.get(f"{url}/metrics").text
        shown = [line for line in metrics.splitlines() if line.startswith(("model_predictions_total", "model_latency_ms_count", "model_prediction_errors_total"))]
        print("GET /metrics (excerpt):", *shown[:4], sep="\n  ")

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.hist(result.latencies_ms, bins=60, color="tab:blue", alpha=0.8)
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            value = result.percentile_ms(q)
            ax.axvline(value, color="black", linestyle=style, label=f"p{q} = {value:.1f} ms")
        ax.set_xlabel("request latency (ms)")
        ax.set_ylabel("requests")
        ax.set_title(f"Latency of {result.n_requests:,} HTTP requests at concurrency 16")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=120)
        plt.close(fig)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
    print(f"server stopped on SIGTERM (exit code {code})")
    checks["server shuts down cleanly"] = code == 0

    step(5, "Watch the inputs: live traffic in which 'worst radius' drifts upward")
    rng = np.random.default_rng(7)
    traffic = data.X_test[rng.integers(0, len(data.X_test), 5_000)]  # requests, in arrival order
    reference, live = traffic[:1_000], traffic[1_000:].copy()  # reference: the first 1,000 after launch
    drifting = data.feature_names.index("worst radius")
    live[2_000:, drifting] *= np.linspace(1.0, 1.4, 2_000)  # sensor recalibrated: +40% by the end
    report = ModelMonitor().detect_data_drift(live[2_000:], reference)
    drifted = [data.feature_names[int(f["feature"])] for f in report["features"] if f["drifted"]]
    print(f"KS test, last 2,000 requests against the reference: drift {report['is_drift']}, "
          f"drifted features {drifted}")
    checks["drift found in the drifting feature only"] = drifted == ["worst radius"]
    over_time = drift_over_time(live, reference, window=250, method="psi")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(over_time["stop"], over_time["score"], marker="o", label="drift score")
    ax.axhline(over_time["threshold"].iloc[0], color="tab:red", label="alarm threshold")
    ax.axvline(2_000, color="gray", linestyle="--", label="drift starts")
    ax.set_xlabel("requests seen")
    ax.set_ylabel("largest PSI over the last 250 rows")
    ax.set_title("Drift score (population stability index) over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "drift.png", dpi=120)
    plt.close(fig)

    step(6, "A/B test: 50/50 between v1.0.0 and v2.0.0, 100,000 simulated users")
    test, _ = simulate_ab_test({"v1.0.0": v1, "v2.0.0": v2}, data.X_test, data.y_test,
                                 n_users=100_000, seed=0, progress=True)
    outcome = test.result()
    print(f"conversion v1.0.0 {outcome.means['v1.0.0']:.4f} vs v2.0.0 {outcome.means['v2.0.0']:.4f}; "
          f"relative lift {outcome.relative_lift:+.1%}, p-value {outcome.p_value:.2g}: {outcome.decision}")
    checks["A/B test ships the better model"] = outcome.decision == "ship treatment"
    fig, ax = plt.subplots(figsize=(6, 4))
    names = [outcome.control, outcome.treatment]
    rates = [100 * outcome.means[name] for name in names]
    errors = [[100 * (outcome.means[n] - outcome.confidence_intervals[n][0]) for n in names],
              [100 * (outcome.confidence_intervals[n][1] - outcome.means[n]) for n in names]]
    ax.bar(names, rates, yerr=errors, capsize=8, color=["tab:gray", "tab:blue"])
    ax.set_ylabel("conversion rate (%), with 95% confidence interval")
    ax.set_title(f"A/B test, {sum(outcome.counts.values()):,} users: {outcome.decision} (p = {outcome.p_value:.1g})")
    fig.tight_layout()
    fig.savefig(out / "ab_test.png", dpi=120)
    plt.close(fig)

    step(7, "Canary rollouts of v2.0.0 (each version takes about 1 ms, simulated): one healthy, one 4 ms slower")
    healthy = _canary(v1, v2, (1.0, 1.0), data.X_test, seed=1)
    shares = " -> ".join(f"{event['candidate_share']:.0%}" for event in healthy.history
                         if event["action"] in ("start", "advance"))
    print(f"healthy canary: {healthy.status}; candidate share {shares}")
    slow = _canary(v1, v2, (1.0, 5.0), data.X_test, seed=1)
    print(f"slow canary: {slow.status}: {slow.reason}")
    checks["healthy canary completes, slow one rolls back"] = healthy.status == "completed" and slow.status == "rolled back"
    if healthy.status == "completed" and outcome.decision == "ship treatment":
        registry.promote_model("cancer", "2.0.0", "production", reason="won the A/B test and the canary")
    print(f"production is now v{registry.resolve('cancer', 'production')}; stage history:")
    for event in registry.get_stage_history("cancer"):
        print(f"  v{event['version']}: {event['from_stage']} -> {event['to_stage']} ({event['reason']})")

    fig, ax = plt.subplots(figsize=(7, 4))
    for rollout, label in ((healthy, "v2.0.0"), (slow, "v2.0.0, 4 ms slower")):
        times = [e["time_s"] for e in rollout.history]
        shares = [100 * e["candidate_share"] for e in rollout.history]
        ax.step(times, shares, where="post", marker="o", label=f"{label}: {rollout.status}")
    ax.set_xlabel("time since the rollout started (simulated s)")
    ax.set_ylabel("users on the candidate (%)")
    ax.set_title("Canary rollouts: traffic share over time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "canary.png", dpi=120)
    plt.close(fig)

    step(8, "Summary")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    plots = sorted(p.name for p in out.glob("*.png"))
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s; plots in {out}/: {', '.join(plots)}")
    return 0 if all(checks.values()) else 1
