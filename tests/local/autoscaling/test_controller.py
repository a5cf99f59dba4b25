"""The autoscaling controller and AAS service on a fake backend (fake clock, fake endpoints)."""

from __future__ import annotations

import pytest

from catkit.local.errors import AwsError

from .conftest import DIM, DIMS, RID, T0, FakeBackend

SEED = {
    "TargetValue": 1000.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleOutCooldown": 60,
    "ScaleInCooldown": 300,
}
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM}


def seed(b: FakeBackend) -> dict:
    b.call("RegisterScalableTarget", **TARGET, MinCapacity=2, MaxCapacity=10)
    return b.call(
        "PutScalingPolicy",
        PolicyName="seed",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration=SEED,
        **TARGET,
    )


def test_install_wires_service_engine_saving_and_endpoint_hooks(fake_backend):
    b = fake_backend
    assert b.autoscaling.service is b.services["application-autoscaling"]
    assert b.autoscaling.engine is b.driver.engine  # the scheduler's scaling step drives it
    assert [j.name for j in b.scheduler.jobs] == ["autoscaling-save"] and b.shutdowns
    assert b.endpoints.deleted and b.endpoints.guards


@pytest.mark.parametrize(
    "op,params,code,word",
    [
        (
            "RegisterScalableTarget",
            {**TARGET, "ResourceId": "endpoint/nope/variant/AllTraffic", "MinCapacity": 1, "MaxCapacity": 2},
            "ValidationException",
            "does not exist",
        ),
        (
            "RegisterScalableTarget",
            {**TARGET, "ResourceId": "endpoint/ep", "MinCapacity": 1, "MaxCapacity": 2},
            "ValidationException",
            "expected endpoint/<endpoint-name>/variant/<variant-name>",
        ),
        (
            "RegisterScalableTarget",
            {**TARGET, "ServiceNamespace": "ecs", "MinCapacity": 1, "MaxCapacity": 2},
            "ValidationException",
            "Unsupported service namespace, resource type or scalable dimension",  # sagemaker dimension, ecs namespace
        ),
        (
            "RegisterScalableTarget",
            {
                **TARGET,
                "ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency",
                "MinCapacity": 1,
                "MaxCapacity": 2,
            },
            "ValidationException",
            "only a serverless variant",  # the variant is instance-based
        ),
        (
            "RegisterScalableTarget",
            {**TARGET, "MinCapacity": 3, "MaxCapacity": 2},
            "ValidationException",
            "cannot be greater",
        ),
        ("DeregisterScalableTarget", TARGET, "ObjectNotFoundException", "No scalable target registered"),
        (
            "DescribeScalingPolicies",
            {"ServiceNamespace": "sagemaker", "ScalableDimension": DIM},
            "ValidationException",
            "must also specify ResourceId",
        ),
        (
            "DescribeScalingPolicies",
            {"ServiceNamespace": "sagemaker", "MaxResults": 11},
            "ValidationException",
            "between 1 and 10",
        ),
        (
            "DescribeScalableTargets",
            {"ServiceNamespace": "sagemaker", "NextToken": "garbage"},
            "ValidationException",
            "NextToken",
        ),
        (
            "PutScalingPolicy",
            {**TARGET, "PolicyName": "p", "TargetTrackingScalingPolicyConfiguration": SEED},
            "ObjectNotFoundException",
            "No scalable target registered",
        ),
    ],
)
def test_api_errors(fake_backend, op, params, code, word):
    with pytest.raises(AwsError, match=word) as e:
        fake_backend.call(op, **params)
    assert e.value.code == code and e.value.status == 400


def test_policy_alarms_live_in_the_cloudwatch_book(fake_backend):
    b = fake_backend
    out = seed(b)
    assert out["PolicyARN"].endswith(f":resource/sagemaker/{RID}:policyName/seed")
    names = [a["AlarmName"] for a in out["Alarms"]]
    assert all(b.alarms.get(n) is not None for n in names)
    [pol] = b.call(
        "DescribeScalingPolicies", ServiceNamespace="sagemaker", ResourceId=RID, ScalableDimension=DIM
    )["ScalingPolicies"]
    assert pol["Alarms"] == out["Alarms"] and pol["TargetTrackingScalingPolicyConfiguration"] == SEED


def test_load_scales_out_through_the_endpoint_and_activity_completes_when_in_service(fake_backend):
    b = fake_backend
    seed(b)
    b.run(4 * 60, per_minute=2 * 1500)
    assert b.endpoints.calls and b.endpoints.calls[0][1:] == ("ep", "AllTraffic", 3)
    [act] = b.call("DescribeScalingActivities", ServiceNamespace="sagemaker")["ScalingActivities"]
    assert act["StatusCode"] == "InProgress" and act["Description"] == "Setting desired instance count to 3."
    b.run(250, per_minute=3 * 900)
    [act] = b.call("DescribeScalingActivities", ServiceNamespace="sagemaker")["ScalingActivities"]
    assert act["StatusCode"] == "Successful"
    assert act["EndTime"] - act["StartTime"] >= 240  # the provisioning delay
    assert b.endpoints.get_variant("ep", "AllTraffic").current_instance_count == 3


def test_idle_zeros_let_it_scale_in_to_min_and_only_for_auto_scaled_variants(fake_backend):
    b = fake_backend
    b.endpoints.add("other", count=4)
    seed(b)
    b.endpoints.views[("ep", "AllTraffic")] = b.endpoints.views[("ep", "AllTraffic")].__class__(
        "ep", "AllTraffic", 6, 6, "InService"
    )
    b.run(20 * 60)
    zeros = b.metrics.statistics(
        "AWS/SageMaker", "InvocationsPerInstance", DIMS, T0, T0 + 1200, 60, ["Sum", "SampleCount"]
    )
    assert len(zeros) >= 19 and all(r["Sum"] == 0 for r in zeros)
    assert (
        b.metrics.statistics(
            "AWS/SageMaker",
            "Invocations",
            {"EndpointName": "other", "VariantName": "AllTraffic"},
            T0,
            T0 + 1200,
            60,
            ["Sum"],
        )
        == []
    )
    b.run(5 * 60)
    assert b.endpoints.get_variant("ep", "AllTraffic").desired_instance_count == 2
    low = next(a for a in b.alarms.list() if "AlarmLow" in a.name)
    assert low.state_value == "ALARM"
    hist = [h.summary for h in b.alarms.history(low.name, item_type="StateUpdate")]
    assert "Alarm updated from INSUFFICIENT_DATA to ALARM" in hist


def test_failed_update_marks_activity_failed_with_sagemaker_reason(fake_backend):
    b = fake_backend
    seed(b)

    def refuse(endpoint, variant, n):
        raise AwsError("ResourceLimitExceeded", "The account-level service limit is 1 Instances.")

    b.endpoints.set_desired_instance_count = refuse
    b.run(4 * 60, per_minute=2 * 1500)
    act = b.call("DescribeScalingActivities", ServiceNamespace="sagemaker")["ScalingActivities"][-1]
    assert act["StatusCode"] == "Failed"
    assert act["StatusMessage"].startswith(
        "Failed to set desired instance count to 3. Reason: The account-level service limit is 1 Instances. "
        "(Service: AmazonSageMaker; Status Code: 400; Error Code: ResourceLimitExceeded; Request ID: "
    )


def test_endpoint_deletion_deregisters_targets_and_deletes_alarms(fake_backend):
    b = fake_backend
    seed(b)
    b.endpoints.delete("EP")
    assert b.call("DescribeScalableTargets", ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert b.alarms.list() == []


def test_update_guard_refuses_instance_type_change_or_removal(fake_backend):
    b = fake_backend
    seed(b)
    guard = b.endpoints.guards[0]
    old = [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge"}]
    guard("ep", old, [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "ModelName": "new"}])
    with pytest.raises(AwsError, match="cannot change its instance type"):
        guard("ep", old, [{"VariantName": "AllTraffic", "InstanceType": "ml.c5.xlarge"}])
    with pytest.raises(AwsError, match="cannot remove it"):
        guard("ep", old, [{"VariantName": "Other", "InstanceType": "ml.m5.xlarge"}])
    guard("other", old, [])  # not auto-scaled: no opinion


def test_pagination(fake_backend):
    b = fake_backend
    for i in range(3):
        b.endpoints.add(f"ep{i}")
        b.call(
            "RegisterScalableTarget",
            **{**TARGET, "ResourceId": f"endpoint/ep{i}/variant/AllTraffic"},
            MinCapacity=1,
            MaxCapacity=3,
            Tags={"n": str(i)},
        )
    seen, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = b.call("DescribeScalableTargets", ServiceNamespace="sagemaker", MaxResults=2, **kw)
        seen += [t["ResourceId"] for t in page["ScalableTargets"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"endpoint/ep{i}/variant/AllTraffic" for i in range(3)]
    b.clock.advance(10)
    b.autoscaling.tick()  # min 1 <= 2: nothing; but register ep0 with min 3 makes an activity
    for i in range(3):
        b.call(
            "RegisterScalableTarget",
            **{**TARGET, "ResourceId": f"endpoint/ep{i}/variant/AllTraffic"},
            MinCapacity=3,
        )
        b.autoscaling.tick()
        b.clock.advance(300)
        b.autoscaling.tick()
    acts, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        page = b.call("DescribeScalingActivities", ServiceNamespace="sagemaker", MaxResults=2, **kw)
        acts += page["ScalingActivities"]
        token = page.get("NextToken")
        if not token:
            break
    assert [a["Cause"] for a in acts] == ["minimum capacity was set to 3"] * 3
    assert len({a["ActivityId"] for a in acts}) == 3
    arn = b.call(
        "DescribeScalableTargets",
        ServiceNamespace="sagemaker",
        ResourceIds=["endpoint/ep1/variant/AllTraffic"],
    )["ScalableTargets"][0]["ScalableTargetARN"]
    assert b.call("ListTagsForResource", ResourceARN=arn)["Tags"] == {"n": "1"}


def test_state_survives_a_new_controller(fake_backend, tmp_path):
    b = fake_backend
    seed(b)
    b.call(
        "PutScheduledAction",
        **TARGET,
        ScheduledActionName="night",
        Schedule="cron(0 22 * * ? *)",
        Timezone="Europe/Berlin",
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 3},
    )
    b.run(4 * 60, per_minute=2 * 1500)
    before = b.call("DescribeScalingActivities", ServiceNamespace="sagemaker")
    b.autoscaling.persist(force=True)
    b.services.clear()
    b.install()
    assert b.call("DescribeScalingActivities", ServiceNamespace="sagemaker") == before
    [sa] = b.call("DescribeScheduledActions", ServiceNamespace="sagemaker")["ScheduledActions"]
    assert sa["Timezone"] == "Europe/Berlin" and sa["ScalableTargetAction"] == {
        "MinCapacity": 1,
        "MaxCapacity": 3,
    }
    assert len(b.call("DescribeScalingPolicies", ServiceNamespace="sagemaker")["ScalingPolicies"]) == 1


def test_missing_alarms_are_recreated_on_start(fake_backend):
    b = fake_backend
    out = seed(b)
    b.autoscaling.persist(force=True)
    b.alarms.delete_alarms([a["AlarmName"] for a in out["Alarms"]], b.clock.now())
    b.services.clear()
    b.install()
    assert [b.alarms.get(a["AlarmName"]) is not None for a in out["Alarms"]] == [True, True]
