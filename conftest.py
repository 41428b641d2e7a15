"""Choose which ``deployment`` package the tests and notebooks import.

One switch serves pytest, its xdist workers and the notebook kernels that
nbval starts:

* ``pytest --impl=solutions`` or ``DEPLOYMENT_IMPL=solutions``: the reference
  solution in ``solutions/deployment`` (in the instructor's checkout only);
* ``--impl=student`` (the default): the student package ``deployment/``;
* ``--impl=PATH``: the ``deployment`` package inside another checkout (grading).

The chosen folder goes first on ``sys.path`` for the tests and first on
``PYTHONPATH`` for every process started from here, notebook kernels included.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NAMED = {"student": ROOT, "solutions": ROOT / "solutions"}


def pytest_addoption(parser):
    parser.addoption(
        "--impl",
        default=os.environ.get("DEPLOYMENT_IMPL", "student"),
        help="which deployment package to test: student (default), solutions, or a folder "
        "holding a deployment/ package; also read from DEPLOYMENT_IMPL",
    )


def _package_home(choice: str) -> Path:
    home = NAMED.get(choice, Path(choice).expanduser().resolve())
    if not (home / "deployment" / "__init__.py").is_file():
        raise SystemExit(f"--impl={choice}: {home} holds no deployment/__init__.py.")
    return home


def pytest_configure(config):
    home = _package_home(config.getoption("--impl"))
    sys.path.insert(0, str(home))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(home)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    os.environ["DEPLOYMENT_IMPL"] = str(home)
    # Python 3.11+: `python -c`/`-m` in a subprocess must not put the working folder
    # (which holds the student package) ahead of PYTHONPATH.
    os.environ["PYTHONSAFEPATH"] = "1"
    import deployment

    where = Path(deployment.__file__).resolve().parent
    if where != home / "deployment":
        raise SystemExit(f"--impl: expected deployment from {home}, but Python imported it from {where}.")
    config._deployment_home = where


def pytest_report_header(config):
    where = getattr(config, "_deployment_home", None)
    if where is not None:
        try:
            shown = where.relative_to(ROOT)
        except ValueError:
            shown = where
        return f"deployment package under test: {shown}"
