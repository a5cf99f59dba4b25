"""Step scaling: validate step adjustments, pick the step for a metric value, compute the change.

Rules (AAS user guide, step scaling policies; aws-facts §1.9): bounds are relative to the alarm
threshold; above the threshold the lower bound is inclusive and the upper exclusive, below it the
lower bound is exclusive and the upper inclusive; steps must not overlap or leave gaps; only one
step may have a null lower bound and one a null upper bound. PercentChangeInCapacity rounds
values above 1 down, between 0 and 1 to 1, between -1 and 0 to -1, and below -1 up (toward 0);
MinAdjustmentMagnitude (percent only) raises smaller changes to that magnitude.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from catkit.autoscaling.errors import ScalingError, validation

ADJUSTMENT_TYPES = ("ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity")
AGGREGATIONS = ("Average", "Minimum", "Maximum")
MAX_STEP_ADJUSTMENTS = 20


def _bounds(step: Mapping[str, Any]) -> tuple[float, float]:
    lo = step.get("MetricIntervalLowerBound")
    hi = step.get("MetricIntervalUpperBound")
    return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))


def validate_config(config: Mapping[str, Any]) -> None:
    """Raise ValidationException for a StepScalingPolicyConfiguration AWS would reject
    (LimitExceededException past :data:`MAX_STEP_ADJUSTMENTS` steps)."""
    adj_type = config.get("AdjustmentType")
    if adj_type not in ADJUSTMENT_TYPES:
        raise validation(f"AdjustmentType must be one of {', '.join(ADJUSTMENT_TYPES)}; got {adj_type!r}.")
    steps = config.get("StepAdjustments") or []
    if not steps:
        raise validation("StepAdjustments must contain at least one step adjustment.")
    agg = config.get("MetricAggregationType")
    if agg is not None and agg not in AGGREGATIONS:
        raise validation(f"MetricAggregationType must be one of {', '.join(AGGREGATIONS)}; got {agg!r}.")
    if config.get("MinAdjustmentMagnitude") is not None:
        if adj_type != "PercentChangeInCapacity":
            raise validation(
                "MinAdjustmentMagnitude is only supported with AdjustmentType PercentChangeInCapacity."
            )
        if int(config["MinAdjustmentMagnitude"]) < 1:
            raise validation("MinAdjustmentMagnitude must be at least 1.")
    if sum(1 for s in steps if s.get("MetricIntervalLowerBound") is None) > 1:
        raise validation("Only one step adjustment may have an unspecified (null) MetricIntervalLowerBound.")
    if sum(1 for s in steps if s.get("MetricIntervalUpperBound") is None) > 1:
        raise validation("Only one step adjustment may have an unspecified (null) MetricIntervalUpperBound.")
    if adj_type == "ExactCapacity" and any(int(s["ScalingAdjustment"]) < 0 for s in steps):
        raise validation("ScalingAdjustment must be non-negative with AdjustmentType ExactCapacity.")
    ordered = sorted((_bounds(s) for s in steps), key=lambda b: b[0])
    for lo, hi in ordered:
        if lo >= hi:
            raise validation(
                f"Step adjustment bounds are invalid: MetricIntervalLowerBound ({lo}) must be less than "
                f"MetricIntervalUpperBound ({hi})."
            )
    for (_, hi1), (lo2, _) in itertools.pairwise(ordered):
        if hi1 > lo2:
            raise validation("Step adjustments must not overlap.")
        if hi1 < lo2:
            raise validation(f"Step adjustments must not have gaps: nothing covers ({hi1}, {lo2}).")
    if len(steps) > MAX_STEP_ADJUSTMENTS:
        raise ScalingError(
            "LimitExceededException", f"A step scaling policy can have at most {MAX_STEP_ADJUSTMENTS} steps."
        )


def find_step(steps: Sequence[Mapping[str, Any]], difference: float) -> Mapping[str, Any] | None:
    """The step whose interval contains ``metric - threshold``; None if none does."""
    for step in steps:
        lo, hi = _bounds(step)
        hit = lo <= difference < hi if difference >= 0 else lo < difference <= hi
        if hit:
            return step
    return None


def round_percent(change: float) -> int:
    """AAS's percent rounding (12.7 -> 12, 0.5 -> 1, -0.5 -> -1, -6.67 -> -6)."""
    if change == 0:
        return 0
    if 0 < change < 1:
        return 1
    if -1 < change < 0:
        return -1
    return math.floor(change) if change > 0 else math.ceil(change)


def new_capacity(config: Mapping[str, Any], step: Mapping[str, Any], base: int) -> int:
    """Capacity after applying ``step`` to ``base`` (not yet clamped to min/max)."""
    adj = step["ScalingAdjustment"]
    kind = config["AdjustmentType"]
    if kind == "ExactCapacity":
        return int(adj)
    if kind == "ChangeInCapacity":
        return base + int(adj)
    change = round_percent(base * float(adj) / 100.0)
    mam = config.get("MinAdjustmentMagnitude")
    if mam and change != 0 and abs(change) < int(mam):
        change = int(mam) if change > 0 else -int(mam)
    return base + change


def aggregate(values: Sequence[float], how: str | None) -> float:
    """MetricAggregationType over the alarm's evaluated datapoints (default Average)."""
    if how == "Minimum":
        return min(values)
    if how == "Maximum":
        return max(values)
    return sum(values) / len(values)
