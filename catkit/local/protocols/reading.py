"""Turning decoded wire values into botocore-shaped Python values, strictly by shape.

JSON (json / rest-json bodies), CBOR and query (form) requests first decode to generic
trees; a reader then walks the operation's input shape: timestamps become timezone-aware
UTC ``datetime``, blobs ``bytes``, numbers and booleans are typed per shape, unknown members
are ignored (as AWS does). A value of the wrong type raises :class:`WireValueError` naming
the member path; the codec turns it into the protocol's serialization error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import math
import re
from typing import Any

from botocore.utils import parse_timestamp

from catkit.local.protocols.plans import Plan, describe_type
from catkit.timeconv import from_epoch

UTC = _dt.UTC
_INT_RE = re.compile(r"[+-]?\d+")
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_LOCATED = frozenset(("uri", "querystring", "header", "headers", "statusCode"))
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class WireValueError(Exception):
    """A wire value does not have the type its shape requires."""

    def __init__(self, expected: str, value: Any, detail: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.detail = detail
        self.path: list[str] = []

    def describe(self) -> str:
        where = ".".join(self.path) or "the request body"
        got = describe_type(self.value)
        extra = f" ({self.detail})" if self.detail else ""
        return f"Cannot read {where}: expected {self.expected}, got {got}{extra}."


def _epoch_to_datetime(value: float) -> _dt.datetime:
    if isinstance(value, float) and not math.isfinite(value):
        raise WireValueError("a timestamp", value, "not a finite number")
    try:
        return from_epoch(value)
    except (OverflowError, OSError, ValueError) as exc:
        raise WireValueError("a timestamp", value, "out of range") from exc


def parse_timestamp_text(text: str) -> _dt.datetime:
    """ISO 8601, RFC 822 or epoch-seconds text -> aware UTC datetime (WireValueError if not)."""
    try:
        parsed = parse_timestamp(text)
    except Exception as exc:  # botocore raises ValueError or its own errors
        raise WireValueError("a timestamp", text, "unrecognised format") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class JsonReader:
    """Reads ``json.loads`` output (json and rest-json bodies)."""

    def read(self, plan: Plan, value: Any) -> Any:
        handler = getattr(self, "_" + plan.type, None)
        if handler is None:
            return value
        return handler(plan, value)

    def read_structure(self, plan: Plan, value: Any) -> dict[str, Any]:
        """The top-level input structure (members bound to HTTP locations are skipped)."""
        return self._structure(plan, value)

    def _structure(self, plan: Plan, value: Any) -> Any:
        if plan.document:
            return value
        if not isinstance(value, dict):
            raise WireValueError("a structure", value)
        result: dict[str, Any] = {}
        for member in plan.members:
            if member.location in _LOCATED:
                continue
            raw = value.get(member.wire)
            if raw is None:
                continue
            try:
                result[member.name] = self.read(member.plan, raw)
            except WireValueError as err:
                err.path.insert(0, member.name)
                raise
        return result

    def _list(self, plan: Plan, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise WireValueError("a list", value)
        element = plan.element
        assert element is not None
        out = []
        for index, item in enumerate(value, 1):
            if item is None:
                err = WireValueError(f"a {element.type}", item, "null list element")
                err.path.append(str(index))
                raise err
            try:
                out.append(self.read(element, item))
            except WireValueError as err:
                err.path.insert(0, str(index))
                raise
        return out

    def _map(self, plan: Plan, value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise WireValueError("a map", value)
        assert plan.key is not None and plan.value is not None
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise WireValueError("a string map key", key)
            if item is None:
                continue
            try:
                out[key] = self.read(plan.value, item)
            except WireValueError as err:
                err.path.insert(0, key)
                raise
        return out

    def _string(self, plan: Plan, value: Any) -> str:
        if not isinstance(value, str):
            raise WireValueError("a string", value)
        return value

    def _integer(self, plan: Plan, value: Any) -> int:
        if isinstance(value, bool):
            raise WireValueError("an integer", value)
        if isinstance(value, int):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        else:
            raise WireValueError("an integer", value)
        if not _LONG_MIN <= result <= _LONG_MAX:
            raise WireValueError("an integer", value, "out of range")
        return result

    _long = _integer

    def _float(self, plan: Plan, value: Any) -> float:
        if isinstance(value, bool):
            raise WireValueError("a number", value)
        if isinstance(value, float):
            return value
        if isinstance(value, int):
            try:
                return float(value)
            except OverflowError as exc:
                raise WireValueError("a number", value, "out of range") from exc
        if isinstance(value, str) and value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        raise WireValueError("a number", value)

    _double = _float

    def _boolean(self, plan: Plan, value: Any) -> bool:
        if not isinstance(value, bool):
            raise WireValueError("a boolean", value)
        return value

    def _timestamp(self, plan: Plan, value: Any) -> _dt.datetime:
        if isinstance(value, bool):
            raise WireValueError("a timestamp", value)
        if isinstance(value, int | float):
            return _epoch_to_datetime(value)
        if isinstance(value, str):
            return parse_timestamp_text(value)
        raise WireValueError("a timestamp", value)

    def _blob(self, plan: Plan, value: Any) -> bytes:
        if not isinstance(value, str):
            raise WireValueError("a base64-encoded string", value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WireValueError("a base64-encoded string", value, "invalid base64") from exc


class CborReader(JsonReader):
    """Reads ``cbor2.loads`` output: blobs are byte strings, timestamps tag 1 (datetime)."""

    def _blob(self, plan: Plan, value: Any) -> bytes:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        raise WireValueError("a byte string", value)

    def _timestamp(self, plan: Plan, value: Any) -> _dt.datetime:
        if isinstance(value, _dt.datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _epoch_to_datetime(value)
        raise WireValueError("a timestamp (CBOR tag 1)", value)

    def _float(self, plan: Plan, value: Any) -> float:
        if isinstance(value, str):  # CBOR carries NaN/Infinity natively, not as text
            raise WireValueError("a number", value)
        return super()._float(plan, value)

    _double = _float


class TextReader:
    """Typed scalars from text: query parameters, HTTP headers, URI labels."""

    def scalar(self, plan: Plan, text: str) -> Any:
        kind = plan.type
        if kind == "string":
            return text
        if kind in ("integer", "long"):
            if not _INT_RE.fullmatch(text):
                raise WireValueError("an integer", text)
            result = int(text)
            if not _LONG_MIN <= result <= _LONG_MAX:
                raise WireValueError("an integer", text, "out of range")
            return result
        if kind in ("float", "double"):
            if text in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[text]
            try:
                result = float(text)
            except ValueError as exc:
                raise WireValueError("a number", text) from exc
            if "_" in text or not math.isfinite(result):
                raise WireValueError("a number", text)
            return result
        if kind == "boolean":
            lowered = text.lower()
            if lowered == "true":
                return True
            if lowered == "false":
                return False
            raise WireValueError("a boolean", text)
        if kind == "timestamp":
            return parse_timestamp_text(text)
        if kind == "blob":
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise WireValueError("a base64-encoded string", text, "invalid base64") from exc
        raise WireValueError(f"a {kind}", text)


LEAF = ""  # key under which a query tree node keeps its own value


def build_query_tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[("A.member.1.B", "x")]`` -> ``{"A": {"member": {"1": {"B": {"": "x"}}}}}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        node = root
        for part in key.split("."):
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            node = child
        node[LEAF] = value
    return root


class QueryReader(TextReader):
    """Reads a query tree (see :func:`build_query_tree`) by shape."""

    def read(self, plan: Plan, node: dict[str, Any]) -> Any:
        kind = plan.type
        if kind == "structure":
            return self._structure(plan, node)
        if kind == "list":
            return self._list(plan, node)
        if kind == "map":
            return self._map(plan, node)
        if LEAF not in node:
            raise WireValueError(f"a {kind}", None, "no value given")
        return self.scalar(plan, node[LEAF])

    def read_structure(self, plan: Plan, node: dict[str, Any]) -> dict[str, Any]:
        return self._structure(plan, node)

    def _structure(self, plan: Plan, node: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for member in plan.members:
            key = member.flattened_name or member.query
            child = node.get(key)
            if child is None:
                continue
            try:
                result[member.name] = self.read(member.plan, child)
            except WireValueError as err:
                err.path.insert(0, key)
                raise
        return result

    @staticmethod
    def _indexed(node: dict[str, Any], what: str) -> list[tuple[int, dict[str, Any]]]:
        items = []
        for key, child in node.items():
            if key == LEAF:
                continue
            if not key.isdigit() or int(key) < 1:
                raise WireValueError(f"{what} index", key, "indexes are 1, 2, 3, ...")
            items.append((int(key), child))
        items.sort(key=lambda pair: pair[0])
        return items

    def _list(self, plan: Plan, node: dict[str, Any]) -> list[Any]:
        element = plan.element
        assert element is not None
        if plan.flattened:
            container = node
        else:
            container = node.get(plan.element_name)
            if container is None:
                if node.get(LEAF) == "" and len(node) == 1:
                    return []  # the query protocol's empty list: "Name="
                raise WireValueError("a list", node.get(LEAF), f"expected {plan.element_name}.N keys")
        try:
            entries = self._indexed(container, "a list")
        except WireValueError as err:
            if not plan.flattened:
                err.path.insert(0, plan.element_name)
            raise
        out = []
        for index, child in entries:
            try:
                out.append(self.read(element, child))
            except WireValueError as err:
                err.path[:0] = [plan.element_name, str(index)]
                raise
        return out

    def _map(self, plan: Plan, node: dict[str, Any]) -> dict[str, Any]:
        assert plan.key is not None and plan.value is not None
        container = node if plan.flattened else node.get("entry")
        if container is None:
            if node.get(LEAF) == "" and len(node) == 1:
                return {}
            raise WireValueError("a map", node.get(LEAF), "expected entry.N.key/value keys")
        try:
            entries = self._indexed(container, "a map entry")
        except WireValueError as err:
            if not plan.flattened:
                err.path.insert(0, "entry")
            raise
        out: dict[str, Any] = {}
        for index, child in entries:
            try:
                key_node = child.get(plan.key_name)
                if key_node is None:
                    raise WireValueError("a map key", None)
                key = self.read(plan.key, key_node)
                value_node = child.get(plan.value_name)
                if value_node is not None:
                    out[key] = self.read(plan.value, value_node)
            except WireValueError as err:
                err.path[:0] = ["entry", str(index)]
                raise
        return out
