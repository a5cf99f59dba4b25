"""Stored resources of the engine besides targets: scaling policies, scheduled actions, cooldowns.

Plain data with ``to_dict``/``from_dict`` (JSON-compatible) and ``to_api`` (botocore-shaped
DescribeScalingPolicies / DescribeScheduledActions items, times as epoch floats). A scheduled
action also knows how an update changes it (:meth:`ScheduledAction.updated`) and its parsed
schedule (:meth:`ScheduledAction.parse`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from catkit.autoscaling.records import Record, TargetRecord, present
from catkit.autoscaling.schedule import Schedule

TARGET_TRACKING = "TargetTrackingScaling"
STEP_SCALING = "StepScaling"
DEFAULT_COOLDOWN_S = 300  # SageMaker variants (and most namespaces): 300 s, aws-facts §1.3


@dataclass
class ScalingPolicy(TargetRecord):
    """A PutScalingPolicy resource. ``config`` is the Target tracking / Step configuration as given."""

    policy_name: str
    policy_arn: str
    service_namespace: str
    resource_id: str
    scalable_dimension: str
    policy_type: str
    config: dict[str, Any]
    creation_time: float
    # Target tracking: {"high": alarm name, "low": alarm name (absent with DisableScaleIn)}.
    alarm_roles: dict[str, str] = field(default_factory=dict)
    alarms: list[dict[str, str]] = field(default_factory=list)  # [{"AlarmName", "AlarmARN"}]

    @property
    def scale_in_enabled(self) -> bool:
        return self.policy_type == TARGET_TRACKING and not self.config.get("DisableScaleIn", False)

    def cooldown(self, direction: str) -> float:
        """Cooldown seconds for a scale ``out`` or ``in`` started by this policy."""
        if self.policy_type == TARGET_TRACKING:
            name = "ScaleOutCooldown" if direction == "out" else "ScaleInCooldown"
            value = self.config.get(name)
        else:
            value = self.config.get("Cooldown")
        return float(DEFAULT_COOLDOWN_S if value is None else value)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "PolicyARN": self.policy_arn,
            "PolicyName": self.policy_name,
            **self.target_api(),
            "PolicyType": self.policy_type,
            "Alarms": [dict(a) for a in self.alarms],
            "CreationTime": self.creation_time,
        }
        conf_key = (
            "TargetTrackingScalingPolicyConfiguration"
            if self.policy_type == TARGET_TRACKING
            else "StepScalingPolicyConfiguration"
        )
        out[conf_key] = self.config
        return out


@dataclass
class ScheduledAction(TargetRecord):
    """A PutScheduledAction resource plus its next run time (None = will not run again)."""

    name: str
    arn: str
    service_namespace: str
    resource_id: str
    scalable_dimension: str
    schedule: str
    timezone: str | None
    start_time: float | None
    end_time: float | None
    min_capacity: int | None
    max_capacity: int | None
    creation_time: float
    next_run: float | None = None

    def to_api(self) -> dict[str, Any]:
        bounds = {"MinCapacity": self.min_capacity, "MaxCapacity": self.max_capacity}
        times = {"StartTime": self.start_time, "EndTime": self.end_time}
        return {
            "ScheduledActionName": self.name,
            "ScheduledActionARN": self.arn,
            **self.target_api(),
            "Schedule": self.schedule,
            **present({"Timezone": self.timezone or None, **times}),
            "ScalableTargetAction": present(bounds),
            "CreationTime": self.creation_time,
        }

    def updated(self, **given: Any) -> ScheduledAction:
        """A copy with the fields that are given (not None) replaced, as PutScheduledAction updates
        an existing action."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})

    def parse(self) -> Schedule:
        """The parsed schedule expression, in the action's time zone and Start/EndTime window."""
        return Schedule(
            self.schedule, self.timezone or "UTC", self.start_time, self.end_time, created=self.creation_time
        )


@dataclass
class Cooldowns(Record):
    """Cooldown state of one scalable target (aws-facts §1.3, §1.9).

    ``out_base`` is the capacity before the scale-out that started the running scale-out cooldown:
    during that cooldown new scale-out capacity is computed from it, so the capacity that scale-out
    added counts toward the next one and only a larger scale-out passes (the "difference" rule).
    """

    out_until: float | None = None
    out_base: int | None = None
    in_until: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """As :func:`dataclasses.asdict` (the fields are plain numbers), without its recursion."""
        return {"out_until": self.out_until, "out_base": self.out_base, "in_until": self.in_until}

    def in_out_cooldown(self, now: float) -> bool:
        return self.out_until is not None and now < self.out_until

    def in_in_cooldown(self, now: float) -> bool:
        return self.in_until is not None and now < self.in_until
