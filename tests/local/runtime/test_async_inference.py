"""Asynchronous inference through boto3 against a real local backend (time scale 120).

InvokeEndpointAsync reads its input from S3, answers InferenceId/OutputLocation/FailureLocation at
once, and the result appears at S3OutputPath (a model failure at S3FailurePath). Scale to zero:
MinCapacity=0, target tracking on ApproximateBacklogSizePerInstance and a step policy on a
HasBacklogWithoutCapacity alarm take the variant 1 -> 0 -> 1 -> 0 on the emulated clock, the
AWS-documented pattern (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html).
"""

from __future__ import annotations

import time

import botocore.exceptions
import pytest

from catkit.testing import echo_archive

pytestmark = pytest.mark.slow

SCALE = 120.0
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"
FAST = {"Delay": 0.2, "MaxAttempts": 300}
TOPIC = "arn:aws:sns:us-east-1:123456789012:async-done"


def _async_endpoint(b, name: str, count: int = 1) -> None:
    sm = b.client("sagemaker")
    sm.create_model(ModelName=f"{name}-m", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://aio-bucket/echo/model.tar.gz"})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-c",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"{name}-m",
                             "InitialInstanceCount": count, "InstanceType": "ml.m5.xlarge"}],
        AsyncInferenceConfig={
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
            "OutputConfig": {"S3OutputPath": f"s3://aio-bucket/{name}/out", "S3FailurePath": f"s3://aio-bucket/{name}/fail",
                             "NotificationConfig": {"SuccessTopic": TOPIC, "ErrorTopic": TOPIC}},
        },
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    b = module_backend_factory(time_scale=SCALE)
    s3 = b.client("s3")
    s3.create_bucket(Bucket="aio-bucket")
    s3.put_object(Bucket="aio-bucket", Key="echo/model.tar.gz", Body=echo_archive())
    _async_endpoint(b, "asy")
    _async_endpoint(b, "zero")
    for name in ("asy", "zero"):
        b.client("sagemaker").get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    return b


def _wait_object(s3, url: str, deadline_s: float = 60.0) -> bytes:
    bucket, key = url[5:].split("/", 1)
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except botocore.exceptions.ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _exists(s3, url: str) -> bool:
    bucket, key = url[5:].split("/", 1)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except botocore.exceptions.ClientError:
        return False


def test_async_success_writes_output(backend):
    s3, rt = backend.client("s3"), backend.client("sagemaker-runtime")
    s3.put_object(Bucket="aio-bucket", Key="in/a.txt", Body=b"hello async")
    r = rt.invoke_endpoint_async(EndpointName="asy", InputLocation="s3://aio-bucket/in/a.txt", ContentType="text/plain")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202
    iid = r["InferenceId"]
    assert r["OutputLocation"] == f"s3://aio-bucket/asy/out/{iid}.out"
    assert r["FailureLocation"] == f"s3://aio-bucket/asy/fail/{iid}-error.out"
    assert _wait_object(s3, r["OutputLocation"]) == b"hello async"
    assert not _exists(s3, r["FailureLocation"])
    desc = backend.client("sagemaker").describe_endpoint(EndpointName="asy")
    assert desc["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 2
    # inline Body and a caller's InferenceId
    r2 = rt.invoke_endpoint_async(EndpointName="asy", Body=b"inline", ContentType="text/plain", InferenceId="mine-1")
    assert r2["InferenceId"] == "mine-1"
    assert _wait_object(s3, r2["OutputLocation"]) == b"inline"


def test_async_failure_goes_to_failure_path(backend):
    s3, rt = backend.client("s3"), backend.client("sagemaker-runtime")
    s3.put_object(Bucket="aio-bucket", Key="in/bad.txt", Body=b"bad input")
    r = rt.invoke_endpoint_async(EndpointName="asy", InputLocation="s3://aio-bucket/in/bad.txt",
                                 ContentType="application/x-fail")
    text = _wait_object(s3, r["FailureLocation"]).decode()
    assert "boom: bad input" in text
    assert not _exists(s3, r["OutputLocation"])


def test_async_refusals(backend):
    rt = backend.client("sagemaker-runtime")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint_async(EndpointName="asy", InputLocation="s3://aio-bucket/in/missing.txt")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint_async(EndpointName="nope", InputLocation="s3://aio-bucket/in/a.txt")
    assert "not found" in e.value.response["Error"]["Message"]


def _count(backend, name: str) -> int:
    pv = backend.client("sagemaker").describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    return int(pv["CurrentInstanceCount"])


def _wait_count(backend, name: str, n: int, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while _count(backend, name) != n:
        assert time.monotonic() < deadline, f"{name} never reached {n} instances"
        time.sleep(0.2)


def test_scale_to_zero_and_back(backend):
    """0 -> 1 -> 0: target tracking on backlog per instance scales in to zero; a request queued at
    zero raises HasBacklogWithoutCapacity, whose alarm's step policy adds one instance."""
    aas, cw = backend.client("application-autoscaling"), backend.client("cloudwatch")
    rid = "endpoint/zero/variant/AllTraffic"
    dim = "sagemaker:variant:DesiredInstanceCount"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                 MinCapacity=0, MaxCapacity=2)
    aas.put_scaling_policy(
        PolicyName="backlog", ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 2.0,
            "CustomizedMetricSpecification": {"MetricName": "ApproximateBacklogSizePerInstance",
                                              "Namespace": "AWS/SageMaker",
                                              "Dimensions": [{"Name": "EndpointName", "Value": "zero"}],
                                              "Statistic": "Average"},
            "ScaleInCooldown": 60, "ScaleOutCooldown": 60,
        },
    )
    step = aas.put_scaling_policy(
        PolicyName="from-zero", ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum",
                                        "Cooldown": 60,
                                        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]},
    )
    cw.put_metric_alarm(
        AlarmName="zero-has-backlog", Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity",
        Dimensions=[{"Name": "EndpointName", "Value": "zero"}], Statistic="Maximum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing", AlarmActions=[step["PolicyARN"]],
    )
    _wait_count(backend, "zero", 0)  # no backlog: target tracking scales in to MinCapacity 0
    s3, rt = backend.client("s3"), backend.client("sagemaker-runtime")
    s3.put_object(Bucket="aio-bucket", Key="in/z.txt", Body=b"wake up")
    r = rt.invoke_endpoint_async(EndpointName="zero", InputLocation="s3://aio-bucket/in/z.txt", ContentType="text/plain")
    assert _count(backend, "zero") == 0  # queued, not refused
    assert _wait_object(s3, r["OutputLocation"], 120.0) == b"wake up"  # the step policy brought one back
    acts = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingActivities"]
    assert any("from-zero" in a["Cause"] for a in acts)
    _wait_count(backend, "zero", 0)  # and back to zero once the backlog is gone
    now = float(backend.info()["now"])
    stats = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="HasBacklogWithoutCapacity",
        Dimensions=[{"Name": "EndpointName", "Value": "zero"}], StartTime=now - 6 * 3600, EndTime=now + 60, Period=60, Statistics=["Maximum"],
    )["Datapoints"]
    assert max(d["Maximum"] for d in stats) == 1.0
