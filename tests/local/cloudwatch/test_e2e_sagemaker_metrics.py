"""Integration: SageMaker invocations recorded by the endpoint manager read back through CloudWatch.

A full backend (all components), one echo endpoint, a few InvokeEndpoint calls over the wire, then
GetMetricStatistics / GetMetricData / ListMetrics on ``AWS/SageMaker`` with real boto3 clients.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catkit.testing import deploy_endpoint, upload_model

DIMS = [{"Name": "EndpointName", "Value": "cw-echo"}, {"Name": "VariantName", "Value": "AllTraffic"}]


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    b = module_backend_factory(time_scale=1000)
    d = deploy_endpoint(b.client("sagemaker"), "cw-echo", upload_model(b), instance_type="ml.m5.xlarge")
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    return b


def test_invocations_show_up_in_cloudwatch(backend) -> None:
    rt, cw = backend.client("sagemaker-runtime"), backend.client("cloudwatch")
    for _ in range(5):
        rt.invoke_endpoint(EndpointName="cw-echo", Body=b"{}", ContentType="application/json")
    now = datetime.fromtimestamp(backend.info()["now"], UTC)
    window = {"StartTime": now - timedelta(minutes=30), "EndTime": now + timedelta(minutes=1)}
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="Invocations",
        Dimensions=DIMS,
        Period=60,
        Statistics=["Sum"],
        **window,
    )
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 5.0
    latency = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "lat",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SageMaker",
                        "MetricName": "ModelLatency",
                        "Dimensions": DIMS,
                    },
                    "Period": 3600,
                    "Stat": "p50",
                },
            }
        ],
        **window,
    )
    [res] = latency["MetricDataResults"]
    assert res["Values"] and res["Values"][0] > 0
    names = {
        m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=DIMS[:1])["Metrics"]
    }
    assert {"Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency"} <= names
