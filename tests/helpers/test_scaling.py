"""scaling: target tracking (seed defaults), high-res policy, schedules, activities DataFrame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY

from catkit import scaling
from catkit.deploy import HighAvailabilityWarning

RID = "endpoint/ep1/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
POLICY_ARN = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:abc:resource/sagemaker/" + RID + ":policyName/p"


def test_configure_target_tracking_uses_seed_defaults(session, stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("register_scalable_target", {"ScalableTargetARN": "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/x"},
                     {**TARGET, "MinCapacity": 2, "MaxCapacity": 10})
    aas.add_response(
        "put_scaling_policy",
        {"PolicyARN": POLICY_ARN, "Alarms": [{"AlarmName": f"TargetTracking-{RID}-AlarmHigh-1", "AlarmARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:h"},
                                             {"AlarmName": f"TargetTracking-{RID}-AlarmLow-1", "AlarmARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:l"}]},
        {
            **TARGET,
            "PolicyName": "catkit-SageMakerVariantInvocationsPerInstance",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 1000.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 300,
                "DisableScaleIn": False,
            },
        },
    )
    policy = scaling.configure_target_tracking(session, "ep1")
    assert policy.policy_arn == POLICY_ARN
    assert [a.rsplit("-", 2)[1] for a in policy.alarms] == ["AlarmHigh", "AlarmLow"]
    stubs.verify()


def test_high_resolution_policy_metric(session, stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("register_scalable_target", {}, {**TARGET, "MinCapacity": 2, "MaxCapacity": 10})
    aas.add_response(
        "put_scaling_policy", {"PolicyARN": POLICY_ARN},
        {**TARGET, "PolicyName": ANY, "PolicyType": "TargetTrackingScaling",
         "TargetTrackingScalingPolicyConfiguration": {
             "TargetValue": 5.0,
             "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"},
             "ScaleOutCooldown": 60, "ScaleInCooldown": 300, "DisableScaleIn": False}},
    )
    policy = scaling.configure_high_resolution_scaling(session, "ep1")
    assert policy.configuration["PredefinedMetricSpecification"]["PredefinedMetricType"].endswith("HighResolution")
    stubs.verify()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_capacity": 0}, ">= 1"), ({"min_capacity": 5, "max_capacity": 3}, "max_capacity"),
     ({"target_value": 0}, "target_value"), ({"scale_in_cooldown": -1}, "cooldowns")],
)
def test_invalid_settings_rejected_before_any_call(session, kwargs, message):
    with pytest.raises(ValueError, match=message):
        scaling.configure_target_tracking(session, "ep1", **kwargs)


def test_min_capacity_one_warns(session, stubs):
    stubs["application-autoscaling"].add_response("register_scalable_target", {})
    with pytest.warns(HighAvailabilityWarning, match="min_capacity=1"):
        scaling.register_scalable_target(session, "ep1", min_capacity=1, max_capacity=4)


def test_night_schedule_actions(session, stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("put_scheduled_action", {}, {**TARGET, "ScheduledActionName": "catkit-night",
                     "Schedule": "cron(0 20 * * ? *)", "Timezone": "Europe/Berlin",
                     "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 2}})
    aas.add_response("put_scheduled_action", {}, {**TARGET, "ScheduledActionName": "catkit-day",
                     "Schedule": "cron(0 7 ? * MON-FRI *)", "Timezone": "Europe/Berlin",
                     "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 10}})
    names = scaling.schedule_night_scaling(session, "ep1", night_min=2, night_max=2, timezone="Europe/Berlin")
    assert names == ["catkit-night", "catkit-day"]
    stubs.verify()


def test_scheduled_action_validation(session):
    with pytest.raises(ValueError, match="cron"):
        scaling.put_scheduled_action(session, "ep1", "x", "every night", min_capacity=1)
    with pytest.raises(ValueError, match="min_capacity and/or max_capacity"):
        scaling.put_scheduled_action(session, "ep1", "x", "rate(1 day)")


def test_scaling_activities_frame_paginated(session, stubs):
    t = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def act(i, when, desc, status="Successful"):
        return {"ActivityId": f"a{i}", **TARGET, "Description": desc, "Cause": "monitor alarm X in state ALARM triggered policy p",
                "StartTime": when, "EndTime": when + timedelta(minutes=4), "StatusCode": status, "StatusMessage": "ok"}

    aas = stubs["application-autoscaling"]
    # AAS returns newest first; the helper sorts oldest first
    aas.add_response("describe_scaling_activities",
                     {"ScalingActivities": [act(3, t + timedelta(minutes=30), "Setting desired instance count to 2.")], "NextToken": "n"},
                     {**TARGET, "IncludeNotScaledActivities": False})
    aas.add_response("describe_scaling_activities",
                     {"ScalingActivities": [act(2, t + timedelta(minutes=10), "Setting desired instance count to 4."),
                                            act(1, t, "Attempting to scale due to alarm triggered", "Failed")]},
                     {**TARGET, "IncludeNotScaledActivities": False, "NextToken": "n"})
    frame = scaling.scaling_activities(session, "ep1")
    assert list(frame.columns) == scaling.ACTIVITY_COLUMNS
    assert list(frame["activity_id"]) == ["a1", "a2", "a3"]
    assert frame["desired_capacity"].tolist()[1:] == [4, 2]
    assert frame["desired_capacity"].isna().tolist() == [True, False, False]
    assert str(frame["start_time"].dt.tz) == "UTC"
    stubs.verify()


def test_scaling_activities_empty_frame_has_columns(session, stubs):
    stubs["application-autoscaling"].add_response("describe_scaling_activities", {"ScalingActivities": []})
    frame = scaling.scaling_activities(session, "ep1")
    assert frame.empty and list(frame.columns) == scaling.ACTIVITY_COLUMNS


def test_remove_scaling(session, stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": [{
        "PolicyARN": POLICY_ARN, "PolicyName": "p", **TARGET, "PolicyType": "TargetTrackingScaling",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}]}, {**TARGET})
    aas.add_response("delete_scaling_policy", {}, {**TARGET, "PolicyName": "p"})
    aas.add_response("describe_scheduled_actions", {"ScheduledActions": [{
        "ScheduledActionName": "catkit-night", "ScheduledActionARN": "arn:x", "ServiceNamespace": "sagemaker",
        "Schedule": "cron(0 20 * * ? *)", "ResourceId": RID, "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}]}, {**TARGET})
    aas.add_response("delete_scheduled_action", {}, {**TARGET, "ScheduledActionName": "catkit-night"})
    aas.add_response("describe_scalable_targets", {"ScalableTargets": [{
        **TARGET, "MinCapacity": 2, "MaxCapacity": 10, "RoleARN": "arn:aws:iam::123456789012:role/x",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC)}]},
        {"ServiceNamespace": "sagemaker", "ResourceIds": [RID], "ScalableDimension": TARGET["ScalableDimension"]})
    aas.add_response("deregister_scalable_target", {}, TARGET)
    assert scaling.remove_scaling(session, "ep1") == {"policies": 1, "scheduled_actions": 1, "targets": 1}
    stubs.verify()


def test_step_scaling_policy_and_alarm(session, stubs):
    aas, cw = stubs["application-autoscaling"], stubs["cloudwatch"]
    aas.add_response("register_scalable_target", {}, {**TARGET, "MinCapacity": 2, "MaxCapacity": 10})
    aas.add_response("put_scaling_policy", {"PolicyARN": POLICY_ARN}, {
        **TARGET, "PolicyName": "catkit-step-InvocationsPerInstance", "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [
                {"ScalingAdjustment": 1, "MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 500.0},
                {"ScalingAdjustment": 2, "MetricIntervalLowerBound": 500.0}],
            "Cooldown": 300, "MetricAggregationType": "Average"}})
    cw.add_response("put_metric_alarm", {}, {
        "AlarmName": "catkit-step-ep1-AllTraffic-catkit-step-InvocationsPerInstance", "AlarmDescription": ANY,
        "Namespace": "AWS/SageMaker", "MetricName": "InvocationsPerInstance",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep1"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1000.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "missing",
        "AlarmActions": [POLICY_ARN]})
    policy = scaling.configure_step_scaling(session, "ep1", threshold=1000, steps=[(0, 500, 1), (500, None, 2)])
    assert policy.alarms == ["catkit-step-ep1-AllTraffic-catkit-step-InvocationsPerInstance"]
    stubs.verify()
    with pytest.raises(ValueError, match="at least one"):
        scaling.configure_step_scaling(session, "ep1", threshold=1, steps=[])


def test_remove_scaling_deletes_catkit_step_alarms(session, stubs):
    aas, cw = stubs["application-autoscaling"], stubs["cloudwatch"]
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": [{
        "PolicyARN": POLICY_ARN, "PolicyName": "s", **TARGET, "PolicyType": "StepScaling",
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "Alarms": [{"AlarmName": "catkit-step-ep1-AllTraffic-s", "AlarmARN": "arn:a"},
                   {"AlarmName": "someone-elses", "AlarmARN": "arn:b"}]}]})
    aas.add_response("delete_scaling_policy", {}, {**TARGET, "PolicyName": "s"})
    cw.add_response("delete_alarms", {}, {"AlarmNames": ["catkit-step-ep1-AllTraffic-s"]})
    aas.add_response("describe_scheduled_actions", {"ScheduledActions": []})
    aas.add_response("describe_scalable_targets", {"ScalableTargets": []})
    assert scaling.remove_scaling(session, "ep1") == {"policies": 1, "scheduled_actions": 0, "targets": 0}
    stubs.verify()


def test_apply_config_sends_the_configs_requests(session, stubs):
    from catkit.autoscaling.config import NightSchedule, ScalingConfig

    config = ScalingConfig(min_capacity=3, max_capacity=6, target_value=4.0, metric="high_resolution",
                           night=NightSchedule(night_min=2, night_starts_hour=21))
    aas = stubs["application-autoscaling"]
    night, day = config.put_scheduled_action_args("ep1")
    for _ in range(2):  # apply_config, then the deprecated ScalingConfig.apply: the same requests
        aas.add_response("register_scalable_target", {}, config.register_scalable_target_args("ep1"))
        aas.add_response("put_scaling_policy", {"PolicyARN": POLICY_ARN}, config.put_scaling_policy_args("ep1"))
        aas.add_response("put_scheduled_action", {}, night)
        aas.add_response("put_scheduled_action", {}, day)
    assert scaling.apply_config(session, "ep1", config) == {"PolicyARN": POLICY_ARN}
    with pytest.warns(DeprecationWarning, match="apply_config"):
        assert config.apply(session, "ep1") == {"PolicyARN": POLICY_ARN}
    stubs.verify()
    assert night["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 6}
    assert day["Schedule"] == "cron(0 7 ? * MON-FRI *)"


def test_keyword_helpers_and_config_make_the_same_requests():
    from catkit.autoscaling.config import NightSchedule, ScalingConfig

    config = ScalingConfig()
    assert config.put_scaling_policy_args("ep1")["PolicyName"] == "catkit-SageMakerVariantInvocationsPerInstance"
    assert config.register_scalable_target_args("ep1") == {**TARGET, "MinCapacity": 2, "MaxCapacity": 10}
    actions = NightSchedule(night_min=2, night_max=2, timezone="Europe/Berlin").put_scheduled_action_args(
        "ep1", "AllTraffic", 2, 10)
    assert [a["ScheduledActionName"] for a in actions] == ["catkit-night", "catkit-day"]


def test_configure_scaling_warns_for_a_single_instance_night(session, stubs):
    from catkit.autoscaling.config import NightSchedule, ScalingConfig

    aas = stubs["application-autoscaling"]
    aas.add_response("register_scalable_target", {})
    aas.add_response("put_scaling_policy", {"PolicyARN": POLICY_ARN})
    aas.add_response("put_scheduled_action", {})
    aas.add_response("put_scheduled_action", {})
    with pytest.warns(HighAvailabilityWarning, match="night_min=1"):
        policy = scaling.configure_scaling(session, "ep1", ScalingConfig(night=NightSchedule(night_min=1)))
    assert policy.policy_arn == POLICY_ARN and policy.response["PolicyARN"] == POLICY_ARN
    stubs.verify()


def test_night_schedule_bounds_rejected_before_any_call(session):
    with pytest.raises(ValueError, match="night_max"):
        scaling.schedule_night_scaling(session, "ep1", night_min=3, night_max=2)
    with pytest.raises(ValueError, match="night_min"):
        scaling.schedule_night_scaling(session, "ep1", night_min=0)
