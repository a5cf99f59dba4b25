"""The ``rest-json`` protocol: operations routed by method + URI template, members bound to
URI labels, query string, headers, status code or the body (one payload member or JSON).

Used by the SageMaker runtime: InvokeEndpoint is ``POST /endpoints/{EndpointName}/invocations``
with the raw payload as the body and ``X-Amzn-SageMaker-*`` headers. Errors carry
``x-amzn-ErrorType: Code`` and a JSON body with the message and the error shape's members.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel

from catkit.local.errors import AwsError
from catkit.local.protocols.base import Codec, new_request_id
from catkit.local.protocols.eventstream import CONTENT_TYPE as EVENT_STREAM_CONTENT_TYPE
from catkit.local.protocols.eventstream import encode_event
from catkit.local.protocols.json_codec import decode_json_body, error_fields
from catkit.local.protocols.plans import Member, Plan, plan_for
from catkit.local.protocols.raw import RawRequest, RawResponse
from catkit.local.protocols.reading import JsonReader, TextReader, WireValueError
from catkit.local.protocols.validate import validate
from catkit.local.protocols.writing import JsonWriter, format_timestamp

_READER = JsonReader()
_MAX_VALID = 1024  # KnownRoute.valid's bound
_TEXT = TextReader()
_WRITER = JsonWriter()


@dataclass(slots=True)
class _Route:
    op: OperationModel
    method: str
    regex: re.Pattern[str]
    labels: tuple[str, ...]
    fixed_query: dict[str, str]


def _compile_route(op: OperationModel) -> _Route:
    uri = op.http.get("requestUri", "/")
    path, _, query = uri.partition("?")
    labels: list[str] = []
    pattern = ["^"]
    pos = 0
    for match in re.finditer(r"\{([^}]+)\}", path):
        pattern.append(re.escape(path[pos : match.start()]))
        label = match.group(1)
        greedy = label.endswith("+")
        label = label.rstrip("+")
        labels.append(label)
        pattern.append(f"(?P<l{len(labels) - 1}>{'.+' if greedy else '[^/]+'})")
        pos = match.end()
    pattern.append(re.escape(path[pos:]))
    pattern.append("/?$" if path != "/" else "$")
    fixed = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            fixed[key] = value
    return _Route(
        op, op.http.get("method", "POST").upper(), re.compile("".join(pattern)), tuple(labels), fixed
    )


def _header_text(member: Member, value: Any) -> str:
    plan = member.plan
    if member.json_value:
        return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    kind = plan.type
    if kind == "timestamp":
        return str(format_timestamp(value, member.timestamp_format or plan.timestamp_format or "rfc822"))
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "list":
        return ",".join(str(v) for v in value if v is not None)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    return value if isinstance(value, str) else str(value)


class RestJsonCodec(Codec):
    """rest-json server side."""

    protocol = "rest-json"

    def __init__(self, service_name: str, model: Any) -> None:
        super().__init__(service_name, model)
        routes = [_compile_route(model.operation_model(name)) for name in model.operation_names]
        # Most specific first: more literal characters, then fewer labels.
        routes.sort(key=lambda r: (-len(r.fixed_query), -len(r.regex.pattern), len(r.labels)))
        self._routes = routes

    # -- requests -------------------------------------------------------------------------

    def match(self, raw: RawRequest) -> tuple[OperationModel, dict[str, str]]:
        """The operation ``raw`` addresses and its URI label values (decoded)."""
        method = raw.method.upper()
        path_matched = False
        for route in self._routes:
            found = route.regex.match(raw.path)
            if found is None:
                continue
            if any(raw.query_value(k) is None for k in route.fixed_query):
                continue
            path_matched = True
            if route.method != method:
                continue
            labels = {label: unquote(found.group(f"l{i}")) for i, label in enumerate(route.labels)}
            return route.op, labels
        if path_matched:
            raise AwsError(
                "UnknownOperationException",
                f"{raw.method} is not allowed on {raw.path} for {self.service_name}.",
                405,
            )
        raise AwsError(
            "UnknownOperationException",
            f"No {self.service_name} operation matches {raw.method} {raw.path}.",
            404,
        )

    def _decode(self, raw: RawRequest) -> tuple[OperationModel, dict[str, Any]]:
        op, labels = self.match(raw)
        plan = self.input_plan(op)
        if plan is None:
            return op, {}
        try:
            params = self._read_locations(plan, raw.headers, raw.query, labels)
            self._read_body(plan, raw, params)
        except WireValueError as err:
            raise self.wire_error(err) from None
        return op, params

    def _read_locations(self, plan: Plan, headers: Mapping[str, str], query: Mapping[str, Any],
                        labels: dict[str, str]) -> dict[str, Any]:
        """Members bound to URI labels, headers (``headers``: any case-insensitive mapping) and the query."""
        params: dict[str, Any] = {}
        for member in plan.members:
            location = member.location
            if location is None:
                continue
            try:
                if location == "uri":
                    text = labels.get(member.location_name)
                    if text is not None:
                        params[member.name] = _TEXT.scalar(member.plan, text)
                elif location == "header":
                    text = headers.get(member.location_name)
                    if text is not None:
                        params[member.name] = self._header_value(member, text)
                elif location == "headers":
                    prefix = member.location_name.lower()
                    found = {k[len(prefix) :]: v for k, v in headers.items() if k.lower().startswith(prefix)}
                    if found:
                        params[member.name] = found
                elif location == "querystring":
                    value = self._query_value(member, query)
                    if value is not None:
                        params[member.name] = value
            except WireValueError as err:
                err.path.insert(0, member.location_name)
                raise
        return params

    @staticmethod
    def _header_value(member: Member, text: str) -> Any:
        plan = member.plan
        if member.json_value:
            try:
                return json.loads(base64.b64decode(text, validate=True))
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                raise WireValueError("base64-encoded JSON", text) from exc
        if plan.type == "list":
            element = plan.element
            assert element is not None
            return [_TEXT.scalar(element, part.strip()) for part in text.split(",")]
        return _TEXT.scalar(plan, text)

    @staticmethod
    def _query_value(member: Member, query: Mapping[str, Any]) -> Any:
        plan = member.plan
        if plan.type == "map":
            return {k: v for k, v in query.items()}
        value = query.get(member.location_name)
        if value is None:
            return None
        if plan.type == "list":
            element = plan.element
            assert element is not None
            values = value if isinstance(value, list) else [value]
            return [_TEXT.scalar(element, v) for v in values]
        if isinstance(value, list):
            value = value[-1]
        return _TEXT.scalar(plan, value)

    def _read_body(self, plan: Plan, raw: RawRequest, params: dict[str, Any]) -> None:
        if plan.payload:
            member = plan.by_name[plan.payload]
            kind = member.plan.type
            if kind == "blob":
                # A blob payload is opaque: any Content-Encoding belongs to it (the runtime
                # hands InvokeEndpoint bodies to the model as sent).
                if raw.body or member.name in plan.required:
                    params[member.name] = raw.body
                return
            body = self.body(raw)
            if kind == "string":
                try:
                    params[member.name] = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise WireValueError("UTF-8 text", body) from None
            elif body.strip():
                document = decode_json_body(body, self)
                try:
                    params[member.name] = _READER.read(member.plan, document)
                except WireValueError as err:
                    err.path.insert(0, member.name)
                    raise
            return
        body = self.body(raw)
        if body.strip():
            document = decode_json_body(body, self)
            params.update(_READER.read_structure(plan, document))

    def known_route(self, operation_name: str) -> KnownRoute | None:
        """``operation_name`` resolved ahead of time, for a caller that already knows a request
        addresses it (the gateway's InvokeEndpoint path): None unless its input is bound to URI
        labels and scalar headers only, with a blob payload (nothing read from the query or a JSON body)."""
        op = self.operation(operation_name)
        plan = self.input_plan(op)
        if plan is None or not plan.payload or plan.by_name[plan.payload].plan.type != "blob":
            return None
        if any(m.location not in (None, "uri", "header") for m in plan.members):
            return None
        if any(m.location == "header" and (m.json_value or m.plan.type in ("list", "map")) for m in plan.members):
            return None  # KnownRoute.parse keys its validation cache on scalar values
        if any(m.location is None and m.name != plan.payload for m in plan.members):
            return None
        route = next(r for r in self._routes if r.op is op)
        return KnownRoute(self, op, plan, route.labels, plan.payload, self.output_plan(op))

    # -- responses ------------------------------------------------------------------------

    def serialize_response(
        self, operation_name: str, result: dict[str, Any] | None, *, request_id: str | None = None
    ) -> RawResponse:
        op = self.operation(operation_name)
        return self._response(op, self.output_plan(op), result, request_id)

    def _response(self, op: OperationModel, plan: Plan | None, result: dict[str, Any] | None,
                  request_id: str | None) -> RawResponse:
        status = int(op.http.get("responseCode", 200))
        headers: dict[str, str] = {"x-amzn-RequestId": request_id or new_request_id()}
        result = result or {}
        body = b""
        if plan is None:
            return RawResponse(status, headers, body)
        status = self._write_locations(plan, result, headers, status)
        if plan.payload:
            member = plan.by_name[plan.payload]
            value = result.get(member.name)
            kind = member.plan.type
            if member.plan.event_stream:
                # Events given up front are sent in one body; a streaming gateway sends these
                # headers first, then ``encode_event`` chunks as events happen.
                if value:
                    body = b"".join(encode_event(member.plan, event) for event in value)
                headers["Content-Type"] = EVENT_STREAM_CONTENT_TYPE
            elif kind in ("blob", "string"):
                if value is not None:
                    body = value.encode("utf-8") if isinstance(value, str) else bytes(value)
                headers.setdefault("Content-Type", "application/octet-stream")
            else:
                if value is not None:
                    body = json.dumps(_WRITER.write(member.plan, value), separators=(",", ":")).encode()
                headers.setdefault("Content-Type", "application/json")
        else:
            document = _WRITER.write_structure(plan, result)
            body = json.dumps(document, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        return RawResponse(status, headers, body)

    def encode_event(self, operation_name: str, event: dict[str, Any]) -> bytes:
        """One event-stream message for a streaming operation's output, e.g.
        ``encode_event("InvokeEndpointWithResponseStream", {"PayloadPart": {"Bytes": b"..."}})``
        or ``{"ModelStreamError": {"Message": ..., "ErrorCode": ...}}``."""
        plan = self.output_plan(self.operation(operation_name))
        stream = None
        if plan is not None and plan.payload:
            stream = plan.by_name[plan.payload].plan
        if stream is None or not stream.event_stream:
            raise ValueError(f"{operation_name} does not return an event stream")
        return encode_event(stream, event)

    @staticmethod
    def _write_locations(plan: Plan, result: dict[str, Any], headers: dict[str, str], status: int) -> int:
        for member in plan.members:
            location = member.location
            if location is None:
                continue
            value = result.get(member.name)
            if value is None:
                continue
            if location == "header":
                headers[member.location_name] = _header_text(member, value)
            elif location == "headers":
                for key, item in value.items():
                    headers[member.location_name + key] = str(item)
            elif location == "statusCode":
                status = int(value)
        return status

    def serialize_error(
        self, operation_name: str | None, err: AwsError, *, request_id: str | None = None
    ) -> RawResponse:
        shape = self.error_shape(err.code)
        headers: dict[str, str] = {
            "x-amzn-RequestId": request_id or new_request_id(),
            "x-amzn-ErrorType": err.code,
            "Content-Type": "application/json",
        }
        body: dict[str, Any] = {self.message_key(shape): err.message}
        body.update(error_fields(self, err, _WRITER))
        if shape is not None and err.fields:
            self._write_locations(plan_for(shape), err.fields, headers, err.status)
        headers.update(err.headers)
        return RawResponse(err.status, headers, json.dumps(body, separators=(",", ":"), default=str).encode())


@dataclass(slots=True)
class KnownRoute:
    """One rest-json operation resolved ahead of time (:meth:`RestJsonCodec.known_route`): parses
    a request the caller has already matched to it - no route matching, no copy of the headers -
    with the same readers, validation and response writer as :meth:`RestJsonCodec.parse_request`
    and :meth:`RestJsonCodec.serialize_response`, so both paths give the same params and bytes."""

    codec: RestJsonCodec
    op: OperationModel
    plan: Plan
    labels: tuple[str, ...]
    payload: str
    output: Plan | None
    #: The member values (the blob payload as its length) that passed validation: a request with
    #: the same ones passes again without walking the model (bounded; cleared when full).
    valid: set[Any] = field(default_factory=set)
    #: Per URI/header member, in the plan's order: (member, index of its URI label or -1 for a
    #: header, whether its text is its value as it is - a plain string header or label).
    readers: tuple[tuple[Member, int, bool], ...] = ()
    #: (name, header) of each output member when the output is plain string headers and a blob
    #: payload (what :meth:`serialize` writes without the general writer), else None.
    writers: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        self.readers = tuple(
            (m, self.labels.index(m.location_name) if m.location == "uri" else -1,
             m.plan.type == "string" and not m.json_value)
            for m in self.plan.members if m.location == "header" or (m.location == "uri" and m.location_name in self.labels)
        )
        out = self.output
        if out is not None and out.payload and out.by_name[out.payload].plan.type == "blob" \
                and not out.by_name[out.payload].plan.event_stream and all(
                    m.name == out.payload or (m.location == "header" and m.plan.type == "string" and not m.json_value)
                    for m in out.members):
            self.writers = tuple((m.name, m.location_name) for m in out.members if m.name != out.payload)

    @property
    def name(self) -> str:
        return self.op.name

    def parse(self, labels: tuple[str, ...], headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Validated params from the URI label values (percent-encoded, in :attr:`labels` order),
        ``headers`` (a case-insensitive mapping) and the raw ``body``; AwsError as parse_request.
        Reads what ``_read_locations`` reads, with the members' readers chosen ahead of time."""
        pairs: list[tuple[str, Any]] = []  # (name, value) of each member found, in the plan's order
        get = headers.get
        member = None
        try:
            for member, label, plain in self.readers:
                if label >= 0:
                    text = unquote(labels[label])
                    pairs.append((member.name, text if plain else _TEXT.scalar(member.plan, text)))
                else:
                    text = get(member.location_name)
                    if text is not None:
                        pairs.append((member.name, text if plain else self.codec._header_value(member, text)))
        except WireValueError as err:
            assert member is not None
            err.path.insert(0, member.location_name)
            raise self.codec.wire_error(err) from None
        plan = self.plan
        params = dict(pairs)
        given = bool(body) or self.payload in plan.required
        if given:  # as _read_body: a blob payload goes through as sent
            params[self.payload] = body
        # The model constrains a blob by its length only (validate._check), so the other members'
        # values and the body's length decide the outcome. Header-bound members are scalars (hashable).
        key = (*pairs, len(body), given)
        if key not in self.valid:
            validate(plan, params, self.codec.style)  # raises AwsError (ValidationError) when invalid
            if len(self.valid) >= _MAX_VALID:
                self.valid.clear()
            self.valid.add(key)
        return params

    def serialize(self, result: dict[str, Any] | None, request_id: str) -> RawResponse:
        """The response carrying ``result`` (as ``serialize_response``; string headers and a blob
        payload written as ``_response`` writes them, without walking the plan)."""
        writers = self.writers
        if writers is None:
            return self.codec._response(self.op, self.output, result, request_id)
        headers: dict[str, str] = {"x-amzn-RequestId": request_id or new_request_id()}
        result = result or {}
        for name, header in writers:
            value = result.get(name)
            if value is not None:
                headers[header] = value if isinstance(value, str) else str(value)  # _header_text of a string
        value = result.get(self.output.payload)  # type: ignore[union-attr]
        body = b"" if value is None else value.encode("utf-8") if isinstance(value, str) else bytes(value)
        headers.setdefault("Content-Type", "application/octet-stream")
        return RawResponse(int(self.op.http.get("responseCode", 200)), headers, body)
