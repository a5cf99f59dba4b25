"""The scaling policy vocabulary: one value for "how this variant scales", and the requests it makes.

:class:`ScalingConfig` (target tracking on one predefined metric, min/max, cooldowns, optional
:class:`NightSchedule`) is what the notebook panel shows, what :mod:`catkit.scaling` sends to
Application Auto Scaling, what :mod:`catkit.whatif.simulate` simulates and what
:mod:`catkit.whatif.recommend` sweeps. This module owns those values, the predefined metric names
with their aliases, the seed defaults, the one definition of the night schedule (two scheduled
actions, ``catkit-night`` and ``catkit-day``) and the botocore-shaped request arguments built from
them. Pure: no I/O, no clock. Sending the requests is :func:`catkit.scaling.apply_config`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catkit.names import DEFAULT_VARIANT, scalable_target_key

INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
HIGH_RES_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
#: Accepted spellings of the two predefined metrics of an instance-based variant -> AWS's name.
METRIC_ALIASES = {
    "invocations": INVOCATIONS_METRIC,
    "1-minute": INVOCATIONS_METRIC,
    "standard": INVOCATIONS_METRIC,
    INVOCATIONS_METRIC: INVOCATIONS_METRIC,
    "high_resolution": HIGH_RES_METRIC,
    "high-resolution": HIGH_RES_METRIC,
    "concurrency": HIGH_RES_METRIC,
    HIGH_RES_METRIC: HIGH_RES_METRIC,
}

# The seed's settings (AWS's guidance for a first policy).
DEFAULT_MIN = 2
DEFAULT_MAX = 10
DEFAULT_TARGET = 1000.0
DEFAULT_SCALE_OUT_COOLDOWN = 60
DEFAULT_SCALE_IN_COOLDOWN = 300

NIGHT_ACTION = "catkit-night"
DAY_ACTION = "catkit-day"


def _target_args(endpoint: str, variant: str) -> dict[str, str]:
    """ServiceNamespace / ResourceId / ScalableDimension of a variant."""
    return scalable_target_key(endpoint, variant)


def register_scalable_target_args(
    endpoint: str, variant: str, min_capacity: int, max_capacity: int
) -> dict[str, Any]:
    """Keyword arguments for ``application-autoscaling`` ``register_scalable_target``."""
    return {**_target_args(endpoint, variant), "MinCapacity": min_capacity, "MaxCapacity": max_capacity}


def put_scheduled_action_args(
    endpoint: str,
    variant: str,
    name: str,
    schedule: str,
    *,
    min_capacity: int | None = None,
    max_capacity: int | None = None,
    timezone: str = "UTC",
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``application-autoscaling`` ``put_scheduled_action`` (bounds left out
    when None)."""
    action: dict[str, int] = {}
    if min_capacity is not None:
        action["MinCapacity"] = int(min_capacity)
    if max_capacity is not None:
        action["MaxCapacity"] = int(max_capacity)
    args: dict[str, Any] = {
        "ScheduledActionName": name,
        "Schedule": schedule,
        "Timezone": timezone,
        "ScalableTargetAction": action,
        **_target_args(endpoint, variant),
    }
    if start_time is not None:
        args["StartTime"] = start_time
    if end_time is not None:
        args["EndTime"] = end_time
    return args


@dataclass(frozen=True)
class NightSchedule:
    """Scheduled scaling for nights and weekends (what :func:`catkit.scaling.schedule_night_scaling` sets).

    Every day at ``night_starts_hour`` the bounds become ``night_min..night_max`` (``None`` = keep
    the day max); on ``weekdays`` at ``day_starts_hour`` they return to the day bounds - so
    Friday night's setting holds over the weekend.
    """

    night_min: int = 1
    night_max: int | None = None
    night_starts_hour: int = 20
    day_starts_hour: int = 7
    weekdays: str = "MON-FRI"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        for h in (self.night_starts_hour, self.day_starts_hour):
            if not 0 <= h <= 23:
                raise ValueError(f"hours are 0..23, got {h}")
        if self.night_min < 1:
            raise ValueError("night_min must be >= 1 (instance-based variants never go below 1)")

    def actions(self, day_min: int, day_max: int) -> list[dict[str, Any]]:
        """The two scheduled actions (name, schedule, timezone, min, max)."""
        night_max = day_max if self.night_max is None else self.night_max
        return [
            {
                "name": NIGHT_ACTION,
                "schedule": f"cron(0 {self.night_starts_hour} * * ? *)",
                "timezone": self.timezone,
                "min_capacity": self.night_min,
                "max_capacity": max(night_max, self.night_min),
            },
            {
                "name": DAY_ACTION,
                "schedule": f"cron(0 {self.day_starts_hour} ? * {self.weekdays} *)",
                "timezone": self.timezone,
                "min_capacity": day_min,
                "max_capacity": day_max,
            },
        ]

    def put_scheduled_action_args(
        self, endpoint: str, variant: str, day_min: int, day_max: int
    ) -> list[dict[str, Any]]:
        """Keyword arguments for ``put_scheduled_action``, one dict per action (night, then day)."""
        return [
            put_scheduled_action_args(
                endpoint,
                variant,
                a["name"],
                a["schedule"],
                min_capacity=a["min_capacity"],
                max_capacity=a["max_capacity"],
                timezone=a["timezone"],
            )
            for a in self.actions(day_min, day_max)
        ]


@dataclass(frozen=True)
class ScalingConfig:
    """Target-tracking settings of one variant (defaults: the seed's), plus an optional night schedule.

    ``metric``: ``"invocations"`` (SageMakerVariantInvocationsPerInstance, 1-minute; target in
    invocations per instance per minute) or ``"high_resolution"``
    (SageMakerVariantConcurrentRequestsPerModelHighResolution, 10-second; target in concurrent
    requests per instance). The full predefined metric names work too.
    """

    min_capacity: int = DEFAULT_MIN
    max_capacity: int = DEFAULT_MAX
    target_value: float = DEFAULT_TARGET
    metric: str = INVOCATIONS_METRIC
    scale_out_cooldown: int = DEFAULT_SCALE_OUT_COOLDOWN
    scale_in_cooldown: int = DEFAULT_SCALE_IN_COOLDOWN
    disable_scale_in: bool = False
    night: NightSchedule | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRIC_ALIASES:
            raise ValueError(f"metric must be one of {sorted(set(METRIC_ALIASES))}, got {self.metric!r}")
        object.__setattr__(self, "metric", METRIC_ALIASES[self.metric])
        if not 1 <= self.min_capacity <= self.max_capacity:
            raise ValueError(
                f"need 1 <= min_capacity <= max_capacity, got {self.min_capacity}..{self.max_capacity}"
            )
        if not self.target_value > 0:
            raise ValueError(f"target_value must be > 0, got {self.target_value}")
        if self.scale_out_cooldown < 0 or self.scale_in_cooldown < 0:
            raise ValueError("cooldowns are seconds >= 0")

    @property
    def high_resolution(self) -> bool:
        return self.metric == HIGH_RES_METRIC

    @property
    def lowest_capacity(self) -> int:
        """The smallest MinCapacity this config ever sets (night included)."""
        return min(self.min_capacity, self.night.night_min) if self.night else self.min_capacity

    @property
    def policy_name(self) -> str:
        """The default name of the target-tracking policy (``catkit-<metric>``)."""
        return f"catkit-{self.metric}"

    def label(self) -> str:
        m = "hi-res" if self.high_resolution else "1-min"
        night = f", night min {self.night.night_min}" if self.night else ""
        return (
            f"{m} target {self.target_value:g}, min {self.min_capacity}, max {self.max_capacity}, "
            f"cooldown out {self.scale_out_cooldown}s / in {self.scale_in_cooldown}s{night}"
        )

    def policy_configuration(self) -> dict[str, Any]:
        """TargetTrackingScalingPolicyConfiguration."""
        return {
            "TargetValue": float(self.target_value),
            "PredefinedMetricSpecification": {"PredefinedMetricType": self.metric},
            "ScaleOutCooldown": int(self.scale_out_cooldown),
            "ScaleInCooldown": int(self.scale_in_cooldown),
            "DisableScaleIn": bool(self.disable_scale_in),
        }

    def register_scalable_target_args(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        """Keyword arguments for ``application-autoscaling`` ``register_scalable_target``."""
        return register_scalable_target_args(endpoint, variant, self.min_capacity, self.max_capacity)

    def put_scaling_policy_args(
        self, endpoint: str, variant: str = DEFAULT_VARIANT, policy_name: str | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``application-autoscaling`` ``put_scaling_policy``."""
        return {
            "PolicyName": policy_name or self.policy_name,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": self.policy_configuration(),
            **_target_args(endpoint, variant),
        }

    def put_scheduled_action_args(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> list[dict[str, Any]]:
        """Keyword arguments for ``put_scheduled_action``, one dict per action (empty without night)."""
        if self.night is None:
            return []
        return self.night.put_scheduled_action_args(endpoint, variant, self.min_capacity, self.max_capacity)

    def requests(
        self, endpoint: str, variant: str = DEFAULT_VARIANT, policy_name: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The Application Auto Scaling calls that configure a variant with these settings, in
        order, as ``(boto3 method name, keyword arguments)``: RegisterScalableTarget,
        PutScalingPolicy and, with a night schedule, two PutScheduledAction."""
        return [
            ("register_scalable_target", self.register_scalable_target_args(endpoint, variant)),
            ("put_scaling_policy", self.put_scaling_policy_args(endpoint, variant, policy_name)),
            *(("put_scheduled_action", a) for a in self.put_scheduled_action_args(endpoint, variant)),
        ]

    def apply(self, session: Any, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        """Deprecated: use :func:`catkit.scaling.apply_config` (same calls, same result: the
        PutScalingPolicy response)."""
        warnings.warn(
            "ScalingConfig.apply is deprecated; use catkit.scaling.apply_config(session, endpoint, config)",
            DeprecationWarning,
            stacklevel=2,
        )
        aas = session.autoscaling
        responses = [(op, getattr(aas, op)(**kwargs)) for op, kwargs in self.requests(endpoint, variant)]
        return next(r for op, r in responses if op == "put_scaling_policy")


SEED_CONFIG = ScalingConfig()

__all__ = [
    "DAY_ACTION",
    "DEFAULT_MAX",
    "DEFAULT_MIN",
    "DEFAULT_SCALE_IN_COOLDOWN",
    "DEFAULT_SCALE_OUT_COOLDOWN",
    "DEFAULT_TARGET",
    "HIGH_RES_METRIC",
    "INVOCATIONS_METRIC",
    "METRIC_ALIASES",
    "NIGHT_ACTION",
    "SEED_CONFIG",
    "NightSchedule",
    "ScalingConfig",
    "put_scheduled_action_args",
    "register_scalable_target_args",
]
