"""End to end with real boto3 clients against a local backend process: the SageMaker control plane,
waiters, paginators, InvokeEndpoint over the wire, restart and backend crash."""

from __future__ import annotations

import botocore.exceptions
import pytest

from catkit.testing import deploy_endpoint, process_exited, upload_model, wait_until

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
FAST = {"Delay": 0.2, "MaxAttempts": 300}


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    b = module_backend_factory(time_scale=1000)
    upload_model(b)
    return b


def _deploy(sm, name: str, count: int = 1, url: str = "s3://models/echo/model.tar.gz") -> None:
    """Create the endpoint (tagged k=v) without waiting: the tests use boto3's waiters."""
    deploy_endpoint(sm, name, url, count=count, instance_type="ml.m5.xlarge", tags={"k": "v"}, wait=False)


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
        rt.invoke_endpoint(EndpointName="wire", Body=b"no hats allowed", ContentType="application/x-fail")
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
    pids = backend.instance_pids("scale")
    sm.delete_endpoint(EndpointName="scale")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="scale", WaiterConfig=FAST)
    assert all(process_exited(p) for p in pids)


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
    pids = backend.instance_pids("durable")
    assert pids
    backend.kill()
    wait_until(lambda: all(process_exited(p) for p in pids), 30, what="the instances of the killed backend to exit")
    backend.start()
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert rt.invoke_endpoint(EndpointName="durable", Body=b"again", ContentType="text/plain")["Body"].read() == b"again"
