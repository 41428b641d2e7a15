"""Part 5: an A/B test that decides with a significance test, not a hunch.

Two versions serve two groups of users; each user's outcome is recorded
against the version that served them, either a *conversion* (0 or 1: did
the user click, buy, stay?) or a *numeric metric* (minutes watched, basket
value). The question is whether the difference between the groups is
larger than chance alone would make it:

* conversions: the two-proportion z-test (pooled variance under "no
  difference"), as ``statsmodels.stats.proportion.proportions_ztest``;
* numeric metrics: Welch's t-test (no equal-variance assumption), as
  ``scipy.stats.ttest_ind(treatment, control, equal_var=False)``.

Outcomes are kept as running summaries (count, mean, sum of squared
deviations; Welford's method), so memory stays constant however many users
take part, and no rounding is lost by summing squares of large numbers.

Decide once, at the sample size planned *before* the test
(``required_sample_size``): looking at the p-value every day and stopping
the first time it dips below alpha ("peeking") makes a false "ship" far
more likely than alpha says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy import stats

from .errors import ValidationError

__all__ = [
    "VariantStats", "ABResult", "ABTest", "two_proportion_ztest", "welch_ttest",
    "required_sample_size", "DECISIONS", "METRICS",
]

DECISIONS = ("keep control", "ship treatment", "keep collecting")
"""What ``ABTest.result()`` may decide."""

METRICS = ("conversion", "numeric")
"""The kinds of outcome an ``ABTest`` records."""


def _interval(center: float, half_width: float) -> tuple[float, float]:
    """``(center - half_width, center + half_width)`` as two floats: a confidence interval."""
    return (float(center - half_width), float(center + half_width))


def _check_fraction(where: str, name: str, value: float) -> None:
    """Refuse (ValidationError) a ``value`` that is not strictly between 0 and 1 (NaN included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < value < 1:
        raise ValidationError(f"{where}: {name} must be between 0 and 1, got {value!r}.")


@dataclass
class VariantStats:
    """Running summary of one variant's outcomes: ``count``, ``mean``, and ``m2``.

    ``m2`` is the sum of squared deviations from the mean, so the sample
    variance is ``m2 / (count - 1)``. The outcomes themselves are never
    kept: memory stays constant however many users take part.

    >>> summary = VariantStats()
    >>> summary.add([1.0, 2.0]); summary.add(6.0)
    >>> summary.count, summary.mean, summary.variance
    (3, 3.0, 7.0)
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); NaN with fewer than two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else math.nan

    def add(self, values: Any) -> None:
        """Fold a batch of values (a number or a 1-D array) into the summary.

        Summarise the batch with numpy (its count ``n_b``, mean ``mean_b``
        and ``m2_b``), then merge it into the running ``(n_a, mean_a,
        m2_a)`` with Chan et al.'s update of Welford's method::

            n     = n_a + n_b
            delta = mean_b - mean_a
            mean  = mean_a + delta * n_b / n
            m2    = m2_a + m2_b + delta**2 * n_a * n_b / n

        It matches numpy on all the raw values to about 1e-12, where
        summing values and their squares would lose digits (the variance
        of numbers near 1e6 is then the small difference of two huge
        sums). An empty batch changes nothing.
        """
        ### BEGIN SOLUTION part=5 section="3. Recording outcomes"
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        n_b = values.size
        if n_b == 0:
            return
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.count * n_b / n
        self.count = n
        ### END SOLUTION


def two_proportion_ztest(
    successes_treatment: int, n_treatment: int, successes_control: int, n_control: int,
) -> tuple[float, float]:
    """Two-sided two-proportion z-test; returns ``(z, p_value)``.

    Under "no difference" both groups share one rate, estimated from both
    (the *pooled* rate ``p = (x_t + x_c) / (n_t + n_c)``), so::

        z = (x_t/n_t - x_c/n_c) / sqrt(p (1 - p) (1/n_t + 1/n_c))
        p_value = 2 * (1 - Phi(|z|))

    with ``Phi`` the standard normal CDF (``scipy.stats.norm``). The same
    numbers as ``proportions_ztest([x_t, x_c], [n_t, n_c])`` in
    statsmodels. When every user in both groups has the same outcome (all
    0 or all 1) there is no variation and no difference: ``(0.0, 1.0)``.
    Raises ValidationError unless each count of users is an integer >= 1
    and each count of successes an integer from 0 to its count of users
    (a bool is not a count), naming the group: "two_proportion_ztest needs
    0 <= successes <= users and users >= 1 (integers) for the control, got
    11 of 10."

    >>> two_proportion_ztest(120, 1000, 100, 1000)
    (1.4293..., 0.1529...)
    """
    ### BEGIN SOLUTION part=5 section="4. Deciding with a significance test"
    for group, successes, n in (("treatment", successes_treatment, n_treatment),
                                ("control", successes_control, n_control)):
        integers = all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in (successes, n))
        if not integers or not 0 <= successes <= n or n < 1:
            raise ValidationError(f"two_proportion_ztest needs 0 <= successes <= users and users >= 1 "
                                  f"(integers) for the {group}, got {successes} of {n}.")
    pooled = (successes_treatment + successes_control) / (n_treatment + n_control)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / n_treatment + 1 / n_control))
    if standard_error == 0:
        return 0.0, 1.0
    z = (successes_treatment / n_treatment - successes_control / n_control) / standard_error
    return z, float(2 * stats.norm.sf(abs(z)))
    ### END SOLUTION


def welch_ttest(
    mean_treatment: float, variance_treatment: float, n_treatment: int,
    mean_control: float, variance_control: float, n_control: int,
) -> tuple[float, float, float]:
    """Two-sided Welch's t-test from summaries; returns ``(t, degrees_of_freedom, p_value)``.

    Variances are sample variances (ddof=1). With ``a = s_t^2/n_t`` and
    ``b = s_c^2/n_c``::

        t  = (mean_t - mean_c) / sqrt(a + b)
        df = (a + b)^2 / (a^2/(n_t - 1) + b^2/(n_c - 1))     (Welch-Satterthwaite)
        p_value = 2 * (1 - T_df(|t|))

    with ``T_df`` Student's t CDF (``scipy.stats.t``). The same numbers as
    ``scipy.stats.ttest_ind(treatment, control, equal_var=False)``. Each
    group needs at least two values (else ValidationError: "welch_ttest
    needs at least two values in each group, got 1 (treatment) and 10
    (control)."). When both
    variances are 0, df is NaN and the answer is certain: ``(0.0, nan,
    1.0)`` for equal means, else ``(+-inf, nan, 0.0)``.

    >>> welch_ttest(10.5, 4.0, 40, 10.0, 25.0, 25)
    (0.4767..., 28.86..., 0.6371...)
    """
    ### BEGIN SOLUTION part=5 section="4. Deciding with a significance test"
    if min(n_treatment, n_control) < 2:
        raise ValidationError(f"welch_ttest needs at least two values in each group, got "
                              f"{n_treatment} (treatment) and {n_control} (control).")
    a, b = variance_treatment / n_treatment, variance_control / n_control
    difference = mean_treatment - mean_control
    if a + b == 0:
        return (0.0, math.nan, 1.0) if difference == 0 else (math.copysign(math.inf, difference), math.nan, 0.0)
    t = difference / math.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n_treatment - 1) + b**2 / (n_control - 1))
    return t, df, float(2 * stats.t.sf(abs(t), df))
    ### END SOLUTION


def required_sample_size(
    baseline_rate: float, minimum_detectable_effect: float, alpha: float = 0.05, power: float = 0.8,
) -> int:
    """Users needed *per variant* to detect a change in a conversion rate.

    ``baseline_rate`` is the control's rate (0.10 for 10%);
    ``minimum_detectable_effect`` is the smallest *absolute* change worth
    detecting (0.02: from 10% to 12%; negative for a drop). The test is the
    two-sided two-proportion z-test at level ``alpha``; ``power`` is the
    chance of detecting an effect of exactly that size. The standard
    formula (Fleiss, without continuity correction), rounded up, with
    ``z(q)`` the standard normal quantile (``scipy.stats.norm.ppf``)::

        p1 = baseline_rate, p2 = p1 + mde, p = (p1 + p2) / 2
        n = (z(1 - alpha/2) sqrt(2 p (1 - p)) + z(power) sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / mde^2

    statsmodels' ``NormalIndPower`` with ``proportion_effectsize`` uses an
    arcsine approximation instead: it agrees within 2% when the change is
    small next to the rates (10% -> 12%, 50% -> 55%) and drifts apart, by
    up to about 15%, for large changes near 0% or 100% (1% -> 6%).

    Raises ValidationError for a ``baseline_rate``, ``alpha`` or ``power``
    outside (0, 1), and for an effect of 0 or one that takes the rate
    outside (0, 1): "required_sample_size: minimum_detectable_effect must
    be non-zero and keep the rate between 0 and 1, got 0.1 on a baseline
    of 0.95."

    >>> required_sample_size(0.10, 0.02)
    3841
    >>> required_sample_size(0.10, 0.01)          # half the effect: about four times the users
    14751
    """
    for name, value in (("baseline_rate", baseline_rate), ("alpha", alpha), ("power", power)):
        _check_fraction("required_sample_size", name, value)
    ### BEGIN SOLUTION part=5 section="5. How many users you need"
    p1, p2 = float(baseline_rate), float(baseline_rate) + float(minimum_detectable_effect)
    if minimum_detectable_effect == 0 or not 0 < p2 < 1:
        raise ValidationError(
            f"required_sample_size: minimum_detectable_effect must be non-zero and keep the rate between 0 and 1, "
            f"got {minimum_detectable_effect} on a baseline of {baseline_rate}."
        )
    pooled = (p1 + p2) / 2
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    root = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p2 - p1) ** 2)
    ### END SOLUTION


@dataclass(frozen=True)
class ABResult:
    """What an A/B test concluded, and the numbers behind the conclusion.

    ``metric`` is the test's ("conversion" or "numeric"); ``test`` names
    the significance test, ``"two-proportion z-test"`` or ``"Welch's
    t-test"``, and ``statistic`` is its z or t. ``counts``, ``means`` and
    ``confidence_intervals`` map each variant's name to its value, control
    first. ``absolute_lift`` is the treatment's mean minus the control's;
    ``relative_lift`` is that divided by the control's mean (0.1 means
    "10% better"; NaN when the control's mean is 0). ``decision`` is one of
    ``DECISIONS``; ``extra`` holds ``{"degrees_of_freedom": df}`` for
    Welch's test and is empty for the z-test.

    Intervals are two-sided at confidence ``1 - alpha``, with ``z = Phi^-1(1
    - alpha/2)`` and ``t_df`` the same quantile of Student's t:

    * per variant, a rate: ``mean +- z sqrt(mean (1 - mean) / n)`` (Wald,
      as statsmodels' ``proportion_confint(..., method="normal")``);
    * per variant, a mean: ``mean +- t_(n-1) sqrt(variance / n)`` (as
      ``scipy.stats.t.interval``);
    * the lift of rates: ``lift +- z sqrt(sum of mean (1 - mean) / n)``
      (unpooled, as ``confint_proportions_2indep(..., method="wald")``);
    * the lift of means: ``lift +- t_df sqrt(var_t/n_t + var_c/n_c)`` with
      Welch's df (as ``ttest_ind(...).confidence_interval()``).
    """

    control: str
    treatment: str
    metric: str
    test: str
    counts: dict[str, int]
    means: dict[str, float]
    confidence_intervals: dict[str, tuple[float, float]]
    absolute_lift: float
    lift_confidence_interval: tuple[float, float]
    relative_lift: float
    statistic: float
    p_value: float
    alpha: float
    min_samples: int
    decision: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        """True when the p-value is below alpha."""
        return self.p_value < self.alpha


class ABTest:
    """Record per-variant outcomes and decide between a control and a treatment.

    ``metric`` is ``"conversion"`` (outcomes 0 or 1, compared with the
    two-proportion z-test) or ``"numeric"`` (any finite numbers, compared
    with Welch's t-test). ``min_samples`` is the sample size per variant
    planned before the test (see ``required_sample_size``): until both
    variants reach it, the decision is ``"keep collecting"``. Then it is
    ``"ship treatment"`` when the treatment is better (higher, or lower
    with ``higher_is_better=False``) with p-value below ``alpha``, and
    ``"keep control"`` otherwise: no evidence is no reason to switch.

    Outcomes are kept as one ``VariantStats`` per variant, in ``stats`` (a
    dict by name, control first), never the outcomes themselves. Raises
    ValidationError for an unknown ``metric``, equal ``control`` and
    ``treatment``, ``alpha`` outside (0, 1), or ``min_samples`` that is
    not an integer >= 2.

    >>> test = ABTest("v1.1.0", "v2.0.0", metric="conversion", min_samples=3841)
    >>> test.record("v2.0.0", 1); test.record_many("v1.1.0", [0, 1, 0])
    >>> test.counts()
    {'v1.1.0': 3, 'v2.0.0': 1}
    >>> test.result().decision
    'keep collecting'
    """

    def __init__(
        self,
        control: str = "control",
        treatment: str = "treatment",
        *,
        metric: str = "conversion",
        alpha: float = 0.05,
        min_samples: int = 100,
        higher_is_better: bool = True,
    ) -> None:
        if metric not in METRICS:
            raise ValidationError(f"ABTest metric must be one of {METRICS}, got {metric!r}.")
        if control == treatment:
            raise ValidationError(f"ABTest control and treatment must differ, both are {control!r}.")
        _check_fraction("ABTest", "alpha", alpha)
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
            raise ValidationError(f"ABTest min_samples must be an integer of at least 2, got {min_samples!r}.")
        self.control, self.treatment = control, treatment
        self.metric, self.alpha, self.min_samples = metric, alpha, min_samples
        self.higher_is_better = higher_is_better
        self.stats = {control: VariantStats(), treatment: VariantStats()}

    def record(self, variant: str, value: float) -> None:
        """Record one user's outcome for ``variant`` (0 or 1 for conversions), as ``record_many``."""
        self.record_many(variant, [value])

    def record_many(self, variant: str, values: Iterable[float]) -> None:
        """Record many users' outcomes for ``variant`` at once, into ``stats[variant]``.

        ``values`` is a number, a list, an array, a pandas Series or any
        iterable of numbers, a generator included (bools count as 0 and 1).
        Nothing of a refused batch is recorded; ValidationError for:

        * an unknown variant: "Unknown variant 'v3'; this test compares
          ['v1.1.0', 'v2.0.0'].";
        * a value that is not a finite number (a string "1" is not a
          number, nor is None; NaN and infinities are not finite):
          "Outcomes for 'v2.0.0' must be finite numbers.";
        * for conversions, a finite value other than 0 or 1: "Conversion
          outcomes for 'v2.0.0' must be 0 or 1, got 2.0."

        >>> test = ABTest("v1.1.0", "v2.0.0")
        >>> test.record_many("v1.1.0", np.array([0, 0, 1]))
        >>> test.record_many("v1.1.0", (x for x in [1, 1]))
        >>> test.stats["v1.1.0"]
        VariantStats(count=5, mean=0.6, m2=1.2)
        >>> test.record_many("v1.1.0", [0, 2])
        Traceback (most recent call last):
        deployment.errors.ValidationError: Conversion outcomes for 'v1.1.0' must be 0 or 1, got 2.0.
        """
        ### BEGIN SOLUTION part=5 section="3. Recording outcomes"
        if variant not in self.stats:
            raise ValidationError(f"Unknown variant {variant!r}; this test compares {list(self.stats)}.")
        if hasattr(values, "__iter__") and not isinstance(values, (list, tuple)) and not hasattr(values, "__array__"):
            values = list(values)  # a generator, a set, dict.values(): numpy needs a sequence
        array = np.asarray(values)
        # bool, int, unsigned, float only (no strings, None or objects), and finite
        if array.dtype.kind not in "biuf" or not np.isfinite(array.astype(np.float64)).all():
            raise ValidationError(f"Outcomes for {variant!r} must be finite numbers.")
        array = array.astype(np.float64).ravel()
        if self.metric == "conversion" and not np.isin(array, (0.0, 1.0)).all():
            bad = array[~np.isin(array, (0.0, 1.0))][0]
            raise ValidationError(f"Conversion outcomes for {variant!r} must be 0 or 1, got {bad}.")
        self.stats[variant].add(array)
        ### END SOLUTION

    def counts(self) -> dict[str, int]:
        """How many outcomes each variant has recorded, control first."""
        return {name: s.count for name, s in self.stats.items()}

    def result(self, alpha: float | None = None) -> ABResult:
        """Counts, means, intervals, lift, p-value and the decision, as an ``ABResult``.

        Conversions go through ``two_proportion_ztest`` (a variant's
        successes are ``round(mean * count)``), numeric metrics through
        ``welch_ttest``, the treatment first in both; the decision follows
        the rules of the class docstring. ``alpha`` overrides the test's
        own for this one result (intervals and decision). Needs at least
        one outcome per variant for conversions, two for numeric metrics
        (else ValidationError).

        >>> test = ABTest("v1.1.0", "v2.0.0", min_samples=100)
        >>> test.record_many("v1.1.0", [1] * 10 + [0] * 90)
        >>> test.record_many("v2.0.0", [1] * 25 + [0] * 75)
        >>> result = test.result()
        >>> result.test, result.counts, result.decision
        ('two-proportion z-test', {'v1.1.0': 100, 'v2.0.0': 100}, 'ship treatment')
        >>> round(result.absolute_lift, 4), round(result.p_value, 4)
        (0.15, 0.0052)
        """
        alpha = self.alpha if alpha is None else alpha
        _check_fraction("ABTest.result()", "alpha", alpha)
        needed = 1 if self.metric == "conversion" else 2
        if min(self.counts().values()) < needed:
            raise ValidationError(f"ABTest.result() needs at least {needed} outcome(s) per variant; "
                                  f"have {self.counts()}.")
        ### BEGIN SOLUTION part=5 section="4. Deciding with a significance test"
        control, treatment = self.stats[self.control], self.stats[self.treatment]
        lift = treatment.mean - control.mean
        if self.metric == "conversion":
            test = "two-proportion z-test"
            statistic, p_value = two_proportion_ztest(
                round(treatment.mean * treatment.count), treatment.count,
                round(control.mean * control.count), control.count,
            )
            z = stats.norm.ppf(1 - alpha / 2)
            intervals = {name: _interval(s.mean, z * math.sqrt(s.mean * (1 - s.mean) / s.count))
                         for name, s in self.stats.items()}
            lift_se = math.sqrt(sum(s.mean * (1 - s.mean) / s.count for s in (control, treatment)))
            lift_interval = _interval(lift, z * lift_se)
            extra: dict[str, Any] = {}
        else:
            test = "Welch's t-test"
            statistic, df, p_value = welch_ttest(treatment.mean, treatment.variance, treatment.count,
                                                 control.mean, control.variance, control.count)
            intervals = {
                name: _interval(s.mean, stats.t.ppf(1 - alpha / 2, s.count - 1) * math.sqrt(s.variance / s.count))
                for name, s in self.stats.items()
            }
            lift_se = math.sqrt(treatment.variance / treatment.count + control.variance / control.count)
            lift_interval = _interval(lift, stats.t.ppf(1 - alpha / 2, df) * lift_se if lift_se else 0.0)
            extra = {"degrees_of_freedom": df}

        better = lift > 0 if self.higher_is_better else lift < 0
        if min(control.count, treatment.count) < self.min_samples:
            decision = "keep collecting"
        elif p_value < alpha and better:
            decision = "ship treatment"
        else:
            decision = "keep control"
        return ABResult(
            control=self.control, treatment=self.treatment, metric=self.metric, test=test,
            counts=self.counts(), means={name: s.mean for name, s in self.stats.items()},
            confidence_intervals=intervals, absolute_lift=lift, lift_confidence_interval=lift_interval,
            relative_lift=lift / control.mean if control.mean else math.nan,
            statistic=float(statistic), p_value=float(p_value), alpha=alpha,
            min_samples=self.min_samples, decision=decision, extra=extra,
        )
        ### END SOLUTION
