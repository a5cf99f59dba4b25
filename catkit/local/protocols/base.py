"""What every protocol codec shares: operation lookup, validation, error shapes, request ids.

A codec is bound to one service (its botocore model) and one wire protocol. Subclasses
implement ``_decode`` (request -> operation + typed params), ``serialize_response`` and
``serialize_error``; validation against the model is shared here.
"""

from __future__ import annotations

import uuid
import zlib
from abc import ABC, abstractmethod
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape

from catkit.local.errors import AwsError
from catkit.local.protocols.models import operation_model
from catkit.local.protocols.plans import Plan, plan_for
from catkit.local.protocols.raw import RawRequest, RawResponse
from catkit.local.protocols.reading import WireValueError
from catkit.local.protocols.validate import CoralStyle, QueryStyle, ValidationStyle, validate

# Largest request body accepted after gzip decompression (botocore compresses PutMetricData).
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"

# How each service reports invalid input (AWS codes; see module docs of validate.py).
VALIDATION_STYLES: dict[str, ValidationStyle] = {
    "sagemaker": CoralStyle("ValidationException", anchor_patterns=True),
    "application-autoscaling": CoralStyle("ValidationException"),
    "sagemaker-runtime": CoralStyle("ValidationError"),
    "cloudwatch": QueryStyle(),
}


def new_request_id() -> str:
    """A fresh request id, formatted like AWS's (a UUID)."""
    return str(uuid.uuid4())


class Codec(ABC):
    """Parses requests and serialises responses/errors for one service in one protocol."""

    protocol: str = ""

    def __init__(self, service_name: str, model: ServiceModel) -> None:
        self.service_name = service_name
        self.model = model
        self.style: ValidationStyle = VALIDATION_STYLES.get(service_name, CoralStyle())
        self.query_compatible = "awsQueryCompatible" in model.metadata
        # An error is looked up by its code; a shape *named* like the code wins over another
        # shape that merely shares the code (CloudWatch: ResourceNotFound vs DashboardNotFoundError).
        shapes = model.error_shapes
        self._error_shapes: dict[str, Shape] = {shape.name: shape for shape in shapes}
        for shape in shapes:
            self._error_shapes.setdefault(shape.error_code, shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.service_name!r})"

    def parse_request(self, raw: RawRequest) -> tuple[str, dict[str, Any]]:
        """``(operation_name, params)`` from ``raw``, validated against the model.

        Raises :class:`AwsError` for unknown operations, malformed bodies, wrongly typed
        values and constraint violations, with the codes and messages AWS uses.
        """
        op, params = self._decode(raw)
        shape = op.input_shape
        if shape is not None:
            validate(plan_for(shape), params, self.style)
        return op.name, params

    def decode_request(self, raw: RawRequest) -> tuple[str, dict[str, Any]]:
        """Like :meth:`parse_request` without the constraint checks (types are still enforced)."""
        op, params = self._decode(raw)
        return op.name, params

    @abstractmethod
    def _decode(self, raw: RawRequest) -> tuple[OperationModel, dict[str, Any]]:
        """The operation and typed params of ``raw`` (protocol specific)."""

    @abstractmethod
    def serialize_response(
        self, operation_name: str, result: dict[str, Any] | None, *, request_id: str | None = None
    ) -> RawResponse:
        """The HTTP response carrying ``result`` (shaped like the operation's output)."""

    @abstractmethod
    def serialize_error(
        self, operation_name: str | None, err: AwsError, *, request_id: str | None = None
    ) -> RawResponse:
        """The HTTP response carrying ``err`` in this protocol's error format."""

    # -- shared helpers -------------------------------------------------------------------

    def body(self, raw: RawRequest) -> bytes:
        """The request body, gunzipped when ``Content-Encoding: gzip`` (botocore's request
        compression, used for CloudWatch PutMetricData bodies over 10 KB)."""
        encoding = raw.headers.get("content-encoding")
        if not encoding or not raw.body:
            return raw.body
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        body = raw.body
        for coding in reversed(codings):
            if coding == "identity":
                continue
            if coding != "gzip":
                raise self.serialization_error(
                    f"Content-Encoding {coding!r} is not supported; send gzip or an uncompressed body."
                )
            if not body.startswith(_GZIP_MAGIC):
                # Already inflated by the HTTP server (aiohttp's auto_decompress) while the
                # header still says gzip. No JSON, CBOR or form body starts with these bytes.
                continue
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                body = inflater.decompress(body, MAX_DECOMPRESSED_BYTES)
            except zlib.error as exc:
                raise self.serialization_error(f"The gzip request body is corrupt: {exc}") from None
            if inflater.unconsumed_tail:
                raise self.serialization_error(
                    f"The request body inflates to more than {MAX_DECOMPRESSED_BYTES} bytes."
                )
            if not inflater.eof:
                raise self.serialization_error("The gzip request body is truncated.")
        return body

    def operation(self, name: str) -> OperationModel:
        """The operation ``name`` or the protocol's unknown-operation error."""
        op = operation_model(self.model, name) if name else None
        if op is None:
            raise self.unknown_operation(name)
        return op

    def unknown_operation(self, name: str) -> AwsError:
        shown = name or "(none)"
        return AwsError(
            "UnknownOperationException",
            f"Operation {shown} is not part of the {self.service_name} API "
            f"(botocore model {self.model.api_version}).",
            400,
        )

    def serialization_error(self, detail: str) -> AwsError:
        return AwsError("SerializationException", detail, 400)

    def wire_error(self, err: WireValueError) -> AwsError:
        """A type mismatch in the request body, as the protocol reports it."""
        return self.serialization_error(err.describe())

    def input_plan(self, op: OperationModel) -> Plan | None:
        shape = op.input_shape
        return plan_for(shape) if shape is not None else None

    def output_plan(self, op: OperationModel) -> Plan | None:
        shape = op.output_shape
        return plan_for(shape) if shape is not None else None

    def error_shape(self, code: str) -> Shape | None:
        """The modeled error shape for ``code`` (error code or shape name), if any."""
        return self._error_shapes.get(code)

    @staticmethod
    def message_key(shape: Shape | None) -> str:
        """The member the error message goes in (``Message`` or ``message``)."""
        if shape is not None:
            for name in ("Message", "message"):
                if name in shape.members:
                    return shape.members[name].serialization.get("name", name)
        return "message"

    def query_error_header(self, err: AwsError) -> str:
        """``x-amzn-query-error`` value for query-compatible services: ``Code;Sender``."""
        return f"{err.code};{'Sender' if err.sender_fault else 'Receiver'}"

    def wire_error_type(self, err: AwsError) -> str:
        """The ``__type`` of a JSON/CBOR error body.

        For query-compatible services (CloudWatch) AWS names the error *shape* in ``__type``
        and the query-era code in ``x-amzn-query-error``; botocore maps it back to the code.
        """
        if self.query_compatible:
            shape = self.error_shape(err.code)
            if shape is not None:
                return f"com.amazonaws.{self.service_name}#{shape.name}"
        return err.code
