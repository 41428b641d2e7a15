"""Part 3: data drift, the question "does production data still look like the training data?".

A model learns from a *reference* sample (its training data). When the
rows it is asked about in production come from a different distribution,
its accuracy can fall long before any label arrives to show it. Drift
detection compares the two samples feature by feature, using only the
inputs, so it warns early.

Three measures, each computed for every feature of a sample in a few numpy
calls (no Python loop over rows):

* the two-sample Kolmogorov-Smirnov test: the largest gap between the two
  empirical CDFs (the statistic, between 0 and 1) and how likely a gap that
  large is by chance (the p-value), equal to ``scipy.stats.ks_2samp``'s;
* the population stability index (PSI): how much the share of rows in each
  decile bin of the reference has moved, the measure credit scoring uses;
* the Wasserstein distance (the earth mover's distance) divided by the
  reference's standard deviation: how far, in standard deviations, the
  mass of the distribution has moved.

>>> rng = np.random.default_rng(0)
>>> reference = rng.normal(size=(1000, 3))
>>> shifted = reference + [0.0, 0.0, 0.5]
>>> [f["drifted"] for f in detect_data_drift(shifted, reference)["features"]]
[False, False, True]
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ValidationError

__all__ = [
    "DRIFT_METHODS", "PSI_THRESHOLD", "WASSERSTEIN_THRESHOLD",
    "ks_statistics", "ks_p_values", "psi_scores", "wasserstein_scores",
    "detect_data_drift", "drift_over_time",
]

DRIFT_METHODS = ("ks", "psi", "wasserstein")
"""The ``method`` names ``detect_data_drift`` accepts."""

PSI_THRESHOLD = 0.2
"""A feature whose PSI is above this has drifted (the credit-scoring rule of thumb)."""

WASSERSTEIN_THRESHOLD = 0.1
"""A feature whose Wasserstein distance, in reference standard deviations, is at least this has drifted."""

PSI_EMPTY_BIN = 1e-4
"""The share used for a bin that holds no rows, so the PSI's logarithm stays finite."""

KS_EXACT_MAX_ROWS = 10_000
"""``scipy.stats.ks_2samp`` computes exact p-values while both samples have at most this many rows."""


def ks_p_values(statistics: Any, n_new: int, n_reference: int) -> np.ndarray:
    """Two-sided p-values of KS statistics, from scipy's public API: those ``scipy.stats.ks_2samp`` reports.

    ``statistics`` holds one KS statistic per feature, all from samples of
    ``n_new`` and ``n_reference`` rows. The p-value ``ks_2samp`` reports
    depends only on the statistic and the two sample sizes, and its
    documentation says how: exact while both samples have at most
    ``KS_EXACT_MAX_ROWS`` rows, else Smirnov's asymptotic distribution,
    ``scipy.stats.kstwo`` with ``n = round(n1 * n2 / (n1 + n2))``.

    * Asymptotic: ``kstwo.sf`` of every statistic at once.
    * Exact: for each distinct statistic, ``ks_2samp`` itself, asked about
      two samples of those sizes that have it: ``i`` zeros and
      ``n_reference - i`` ones, against ``j`` zeros and ``n_new - j`` ones,
      whose largest CDF gap is ``i / n_reference - j / n_new``. Features
      with the same statistic share one call, and answers are remembered
      (windows of one size against one reference meet the same statistics
      again and again).

    A statistic is a multiple of ``1 / lcm(n_new, n_reference)`` (each
    empirical CDF moves in steps of one row); others are rounded to the
    nearest multiple, as scipy does, and a value no two samples of these
    sizes can have is a ValidationError.

    >>> float(ks_p_values(np.array([0.5]), 10, 10)[0])  # doctest: +ELLIPSIS
    0.167...
    """
    statistics = np.asarray(statistics, dtype=np.float64)
    if max(n_new, n_reference) > KS_EXACT_MAX_ROWS:
        m, n = sorted([float(n_new), float(n_reference)], reverse=True)
        return np.clip(stats.kstwo.sf(statistics, np.round(m * n / (m + n))), 0.0, 1.0)
    lcm = math.lcm(n_new, n_reference)
    steps = np.rint(statistics * lcm).astype(np.int64)  # statistic = steps / lcm
    p_values = np.empty(statistics.shape)
    for step in np.unique(steps):
        p_values[steps == step] = _ks_p_value(int(step), n_new, n_reference)
    return p_values


@functools.lru_cache(maxsize=10_000)
def _ks_p_value(step: int, n_new: int, n_reference: int) -> float:
    """``ks_2samp``'s p-value for the statistic ``step / lcm``; remembered, as it depends on nothing else."""
    reference, new = _samples_with_gap(step, n_new, n_reference)
    return float(stats.ks_2samp(reference, new).pvalue)


def _samples_with_gap(step: int, n_new: int, n_reference: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples of 0s and 1s, of ``n_reference`` and ``n_new`` values, whose KS statistic is ``step / lcm``."""
    lcm = math.lcm(n_new, n_reference)
    per_reference_row, per_new_row = lcm // n_reference, lcm // n_new
    # i / n_reference - j / n_new = step / lcm, that is i * per_reference_row - step = j * per_new_row
    i = np.arange(n_reference + 1, dtype=np.int64)
    j_steps = i * per_reference_row - step
    possible = (j_steps >= 0) & (j_steps % per_new_row == 0) & (j_steps <= n_new * per_new_row)
    if not possible.any():
        raise ValidationError(
            f"ks_p_values: no samples of {n_reference} and {n_new} rows have a KS statistic of {step / lcm!r}."
        )
    i_zeros = int(np.argmax(possible))
    j_zeros = int(j_steps[i_zeros] // per_new_row)
    return (np.repeat([0.0, 1.0], [i_zeros, n_reference - i_zeros]),
            np.repeat([0.0, 1.0], [j_zeros, n_new - j_zeros]))


def _as_sample(data: Any, label: str) -> np.ndarray:
    """One sample as a finite 2-D float array (rows x features); ``label`` names it in errors."""
    try:
        array = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Drift check: {label} must be a 2-D array of numbers ({exc}).") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValidationError(f"Drift check: {label} must be 2-D (rows x features), got {array.ndim}-D.")
    if array.shape[0] < 2:
        raise ValidationError(f"Drift check: {label} has {array.shape[0]} rows; at least 2 are needed.")
    if not np.isfinite(array).all():
        row, col = np.argwhere(~np.isfinite(array))[0]
        raise ValidationError(f"Drift check: {label}[{row}, {col}] is {array[row, col]}, not a finite number.")
    return array


def check_samples(
    new_data: Any, reference_data: Any, new_label: str = "new_data"
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Both samples as finite 2-D float arrays of the same width, and the feature names (given).

    A 1-D sample is one feature. The names are the reference's DataFrame
    columns, else 0, 1, 2, ... Raises ValidationError, with a message
    naming the sample (``new_label`` for the first one) and the row and
    column of a bad value, for samples that are not 1-D or 2-D arrays of
    numbers, have different feature counts or fewer than 2 rows, hold NaN
    or infinite values, or are two DataFrames whose columns differ. For
    example: ``Drift check: new_data must be a 2-D array of numbers``
    (text), ``Drift check: reference_data must be 2-D (rows x features),
    got 3-D``, ``Drift check: new_data has 1 rows; at least 2 are needed``,
    ``Drift check: new_data[0, 1] is nan, not a finite number``,
    ``Drift check: new_data has 3 features but reference_data has 4``.

    >>> new, reference, names = check_samples([1.0, 2.0, 3.0], [[0.0], [1.0]])
    >>> new.shape, names
    ((3, 1), [0])
    """
    new, reference = _as_sample(new_data, new_label), _as_sample(reference_data, "reference_data")
    if isinstance(new_data, pd.DataFrame) and isinstance(reference_data, pd.DataFrame) \
            and list(new_data.columns) != list(reference_data.columns):
        raise ValidationError(
            f"Drift check: {new_label} has columns {list(new_data.columns)}, "
            f"but reference_data has {list(reference_data.columns)} (same names, same order)."
        )
    if new.shape[1] != reference.shape[1]:
        raise ValidationError(
            f"Drift check: {new_label} has {new.shape[1]} features but reference_data has {reference.shape[1]}."
        )
    names = list(reference_data.columns) if isinstance(reference_data, pd.DataFrame) else range(reference.shape[1])
    return new, reference, list(names)


def ks_statistics(new_data: Any, reference_data: Any) -> np.ndarray:
    """The two-sample Kolmogorov-Smirnov statistic of every feature, at once.

    For each feature (column), the statistic is the largest vertical gap
    between the empirical CDFs of the two samples: 0 when they match, 1 when
    every new value lies beyond every reference value. No loop over rows:
    sort every column of both samples at once (``np.sort`` along an axis),
    then, per feature, one binary search (``np.searchsorted``,
    ``side="right"``) finds how many rows of the other sample lie at or
    below each value; the gap only changes at the samples' values, so the
    largest one is among those. Equal to
    ``scipy.stats.ks_2samp(reference[:, j], new[:, j]).statistic`` to 1e-12.

    Raises ValidationError for bad samples: check them with ``check_samples``
    (given), whose docstring lists the messages.

    >>> ks_statistics([[0.0], [1.0]], [[2.0], [3.0]])
    array([1.])
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write ks_statistics(). Read notebooks/03_monitoring_and_drift.ipynb, section '6. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=6"
    )


def psi_scores(new_data: Any, reference_data: Any) -> np.ndarray:
    """The population stability index of every feature, with bins from the reference's deciles.

    Each feature is cut into 10 bins at the reference's 10th, 20th, ...,
    90th percentiles (``numpy.quantile``), the outer two bins open-ended so
    new values outside the reference's range still count. With ``r`` and
    ``n`` the shares of reference and new rows in a bin (an empty bin counts
    as ``PSI_EMPTY_BIN`` of the rows), ``PSI = sum((n - r) * ln(n / r))``
    over the bins. A value equal to a bin edge falls in the bin above it.
    Rule of thumb: below 0.1 stable, 0.1 to 0.2 a moderate shift, above 0.2
    (``PSI_THRESHOLD``) drift.

    Raises ValidationError on bad samples (``check_samples``), as ``ks_statistics`` does.

    >>> reference = np.arange(1000.0)
    >>> float(psi_scores(reference, reference)[0])
    0.0
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write psi_scores(). Read notebooks/03_monitoring_and_drift.ipynb, section '7. PSI and Wasserstein: how far, not just whether'. Check it with: make grade PART=3 SECTION=7"
    )


def wasserstein_scores(new_data: Any, reference_data: Any) -> np.ndarray:
    """The Wasserstein distance of every feature, in standard deviations of the reference.

    The Wasserstein-1 (earth mover's) distance is the area between the two
    empirical CDFs: how much probability mass must move, and how far, to
    turn one sample into the other, in the feature's own units. Dividing by
    the reference's standard deviation (population, ``ddof=0``; at least
    0.001, as Evidently does) makes features comparable: 0.1 means the mass
    moved by a tenth of a standard deviation on average, the drift threshold
    ``WASSERSTEIN_THRESHOLD``. Equal to
    ``scipy.stats.wasserstein_distance(reference[:, j], new[:, j]) / reference[:, j].std()``
    to 1e-9. Sort each feature's values once: between two consecutive
    values of both samples merged, both empirical CDFs are flat, so the area
    there is the width times the gap between them.

    Raises ValidationError on bad samples (``check_samples``), as ``ks_statistics`` does.

    >>> float(wasserstein_scores([[1.0], [2.0]], [[0.0], [1.0]])[0])  # moved by 1, std 0.5
    2.0
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write wasserstein_scores(). Read notebooks/03_monitoring_and_drift.ipynb, section '7. PSI and Wasserstein: how far, not just whether'. Check it with: make grade PART=3 SECTION=7"
    )


def detect_data_drift(
    new_data: Any, reference_data: Any, *, method: str = "ks", alpha: float = 0.05
) -> dict[str, Any]:
    """Has the distribution of ``new_data`` moved away from ``reference_data``? Feature by feature.

    Both are 2-D (rows x features; a 1-D array is one feature); a pandas
    DataFrame as ``reference_data`` names the features by its columns,
    otherwise features are numbered from 0. When both are DataFrames, their
    columns must be the same, in the same order. Returns::

        {"is_drift": bool, "score": float, "method": str, "alpha": float, "threshold": float,
         "features": [{"feature": 0, "statistic": 0.031, "p_value": 0.72, "drifted": False}, ...]}

    * ``method="ks"`` (default): the two-sample KS test per feature
      (statistics from ``ks_statistics``, p-values from the given
      ``ks_p_values``). Testing 20 features at ``alpha`` each would raise a
      false alarm on 64% of clean batches, so the Bonferroni correction
      tests each feature at ``alpha / n_features`` (``threshold``): a
      feature drifted when its p-value is below it, and the chance of any
      false alarm is then at most ``alpha``. ``score`` is
      the largest KS statistic.
    * ``method="psi"``: ``psi_scores``; a feature drifted when its PSI is
      above ``PSI_THRESHOLD`` (0.2); ``score`` the largest PSI.
    * ``method="wasserstein"``: ``wasserstein_scores``; drifted at
      ``WASSERSTEIN_THRESHOLD`` (0.1) and above; ``score`` the largest.

    ``p_value`` is None for the methods that have none. ``threshold`` is
    what each feature was held against: ``alpha / n_features`` for a p-value
    (KS), else the method's constant. ``is_drift`` is True when any feature
    drifted. Raises ValidationError for an unknown method ("Drift check:
    method 'chi2' is not one of ('ks', 'psi', 'wasserstein')."), an
    ``alpha`` that is not a number strictly between 0 and 1 ("Drift check:
    alpha 1.5 must be a number strictly between 0 and 1."), each value
    written as ``repr`` shows it (``method None``, ``alpha '0.05'``), or
    bad samples (``check_samples``).

    >>> rng = np.random.default_rng(1)
    >>> detect_data_drift(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)))["is_drift"]
    False
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write detect_data_drift(). Read notebooks/03_monitoring_and_drift.ipynb, section '6. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=6"
    )


def drift_over_time(
    stream: Any,
    reference_data: Any,
    window: int,
    *,
    method: str = "ks",
    alpha: float = 0.05,
    step: int | None = None,
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score consecutive windows of a stream of rows against the reference: drift as a time series.

    The rows of ``stream`` (2-D, in arrival order) are cut into windows of
    ``window`` rows, starting every ``step`` rows (default ``window``: no
    overlap; a trailing partial window is dropped), and each window is
    checked with ``detect_data_drift``. Returns one row per window with
    columns ``start`` and ``stop`` (row positions, ``stream[start:stop]``),
    ``score``, ``threshold``, ``is_drift``, ``n_drifted`` (how many features
    drifted), then one column per feature holding its statistic, named
    ``feature_names`` or the reference's DataFrame columns, else ``"0"``,
    ``"1"``, ... (as text). Plot ``score`` against ``start`` for the
    notebook's drift chart.

    Raises ValidationError when ``window`` is not an ``int`` of at least 2
    ("window 1 must be a whole number of rows, at least 2"; ``100.0`` is
    refused too: "window 100.0 ...") or the stream has "fewer than one
    window" of rows, ``step`` is not an ``int`` of at least 1 ("step 0 must
    be a whole number of rows, at least 1"), ``feature_names`` has the
    wrong length ("1 feature names for 2 features"), or the stream or the reference is bad
    (``check_samples``, the stream named ``stream``: "stream has 3 features
    but reference_data has 2"), all checked before the first window.

    >>> rng = np.random.default_rng(0)
    >>> table = drift_over_time(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), 100)
    >>> table["start"].tolist(), table["is_drift"].tolist()
    ([0, 100, 200], [False, False, False])
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write drift_over_time(). Read notebooks/03_monitoring_and_drift.ipynb, section '8. Drift over time'. Check it with: make grade PART=3 SECTION=8"
    )
