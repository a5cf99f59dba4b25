"""JSON 1.1 (SageMaker, Application Auto Scaling): botocore's client serializer -> our parser,
our serializer -> botocore's parser, and errors as boto3 sees them."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from catkit.local.errors import AwsError

from .conftest import strip_metadata

UTC = dt.UTC

ENDPOINT_CONFIG = {
    "EndpointConfigName": "cathat-config-1",
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": "cathat-model",
            "InitialInstanceCount": 2,
            "InstanceType": "ml.m5.large",
            "InitialVariantWeight": 0.75,
            "ContainerStartupHealthCheckTimeoutInSeconds": 600,
        },
        {
            "VariantName": "Canary",
            "ModelName": "cathat-model-v2",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.c5.xlarge",
            "InitialVariantWeight": 0.25,
        },
    ],
    "DataCaptureConfig": {
        "EnableCapture": True,
        "InitialSamplingPercentage": 50,
        "DestinationS3Uri": "s3://bucket/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "CsvContentTypes": ["text/csv"],
            "JsonContentTypes": ["application/json"],
        },
    },
    "Tags": [{"Key": "project", "Value": "catkit"}, {"Key": "owner", "Value": "ml-team"}],
}

DESCRIBE_ENDPOINT = {
    "EndpointName": "cathat",
    "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/cathat",
    "EndpointConfigName": "cathat-config-1",
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "DeployedImages": [
                {
                    "SpecifiedImage": "catkit/serving:latest",
                    "ResolvedImage": "catkit/serving@sha256:abc",
                    "ResolutionTime": dt.datetime(2026, 11, 26, 10, 0, 0, 250000, tzinfo=UTC),
                }
            ],
            "CurrentWeight": 1.0,
            "DesiredWeight": 1.0,
            "CurrentInstanceCount": 2,
            "DesiredInstanceCount": 3,
            "VariantStatus": [
                {
                    "Status": "Updating",
                    "StatusMessage": "Scaling out",
                    "StartTime": dt.datetime(2026, 11, 26, 10, 5, tzinfo=UTC),
                }
            ],
        }
    ],
    "EndpointStatus": "Updating",
    "CreationTime": dt.datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
    "LastModifiedTime": dt.datetime(2026, 11, 26, 10, 5, 30, 123000, tzinfo=UTC),
}


def test_create_endpoint_config_request_parses_to_the_same_params(make_client):
    client, rec = make_client("sagemaker", lambda op, p: {"EndpointConfigArn": "arn:aws:sagemaker:x"})
    out = client.create_endpoint_config(**ENDPOINT_CONFIG)
    assert rec.last.operation == "CreateEndpointConfig"
    assert rec.last.params == ENDPOINT_CONFIG
    assert isinstance(rec.last.params["ProductionVariants"][0]["InitialInstanceCount"], int)
    assert isinstance(rec.last.params["ProductionVariants"][0]["InitialVariantWeight"], float)
    assert strip_metadata(out) == {"EndpointConfigArn": "arn:aws:sagemaker:x"}
    assert rec.last.response.headers["Content-Type"] == "application/x-amz-json-1.1"


def test_describe_endpoint_response_timestamps_and_nested_lists(make_client):
    client, rec = make_client("sagemaker", lambda op, p: DESCRIBE_ENDPOINT)
    out = client.describe_endpoint(EndpointName="cathat")
    assert rec.last.params == {"EndpointName": "cathat"}
    assert strip_metadata(out) == DESCRIBE_ENDPOINT
    assert out["ResponseMetadata"]["RequestId"]


def test_response_accepts_epoch_seconds_and_naive_datetimes(make_client):
    result = {
        "EndpointName": "cathat",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/cathat",
        "EndpointStatus": "InService",
        "CreationTime": 1795000000.5,
        "LastModifiedTime": dt.datetime(2026, 11, 26, 9, 0),  # naive = UTC
    }
    client, _ = make_client("sagemaker", lambda op, p: result)
    out = client.describe_endpoint(EndpointName="cathat")
    assert out["CreationTime"] == dt.datetime.fromtimestamp(1795000000.5, tz=UTC)
    assert out["LastModifiedTime"] == dt.datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_request_timestamps_become_aware_utc_datetimes(make_client):
    client, rec = make_client("sagemaker", lambda op, p: {"Endpoints": []})
    start = dt.datetime(2026, 11, 26, 8, 30, 15, tzinfo=UTC)
    client.list_endpoints(CreationTimeAfter=start, MaxResults=10, StatusEquals="InService")
    params = rec.last.params
    assert params["CreationTimeAfter"] == start
    assert params["CreationTimeAfter"].tzinfo is not None
    assert params["MaxResults"] == 10


def test_put_scaling_policy_target_tracking_roundtrip(make_client):
    request = {
        "PolicyName": "invocations-tt",
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/cathat/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 70.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": 600,
            "ScaleOutCooldown": 300,
            "DisableScaleIn": False,
        },
    }
    result = {
        "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:abc:resource/sagemaker/x",
        "Alarms": [
            {
                "AlarmName": "TargetTracking-endpoint/cathat/variant/AllTraffic-AlarmHigh-1",
                "AlarmARN": "arn:1",
            },
            {
                "AlarmName": "TargetTracking-endpoint/cathat/variant/AllTraffic-AlarmLow-2",
                "AlarmARN": "arn:2",
            },
        ],
    }
    client, rec = make_client("application-autoscaling", lambda op, p: result)
    out = client.put_scaling_policy(**request)
    assert rec.last.raw.headers["X-Amz-Target"] == "AnyScaleFrontendService.PutScalingPolicy"
    assert rec.last.service == "application-autoscaling"
    assert rec.last.params == request
    assert rec.last.params["TargetTrackingScalingPolicyConfiguration"]["DisableScaleIn"] is False
    assert strip_metadata(out) == result


def test_step_scaling_policy_with_negative_and_float_bounds(make_client):
    request = {
        "PolicyName": "step",
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/cathat/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [
                {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1},
                {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 10.5, "ScalingAdjustment": 1},
                {"MetricIntervalLowerBound": 10.5, "ScalingAdjustment": 3},
            ],
            "Cooldown": 120,
            "MetricAggregationType": "Average",
        },
    }
    client, rec = make_client("application-autoscaling", lambda op, p: {"PolicyARN": "arn:p"})
    client.put_scaling_policy(**request)
    assert rec.last.params == request


def test_describe_scaling_activities_response(make_client):
    result = {
        "ScalingActivities": [
            {
                "ActivityId": "a-1",
                "ServiceNamespace": "sagemaker",
                "ResourceId": "endpoint/cathat/variant/AllTraffic",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "Description": "Setting desired instance count to 3.",
                "Cause": "monitor alarm X in state ALARM triggered policy Y",
                "StartTime": dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
                "EndTime": dt.datetime(2026, 11, 26, 10, 6, tzinfo=UTC),
                "StatusCode": "Successful",
                "NotScaledReasons": [
                    {"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 3, "CurrentCapacity": 3}
                ],
            }
        ]
    }
    client, _ = make_client("application-autoscaling", lambda op, p: result)
    out = client.describe_scaling_activities(ServiceNamespace="sagemaker", IncludeNotScaledActivities=True)
    assert strip_metadata(out) == result


def test_error_reaches_boto3_with_code_message_status_and_modeled_class(make_client):
    def handler(op, params):
        raise AwsError(
            "ValidationException",
            'Could not find endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/nope".',
        )

    client, _ = make_client("sagemaker", handler)
    with pytest.raises(ClientError) as info:
        client.describe_endpoint(EndpointName="nope")
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith('Could not find endpoint "arn:aws:sagemaker')
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_modeled_error_is_raised_as_its_exception_class(make_client):
    def handler(op, params):
        raise AwsError("ResourceLimitExceeded", "You have exceeded an Amazon SageMaker resource limit.")

    client, _ = make_client("sagemaker", handler)
    with pytest.raises(client.exceptions.ResourceLimitExceeded) as info:
        client.update_endpoint_weights_and_capacities(
            EndpointName="cathat",
            DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 50}],
        )
    assert info.value.response["Error"]["Message"] == "You have exceeded an Amazon SageMaker resource limit."


def test_application_autoscaling_object_not_found(make_client):
    def handler(op, params):
        raise AwsError("ObjectNotFoundException", "No scalable target registered for service namespace")

    client, _ = make_client("application-autoscaling", handler)
    with pytest.raises(client.exceptions.ObjectNotFoundException):
        client.delete_scaling_policy(
            PolicyName="p",
            ServiceNamespace="sagemaker",
            ResourceId="endpoint/x/variant/y",
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )


def test_server_side_validation_message_matches_aws(make_client):
    client, _ = make_client("sagemaker", lambda op, p: {}, validate=False)
    with pytest.raises(ClientError) as info:
        client.describe_endpoint(EndpointName="bad_name!")
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value 'bad_name!' at 'endpointName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_all_violations_are_reported_with_member_paths(make_client):
    client, _ = make_client("sagemaker", lambda op, p: {}, validate=False)
    with pytest.raises(ClientError) as info:
        client.create_endpoint_config(
            EndpointConfigName="x" * 64,
            ProductionVariants=[{"VariantName": "ok", "InstanceType": "ml.nope", "InitialInstanceCount": 0}],
        )
    message = info.value.response["Error"]["Message"]
    # The 64-character name breaks both the length limit and the pattern's {0,62}.
    assert message.startswith("4 validation errors detected: ")
    assert message.count("; Value ") == 3
    assert (
        f"Value '{'x' * 64}' at 'endpointConfigName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63"
    ) in message
    assert (
        "Value 'ml.nope' at 'productionVariants.1.member.instanceType' failed to satisfy constraint: "
        in message
    )
    assert "Member must satisfy enum value set: [" in message
    assert (
        "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    ) in message
