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
from catkit.local.errors import AwsError
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
    # the credential scope after the first comma (not kept by the first part), and in a part kept
    # for an earlier request with another signature
    ("/endpoints/ep-1/invocations", "AWS4-HMAC-SHA256 X=1, " + AUTH.format(akid="AKIDX", region="ap-south-1",
                                                                         service="sagemaker"), "POST"),
    ("/endpoints/ep-1/invocations", AUTH.format(akid="AKIDEXAMPLE", region="eu-west-1", service="sagemaker")
     .replace("Signature=abc", "Signature=def"), "POST"),
])
def test_invoke_scope_agrees_with_the_general_detection(path, auth, method):
    from catkit.local.protocols import RawRequest, detect_service

    request = _request(path, auth, method)
    scope = gateway._invoke_scope(request, path, "123456789012")
    assert gateway._invoke_scope(request, path, "123456789012") == scope  # again, from what was kept
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


class JudgingRuntime(BaseService):
    """InvokeEndpoint answers chosen by the request: success with custom attributes, a ModelError
    with fields, an unexpected exception."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def invoke_endpoint(self, params, ctx):
        self.calls.append(params)
        name = params["EndpointName"]
        if name == "model-error":
            raise AwsError("ModelError", "Received client error (400) from primary", 424,
                           fields={"OriginalStatusCode": 400, "OriginalMessage": "bad", "LogStreamArn": "arn:x"})
        if name == "boom":
            raise RuntimeError("secret internal detail")
        out = {"Body": params.get("Body", b"")[::-1], "InvokedProductionVariant": "AllTraffic",
               "ContentType": params.get("Accept", "application/json")}
        if "CustomAttributes" in params:
            out["CustomAttributes"] = params["CustomAttributes"].upper()
        return out


def test_invoke_endpoint_route_answers_byte_for_byte_like_the_general_codec_path(inproc_backend_factory):
    """The pre-resolved InvokeEndpoint route (RestJsonCodec.known_route, Gateway._invoke) and the
    general path (detection, route matching, parse_request, dispatch, serialize_response) give the
    same status, headers and body for successes, validation errors (also after a cached valid
    request), service errors and internal failures."""
    import requests

    fake = JudgingRuntime()
    backend = inproc_backend_factory(services={"sagemaker-runtime": fake})
    gw = backend._gateway
    route = gw._invoke_route
    assert route is not None and route.name == "InvokeEndpoint"
    auth = AUTH.format(akid="210987654321", region="eu-west-1", service="sagemaker")
    cases = [  # (path, extra headers, body)
        ("/endpoints/ep-1/invocations", {"Content-Type": "text/csv", "Accept": "text/plain",
                                         "X-Amzn-SageMaker-Custom-Attributes": "k=v"}, b"abc"),
        ("/endpoints/ep-1/invocations", {"Content-Type": "text/csv", "Accept": "text/plain",
                                         "X-Amzn-SageMaker-Custom-Attributes": "k=v"}, b"abc"),  # validation cached
        ("/endpoints/ep%2D1/invocations", {"X-Amzn-SageMaker-Target-Variant": "AllTraffic"}, b""),  # encoded label
        ("/endpoints/not_valid!/invocations", {}, b"abc"),  # EndpointName pattern
        ("/endpoints/ep-1/invocations", {"X-Amzn-SageMaker-Custom-Attributes": "x" * 1025}, b"abc"),  # max length
        ("/endpoints/ep-1/invocations", {"X-Amzn-SageMaker-Custom-Attributes": "x" * 1024}, b"abc"),
        ("/endpoints/model-error/invocations", {}, b"abc"),
        ("/endpoints/boom/invocations", {}, b"abc"),
    ]

    def answers() -> list[tuple[int, dict, bytes]]:
        out = []
        for path, extra, body in cases:
            r = requests.post(backend.url + path, data=body, headers={"Authorization": auth, **extra}, timeout=30)
            rid = r.headers["x-amzn-RequestId"]
            headers = {k.lower(): v.replace(rid, "RID") for k, v in r.headers.items() if k.lower() != "date"}
            out.append((r.status_code, headers, r.content.replace(rid.encode(), b"RID")))
        return out

    fast = answers()
    fast_calls = list(fake.calls)
    fake.calls.clear()
    gw._invoke_route = None  # every request takes the general path
    try:
        general = answers()
    finally:
        gw._invoke_route = route
    assert fast == general
    assert fast_calls == fake.calls and len(fast_calls) == 6  # the two invalid requests never reach the service
    assert [status for status, _, _ in fast] == [200, 200, 200, 400, 400, 200, 424, 500]
    assert fast[0][1]["x-amzn-sagemaker-custom-attributes"] == "K=V" and fast[0][2] == b"cba"
    assert fast[0][1]["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert b"secret internal detail" not in fast[7][2]


def test_known_route_validation_cache_never_admits_an_invalid_request():
    from catkit.local.protocols import codec_for

    route = codec_for("sagemaker-runtime").known_route("InvokeEndpoint")
    headers = {"Content-Type": "text/csv"}
    assert route.parse(("ep-1",), headers, b"x")["EndpointName"] == "ep-1"
    for labels, hdrs in [(("bad_name!",), headers), (("ep-1",), {"X-Amzn-SageMaker-Custom-Attributes": "x" * 1025})]:
        for _ in range(2):
            with pytest.raises(AwsError, match="validation error"):
                route.parse(labels, hdrs, b"x")
    route.valid.clear()
    with mock.patch("catkit.local.protocols.rest_json_codec._MAX_VALID", 3):
        for i in range(10):
            route.parse((f"ep-{i}",), headers, b"x")
        assert len(route.valid) <= 3  # bounded
    # Operations the route cannot serve without the general reader (query string, JSON body) are refused.
    from catkit.local.protocols.models import service_model
    from catkit.local.protocols.rest_json_codec import RestJsonCodec

    lam = RestJsonCodec("lambda", service_model("lambda"))
    assert lam.known_route("ListFunctions") is None and lam.known_route("CreateAlias") is None


@pytest.mark.parametrize("seed", range(3))
def test_known_route_parse_gives_parse_request_params(seed):
    """KnownRoute.parse's readers chosen ahead of time read what the general parse_request reads."""
    import random

    from multidict import CIMultiDict

    from catkit.local.protocols import RawRequest, codec_for

    codec = codec_for("sagemaker-runtime")
    route = codec.known_route("InvokeEndpoint")
    rng = random.Random(seed)
    names = ["Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Target-Model",
             "X-Amzn-SageMaker-Target-Variant", "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Session-Id",
             "X-Amzn-SageMaker-Enable-Explanations", "X-Amzn-SageMaker-Inference-Component", "X-Other"]
    for _ in range(40):
        headers = CIMultiDict((rng.choice([n, n.lower(), n.upper()]), rng.choice(["a", "text/csv", "k=v"]))
                              for n in rng.sample(names, rng.randrange(len(names))))
        label = rng.choice(["ep-1", "ep%2D2", "e"])
        body = rng.choice([b"", b"x", b"{}"])
        raw = RawRequest("POST", f"/endpoints/{label}/invocations", {}, headers, body)
        outcomes = []
        for parse, args in ((route.parse, ((label,), headers, body)), (codec.parse_request, (raw,))):
            try:
                out = parse(*args)
                outcomes.append(out if isinstance(out, dict) else out[1])
            except AwsError as err:  # invalid values: the same validation error
                outcomes.append((err.code, err.message))
        assert outcomes[0] == outcomes[1]


def test_known_route_serialize_gives_serialize_response_bytes():
    """KnownRoute.serialize's writers chosen ahead of time write what the general serializer writes."""
    from catkit.local.protocols import codec_for

    codec = codec_for("sagemaker-runtime")
    route = codec.known_route("InvokeEndpoint")
    assert route.writers is not None
    results = [None, {}, {"Body": b"abc", "InvokedProductionVariant": "AllTraffic"},
               {"Body": "text", "ContentType": "text/csv", "CustomAttributes": "k=v", "NewSessionId": "s-1"},
               {"Body": bytearray(b"x"), "ClosedSessionId": "s-2", "ContentType": None},
               {"Body": b"", "InvokedProductionVariant": 7}]
    for result in results:
        fast, general = route.serialize(result, "rid"), codec.serialize_response("InvokeEndpoint", result,
                                                                                   request_id="rid")
        assert (fast.status, list(fast.headers.items()), fast.body) == (
            general.status, list(general.headers.items()), general.body)
