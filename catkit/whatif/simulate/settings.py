"""What one simulated variant is scaled by: the policy vocabulary of :mod:`catkit.autoscaling.config`.

Kept as the simulator's view of it: :class:`ScalingConfig`, :class:`NightSchedule`, the metric
names, plus the Application Auto Scaling namespace and dimension a simulated variant is registered
under.
"""

from __future__ import annotations

from catkit.autoscaling.config import (
    HIGH_RES_METRIC,
    INVOCATIONS_METRIC,
    METRIC_ALIASES,
    SEED_CONFIG,
    NightSchedule,
    ScalingConfig,
)
from catkit.names import AAS_SAGEMAKER as NAMESPACE
from catkit.names import VARIANT_INSTANCE_COUNT as DIMENSION

__all__ = [
    "DIMENSION",
    "HIGH_RES_METRIC",
    "INVOCATIONS_METRIC",
    "METRIC_ALIASES",
    "NAMESPACE",
    "SEED_CONFIG",
    "NightSchedule",
    "ScalingConfig",
]
