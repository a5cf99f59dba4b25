"""The AWS ``query`` protocol: form-encoded ``Action=...&Version=...`` requests, XML responses.

CloudWatch spoke it before botocore moved to CBOR; older SDKs and tools still do. Lists are
``Name.member.N``, maps ``Name.entry.N.key``/``.value``; responses are
``<OpResponse><OpResult>...</OpResult><ResponseMetadata>`` and errors ``<ErrorResponse>``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import OperationModel

from catkit.local.errors import AwsError
from catkit.local.protocols.base import Codec, new_request_id
from catkit.local.protocols.plans import plan_for
from catkit.local.protocols.raw import RawRequest, RawResponse
from catkit.local.protocols.reading import QueryReader, WireValueError, build_query_tree
from catkit.local.protocols.writing import XmlWriter, xml_text

_READER = QueryReader()
_WRITER = XmlWriter()
_CONTENT_TYPE = "text/xml"


class QueryCodec(Codec):
    """query-protocol server side."""

    protocol = "query"

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        self.namespace = model.metadata.get("xmlNamespace", "")
        self.api_version = model.api_version

    def unknown_operation(self, name: str) -> AwsError:
        if not name:
            return AwsError("MissingAction", "The request must contain the parameter Action.", 400)
        return AwsError("InvalidAction", f"The action {name} is not valid for this web service.", 400)

    def serialization_error(self, detail: str) -> AwsError:
        return AwsError("MalformedQueryString", detail, 400)

    def wire_error(self, err: WireValueError) -> AwsError:
        where = ".".join(err.path) or "(request)"
        value = "" if err.value is None else f" {err.value}"
        extra = f" ({err.detail})" if err.detail else ""
        return AwsError(
            "InvalidParameterValue",
            f"The value{value} for parameter {where} is invalid: expected {err.expected}{extra}.",
            400,
        )

    def _pairs(self, raw: RawRequest) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        for key, value in raw.query.items():
            for item in value if isinstance(value, list) else [value]:
                pairs.append((key, item))
        body = self.body(raw)
        if body.strip():
            try:
                text = body.decode("utf-8")
                pairs.extend(parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise self.serialization_error(
                    f"The request body is not a valid form-encoded query: {exc}"
                ) from None
        return pairs

    def _decode(self, raw: RawRequest) -> tuple[OperationModel, dict[str, Any]]:
        pairs = self._pairs(raw)
        action = ""
        for key, value in pairs:
            if key == "Action":
                action = value
        op = self.operation(action)
        plan = self.input_plan(op)
        if plan is None:
            return op, {}
        tree = build_query_tree([(k, v) for k, v in pairs if k not in ("Action", "Version")])
        try:
            params = _READER.read_structure(plan, tree)
        except WireValueError as err:
            raise self.wire_error(err) from None
        return op, params

    def _xmlns(self) -> str:
        return f' xmlns="{escape(self.namespace)}"' if self.namespace else ""

    def serialize_response(
        self, operation_name: str, result: dict[str, Any] | None, *, request_id: str | None = None
    ) -> RawResponse:
        op = self.operation(operation_name)
        request_id = request_id or new_request_id()
        inner = ""
        shape = op.output_shape
        if shape is not None:
            members = _WRITER.members(plan_for(shape), result or {})
            wrapper = shape.serialization.get("resultWrapper")
            inner = f"<{wrapper}>{members}</{wrapper}>" if wrapper else members
        name = f"{op.name}Response"
        xml = (
            f"<{name}{self._xmlns()}>{inner}"
            f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata></{name}>"
        )
        return RawResponse(200, {"Content-Type": _CONTENT_TYPE, "x-amzn-RequestId": request_id}, xml.encode())

    def serialize_error(
        self, operation_name: str | None, err: AwsError, *, request_id: str | None = None
    ) -> RawResponse:
        request_id = request_id or new_request_id()
        shape = self.error_shape(err.code)
        fields = ""
        if err.fields:
            if shape is not None:
                plan = plan_for(shape)
                known = {k: v for k, v in err.fields.items() if k in plan.by_name and k.lower() != "message"}
                fields = _WRITER.members(plan, known)
                extra = {k: v for k, v in err.fields.items() if k not in plan.by_name}
            else:
                extra = dict(err.fields)
            fields += "".join(f"<{k}>{xml_text(str(v))}</{k}>" for k, v in extra.items() if v is not None)
        kind = "Sender" if err.sender_fault else "Receiver"
        xml = (
            f"<ErrorResponse{self._xmlns()}><Error><Type>{kind}</Type><Code>{escape(err.code)}</Code>"
            f"<Message>{xml_text(err.message)}</Message>{fields}</Error>"
            f"<RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": _CONTENT_TYPE, "x-amzn-RequestId": request_id}
        headers.update(err.headers)
        return RawResponse(err.status, headers, xml.encode())
