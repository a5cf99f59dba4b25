"""Every operation of the served services, every protocol: a generated example of each input
goes through botocore's serializer into our decoder, and of each output through our
serializer into botocore's parser, and comes back unchanged. This checks the shape walking
(names, nesting, maps, unions, timestamps, blobs, header/URI bindings) model-wide."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.response import StreamingBody
from botocore.serialize import create_serializer

from catkit.local.protocols import RawRequest, get_codec
from catkit.local.protocols.models import service_model

from .conftest import as_sent

UTC = dt.UTC
STAMP = dt.datetime(2026, 11, 26, 10, 0, 1, 250000, tzinfo=UTC)

SERVICES = [
    ("sagemaker", "json"),
    ("application-autoscaling", "json"),
    ("sagemaker-runtime", "rest-json"),
    ("cloudwatch", "smithy-rpc-v2-cbor"),
    ("cloudwatch", "json"),
    ("cloudwatch", "query"),
]


def example(shape: Any, name: str = "", depth: int = 0, *, located_ok: bool = True) -> Any:
    """A value for ``shape`` with every member set (unions: one member), 2-element lists."""
    kind = shape.type_name
    if kind == "structure":
        if shape.metadata.get("document"):
            return {"doc": [1, "two"]}
        if depth > 6:
            return None
        out = {}
        for member_name, member in shape.members.items():
            if member.serialization.get("eventstream"):
                continue
            if member.serialization.get("location") == "headers":
                out[member_name] = {"one": "1"}
                continue
            if member.serialization.get("location") == "statusCode":
                continue
            value = example(member, member_name, depth + 1)
            if value is not None:
                out[member_name] = value
            if shape.metadata.get("union") and out:
                break
        if shape.metadata.get("union") and not out:
            return None
        return out
    if kind == "list":
        item = example(shape.member, name, depth + 1)
        return [] if item is None else [item, item]
    if kind == "map":
        value = example(shape.value, name, depth + 1)
        return {} if value is None else {"k1": value, "k2": value}
    if kind == "string":
        if shape.metadata.get("enum"):
            return shape.metadata["enum"][0]
        return f"{name or 'v'}-é"
    if kind in ("integer", "long"):
        return 7
    if kind in ("float", "double"):
        return 1.5
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return STAMP
    if kind == "blob":
        return b"\x00\xffblob"
    raise AssertionError(kind)


@dataclass
class Wire:
    """One served service in one protocol: its codec and botocore model."""

    service: str
    protocol: str
    codec: Any
    model: Any


@pytest.fixture(params=SERVICES, ids=[f"{s}-{p}" for s, p in SERVICES])
def wire(request: pytest.FixtureRequest) -> Wire:
    service, protocol = request.param
    return Wire(service, protocol, get_codec(service, protocol), service_model(service))


def _has_event_stream(op: Any) -> bool:
    return op.has_event_stream_input or op.has_event_stream_output


def operations(service: str) -> list[str]:
    model = service_model(service)
    return [n for n in model.operation_names if not _has_event_stream(model.operation_model(n))]


def raw_from_serialized(request: dict[str, Any], protocol: str) -> RawRequest:
    body = request["body"]
    headers = dict(request["headers"])
    if protocol == "query":
        body = urlencode(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    query = request.get("query_string") or {}
    if isinstance(query, str):
        query = {}
    if request.get("host_prefix"):
        pass  # host labels are not used by the served services
    return RawRequest(request["method"], request["url_path"].split("?", 1)[0], query, headers, body or b"")


def _normalise(value: Any) -> Any:
    if isinstance(value, StreamingBody):
        return value.read()
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def test_every_input_decodes_to_what_botocore_serialized(wire: Wire):
    serializer = create_serializer(wire.protocol, include_validation=False)
    failures = []
    for name in operations(wire.service):
        op = wire.model.operation_model(name)
        params = example(op.input_shape) if op.input_shape is not None else {}
        request = serializer.serialize_to_request(params, op)
        got_name, got = wire.codec.decode_request(raw_from_serialized(request, wire.protocol))
        if (got_name, got) != (name, as_sent(params, wire.protocol)):
            failures.append((name, params, got))
    assert not failures, failures[:2]


def test_every_output_parses_back_in_botocore(wire: Wire):
    parser = create_parser(wire.protocol)
    failures = []
    for name in operations(wire.service):
        op = wire.model.operation_model(name)
        result = example(op.output_shape) if op.output_shape is not None else {}
        response = wire.codec.serialize_response(name, result, request_id="req-1")
        body: Any = response.body
        if op.has_streaming_output:
            body = StreamingBody(_Reader(body), len(body))
        parsed = parser.parse(
            {
                "status_code": response.status,
                "headers": HeadersDict(response.headers),
                "body": body,
                "context": {"operation_name": name},
            },
            op.output_shape,
        )
        # botocore's RPC v2 parser reads no metadata when an operation has no output shape.
        has_metadata = op.output_shape is not None or wire.protocol != "smithy-rpc-v2-cbor"
        if has_metadata and parsed.get("ResponseMetadata", {}).get("RequestId") != "req-1":
            failures.append((name, "request id", parsed.get("ResponseMetadata")))
        if _normalise(parsed) != result:
            failures.append((name, result, _normalise(parsed)))
    assert not failures, failures[:2]


def test_every_modeled_error_keeps_code_message_and_fields(wire: Wire):
    from catkit.local.errors import AwsError

    parser = create_parser(wire.protocol)
    failures = []
    for shape in wire.model.error_shapes:
        fields = {k: v for k, v in (example(shape) or {}).items() if k.lower() != "message"}
        status = shape.metadata.get("error", {}).get("httpStatusCode", 400)
        err = AwsError(shape.error_code, "it went wrong <&>", status, fields=fields)
        response = wire.codec.serialize_error(None, err, request_id="req-2")
        response_dict = {
            "status_code": response.status,
            "body": response.body,
            "context": {},
            "headers": HeadersDict(response.headers),
        }
        parsed = parser.parse(response_dict, None)
        if parsed["Error"].get("Code") != shape.error_code or parsed["Error"].get("Message") != err.message:
            failures.append((shape.name, parsed["Error"]))
            continue
        modeled = parser.parse(response_dict, wire.model.shape_for_error_code(parsed["Error"]["Code"]))
        for key, value in fields.items():
            if modeled.get(key) != value:
                failures.append((shape.name, key, value, modeled.get(key)))
    assert not failures, failures[:3]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, amt: int | None = None) -> bytes:
        end = len(self._data) if amt is None else self._pos + amt
        chunk, self._pos = self._data[self._pos : end], min(end, len(self._data))
        return chunk
