"""End to end: real boto3 ``cloudwatch`` clients against a backend process, in each wire protocol.

botocore >= 1.38 speaks smithy RPC v2 CBOR to CloudWatch; older clients speak awsJson 1.0 or
query. A client is forced onto json/query by a copy of botocore's own CloudWatch model whose
``protocols`` list names only that protocol, found first on the loader's search path.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

CW_ONLY = ("catkit.autoscaling.metrics_store", "catkit.local.services.cloudwatch")
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]
PROTOCOLS = ("smithy-rpc-v2-cbor", "json", "query")


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(time_scale=60, components=CW_ONLY)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    """A botocore data dir per protocol, holding CloudWatch's model with only that protocol."""
    loader = botocore.session.get_session().get_component("data_loader")
    model = loader.load_service_model("cloudwatch", "service-2")
    version = model["metadata"]["apiVersion"]
    dirs = {}
    for protocol in PROTOCOLS:
        root = tmp_path_factory.mktemp(protocol.replace("-", "_"))
        target = root / "cloudwatch" / version
        target.mkdir(parents=True)
        doc = json.loads(json.dumps(model))
        doc["metadata"]["protocol"] = protocol
        doc["metadata"]["protocols"] = [protocol]
        (target / "service-2.json").write_text(json.dumps(doc))
        dirs[protocol] = root
    return dirs


def client_for(backend, model_dirs, protocol: str):
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(model_dirs[protocol]))
    client = boto3.Session(botocore_session=session).client(
        "cloudwatch",
        endpoint_url=backend.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="dummy-secret",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert client.meta.service_model.protocol == protocol
    return client


def emulated_now(backend) -> datetime:
    return datetime.fromtimestamp(backend.info()["now"], UTC)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_metric_data_round_trip(backend, model_dirs, protocol) -> None:
    cw = client_for(backend, model_dirs, protocol)
    ns = f"Custom/{protocol}"
    now = emulated_now(backend)
    at = now.replace(second=0, microsecond=0) - timedelta(minutes=5)
    cw.put_metric_data(
        Namespace=ns,
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": DIMS,
                "Values": [10.0, 20.0, 30.0],
                "Counts": [1.0, 8.0, 1.0],
                "Unit": "Milliseconds",
                "Timestamp": at + timedelta(seconds=5),
            },
            {
                "MetricName": "Errors",
                "Dimensions": DIMS,
                "Value": 2.0,
                "Timestamp": at + timedelta(seconds=5),
            },
        ],
    )
    stats = cw.get_metric_statistics(
        Namespace=ns,
        MetricName="Latency",
        Dimensions=DIMS,
        StartTime=at,
        EndTime=at + timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount"],
        ExtendedStatistics=["p50"],
    )
    [point] = stats["Datapoints"]
    assert point["Timestamp"] == at
    assert (point["SampleCount"], point["ExtendedStatistics"], point["Unit"]) == (
        10.0,
        {"p50": 20.0},
        "Milliseconds",
    )
    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "lat",
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": "Latency", "Dimensions": DIMS},
                    "Period": 60,
                    "Stat": "SampleCount",
                },
                "ReturnData": False,
            },
            {
                "Id": "err",
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": "Errors", "Dimensions": DIMS},
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {"Id": "rate", "Expression": "err / lat * 100", "Label": "Error rate"},
        ],
        StartTime=at,
        EndTime=at + timedelta(minutes=2),
    )
    [res] = data["MetricDataResults"]
    assert (res["Id"], res["Label"], res["Values"], res["Timestamps"], res["StatusCode"]) == (
        "rate",
        "Error rate",
        [20.0],
        [at],
        "Complete",
    )
    metrics = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "EndpointName", "Value": "ep"}])["Metrics"]
    assert sorted(m["MetricName"] for m in metrics) == ["Errors", "Latency"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_carry_cloudwatch_codes(backend, model_dirs, protocol) -> None:
    cw = client_for(backend, model_dirs, protocol)
    with pytest.raises(ClientError) as info:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "m", "Value": 1.0}])
    err = info.value.response
    assert err["Error"]["Code"] == "InvalidParameterValue"
    assert err["Error"]["Message"] == "The value AWS/SageMaker for parameter Namespace is invalid."
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    now = emulated_now(backend)
    with pytest.raises(ClientError) as info:
        cw.get_metric_statistics(
            Namespace="Custom/X",
            MetricName="m",
            StartTime=now - timedelta(days=2),
            EndTime=now,
            Period=60,
            Statistics=["Sum"],
        )
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "exceeds the limit of 1,440" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_alarm_api_shapes(backend, model_dirs, protocol) -> None:
    cw = client_for(backend, model_dirs, protocol)
    name = f"shape-{protocol}"
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="Custom/Shapes",
        MetricName="m",
        Dimensions=DIMS,
        Statistic="Average",
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=5.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching",
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    assert (alarm["Threshold"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"]) == (
        5.0,
        2,
        "notBreaching",
    )
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing")
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    # (at time scale 60 the next evaluation may already have moved it back, as on AWS)
    assert any(h["HistorySummary"].endswith("to ALARM") for h in history)
    assert cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [
        {"Key": "team", "Value": "ml"}
    ]
    assert [
        a["AlarmName"]
        for a in cw.describe_alarms_for_metric(Namespace="Custom/Shapes", MetricName="m", Dimensions=DIMS)[
            "MetricAlarms"
        ]
    ] == [name]
    cw.delete_alarms(AlarmNames=[name])
    assert cw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_alarm_is_evaluated_on_the_emulated_clock(backend) -> None:
    cw = backend.client("cloudwatch")
    now = emulated_now(backend)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=4)
    cw.put_metric_data(
        Namespace="Custom/Eval",
        MetricData=[
            {"MetricName": "Load", "Value": 150.0, "Timestamp": start + timedelta(minutes=i, seconds=1)}
            for i in range(4)
        ],
    )
    cw.put_metric_alarm(
        AlarmName="eval", Namespace="Custom/Eval", MetricName="Load", Statistic="Maximum", Period=60,
        EvaluationPeriods=2, Threshold=100.0, ComparisonOperator="GreaterThanThreshold",
    )
    deadline = time.monotonic() + 15
    state = None
    while time.monotonic() < deadline:
        state = cw.describe_alarms(AlarmNames=["eval"])["MetricAlarms"][0]["StateValue"]
        if state == "ALARM":
            break
        time.sleep(0.1)
    assert state == "ALARM"
    paginator = cw.get_paginator("describe_alarm_history")
    items = [h for page in paginator.paginate(AlarmName="eval") for h in page["AlarmHistoryItems"]]
    assert any(h["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM" for h in items)


def test_alarms_survive_restart(local_backend_factory) -> None:
    backend = local_backend_factory(components=CW_ONLY)
    cw = backend.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="durable", Namespace="Custom/D", MetricName="m", Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "k", "Value": "v"}],
    )
    cw.set_alarm_state(AlarmName="durable", StateValue="ALARM", StateReason="before restart")
    backend.restart()
    cw = backend.client("cloudwatch")
    [alarm] = cw.describe_alarms(AlarmNames=["durable"])["MetricAlarms"]
    assert (alarm["Period"], alarm["Threshold"]) == (300, 1.0)
    summaries = [
        h["HistorySummary"] for h in cw.describe_alarm_history(AlarmName="durable")["AlarmHistoryItems"]
    ]
    assert "Alarm updated from INSUFFICIENT_DATA to ALARM" in summaries
    assert cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [{"Key": "k", "Value": "v"}]


def test_large_put_metric_data_is_gzipped_by_botocore_and_accepted(backend) -> None:
    cw = backend.client("cloudwatch")
    dims = [{"Name": "Endpoint", "Value": "x" * 40}]
    cw.put_metric_data(
        Namespace="Custom/Big",
        MetricData=[{"MetricName": f"m{i}", "Dimensions": dims, "Value": 1.0} for i in range(1000)],
    )
    pages = cw.get_paginator("list_metrics").paginate(Namespace="Custom/Big")
    assert sum(len(p["Metrics"]) for p in pages) == 1000
