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

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import distributions

from .errors import ValidationError

try:  # scipy's own exact routine, so exact p-values equal ks_2samp's to the last bit (scipy is pinned)
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - a future scipy may move it
    _attempt_exact_2kssamp = None

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

MAX_EXACT_ROWS = 10_000
"""Like scipy, compute exact KS p-values while both samples have at most this many rows."""

CHUNK_VALUES = 4_000_000
"""Sort at most this many values at a time, so memory stays bounded on wide, tall samples."""


def ks_p_values(statistics: np.ndarray, n_new: int, n_reference: int) -> np.ndarray:
    """Two-sided p-values of KS statistics, computed exactly as ``scipy.stats.ks_2samp`` does.

    ``statistics`` holds one KS statistic per feature, all from samples of
    ``n_new`` and ``n_reference`` rows. Like scipy's ``method="auto"``, the
    p-value is exact (counting lattice paths) while both samples have at
    most ``MAX_EXACT_ROWS`` rows, and Smirnov's asymptotic distribution
    otherwise. Features with the same statistic share one computation, so
    50 features cost a handful of exact evaluations, not 50.

    >>> float(ks_p_values(np.array([0.5]), 10, 10)[0])  # doctest: +ELLIPSIS
    0.167...
    """
    statistics = np.asarray(statistics, dtype=np.float64)
    m, n = sorted([float(n_new), float(n_reference)], reverse=True)
    asymptotic_n = np.round(m * n / (m + n))
    if max(n_new, n_reference) > MAX_EXACT_ROWS:
        return np.clip(distributions.kstwo.sf(statistics, asymptotic_n), 0.0, 1.0)
    g = math.gcd(n_new, n_reference)
    p_values = np.empty_like(statistics)
    unique, inverse = np.unique(statistics, return_inverse=True)
    for k, statistic in enumerate(unique):
        p_values[inverse == k] = _exact_p_value(n_reference, n_new, g, float(statistic), asymptotic_n)
    return p_values


def _exact_p_value(n1: int, n2: int, g: int, statistic: float, asymptotic_n: float) -> float:
    """scipy's exact two-sided p-value for one statistic, falling back to the asymptotic one as scipy does."""
    if _attempt_exact_2kssamp is None:  # a scipy without the routine: close, but not bit-identical
        return float(np.clip(distributions.kstwo.sf(statistic, asymptotic_n), 0.0, 1.0))
    success, d, prob = _attempt_exact_2kssamp(n1, n2, g, statistic, "two-sided")
    if not success:
        prob = distributions.kstwo.sf(d, asymptotic_n)
    return float(np.clip(prob, 0.0, 1.0))


def _as_sample(data: Any, label: str) -> np.ndarray:
    """One sample as a finite 2-D float array (rows x features); ``label`` names it in errors."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _as_sample(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
    )


def _as_samples(
    new_data: Any, reference_data: Any, new_label: str = "new_data"
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Both samples as finite 2-D float arrays of the same width, and the feature names."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _as_samples(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
    )


def _sorted_columns(sample: np.ndarray) -> np.ndarray:
    """The sample transposed to features x rows, each feature's values sorted (contiguous, so fast)."""
    raise NotImplementedError(
        "Part 3 (monitoring): write _sorted_columns(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
    )


def _merged_cdf_gaps(new: np.ndarray, reference: np.ndarray):
    """For blocks of features: both samples merged and sorted, and the ECDF gap at each value.

    Yields ``(columns, values, gaps)``: for the features in the slice
    ``columns``, ``values[f]`` holds both samples' values of feature f in
    increasing order and ``gaps[f, i] = F_ref - F_new`` counting the rows up
    to position i. Inside a run of tied values the gap is not a real one,
    but the width between tied values is 0, so areas are right.
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write _merged_cdf_gaps(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
    )


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

    Raises ValidationError, with a message naming the sample (and the row
    and column of a bad value), for samples that are not 1-D or 2-D arrays
    of numbers, have different feature counts or fewer than 2 rows, hold
    NaN or infinite values, or are two DataFrames whose columns differ. The
    messages read, for example: ``Drift check: new_data must be a 2-D array
    of numbers`` (text), ``Drift check: reference_data must be 2-D`` (None,
    or 3-D), ``Drift check: new_data has 1 rows; at least 2 are needed``,
    ``Drift check: new_data[0, 1] is nan, not a finite number``,
    ``Drift check: new_data has 3 features but reference_data has 4``.

    >>> ks_statistics([[0.0], [1.0]], [[2.0], [3.0]])
    array([1.])
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write ks_statistics(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
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

    Raises ValidationError on bad samples, as ``ks_statistics`` does.

    >>> reference = np.arange(1000.0)
    >>> float(psi_scores(reference, reference)[0])
    0.0
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write psi_scores(). Read notebooks/03_monitoring_and_drift.ipynb, section '6. PSI and Wasserstein: how far, not just whether'. Check it with: make grade PART=3 SECTION=6"
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
    to 1e-9. Computed for all features at once: merge the two sorted
    samples, and between consecutive values the area is the width times the
    gap between the two empirical CDFs there.

    Raises ValidationError on bad samples, as ``ks_statistics`` does.

    >>> float(wasserstein_scores([[1.0], [2.0]], [[0.0], [1.0]])[0])  # moved by 1, std 0.5
    2.0
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write wasserstein_scores(). Read notebooks/03_monitoring_and_drift.ipynb, section '6. PSI and Wasserstein: how far, not just whether'. Check it with: make grade PART=3 SECTION=6"
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
    drifted. Raises ValidationError for an unknown method,
    an ``alpha`` that is not a number strictly between 0 and 1, or bad
    samples (as ``ks_statistics``).

    >>> rng = np.random.default_rng(1)
    >>> detect_data_drift(rng.normal(size=(500, 2)), rng.normal(size=(500, 2)))["is_drift"]
    False
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write detect_data_drift(). Read notebooks/03_monitoring_and_drift.ipynb, section '5. Detecting data drift with the KS test'. Check it with: make grade PART=3 SECTION=5"
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
    (``100.0`` is refused: "window 100.0 must be a whole number") or the
    stream has "fewer than one window" of rows, ``step`` is not an ``int``
    of at least 1, ``feature_names`` has the wrong length ("1 feature names
    for 2 features"), or the stream or the reference is bad as in
    ``ks_statistics``, the stream named ``stream`` ("stream has 3 features
    but reference_data has 2"), all checked before the first window.

    >>> rng = np.random.default_rng(0)
    >>> table = drift_over_time(rng.normal(size=(300, 2)), rng.normal(size=(200, 2)), 100)
    >>> table["start"].tolist(), table["is_drift"].tolist()
    ([0, 100, 200], [False, False, False])
    """
    raise NotImplementedError(
        "Part 3 (monitoring): write drift_over_time(). Read notebooks/03_monitoring_and_drift.ipynb, section '7. Drift over time'. Check it with: make grade PART=3 SECTION=7"
    )
