"""How much does serving cost? InferenceAPI and its HTTP server against the bare model, same run.

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python benchmarks/bench_inference.py [--mlflow]

(a) in process, one row a call, with validation, a monitor and the JSON log
    line on: the overhead in microseconds over a bare ``model.predict`` of the
    same row (target: under 25 us);
(b) in process, one batch of 10,000 rows: throughput as a fraction of the bare
    vectorized ``model.predict`` (target: at least 0.5);
(c) over HTTP, one-row requests at concurrency 32, for two models: the
    scikit-learn ``Pipeline(StandardScaler, LogisticRegression)`` (a model
    call costs about half a millisecond, whatever the rows) and the workbook's
    own numpy pipeline (tens of microseconds). The bare endpoint runs on
    uvloop, as ``uvicorn[standard]`` does, and once more on asyncio's own
    event loop: uvloop serves connections unevenly when a slow model is
    called inline, which makes the first bare endpoint's p99 several times
    its median. ``python -m deployment serve``
    with and without micro-batching (and with ``--batch-wait-ms 1``: a
    request waits up to a millisecond for others), against a bare FastAPI endpoint doing the
    same predict. All of a model's servers start at once and take turns
    under load, every server in every round, so a ratio compares
    measurements taken seconds apart (an idle server costs nothing). The
    target, for the
    scikit-learn model: with micro-batching, throughput at least 1.5x and p99
    latency at most 1.2x the bare endpoint's. The served app keeps its
    monitor and writes one JSON log line a request to a file. With
    ``--mlflow``, MLflow's ``mlflow models serve`` of the same scikit-learn
    pipeline joins the table (installed once, in a throwaway virtual
    environment of its own: ``mlflow_peer.py``). The load comes from ``wrk``
    when it is installed, else from several Python client processes (one
    Python client cannot saturate a server). With ``taskset`` and two cores or
    more, the server runs on core 0 and the load on core 1, so neither takes
    the other's core and every server meets the same load.

Each measurement lasts a few seconds (BENCH_HTTP_SECONDS, default 3; BENCH_ROUNDS
rounds, default 5); figures vary with the machine's load, the ratios much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
from pathlib import Path
from typing import IO

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.pipeline import Pipeline as SklearnPipeline
from sklearn.preprocessing import StandardScaler as SklearnStandardScaler

from deployment import APIConfig, InferenceAPI, LogisticRegression, Pipeline, StandardScaler, load_dataset, save_model
from deployment.recorder import LatencyRecorder
from deployment.server import default_monitor

sys.path.append(str(Path(__file__).resolve().parent))  # PYTHONSAFEPATH=1 leaves the script's folder out
import mlflow_peer  # noqa: E402  (benchmarks/mlflow_peer.py)

HTTP_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", 3.0))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5))
CONCURRENCY = 32
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
SERVER_CORE, LOAD_CORE = 0, 1

BARE_APP = textwrap.dedent("""
    import json, sys
    import numpy as np
    import uvicorn
    from fastapi import FastAPI, Request, Response
    from deployment import load_model

    model = load_model(sys.argv[1])
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        X = np.asarray(json.loads(await request.body())["instances"], dtype=np.float64)
        return Response(json.dumps({"predictions": model.predict(X).tolist()}), media_type="application/json")

    loop = sys.argv[3] if len(sys.argv) > 3 else "auto"  # auto: uvloop, as uvicorn[standard] runs it
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False, loop=loop)
""")

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body!r}
"""


def best_time_us(function, number: int, repeat: int = 7) -> float:
    """The fastest of ``repeat`` runs, in microseconds a call: the least disturbed by other processes."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def best_times_us(baseline, candidate, number: int = 300, repeat: int = 30) -> tuple[float, float]:
    """Like ``best_time_us`` for two functions, run in turns so both meet the same load on the machine.

    Keep each run short (``number`` calls, a millisecond or two): on a busy machine a long
    run is more often interrupted, which would favour the faster function's shorter runs.
    """
    times = np.array([[timeit.timeit(f, number=number) for f in (baseline, candidate)] for _ in range(repeat)])
    return tuple(times.min(axis=0) / number * 1e6)


def on_core(core: int, command: list[str]) -> list[str]:
    """``command`` run on one CPU core when PINNED, else as it is."""
    return ["taskset", "-c", str(core), *command] if PINNED else command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], port: int, log: IO[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server whose stderr (its log) goes to the file ``log``; wait until it answers (any status)."""
    process = subprocess.Popen(on_core(SERVER_CORE, command), stdout=subprocess.DEVNULL, stderr=log, text=True,
                               env=env)
    deadline = time.monotonic() + 120  # generous: a loaded machine imports slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start within 120 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _milliseconds(text: str) -> float:
    """A wrk duration ("850.00us", "1.23ms", "1.05s") in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def measure_http(url: str, body: str, width: int) -> tuple[float, float, float, int]:
    """(requests a second, p50 ms, p99 ms, requests that failed) for HTTP_SECONDS of one-row POSTs at CONCURRENCY."""
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT.format(body=body))
        threads = "-t1" if PINNED else "-t2"  # one core: one thread
        wrk = on_core(LOAD_CORE, ["wrk", threads, "-c", str(CONCURRENCY), "--latency", "-s", script.name, url])
        try:
            subprocess.run(wrk + ["-d1s"], capture_output=True, text=True, timeout=60)  # warm-up
            out = subprocess.run(wrk + [f"-d{HTTP_SECONDS:g}s"], capture_output=True, text=True, timeout=60).stdout
        finally:
            os.unlink(script.name)
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p50 = _milliseconds(re.search(r"\s50%\s+(\S+)", out).group(1))
        p99 = _milliseconds(re.search(r"\s99%\s+(\S+)", out).group(1))
        failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
        return rate, p50, p99, (int(failed.group(1)) if failed else 0) + (sum(map(int, errors.groups())) if errors else 0)
    # No wrk: several Python client processes, each with its share of the connections.
    processes = 4
    command = [sys.executable, "-m", "deployment", "loadtest", url, "--duration", f"{HTTP_SECONDS:g}",
               "--concurrency", str(CONCURRENCY // processes), "--features", str(width), "--json"]
    clients = [subprocess.Popen(on_core(LOAD_CORE, command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for _ in range(processes)]
    summaries = [json.loads(client.communicate(timeout=120)[0]) for client in clients]
    return (sum(s["throughput_rps"] for s in summaries), float(np.median([s["p50_ms"] for s in summaries])),
            max(s["p99_ms"] for s in summaries), sum(s["errors"] for s in summaries))


def one_row(model, row: list[list[float]]) -> None:
    """(a) one row a call: InferenceAPI.predict (validation, monitor, JSON log line) against model.predict."""
    # Logging on: every request's JSON line is built and handed to a handler that keeps it
    # (a real service ships them from a queue; the I/O is the shipper's cost, not the request's).
    request_log = logging.getLogger("deployment.inference")
    keeper = logging.handlers.BufferingHandler(capacity=10_000_000)
    request_log.addHandler(keeper)
    request_log.setLevel(logging.INFO)
    request_log.propagate = False
    monitor = default_monitor()  # Part 3's ModelMonitor when it is written, else the LatencyRecorder
    print("== (a) one row in process: validation, a monitor and the JSON log line (kept at INFO) on")
    for each in [LatencyRecorder()] + ([] if isinstance(monitor, LatencyRecorder) else [monitor]):
        api = InferenceAPI(model, APIConfig(version="1.0.0"), monitor=each)
        bare_us, api_us = best_times_us(lambda: model.predict(row), lambda: api.predict(row), number=40, repeat=300)
        lines = len(keeper.buffer)
        keeper.buffer.clear()
        features = np.array(row)[0]  # what the API hands the monitor for a one-row request
        monitor_us = best_time_us(lambda: each.log_prediction(features, np.array([1]), 0.1), number=2000)
        overhead_us = api_us - bare_us
        print(f"bare model.predict {bare_us:5.1f} us, InferenceAPI.predict with {type(each).__name__} "
              f"{api_us:5.1f} us: overhead {overhead_us:5.1f} us a call (target < 25 us: "
              f"{'met' if overhead_us < 25 else 'MISSED'}), of which the monitor's log_prediction "
              f"{monitor_us:4.1f} us; {lines:,} log lines written")


def batch(model, width: int) -> None:
    """(b) one batch of 10,000 rows: InferenceAPI.predict's throughput against model.predict's."""
    print("\n== (b) a batch of 10,000 rows in process (monitor and log on)")
    X = np.random.default_rng(0).normal(size=(10_000, width))
    big = InferenceAPI(model, APIConfig(version="1.0.0", max_batch_size=10_000), monitor=default_monitor())
    bare_ms, api_ms = (t / 1000 for t in best_times_us(lambda: model.predict(X), lambda: big.predict(X),
                                                      number=5, repeat=5))
    ratio = bare_ms / api_ms
    print(f"bare {10_000 / bare_ms * 1000:12,.0f} rows/s   InferenceAPI {10_000 / api_ms * 1000:12,.0f} rows/s   "
          f"ratio {ratio:.2f} (target >= 0.5): {'met' if ratio >= 0.5 else 'MISSED'}")
    rows_list = X.tolist()  # as a JSON body arrives: both sides must first turn 300,000 floats into an array
    bare_list_ms, list_ms = (t / 1000 for t in best_times_us(lambda: model.predict(rows_list),
                                                             lambda: big.predict(rows_list), number=2, repeat=5))
    print(f"the same batch as a Python list: bare {10_000 / bare_list_ms * 1000:,.0f} rows/s, "
          f"InferenceAPI {10_000 / list_ms * 1000:,.0f} rows/s, ratio {bare_list_ms / list_ms:.2f} "
          "(the API also checks every value's type: no booleans, strings or None)")


def http(models: dict[str, object], row: list[list[float]], width: int, mlflow_venv: Path | None) -> None:
    """(c) one-row requests over HTTP at CONCURRENCY: `python -m deployment serve` against a bare FastAPI app."""
    client = f"wrk, {CONCURRENCY} connections" if shutil.which("wrk") else f"4 Python client processes, {CONCURRENCY} connections"
    client += f"; server on core {SERVER_CORE}, load on core {LOAD_CORE}" if PINNED else ""
    print(f"\n== (c) one-row requests over HTTP, {ROUNDS} rounds of {HTTP_SECONDS:g} s ({client}); "
          "serve keeps its monitor and writes its JSON request log to a file")
    if not shutil.which("wrk"):
        print("WARNING: without wrk, the Python clients reach a few hundred requests a second: they, not the "
              "servers, set the figures below, and the ratios say little. Install wrk (apt-get install wrk).")
    body = json.dumps({"instances": row})
    with tempfile.TemporaryDirectory() as folder:
        mlflow_python = mlflow_peer.ensure_mlflow_venv(mlflow_venv) if mlflow_venv else None
        for model_label, model in models.items():
            path = save_model(model, Path(folder) / "cancer.json", version="1.0.0")
            serve = [sys.executable, "-m", "deployment", "serve", str(path), "--log-level", "info"]
            servers: dict[str, tuple[list[str], str, dict[str, str] | None]] = {  # command, URL path, environment
                "bare FastAPI endpoint": ([sys.executable, "-c", BARE_APP, str(path)], "/predict", None),
                "bare, asyncio event loop": ([sys.executable, "-c", BARE_APP, str(path)], "/predict", None),
                "serve, micro-batching": (serve, "/predict", None),
                "serve, batching, 1 ms wait": (serve + ["--batch-wait-ms", "1"], "/predict", None),
                "serve, no batching": (serve + ["--no-micro-batching"], "/predict", None),
            }
            if mlflow_python is not None and model_label.startswith("scikit-learn"):
                servers["MLflow models serve"] = (["mlflow"], mlflow_peer.INVOCATIONS_PATH, None)
            figures: dict[str, list[tuple[float, float, float, int]]] = {}
            with contextlib.ExitStack() as running:  # every server up at once; idle ones cost nothing
                urls = {}
                for label, (command, url_path, env) in servers.items():
                    port = free_port()
                    if label == "MLflow models serve":
                        command, env = mlflow_peer.mlflow_serve_command(mlflow_python, Path(folder), port)
                    elif label == "bare FastAPI endpoint":
                        command = command + [str(port)]
                    elif label == "bare, asyncio event loop":
                        command = command + [str(port), "asyncio"]
                    else:
                        command = command + ["--port", str(port)]
                    log = running.enter_context(open(Path(folder) / f"server-{len(urls)}.log", "w"))
                    running.callback(stop_server, start_server(command, port, log, env=env))
                    urls[label] = f"http://127.0.0.1:{port}{url_path}"
                for _ in range(ROUNDS):  # the servers take turns, so the ratios of a round compare neighbours in time
                    for label, url in urls.items():
                        figures.setdefault(label, []).append(measure_http(url, body, width))
            print_table(model_label, figures)


def print_table(model_label: str, figures: dict[str, list[tuple[float, float, float, int]]]) -> None:
    """One model's servers: the best round's figures, and each figure's ratio to the bare endpoint of the same round."""
    print(f"\n{model_label}")
    print(f"{'server':26s} {'req/s':>8s} {'ratio':>9s} {'p50 ms':>7s} {'ratio':>9s} {'p99 ms':>7s} {'ratio':>9s}  failed"
          "   (ratios to the bare endpoint of the same round: their range over the rounds)")
    bare = figures["bare FastAPI endpoint"]
    for label, rounds in figures.items():
        ranges = [(min(ratios), max(ratios)) for ratios in
                  ([r[i] / b[i] for r, b in zip(rounds, bare)] for i in range(3))]
        best = max(rounds, key=lambda r: r[0])
        print(f"{label:26s} {best[0]:8,.0f} {ranges[0][0]:4.2f}-{ranges[0][1]:4.2f} {best[1]:7.2f} "
              f"{ranges[1][0]:4.2f}-{ranges[1][1]:4.2f} {best[2]:7.2f} {ranges[2][0]:4.2f}-{ranges[2][1]:4.2f}  "
              f"{sum(r[3] for r in rounds)}")
    if not model_label.startswith("scikit-learn"):
        print("(no target: this model answers in tens of microseconds, less than the framework's work for each "
              "request, so a batch saves little)")
        return
    ratios = [(r[0] / b[0], r[2] / b[2]) for r, b in zip(figures["serve, micro-batching"], bare)]
    met = sum(rps >= 1.5 and p99 <= 1.2 for rps, p99 in ratios)
    medians = np.median(ratios, axis=0)
    print(f"micro-batching target (throughput >= 1.5x and p99 <= 1.2x the bare endpoint's): met in {met} of "
          f"{len(ratios)} rounds; median ratios {medians[0]:.2f}x throughput, {medians[1]:.2f}x p99")
    # uvloop serves connections unevenly when each request holds the loop for long (a slow model called
    # inline): the bare endpoint's p99 is then several times its median. On asyncio's own loop it is not.
    fair = [r[2] / b[2] for r, b in zip(figures["serve, micro-batching"], figures["bare, asyncio event loop"])]
    print(f"p99 of serve with micro-batching against the bare endpoint on asyncio's loop: "
          f"{min(fair):.2f}-{max(fair):.2f}x (<= 1.2x in {sum(f <= 1.2 for f in fair)} of {len(fair)} rounds)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow", action="store_true",
                        help="add MLflow's `models serve` to the HTTP table (installs MLflow in a throwaway venv)")
    parser.add_argument("--mlflow-venv", type=Path, default=Path(tempfile.gettempdir()) / "bench-mlflow-venv",
                        help="where that venv lives (made on first use; default: %(default)s)")
    args = parser.parse_args()
    data = load_dataset("breast_cancer", seed=0)
    workbook_model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(
        data.X_train, data.y_train)
    sklearn_model = SklearnPipeline([("scale", SklearnStandardScaler()),
                                     ("model", SklearnLogisticRegression(max_iter=1000))]).fit(data.X_train, data.y_train)
    row = data.X_test[:1].tolist()
    one_row(workbook_model, row)
    batch(workbook_model, data.n_features)
    http({"scikit-learn Pipeline(StandardScaler, LogisticRegression)": sklearn_model,
          "the workbook's numpy Pipeline(StandardScaler, LogisticRegression)": workbook_model},
         row, data.n_features, args.mlflow_venv if args.mlflow else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
