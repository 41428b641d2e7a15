"""The command line: ``python -m deployment COMMAND``.

    python -m deployment demo [--out build/demo]   the production story, end to end
    python -m deployment serve MODEL.json [--name NAME] [--host 127.0.0.1] [--port 8000]
                               [--api-key KEY] [--rate-limit-rps R] [--burst B] [--workers N]
                               [--no-micro-batching] [--batch-wait-ms MS] [--signing-key-file PATH]
                               [limits on clients: see --help]
    python -m deployment loadtest URL [--requests N | --duration S] [--concurrency C]
                               [--rate R] [--rows K] [--features F] [--api-key KEY]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path


def _limits(args: argparse.Namespace) -> dict:
    """The ``ServerLimits`` fields set on the command line (the others keep their defaults)."""
    names = ("max_header_bytes", "max_headers", "header_timeout_s", "body_timeout_s", "max_body_bytes",
             "max_connections", "keep_alive_s", "forwarded_allow_ips", "failed_keys_per_minute")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _serve(args: argparse.Namespace) -> int:
    """Serve a saved model until Ctrl-C or SIGTERM; the requests in flight are finished first."""
    import uvicorn

    from .errors import DeploymentError
    from .limits import ServerLimits, uvicorn_config, uvicorn_options
    from .server import SERVE_OPTIONS_VARIABLE, build_app, log_requests

    listener = log_requests(args.log_level)
    options = {"name": args.name, "api_keys": args.api_key or None, "rate_limit_rps": args.rate_limit_rps,
               "burst": args.burst, "micro_batching": not args.no_micro_batching, "max_wait_ms": args.batch_wait_ms}
    try:
        limits = ServerLimits(**_limits(args))
        signing_key = Path(args.signing_key_file).read_bytes().strip() if args.signing_key_file else None
    except (DeploymentError, OSError) as error:
        print(f"serve: {error}", file=sys.stderr)
        listener.stop()
        return 2

    if args.workers > 1:
        from .metrics import shared_metrics_directory

        # Each worker process builds its own app from these options (its own monitor window, rate
        # limits and cache). Their Prometheus counters go to files in one shared folder, so a scrape
        # of any worker reports the sum over all of them (prometheus_client's multiprocess mode,
        # see deployment.metrics).
        os.environ[SERVE_OPTIONS_VARIABLE] = json.dumps({
            "model_path": args.model, "log_level": args.log_level, "limits": _limits(args),
            "signing_key_file": args.signing_key_file, **options})
        with shared_metrics_directory():  # named in PROMETHEUS_MULTIPROC_DIR before the workers start
            uvicorn.run("deployment.server:app_from_environment", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_level=args.log_level, timeout_graceful_shutdown=30,
                        **uvicorn_options(limits))
        listener.stop()
        return 0

    try:
        app = build_app(args.model, signing_key=signing_key, limits=limits, **options)
        listening = socket.create_server((args.host, args.port))  # port 0: the system picks a free one
    except (DeploymentError, OSError) as error:
        print(f"serve: {error}", file=sys.stderr)
        listener.stop()
        return 2
    api = app.state.api
    port = listening.getsockname()[1]
    print(f"Serving {app.state.name!r} version {api.version} on http://{args.host}:{port} "
          f"(Ctrl-C to stop; monitor: {type(app.state.monitor).__name__})", flush=True)
    server = uvicorn.Server(uvicorn_config(app, limits, host=args.host, port=port, log_level=args.log_level,
                                           timeout_graceful_shutdown=30))
    # uvicorn handles SIGINT/SIGTERM (stop accepting, finish in-flight requests), then
    # re-raises the signal to the handler that was there before; this one lets us exit 0.
    stopped_by: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopped_by.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listener.stop()  # write the log lines still queued
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
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (each with its own rate limits and cache; /metrics sums them)")
    serve.add_argument("--no-micro-batching", action="store_true", help="answer each request on its own")
    serve.add_argument("--batch-wait-ms", type=float, default=0.0,
                       help="longest a one-row request waits for others to share a model call "
                            "(default 0: only those that arrived meanwhile)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--signing-key-file", metavar="PATH",
                       help="refuse to serve a model file not signed with the key in this file (HMAC-SHA256)")
    hardening = serve.add_argument_group(
        "limits on clients", "Defaults suit a server exposed behind nothing but a firewall. With --workers N, "
        "each worker keeps its own rate limits, cache and failed-key counts (a client may reach N times its "
        "rate); only /metrics is summed over the workers.")
    hardening.add_argument("--max-header-bytes", type=int, metavar="N",
                           help="largest request line + headers; past it: 431 (default 16384)")
    hardening.add_argument("--max-headers", type=int, metavar="N", help="most headers in a request (default 100)")
    hardening.add_argument("--header-timeout-s", type=float, metavar="S",
                           help="seconds a connection may take to send a request head; then closed (default 10)")
    hardening.add_argument("--body-timeout-s", type=float, metavar="S",
                           help="seconds a request may take to send its body; then 408 (default 30)")
    hardening.add_argument("--max-body-bytes", type=int, metavar="N",
                           help="largest body; past it: 413 (default: room for the largest batch)")
    hardening.add_argument("--max-connections", type=int, metavar="N",
                           help="open connections at once; one more gets 503 and is closed (default 1000)")
    hardening.add_argument("--keep-alive-s", type=int, metavar="S",
                           help="seconds an idle keep-alive connection stays open (default 5)")
    hardening.add_argument("--forwarded-allow-ips", metavar="IPS",
                           help="proxies whose X-Forwarded-For is believed, comma-separated or '*' "
                                "(default: none; rate limits count the connecting address)")
    hardening.add_argument("--failed-keys-per-minute", type=int, metavar="N",
                           help="wrong API keys an address may send a minute; then 429 (default 10)")

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
