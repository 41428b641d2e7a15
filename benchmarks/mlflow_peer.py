"""MLflow's ``mlflow models serve`` as an optional peer in bench_inference.py's HTTP table.

MLflow is never installed in the project's environment (its pins would fight
ours): it lives in a throwaway virtual environment of its own, made on first
use, which takes a few minutes and a few hundred megabytes::

    import mlflow_peer                       # bench_inference.py puts benchmarks/ on sys.path
    python = mlflow_peer.ensure_mlflow_venv(Path("/tmp/mlflow-venv"))
    command, env = mlflow_peer.mlflow_serve_command(python, folder, port)
    server = subprocess.Popen(command, env=env, stderr=log)
    # POST http://127.0.0.1:PORT/invocations  {"instances": [[30 floats]]}  -> {"predictions": [1]}

The model is the one the bench serves, rebuilt with scikit-learn in MLflow's
environment: ``Pipeline([StandardScaler(), LogisticRegression(max_iter=1000)])``
fitted on ``load_dataset("breast_cancer", seed=0)``'s training rows (the same
split, made the same way), saved with ``mlflow.sklearn.save_model`` and a
tensor signature (float64, any rows x 30 columns).

What the server is, so the comparison is fair:

- ``--env-manager local``: MLflow serves from the venv it runs in (no conda,
  no virtualenv of its own, no download).
- ``--workers 1``: one uvicorn process answers, like ``python -m deployment
  serve``. The ``mlflow`` command itself stays alive as an idle parent of that
  uvicorn process (``bash -c "exec uvicorn ..."``); it asks the kernel to
  SIGTERM its child when it dies, so stopping the ``mlflow`` process (SIGTERM,
  as bench_inference.stop_server does) stops both. A ``taskset`` prefix on
  the command pins both.
- MLflow's uvicorn writes an access-log line to stderr for every request, as
  it ships; ``access_log=False`` turns that off (``UVICORN_ACCESS_LOG=false``).
- The request body: MLflow's scoring server reads ``{"instances": rows}``
  (TF-serving style) and ``{"inputs": rows}`` as the signature's tensor, so
  the bench's body works unchanged; ``dataframe_split``/``dataframe_records``
  would need column names, which this tensor signature has none of. Its answer
  is ``{"predictions": [1]}``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["MLFLOW_VERSION", "SKLEARN_VERSION", "INVOCATIONS_PATH", "REQUEST_BODY_NOTE",
           "ensure_mlflow_venv", "mlflow_serve_command"]

ROOT = Path(__file__).resolve().parent.parent


def _project_pin(package: str) -> str:
    """The version ``requirements.txt`` pins ``package`` to (``package==X.Y.Z``)."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, flags=re.MULTILINE)
    if match is None:
        raise RuntimeError(f"requirements.txt does not pin {package}.")
    return match.group(1)


MLFLOW_VERSION = "3.17.2"  # the newest 3.x whose mlflow-tracing/mlflow-skinny twins are all on PyPI here
SKLEARN_VERSION = _project_pin("scikit-learn")  # the same as ours: the pickled pipeline must load in MLflow's venv
INVOCATIONS_PATH = "/invocations"
REQUEST_BODY_NOTE = ('POST /invocations with Content-Type application/json and {"instances": [[30 floats]]} '
                     '(or {"inputs": ...}): the bench\'s body, unchanged; the answer is {"predictions": [0 or 1]}.')
MODEL_FOLDER = "mlflow-cancer-model"

SAVE_MODEL = """
import sys
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

bunch = load_breast_cancer()
X, y = bunch.data.astype("float64"), bunch.target
# As deployment.load_dataset("breast_cancer", seed=0) splits it.
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))]).fit(X_train, y_train)
mlflow.sklearn.save_model(model, sys.argv[1], signature=infer_signature(X_train, model.predict(X_train)),
                          pip_requirements=[sys.argv[2]])
"""


def _installed(python: Path) -> dict[str, str]:
    """The versions of mlflow and scikit-learn in the venv of ``python`` (empty when it cannot say)."""
    probe = ("import json, importlib.metadata as m; "
             "print(json.dumps({p: m.version(p) for p in ('mlflow', 'scikit-learn')}))")
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def ensure_mlflow_venv(venv: Path) -> Path:
    """The python of a venv at ``venv`` holding MLFLOW_VERSION and SKLEARN_VERSION; made (minutes) when missing."""
    python = venv / "bin" / "python"
    wanted = {"mlflow": MLFLOW_VERSION, "scikit-learn": SKLEARN_VERSION}
    if python.exists() and _installed(python) == wanted:
        return python
    print(f"Installing mlflow=={MLFLOW_VERSION} and scikit-learn=={SKLEARN_VERSION} into {venv} "
          "(a few minutes, once)...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"mlflow=={MLFLOW_VERSION}",
                        f"scikit-learn=={SKLEARN_VERSION}"], check=True, capture_output=True, text=True,
                       timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = (getattr(error, "stderr", None) or str(error)).strip().splitlines()
        raise RuntimeError(f"Could not install mlflow=={MLFLOW_VERSION} into {venv}: "
                           f"{detail[-1] if detail else error}") from None
    return python


def _environment(venv_python: Path) -> dict[str, str]:
    """This process's environment for the MLflow venv: its bin first on PATH, none of the project's paths."""
    bin_folder = str(venv_python.parent)  # not resolved: the venv's bin, not the base interpreter's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME")}
    env.update(PATH=os.pathsep.join([bin_folder, env.get("PATH", "")]), VIRTUAL_ENV=str(Path(bin_folder).parent),
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def mlflow_serve_command(venv_python: Path, folder: Path, port: int, *,
                         access_log: bool = True) -> tuple[list[str], dict[str, str]]:
    """(command, environment) serving the cancer pipeline with ``mlflow models serve`` on 127.0.0.1:``port``.

    The model is saved in ``folder`` (once: an existing save is kept) by
    MLflow's own python. The server is one uvicorn worker; the environment
    puts the venv's ``bin`` first on PATH, since MLflow starts ``uvicorn`` by
    name. ``access_log=False`` silences uvicorn's line a request.
    """
    model = Path(folder) / MODEL_FOLDER
    env = _environment(venv_python)
    if not (model / "MLmodel").exists():
        saved = subprocess.run([str(venv_python), "-c", SAVE_MODEL, str(model), f"scikit-learn=={SKLEARN_VERSION}"],
                               env=env, capture_output=True, text=True, timeout=600)
        if saved.returncode != 0:
            raise RuntimeError(f"MLflow could not save the model in {model}: {saved.stderr.strip()[-500:]}")
    if not access_log:
        env["UVICORN_ACCESS_LOG"] = "false"  # uvicorn reads its options from UVICORN_* variables too
    command = [str(venv_python.parent / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return command, env
