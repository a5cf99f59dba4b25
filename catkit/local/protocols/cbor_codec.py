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
from catkit.local.protocols.json_codec import DocumentRpcCodec
from catkit.local.protocols.raw import RawRequest
from catkit.local.protocols.reading import CborReader
from catkit.local.protocols.writing import CborWriter

_READER = CborReader()
_WRITER = CborWriter()
_MAX_DEPTH = 64


class CborCodec(DocumentRpcCodec):
    """rpc-v2-cbor server side."""

    protocol = "smithy-rpc-v2-cbor"
    content_type = "application/cbor"
    protocol_headers = {"smithy-protocol": "rpc-v2-cbor"}  # noqa: RUF012 - read-only
    reader = _READER
    writer = _WRITER

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        self._prefix = f"/service/{self.target_prefix}/operation/"

    def unknown_operation(self, name: str) -> AwsError:
        err = super().unknown_operation(name)
        err.status = 404  # Smithy RPC v2: an unknown operation is a 404
        return err

    def encode(self, document: Any, *, lenient: bool = False) -> bytes:
        return cbor2.dumps(document, default=_cbor_default if lenient else None)

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
        return op, self.read_params(op, document)


def _cbor_default(encoder: Any, value: Any) -> None:
    encoder.encode(str(value))
