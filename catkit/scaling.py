"""Auto scaling helpers for endpoint variants (Application Auto Scaling).

Register the variant as a scalable target, attach target-tracking policies (invocations per
instance, or the high-resolution concurrent-requests metric) or a step policy with its alarm, schedule night/weekend capacity,
read scaling activities as a pandas DataFrame, and remove it all again. Seed defaults: min 2,
max 10, 1000 invocations/instance/minute, scale-out cooldown 60 s, scale-in cooldown 300 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catkit.deploy import DEFAULT_VARIANT, warn_if_not_highly_available
from catkit.session import Session

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"
HIGH_RES_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
STEP_ALARM_PREFIX = "catkit-step-"

DEFAULT_MIN = 2
DEFAULT_MAX = 10
DEFAULT_TARGET = 1000.0
DEFAULT_SCALE_OUT_COOLDOWN = 60
DEFAULT_SCALE_IN_COOLDOWN = 300

ACTIVITY_COLUMNS = [
    "start_time",
    "end_time",
    "status",
    "desired_capacity",
    "description",
    "cause",
    "status_message",
    "activity_id",
    "endpoint",
    "variant",
]
_DESIRED = re.compile(r"desired (?:instance )?count to (\d+)", re.IGNORECASE)


def resource_id(endpoint: str, variant: str = DEFAULT_VARIANT) -> str:
    """``endpoint/<endpoint>/variant/<variant>`` — the Application Auto Scaling ResourceId."""
    return f"endpoint/{endpoint}/variant/{variant}"


def _target_kwargs(endpoint: str, variant: str) -> dict[str, str]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": resource_id(endpoint, variant),
        "ScalableDimension": DIMENSION,
    }


@dataclass
class ScalingPolicy:
    """A policy attached to a variant: name, ARN and the CloudWatch alarms AAS created for it."""

    policy_name: str
    policy_arn: str
    alarms: list[str]
    endpoint: str
    variant: str
    configuration: dict[str, Any]


def register_scalable_target(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    min_capacity: int = DEFAULT_MIN,
    max_capacity: int = DEFAULT_MAX,
) -> str:
    """RegisterScalableTarget (also updates min/max of an existing one); returns its ARN (or "")."""
    if min_capacity < 1:
        raise ValueError(
            f"min_capacity must be >= 1 for instance-based variants (got {min_capacity}); "
            "scale-to-zero needs inference components."
        )
    if max_capacity < min_capacity:
        raise ValueError(f"max_capacity ({max_capacity}) must be >= min_capacity ({min_capacity})")
    warn_if_not_highly_available(min_capacity, "min_capacity")
    response = session.autoscaling.register_scalable_target(
        **_target_kwargs(endpoint, variant), MinCapacity=min_capacity, MaxCapacity=max_capacity
    )
    return response.get("ScalableTargetARN", "")


def configure_target_tracking(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    min_capacity: int = DEFAULT_MIN,
    max_capacity: int = DEFAULT_MAX,
    target_value: float = DEFAULT_TARGET,
    scale_out_cooldown: int = DEFAULT_SCALE_OUT_COOLDOWN,
    scale_in_cooldown: int = DEFAULT_SCALE_IN_COOLDOWN,
    metric: str = INVOCATIONS_METRIC,
    disable_scale_in: bool = False,
    policy_name: str | None = None,
) -> ScalingPolicy:
    """Register the variant and attach a target-tracking policy on a predefined metric.

    ``target_value`` for the default metric is invocations per instance per minute (AWS's rule of
    thumb: ``max_rps_per_instance * 0.5 * 60``). Re-running updates the policy in place.
    """
    if target_value <= 0:
        raise ValueError(f"target_value must be > 0, got {target_value}")
    if scale_out_cooldown < 0 or scale_in_cooldown < 0:
        raise ValueError("cooldowns are seconds >= 0")
    register_scalable_target(
        session, endpoint, variant, min_capacity=min_capacity, max_capacity=max_capacity
    )
    name = policy_name or f"catkit-{metric}"
    config: dict[str, Any] = {
        "TargetValue": float(target_value),
        "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
        "ScaleOutCooldown": int(scale_out_cooldown),
        "ScaleInCooldown": int(scale_in_cooldown),
        "DisableScaleIn": bool(disable_scale_in),
    }
    response = session.autoscaling.put_scaling_policy(
        PolicyName=name,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=config,
        **_target_kwargs(endpoint, variant),
    )
    return ScalingPolicy(
        policy_name=name,
        policy_arn=response["PolicyARN"],
        alarms=[a["AlarmName"] for a in response.get("Alarms", [])],
        endpoint=endpoint,
        variant=variant,
        configuration=config,
    )


def configure_high_resolution_scaling(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    target_value: float = 5.0,
    min_capacity: int = DEFAULT_MIN,
    max_capacity: int = DEFAULT_MAX,
    scale_out_cooldown: int = DEFAULT_SCALE_OUT_COOLDOWN,
    scale_in_cooldown: int = DEFAULT_SCALE_IN_COOLDOWN,
    policy_name: str | None = None,
) -> ScalingPolicy:
    """Target tracking on concurrent requests per model (10-second metric, faster scale-out).

    ``target_value`` is the concurrent requests each instance's model should carry (AWS's example
    uses 5). Scale-in stays as slow as with 1-minute metrics.
    """
    return configure_target_tracking(
        session,
        endpoint,
        variant,
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        target_value=target_value,
        scale_out_cooldown=scale_out_cooldown,
        scale_in_cooldown=scale_in_cooldown,
        metric=HIGH_RES_METRIC,
        policy_name=policy_name,
    )


def configure_step_scaling(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    threshold: float,
    steps: Sequence[tuple[float | None, float | None, int]],
    metric_name: str = "InvocationsPerInstance",
    namespace: str = "AWS/SageMaker",
    statistic: str = "Sum",
    comparison: str = "GreaterThanOrEqualToThreshold",
    period: int = 60,
    evaluation_periods: int = 1,
    adjustment_type: str = "ChangeInCapacity",
    cooldown: int = DEFAULT_SCALE_IN_COOLDOWN,
    min_capacity: int = DEFAULT_MIN,
    max_capacity: int = DEFAULT_MAX,
    treat_missing_data: str = "missing",
    policy_name: str | None = None,
) -> ScalingPolicy:
    """Register the variant, put a step-scaling policy and the CloudWatch alarm that triggers it.

    ``steps`` are ``(lower, upper, adjustment)`` with bounds relative to ``threshold`` (``None`` =
    unbounded), e.g. ``[(0, 500, 1), (500, None, 2)]``: +1 instance when the metric is 0-500
    above the threshold, +2 beyond. The alarm (named ``catkit-step-<endpoint>-<variant>-<policy>``)
    watches ``metric_name`` of this endpoint variant; :func:`remove_scaling` deletes it again.
    """
    if not steps:
        raise ValueError("steps must contain at least one (lower, upper, adjustment) tuple")
    register_scalable_target(
        session, endpoint, variant, min_capacity=min_capacity, max_capacity=max_capacity
    )
    name = policy_name or f"catkit-step-{metric_name}"
    adjustments = []
    for lower, upper, adjustment in steps:
        step: dict[str, Any] = {"ScalingAdjustment": int(adjustment)}
        if lower is not None:
            step["MetricIntervalLowerBound"] = float(lower)
        if upper is not None:
            step["MetricIntervalUpperBound"] = float(upper)
        adjustments.append(step)
    config: dict[str, Any] = {
        "AdjustmentType": adjustment_type,
        "StepAdjustments": adjustments,
        "Cooldown": int(cooldown),
        "MetricAggregationType": "Average",
    }
    response = session.autoscaling.put_scaling_policy(
        PolicyName=name,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration=config,
        **_target_kwargs(endpoint, variant),
    )
    alarm = f"{STEP_ALARM_PREFIX}{endpoint}-{variant}-{name}"
    session.cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        AlarmDescription=f"catkit step scaling for {resource_id(endpoint, variant)} (policy {name})",
        Namespace=namespace,
        MetricName=metric_name,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        Statistic=statistic,
        Period=int(period),
        EvaluationPeriods=int(evaluation_periods),
        Threshold=float(threshold),
        ComparisonOperator=comparison,
        TreatMissingData=treat_missing_data,
        AlarmActions=[response["PolicyARN"]],
    )
    return ScalingPolicy(
        policy_name=name,
        policy_arn=response["PolicyARN"],
        alarms=[alarm],
        endpoint=endpoint,
        variant=variant,
        configuration=config,
    )


def put_scheduled_action(
    session: Session,
    endpoint: str,
    name: str,
    schedule: str,
    *,
    variant: str = DEFAULT_VARIANT,
    min_capacity: int | None = None,
    max_capacity: int | None = None,
    timezone: str = "UTC",
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> None:
    """PutScheduledAction: at ``schedule`` (``cron(...)``, ``rate(...)``, ``at(...)``) set min/max."""
    if min_capacity is None and max_capacity is None:
        raise ValueError("give min_capacity and/or max_capacity for the scheduled action")
    if not re.match(r"^(cron|rate|at)\(.+\)$", schedule):
        raise ValueError(f"schedule must look like cron(...), rate(...) or at(...), got {schedule!r}")
    action: dict[str, int] = {}
    if min_capacity is not None:
        action["MinCapacity"] = int(min_capacity)
    if max_capacity is not None:
        action["MaxCapacity"] = int(max_capacity)
    kwargs: dict[str, Any] = {
        "ScheduledActionName": name,
        "Schedule": schedule,
        "Timezone": timezone,
        "ScalableTargetAction": action,
        **_target_kwargs(endpoint, variant),
    }
    if start_time is not None:
        kwargs["StartTime"] = start_time
    if end_time is not None:
        kwargs["EndTime"] = end_time
    session.autoscaling.put_scheduled_action(**kwargs)


def schedule_night_scaling(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    night_min: int = 1,
    night_max: int = 2,
    day_min: int = DEFAULT_MIN,
    day_max: int = DEFAULT_MAX,
    night_starts_hour: int = 20,
    day_starts_hour: int = 7,
    weekdays: str = "MON-FRI",
    timezone: str = "UTC",
) -> list[str]:
    """Shrink capacity every night and over weekends, restore it on weekday mornings.

    Two scheduled actions: ``catkit-night`` every day at ``night_starts_hour`` sets
    ``night_min..night_max``; ``catkit-day`` on ``weekdays`` at ``day_starts_hour`` sets
    ``day_min..day_max`` — so Friday night's setting holds until Monday morning. Returns the names.
    Warns when ``night_min`` < 2 (no high availability at night).
    """
    for hour in (night_starts_hour, day_starts_hour):
        if not 0 <= hour <= 23:
            raise ValueError(f"hours are 0..23, got {hour}")
    warn_if_not_highly_available(night_min, "night_min")
    put_scheduled_action(
        session,
        endpoint,
        "catkit-night",
        f"cron(0 {night_starts_hour} * * ? *)",
        variant=variant,
        min_capacity=night_min,
        max_capacity=night_max,
        timezone=timezone,
    )
    put_scheduled_action(
        session,
        endpoint,
        "catkit-day",
        f"cron(0 {day_starts_hour} ? * {weekdays} *)",
        variant=variant,
        min_capacity=day_min,
        max_capacity=day_max,
        timezone=timezone,
    )
    return ["catkit-night", "catkit-day"]


def describe_target(session: Session, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any] | None:
    """The registered scalable target (MinCapacity, MaxCapacity, ...) or None."""
    pages = session.autoscaling.get_paginator("describe_scalable_targets").paginate(
        ServiceNamespace=NAMESPACE, ResourceIds=[resource_id(endpoint, variant)], ScalableDimension=DIMENSION
    )
    for page in pages:
        for target in page.get("ScalableTargets", []):
            return target
    return None


def describe_policies(session: Session, endpoint: str, variant: str = DEFAULT_VARIANT) -> list[dict[str, Any]]:
    """Scaling policies attached to the variant (paginated DescribeScalingPolicies)."""
    pages = session.autoscaling.get_paginator("describe_scaling_policies").paginate(
        ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
    )
    return [p for page in pages for p in page.get("ScalingPolicies", [])]


def describe_scheduled_actions(
    session: Session, endpoint: str, variant: str = DEFAULT_VARIANT
) -> list[dict[str, Any]]:
    """Scheduled actions of the variant (paginated DescribeScheduledActions)."""
    pages = session.autoscaling.get_paginator("describe_scheduled_actions").paginate(
        ServiceNamespace=NAMESPACE, ResourceId=resource_id(endpoint, variant), ScalableDimension=DIMENSION
    )
    return [a for page in pages for a in page.get("ScheduledActions", [])]


def remove_scaling(session: Session, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, int]:
    """Delete the variant's policies and scheduled actions and deregister it.

    Needed before changing the instance type or removing the variant with UpdateEndpoint.
    Returns counts of what was removed; does nothing if the variant is not registered.
    """
    removed = {"policies": 0, "scheduled_actions": 0, "targets": 0}
    kwargs = _target_kwargs(endpoint, variant)
    for policy in describe_policies(session, endpoint, variant):
        session.autoscaling.delete_scaling_policy(PolicyName=policy["PolicyName"], **kwargs)
        removed["policies"] += 1
        # alarms catkit created for step policies are ours to delete (target-tracking ones AAS removes)
        ours = [a["AlarmName"] for a in policy.get("Alarms", []) if a["AlarmName"].startswith(STEP_ALARM_PREFIX)]
        if ours:
            session.cloudwatch.delete_alarms(AlarmNames=ours)
    for action in describe_scheduled_actions(session, endpoint, variant):
        session.autoscaling.delete_scheduled_action(
            ScheduledActionName=action["ScheduledActionName"], **kwargs
        )
        removed["scheduled_actions"] += 1
    if describe_target(session, endpoint, variant) is not None:
        session.autoscaling.deregister_scalable_target(**kwargs)
        removed["targets"] += 1
    return removed


def scaling_activities(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    include_not_scaled: bool = False,
) -> Any:
    """Scaling activities of the variant as a DataFrame, oldest first.

    Columns: ``start_time``, ``end_time`` (UTC datetimes), ``status`` (Successful, InProgress,
    Failed...), ``desired_capacity`` (parsed from "Setting desired instance count to N.", else
    NA), ``description``, ``cause``, ``status_message``, ``activity_id``, ``endpoint``, ``variant``.
    """
    import pandas as pd

    pages = session.autoscaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace=NAMESPACE,
        ResourceId=resource_id(endpoint, variant),
        ScalableDimension=DIMENSION,
        IncludeNotScaledActivities=include_not_scaled,
    )
    rows = []
    for page in pages:
        for act in page.get("ScalingActivities", []):
            match = _DESIRED.search(act.get("Description", ""))
            rows.append(
                {
                    "start_time": act.get("StartTime"),
                    "end_time": act.get("EndTime"),
                    "status": act.get("StatusCode"),
                    "desired_capacity": int(match.group(1)) if match else None,
                    "description": act.get("Description"),
                    "cause": act.get("Cause"),
                    "status_message": act.get("StatusMessage"),
                    "activity_id": act.get("ActivityId"),
                    "endpoint": endpoint,
                    "variant": variant,
                }
            )
    frame = pd.DataFrame(rows, columns=ACTIVITY_COLUMNS)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    frame["desired_capacity"] = frame["desired_capacity"].astype("Int64")
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True)
