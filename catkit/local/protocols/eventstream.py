"""AWS event-stream framing for streamed responses (InvokeEndpointWithResponseStream).

Each event is one binary message: prelude (total length, headers length, CRC32), headers
(``:message-type``, ``:event-type`` / ``:exception-type``, ``:content-type``), payload and
a trailing CRC32 — what ``botocore.eventstream`` decodes. Events are given as botocore
shapes them: ``{"PayloadPart": {"Bytes": b"..."}}``; an error member of the stream (e.g.
``{"ModelStreamError": {"Message": ..., "ErrorCode": ...}}``) becomes an exception message.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from typing import Any

from catkit.local.protocols.plans import Plan
from catkit.local.protocols.writing import JsonWriter, to_epoch

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_WRITER = JsonWriter()

HeaderValue = str | bytes | bool | int | tuple[str, Any]


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    out = bytearray(struct.pack("B", len(raw_name)) + raw_name)
    if isinstance(value, tuple):  # explicitly typed: ("timestamp", epoch) / ("uuid", str) / ("int", n)
        kind, item = value
        if kind == "timestamp":
            out += struct.pack(">Bq", 8, round(to_epoch(item) * 1000))
        elif kind == "uuid":
            out += struct.pack("B", 9) + uuid.UUID(str(item)).bytes
        elif kind == "int":
            out += struct.pack(">Bi", 4, int(item))
        else:
            raise ValueError(f"unknown event header type {kind!r}")
    elif isinstance(value, bool):
        out += struct.pack("B", 0 if value else 1)
    elif isinstance(value, int):
        out += struct.pack(">Bq", 5, value)
    elif isinstance(value, bytes):
        out += struct.pack(">BH", 6, len(value)) + value
    else:
        raw = str(value).encode("utf-8")
        out += struct.pack(">BH", 7, len(raw)) + raw
    return bytes(out)


def encode_message(headers: dict[str, HeaderValue], payload: bytes) -> bytes:
    """One event-stream message with ``headers`` and ``payload``."""
    encoded_headers = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded_headers + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def _header_value(plan: Plan, value: Any) -> HeaderValue:
    kind = plan.type
    if kind == "timestamp":
        return ("timestamp", value)
    if kind == "integer":
        return ("int", value)
    if kind == "blob":
        return value.encode() if isinstance(value, str) else bytes(value)
    if kind in ("long", "boolean"):
        return value
    return str(value)


def encode_event(stream: Plan, event: dict[str, Any]) -> bytes:
    """The message for one event of the event-stream union ``stream``."""
    if len(event) != 1:
        raise ValueError(f"an event names exactly one member of {stream.name}, got {sorted(event)}")
    ((name, value),) = event.items()
    member = stream.by_name.get(name)
    if member is None:
        raise ValueError(f"{name!r} is not an event of {stream.name}; events: {sorted(stream.by_name)}")
    plan = member.plan
    value = value or {}
    if plan.exception:
        body = _WRITER.write_structure(plan, value)
        headers: dict[str, HeaderValue] = {
            ":message-type": "exception",
            ":exception-type": name,
            ":content-type": "application/json",
        }
        return encode_message(headers, json.dumps(body, separators=(",", ":")).encode())
    headers = {":message-type": "event", ":event-type": name}
    payload: bytes | None = None
    for item in plan.members:
        if item.name not in value or value[item.name] is None:
            continue
        if item.event_header:
            headers[item.name] = _header_value(item.plan, value[item.name])
        elif item.event_payload:
            data = value[item.name]
            if item.plan.type == "blob":
                payload = data.encode() if isinstance(data, str) else bytes(data)
                headers[":content-type"] = "application/octet-stream"
            elif item.plan.type == "string":
                payload = str(data).encode("utf-8")
                headers[":content-type"] = "text/plain"
            else:
                payload = json.dumps(_WRITER.write(item.plan, data), separators=(",", ":")).encode()
                headers[":content-type"] = "application/json"
    if payload is None:
        body = {
            m.wire: _WRITER.write(m.plan, value[m.name], m.timestamp_format)
            for m in plan.members
            if not m.event_header and value.get(m.name) is not None
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers[":content-type"] = "application/json"
    return encode_message(headers, payload)
