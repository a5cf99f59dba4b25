"""Serverless variants through boto3 against a real local backend (time scale 120).

Validation as AWS (memory sizes in 1 GB steps, ProvisionedConcurrency <= MaxConcurrency, no
instance fields); a cold start on the first call (ModelSetupTime: the emulated set-up plus the real start), warm calls
after it, a new cold start after the idle release; ThrottlingException beyond MaxConcurrency;
provisioned concurrency kept warm and registered as sagemaker:variant:DesiredProvisionedConcurrency.
"""

from __future__ import annotations

import threading
import time

import botocore.exceptions
import pytest

from catkit.testing import echo_archive

pytestmark = pytest.mark.slow

SCALE = 120.0
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"
FAST = {"Delay": 0.2, "MaxAttempts": 300}
IDLE_S = 600  # emulated seconds before an idle worker is released (5 real seconds at 120x)


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    b = module_backend_factory(time_scale=SCALE, env={"CATKIT_SERVERLESS_IDLE_SECONDS": str(IDLE_S)})
    s3 = b.client("s3")
    s3.create_bucket(Bucket="sls-bucket")
    s3.put_object(Bucket="sls-bucket", Key="echo/model.tar.gz", Body=echo_archive())
    sm = b.client("sagemaker")
    sm.create_model(ModelName="sls-m", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://sls-bucket/echo/model.tar.gz"})
    for name, cfg in {"sls": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                      "warm": {"MemorySizeInMB": 1024, "MaxConcurrency": 3, "ProvisionedConcurrency": 1}}.items():
        sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "sls-m", "ServerlessConfig": cfg}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    for name in ("sls", "warm"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)
    return b


def _setup_times(b, endpoint: str) -> list[float]:
    now = float(b.info()["now"])
    points = b.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelSetupTime", StartTime=now - 3 * 3600, EndTime=now + 60,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, Statistics=["SampleCount", "Maximum"],
    )["Datapoints"]
    return [p["Maximum"] for p in points for _ in range(int(p["SampleCount"]))]


@pytest.mark.parametrize("variant, message", [
    ({"ServerlessConfig": {"MemorySizeInMB": 1536, "MaxConcurrency": 1}}, "1 GB steps"),
    ({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}},
     "less than or equal to MaxConcurrency"),
    ({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2}, "InstanceType": "ml.m5.large"},
     "cannot set InstanceType"),
])
def test_serverless_config_validation(backend, variant, message):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        backend.client("sagemaker").create_endpoint_config(
            EndpointConfigName="bad-sls", ProductionVariants=[{"VariantName": "v", "ModelName": "sls-m", **variant}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert message in e.value.response["Error"]["Message"]


def test_describe_shows_serverless_config(backend):
    pv = backend.client("sagemaker").describe_endpoint(EndpointName="sls")["ProductionVariants"][0]
    assert pv["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert "CurrentInstanceCount" not in pv


def test_cold_start_then_warm_then_cold_after_idle(backend):
    rt = backend.client("sagemaker-runtime")
    assert _setup_times(backend, "sls") == []
    t0 = time.monotonic()
    assert rt.invoke_endpoint(EndpointName="sls", Body=b"one", ContentType="text/plain")["Body"].read() == b"one"
    cold_real = time.monotonic() - t0
    setup = _setup_times(backend, "sls")
    assert len(setup) == 1 and setup[0] >= 5e6  # at least the emulated 5 s container setup, in microseconds
    # ... plus the process start in real seconds, not scaled by the time scale (at 120x a one-second
    # start would otherwise read as two emulated minutes).
    assert setup[0] <= 5e6 + cold_real * 1e6, (setup[0], cold_real)
    print(f"cold start: ModelSetupTime {setup[0] / 1e6:.1f} emulated s, first call {cold_real:.2f} real s")
    rt.invoke_endpoint(EndpointName="sls", Body=b"two", ContentType="text/plain")
    assert len(_setup_times(backend, "sls")) == 1  # warm
    start = float(backend.info()["now"])
    while float(backend.info()["now"]) < start + IDLE_S + 30:  # the idle worker is released
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while len(_setup_times(backend, "sls")) < 2:
        rt.invoke_endpoint(EndpointName="sls", Body=b"three", ContentType="text/plain")
        assert time.monotonic() < deadline, "no cold start after the idle period"


def test_throttling_beyond_max_concurrency(backend):
    rt = backend.client("sagemaker-runtime")
    results: list[str] = []
    barrier = threading.Barrier(3)

    def call() -> None:
        barrier.wait()
        try:
            rt.invoke_endpoint(EndpointName="sls", Body=b"3", ContentType="application/x-sleep")
            results.append("ok")
        except botocore.exceptions.ClientError as e:
            results.append(e.response["Error"]["Code"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == ["ThrottlingException", "ok", "ok"]


def test_provisioned_concurrency_is_warm_and_scalable(backend):
    rt, aas = backend.client("sagemaker-runtime"), backend.client("application-autoscaling")
    rt.invoke_endpoint(EndpointName="warm", Body=b"w", ContentType="text/plain")
    assert _setup_times(backend, "warm") == []  # the provisioned worker was already up
    rid = "endpoint/warm/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, MinCapacity=1, MaxCapacity=3,
                                 ScalableDimension="sagemaker:variant:DesiredProvisionedConcurrency")
    with pytest.raises(botocore.exceptions.ClientError):
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, MinCapacity=1, MaxCapacity=3,
                                     ScalableDimension="sagemaker:variant:DesiredInstanceCount")
    aas.put_scaling_policy(
        PolicyName="pc", ServiceNamespace="sagemaker", ResourceId=rid,
        ScalableDimension="sagemaker:variant:DesiredProvisionedConcurrency", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 0.5,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"},
        },
    )
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["pc"]


def test_serverless_payload_limit_is_4_mb(backend):
    rt = backend.client("sagemaker-runtime")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint(EndpointName="sls", Body=b"x" * (4 * 1024 * 1024 + 1), ContentType="text/plain")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "4 MB" in e.value.response["Error"]["Message"]
