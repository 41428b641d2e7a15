"""The command line: ``python -m deployment COMMAND``.

    python -m deployment demo [--out build/demo]   the production story, end to end
    python -m deployment serve MODEL.json [--name NAME] [--host 127.0.0.1] [--port 8000]
                               [--api-key KEY] [--rate-limit-rps R] [--burst B] [--workers N]
                               [--no-micro-batching] [--batch-wait-ms MS]
    python -m deployment loadtest URL [--requests N | --duration S] [--concurrency C]
                               [--rate R] [--rows K] [--features F] [--api-key KEY]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys


def _serve(args: argparse.Namespace) -> int:
    """Serve a saved model until Ctrl-C or SIGTERM; the requests in flight are finished first."""
    import uvicorn

    from .server import SERVE_OPTIONS_VARIABLE, build_app, log_requests

    log_requests(args.log_level)

    options = {"name": args.name, "api_keys": args.api_key or None, "rate_limit_rps": args.rate_limit_rps,
               "burst": args.burst, "micro_batching": not args.no_micro_batching, "max_wait_ms": args.batch_wait_ms}
    if args.workers > 1:
        from .metrics import shared_metrics_directory

        # Each worker process builds its own app (and its own monitor, window and rate limits). Their
        # Prometheus counters go to files in one shared folder, so a scrape of any worker reports the
        # sum over all of them (prometheus_client's multiprocess mode, see deployment.metrics).
        os.environ[SERVE_OPTIONS_VARIABLE] = json.dumps({"model_path": args.model, "log_level": args.log_level,
                                                         **options})
        with shared_metrics_directory():  # named in PROMETHEUS_MULTIPROC_DIR before the workers start
            uvicorn.run("deployment.server:app_from_environment", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_level=args.log_level, access_log=False,
                        timeout_graceful_shutdown=30)
        return 0
    app = build_app(args.model, **options)
    api = app.state.api
    print(f"Serving {app.state.name!r} version {api.version} on http://{args.host}:{args.port} "
          f"(Ctrl-C to stop; monitor: {type(app.state.monitor).__name__})", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            access_log=False, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM (stop accepting, finish in-flight requests), then
    # re-raises the signal to the handler that was there before; this one lets us exit 0.
    stopped_by: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopped_by.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by:
        print(f"Stopped cleanly on {signal.Signals(stopped_by[0]).name}.", flush=True)
    return 0 if server.started or stopped_by else 1


def _loadtest(args: argparse.Namespace) -> int:
    import httpx
    import numpy as np

    from .loadtest import run_load_test

    features = args.features
    if features is None:
        match = re.match(r"^(?P<base>.*/v1/models/(?P<name>[^/:]+)):predict$", args.url)
        if match is None:
            print("loadtest: pass --features N (the model's width), or a KServe URL .../v1/models/NAME:predict.",
                  file=sys.stderr)
            return 2
        features = httpx.get(match["base"], timeout=10).json()["n_features"]
    rows = np.random.default_rng(args.seed).normal(size=(1000, features))
    result = run_load_test(args.url, rows, n_requests=args.requests, duration_s=args.duration,
                           concurrency=args.concurrency, rate_rps=args.rate, rows_per_request=args.rows,
                           api_key=args.api_key)
    print(json.dumps(result.summary()) if args.json else result)
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment", description="Take a model to production.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole production story with this package")
    demo.add_argument("--out", default="build/demo", help="folder for the plots and model files")

    serve = commands.add_parser("serve", help="serve a saved model over HTTP")
    serve.add_argument("model", help="a model file written by save_model")
    serve.add_argument("--name", help="the model's name in /v1/models/NAME (default: the file's stem)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", action="append", help="an accepted API key (repeat for several)")
    serve.add_argument("--rate-limit-rps", type=float, help="requests a second per client (default: no limit)")
    serve.add_argument("--burst", type=int, help="requests a client may make at once (default: the rate)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (each with its own monitor)")
    serve.add_argument("--no-micro-batching", action="store_true", help="answer each request on its own")
    serve.add_argument("--batch-wait-ms", type=float, default=0.0,
                       help="longest a one-row request waits for others to share a model call "
                            "(default 0: only those that arrived meanwhile)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    load = commands.add_parser("loadtest", help="send many requests to a predict URL and report latencies")
    load.add_argument("url", help="e.g. http://127.0.0.1:8000/v1/models/cancer:predict")
    load.add_argument("--requests", type=int, help="how many requests (default: 1000 unless --duration)")
    load.add_argument("--duration", type=float, help="seconds to run")
    load.add_argument("--concurrency", type=int, default=8)
    load.add_argument("--rate", type=float, help="target requests a second (default: as fast as answered)")
    load.add_argument("--rows", type=int, default=1, help="rows per request")
    load.add_argument("--features", type=int, help="the model's width (default: asked from a KServe URL)")
    load.add_argument("--api-key")
    load.add_argument("--seed", type=int, default=0, help="seed of the random rows sent")
    load.add_argument("--json", action="store_true", help="print the summary as JSON")

    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.out)
    if args.command == "serve":
        return _serve(args)
    if args.command == "loadtest":
        if args.requests is None and args.duration is None:
            args.requests = 1000
        return _loadtest(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
