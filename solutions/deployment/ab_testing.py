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

from . import experiment, rollout, routing, simulation
from .experiment import *
from .rollout import *
from .routing import *
from .simulation import *

__all__ = [*routing.__all__, *experiment.__all__, *simulation.__all__, *rollout.__all__]
