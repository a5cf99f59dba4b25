"""End to end with real boto3 clients against a local backend process: the SageMaker control plane,
waiters, paginators, InvokeEndpoint over the wire, restart and backend crash."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path

import botocore.exceptions
import psutil
import pytest

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
FAST = {"Delay": 0.2, "MaxAttempts": 300}

INFERENCE = b'''
def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    if content_type == "application/x-fail":
        raise RuntimeError("no hats allowed")
    return body, accept or "application/octet-stream"
'''


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
    return b


def _deploy(sm, name: str, count: int = 1, url: str = "s3://models/echo/model.tar.gz") -> None:
    sm.create_model(ModelName=f"{name}-m", ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
                    PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1",
                                      "ModelDataUrl": url})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": count,
        "InstanceType": "ml.m5.xlarge"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c", Tags=[{"Key": "k", "Value": "v"}])


def _instance_pids(home: Path, name: str) -> list[int]:
    pids = []
    for ready in (home / "instances" / name).glob("*/ready.json"):
        pids.append(json.loads(ready.read_text())["pid"])
    return pids


def test_deploy_invoke_and_errors_over_the_wire(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    _deploy(sm, "wire", count=2)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="wire", WaiterConfig=FAST)
    d = sm.describe_endpoint(EndpointName="wire")
    assert d["EndpointStatus"] == "InService" and d["EndpointArn"] == f"{ARN}:endpoint/wire"
    pv = d["ProductionVariants"][0]
    assert (pv["CurrentInstanceCount"], pv["DesiredInstanceCount"]) == (2, 2)
    assert d["CreationTime"].tzinfo is not None
    r = rt.invoke_endpoint(EndpointName="wire", Body=b'{"cat": 1}', ContentType="application/json",
                           Accept="application/json", CustomAttributes="c=1")
    assert r["Body"].read() == b'{"cat": 1}'
    assert r["ContentType"] == "application/json" and r["InvokedProductionVariant"] == "AllTraffic"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint(EndpointName="wire", Body=b"x", ContentType="application/x-fail")
    err = e.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 500 and "no hats allowed" in err["OriginalMessage"]
    assert err["Error"]["Message"].startswith("Received server error (500) from primary")
    with pytest.raises(rt.exceptions.ValidationError) as e:
        rt.invoke_endpoint(EndpointName="nope", Body=b"x")
    assert e.value.response["Error"]["Message"] == "Endpoint nope of account 123456789012 not found."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_endpoint(EndpointName="nope")
    assert e.value.response["Error"] == {
        "Code": "ValidationException", "Message": f'Could not find endpoint "{ARN}:endpoint/nope".'}
    assert sm.list_tags(ResourceArn=d["EndpointArn"])["Tags"] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_endpoint_config(EndpointConfigName="bad", ProductionVariants=[{
            "VariantName": "A", "ModelName": "wire-m", "InitialInstanceCount": 1, "InstanceType": "ml.nope.large"}])
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_scaling_paginators_and_delete_waiter(backend):
    sm = backend.client("sagemaker")
    for i in range(3):
        sm.create_model(ModelName=f"page-{i}", PrimaryContainer={"Image": "x", "ModelDataUrl": "s3://models/echo/model.tar.gz"})
    pages = list(sm.get_paginator("list_models").paginate(NameContains="page-", PaginationConfig={"PageSize": 2}))
    assert [len(p["Models"]) for p in pages] == [2, 1]
    _deploy(sm, "scale", count=1)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scale", WaiterConfig=FAST)
    sm.update_endpoint_weights_and_capacities(EndpointName="scale", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    assert sm.describe_endpoint(EndpointName="scale")["EndpointStatus"] == "Updating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scale", WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName="scale")["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    names = [e["EndpointName"] for e in sm.list_endpoints(SortBy="Name", SortOrder="Ascending")["Endpoints"]]
    assert names == sorted(names) and "scale" in names
    pids = _instance_pids(backend.home, "scale")
    sm.delete_endpoint(EndpointName="scale")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="scale", WaiterConfig=FAST)
    assert all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)


def test_failed_endpoint_makes_the_in_service_waiter_fail(backend):
    sm = backend.client("sagemaker")
    _deploy(sm, "nofile", url="s3://models/missing/model.tar.gz")
    with pytest.raises(botocore.exceptions.WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="nofile", WaiterConfig=FAST)
    d = sm.describe_endpoint(EndpointName="nofile")
    assert d["EndpointStatus"] == "Failed" and "Failed to download model data" in d["FailureReason"]
    sm.delete_endpoint(EndpointName="nofile")


def test_endpoints_survive_restart_and_instances_die_with_a_killed_backend(backend):
    sm = backend.client("sagemaker")
    _deploy(sm, "durable", count=1)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="durable", WaiterConfig=FAST)
    backend.restart()
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert sm.describe_endpoint(EndpointName="durable")["EndpointStatus"] == "InService"
    assert rt.invoke_endpoint(EndpointName="durable", Body=b"back", ContentType="text/plain")["Body"].read() == b"back"
    pids = _instance_pids(backend.home, "durable")
    assert pids
    backend.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
        for p in pids:
            try:
                if psutil.Process(p).status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(p, os.WNOHANG)
            except (psutil.Error, ChildProcessError, OSError):
                pass
        time.sleep(0.05)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    backend.start()
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert rt.invoke_endpoint(EndpointName="durable", Body=b"again", ContentType="text/plain")["Body"].read() == b"again"
