"""Small pieces: raw request normalisation, codec selection, Java regex translation."""

from __future__ import annotations

import pytest
from botocore.exceptions import UnknownServiceError

from catkit.local.protocols import Headers, RawRequest, codec_for
from catkit.local.protocols.javaregex import compile_pattern, translate


def test_raw_request_normalises_headers_and_body():
    raw = RawRequest("POST", "/", {"a": ["1", "2"]}, {"X-Amz-Target": "T"}, bytearray(b"x"))
    assert isinstance(raw.headers, Headers)
    assert raw.headers["x-amz-target"] == "T"
    assert "X-AMZ-TARGET" in raw.headers
    assert list(raw.headers) == ["X-Amz-Target"]
    assert raw.body == b"x"
    assert raw.query_value("a") == "2"
    assert raw.query_value("missing") is None
    assert RawRequest("GET", "/", {}, {}, None).body == b""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("service", "raw", "protocol"),
    [
        ("sagemaker", None, "json"),
        ("application-autoscaling", None, "json"),
        ("sagemaker-runtime", None, "rest-json"),
        ("cloudwatch", None, "smithy-rpc-v2-cbor"),
        (
            "cloudwatch",
            RawRequest("POST", "/service/GraniteServiceVersion20100801/operation/X"),
            "smithy-rpc-v2-cbor",
        ),
        ("cloudwatch", RawRequest("POST", "/", {}, {"smithy-protocol": "rpc-v2-cbor"}), "smithy-rpc-v2-cbor"),
        (
            "cloudwatch",
            RawRequest("POST", "/", {}, {"X-Amz-Target": "GraniteServiceVersion20100801.X"}),
            "json",
        ),
        ("cloudwatch", RawRequest("POST", "/", {}, {"Content-Type": "application/x-amz-json-1.0"}), "json"),
        (
            "cloudwatch",
            RawRequest("POST", "/", {}, {"Content-Type": "application/x-www-form-urlencoded"}),
            "query",
        ),
    ],
)
def test_codec_selection(service, raw, protocol):
    codec = codec_for(service, raw)
    assert codec.protocol == protocol
    assert codec.service_name == service
    assert codec_for(service, raw) is codec  # cached


def test_unsupported_protocols_and_services_fail_clearly():
    with pytest.raises(ValueError, match="no server-side codec for protocol 'rest-xml'"):
        codec_for("s3")
    with pytest.raises(UnknownServiceError):
        codec_for("no-such-service")


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (r"\p{ASCII}*", ["text/csv", ""], ["é"]),
        (r"\A\S[\p{Print}]*\z", ["models/a.tar.gz", "a b"], [" lead", "tab\there", "aé"]),
        (r"arn:[\p{Alnum}\-]+:lambda:.*", ["arn:aws-cn:lambda:x"], ["arn:a_b:lambda:x"]),
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*", ["ok\n", "😀"], ["\x00"]),
        (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", ["a-b"], ["-a", "a" * 64]),
        (r"[\p{L}\p{M}\p{Z}\p{S}\p{N}\p{P}]*", ["Grüße, 世界!"], ["\x07"]),
    ],
)
def test_java_patterns_match_whole_values(pattern, good, bad):
    match = compile_pattern(pattern)
    assert match is not None, translate(pattern)
    for value in good:
        assert match(value), (pattern, value)
    for value in bad:
        assert not match(value), (pattern, value)


def test_posix_classes_inside_and_outside_brackets():
    assert translate(r"\p{Print}+") == r"[\x20-\x7E]+"
    assert translate(r"[\p{Alnum}_]") == r"[a-zA-Z0-9_]"
    assert translate(r"\P{Digit}") == r"[^0-9]"
