"""What one simulated variant is scaled by: :class:`ScalingConfig` and :class:`NightSchedule`.

Target-tracking settings (defaults: the seed's) plus an optional night schedule, and the
Application Auto Scaling request arguments they stand for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
HIGH_RES_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
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


@dataclass(frozen=True)
class NightSchedule:
    """Scheduled scaling like :func:`catkit.scaling.schedule_night_scaling`.

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
                "name": "catkit-night",
                "schedule": f"cron(0 {self.night_starts_hour} * * ? *)",
                "timezone": self.timezone,
                "min_capacity": self.night_min,
                "max_capacity": max(night_max, self.night_min),
            },
            {
                "name": "catkit-day",
                "schedule": f"cron(0 {self.day_starts_hour} ? * {self.weekdays} *)",
                "timezone": self.timezone,
                "min_capacity": day_min,
                "max_capacity": day_max,
            },
        ]


@dataclass(frozen=True)
class ScalingConfig:
    """Target-tracking settings of one variant (defaults: the seed's), plus an optional night schedule.

    ``metric``: ``"invocations"`` (SageMakerVariantInvocationsPerInstance, 1-minute; target in
    invocations per instance per minute) or ``"high_resolution"``
    (SageMakerVariantConcurrentRequestsPerModelHighResolution, 10-second; target in concurrent
    requests per instance). The full predefined metric names work too.
    """

    min_capacity: int = 2
    max_capacity: int = 10
    target_value: float = 1000.0
    metric: str = INVOCATIONS_METRIC
    scale_out_cooldown: int = 60
    scale_in_cooldown: int = 300
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

    def register_scalable_target_args(self, endpoint: str, variant: str = "AllTraffic") -> dict[str, Any]:
        """Keyword arguments for ``application-autoscaling`` ``register_scalable_target``."""
        return {**_target_args(endpoint, variant), "MinCapacity": self.min_capacity, "MaxCapacity": self.max_capacity}

    def put_scaling_policy_args(
        self, endpoint: str, variant: str = "AllTraffic", policy_name: str | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``application-autoscaling`` ``put_scaling_policy``."""
        return {
            "PolicyName": policy_name or f"catkit-{self.metric}",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": self.policy_configuration(),
            **_target_args(endpoint, variant),
        }

    def put_scheduled_action_args(self, endpoint: str, variant: str = "AllTraffic") -> list[dict[str, Any]]:
        """Keyword arguments for ``put_scheduled_action``, one dict per action (empty without night)."""
        if self.night is None:
            return []
        return [
            {
                "ScheduledActionName": a["name"],
                "Schedule": a["schedule"],
                "Timezone": a["timezone"],
                "ScalableTargetAction": {"MinCapacity": a["min_capacity"], "MaxCapacity": a["max_capacity"]},
                **_target_args(endpoint, variant),
            }
            for a in self.night.actions(self.min_capacity, self.max_capacity)
        ]

    def apply(self, session: Any, endpoint: str, variant: str = "AllTraffic") -> dict[str, Any]:
        """Configure a real (or local) endpoint with these settings through ``session.autoscaling``."""
        aas = session.autoscaling
        aas.register_scalable_target(**self.register_scalable_target_args(endpoint, variant))
        policy = aas.put_scaling_policy(**self.put_scaling_policy_args(endpoint, variant))
        for args in self.put_scheduled_action_args(endpoint, variant):
            aas.put_scheduled_action(**args)
        return policy


SEED_CONFIG = ScalingConfig()


def _target_args(endpoint: str, variant: str) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": f"endpoint/{endpoint}/variant/{variant}",
        "ScalableDimension": DIMENSION,
    }


