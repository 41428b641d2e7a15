"""Run-time hooks of the mutation check: what the instrumented copy of the solutions calls.

``tools/mutation.py`` rewrites, in a temporary copy of the solutions, each
refusal message inside a solution block as ``message(site, <message>)`` and
each ``return <value>`` as ``number(site, <value>)``. Both give the value
back unchanged, except for the one *active* site (the mutant under test):

* ``message`` replaces a string by the generic ``"bad input."``;
* ``number`` makes a float, a numpy float (or float array), a pandas
  Series or DataFrame of floats, or a tuple/list/dict holding them, slightly
  wrong (relatively by 1e-3; 0.0
  becomes 1e-3). Anything else (an int, a string, None, NaN, inf) passes
  through unchanged.

While ``RECORDING`` (a graded test's setup or call is running), each site
reached is added to ``HITS``, and each return site whose value this run
could nudge to ``NUMBERS``: the test that reached it can kill its mutant.

A process started by a test (``python -c ...``, a server) reads the active
site from ``MUTATION_ACTIVE`` and, when ``MUTATION_HITS_DIR`` is set,
appends what it reaches to a file there, so its parent test gets the credit.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

GENERIC_MESSAGE = "bad input."
RELATIVE_NUDGE = 1e-3
SCAN_LIMIT = 16  # elements of a long list looked at to decide whether it holds numbers

ACTIVE: str | None = os.environ.get("MUTATION_ACTIVE") or None
RECORDING: bool = ACTIVE is not None or bool(os.environ.get("MUTATION_HITS_DIR"))
HITS: set[str] = set()
NUMBERS: set[str] = set()
_CHILD_LOG = os.environ.get("MUTATION_HITS_DIR")


def _note(kind: str, site: str) -> None:
    """Tell the parent test (a file in MUTATION_HITS_DIR) that this child process reached ``site``."""
    if _CHILD_LOG:
        with open(os.path.join(_CHILD_LOG, f"{os.getpid()}.hits"), "a") as log:
            log.write(f"{kind} {site}\n")


def message(site: str, value: Any) -> Any:
    """The refusal message ``value``, or the generic one when ``site`` is the active mutant."""
    if RECORDING:
        if site not in HITS:
            HITS.add(site)
            _note("hit", site)
        if site == ACTIVE and isinstance(value, str):
            return GENERIC_MESSAGE
    return value


def number(site: str, value: Any) -> Any:
    """The returned ``value``, or a slightly wrong one when ``site`` is the active mutant."""
    if RECORDING:
        if site not in HITS:
            HITS.add(site)
            _note("hit", site)
        if site not in NUMBERS and holds_numbers(value):
            NUMBERS.add(site)
            _note("number", site)
        if site == ACTIVE:
            return nudge(value)
    return value


def _nudgeable_float(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isfinite(value)


def _pandas_float_columns(value: Any) -> list | None:
    """The float columns of a pandas DataFrame (or [None] for a float Series); None if it is neither."""
    pandas = sys.modules.get("pandas")  # only a process that uses pandas can return its objects
    if pandas is None:
        return None
    if isinstance(value, pandas.Series):
        return [None] if value.dtype.kind == "f" else []
    if isinstance(value, pandas.DataFrame):
        return [column for column, dtype in value.dtypes.items() if dtype.kind == "f"]
    return None


def holds_numbers(value: Any, depth: int = 0) -> bool:
    """True when ``nudge`` would change ``value``: it is, or holds, a finite float."""
    if _nudgeable_float(value):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f" and value.size > 0 and bool(np.isfinite(value).any())
    columns = _pandas_float_columns(value)
    if columns is not None:
        series = [value] if columns == [None] else [value[c] for c in columns]
        return any(holds_numbers(s.to_numpy(), depth + 1) for s in series)
    if depth > 2:
        return False
    if isinstance(value, (tuple, list)):
        return any(holds_numbers(v, depth + 1) for v in value[:SCAN_LIMIT])
    if isinstance(value, dict):
        return any(holds_numbers(v, depth + 1) for _, v in zip(range(SCAN_LIMIT), value.values()))
    return False


def _nudge_float(value: float) -> float:
    nudged = value * (1 + RELATIVE_NUDGE) if value != 0 else RELATIVE_NUDGE
    return type(value)(nudged) if isinstance(value, np.floating) else float(nudged)


def nudge(value: Any, depth: int = 0) -> Any:
    """``value`` made slightly wrong: every finite float in it moved by 1e-3 relative (0.0 to 1e-3).

    ``value`` itself is never changed: what changes is a copy, and what holds
    no float comes back as the very same object.
    """
    if _nudgeable_float(value):
        return _nudge_float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind != "f":
            return value
        with np.errstate(all="ignore"):
            return np.where(value == 0, np.asarray(RELATIVE_NUDGE, value.dtype), value * (1 + RELATIVE_NUDGE)).astype(
                value.dtype, copy=False)
    columns = _pandas_float_columns(value)
    if columns:
        copy = value.copy()
        if columns == [None]:
            copy[:] = nudge(value.to_numpy())
        for column in columns if columns != [None] else []:
            copy[column] = nudge(value[column].to_numpy())
        return copy
    if depth > 2:
        return value
    if isinstance(value, (tuple, list)):
        items = [nudge(v, depth + 1) for v in value]
        if all(new is old for new, old in zip(items, value)):
            return value
        if isinstance(value, list):
            return items
        return type(value)._make(items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        nudged = {k: nudge(v, depth + 1) for k, v in value.items()}
        if all(nudged[k] is v for k, v in value.items()):
            return value
        return nudged if type(value) is dict else type(value)(nudged)
    return value


def start_recording(active: str | None) -> None:
    """Record hits, with ``active`` as the mutant (None: no mutant), here and in child processes."""
    global ACTIVE, RECORDING
    ACTIVE, RECORDING = active, True
    if active is None:
        os.environ.pop("MUTATION_ACTIVE", None)
    else:
        os.environ["MUTATION_ACTIVE"] = active


def stop_recording() -> None:
    """Run the solutions unchanged and record nothing (fixture set-ups of wider scope, teardowns)."""
    global ACTIVE, RECORDING
    ACTIVE, RECORDING = None, False
    os.environ.pop("MUTATION_ACTIVE", None)
