"""Integration: SageMaker invocations recorded by the endpoint manager read back through CloudWatch.

A full backend (all components), one echo endpoint, a few InvokeEndpoint calls over the wire, then
GetMetricStatistics / GetMetricData / ListMetrics on ``AWS/SageMaker`` with real boto3 clients.
"""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

INFERENCE = b"""
def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    return body, accept or "application/octet-stream"
"""
DIMS = [{"Name": "EndpointName", "Value": "cw-echo"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(INFERENCE)
        tar.addfile(info, io.BytesIO(INFERENCE))
    return buf.getvalue()


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    b = module_backend_factory(time_scale=1000)
    s3 = b.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="echo/model.tar.gz", Body=_archive())
    sm = b.client("sagemaker")
    sm.create_model(
        ModelName="cw-echo-m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
        PrimaryContainer={
            "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1",
            "ModelDataUrl": "s3://models/echo/model.tar.gz",
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName="cw-echo-c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "cw-echo-m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="cw-echo", EndpointConfigName="cw-echo-c")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="cw-echo", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
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
