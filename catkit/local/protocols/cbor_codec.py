"""The Smithy RPC v2 CBOR protocol (``smithy-rpc-v2-cbor``), CloudWatch's default in botocore.

Requests: ``POST /service/<targetPrefix>/operation/<Operation>``, ``smithy-protocol:
rpc-v2-cbor``, a CBOR map body (timestamps as tag 1 epoch seconds, blobs as byte strings).
Responses carry the same headers; errors are CBOR maps with ``__type`` and ``message``, plus
``x-amzn-query-error`` for query-compatible services.
"""

from __future__ import annotations

from typing import Any

import cbor2
from botocore.model import OperationModel

from catkit.local.errors import AwsError
from catkit.local.protocols.base import Codec, new_request_id
from catkit.local.protocols.json_codec import error_fields
from catkit.local.protocols.raw import RawRequest, RawResponse
from catkit.local.protocols.reading import CborReader, WireValueError
from catkit.local.protocols.writing import CborWriter

_READER = CborReader()
_WRITER = CborWriter()
_MAX_DEPTH = 64


class CborCodec(Codec):
    """rpc-v2-cbor server side."""

    protocol = "smithy-rpc-v2-cbor"

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        self.target_prefix = model.metadata.get("targetPrefix", "")
        self._prefix = f"/service/{self.target_prefix}/operation/"

    def unknown_operation(self, name: str) -> AwsError:
        err = super().unknown_operation(name)
        err.status = 404  # Smithy RPC v2: an unknown operation is a 404
        return err

    def _decode(self, raw: RawRequest) -> tuple[OperationModel, dict[str, Any]]:
        path = raw.path
        if not path.startswith(self._prefix):
            raise AwsError(
                "UnknownOperationException",
                f"Path {path} is not a {self.service_name} RPC v2 path ({self._prefix}<Operation>).",
                404,
            )
        op = self.operation(path[len(self._prefix) :].rstrip("/"))
        body = self.body(raw)
        document: Any = {}
        if body:
            try:
                document = cbor2.loads(body, max_depth=_MAX_DEPTH, strict_hashable_types=True)
            except Exception as exc:  # CBORDecodeError, ValueError, RecursionError, MemoryError, ...
                raise self.serialization_error(f"The request body is not valid CBOR: {exc}") from None
        plan = self.input_plan(op)
        if plan is None:
            return op, {}
        try:
            params = _READER.read_structure(plan, document)
        except WireValueError as err:
            raise self.wire_error(err) from None
        return op, params

    def _headers(self, request_id: str | None) -> dict[str, str]:
        return {
            "Content-Type": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-RequestId": request_id or new_request_id(),
        }

    def serialize_response(
        self, operation_name: str, result: dict[str, Any] | None, *, request_id: str | None = None
    ) -> RawResponse:
        op = self.operation(operation_name)
        plan = self.output_plan(op)
        document = _WRITER.write_structure(plan, result or {}) if plan is not None else {}
        return RawResponse(200, self._headers(request_id), cbor2.dumps(document))

    def serialize_error(
        self, operation_name: str | None, err: AwsError, *, request_id: str | None = None
    ) -> RawResponse:
        shape = self.error_shape(err.code)
        body: dict[str, Any] = {"__type": self.wire_error_type(err)}
        body[self.message_key(shape)] = err.message
        body.update(error_fields(self, err, _WRITER))
        headers = self._headers(request_id)
        if self.query_compatible:
            headers["x-amzn-query-error"] = self.query_error_header(err)
        headers.update(err.headers)
        return RawResponse(err.status, headers, cbor2.dumps(body, default=_cbor_default))


def _cbor_default(encoder: Any, value: Any) -> None:
    encoder.encode(str(value))
