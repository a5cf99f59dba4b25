"""Auto scaling helpers for endpoint variants: the I/O side of Application Auto Scaling.

Register the variant as a scalable target, attach target-tracking policies (invocations per
instance, or the high-resolution concurrent-requests metric) or a step policy with its alarm,
schedule night/weekend capacity, read scaling activities as a pandas DataFrame, and remove it all
again. Seed defaults: min 2, max 10, 1000 invocations/instance/minute, scale-out cooldown 60 s,
scale-in cooldown 300 s.

What the requests say comes from the policy vocabulary in :mod:`catkit.autoscaling.config`
(:class:`~catkit.autoscaling.config.ScalingConfig`, :class:`~catkit.autoscaling.config.NightSchedule`);
this module sends them: :func:`apply_config` configures a variant from a ``ScalingConfig``, and the
keyword helpers (:func:`configure_target_tracking`, :func:`schedule_night_scaling`, ...) build one
and send it, adding catkit's checks and high-availability warnings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catkit import names
from catkit.autoscaling.config import (
    DEFAULT_MAX,
    DEFAULT_MIN,
    DEFAULT_SCALE_IN_COOLDOWN,
    DEFAULT_SCALE_OUT_COOLDOWN,
    DEFAULT_TARGET,
    HIGH_RES_METRIC,
    INVOCATIONS_METRIC,
    NightSchedule,
    ScalingConfig,
    put_scheduled_action_args,
    register_scalable_target_args,
)
from catkit.deploy import warn_if_not_highly_available
from catkit.names import DEFAULT_VARIANT
from catkit.session import Session

NAMESPACE = names.AAS_SAGEMAKER
DIMENSION = names.VARIANT_INSTANCE_COUNT
STEP_ALARM_PREFIX = "catkit-step-"

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
    return names.variant_resource_id(endpoint, variant)


def _target_kwargs(endpoint: str, variant: str) -> dict[str, str]:
    return names.scalable_target_key(endpoint, variant)


@dataclass
class ScalingPolicy:
    """A policy attached to a variant: name, ARN and the CloudWatch alarms AAS created for it.

    ``response`` is the PutScalingPolicy response it came from.
    """

    policy_name: str
    policy_arn: str
    alarms: list[str]
    endpoint: str
    variant: str
    configuration: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict, repr=False)


def _check_capacity(
    min_capacity: int, max_capacity: int, labels: tuple[str, str] = ("min_capacity", "max_capacity")
) -> None:
    lo, hi = labels
    if min_capacity < 1:
        raise ValueError(
            f"{lo} must be >= 1 for instance-based variants (got {min_capacity}); "
            "scale-to-zero needs inference components."
        )
    if max_capacity < min_capacity:
        raise ValueError(f"{hi} ({max_capacity}) must be >= {lo} ({min_capacity})")


def apply_config(
    session: Session, endpoint: str, config: ScalingConfig, variant: str = DEFAULT_VARIANT
) -> dict[str, Any]:
    """Configure a variant with ``config``: RegisterScalableTarget, PutScalingPolicy (target
    tracking) and, with a night schedule, its two PutScheduledAction calls.

    Returns the PutScalingPolicy response (PolicyARN, Alarms). No high-availability warnings (the
    keyword helpers below add them).
    """
    return _put_config(session, endpoint, variant, config).response


def configure_scaling(
    session: Session,
    endpoint: str,
    config: ScalingConfig,
    variant: str = DEFAULT_VARIANT,
    *,
    policy_name: str | None = None,
) -> ScalingPolicy:
    """Like :func:`apply_config`, with catkit's warnings: :class:`~catkit.deploy.HighAvailabilityWarning`
    when ``config`` lets the variant (or its night schedule) run on fewer than two instances.
    Returns the :class:`ScalingPolicy`."""
    warn_if_not_highly_available(config.min_capacity, "min_capacity")
    if config.night is not None:
        warn_if_not_highly_available(config.night.night_min, "night_min")
    return _put_config(session, endpoint, variant, config, policy_name)


def _put_config(
    session: Session, endpoint: str, variant: str, config: ScalingConfig, policy_name: str | None = None
) -> ScalingPolicy:
    aas = session.autoscaling
    calls = config.requests(endpoint, variant, policy_name)
    responses = [getattr(aas, op)(**kwargs) for op, kwargs in calls]
    args, response = calls[1][1], responses[1]  # PutScalingPolicy
    return ScalingPolicy(
        policy_name=args["PolicyName"],
        policy_arn=response["PolicyARN"],
        alarms=[a["AlarmName"] for a in response.get("Alarms", [])],
        endpoint=endpoint,
        variant=variant,
        configuration=args["TargetTrackingScalingPolicyConfiguration"],
        response=response,
    )


def register_scalable_target(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    min_capacity: int = DEFAULT_MIN,
    max_capacity: int = DEFAULT_MAX,
) -> str:
    """RegisterScalableTarget (also updates min/max of an existing one); returns its ARN (or "")."""
    _check_capacity(min_capacity, max_capacity)
    warn_if_not_highly_available(min_capacity, "min_capacity")
    response = session.autoscaling.register_scalable_target(
        **register_scalable_target_args(endpoint, variant, min_capacity, max_capacity)
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
    thumb: ``max_rps_per_instance * 0.5 * 60``). ``metric``: the predefined metric's name or an
    alias of :data:`~catkit.autoscaling.config.METRIC_ALIASES` (``"invocations"``,
    ``"high_resolution"``). Re-running updates the policy in place. The values form a
    :class:`~catkit.autoscaling.config.ScalingConfig` sent by :func:`configure_scaling`.
    """
    if target_value <= 0:
        raise ValueError(f"target_value must be > 0, got {target_value}")
    if scale_out_cooldown < 0 or scale_in_cooldown < 0:
        raise ValueError("cooldowns are seconds >= 0")
    _check_capacity(min_capacity, max_capacity)
    config = ScalingConfig(
        min_capacity=min_capacity, max_capacity=max_capacity, target_value=target_value, metric=metric,
        scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown,
        disable_scale_in=disable_scale_in,
    )
    return configure_scaling(session, endpoint, config, variant, policy_name=policy_name)


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
        session, endpoint, variant, min_capacity=min_capacity, max_capacity=max_capacity, target_value=target_value,
        scale_out_cooldown=scale_out_cooldown, scale_in_cooldown=scale_in_cooldown, metric=HIGH_RES_METRIC,
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
    namespace: str = names.SAGEMAKER_METRICS,
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
    dimensions: Mapping[str, str] | None = None,
    register: bool = True,
) -> ScalingPolicy:
    """Register the variant, put a step-scaling policy and the CloudWatch alarm that triggers it.

    ``steps`` are ``(lower, upper, adjustment)`` with bounds relative to ``threshold`` (``None`` =
    unbounded), e.g. ``[(0, 500, 1), (500, None, 2)]``: +1 instance when the metric is 0-500
    above the threshold, +2 beyond. The alarm (named ``catkit-step-<endpoint>-<variant>-<policy>``)
    watches ``metric_name`` of this endpoint variant (or of ``dimensions``);
    :func:`remove_scaling` deletes it again. ``register=False`` keeps the scalable target as it is.
    """
    if not steps:
        raise ValueError("steps must contain at least one (lower, upper, adjustment) tuple")
    if register:
        register_scalable_target(session, endpoint, variant, min_capacity=min_capacity, max_capacity=max_capacity)
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
        Dimensions=[
            {"Name": k, "Value": v} for k, v in (dimensions or names.variant_dimensions(endpoint, variant)).items()
        ],
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


def configure_scale_to_zero(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    max_capacity: int = 2,
    backlog_per_instance: float = 5.0,
    scale_in_cooldown: int = 600,
    scale_out_cooldown: int = 300,
    wake_cooldown: int = 60,
) -> list[ScalingPolicy]:
    """Scale an ASYNCHRONOUS endpoint to zero instances when idle and back when requests arrive.

    AWS's pattern (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html):
    MinCapacity 0; target tracking on ``ApproximateBacklogSizePerInstance`` (``backlog_per_instance``
    queued requests per instance; takes the variant down to zero when the queue stays empty);
    and a step policy (+1 instance) on a ``HasBacklogWithoutCapacity`` alarm, because target
    tracking cannot scale out from zero (no instance, no per-instance metric). Returns both policies.
    """
    if max_capacity < 1:
        raise ValueError(f"max_capacity must be >= 1, got {max_capacity}")
    if backlog_per_instance <= 0:
        raise ValueError(f"backlog_per_instance must be > 0, got {backlog_per_instance}")
    session.autoscaling.register_scalable_target(**register_scalable_target_args(endpoint, variant, 0, max_capacity))
    dims = {"EndpointName": endpoint}
    config = {
        "TargetValue": float(backlog_per_instance),
        "CustomizedMetricSpecification": {
            "MetricName": "ApproximateBacklogSizePerInstance", "Namespace": names.SAGEMAKER_METRICS,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}], "Statistic": "Average",
        },
        "ScaleInCooldown": int(scale_in_cooldown), "ScaleOutCooldown": int(scale_out_cooldown),
    }
    tracking = _put_tracking(session, "catkit-backlog-per-instance", config, _target_kwargs(endpoint, variant),
                             endpoint, variant)
    wake = configure_step_scaling(
        session, endpoint, variant, threshold=1.0, steps=[(0, None, 1)], metric_name="HasBacklogWithoutCapacity",
        statistic="Maximum", cooldown=wake_cooldown, dimensions=dims, register=False,
        policy_name="catkit-wake-from-zero",
    )
    return [tracking, wake]


def configure_provisioned_concurrency_scaling(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    min_capacity: int = 1,
    max_capacity: int = 10,
    target_value: float = 0.5,
    scale_in_cooldown: int = DEFAULT_SCALE_IN_COOLDOWN,
    scale_out_cooldown: int = DEFAULT_SCALE_OUT_COOLDOWN,
) -> ScalingPolicy:
    """Scale a SERVERLESS variant's provisioned concurrency with target tracking on
    ``SageMakerVariantProvisionedConcurrencyUtilization`` (dimension
    ``sagemaker:variant:DesiredProvisionedConcurrency``;
    https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-autoscale.html)."""
    kwargs = {"ServiceNamespace": NAMESPACE, "ResourceId": resource_id(endpoint, variant),
              "ScalableDimension": names.VARIANT_PROVISIONED_CONCURRENCY}
    session.autoscaling.register_scalable_target(MinCapacity=min_capacity, MaxCapacity=max_capacity, **kwargs)
    config = {
        "TargetValue": float(target_value),
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"},
        "ScaleInCooldown": int(scale_in_cooldown), "ScaleOutCooldown": int(scale_out_cooldown),
    }
    return _put_tracking(session, "catkit-provisioned-concurrency", config, kwargs, endpoint, variant)


def _put_tracking(session: Session, name: str, config: dict[str, Any], target: dict[str, str], endpoint: str,
                  variant: str) -> ScalingPolicy:
    """PutScalingPolicy (target tracking) with ``config`` on ``target``; the :class:`ScalingPolicy`."""
    response = session.autoscaling.put_scaling_policy(
        PolicyName=name, PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=config, **target
    )
    return ScalingPolicy(policy_name=name, policy_arn=response["PolicyARN"],
                         alarms=[a["AlarmName"] for a in response.get("Alarms", [])], endpoint=endpoint,
                         variant=variant, configuration=config)


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
    session.autoscaling.put_scheduled_action(
        **put_scheduled_action_args(
            endpoint, variant, name, schedule, min_capacity=min_capacity, max_capacity=max_capacity,
            timezone=timezone, start_time=start_time, end_time=end_time,
        )
    )


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

    Two scheduled actions (the :class:`~catkit.autoscaling.config.NightSchedule`): ``catkit-night``
    every day at ``night_starts_hour`` sets ``night_min..night_max``; ``catkit-day`` on
    ``weekdays`` at ``day_starts_hour`` sets ``day_min..day_max`` — so Friday night's setting holds
    until Monday morning. Returns the names. Warns when ``night_min`` < 2 (no high availability at
    night).
    """
    for hour in (night_starts_hour, day_starts_hour):
        if not 0 <= hour <= 23:
            raise ValueError(f"hours are 0..23, got {hour}")
    _check_capacity(night_min, night_max, ("night_min", "night_max"))
    warn_if_not_highly_available(night_min, "night_min")
    night = NightSchedule(
        night_min=night_min, night_max=night_max, night_starts_hour=night_starts_hour,
        day_starts_hour=day_starts_hour, weekdays=weekdays, timezone=timezone,
    )
    actions = night.put_scheduled_action_args(endpoint, variant, day_min, day_max)
    for args in actions:
        session.autoscaling.put_scheduled_action(**args)
    return [args["ScheduledActionName"] for args in actions]


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
