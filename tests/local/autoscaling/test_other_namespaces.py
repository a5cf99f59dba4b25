"""Application Auto Scaling for namespaces other than SageMaker variants answers like AWS does for
resources it cannot find: empty listings, refusal to register, ObjectNotFoundException."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

ECS = {"ServiceNamespace": "ecs", "ResourceId": "service/default/web", "ScalableDimension": "ecs:service:DesiredCount"}


@pytest.fixture(scope="module")
def aas(module_backend_factory):
    return module_backend_factory(time_scale=1000).client("application-autoscaling")


@pytest.mark.parametrize("namespace", ["ecs", "dynamodb", "lambda", "comprehend", "custom-resource"])
def test_describe_calls_list_nothing(aas, namespace):
    assert aas.describe_scalable_targets(ServiceNamespace=namespace)["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace=namespace)["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace=namespace)["ScheduledActions"] == []
    assert aas.describe_scaling_activities(ServiceNamespace=namespace)["ScalingActivities"] == []


def test_missing_targets_are_object_not_found_with_awss_text(aas):
    with pytest.raises(ClientError) as info:
        aas.put_scaling_policy(PolicyName="p", PolicyType="TargetTrackingScaling", **ECS,
                               TargetTrackingScalingPolicyConfiguration={
                                   "TargetValue": 50.0,
                                   "PredefinedMetricSpecification": {
                                       "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    err = info.value.response["Error"]
    assert err["Code"] == "ObjectNotFoundException"
    assert err["Message"] == ("No scalable target registered for service namespace: ecs, resource ID: "
                              "service/default/web, scalable dimension: ecs:service:DesiredCount")
    with pytest.raises(ClientError, match="ObjectNotFoundException"):
        aas.deregister_scalable_target(**ECS)


def test_registering_a_resource_that_does_not_exist_is_refused(aas):
    with pytest.raises(ClientError) as info:
        aas.register_scalable_target(MinCapacity=1, MaxCapacity=2, **ECS)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="Unsupported service namespace, resource type or scalable dimension"):
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="table/t",
                                     ScalableDimension="dynamodb:table:ReadCapacityUnits", MinCapacity=1, MaxCapacity=2)
