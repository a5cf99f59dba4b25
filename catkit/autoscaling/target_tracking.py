"""Target tracking: which metric a policy tracks, the two alarms AAS creates, the capacity formula.

Every number below that AWS does not publish is an ASSUMPTION kept in one place
(:data:`ALARM_SHAPES`) so it is easy to change; sources are in shared/aws-facts.md §1.2-§1.7.

* AlarmHigh: metric > target for 3 of 3 one-minute datapoints (user reports for ECS/Aurora,
  aws-facts §1.4); for high-resolution metrics 3 of 3 ten-second datapoints (§1.7, unconfirmed).
* AlarmLow: metric < 0.9 x target for 15 of 15 one-minute datapoints ("usually more than 10%
  lower", §1.2); high-resolution metrics scale in "at the same speed as standard metrics", so
  their AlarmLow also spans 15 minutes of one-minute datapoints (§1.7).
* DisableScaleIn: AlarmLow is not created (unconfirmed, §1.2).
* Capacity: ``ceil(current * metric / target)`` both ways - rounding up adds enough on scale-out
  and removes no more than needed on scale-in (§1.2, §1.6; exact algorithm unpublished).
* Statistics of the predefined SageMaker metrics: InvocationsPerInstance uses Sum per minute (the
  metric is already normalised per instance); ConcurrentRequestsPerModel uses Average (the
  per-container concurrency averaged over containers) - unconfirmed.
* A customized metric is tracked with 60-second alarms, or with 10-second AlarmHigh when the
  caller says the metric is stored at high resolution (StorageResolution 1 in PutMetricData).
  AAS's API has no Period field, so this is how a user's high-resolution metric reacts faster
  (ASSUMPTION).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from catkit.autoscaling.alarm_rules import AlarmSpec
from catkit.autoscaling.errors import validation
from catkit.names import (
    INFERENCE_COMPONENT_COPY_COUNT,
    SAGEMAKER_METRICS,
    VARIANT_INSTANCE_COUNT,
    VARIANT_PROVISIONED_CONCURRENCY,
)

TARGET_VALUE_MIN = 8.515920e-109
TARGET_VALUE_MAX = 1.174271e108


@dataclass(frozen=True)
class AlarmShape:
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold_factor: float  # threshold = factor x target value


ALARM_SHAPES: dict[str, dict[str, AlarmShape]] = {
    "standard": {"high": AlarmShape(60, 3, 3, 1.0), "low": AlarmShape(60, 15, 15, 0.9)},
    "high_resolution": {"high": AlarmShape(10, 3, 3, 1.0), "low": AlarmShape(60, 15, 15, 0.9)},
}


@dataclass(frozen=True)
class PredefinedMetric:
    namespace: str
    metric_name: str
    statistic: str
    dimension_kind: str  # "variant" | "inference-component"
    resolution: str  # "standard" | "high_resolution"
    scalable_dimension: str


PREDEFINED: dict[str, PredefinedMetric] = {
    "SageMakerVariantInvocationsPerInstance": PredefinedMetric(
        SAGEMAKER_METRICS,
        "InvocationsPerInstance",
        "Sum",
        "variant",
        "standard",
        VARIANT_INSTANCE_COUNT,
    ),
    "SageMakerVariantConcurrentRequestsPerModelHighResolution": PredefinedMetric(
        SAGEMAKER_METRICS,
        "ConcurrentRequestsPerModel",
        "Average",
        "variant",
        "high_resolution",
        VARIANT_INSTANCE_COUNT,
    ),
    "SageMakerVariantProvisionedConcurrencyUtilization": PredefinedMetric(
        SAGEMAKER_METRICS,
        "ServerlessProvisionedConcurrencyUtilization",
        "Average",
        "variant",
        "standard",
        VARIANT_PROVISIONED_CONCURRENCY,
    ),
    "SageMakerInferenceComponentInvocationsPerCopy": PredefinedMetric(
        SAGEMAKER_METRICS,
        "InvocationsPerCopy",
        "Sum",
        "inference-component",
        "standard",
        INFERENCE_COMPONENT_COPY_COUNT,
    ),
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution": PredefinedMetric(
        SAGEMAKER_METRICS,
        "ConcurrentRequestsPerCopy",
        "Average",
        "inference-component",
        "high_resolution",
        INFERENCE_COMPONENT_COPY_COUNT,
    ),
}


@dataclass(frozen=True)
class TrackedMetric:
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    unit: str | None
    resolution: str


def resource_dimensions(resource_id: str) -> dict[str, str]:
    """CloudWatch dimensions of a SageMaker resource id."""
    parts = resource_id.split("/")
    if len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant":
        return {"EndpointName": parts[1], "VariantName": parts[3]}
    if len(parts) == 2 and parts[0] == "inference-component":
        return {"InferenceComponentName": parts[1]}
    raise validation(f"Resource id {resource_id!r} is not a SageMaker variant or inference component.")


def tracked_metric(
    config: Mapping[str, Any],
    resource_id: str,
    scalable_dimension: str,
    is_high_resolution: Callable[[str, str, Mapping[str, str]], bool] | None = None,
) -> TrackedMetric:
    """Resolve the metric a TargetTrackingScalingPolicyConfiguration tracks (validating it)."""
    predefined = config.get("PredefinedMetricSpecification")
    custom = config.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(custom):
        raise validation(
            "Exactly one of PredefinedMetricSpecification or CustomizedMetricSpecification must be "
            "specified in TargetTrackingScalingPolicyConfiguration."
        )
    if predefined:
        mtype = predefined.get("PredefinedMetricType")
        pm = PREDEFINED.get(mtype or "")
        if pm is None:
            raise validation(
                f"Unsupported predefined metric type {mtype!r} for resource {resource_id}; "
                f"use one of {', '.join(PREDEFINED)} for SageMaker."
            )
        if pm.scalable_dimension != scalable_dimension:
            raise validation(
                f"Predefined metric type {mtype} is not supported for scalable dimension {scalable_dimension}."
            )
        return TrackedMetric(
            pm.namespace, pm.metric_name, resource_dimensions(resource_id), pm.statistic, None, pm.resolution
        )
    if custom.get("Metrics"):
        raise validation(
            "CustomizedMetricSpecification.Metrics (metric math) is not supported by catkit's scaling "
            "engine; specify MetricName, Namespace, Dimensions and Statistic instead."
        )
    for f in ("MetricName", "Namespace", "Statistic"):
        if not custom.get(f):
            raise validation(f"CustomizedMetricSpecification.{f} is required.")
    dims = {d["Name"]: d["Value"] for d in custom.get("Dimensions") or []}
    hi = bool(is_high_resolution and is_high_resolution(custom["Namespace"], custom["MetricName"], dims))
    return TrackedMetric(
        custom["Namespace"],
        custom["MetricName"],
        dims,
        custom["Statistic"],
        custom.get("Unit"),
        "high_resolution" if hi else "standard",
    )


def check_target_value(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise validation("TargetValue must be a number.") from None
    if not TARGET_VALUE_MIN <= v <= TARGET_VALUE_MAX:
        raise validation(
            f"TargetValue {value} is out of range; it must be between {TARGET_VALUE_MIN} and {TARGET_VALUE_MAX}."
        )
    return v


def check_config(config: Mapping[str, Any]) -> float:
    """Raise ValidationException for a TargetTrackingScalingPolicyConfiguration AWS would reject
    (TargetValue out of range, a negative cooldown); returns the target value."""
    target_value = check_target_value(config.get("TargetValue"))
    for c in ("ScaleOutCooldown", "ScaleInCooldown"):
        if config.get(c) is not None and int(config[c]) < 0:
            raise validation(f"{c} must be a non-negative number of seconds.")
    return target_value


def alarm_specs(
    metric: TrackedMetric,
    target_value: float,
    policy_arn: str,
    resource_id: str,
    disable_scale_in: bool,
    new_id: Callable[[], str],
) -> dict[str, AlarmSpec]:
    """The AlarmHigh (and unless DisableScaleIn, AlarmLow) AAS creates, keyed "high"/"low"."""
    shapes = ALARM_SHAPES[metric.resolution]
    out: dict[str, AlarmSpec] = {}
    for role, comparison in (("high", "GreaterThanThreshold"), ("low", "LessThanThreshold")):
        if role == "low" and disable_scale_in:
            continue
        shape = shapes[role]
        suffix = "AlarmHigh" if role == "high" else "AlarmLow"
        out[role] = AlarmSpec(
            alarm_name=f"TargetTracking-{resource_id}-{suffix}-{new_id()}",
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            dimensions=dict(metric.dimensions),
            statistic=metric.statistic,
            period=shape.period,
            evaluation_periods=shape.evaluation_periods,
            datapoints_to_alarm=shape.datapoints_to_alarm,
            threshold=target_value * shape.threshold_factor,
            comparison_operator=comparison,
            treat_missing_data="missing",
            alarm_actions=[policy_arn],
            alarm_description=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}.",
            unit=metric.unit,
        )
    return out


def desired_capacity(current: int, metric_value: float, target_value: float) -> int:
    """Proportional capacity with conservative rounding (never below 0)."""
    if current <= 0:
        # Nothing to scale proportionally from: one unit if the metric is above target.
        return 1 if metric_value > target_value else 0
    raw = current * metric_value / target_value
    # Guard against float noise such as 2 * 1.1 / 1.1 = 2.0000000000000004.
    return max(0, math.ceil(round(raw, 9)))
