"""The gateway's cheap paths (issue 18) give the answers of the general ones.

- InvokeEndpoint's account and region come from one look at the SigV4 credential scope
  (``gateway._invoke_scope``), and only for a request the general detection routes to the runtime;
- the backend runs on uvloop unless ``CATKIT_EVENT_LOOP=asyncio``;
- a request body that has fully arrived is read without a timeout task (``buffered_body``);
- S3 bodies reach moto unwrapped (``wsgi.input_terminated``), and blank-body checks do not copy;
- an invocation's metric batch lands in the same buckets as one record per datapoint.
"""

from __future__ import annotations

import asyncio
import io
from unittest import mock

import boto3
import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from botocore.config import Config
from werkzeug.wsgi import get_input_stream

from catkit.autoscaling.metrics_store import MetricStore
from catkit.local import gateway, identity, lifecycle
from catkit.local.moto_proxy import _blank
from catkit.local.services.base import BaseService
from catkit.local.wsgi_bridge import build_environ

AUTH = ("AWS4-HMAC-SHA256 Credential={akid}/20261130/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc")


class FakeRuntime(BaseService):
    def __init__(self) -> None:
        self.calls: list[tuple[dict, object]] = []

    def invoke_endpoint(self, params, ctx):
        self.calls.append((params, ctx))
        return {"Body": params["Body"][::-1], "ContentType": "text/plain", "InvokedProductionVariant": "AllTraffic"}


def _request(path: str, auth: str | None, method: str = "POST"):
    headers = {"Authorization": auth} if auth is not None else {}
    return make_mocked_request(method, path, headers=headers)


@pytest.mark.parametrize("path,auth,method", [
    ("/endpoints/ep-1/invocations", AUTH.format(akid="AKIDEXAMPLE", region="eu-west-1", service="sagemaker"), "POST"),
    ("/endpoints/ep-1/invocations", AUTH.format(akid="210987654321", region="us-west-2", service="sagemaker"), "POST"),
    ("/endpoints/ep-1/invocations", AUTH.format(akid="AKIDEXAMPLE", region="us-east-1", service="s3"), "POST"),
    ("/endpoints/ep-1/invocations", AUTH.format(akid="AKIDEXAMPLE", region="us-east-1", service="sagemaker"), "GET"),
    ("/endpoints/ep-1/async-invocations", AUTH.format(akid="AKID", region="us-east-1", service="sagemaker"), "POST"),
    ("/endpoints//invocations", AUTH.format(akid="AKIDEXAMPLE", region="us-east-1", service="sagemaker"), "POST"),
    ("/endpoints/a/b/invocations", AUTH.format(akid="AKIDEXAMPLE", region="us-east-1", service="sagemaker"), "POST"),
    ("/endpoints/ep-1/invocations", None, "POST"),
])
def test_invoke_scope_agrees_with_the_general_detection(path, auth, method):
    from catkit.local.protocols import RawRequest, detect_service

    request = _request(path, auth, method)
    scope = gateway._invoke_scope(request, path, "123456789012")
    if scope is None:  # left to the general path: fine whenever it is not a signed InvokeEndpoint
        assert not (method == "POST" and auth and "/sagemaker/" in auth and path == "/endpoints/ep-1/invocations")
        return
    assert detect_service(RawRequest(method, path, {}, request.headers, b"")) == "sagemaker-runtime"
    assert scope == (identity.account_for(request.headers, {}, "123456789012"),
                     gateway._region_of(request.headers, {}, "us-east-1"))


def test_invoke_endpoint_through_the_gateway_keeps_account_region_and_params(inproc_backend_factory):
    fake = FakeRuntime()
    backend = inproc_backend_factory(services={"sagemaker-runtime": fake})
    client = boto3.client("sagemaker-runtime", endpoint_url=backend.url, region_name="eu-west-1",
                          aws_access_key_id="210987654321", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}))
    out = client.invoke_endpoint(EndpointName="ep-1", Body=b"abc", ContentType="text/csv", Accept="text/plain",
                                 CustomAttributes="k=v")
    assert out["Body"].read() == b"cba" and out["ContentType"] == "text/plain"
    ((params, ctx),) = fake.calls
    assert (ctx.account_id, ctx.region) == ("210987654321", "eu-west-1")
    assert params == {"EndpointName": "ep-1", "Body": b"abc", "ContentType": "text/csv", "Accept": "text/plain",
                      "CustomAttributes": "k=v"}
    with pytest.raises(client.exceptions.ClientError, match="ValidationError"):  # model constraints still apply
        client.invoke_endpoint(EndpointName="not_valid!", Body=b"abc")


def test_backend_loop_is_uvloop_unless_asyncio_is_asked_for(monkeypatch):
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    monkeypatch.delenv("CATKIT_EVENT_LOOP", raising=False)
    assert lifecycle.run_event_loop(loop_module()).startswith("uvloop")
    monkeypatch.setenv("CATKIT_EVENT_LOOP", "asyncio")
    assert lifecycle.run_event_loop(loop_module()).startswith("asyncio")


def test_buffered_body_is_read_whole_and_still_capped():
    from catkit.serving.http_limits import buffered_body

    class TooLarge(Exception):
        pass

    def posted(**headers: str):
        content = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
        return make_mocked_request("POST", "/x", headers=headers, payload=content)

    async def run() -> None:
        request = posted(**{"Content-Length": "5"})
        request.content.feed_data(b"hel")
        assert buffered_body(request, 100, TooLarge) is None  # not all there yet: the timed path reads it
        request.content.feed_data(b"lo")
        request.content.feed_eof()
        assert buffered_body(request, 100, TooLarge) == b"hello"
        full = posted()
        full.content.feed_data(b"x" * 10)
        full.content.feed_eof()
        with pytest.raises(TooLarge):
            buffered_body(full, 9, TooLarge)

    asyncio.run(run())


def test_s3_body_reaches_werkzeug_unwrapped_and_blank_checks_hold():
    body = b" \x00" * 10
    environ = build_environ(make_mocked_request("PUT", "/b/k", headers={"Host": "localhost"}), body)
    stream = get_input_stream(environ)
    assert stream is environ["wsgi.input"] and isinstance(stream, io.BytesIO) and stream.read() == body
    assert _blank(b"") and _blank(b" \n\t ") and not _blank(b" x ") and not _blank(b"x") and not _blank(b"\nx")


def test_record_many_lands_where_single_records_do():
    now = 1_700_000_000.0
    batch, single = MetricStore(lambda: now), MetricStore(lambda: now)
    items = [("ModelLatency", 120.0, "Microseconds"), ("Invocations", 1.0, "None"), ("Invocations", 1.0, "None")]
    dims = {"EndpointName": "e", "VariantName": "v"}
    for t in (now - 30, now - 5 * 3600, now - 40 * 86400):  # standard tier, the coarser tier, past retention
        batch.record_many("AWS/SageMaker", dims, items, t)
        for name, value, unit in items:
            single.record("AWS/SageMaker", name, dims, value, t, unit)
    for name in ("ModelLatency", "Invocations"):
        for start, period in ((now - 3600, 60), (now - 86400, 3600), (now - 50 * 86400, 86400)):
            args = ("AWS/SageMaker", name, dims, start, now + 60, period, ["Average", "Sum", "SampleCount", "p50"])
            assert batch.statistics(*args) == single.statistics(*args) != []
