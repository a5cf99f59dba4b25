"""Gateway dispatch to registered services: results, AwsError serialisation, InternalFailure, limits."""

from __future__ import annotations

import asyncio
import logging
import threading

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService

CREDS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "dummy",
    "region_name": "eu-west-1",
}


class FakeSageMaker(BaseService):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, object]] = []

    def list_endpoints(self, params, ctx):
        self.calls.append(("ListEndpoints", params, ctx))
        return {"Endpoints": []}

    async def describe_endpoint(self, params, ctx):
        raise AwsError("ValidationException", f'Could not find endpoint "{params["EndpointName"]}".', 400)

    def delete_endpoint(self, params, ctx):
        raise RuntimeError("secret internal detail")


@pytest.fixture
def sagemaker_client(inproc_backend_factory):
    fake = FakeSageMaker()
    backend = inproc_backend_factory(services={"sagemaker": fake})
    client = boto3.client(
        "sagemaker", endpoint_url=backend.url, config=Config(retries={"max_attempts": 1}), **CREDS
    )
    return client, fake, backend


def test_operation_dispatched_with_context(sagemaker_client):
    client, fake, backend = sagemaker_client
    assert client.list_endpoints(MaxResults=5)["Endpoints"] == []
    ((name, params, ctx),) = fake.calls
    assert name == "ListEndpoints"
    assert params == {"MaxResults": 5}
    assert ctx.region == "eu-west-1"  # from the SigV4 credential scope
    assert ctx.account_id == backend.account_id == "123456789012"
    assert len(ctx.request_id) == 36


def test_aws_error_is_serialised_for_the_protocol(sagemaker_client):
    client, _, _ = sagemaker_client
    with pytest.raises(ClientError) as info:
        client.describe_endpoint(EndpointName="nope")
    err = info.value.response
    assert err["Error"]["Code"] == "ValidationException"
    assert err["Error"]["Message"] == 'Could not find endpoint "nope".'
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unexpected_exception_is_internal_failure_without_stack(sagemaker_client, caplog):
    client, _, _ = sagemaker_client
    with caplog.at_level(logging.ERROR, logger="catkit.local.gateway"), pytest.raises(ClientError) as info:
        client.delete_endpoint(EndpointName="x")
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert err["Error"]["Code"] == "InternalFailure"
    request_id = err["ResponseMetadata"]["RequestId"]
    assert request_id and request_id in err["Error"]["Message"]
    assert "secret internal detail" not in err["Error"]["Message"]
    assert "Traceback" in caplog.text and "secret internal detail" in caplog.text


def test_unimplemented_operation_is_unknown_operation(sagemaker_client):
    client, _, _ = sagemaker_client
    with pytest.raises(ClientError) as info:
        client.list_models()
    assert info.value.response["Error"]["Code"] == "UnknownOperationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_oversize_control_plane_body_is_413(sagemaker_client):
    client, _, _ = sagemaker_client
    tags = [{"Key": f"k{i}", "Value": "v" * 255} for i in range(45_000)]  # > 10 MB of JSON
    with pytest.raises(ClientError) as info:
        client.add_tags(ResourceArn="arn:aws:sagemaker:eu-west-1:123456789012:endpoint/x", Tags=tags)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "10 MB" in info.value.response["Error"]["Message"]


def test_unknown_service_is_a_clean_error(sagemaker_client):
    _, _, backend = sagemaker_client
    dynamo = boto3.client(
        "dynamodb", endpoint_url=backend.url, config=Config(retries={"max_attempts": 1}), **CREDS
    )
    with pytest.raises(ClientError) as info:
        dynamo.list_tables()
    err = info.value.response["Error"]
    assert err["Code"] == "UnknownServiceException"
    assert "dynamodb" in err["Message"] and "sagemaker" in err["Message"]
    # an unsigned request nobody can route
    resp = requests.post(backend.url + "/whatever", data=b"{}", timeout=5)
    assert resp.status_code == 400 and "UnknownServiceException" in resp.text


def test_catkit_health_and_info(sagemaker_client):
    _, _, backend = sagemaker_client
    assert requests.get(backend.url + "/_catkit/health", timeout=5).json()["status"] == "ok"
    info = requests.get(backend.url + "/_catkit/info", timeout=5).json()
    assert info["time_scale"] == 1.0
    assert info["home"] == str(backend.home)
    assert info["now"] > 1.6e9
    assert "sagemaker" in info["services"] and "s3" in info["services"]
    assert info["version"]


def test_moto_management_api_is_not_exposed_except_its_reset(sagemaker_client):
    _, _, backend = sagemaker_client
    s3 = boto3.client("s3", endpoint_url=backend.url, **CREDS)
    s3.create_bucket(Bucket="keep-me", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    # moto's other management routes (state dumps, auth switches...) never reach moto
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=backend.url + "/moto-api/data.json", data=b"")
    SigV4Auth(Credentials("AKIAIOSFODNN7EXAMPLE", "dummy"), "s3", "eu-west-1").add_auth(req)
    resp = requests.get(req.url, headers=dict(req.headers), timeout=5)
    assert resp.status_code == 403
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["keep-me"]
    # ... but POST /moto-api/reset is catkit's reset (as moto's server answers it): all state goes
    assert requests.get(backend.url + "/moto-api/reset", timeout=5).status_code == 400
    resp = requests.post(backend.url + "/moto-api/reset", timeout=5)
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    assert s3.list_buckets()["Buckets"] == []


def test_stop_lets_in_flight_requests_finish(inproc_backend_factory):
    entered = threading.Event()

    class Slow(BaseService):
        async def list_endpoints(self, params, ctx):
            entered.set()
            await asyncio.sleep(0.5)
            return {"Endpoints": [], "NextToken": "finished"}

    backend = inproc_backend_factory(services={"sagemaker": Slow()})
    client = boto3.client(
        "sagemaker", endpoint_url=backend.url, config=Config(retries={"max_attempts": 1}), **CREDS
    )
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(client.list_endpoints()))
    worker.start()
    assert entered.wait(10)
    backend.run_sync(backend.stop())
    worker.join(10)
    assert result.get("NextToken") == "finished"
    with pytest.raises(requests.ConnectionError):
        requests.get(backend.url + "/_catkit/health", timeout=2)


def test_runtime_payload_over_6_mb_is_413(inproc_backend_factory):
    class Runtime(BaseService):
        def invoke_endpoint(self, params, ctx):
            return {"Body": b"ok:" + str(len(params["Body"])).encode(), "ContentType": "text/plain"}

    backend = inproc_backend_factory(services={"sagemaker-runtime": Runtime()})
    runtime = boto3.client(
        "sagemaker-runtime", endpoint_url=backend.url, config=Config(retries={"max_attempts": 1}), **CREDS
    )
    limit = 6 * 1024 * 1024
    ok = runtime.invoke_endpoint(EndpointName="e", Body=b"x" * limit, ContentType="application/octet-stream")
    assert ok["Body"].read() == f"ok:{limit}".encode()
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(
            EndpointName="e", Body=b"x" * (limit + 1), ContentType="application/octet-stream"
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6 MB" in info.value.response["Error"]["Message"]
