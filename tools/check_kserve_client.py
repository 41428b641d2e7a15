"""Instructor-only: does KServe's own Python client talk to ``python -m deployment serve``?

    PYTHONSAFEPATH=1 PYTHONPATH=solutions .venv/bin/python tools/check_kserve_client.py [--venv /tmp/kserve-venv]

The ``kserve`` package never goes into the project's environment: this script
keeps it in a throwaway virtual environment (default ``/tmp/kserve-venv``),
made with ``pip install kserve==KSERVE_VERSION`` on first use (about three
minutes). It then

1. saves a workbook model (``save_model`` of ``Pipeline([StandardScaler,
   LogisticRegression])`` fitted on ``load_dataset("breast_cancer", seed=0)``),
2. starts ``python -m deployment serve MODEL.json --name cancer`` on a free
   loopback port, with this python and the package this python imports
   (the reference, with ``PYTHONPATH=solutions``),
3. runs, in the kserve venv, ``kserve.InferenceRESTClient`` with
   ``RESTConfig(protocol="v1")`` against it: liveness, readiness, the model's
   readiness, inference with ``{"instances": ...}`` and ``{"inputs": ...}``,
   and the refusals (a row of the wrong width, an unknown model,
   ``:explain``), checking that the client shows our error sentence.

One line a check: ``ok`` or ``FAIL`` and what was seen. Exit status 1 when
a check fails, 2 when the venv or the server cannot be set up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import deployment
from deployment import LogisticRegression, Pipeline, StandardScaler, load_dataset, load_model, save_model

KSERVE_VERSION = "0.21.0"
MODEL_NAME = "cancer"

# Runs in the kserve venv: argv[1] is a JSON object {"url", "rows", "expected", "width"}; prints one JSON
# object a check: {"check", "ok", "detail"}.
CLIENT = r'''
import asyncio, json, sys
import httpx
from kserve import InferenceRESTClient, RESTConfig
from kserve.errors import UnsupportedProtocol

case = json.loads(sys.argv[1])
url, rows, expected, width = case["url"], case["rows"], case["expected"], case["width"]


def report(check, ok, detail):
    print(json.dumps({"check": check, "ok": bool(ok), "detail": detail}), flush=True)


def refusal(error, status):
    """(ok, detail) for an HTTPStatusError that should carry ``status`` and our error sentence."""
    body = error.response.json()
    sentence = body.get("error", "")
    ok = (error.response.status_code == status and set(body) == {"error", "type"} and bool(sentence)
          and str(error).startswith(sentence + ", '"))
    return ok, f"HTTPStatusError {error.response.status_code} {body['type']}: {str(error)!r}"


async def main():
    async with InferenceRESTClient(RESTConfig(protocol="v1", timeout=10, retries=0)) as client:
        live = await client.is_server_live(url)
        report("is_server_live", live is True, f"returned {live!r} (GET /)")

        try:
            ready = await client.is_server_ready(url)
            report("is_server_ready", False, f"returned {ready!r}; the V1 client was expected to refuse")
        except UnsupportedProtocol as error:
            report("is_server_ready", True, f"the client refuses it for V1 before any request ({error}); "
                   "server readiness is a V2 route, V1 has only the model's")

        ready = await client.is_model_ready(url, case["name"])
        report("is_model_ready", ready is True, f"returned {ready!r} (GET /v1/models/{case['name']})")

        try:
            missing = await client.is_model_ready(url, "nosuch")
            report("is_model_ready(unknown)", False, f"returned {missing!r}; expected a 404")
        except httpx.HTTPStatusError as error:
            report("is_model_ready(unknown)", *refusal(error, 404))

        for key in ("instances", "inputs"):
            answer = await client.infer(url, {key: rows}, model_name=case["name"])
            ok = isinstance(answer, dict) and answer.get("predictions") == expected
            report(f"infer {{{key!r}: rows}}", ok,
                   f"predictions {answer.get('predictions')} (expected {expected}), keys {sorted(answer)}")

        try:
            answer = await client.infer(url, {"instances": [[0.5] * (width - 1)]}, model_name=case["name"])
            report("infer, wrong width", False, f"answered {answer!r}; expected a 400")
        except httpx.HTTPStatusError as error:
            report("infer, wrong width", *refusal(error, 400))

        try:
            answer = await client.infer(url, {"instances": rows}, model_name="nosuch")
            report("infer, unknown model", False, f"answered {answer!r}; expected a 404")
        except httpx.HTTPStatusError as error:
            report("infer, unknown model", *refusal(error, 404))

        try:
            answer = await client.explain(url, case["name"], {"instances": rows})
            report("explain", False, f"answered {answer!r}; expected a 501")
        except httpx.HTTPStatusError as error:
            report("explain", *refusal(error, 501))


asyncio.run(main())
'''


def ensure_kserve_venv(venv: Path) -> Path:
    """The python of a venv at ``venv`` holding kserve==KSERVE_VERSION; made (minutes) when missing."""
    python = venv / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('kserve'))"
    if python.exists():
        installed = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
        if installed.stdout.strip() == KSERVE_VERSION:
            return python
    print(f"Installing kserve=={KSERVE_VERSION} into {venv} (a few minutes, once)...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"kserve=={KSERVE_VERSION}"],
                       check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = (getattr(error, "stderr", None) or str(error)).strip().splitlines()
        raise RuntimeError(f"Could not install kserve=={KSERVE_VERSION} into {venv}: "
                           f"{detail[-1] if detail else error}") from None
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_path: Path, port: int, log_path: Path) -> subprocess.Popen:
    """``python -m deployment serve`` with this python; returns once it answers GET / (at most 60 s)."""
    command = [sys.executable, "-m", "deployment", "serve", str(model_path), "--port", str(port),
               "--name", MODEL_NAME, "--log-level", "warning"]
    # The server imports the very package this script imported (the reference, with PYTHONPATH=solutions).
    env = dict(os.environ, PYTHONPATH=str(Path(deployment.__file__).resolve().parent.parent), PYTHONSAFEPATH="1")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log_path.read_text()[-1000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError("the server did not answer within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/kserve-venv"),
                        help="the throwaway venv holding kserve (made when missing)")
    args = parser.parse_args(argv)
    try:
        kserve_python = ensure_kserve_venv(args.venv)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2

    data = load_dataset("breast_cancer", seed=0)
    model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(data.X_train, data.y_train)
    rows = data.X_test[:3]
    with tempfile.TemporaryDirectory() as folder:
        path = save_model(model, Path(folder) / "cancer.json", version="1.0.0")
        expected = load_model(path).predict(rows).tolist()
        port = free_port()
        try:
            server = start_server(path, port, Path(folder) / "server.log")
        except RuntimeError as error:
            print(f"Could not start the server: {error}", file=sys.stderr)
            return 2
        try:
            case = {"url": f"http://127.0.0.1:{port}", "name": MODEL_NAME, "rows": rows.tolist(),
                    "expected": expected, "width": data.n_features}
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
            client = subprocess.run([str(kserve_python), "-c", CLIENT, json.dumps(case)], env=env,
                                    capture_output=True, text=True, timeout=120)
        finally:
            stop_server(server)

    print(f"kserve {KSERVE_VERSION} InferenceRESTClient (protocol v1) against python -m deployment serve "
          f"--name {MODEL_NAME}")
    failed = 0
    for line in client.stdout.splitlines():
        result = json.loads(line)
        failed += not result["ok"]
        print(f"{'ok  ' if result['ok'] else 'FAIL'} {result['check']}: {result['detail']}")
    if client.returncode != 0:
        failed += 1
        print(f"FAIL the client script stopped (exit {client.returncode}): {client.stderr.strip()[-1500:]}")
    print(f"{failed} check(s) failed" if failed else "every check passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
