"""The codecs behind a real HTTP server on 127.0.0.1, talked to by unmodified boto3 clients.

A minimal aiohttp app (not the gateway) checks what only a socket shows: header encoding,
Content-Length, streaming bodies and boto3's own HTTP stack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from catkit.local.errors import AwsError
from catkit.local.protocols import RawRequest, codec_for, detect_service

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
calls: list[tuple[str, str, dict[str, Any]]] = []


def fake_service(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
    calls.append((service, operation, params))
    if operation == "DescribeEndpoint":
        if params["EndpointName"] == "missing":
            raise AwsError("ValidationException", 'Could not find endpoint "missing".')
        return {
            "EndpointName": params["EndpointName"],
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x",
            "EndpointStatus": "InService",
            "CreationTime": T0,
            "LastModifiedTime": T0.timestamp(),
        }
    if operation == "InvokeEndpoint":
        if params["Body"] == b"fail":
            raise AwsError(
                "ModelError", "boom", 424, fields={"OriginalStatusCode": 500, "OriginalMessage": "boom"}
            )
        return {
            "Body": params["Body"][::-1],
            "ContentType": "application/octet-stream",
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": params.get("CustomAttributes"),
        }
    if operation == "InvokeEndpointWithResponseStream":
        return {"Body": [{"PayloadPart": {"Bytes": b"a"}}, {"PayloadPart": {"Bytes": b"b"}}]}
    if operation == "GetMetricData":
        return {
            "MetricDataResults": [{"Id": "m", "Timestamps": [T0], "Values": [1.5], "StatusCode": "Complete"}]
        }
    return None


async def handle(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    query = {k: v for k, v in request.query.items()}
    raw = RawRequest(request.method, request.raw_path.split("?", 1)[0], query, request.headers, body)
    service = detect_service(raw)
    assert service is not None
    codec = codec_for(service, raw)
    operation = None
    try:
        operation, params = codec.parse_request(raw)
        response = codec.serialize_response(
            operation, fake_service(service, operation, params), request_id="rid"
        )
    except AwsError as err:
        response = codec.serialize_error(operation, err, request_id="rid")
    return web.Response(status=response.status, headers=response.headers, body=response.body)


@pytest.fixture(scope="module")
def endpoint_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def client(endpoint_url, monkeypatch, tmp_path):
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    session = boto3.session.Session(
        aws_access_key_id="AKID", aws_secret_access_key="s", region_name="us-east-1"
    )

    def make(service: str):
        return session.client(service, endpoint_url=endpoint_url, config=Config(retries={"max_attempts": 1}))

    return make


def test_sagemaker_over_http(client):
    sm = client("sagemaker")
    out = sm.describe_endpoint(EndpointName="cathat")
    assert out["CreationTime"] == T0 == out["LastModifiedTime"]
    assert out["ResponseMetadata"]["RequestId"] == "rid"
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.describe_endpoint(EndpointName="missing")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_runtime_over_http(client):
    rt = client("sagemaker-runtime")
    out = rt.invoke_endpoint(EndpointName="cathat", Body=b"\x00abc\xff", CustomAttributes="k=v")
    assert out["Body"].read() == b"\xffcba\x00"
    assert out["CustomAttributes"] == "k=v"
    assert out["InvokedProductionVariant"] == "AllTraffic"
    with pytest.raises(rt.exceptions.ModelError) as info:
        rt.invoke_endpoint(EndpointName="cathat", Body=b"fail")
    assert info.value.response["OriginalStatusCode"] == 500
    stream = rt.invoke_endpoint_with_response_stream(EndpointName="cathat", Body=b"{}")
    assert [e["PayloadPart"]["Bytes"] for e in stream["Body"]] == [b"a", b"b"]


def test_cloudwatch_cbor_over_http(client):
    cw = client("cloudwatch")
    cw.put_metric_data(Namespace="N", MetricData=[{"MetricName": "m", "Value": 2.0, "Timestamp": T0}])
    service, operation, params = calls[-1]
    assert (service, operation) == ("cloudwatch", "PutMetricData")
    assert params["MetricData"][0]["Timestamp"] == T0
    out = cw.get_metric_data(
        MetricDataQueries=[{"Id": "m", "Expression": "SEARCH('x', 'Sum', 60)"}], StartTime=T0, EndTime=T0
    )
    assert out["MetricDataResults"][0]["Timestamps"] == [T0]
