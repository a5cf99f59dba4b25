"""The ``json`` protocol (awsJson1_0 / 1_1): ``X-Amz-Target: Prefix.Operation``, JSON bodies.

Used by SageMaker and Application Auto Scaling (1.1) and by CloudWatch's awsJson1_0 variant.
Errors: ``{"__type": Code, "message": ...}`` plus the error shape's members.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any

from botocore.model import OperationModel

from catkit.local.errors import AwsError
from catkit.local.protocols.base import Codec, new_request_id
from catkit.local.protocols.plans import plan_for
from catkit.local.protocols.raw import RawRequest, RawResponse
from catkit.local.protocols.reading import JsonReader, WireValueError
from catkit.local.protocols.writing import JsonWriter

_READER = JsonReader()
_WRITER = JsonWriter()


def decode_json_body(body: bytes, codec: Codec) -> Any:
    """``json.loads`` with every failure mapped to the protocol's SerializationException."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise codec.serialization_error(f"The request body is not valid JSON: {exc}") from None


def error_fields(codec: Codec, err: AwsError, writer: JsonWriter) -> dict[str, Any]:
    """``err.fields`` serialised by the error shape (unmodeled fields passed through)."""
    shape = codec.error_shape(err.code)
    if not err.fields:
        return {}
    if shape is None:
        return {key: value for key, value in err.fields.items() if value is not None}
    plan = plan_for(shape)
    out: dict[str, Any] = {}
    for key, value in err.fields.items():
        if value is None:
            continue
        member = plan.by_name.get(key)
        if member is None:
            out[key] = value
        elif member.location is None:
            out[member.wire] = writer.write(member.plan, value, member.timestamp_format)
    return out


class DocumentRpcCodec(Codec):
    """What the RPC protocols with one document body share (awsJson here, rpc-v2-cbor in
    :mod:`.cbor_codec`): the params are read from the document, the response is the output
    document, an error is ``{"__type": ..., <message>: ..., <fields>}`` with ``x-amzn-query-error``
    for query-compatible services. Subclasses give the reader, writer, content type, extra
    headers, ``encode`` and ``_decode``."""

    content_type = ""
    protocol_headers: dict[str, str] = {}  # noqa: RUF012 - read-only per protocol
    reader: JsonReader = _READER
    writer: JsonWriter = _WRITER

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        self.target_prefix = model.metadata.get("targetPrefix", "")

    @abstractmethod
    def encode(self, document: Any, *, lenient: bool = False) -> bytes:
        """The wire bytes of ``document``; ``lenient``: values the format cannot carry become text."""

    def _headers(self, request_id: str | None) -> dict[str, str]:
        return {
            "Content-Type": self.content_type,
            **self.protocol_headers,
            "x-amzn-RequestId": request_id or new_request_id(),
        }

    def read_params(self, op: OperationModel, document: Any) -> dict[str, Any]:
        """The typed input of ``op`` read from the decoded body ``document`` ({} without input)."""
        plan = self.input_plan(op)
        if plan is None:
            return {}
        try:
            return self.reader.read_structure(plan, document)
        except WireValueError as err:
            raise self.wire_error(err) from None

    def serialize_response(
        self, operation_name: str, result: dict[str, Any] | None, *, request_id: str | None = None
    ) -> RawResponse:
        op = self.operation(operation_name)
        plan = self.output_plan(op)
        document = self.writer.write_structure(plan, result or {}) if plan is not None else {}
        return RawResponse(200, self._headers(request_id), self.encode(document))

    def serialize_error(
        self, operation_name: str | None, err: AwsError, *, request_id: str | None = None
    ) -> RawResponse:
        shape = self.error_shape(err.code)
        body: dict[str, Any] = {"__type": self.wire_error_type(err)}
        body[self.message_key(shape)] = err.message
        body.update(error_fields(self, err, self.writer))
        headers = self._headers(request_id)
        if self.query_compatible:
            headers["x-amzn-query-error"] = self.query_error_header(err)
        headers.update(err.headers)
        return RawResponse(err.status, headers, self.encode(body, lenient=True))


class JsonCodec(DocumentRpcCodec):
    """awsJson 1.0/1.1 server side."""

    protocol = "json"

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        self.content_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}"

    def encode(self, document: Any, *, lenient: bool = False) -> bytes:
        return json.dumps(document, separators=(",", ":"), default=str if lenient else None).encode()

    def _decode(self, raw: RawRequest) -> tuple[OperationModel, dict[str, Any]]:
        target = raw.headers.get("x-amz-target")
        if not target:
            raise AwsError(
                "UnknownOperationException",
                f"Missing X-Amz-Target header; expected '{self.target_prefix}.<Operation>'.",
                400,
            )
        prefix, _, name = target.partition(".")
        if prefix != self.target_prefix:
            raise AwsError(
                "UnknownOperationException",
                f"X-Amz-Target '{target}' is not a {self.service_name} operation "
                f"(expected '{self.target_prefix}.<Operation>').",
                400,
            )
        op = self.operation(name)
        body = self.body(raw)
        document = decode_json_body(body, self) if body.strip() else {}
        return op, self.read_params(op, document)
