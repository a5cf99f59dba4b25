"""detect_service: credential scope first, then X-Amz-Target, then path."""

from __future__ import annotations

import pytest

from catkit.local.protocols import RawRequest, detect_service


def auth(service: str) -> dict[str, str]:
    return {
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }


CASES = [
    # (description, method, path, query, headers, expected)
    ("sagemaker control plane", "POST", "/", {}, auth("sagemaker"), "sagemaker"),
    (
        "runtime signs as sagemaker",
        "POST",
        "/endpoints/ep/invocations",
        {},
        auth("sagemaker"),
        "sagemaker-runtime",
    ),
    ("runtime async", "POST", "/endpoints/ep/async-invocations", {}, auth("sagemaker"), "sagemaker-runtime"),
    (
        "runtime stream",
        "POST",
        "/endpoints/ep/invocations-response-stream",
        {},
        auth("sagemaker"),
        "sagemaker-runtime",
    ),
    ("autoscaling", "POST", "/", {}, auth("application-autoscaling"), "application-autoscaling"),
    ("cloudwatch signs as monitoring", "POST", "/", {}, auth("monitoring"), "cloudwatch"),
    ("s3 passes through", "GET", "/bucket/key", {}, auth("s3"), "s3"),
    ("sts passes through", "POST", "/", {}, auth("sts"), "sts"),
    ("iam passes through", "POST", "/", {}, auth("iam"), "iam"),
    ("unknown names pass through", "POST", "/", {}, auth("lambda"), "lambda"),
    (
        "presigned url",
        "GET",
        "/bucket/key",
        {"X-Amz-Credential": "AKIDEXAMPLE/20261126/us-east-1/s3/aws4_request"},
        {},
        "s3",
    ),
    ("target: sagemaker", "POST", "/", {}, {"X-Amz-Target": "SageMaker.ListEndpoints"}, "sagemaker"),
    (
        "target: autoscaling",
        "POST",
        "/",
        {},
        {"X-Amz-Target": "AnyScaleFrontendService.DescribeScalableTargets"},
        "application-autoscaling",
    ),
    (
        "target: cloudwatch json",
        "POST",
        "/",
        {},
        {"x-amz-target": "GraniteServiceVersion20100801.PutMetricData"},
        "cloudwatch",
    ),
    (
        "cbor path",
        "POST",
        "/service/GraniteServiceVersion20100801/operation/PutMetricData",
        {},
        {},
        "cloudwatch",
    ),
    ("runtime path, unsigned", "POST", "/endpoints/ep/invocations", {}, {}, "sagemaker-runtime"),
    ("nothing to go on", "GET", "/favicon.ico", {}, {}, None),
    ("unknown target", "POST", "/", {}, {"X-Amz-Target": "DynamoDB_20120810.ListTables"}, None),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_detect_service(method, path, query, headers, expected):
    assert detect_service(RawRequest(method, path, query, headers, b"")) == expected


def test_headers_are_case_insensitive():
    raw = RawRequest("POST", "/", {}, {"AUTHORIZATION": auth("monitoring")["Authorization"]}, b"")
    assert detect_service(raw) == "cloudwatch"
    assert raw.headers["authorization"] == raw.headers["Authorization"]
