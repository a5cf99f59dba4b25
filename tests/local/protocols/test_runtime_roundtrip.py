"""rest-json (sagemaker-runtime): InvokeEndpoint headers and blob payloads both ways, ModelError."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from catkit.local.errors import AwsError
from catkit.local.protocols import RawRequest, codec_for

PAYLOAD = bytes(range(256)) * 4  # binary, not UTF-8


def test_invoke_endpoint_request_headers_and_binary_body(make_client):
    client, rec = make_client("sagemaker-runtime", lambda op, p: {"Body": b"ok"})
    client.invoke_endpoint(
        EndpointName="cathat",
        Body=PAYLOAD,
        ContentType="application/x-image",
        Accept="application/json",
        CustomAttributes="trace=1,user=abc",
        TargetModel="models/cat-v2.tar.gz",
        TargetVariant="Canary",
        InferenceId="req-42",
    )
    assert rec.last.service == "sagemaker-runtime"  # signed as "sagemaker", routed by path
    assert rec.last.operation == "InvokeEndpoint"
    assert rec.last.params == {
        "EndpointName": "cathat",
        "Body": PAYLOAD,
        "ContentType": "application/x-image",
        "Accept": "application/json",
        "CustomAttributes": "trace=1,user=abc",
        "TargetModel": "models/cat-v2.tar.gz",
        "TargetVariant": "Canary",
        "InferenceId": "req-42",
    }


def test_invoke_endpoint_response_payload_and_headers(make_client):
    result = {
        "Body": PAYLOAD,
        "ContentType": "application/octet-stream",
        "InvokedProductionVariant": "AllTraffic",
        "CustomAttributes": "latency=3ms",
    }
    client, rec = make_client("sagemaker-runtime", lambda op, p: result)
    out = client.invoke_endpoint(EndpointName="cathat", Body=b"{}", ContentType="application/json")
    assert out["Body"].read() == PAYLOAD
    assert out["ContentType"] == "application/octet-stream"
    assert out["InvokedProductionVariant"] == "AllTraffic"
    assert out["CustomAttributes"] == "latency=3ms"
    headers = rec.last.response.headers
    assert headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "latency=3ms"
    assert out["ResponseMetadata"]["RequestId"] == headers["x-amzn-RequestId"]


def test_text_body_and_empty_body(make_client):
    client, rec = make_client("sagemaker-runtime", lambda op, p: {"Body": "héllo"})
    out = client.invoke_endpoint(EndpointName="cathat", Body="1,2,3", ContentType="text/csv")
    assert rec.last.params["Body"] == b"1,2,3"
    assert out["Body"].read() == "héllo".encode()
    client.invoke_endpoint(EndpointName="cathat", Body=b"")
    assert rec.last.params["Body"] == b""


def test_invoke_endpoint_async_uses_202_and_headers(make_client):
    result = {"InferenceId": "i-1", "OutputLocation": "s3://b/out/i-1.out", "FailureLocation": "s3://b/f"}
    client, rec = make_client("sagemaker-runtime", lambda op, p: result)
    out = client.invoke_endpoint_async(EndpointName="cathat", InputLocation="s3://b/in.json")
    assert rec.last.operation == "InvokeEndpointAsync"
    assert rec.last.params == {"EndpointName": "cathat", "InputLocation": "s3://b/in.json"}
    assert rec.last.response.status == 202
    assert out["OutputLocation"] == "s3://b/out/i-1.out"
    assert out["InferenceId"] == "i-1"


def test_model_error_carries_original_status_message_and_log_stream(make_client):
    def handler(op, params):
        raise AwsError(
            "ModelError",
            'Received client error (400) from primary with message "bad input". See https://x for more information.',
            424,
            fields={
                "OriginalStatusCode": 400,
                "OriginalMessage": "bad input",
                "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/cathat",
            },
        )

    client, _ = make_client("sagemaker-runtime", handler)
    with pytest.raises(client.exceptions.ModelError) as info:
        client.invoke_endpoint(EndpointName="cathat", Body=b"x")
    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["Error"]["Message"].startswith("Received client error (400) from primary")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert response["OriginalMessage"] == "bad input"
    assert response["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/cathat")


def test_unknown_endpoint_validation_error(make_client):
    def handler(op, params):
        raise AwsError(
            "ValidationError", f"Endpoint {params['EndpointName']} of account 123456789012 not found."
        )

    client, _ = make_client("sagemaker-runtime", handler)
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint(EndpointName="nope", Body=b"x")
    assert info.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint nope of account 123456789012 not found.",
    }


def test_bad_endpoint_name_is_a_validation_error_with_aws_wording(make_client):
    client, _ = make_client("sagemaker-runtime", lambda op, p: {"Body": b""}, validate=False)
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint(EndpointName="under_score", Body=b"x")
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert error["Message"] == (
        "1 validation error detected: Value 'under_score' at 'endpointName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
    )


def test_sensitive_values_are_not_echoed():
    codec = codec_for("sagemaker-runtime")
    raw = RawRequest(
        "POST",
        "/endpoints/cathat/invocations",
        {},
        {"X-Amzn-SageMaker-Custom-Attributes": "secret-é"},  # not ASCII
        b"x",
    )
    with pytest.raises(AwsError) as info:
        codec.parse_request(raw)
    assert info.value.code == "ValidationError"
    assert "secret" not in info.value.message
    assert "at 'customAttributes' failed to satisfy constraint" in info.value.message


def test_payload_over_the_model_limit_is_rejected():
    codec = codec_for("sagemaker-runtime")
    raw = RawRequest("POST", "/endpoints/cathat/invocations", {}, {}, b"0" * (6 * 1024 * 1024 + 1))
    with pytest.raises(AwsError) as info:
        codec.parse_request(raw)
    assert info.value.code == "ValidationError"
    assert "Member must have length less than or equal to 6291456" in info.value.message


def test_percent_encoded_endpoint_name_is_decoded():
    codec = codec_for("sagemaker-runtime")
    op, params = codec.parse_request(RawRequest("POST", "/endpoints/cat%2Dhat/invocations", {}, {}, b"1"))
    assert (op, params["EndpointName"]) == ("InvokeEndpoint", "cat-hat")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/endpoints/cathat/nothing", 404),
        ("GET", "/endpoints/cathat/invocations", 405),
        ("POST", "/", 404),
    ],
)
def test_unknown_routes(method, path, status):
    codec = codec_for("sagemaker-runtime")
    with pytest.raises(AwsError) as info:
        codec.parse_request(RawRequest(method, path, {}, {}, b""))
    assert info.value.code == "UnknownOperationException"
    assert info.value.status == status
    assert path in info.value.message


def test_invoke_endpoint_with_response_stream_events(make_client):
    chunks = [b'{"token": "cat"}', b'{"token": " hat"}', bytes(range(256))]
    result = {
        "Body": [{"PayloadPart": {"Bytes": c}} for c in chunks],
        "ContentType": "application/jsonlines",
        "InvokedProductionVariant": "AllTraffic",
    }
    client, rec = make_client("sagemaker-runtime", lambda op, p: result)
    out = client.invoke_endpoint_with_response_stream(
        EndpointName="cathat", Body=b"{}", ContentType="application/json"
    )
    assert rec.last.operation == "InvokeEndpointWithResponseStream"
    assert rec.last.response.headers["Content-Type"] == "application/vnd.amazon.eventstream"
    assert out["ContentType"] == "application/jsonlines"
    assert out["InvokedProductionVariant"] == "AllTraffic"
    assert [event["PayloadPart"]["Bytes"] for event in out["Body"]] == chunks


def test_response_stream_error_event_raises_in_the_client(make_client):
    from botocore.exceptions import EventStreamError

    result = {
        "Body": [
            {"PayloadPart": {"Bytes": b"partial"}},
            {"ModelStreamError": {"Message": "model crashed mid-stream", "ErrorCode": "ModelStreamError"}},
        ]
    }
    client, _ = make_client("sagemaker-runtime", lambda op, p: result)
    out = client.invoke_endpoint_with_response_stream(EndpointName="cathat", Body=b"{}")
    events = iter(out["Body"])
    assert next(events) == {"PayloadPart": {"Bytes": b"partial"}}
    with pytest.raises(EventStreamError) as info:
        next(events)
    assert info.value.response["Error"] == {"Code": "ModelStreamError", "Message": "model crashed mid-stream"}


def test_encode_event_streams_one_message_at_a_time():
    from botocore.eventstream import EventStreamBuffer

    codec = codec_for("sagemaker-runtime")
    head = codec.serialize_response(
        "InvokeEndpointWithResponseStream", {"Body": [], "ContentType": "text/plain"}
    )
    assert head.body == b""
    assert head.headers["X-Amzn-SageMaker-Content-Type"] == "text/plain"
    buffer = EventStreamBuffer()
    buffer.add_data(
        codec.encode_event("InvokeEndpointWithResponseStream", {"PayloadPart": {"Bytes": b"abc"}})
    )
    (message,) = list(buffer)
    assert message.headers[":event-type"] == "PayloadPart"
    assert message.payload == b"abc"
    with pytest.raises(ValueError, match="not an event"):
        codec.encode_event("InvokeEndpointWithResponseStream", {"Nope": {}})
    with pytest.raises(ValueError, match="does not return an event stream"):
        codec.encode_event("InvokeEndpoint", {"PayloadPart": {}})
