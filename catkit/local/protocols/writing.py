"""Turning a service's result dict into wire values, by the operation's output shape.

Services return botocore-shaped dicts; timestamps may be ``datetime`` (naive = UTC), epoch
seconds or ISO text, blobs ``bytes`` or ``str``. Writers emit what botocore's client-side
parsers expect: JSON (epoch-second timestamps, base64 blobs, "NaN"/"Infinity" floats), CBOR
(tag 1 timestamps, byte strings) and query XML (ISO 8601 timestamps). ``None`` members are
left out; keys the shape does not know are dropped.
"""

from __future__ import annotations

import base64
import calendar
import datetime as _dt
import math
import re
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

from cbor2 import CBORTag

from catkit import timeconv
from catkit.local.protocols.plans import Plan
from catkit.local.protocols.reading import parse_timestamp_text

UTC = _dt.UTC
_LOCATED = frozenset(("uri", "querystring", "header", "headers", "statusCode"))
# Characters XML 1.0 cannot carry at all (even escaped); they are replaced by U+FFFD.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: str) -> str:
    """``value`` escaped for XML element text. Carriage returns are kept as ``&#13;`` (XML
    parsers would turn a literal one into a newline)."""
    text = escape(value)
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if _XML_INVALID.search(text):
        text = _XML_INVALID.sub("\ufffd", text)
    return text


def to_datetime(value: Any) -> _dt.datetime:
    """datetime / epoch seconds / timestamp text -> aware UTC datetime."""
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timeconv.from_epoch(value)
    if isinstance(value, str):
        return parse_timestamp_text(value)
    raise TypeError(f"cannot use {value!r} as a timestamp")


def to_epoch(value: Any) -> int | float:
    """Epoch seconds (int when whole) for a timestamp value."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        seconds = timeconv.to_epoch(to_datetime(value))
    if isinstance(seconds, float) and seconds.is_integer():
        return int(seconds)
    return seconds


def format_timestamp(value: Any, fmt: str) -> Any:
    """A timestamp in botocore's ``timestampFormat`` (unixTimestamp, iso8601, rfc822)."""
    fmt = fmt.lower()
    if fmt == "unixtimestamp":
        return to_epoch(value)
    moment = to_datetime(value)
    if fmt == "rfc822":
        return formatdate(calendar.timegm(moment.utctimetuple()), usegmt=True)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _blob_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _special_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class JsonWriter:
    """Result -> ``json.dumps``-ready values (json and rest-json bodies)."""

    default_timestamp_format = "unixTimestamp"

    def write(self, plan: Plan, value: Any, timestamp_format: str | None = None) -> Any:
        kind = plan.type
        if kind == "structure":
            return self.write_structure(plan, value)
        if kind == "list":
            element = plan.element
            assert element is not None
            return [self.write(element, item) for item in value if item is not None]
        if kind == "map":
            assert plan.value is not None
            return {str(k): self.write(plan.value, v) for k, v in value.items() if v is not None}
        if kind == "string":
            return value if isinstance(value, str) else str(value)
        if kind in ("integer", "long"):
            return int(value)
        if kind in ("float", "double"):
            return _special_float(float(value))
        if kind == "boolean":
            return bool(value)
        if kind == "timestamp":
            fmt = timestamp_format or plan.timestamp_format or self.default_timestamp_format
            return format_timestamp(value, fmt)
        if kind == "blob":
            return base64.b64encode(_blob_bytes(value)).decode("ascii")
        return value

    def write_structure(self, plan: Plan, value: Any, *, body_only: bool = True) -> Any:
        if plan.document:
            return value
        out: dict[str, Any] = {}
        by_name = plan.by_name
        for name, item in value.items():
            if item is None:
                continue
            member = by_name.get(name)
            if member is None or (body_only and member.location in _LOCATED):
                continue
            out[member.wire] = self.write(member.plan, item, member.timestamp_format)
        return out


class CborWriter(JsonWriter):
    """Result -> ``cbor2.dumps``-ready values: tag-1 timestamps, raw byte strings."""

    def write(self, plan: Plan, value: Any, timestamp_format: str | None = None) -> Any:
        kind = plan.type
        if kind == "timestamp":
            return CBORTag(1, to_epoch(value))
        if kind == "blob":
            return _blob_bytes(value)
        if kind in ("float", "double"):
            return float(value)
        return super().write(plan, value, timestamp_format)


class XmlWriter:
    """Result -> query-protocol XML text (elements named by the shape, ISO timestamps)."""

    def element(self, name: str, plan: Plan, value: Any, timestamp_format: str | None = None) -> str:
        kind = plan.type
        if kind == "structure":
            return f"<{name}>{self.members(plan, value)}</{name}>"
        if kind == "list":
            element = plan.element
            assert element is not None
            items = "".join(self.element(plan.element_name, element, v) for v in value if v is not None)
            if plan.flattened:
                return "".join(self.element(name, element, v) for v in value if v is not None)
            return f"<{name}>{items}</{name}>"
        if kind == "map":
            assert plan.key is not None and plan.value is not None
            entries = "".join(
                f"<entry>{self.element(plan.key_name, plan.key, k)}{self.element(plan.value_name, plan.value, v)}</entry>"
                for k, v in value.items()
                if v is not None
            )
            return f"<{name}>{entries}</{name}>"
        return f"<{name}>{xml_text(self.scalar(plan, value, timestamp_format))}</{name}>"

    def members(self, plan: Plan, value: dict[str, Any]) -> str:
        parts = []
        by_name = plan.by_name
        for member_name, item in value.items():
            if item is None:
                continue
            member = by_name.get(member_name)
            if member is None:
                continue
            name = member.flattened_name or member.wire
            parts.append(self.element(name, member.plan, item, member.timestamp_format))
        return "".join(parts)

    @staticmethod
    def scalar(plan: Plan, value: Any, timestamp_format: str | None = None) -> str:
        kind = plan.type
        if kind == "boolean":
            return "true" if value else "false"
        if kind == "timestamp":
            return str(format_timestamp(value, timestamp_format or plan.timestamp_format or "iso8601"))
        if kind == "blob":
            return base64.b64encode(_blob_bytes(value)).decode("ascii")
        if kind in ("float", "double"):
            special = _special_float(float(value))
            return special if isinstance(special, str) else repr(float(value))
        if kind in ("integer", "long"):
            return str(int(value))
        return value if isinstance(value, str) else str(value)
