"""Part 5: letting a new model version earn its traffic.

Read with notebooks/05_ab_testing.ipynb. The part has four small modules,
gathered here so ``from deployment import TrafficRouter`` works:

==============  ============================================================
routing         ``TrafficRouter``: sticky, weighted routing of users
experiment      ``ABTest``, significance tests, ``required_sample_size``
simulation      ``simulate_ab_test``: simulated users against real models
rollout         ``CanaryRollout`` and ``ShadowDeployment``
==============  ============================================================
"""

from .experiment import (
    DECISIONS, METRICS, ABResult, ABTest, VariantStats, required_sample_size, two_proportion_ztest, welch_ttest,
)
from .rollout import CANARY_STATUSES, DEFAULT_CANARY_STEPS, CanaryRollout, ShadowDeployment
from .routing import TrafficRouter, predictions_of, routed_answer, user_bucket
from .simulation import simulate_ab_test

__all__ = [
    "TrafficRouter", "user_bucket", "predictions_of", "routed_answer",
    "ABTest", "ABResult", "VariantStats", "two_proportion_ztest", "welch_ttest", "required_sample_size",
    "DECISIONS", "METRICS",
    "simulate_ab_test",
    "CanaryRollout", "ShadowDeployment", "DEFAULT_CANARY_STEPS", "CANARY_STATUSES",
]
