"""Malformed requests never crash a codec: each becomes the AwsError AWS would return."""

from __future__ import annotations

import gzip
import json

import cbor2
import pytest

from catkit.local.errors import AwsError
from catkit.local.protocols import RawRequest, codec_for

SM = "SageMaker."
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
CBOR_HEADERS = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def sagemaker(target: str | None, body: bytes) -> RawRequest:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    return RawRequest("POST", "/", {}, headers, body)


def cbor_request(op: str, body: bytes, headers: dict | None = None) -> RawRequest:
    return RawRequest("POST", CBOR_PATH + op, {}, {**CBOR_HEADERS, **(headers or {})}, body)


def query_request(body: bytes) -> RawRequest:
    return RawRequest("POST", "/", {}, FORM, body)


def error_of(service: str, raw: RawRequest) -> AwsError:
    codec = codec_for(service, raw)
    with pytest.raises(AwsError) as info:
        codec.parse_request(raw)
    return info.value


TABLE = [
    # (id, service, request, code, status, message fragment)
    (
        "json: no target",
        "sagemaker",
        sagemaker(None, b"{}"),
        "UnknownOperationException",
        400,
        "X-Amz-Target",
    ),
    (
        "json: foreign target",
        "sagemaker",
        sagemaker("DynamoDB_20120810.ListTables", b"{}"),
        "UnknownOperationException",
        400,
        "DynamoDB_20120810.ListTables",
    ),
    (
        "json: unknown operation",
        "sagemaker",
        sagemaker(SM + "LaunchRocket", b"{}"),
        "UnknownOperationException",
        400,
        "LaunchRocket",
    ),
    (
        "json: broken JSON",
        "sagemaker",
        sagemaker(SM + "ListEndpoints", b"{"),
        "SerializationException",
        400,
        "JSON",
    ),
    (
        "json: not UTF-8",
        "sagemaker",
        sagemaker(SM + "ListEndpoints", b"\xff\xfe"),
        "SerializationException",
        400,
        "",
    ),
    (
        "json: body is a list",
        "sagemaker",
        sagemaker(SM + "ListEndpoints", b"[]"),
        "SerializationException",
        400,
        "expected a structure",
    ),
    (
        "json: string for integer",
        "sagemaker",
        sagemaker(SM + "ListEndpoints", b'{"MaxResults": "ten"}'),
        "SerializationException",
        400,
        "MaxResults",
    ),
    (
        "json: bad timestamp",
        "sagemaker",
        sagemaker(SM + "ListEndpoints", b'{"CreationTimeAfter": "yesterday"}'),
        "SerializationException",
        400,
        "CreationTimeAfter",
    ),
    (
        "json: nested type error names the path",
        "sagemaker",
        sagemaker(
            SM + "CreateEndpointConfig",
            json.dumps({"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": 5}]}).encode(),
        ),
        "SerializationException",
        400,
        "ProductionVariants.1.VariantName",
    ),
    (
        "json: missing required member",
        "sagemaker",
        sagemaker(SM + "DescribeEndpoint", b"{}"),
        "ValidationException",
        400,
        "1 validation error detected: Value null at 'endpointName' failed to satisfy constraint: "
        "Member must not be null",
    ),
    (
        "autoscaling: enum",
        "application-autoscaling",
        RawRequest(
            "POST",
            "/",
            {},
            {"X-Amz-Target": "AnyScaleFrontendService.DescribeScalableTargets"},
            b'{"ServiceNamespace": "rockets"}',
        ),
        "ValidationException",
        400,
        "Value 'rockets' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [",
    ),
    (
        "cbor: garbage",
        "cloudwatch",
        cbor_request("PutMetricData", b"\xff\x00\x01"),
        "SerializationException",
        400,
        "CBOR",
    ),
    (
        "cbor: truncated",
        "cloudwatch",
        cbor_request("PutMetricData", cbor2.dumps({"Namespace": "N"})[:-1]),
        "SerializationException",
        400,
        "",
    ),
    (
        "cbor: unknown operation",
        "cloudwatch",
        cbor_request("LaunchRocket", cbor2.dumps({})),
        "UnknownOperationException",
        404,
        "LaunchRocket",
    ),
    (
        "cbor: text for a blob-free double",
        "cloudwatch",
        cbor_request(
            "PutMetricData",
            cbor2.dumps({"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": "1"}]}),
        ),
        "SerializationException",
        400,
        "MetricData.1.Value",
    ),
    (
        "cbor: bad gzip",
        "cloudwatch",
        cbor_request("PutMetricData", b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}),
        "SerializationException",
        400,
        "gzip",
    ),
    (
        "cbor: unsupported encoding",
        "cloudwatch",
        cbor_request("PutMetricData", b"x", {"Content-Encoding": "br"}),
        "SerializationException",
        400,
        "br",
    ),
    ("query: no action", "cloudwatch", query_request(b"Version=2010-08-01"), "MissingAction", 400, "Action"),
    (
        "query: unknown action",
        "cloudwatch",
        query_request(b"Action=LaunchRocket&Version=2010-08-01"),
        "InvalidAction",
        400,
        "The action LaunchRocket is not valid for this web service.",
    ),
    (
        "query: malformed form",
        "cloudwatch",
        query_request(b"Action=PutMetricData&&junk"),
        "MalformedQueryString",
        400,
        "",
    ),
    ("query: not UTF-8", "cloudwatch", query_request(b"Action=%FF%FE"), "MalformedQueryString", 400, ""),
    (
        "query: bad number",
        "cloudwatch",
        query_request(
            b"Action=PutMetricData&Namespace=N&MetricData.member.1.MetricName=m&MetricData.member.1.Value=abc"
        ),
        "InvalidParameterValue",
        400,
        "MetricData.member.1.Value",
    ),
    (
        "query: bad list index",
        "cloudwatch",
        query_request(b"Action=PutMetricData&Namespace=N&MetricData.member.x.MetricName=m"),
        "InvalidParameterValue",
        400,
        "MetricData.member",
    ),
    (
        "query: missing required",
        "cloudwatch",
        query_request(b"Action=PutMetricData&MetricData.member.1.MetricName=m"),
        "MissingParameter",
        400,
        "The parameter Namespace is required.",
    ),
    (
        "query: several missing, one line each",
        "cloudwatch",
        query_request(b"Action=GetMetricStatistics&Namespace=N"),
        "MissingParameter",
        400,
        "The parameter MetricName is required.\nThe parameter StartTime is required.",
    ),
]


@pytest.mark.parametrize(
    ("service", "raw", "code", "status", "fragment"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_bad_input(service, raw, code, status, fragment):
    err = error_of(service, raw)
    assert (err.code, err.status) == (code, status), err.message
    assert fragment in err.message


def test_gzip_bomb_is_refused(monkeypatch):
    import catkit.local.protocols.base as base

    monkeypatch.setattr(base, "MAX_DECOMPRESSED_BYTES", 1000)
    body = gzip.compress(cbor2.dumps({"Namespace": "N" * 5000}))
    err = error_of("cloudwatch", cbor_request("PutMetricData", body, {"Content-Encoding": "gzip"}))
    assert err.code == "SerializationException"
    assert "1000 bytes" in err.message


def test_query_empty_list_and_repeated_indexes_in_order():
    raw = query_request(
        b"Action=DescribeAlarms&AlarmNames.member.2=b&AlarmNames.member.10=c&AlarmNames.member.1=a&AlarmTypes="
    )
    op, params = codec_for("cloudwatch", raw).parse_request(raw)
    assert op == "DescribeAlarms"
    assert params == {"AlarmNames": ["a", "b", "c"], "AlarmTypes": []}


def test_errors_serialize_in_every_protocol():
    err = AwsError("InvalidParameterValue", "The value <x> & y is invalid.", 400)
    for raw in (
        sagemaker(SM + "ListEndpoints", b"{}"),
        cbor_request("PutMetricData", b""),
        query_request(b"Action=PutMetricData"),
        RawRequest("POST", "/endpoints/e/invocations", {}, {}, b""),
    ):
        service = "sagemaker" if "X-Amz-Target" in raw.headers else None
        service = service or ("sagemaker-runtime" if raw.path.startswith("/endpoints") else "cloudwatch")
        response = codec_for(service, raw).serialize_error(None, err, request_id="req-1")
        assert response.status == 400
        assert response.headers["x-amzn-RequestId"] == "req-1"
        assert response.body


def test_body_already_inflated_by_the_http_server_is_accepted():
    # aiohttp inflates gzip request bodies itself but leaves Content-Encoding: gzip in place.
    body = cbor2.dumps({"Namespace": "N", "MetricData": [{"MetricName": "m", "Value": 1.0}]})
    for payload in (body, gzip.compress(body)):
        raw = cbor_request("PutMetricData", payload, {"Content-Encoding": "gzip"})
        op, params = codec_for("cloudwatch", raw).parse_request(raw)
        assert (op, params["Namespace"]) == ("PutMetricData", "N")


def test_truncated_gzip_is_refused():
    body = gzip.compress(cbor2.dumps({"Namespace": "N" * 100}))[:-12]
    err = error_of("cloudwatch", cbor_request("PutMetricData", body, {"Content-Encoding": "gzip"}))
    assert err.code == "SerializationException"
    assert "truncated" in err.message
