"""Target tracking rules: alarms AAS creates, proportional capacity, cooldowns, DisableScaleIn,
several policies, high-resolution metric, not-scaled reasons."""

from __future__ import annotations

import pytest

from catkit.autoscaling.alarms import ALARM, OK
from catkit.autoscaling.target_tracking import desired_capacity

from .conftest import DIM, DIMS, NS, RID, SEED_POLICY, T0, World


def test_seed_policy_creates_alarm_high_and_low_with_aws_shapes(world):
    result = world.put_policy()
    assert result.policy_arn.startswith("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:")
    assert result.policy_arn.endswith(f":resource/sagemaker/{RID}:policyName/seed")
    names = [a["AlarmName"] for a in result.alarms]
    assert names[0].startswith(f"TargetTracking-{RID}-AlarmHigh-")
    assert names[1].startswith(f"TargetTracking-{RID}-AlarmLow-")
    assert result.alarms[0]["AlarmARN"] == f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{names[0]}"
    high, low = (world.engine.alarms.get(n).spec for n in names)

    def shape(s):
        return (
            s.namespace,
            s.metric_name,
            s.dimensions,
            s.statistic,
            s.period,
            s.evaluation_periods,
            s.datapoints_to_alarm,
            s.comparison_operator,
            s.threshold,
        )

    assert shape(high) == (
        NS,
        "InvocationsPerInstance",
        DIMS,
        "Sum",
        60,
        3,
        3,
        "GreaterThanThreshold",
        1000.0,
    )
    assert shape(low) == (NS, "InvocationsPerInstance", DIMS, "Sum", 60, 15, 15, "LessThanThreshold", 900.0)
    assert high.alarm_actions == [result.policy_arn] == low.alarm_actions
    assert high.alarm_description.startswith("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy")


def test_high_resolution_predefined_metric_uses_10_second_alarm_high(world):
    cfg = {
        "TargetValue": 5.0,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"
        },
    }
    result = world.put_policy("hr", cfg)
    high, low = (world.engine.alarms.get(a["AlarmName"]).spec for a in result.alarms)
    assert (high.metric_name, high.period, high.evaluation_periods, high.statistic) == (
        "ConcurrentRequestsPerModel",
        10,
        3,
        "Average",
    )
    assert (low.period, low.evaluation_periods, low.threshold) == (60, 15, 4.5)


def test_customized_metric_any_namespace_and_high_resolution_hint():
    w = World()
    cfg = {
        "TargetValue": 50.0,
        "CustomizedMetricSpecification": {
            "MetricName": "QueueDepth",
            "Namespace": "MyApp",
            "Statistic": "Average",
            "Dimensions": [{"Name": "EndpointName", "Value": "ep"}],
        },
    }
    r = w.put_policy("custom", cfg)
    high = w.engine.alarms.get(r.alarms[0]["AlarmName"]).spec
    assert (high.namespace, high.metric_name, high.dimensions, high.period) == (
        "MyApp",
        "QueueDepth",
        {"EndpointName": "ep"},
        60,
    )
    w.engine.is_high_resolution = lambda ns, name, dims: ns == "MyApp"
    r = w.put_policy("custom-hr", cfg)
    assert w.engine.alarms.get(r.alarms[0]["AlarmName"]).spec.period == 10


def test_disable_scale_in_creates_no_alarm_low_and_never_scales_in():
    w = World(capacity=4)
    r = w.put_policy(config={**SEED_POLICY, "DisableScaleIn": True})
    assert len(r.alarms) == 1 and "AlarmHigh" in r.alarms[0]["AlarmName"]
    w.run(30 * 60, 0)
    assert w.desired == 4


@pytest.mark.parametrize(
    "current,metric,target,expected",
    [
        (2, 1500, 1000, 3),  # 3.0
        (2, 1100, 1000, 3),  # 2.2 rounds up on scale-out
        (4, 850, 1000, 4),  # 3.4 rounds up: never removes too much
        (4, 700, 1000, 3),  # 2.8 -> 3
        (10, 0, 1000, 0),  # no traffic: as low as the bounds allow
        (3, 1100, 1100, 3),
        (2, 1000.0001, 1000, 3),
    ],
)
def test_capacity_formula_rounds_conservatively(current, metric, target, expected):
    assert desired_capacity(current, metric, target) == expected


def test_step_load_scales_out_after_three_minutes_above_target(world):
    world.put_policy()
    world.run(5 * 60, 400)  # quiet: 200 per instance
    assert world.desired == 2
    t_step = world.now
    world.run(6 * 60, 3000)  # 1500 per instance
    first = world.decisions[0]
    assert first.desired_capacity == 3 and first.previous_capacity == 2
    acts = world.activities()
    assert acts[0].description == "Setting desired instance count to 3."
    high = world.engine.alarms.list(prefix=f"TargetTracking-{RID}-AlarmHigh")[0]
    assert acts[0].cause == f"monitor alarm {high.name} in state ALARM triggered policy seed"
    assert acts[0].status_code == "Successful"
    assert acts[0].status_message == (
        "Successfully set desired instance count to 3. Change successfully fulfilled by sagemaker."
    )
    # Three complete minutes of breaching data are needed: the decision comes at the 3rd boundary.
    assert acts[-1].start_time - t_step == 180


def test_scales_back_in_after_load_stops_and_never_outside_bounds(world):
    world.put_policy()
    world.run(10 * 60, 30000)  # 15000 per instance at 2 -> wants 30, capped at 10
    assert world.desired == 10
    world.run(45 * 60, 0)  # SageMaker emits zeros for auto-scaled variants
    assert world.desired == 2
    assert all(2 <= c <= 10 for _, c in world.timeline)
    not_scaled = [a for a in world.activities(include_not_scaled=True) if a.not_scaled_reasons]
    assert not_scaled and not_scaled[-1].not_scaled_reasons[0]["Code"] == "AlreadyAtMaxCapacity"
    assert not_scaled[-1].not_scaled_reasons[0]["MaxCapacity"] == 10
    assert not_scaled[-1].description == "Attempting to scale due to alarm triggered"
    assert not [a for a in world.activities() if a.not_scaled_reasons]


def test_scale_in_needs_fifteen_low_minutes(world):
    world.engine.register_scalable_target("sagemaker", RID, DIM, world.now, 1, 10)
    world.put_policy()
    world.desired = world.active = 4
    world.run(14 * 60, 4 * 500)
    assert world.desired == 4
    world.run(2 * 60, 4 * 500)
    assert world.desired == 2  # ceil(4 * 500 / 1000)


def test_missing_data_means_no_scaling():
    w = World(capacity=5)
    w.put_policy()
    w.now += 3600  # no datapoints at all
    assert w.engine.tick(w.now, w.metrics, w.capacity) == []
    assert w.engine.alarms.list()[0].state_value == "INSUFFICIENT_DATA"


def test_scale_out_cooldown_counts_capacity_being_added():
    w = World(provisioning_s=300)  # instances take 5 minutes to become active
    w.put_policy(config={**SEED_POLICY, "ScaleOutCooldown": 600})
    w.run(4 * 60, 3000)  # 1500 per active instance -> 3
    assert w.desired == 3
    w.run(60, 3000)  # still 1500 per ACTIVE instance: not compounded during the cooldown
    assert w.desired == 3
    w.run(3 * 60, 5000)  # the launch finishes at 480 s: meanwhile the variant is Updating, no scaling
    assert w.desired == 3
    # With 3 active instances the load reads 5000 / 3 = 1667 per instance. During the cooldown the
    # proposal is computed from the capacity before it (2): ceil(2 * 1.667) = 4 - not from the
    # current 3, which would give 5.
    w.run(60, 5000)
    assert w.desired == 4
    assert [d.desired_capacity for d in w.decisions] == [3, 4]


def test_scale_in_cooldown_blocks_scale_in_but_not_scale_out():
    w = World(min_capacity=1, capacity=8)
    w.put_policy(config={**SEED_POLICY, "ScaleInCooldown": 600})
    w.run(16 * 60, 8 * 600)  # 600 per instance for 15 min -> ceil(8*0.6) = 5
    assert w.desired == 5
    t_in = w.activities()[0].start_time
    w.run(4 * 60, 5 * 100)  # even lower, but within the 600 s scale-in cooldown
    assert w.desired == 5
    w.run(4 * 60, 5 * 2000)  # a scale-out during the scale-in cooldown happens at once
    assert w.desired == 10
    assert w.activities()[0].start_time - t_in < 600


def test_scale_out_alarm_is_reinvoked_every_minute_while_in_alarm():
    w = World(max_capacity=20)
    w.put_policy(config={**SEED_POLICY, "ScaleOutCooldown": 0})
    w.run(4 * 60, 3000)
    assert w.desired == 3
    # Alarm stays in ALARM (the 3000/min is spread over 3 instances = 1000 -> not above target)
    w.run(60, 3 * 1500)
    w.run(3 * 60, 3 * 1500)
    assert w.desired >= 5  # re-invoked without a new state change


def test_several_policies_scale_out_on_any_and_in_only_on_all():
    w = World(capacity=4)
    w.put_policy("ipi")
    cpu = {
        "TargetValue": 50.0,
        "CustomizedMetricSpecification": {
            "MetricName": "CPUUtilization",
            "Namespace": "/aws/sagemaker/Endpoints",
            "Statistic": "Average",
            "Dimensions": [
                {"Name": "EndpointName", "Value": "ep"},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ],
        },
    }
    w.put_policy("cpu", cpu)

    def cpu_at(pct):
        w.metrics.record("/aws/sagemaker/Endpoints", "CPUUtilization", DIMS, pct, w.now + 2)

    # Invocations low, CPU high: CPU alone scales out (any policy); its proposal wins.
    for _ in range(4 * 6):
        cpu_at(100)
        w.step(4 * 100)
    assert w.desired == 8
    # Invocations low for long, CPU on target: no scale-in (not all policies agree).
    for _ in range(20 * 6):
        cpu_at(50)
        w.step(8 * 100)
    assert w.desired == 8
    # Both low: scale in; the LARGEST proposal wins (CPU 40% of 50 -> ceil(8*0.8)=7 vs ipi -> 1).
    for _ in range(16 * 6):
        cpu_at(40)
        w.step(8 * 100)
    assert w.desired == 7


def test_high_resolution_metric_answers_a_step_sooner():
    def react(cfg, concurrency):
        w = World()
        w.put_policy("p", cfg)
        w.run(5 * 60, 200, concurrency=2 * 1.0)
        t = w.now
        for _ in range(60):
            w.step(2 * 1500, concurrency=2 * 10.0)
            if w.decisions:
                return w.decisions[0] and (w.now - t)
        return None

    std = react(SEED_POLICY, 0)
    hr = react(
        {
            "TargetValue": 5.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"
            },
        },
        0,
    )
    assert std == 180 and hr == 30


def test_alarm_states_follow_the_load(world):
    world.put_policy()
    high, low = (
        world.engine.alarms.list(prefix=f"TargetTracking-{RID}-AlarmHigh")[0],
        world.engine.alarms.list(prefix=f"TargetTracking-{RID}-AlarmLow")[0],
    )
    world.run(16 * 60, 2 * 950)
    assert (high.state_value, low.state_value) == (OK, OK)
    world.run(16 * 60, 2 * 500)
    assert low.state_value == ALARM
    assert world.desired == 2  # already at min: a not-scaled activity, no change
    reasons = [a.not_scaled_reasons[0]["Code"] for a in world.activities(True) if a.not_scaled_reasons]
    assert reasons == ["AlreadyAtMinCapacity"]


def test_updating_a_policy_keeps_its_alarm_names_and_arn(world):
    r1 = world.put_policy()
    r2 = world.put_policy(config={**SEED_POLICY, "TargetValue": 500.0})
    assert r1.policy_arn == r2.policy_arn and r1.alarms == r2.alarms
    assert world.engine.alarms.get(r2.alarms[0]["AlarmName"]).spec.threshold == 500.0
    r3 = world.put_policy(config={**SEED_POLICY, "DisableScaleIn": True})
    assert len(r3.alarms) == 1
    assert world.engine.alarms.get(r1.alarms[1]["AlarmName"]) is None
    world.engine.delete_scaling_policy("seed", "sagemaker", RID, DIM, world.now)
    assert world.engine.alarms.list() == []


def test_failed_activity_restores_cooldown_and_reports_reason():
    w = World()
    w.put_policy()
    w.run(3 * 60 - 10, 3000)
    [d] = w.engine.tick(w.now + 10, w.metrics, w.capacity)
    w.engine.complete(d.activity_id, False, "ResourceLimitExceeded: quota", w.now + 10)
    a = w.engine.activity(d.activity_id)
    assert a.status_code == "Failed"
    assert (
        a.status_message == "Failed to set desired instance count to 3. Reason: ResourceLimitExceeded: quota"
    )
    assert w.engine.cooldowns[("sagemaker", RID, DIM)].out_until is None
    assert a.end_time > T0
