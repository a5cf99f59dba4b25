"""Per-shape facts the codecs need on every request, computed once per botocore shape.

Walking botocore ``Shape`` objects is slow-ish (properties, dict lookups); a ``Plan`` holds
what the readers, writers and validator use: type, wire names, constraints, compiled pattern.
Plans are cached by shape identity (the shapes live as long as their cached service model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.model import Shape

from catkit.local.protocols.javaregex import compile_pattern


@dataclass(slots=True, eq=False)
class Member:
    """One member of a structure: its Python key, wire names and target plan."""

    name: str
    wire: str  # JSON/CBOR/XML element name
    query: str  # query-protocol key segment
    location: str | None  # uri | querystring | header | headers | statusCode | None (body)
    location_name: str
    timestamp_format: str | None
    json_value: bool  # a header carrying base64 JSON
    flattened_name: str | None  # query/xml: flattened list/map element name
    event_payload: bool  # event member carried as the event message's payload
    event_header: bool  # event member carried as an event message header
    plan: Plan


@dataclass(slots=True, eq=False)
class Plan:
    """Everything about one shape that the codecs look at."""

    shape: Shape
    name: str
    type: str
    min: float | None
    max: float | None
    enum: tuple[str, ...] | None
    enum_set: frozenset[str] | None
    pattern: str | None
    matcher: Callable[[str], object] | None
    sensitive: bool
    document: bool
    union: bool
    required: tuple[str, ...]
    members: tuple[Member, ...]
    by_name: dict[str, Member]
    flattened: bool
    element: Plan | None  # list member
    element_name: str  # list member element name (query/xml), default "member"
    key: Plan | None  # map key
    value: Plan | None  # map value
    key_name: str
    value_name: str
    timestamp_format: str | None
    payload: str | None  # structure: member sent as the HTTP body (rest protocols)
    event_stream: bool  # structure: a union of events sent as an event stream
    exception: bool  # structure: an error shape


_by_identity: dict[int, Plan] = {}
_by_key: dict[tuple, Plan] = {}


def _key(shape: Shape) -> tuple:
    # botocore builds a new Shape object for every member reference, so recursive models
    # (A -> B -> A) would never end if plans were keyed by object identity alone. A shape
    # is identified by its model (resolver), name and the serialization traits merged in
    # from the member reference (location, name, timestampFormat, ...).
    resolver = getattr(shape, "_shape_resolver", None)
    return (id(resolver), shape.name, tuple(sorted(shape.serialization.items())))


def plan_for(shape: Shape) -> Plan:
    """The cached :class:`Plan` for ``shape``."""
    plan = _by_identity.get(id(shape))
    if plan is not None and plan.shape is shape:
        return plan
    key = _key(shape)
    plan = _by_key.get(key)
    if plan is None:
        plan = _build(shape, key)
    if len(_by_identity) < 100_000:  # fast path for shapes seen again (operation inputs)
        _by_identity[id(shape)] = plan
        _shape_refs.append(shape)  # keep alive so the id stays unique
    return plan


_shape_refs: list[Shape] = []


def _build(shape: Shape, key: tuple) -> Plan:
    meta = shape.metadata
    pattern = meta.get("pattern")
    enum = tuple(meta["enum"]) if meta.get("enum") else None
    type_name = shape.type_name
    plan = Plan(
        shape=shape,
        name=shape.name,
        type=type_name,
        min=meta.get("min"),
        max=meta.get("max"),
        enum=enum,
        enum_set=frozenset(enum) if enum else None,
        pattern=pattern,
        matcher=compile_pattern(pattern) if pattern and type_name == "string" else None,
        sensitive=bool(meta.get("sensitive")),
        document=bool(meta.get("document")),
        union=bool(meta.get("union")),
        required=tuple(meta.get("required", ())),
        members=(),
        by_name={},
        flattened=bool(shape.serialization.get("flattened")),
        element=None,
        element_name="member",
        key=None,
        value=None,
        key_name="key",
        value_name="value",
        timestamp_format=shape.serialization.get("timestampFormat"),
        payload=shape.serialization.get("payload"),
        event_stream=bool(shape.serialization.get("eventstream")),
        exception=bool(meta.get("exception")),
    )
    # Register before recursing: models contain recursive shapes.
    _by_key[key] = plan
    if type_name == "structure" and not plan.document:
        members = []
        for name, member_shape in shape.members.items():
            ser = member_shape.serialization
            flattened_name = None
            if member_shape.type_name in ("list", "map") and member_shape.serialization.get("flattened"):
                inner = member_shape.member if member_shape.type_name == "list" else None
                if inner is not None:
                    flattened_name = inner.serialization.get("name")
            members.append(
                Member(
                    name=name,
                    wire=ser.get("name", name),
                    query=ser.get("locationNameForQueryCompatibility") or ser.get("name", name),
                    location=ser.get("location"),
                    location_name=ser.get("name", name),
                    timestamp_format=ser.get("timestampFormat"),
                    json_value=bool(ser.get("jsonvalue")),
                    flattened_name=flattened_name,
                    event_payload=bool(ser.get("eventpayload")),
                    event_header=bool(ser.get("eventheader")),
                    plan=plan_for(member_shape),
                )
            )
        plan.members = tuple(members)
        plan.by_name = {m.name: m for m in members}
    elif type_name == "list":
        plan.element = plan_for(shape.member)
        plan.element_name = shape.member.serialization.get("name", "member")
    elif type_name == "map":
        plan.key = plan_for(shape.key)
        plan.value = plan_for(shape.value)
        plan.key_name = shape.key.serialization.get("name", "key")
        plan.value_name = shape.value.serialization.get("name", "value")
    return plan


def lower_first(name: str) -> str:
    """``EndpointName`` -> ``endpointName`` (how AWS names members in validation messages)."""
    return name[:1].lower() + name[1:]


def describe_type(value: Any) -> str:
    """A short name for a wire value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray):
        return "byte string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
