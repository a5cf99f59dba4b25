"""Accounts and regions are keys (two regions and two accounts side by side on one backend), and
the reset that test suites call between tests (``POST /_catkit/reset``, moto's ``/moto-api/reset``)."""

from __future__ import annotations

import time

import pytest
import requests
from botocore.exceptions import ClientError

from catkit.testing.backend import process_exited
from catkit.testing.endpoints import deploy_endpoint, upload_model
from catkit.testing.wait import wait_until

OTHER_ACCOUNT = "111122223333"


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(time_scale=1000)


def _clients(backend, service, region, key="AKIAIOSFODNN7EXAMPLE"):
    return backend.client(service, region_name=region, aws_access_key_id=key)


def test_two_regions_never_see_each_others_resources(backend):
    url = upload_model(backend)
    east, west = _clients(backend, "sagemaker", "us-east-1"), _clients(backend, "sagemaker", "eu-west-1")
    for sm, region in ((east, "us-east-1"), (west, "eu-west-1")):
        sm.create_model(ModelName="same-name", ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                        PrimaryContainer={"Image": "img", "ModelDataUrl": url})
        arn = sm.describe_model(ModelName="same-name")["ModelArn"]
        assert arn == f"arn:aws:sagemaker:{region}:123456789012:model/same-name"
    west.create_model(ModelName="west-only", ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                      PrimaryContainer={"Image": "img", "ModelDataUrl": url})
    assert [m["ModelName"] for m in east.list_models()["Models"]] == ["same-name"]
    assert {m["ModelName"] for m in west.list_models()["Models"]} == {"same-name", "west-only"}
    with pytest.raises(ClientError, match='arn:aws:sagemaker:us-east-1:123456789012:model/west-only'):
        east.describe_model(ModelName="west-only")
    # an endpoint serves in its region only; the runtime of another region does not know it
    deploy_endpoint(west, "regional", url)
    west_rt, east_rt = _clients(backend, "sagemaker-runtime", "eu-west-1"), _clients(
        backend, "sagemaker-runtime", "us-east-1")
    assert west_rt.invoke_endpoint(EndpointName="regional", Body=b"hi", ContentType="text/plain")["Body"].read()
    with pytest.raises(ClientError, match="Endpoint regional of account 123456789012 not found"):
        east_rt.invoke_endpoint(EndpointName="regional", Body=b"hi", ContentType="text/plain")
    assert east.list_endpoints()["Endpoints"] == []
    # Application Auto Scaling and CloudWatch too
    west_aas = _clients(backend, "application-autoscaling", "eu-west-1")
    target = west_aas.register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId="endpoint/regional/variant/AllTraffic",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", MinCapacity=1, MaxCapacity=2)
    assert ":eu-west-1:123456789012:scalable-target/" in target["ScalableTargetARN"]
    east_aas = _clients(backend, "application-autoscaling", "us-east-1")
    assert east_aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    for region in ("us-east-1", "eu-west-1"):
        _clients(backend, "cloudwatch", region).put_metric_alarm(
            AlarmName=f"alarm-{region}", Namespace="NS", MetricName="M", Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    alarms = _clients(backend, "cloudwatch", "eu-west-1").describe_alarms()["MetricAlarms"]
    assert [(a["AlarmName"], a["AlarmArn"].split(":")[3]) for a in alarms] == [("alarm-eu-west-1", "eu-west-1")]
    scopes = {(s["account_id"], s["region"]) for s in backend.info()["scopes"]}
    assert {("123456789012", "us-east-1"), ("123456789012", "eu-west-1")} <= scopes


def test_accounts_come_from_the_access_key(backend):
    url = upload_model(backend, bucket="acct-models")
    other = _clients(backend, "sagemaker", "us-east-1", key=OTHER_ACCOUNT)  # a 12-digit key is the account
    other.create_model(ModelName="mine", ExecutionRoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/R",
                       PrimaryContainer={"Image": "img", "ModelDataUrl": url})
    assert other.describe_model(ModelName="mine")["ModelArn"] == (
        f"arn:aws:sagemaker:us-east-1:{OTHER_ACCOUNT}:model/mine")
    assert "mine" not in {m["ModelName"] for m in _clients(backend, "sagemaker", "us-east-1").list_models()["Models"]}
    sts = _clients(backend, "sts", "us-east-1", key=OTHER_ACCOUNT)
    assert sts.get_caller_identity()["Account"] == OTHER_ACCOUNT
    iam = _clients(backend, "iam", "us-east-1", key=OTHER_ACCOUNT)
    assert iam.get_role(RoleName="SageMakerExecutionRole")["Role"]["Arn"].startswith(f"arn:aws:iam::{OTHER_ACCOUNT}:")
    # buckets: one global namespace, each with its owner's account and the region it was made in
    s3 = _clients(backend, "s3", "eu-west-1", key=OTHER_ACCOUNT)
    s3.create_bucket(Bucket="other-acct-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket="other-acct-eu")["LocationConstraint"] == "eu-west-1"
    assert "other-acct-eu" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    default_s3 = _clients(backend, "s3", "us-east-1")
    assert "other-acct-eu" not in [b["Name"] for b in default_s3.list_buckets()["Buckets"]]


def test_a_region_name_that_is_not_one_is_refused(backend):
    sm = _clients(backend, "sagemaker", "nowhere")
    with pytest.raises(ClientError, match="does not know the region 'nowhere'"):
        sm.list_models()


def test_other_regions_survive_a_restart(local_backend_factory):
    b = local_backend_factory(time_scale=1000)
    west = _clients(b, "sagemaker", "ap-southeast-2")
    west.create_model(ModelName="kept", ExecutionRoleArn="arn:aws:iam::123456789012:role/R",
                      PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/k.tar.gz"})
    b.restart()
    west = _clients(b, "sagemaker", "ap-southeast-2")
    assert west.describe_model(ModelName="kept")["ModelArn"].split(":")[3] == "ap-southeast-2"
    assert _clients(b, "sagemaker", "us-east-1").list_models()["Models"] == []


def test_reset_with_three_endpoints_running_takes_well_under_a_second(local_backend_factory):
    b = local_backend_factory(time_scale=1000)
    url = upload_model(b)
    regions = ("us-east-1", "eu-west-1", "us-west-2")
    for i, region in enumerate(regions):
        deploy_endpoint(_clients(b, "sagemaker", region), f"ep{i}", url, count=2 if i == 0 else 1, wait=False)
    for i, region in enumerate(regions):
        sm = _clients(b, "sagemaker", region)
        wait_until(lambda sm=sm, i=i: sm.describe_endpoint(EndpointName=f"ep{i}")["EndpointStatus"] == "InService",
                   timeout=90)
    pids = b.instance_pids("ep0")
    assert len(pids) == 2
    started = time.perf_counter()
    answer = b.reset()
    took = time.perf_counter() - started
    # Not a timing assertion on a loaded machine's speed, but the bound with a wide margin:
    # the reset kills processes instead of draining them, so it is milliseconds, not the 30 s grace.
    assert took < 1.0, f"reset took {took:.3f} s ({answer})"
    assert answer["status"] == "ok" and answer["endpoints"] == 3
    assert all(process_exited(p) for p in pids)
    for region in regions:
        assert _clients(b, "sagemaker", region).list_endpoints()["Endpoints"] == []
        assert _clients(b, "sagemaker", region).list_models()["Models"] == []
    assert b.client("s3").list_buckets()["Buckets"] == []
    # moto's own reset route does the same, and the backend serves again at once
    assert requests.post(b.url + "/moto-api/reset", timeout=10).json()["status"] == "ok"
    url = upload_model(b)
    deploy_endpoint(b.client("sagemaker"), "again", url)
    assert b.client("sagemaker").describe_endpoint(EndpointName="again")["EndpointStatus"] == "InService"
    assert b.client("iam").get_role(RoleName="SageMakerExecutionRole")
