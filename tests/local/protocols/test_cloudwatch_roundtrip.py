"""CloudWatch over all three protocols botocore has used for it: RPC v2 CBOR (current),
awsJson 1.0 and query. Each test runs once per protocol with botocore's own client."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from catkit.local.errors import AwsError

from .conftest import as_sent, strip_metadata

UTC = dt.UTC
PROTOCOLS = ["smithy-rpc-v2-cbor", "json", "query"]
T0 = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
VARIANT_DIMS = [{"Name": "EndpointName", "Value": "cathat"}, {"Name": "VariantName", "Value": "AllTraffic"}]

METRIC_DATA = {
    "Namespace": "Catkit/Load",
    "MetricData": [
        {
            "MetricName": "Latency",
            "Dimensions": VARIANT_DIMS,
            "Timestamp": T0 + dt.timedelta(seconds=1, milliseconds=250),
            "Values": [12.5, 14.0, 100.25],
            "Counts": [3.0, 1.0, 2.0],
            "Unit": "Milliseconds",
            "StorageResolution": 1,
        },
        {
            "MetricName": "Requests",
            "Timestamp": T0,
            "Value": 42.0,
            "Unit": "Count",
            "StorageResolution": 60,
        },
        {
            "MetricName": "Summary",
            "Timestamp": T0,
            "StatisticValues": {"SampleCount": 10.0, "Sum": 55.0, "Minimum": 1.0, "Maximum": 10.0},
        },
    ],
}


@pytest.fixture(params=PROTOCOLS)
def protocol(request) -> str:
    return request.param


def test_put_metric_data(make_client, protocol):
    client, rec = make_client("cloudwatch", lambda op, p: None, protocol=protocol)
    out = client.put_metric_data(**METRIC_DATA)
    assert rec.last.service == "cloudwatch"  # signed as "monitoring"
    assert rec.last.protocol == protocol
    assert rec.last.operation == "PutMetricData"
    assert rec.last.params == as_sent(METRIC_DATA, protocol)
    first = rec.last.params["MetricData"][0]
    assert first["Timestamp"].tzinfo is not None
    assert isinstance(first["StorageResolution"], int)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_put_metric_data_gzip_compressed_body(make_client, protocol):
    # botocore gzips PutMetricData bodies over 10 KB (requestcompression trait).
    data = [{"MetricName": f"M{i}", "Value": float(i), "Timestamp": T0} for i in range(400)]
    client, rec = make_client("cloudwatch", lambda op, p: None, protocol=protocol)
    client.put_metric_data(Namespace="Catkit/Big", MetricData=data)
    assert rec.last.raw.headers.get("Content-Encoding") == "gzip"
    assert rec.last.params["MetricData"] == data


def test_get_metric_data_timestamps_lists(make_client, protocol):
    request = {
        "MetricDataQueries": [
            {
                "Id": "inv",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "Invocations",
                        "Dimensions": [{"Name": "EndpointName", "Value": "cathat"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            },
            {"Id": "rate", "Expression": "inv / 60", "Label": "per second", "ReturnData": False},
        ],
        "StartTime": T0,
        "EndTime": T0 + dt.timedelta(minutes=5),
        "ScanBy": "TimestampAscending",
        "MaxDatapoints": 1000,
    }
    result = {
        "MetricDataResults": [
            {
                "Id": "inv",
                "Label": "Invocations",
                "Timestamps": [T0 + dt.timedelta(minutes=i) for i in range(3)],
                "Values": [10.0, 0.0, 7.5],
                "StatusCode": "Complete",
            },
            {
                "Id": "rate",
                "Label": "per second",
                "Timestamps": [],
                "Values": [],
                "StatusCode": "PartialData",
            },
        ],
        "Messages": [{"Code": "Info", "Value": "partial"}],
        "NextToken": "tok",
    }
    client, rec = make_client("cloudwatch", lambda op, p: result, protocol=protocol)
    out = client.get_metric_data(**request)
    assert rec.last.params == request
    assert strip_metadata(out) == result  # empty lists survive, even as empty XML elements


def test_describe_alarms(make_client, protocol):
    alarm = {
        "AlarmName": "TargetTracking-endpoint/cathat/variant/AllTraffic-AlarmHigh-1",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TargetTracking-1",
        "AlarmDescription": "DO NOT EDIT OR DELETE.",
        "AlarmConfigurationUpdatedTimestamp": T0,
        "ActionsEnabled": True,
        "OKActions": [],
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:p"],
        "InsufficientDataActions": [],
        "StateValue": "ALARM",
        "StateReason": "Threshold Crossed: 3 datapoints [80.0, 75.0, 90.0] were greater than the threshold (70.0).",
        "StateReasonData": '{"version":"1.0"}',
        "StateUpdatedTimestamp": T0 + dt.timedelta(minutes=3, milliseconds=5),
        "MetricName": "InvocationsPerInstance",
        "Namespace": "AWS/SageMaker",
        "Statistic": "Sum",
        "Dimensions": VARIANT_DIMS,
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 3,
        "Threshold": 70.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "missing",
        "StateTransitionedTimestamp": T0,
    }
    client, rec = make_client(
        "cloudwatch", lambda op, p: {"MetricAlarms": [alarm], "CompositeAlarms": []}, protocol=protocol
    )
    out = client.describe_alarms(AlarmNamePrefix="TargetTracking-", StateValue="ALARM", MaxRecords=50)
    assert rec.last.params == {"AlarmNamePrefix": "TargetTracking-", "StateValue": "ALARM", "MaxRecords": 50}
    assert strip_metadata(out) == {"MetricAlarms": [alarm], "CompositeAlarms": []}


def test_modeled_error_with_query_compatible_code(make_client, protocol):
    def handler(op, params):
        raise AwsError("ResourceNotFound", "Alarm nope not found", 404)

    client, _ = make_client("cloudwatch", handler, protocol=protocol)
    with pytest.raises(client.exceptions.ResourceNotFound) as info:
        client.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="manual")
    response = info.value.response
    assert response["Error"]["Code"] == "ResourceNotFound"
    assert response["Error"]["Message"] == "Alarm nope not found"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_invalid_parameter_combination(make_client, protocol):
    def handler(op, params):
        raise AwsError(
            "InvalidParameterCombination",
            "At least one of the parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues "
            "must be specified.",
        )

    client, _ = make_client("cloudwatch", handler, protocol=protocol)
    with pytest.raises(client.exceptions.InvalidParameterCombinationException) as info:
        client.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m"}])
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "MetricData.member.1.Value" in info.value.response["Error"]["Message"]


def test_missing_parameter_uses_query_paths(make_client, protocol):
    client, _ = make_client("cloudwatch", lambda op, p: None, protocol=protocol, validate=False)
    with pytest.raises(client.exceptions.MissingRequiredParameterException) as info:
        client.put_metric_data(
            Namespace="N",
            MetricData=[
                {"MetricName": "ok", "Value": 1.0},
                {"MetricName": "m", "Dimensions": [{"Name": "EndpointName", "Value": ""}], "Value": 1.0},
            ],
        )
    assert info.value.response["Error"]["Code"] == "MissingParameter"
    assert info.value.response["Error"]["Message"] == (
        "The parameter MetricData.member.2.Dimensions.member.1.Value is required."
    )


def test_too_long_value_is_invalid_parameter_value(make_client, protocol):
    client, _ = make_client("cloudwatch", lambda op, p: None, protocol=protocol, validate=False)
    with pytest.raises(ClientError) as info:
        client.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m" * 256, "Value": 1.0}])
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert info.value.response["Error"]["Message"] == (
        "The parameter MetricData.member.1.MetricName must be shorter than 256 characters."
    )
