"""Step scaling: bounds, percent rounding, MinAdjustmentMagnitude, validation, cooldown difference rule."""

from __future__ import annotations

import pytest

from catkit.autoscaling.alarms import AlarmSpec
from catkit.autoscaling.errors import ScalingError
from catkit.autoscaling.step_scaling import find_step, new_capacity, round_percent, validate_config

from .conftest import DIM, DIMS, NS, RID, World

STEPS = [
    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 500, "ScalingAdjustment": 1},
    {"MetricIntervalLowerBound": 500, "MetricIntervalUpperBound": 1000, "ScalingAdjustment": 2},
    {"MetricIntervalLowerBound": 1000, "ScalingAdjustment": 3},
]
DOWN = [
    {"MetricIntervalUpperBound": -200, "ScalingAdjustment": -2},
    {"MetricIntervalLowerBound": -200, "MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
]


@pytest.mark.parametrize(
    "diff,adjustment",
    [(0, 1), (499.9, 1), (500, 2), (999, 2), (1000, 3), (10**6, 3)],
)
def test_above_threshold_lower_inclusive_upper_exclusive(diff, adjustment):
    assert find_step(STEPS, diff)["ScalingAdjustment"] == adjustment


@pytest.mark.parametrize("diff,adjustment", [(-0.1, -1), (-199.9, -1), (-200, -2), (-(10**6), -2)])
def test_below_threshold_lower_exclusive_upper_inclusive(diff, adjustment):
    assert find_step(DOWN, diff)["ScalingAdjustment"] == adjustment


@pytest.mark.parametrize(
    "change,rounded", [(12.7, 12), (1.0, 1), (0.5, 1), (0.01, 1), (-0.5, -1), (-6.67, -6), (-1.0, -1), (0, 0)]
)
def test_percent_rounding(change, rounded):
    assert round_percent(change) == rounded


@pytest.mark.parametrize(
    "kind,adj,base,mam,expected",
    [
        ("ChangeInCapacity", 2, 3, None, 5),
        ("ChangeInCapacity", -2, 3, None, 1),
        ("ExactCapacity", 7, 3, None, 7),
        ("PercentChangeInCapacity", 50, 5, None, 7),  # +2.5 -> +2
        ("PercentChangeInCapacity", 10, 5, None, 6),  # +0.5 -> +1
        ("PercentChangeInCapacity", -10, 5, None, 4),  # -0.5 -> -1
        ("PercentChangeInCapacity", -33, 20, None, 14),  # -6.6 -> -6
        ("PercentChangeInCapacity", 10, 5, 3, 8),  # +1 raised to MinAdjustmentMagnitude 3
    ],
)
def test_new_capacity(kind, adj, base, mam, expected):
    cfg = {"AdjustmentType": kind, "MinAdjustmentMagnitude": mam}
    assert new_capacity(cfg, {"ScalingAdjustment": adj}, base) == expected


@pytest.mark.parametrize(
    "cfg,word",
    [
        ({"AdjustmentType": "Double", "StepAdjustments": STEPS}, "AdjustmentType"),
        ({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": []}, "at least one"),
        (
            {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": STEPS, "MinAdjustmentMagnitude": 2},
            "MinAdjustmentMagnitude",
        ),
        (
            {
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2},
                ],
            },
            "overlap",
        ),
        (
            {
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2},
                ],
            },
            "gaps",
        ),
        (
            {
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [
                    {"ScalingAdjustment": 1, "MetricIntervalUpperBound": 0},
                    {"ScalingAdjustment": 1, "MetricIntervalUpperBound": 5},
                ],
            },
            "null",
        ),
        (
            {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": STEPS, "MetricAggregationType": "Sum"},
            "MetricAggregationType",
        ),
    ],
)
def test_invalid_step_configs(cfg, word):
    with pytest.raises(ScalingError, match=word) as e:
        validate_config(cfg)
    assert e.value.code == "ValidationException"


def _user_alarm(w: World, policy_arn: str, threshold: float, op: str = "GreaterThanThreshold") -> None:
    w.engine.alarms.put_alarm(
        AlarmSpec(
            alarm_name=f"user-{op}",
            namespace=NS,
            metric_name="Invocations",
            dimensions=DIMS,
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator=op,
            alarm_actions=[policy_arn],
        ),
        w.now,
    )


def _step_policy(w, name, config):
    """A StepScaling policy ``name`` on the world's variant."""
    return w.engine.put_scaling_policy(name, "sagemaker", RID, DIM, w.now, policy_type="StepScaling",
                                       step_scaling_config=config)


def test_step_policy_driven_by_a_user_alarm_and_cooldown_adds_only_the_difference():
    # Instances take 60 s; the cooldown is 600 s (no new activity starts while one is in progress,
    # as SageMaker rejects capacity updates while the endpoint is Updating).
    w = World(capacity=3, max_capacity=20, provisioning_s=60)
    r = _step_policy(w, "steps", {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": STEPS, "Cooldown": 600})
    _user_alarm(w, r.policy_arn, 1000)
    assert r.alarms == []  # step policies list the alarms that point at them once they exist
    listed = w.engine.describe_scaling_policies("sagemaker", ["steps"])[0].to_api()["Alarms"]
    assert [a["AlarmName"] for a in listed] == ["user-GreaterThanThreshold"]
    w.run(70, 1700)  # 700 above threshold -> +2 from 3
    assert w.desired == 5
    w.run(180, 2500)  # 1500 above -> +3, during cooldown only the difference: 3+3=6
    assert w.desired == 6
    assert [d.desired_capacity for d in w.decisions] == [5, 6]
    cause = w.activities()[0].cause
    assert cause == "monitor alarm user-GreaterThanThreshold in state ALARM triggered policy steps"


def test_step_scale_in_and_percent_with_min_adjustment_magnitude():
    w = World(capacity=10, min_capacity=1)
    r = _step_policy(w, "in", {
            "AdjustmentType": "PercentChangeInCapacity",
            "MinAdjustmentMagnitude": 3,
            "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -10}],
        })
    _user_alarm(w, r.policy_arn, 100, "LessThanThreshold")
    w.run(70, 10)
    assert w.desired == 7  # -10% of 10 = -1, raised to the minimum magnitude 3


def test_alarm_at_max_records_not_scaled_reason():
    w = World(capacity=10, max_capacity=10)
    r = _step_policy(w, "steps", {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": STEPS})
    _user_alarm(w, r.policy_arn, 10)
    w.run(5 * 60, 5000)
    reasons = [a.not_scaled_reasons for a in w.activities(True)]
    assert reasons == [[{"Code": "AlreadyAtMaxCapacity", "CurrentCapacity": 10, "MaxCapacity": 10}]]
