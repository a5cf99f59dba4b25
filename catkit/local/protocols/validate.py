"""Server-side input validation against botocore's model constraints, with AWS's messages.

botocore's client-side ``ParamValidator`` checks required members, types and minimums; AWS
also enforces ``max``, ``enum`` and ``pattern``. :func:`find_violations` checks all of them
and collects every violation (AWS reports them all at once); :class:`CoralStyle` renders
them the way SageMaker/Application Auto Scaling/runtime do ("2 validation errors detected:
Value 'x' at 'endpointName' failed to satisfy constraint: ..."), :class:`QueryStyle` the way
CloudWatch does (``MissingParameter`` "The parameter MetricData.member.1.MetricName is
required.", ``InvalidParameterValue`` ...).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.protocols.plans import Plan, lower_first

# Path segments: ("m", member_name, query_name) | ("i", 1-based index) | ("k", map key)
Segment = tuple


@dataclass(slots=True)
class Violation:
    """One failed constraint: what kind, where, the offending value and the limit."""

    kind: str  # null | length_min | length_max | value_min | value_max | enum | pattern | type
    path: tuple[Segment, ...]
    value: Any
    limit: Any
    sensitive: bool


def find_violations(plan: Plan, value: Any) -> list[Violation]:
    """All constraint violations of ``value`` (botocore-shaped params) against ``plan``."""
    out: list[Violation] = []
    _check(plan, value, (), out)
    return out


def _check(plan: Plan, value: Any, path: tuple, out: list[Violation]) -> None:
    kind = plan.type
    if kind == "structure":
        if plan.document:
            return
        if not isinstance(value, dict):
            out.append(Violation("type", path, value, "structure", plan.sensitive))
            return
        for name in plan.required:
            if value.get(name) is None:
                member = plan.by_name.get(name)
                query = member.query if member else name
                out.append(Violation("null", (*path, ("m", name, query)), None, None, False))
        for name, item in value.items():
            if item is None:
                continue
            member = plan.by_name.get(name)
            if member is None:
                continue  # readers never produce unknown members; services may not add them
            _check(member.plan, item, (*path, ("m", name, member.query)), out)
        return
    if kind == "string":
        if not isinstance(value, str):
            out.append(Violation("type", path, value, "string", plan.sensitive))
            return
        _length(plan, value, len(value), path, out)
        if plan.enum_set is not None and value not in plan.enum_set:
            out.append(Violation("enum", path, value, plan.enum, plan.sensitive))
        if plan.matcher is not None and plan.matcher(value) is None:
            out.append(Violation("pattern", path, value, plan.pattern, plan.sensitive))
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(Violation("type", path, value, kind, plan.sensitive))
            return
        _range(plan, value, path, out)
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(Violation("type", path, value, kind, plan.sensitive))
            return
        if not math.isnan(value):
            _range(plan, value, path, out)
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            out.append(Violation("type", path, value, kind, plan.sensitive))
        return
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, bytes | bytearray | memoryview):
            if hasattr(value, "read"):
                return  # streaming body: size is checked by whoever reads it
            out.append(Violation("type", path, value, kind, plan.sensitive))
            return
        _length(plan, value, len(value), path, out)
        return
    if kind == "timestamp":
        if not isinstance(value, _dt.datetime):
            out.append(Violation("type", path, value, kind, plan.sensitive))
        return
    if kind == "list":
        if not isinstance(value, list | tuple):
            out.append(Violation("type", path, value, kind, plan.sensitive))
            return
        _length(plan, value, len(value), path, out)
        element = plan.element
        assert element is not None
        for index, item in enumerate(value, 1):
            if item is None:
                continue
            _check(element, item, (*path, ("i", index)), out)
        return
    if kind == "map":
        if not isinstance(value, dict):
            out.append(Violation("type", path, value, kind, plan.sensitive))
            return
        _length(plan, value, len(value), path, out)
        assert plan.key is not None and plan.value is not None
        for key, item in value.items():
            _check(plan.key, key, (*path, ("k", key)), out)
            if item is not None:
                _check(plan.value, item, (*path, ("k", key)), out)
        return


def _length(plan: Plan, value: Any, length: int, path: tuple, out: list[Violation]) -> None:
    if plan.min is not None and length < plan.min:
        out.append(Violation("length_min", path, value, int(plan.min), plan.sensitive))
    if plan.max is not None and length > plan.max:
        out.append(Violation("length_max", path, value, int(plan.max), plan.sensitive))


def _range(plan: Plan, value: float, path: tuple, out: list[Violation]) -> None:
    if plan.min is not None and value < plan.min:
        out.append(Violation("value_min", path, value, plan.min, plan.sensitive))
    if plan.max is not None and value > plan.max:
        out.append(Violation("value_max", path, value, plan.max, plan.sensitive))


def _java_value(value: Any) -> str:
    """Render a value roughly like Coral's Java ``toString`` does in its messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_value(k)}={_java_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return str(value)


def _number(limit: Any) -> str:
    if isinstance(limit, float) and limit.is_integer():
        return str(int(limit))
    return str(limit)


_TYPE_NAMES = {
    "string": "String",
    "integer": "Integer",
    "long": "Long",
    "float": "Float",
    "double": "Double",
    "boolean": "Boolean",
    "blob": "Blob",
    "timestamp": "Timestamp",
    "list": "List",
    "map": "Map",
    "structure": "Structure",
}


class CoralStyle:
    """AWS's JSON-service validation message ("N validation errors detected: ...").

    ``anchor_patterns``: SageMaker's service prints its patterns with a leading ``^`` that
    botocore's copy of the model dropped ("... pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}");
    the anchor changes nothing for a whole-value match.
    """

    def __init__(self, code: str = "ValidationException", *, anchor_patterns: bool = False) -> None:
        self.code = code
        self.anchor_patterns = anchor_patterns

    @staticmethod
    def path(segments: tuple[Segment, ...]) -> str:
        parts: list[str] = []
        for seg in segments:
            if seg[0] == "m":
                parts.append(lower_first(seg[1]))
            elif seg[0] == "i":
                parts.append(f"{seg[1]}.member")
            else:
                parts.append(str(seg[1]))
        return ".".join(parts)

    def constraint(self, v: Violation) -> str:
        kind = v.kind
        if kind == "null":
            return "Member must not be null"
        if kind == "length_max":
            return f"Member must have length less than or equal to {v.limit}"
        if kind == "length_min":
            return f"Member must have length greater than or equal to {v.limit}"
        if kind == "value_max":
            return f"Member must have value less than or equal to {_number(v.limit)}"
        if kind == "value_min":
            return f"Member must have value greater than or equal to {_number(v.limit)}"
        if kind == "enum":
            return f"Member must satisfy enum value set: [{', '.join(v.limit)}]"
        if kind == "pattern":
            pattern = v.limit
            if self.anchor_patterns and not pattern.startswith(("^", "\\A")):
                pattern = "^" + pattern
            return f"Member must satisfy regular expression pattern: {pattern}"
        return f"Member must be of type {_TYPE_NAMES.get(v.limit, v.limit)}"

    def describe(self, v: Violation) -> str:
        where = self.path(v.path)
        if v.value is None:
            shown = "Value null"
        elif v.sensitive:
            shown = "Value"  # AWS hides sensitive values
        else:
            shown = f"Value '{_java_value(v.value)}'"
        return f"{shown} at '{where}' failed to satisfy constraint: {self.constraint(v)}"

    def error(self, violations: list[Violation]) -> AwsError:
        count = len(violations)
        noun = "validation error" if count == 1 else "validation errors"
        details = "; ".join(self.describe(v) for v in violations)
        return AwsError(self.code, f"{count} {noun} detected: {details}", 400)


class QueryStyle:
    """CloudWatch's (query-era) messages: ``MissingParameter`` / ``InvalidParameterValue``.

    Paths use the query notation AWS prints (``MetricData.member.1.Dimensions.member.3.Value``),
    one line per violation. Missing members win: AWS reports those first and alone. The
    "must be shorter than N characters" and "is required" wordings are AWS's; the others are
    catkit's (AWS's exact text for those checks is not documented).
    """

    missing_code = "MissingParameter"
    invalid_code = "InvalidParameterValue"

    @staticmethod
    def path(segments: tuple[Segment, ...]) -> str:
        parts: list[str] = []
        for seg in segments:
            if seg[0] == "m":
                parts.append(seg[2])
            elif seg[0] == "i":
                parts.append(f"member.{seg[1]}")
            else:
                parts.append(f"entry.{seg[1]}")
        return ".".join(parts)

    def describe(self, v: Violation) -> str:
        where = self.path(v.path)
        shown = "(hidden)" if v.sensitive else _java_value(v.value)
        kind = v.kind
        if kind == "length_max":
            if isinstance(v.value, list | tuple | dict):
                return f"The collection {where} must not have more than {v.limit} members."
            return f"The parameter {where} must be shorter than {v.limit + 1} characters."
        if kind == "length_min":
            if isinstance(v.value, list | tuple | dict):
                return f"The collection {where} must have at least {v.limit} members."
            return f"The parameter {where} must be longer than {v.limit - 1} characters."
        if kind == "value_min":
            return f"The value {shown} for parameter {where} must be greater than or equal to {_number(v.limit)}."
        if kind == "value_max":
            return (
                f"The value {shown} for parameter {where} must be less than or equal to {_number(v.limit)}."
            )
        if kind == "enum":
            return (
                f"The value {shown} for parameter {where} is not valid. Valid values: {', '.join(v.limit)}."
            )
        if kind == "pattern":
            return f"The value {shown} for parameter {where} does not match the pattern {v.limit}."
        return f"The value {shown} for parameter {where} is invalid (expected {_TYPE_NAMES.get(v.limit, v.limit)})."

    def error(self, violations: list[Violation]) -> AwsError:
        missing = [v for v in violations if v.kind == "null" or _empty_required(v)]
        if missing:
            lines = [f"The parameter {self.path(v.path)} is required." for v in missing]
            return AwsError(self.missing_code, "\n".join(lines), 400)
        return AwsError(self.invalid_code, "\n".join(self.describe(v) for v in violations), 400)


def _empty_required(v: Violation) -> bool:
    # CloudWatch reports an empty string where one character is the minimum as missing
    # ("The parameter ...Dimensions.member.1.Value is required.").
    return v.kind == "length_min" and v.value == ""


ValidationStyle = CoralStyle | QueryStyle


def validate(plan: Plan, params: dict[str, Any], style: ValidationStyle) -> None:
    """Raise the service's validation :class:`AwsError` if ``params`` break the model."""
    violations = find_violations(plan, params)
    if violations:
        raise style.error(violations)
