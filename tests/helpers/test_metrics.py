"""metrics: GetMetricData -> tidy DataFrame (1-minute and high-resolution), custom metric publisher."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY

from catkit import metrics as m

T = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
DIMS = [{"Name": "EndpointName", "Value": "ep1"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def _query(qid, ns, name, stat, period=60):
    return {"Id": qid, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name, "Dimensions": DIMS},
                                      "Period": period, "Stat": stat}, "ReturnData": True}


def test_endpoint_metrics_tidy_frame_with_pagination(session, stubs):
    cw = stubs["cloudwatch"]
    queries = [_query("q0", "AWS/SageMaker", "Invocations", "Sum"),
               _query("q1", "AWS/SageMaker", "ModelLatency", "Average"),
               _query("q2", "AWS/SageMaker", "ModelLatency", "p50"),
               _query("q3", "AWS/SageMaker", "ModelLatency", "p90"),
               _query("q4", "AWS/SageMaker", "ModelLatency", "p99")]
    expected = {"MetricDataQueries": queries, "StartTime": T - timedelta(minutes=10), "EndTime": T,
                "ScanBy": "TimestampAscending"}
    cw.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0", "Label": "Invocations", "Timestamps": [T - timedelta(minutes=2), T - timedelta(minutes=1)],
         "Values": [120.0, 60.0], "StatusCode": "Complete"},
        {"Id": "q4", "Label": "p99", "Timestamps": [T - timedelta(minutes=1)], "Values": [25000.0], "StatusCode": "Complete"},
    ], "NextToken": "more"}, expected)
    cw.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0", "Label": "Invocations", "Timestamps": [T], "Values": [30.0], "StatusCode": "Complete"},
    ]}, {**expected, "NextToken": "more"})
    frame = m.endpoint_metrics(session, "ep1", metrics=["Invocations", "ModelLatency"], start=T - timedelta(minutes=10), end=T)
    assert list(frame.columns) == m.COLUMNS
    assert len(frame) == 4
    inv = frame[frame["metric"] == "Invocations"]
    assert inv["value"].tolist() == [120.0, 60.0, 30.0]
    assert inv["timestamp"].is_monotonic_increasing and str(inv["timestamp"].dt.tz) == "UTC"
    assert set(frame["endpoint"]) == {"ep1"} and set(frame["variant"]) == {"AllTraffic"}
    assert frame[frame["stat"] == "p99"]["value"].tolist() == [25000.0]
    assert set(frame["period"]) == {60}
    wide = m.wide(frame)
    assert "Invocations:Sum" in wide.columns and "ModelLatency:p99" in wide.columns
    stubs.verify()


def test_high_resolution_metrics_use_10s_period(session, stubs):
    stubs["cloudwatch"].add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "q0", "Timestamps": [T, T + timedelta(seconds=10)], "Values": [3.0, 5.0], "StatusCode": "Complete"}]},
        {"MetricDataQueries": [_query("q0", "AWS/SageMaker", "ConcurrentRequestsPerModel", "Average", 10),
                               _query("q1", "AWS/SageMaker", "ConcurrentRequestsPerModel", "Maximum", 10)],
         "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"})
    frame = m.high_resolution_metrics(session, "ep1", start=T, end=T + timedelta(minutes=1))
    assert frame["value"].tolist() == [3.0, 5.0] and set(frame["period"]) == {10}


def test_custom_tuple_metric_and_unknown_name(session, stubs):
    stubs["cloudwatch"].add_response("get_metric_data", {"MetricDataResults": []},
                                     {"MetricDataQueries": [_query("q0", "/aws/sagemaker/Endpoints", "GPUUtilization", "Maximum")],
                                      "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"})
    frame = m.endpoint_metrics(session, "ep1", metrics=[("/aws/sagemaker/Endpoints", "GPUUtilization", "Maximum")],
                               start=T, end=T + timedelta(hours=1))
    assert frame.empty and list(frame.columns) == m.COLUMNS
    with pytest.raises(ValueError, match="unknown metric 'Latency'"):
        m.endpoint_metrics(session, "ep1", metrics=["Latency"], start=T, end=T + timedelta(hours=1))
    with pytest.raises(ValueError, match="before end"):
        m.endpoint_metrics(session, "ep1", start=T, end=T)


def test_publish_metric_high_resolution(session, stubs):
    stubs["cloudwatch"].add_response("put_metric_data", {}, {"Namespace": "catkit/Custom", "MetricData": [{
        "MetricName": "QueueDepth", "Dimensions": [{"Name": "EndpointName", "Value": "ep1"}], "Timestamp": T,
        "Value": 7.0, "Unit": "Count", "StorageResolution": 1}]})
    m.publish_metric(session, "QueueDepth", 7, dimensions={"EndpointName": "ep1"}, timestamp=T)
    stubs.verify()


def test_publisher_batches_by_1000(session, stubs):
    cw = stubs["cloudwatch"]
    cw.add_response("put_metric_data", {})
    cw.add_response("put_metric_data", {})
    pub = m.MetricPublisher(session, "X")
    for i in range(1500):
        pub.put(i, timestamp=T)
    assert pub.flush() == 1500 and pub.sent == 1500
    stubs.verify()


def test_publisher_background_thread_samples_until_stopped(session, monkeypatch):
    sent: list[list[dict]] = []
    got_two = threading.Event()

    def fake_put(Namespace, MetricData):
        sent.append(MetricData)
        if len(sent) >= 2:
            got_two.set()
        return {}

    monkeypatch.setattr(session.cloudwatch, "put_metric_data", fake_put)
    values = iter(range(1000))
    pub = m.MetricPublisher(session, "Concurrency").start(lambda: next(values), interval=0.01)
    assert got_two.wait(10)
    total = pub.stop()
    assert total == sum(len(b) for b in sent) >= 2
    assert [b[0]["Value"] for b in sent[:2]] == [0.0, 1.0]
    assert all(b[0]["StorageResolution"] == 1 for b in sent)
    with pytest.raises(ValueError, match="storage_resolution"):
        m.MetricPublisher(session, "X", storage_resolution=5)


@pytest.mark.parametrize("period", [0, 7, 45, 90])
def test_invalid_period_rejected(session, period):
    with pytest.raises(ValueError, match="multiple of 60"):
        m.endpoint_metrics(session, "ep1", period=period, start=T, end=T + timedelta(hours=1))
