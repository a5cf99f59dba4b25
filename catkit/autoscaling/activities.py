"""Scaling activities: AWS's status codes, Description/Cause/StatusMessage texts, not-scaled reasons.

Texts follow the AAS user guide examples with SageMaker's wording ("desired instance count");
for other namespaces the generic "desired count" is used. ASSUMPTION: a not-scaled activity
with the same cause and reason as the target's previous one is recorded at most once an hour
(until the target scales), not on every once-a-minute alarm re-invocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catkit.autoscaling.records import TargetRecord, present
from catkit.names import INFERENCE_COMPONENT_COPY_COUNT, VARIANT_INSTANCE_COUNT

PENDING = "Pending"
IN_PROGRESS = "InProgress"
SUCCESSFUL = "Successful"
OVERRIDDEN = "Overridden"
UNFULFILLED = "Unfulfilled"
FAILED = "Failed"
ACTIVE = (PENDING, IN_PROGRESS)
TERMINAL = (SUCCESSFUL, OVERRIDDEN, UNFULFILLED, FAILED)

ALREADY_AT_MAX = "AlreadyAtMaxCapacity"
ALREADY_AT_MIN = "AlreadyAtMinCapacity"
ALREADY_AT_DESIRED = "AlreadyAtDesiredCapacity"

RETENTION_S = 6 * 7 * 24 * 3600  # DescribeScalingActivities keeps six weeks.


def capacity_word(namespace: str, dimension: str) -> str:
    if dimension == VARIANT_INSTANCE_COUNT:
        return "desired instance count"
    if dimension == INFERENCE_COMPONENT_COPY_COUNT:
        return "desired copy count"
    return "desired count"


def alarm_cause(alarm_name: str, state: str, policy_name: str) -> str:
    return f"monitor alarm {alarm_name} in state {state} triggered policy {policy_name}"


def scheduled_cause(action_name: str) -> str:
    return f"scheduled action name {action_name} was triggered"


def bounds_text(min_capacity: int | None, max_capacity: int | None) -> str:
    parts = []
    if min_capacity is not None:
        parts.append(f"min capacity to {min_capacity}")
    if max_capacity is not None:
        parts.append(f"max capacity to {max_capacity}")
    return " and ".join(parts)


@dataclass
class Activity(TargetRecord):
    """One DescribeScalingActivities item."""

    activity_id: str
    service_namespace: str
    resource_id: str
    scalable_dimension: str
    description: str
    cause: str
    start_time: float
    status_code: str
    status_message: str = ""
    end_time: float | None = None
    details: str = ""
    not_scaled_reasons: list[dict[str, Any]] = field(default_factory=list)
    desired_capacity: int | None = None  # the capacity the activity sets (None: bounds only)
    previous_capacity: int | None = None

    @property
    def is_not_scaled(self) -> bool:
        return bool(self.not_scaled_reasons)

    def to_api(self) -> dict[str, Any]:
        """The botocore-shaped ScalingActivity (times as epoch floats)."""
        return {
            "ActivityId": self.activity_id,
            **self.target_api(),
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start_time,
            "StatusCode": self.status_code,
            **present({
                "EndTime": self.end_time,
                "StatusMessage": self.status_message or None,
                "Details": self.details or None,
                "NotScaledReasons": [dict(r) for r in self.not_scaled_reasons] or None,
            }),
        }
