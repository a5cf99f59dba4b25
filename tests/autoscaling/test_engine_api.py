"""Engine API: targets, validation errors, scheduled actions at work, suspension, persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from catkit.autoscaling.engine import Engine
from catkit.autoscaling.errors import ScalingError

from .conftest import DIM, RID, SEED_POLICY, T0, World


def _tracking(config):
    """A call putting target-tracking policy "p" with ``config`` (for the refusal table)."""
    return lambda e: e.put_scaling_policy("p", "sagemaker", RID, DIM, T0, target_tracking_config=config)


def test_register_update_and_describe_target():
    e = Engine()
    t = e.register_scalable_target("sagemaker", RID, DIM, T0, 2, 10)
    assert t.arn.startswith("arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/")
    e.register_scalable_target(
        "sagemaker", RID, DIM, T0 + 1, max_capacity=12, suspended_state={"DynamicScalingInSuspended": True}
    )
    [d] = e.describe_scalable_targets("sagemaker", [RID], DIM)
    assert (d.min_capacity, d.max_capacity, d.creation_time) == (2, 12, T0)
    assert d.suspended == {
        "DynamicScalingInSuspended": True,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    }
    assert e.describe_scalable_targets("ecs") == []


@pytest.mark.parametrize(
    "call,code,word",
    [
        (
            lambda e: e.register_scalable_target("sagemaker", RID, DIM, T0, 5, 2),
            "ValidationException",
            "cannot be greater",
        ),
        (
            lambda e: e.register_scalable_target("sagemaker", RID, DIM, T0, 0, 2),
            "ValidationException",
            "at least 1",
        ),
        (
            lambda e: e.register_scalable_target("sagemaker", "endpoint/x/variant/y", DIM, T0),
            "ValidationException",
            "required when registering a new",
        ),
        (
            lambda e: e.deregister_scalable_target("sagemaker", "endpoint/x/variant/y", DIM, T0),
            "ObjectNotFoundException",
            "No scalable target registered for service namespace: sagemaker, "
            "resource ID: endpoint/x/variant/y, scalable dimension: sagemaker:variant:DesiredInstanceCount",
        ),
        (
            lambda e: e.put_scaling_policy(
                "p", "sagemaker", "endpoint/x/variant/y", DIM, T0, target_tracking_config=SEED_POLICY
            ),
            "ObjectNotFoundException",
            "No scalable target registered",
        ),
        (
            lambda e: e.delete_scaling_policy("nope", "sagemaker", RID, DIM, T0),
            "ObjectNotFoundException",
            "No scaling policy found for .* policy name: nope",
        ),
        (
            lambda e: e.delete_scheduled_action("nope", "sagemaker", RID, DIM),
            "ObjectNotFoundException",
            "scheduled action name: nope",
        ),
        (
            lambda e: e.put_scaling_policy(
                "p", "sagemaker", RID, DIM, T0, policy_type="TargetTrackingScaling"
            ),
            "ValidationException",
            "TargetTrackingScalingPolicyConfiguration is required",
        ),
        (
            lambda e: e.put_scaling_policy(
                "p", "sagemaker", RID, DIM, T0, target_tracking_config={**SEED_POLICY, "TargetValue": 0}
            ),
            "ValidationException",
            "TargetValue",
        ),
        (
            _tracking({
                    "TargetValue": 1,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                }),
            "ValidationException",
            "Unsupported predefined metric type",
        ),
        (
            _tracking({
                    "TargetValue": 1,
                    "CustomizedMetricSpecification": {"Metrics": [{"Id": "m1"}]},
                }),
            "ValidationException",
            "metric math",
        ),
        (
            lambda e: e.put_scaling_policy("p", "sagemaker", RID, DIM, T0, policy_type="PredictiveScaling"),
            "ValidationException",
            "PredictiveScaling",
        ),
        (
            lambda e: e.put_scheduled_action("s", "sagemaker", RID, DIM, T0, schedule="cron(0 0 * * ? *)"),
            "ValidationException",
            "MinCapacity, MaxCapacity or both",
        ),
        (
            lambda e: e.put_scheduled_action("s", "sagemaker", RID, DIM, T0, max_capacity=3),
            "ValidationException",
            "Schedule is required",
        ),
    ],
)
def test_errors_carry_aws_codes_and_say_what_is_wrong(call, code, word):
    e = Engine()
    e.register_scalable_target("sagemaker", RID, DIM, T0, 2, 10)
    with pytest.raises(ScalingError, match=word) as err:
        call(e)
    assert err.value.code == code


def test_scheduled_action_at_night_lowers_min_and_max_and_scales_in():
    w = World(capacity=6, min_capacity=4, max_capacity=10)
    w.put_policy()
    night = datetime.fromtimestamp(T0 + 3600, UTC)
    a = w.engine.put_scheduled_action(
        "night",
        "sagemaker",
        RID,
        DIM,
        w.now,
        schedule=f"cron({night.minute} {night.hour} * * ? *)",
        min_capacity=1,
        max_capacity=3,
    )
    assert a.arn.endswith(f":resource/sagemaker/{RID}:scheduledActionName/night")
    assert a.next_run == T0 + 3600
    w.run(3600 + 10, 4 * 800)  # busy enough to stay at 6 until the schedule fires
    acts = w.activities()
    assert w.desired == 3
    assert acts[0].description == "Setting desired instance count to 3."
    assert acts[0].cause == "maximum capacity was set to 3"
    assert acts[1].description == "Setting min capacity to 1 and max capacity to 3"
    assert acts[1].cause == "scheduled action name night was triggered"
    assert acts[1].status_code == "Successful"
    t = w.engine.describe_scalable_targets("sagemaker")[0]
    assert (t.min_capacity, t.max_capacity) == (1, 3)
    assert w.engine.describe_scheduled_actions("sagemaker")[0].next_run == T0 + 2 * 3600 - 3600 + 24 * 3600


def test_scheduled_action_raising_min_scales_out_even_during_cooldown():
    w = World(capacity=2)
    w.engine.put_scheduled_action(
        "morning", "sagemaker", RID, DIM, w.now, schedule="rate(5 minutes)", min_capacity=5
    )
    w.run(5 * 60, 0)
    assert w.desired == 5 and w.activities()[0].cause == "minimum capacity was set to 5"


def test_scheduled_scaling_suspended_skips_runs():
    w = World(capacity=2)
    w.engine.register_scalable_target(
        "sagemaker", RID, DIM, w.now, suspended_state={"ScheduledScalingSuspended": True}
    )
    w.engine.put_scheduled_action(
        "m", "sagemaker", RID, DIM, w.now, schedule="rate(5 minutes)", min_capacity=5
    )
    w.run(6 * 60, 0)
    assert w.desired == 2 and w.activities() == []


@pytest.mark.parametrize(
    "flag,load,expected",
    [
        ("DynamicScalingOutSuspended", 2 * 3000, 2),
        ("DynamicScalingInSuspended", 0, 6),
    ],
)
def test_dynamic_scaling_suspension(flag, load, expected):
    w = World(capacity=2 if load else 6)
    w.put_policy()
    w.engine.register_scalable_target("sagemaker", RID, DIM, w.now, suspended_state={flag: True})
    w.run(30 * 60, load)
    assert w.desired == expected


def test_registering_with_min_above_current_scales_out():
    w = World(register=False, capacity=1)
    w.engine.register_scalable_target("sagemaker", RID, DIM, w.now, 2, 10)
    w.step(0)
    assert w.desired == 2 and w.activities()[0].cause == "minimum capacity was set to 2"


def test_deregister_removes_policies_alarms_and_schedules():
    w = World()
    w.put_policy()
    w.engine.put_scheduled_action("n", "sagemaker", RID, DIM, w.now, schedule="rate(1 hour)", max_capacity=3)
    w.engine.deregister_scalable_target("sagemaker", RID, DIM, w.now)
    assert w.engine.alarms.list() == []
    assert w.engine.describe_scaling_policies("sagemaker") == []
    assert w.engine.describe_scheduled_actions("sagemaker") == []
    assert w.engine.targets_for_resource("sagemaker", "endpoint/ep") == []


def test_no_new_activity_while_one_is_in_progress():
    w = World(provisioning_s=10**6)
    w.put_policy(config={**SEED_POLICY, "ScaleOutCooldown": 0})
    w.run(10 * 60, 2 * 5000)
    assert len(w.decisions) == 1
    assert w.activities()[0].status_code == "InProgress"


def test_state_round_trips_and_continues_identically():
    def drive(w, loads):
        for load in loads:
            w.step(load)

    loads = [3000] * 40 + [0] * 150 + [2500] * 60
    a = World()
    a.put_policy()
    a.engine.put_scheduled_action(
        "n", "sagemaker", RID, DIM, a.now, schedule="cron(0 * * * ? *)", max_capacity=8
    )
    b = World()
    b.put_policy()
    b.engine.put_scheduled_action(
        "n", "sagemaker", RID, DIM, b.now, schedule="cron(0 * * * ? *)", max_capacity=8
    )
    drive(a, loads[:100])
    drive(b, loads[:100])
    b.engine = Engine.from_dict(
        json.loads(json.dumps(b.engine.to_dict())),
        alarms=type(b.engine.alarms).from_dict(json.loads(json.dumps(b.engine.alarms.to_dict()))),
    )
    drive(a, loads[100:])
    drive(b, loads[100:])
    assert a.timeline == b.timeline
    assert [x.to_api() for x in a.activities(True)] == [x.to_api() for x in b.activities(True)]


def test_due_scheduled_actions_run_in_time_order():
    w = World(capacity=4, max_capacity=10)
    # Created in the opposite order of their times; both are due at the same tick.
    w.engine.put_scheduled_action(
        "second",
        "sagemaker",
        RID,
        DIM,
        w.now,
        schedule=f"at({datetime.fromtimestamp(T0 + 120, UTC):%Y-%m-%dT%H:%M:%S})",
        max_capacity=6,
    )
    w.engine.put_scheduled_action(
        "first",
        "sagemaker",
        RID,
        DIM,
        w.now,
        schedule=f"at({datetime.fromtimestamp(T0 + 60, UTC):%Y-%m-%dT%H:%M:%S})",
        max_capacity=3,
    )
    w.now += 300
    w.engine.tick(w.now, w.metrics, w.capacity)
    assert w.engine.describe_scalable_targets("sagemaker")[0].max_capacity == 6
    causes = [a.cause for a in w.activities()]
    assert causes[-2:] == [
        "scheduled action name second was triggered",
        "scheduled action name first was triggered",
    ]
