"""Scalable targets: identity (namespace, resource id, dimension), bounds and suspended state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catkit.autoscaling.errors import validation
from catkit.autoscaling.records import TargetRecord

TargetKey = tuple[str, str, str]  # (service namespace, resource id, scalable dimension)

SUSPENDED_FLAGS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


def describe_key(key: TargetKey) -> str:
    """The wording AAS uses in its messages for a target."""
    ns, rid, dim = key
    return f"service namespace: {ns}, resource ID: {rid}, scalable dimension: {dim}"


@dataclass
class ScalableTarget(TargetRecord):
    """A registered scalable target (DescribeScalableTargets item)."""

    service_namespace: str
    resource_id: str
    scalable_dimension: str
    min_capacity: int
    max_capacity: int
    arn: str
    creation_time: float
    role_arn: str = ""
    suspended: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(SUSPENDED_FLAGS, False))
    # Set when MinCapacity/MaxCapacity were (re)set: the engine then moves capacity inside them.
    bounds_changed: bool = False

    def to_api(self) -> dict[str, Any]:
        """The botocore-shaped DescribeScalableTargets item (times as epoch floats)."""
        bounds = {"MinCapacity": self.min_capacity, "MaxCapacity": self.max_capacity}
        return {
            **self.target_api(), **bounds, "RoleARN": self.role_arn, "CreationTime": self.creation_time,
            "SuspendedState": dict(self.suspended), "ScalableTargetARN": self.arn,
        }

    def is_suspended(self, flag: str) -> bool:
        return bool(self.suspended.get(flag, False))

    def set_bounds(self, min_capacity: int | None, max_capacity: int | None) -> None:
        """Apply new bounds (either may be None = unchanged) and remember what changed."""
        new_min = self.min_capacity if min_capacity is None else int(min_capacity)
        new_max = self.max_capacity if max_capacity is None else int(max_capacity)
        check_bounds(new_min, new_max)
        self.min_capacity, self.max_capacity = new_min, new_max
        self.bounds_changed = True


def check_bounds(min_capacity: int, max_capacity: int) -> None:
    if min_capacity < 0 or max_capacity < 0:
        raise validation("MinCapacity and MaxCapacity must be non-negative integers.")
    if min_capacity > max_capacity:
        raise validation(
            f"Minimum capacity ({min_capacity}) cannot be greater than maximum capacity ({max_capacity})."
        )
