"""The local backend's CloudWatch API: metric data over MetricStore, alarms over AlarmBook.

Owns the CloudWatch wire operations (botocore-shaped params in, botocore-shaped results out),
their AWS validation rules and messages, metric math for GetMetricData, alarm persistence and the
alarm evaluation loop. It holds no metric data itself (``catkit.autoscaling.metrics_store``) and no
alarm rules (``catkit.autoscaling.alarms``).

Operations: PutMetricData, GetMetricData (MetricStat, metric math and SEARCH expressions; Metrics
Insights queries are not supported), GetMetricStatistics, ListMetrics, PutMetricAlarm,
DescribeAlarms, DescribeAlarmHistory, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
EnableAlarmActions, DisableAlarmActions, TagResource, UntagResource, ListTagsForResource.

Local simplifications (said here so they are easy to find): one alarm book per backend (the
backend's region and account, whatever region a request names); metric-math alarms (``Metrics``),
anomaly-detection and composite alarms are rejected with a clear ValidationError; alarm actions
other than Application Auto Scaling policies (SNS, EC2, ...) are not delivered: an ``Action``
history item says so. Timestamps are the backend's emulated clock.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from catkit.autoscaling.alarms import Alarm, AlarmBook, AlarmSpec, AlarmSpecError, is_autoscaling_action
from catkit.autoscaling.metrics_store import MetricStore, is_extended_statistic
from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService, RequestContext

log = logging.getLogger("catkit.local.cloudwatch")

STATE_KIND = "cloudwatch"
STATE_KEY_ALARMS = "alarms"
STATE_KEY_EXTRAS = "alarm-extras"
EVALUATION_INTERVAL_S = 10.0

MAX_METRICS_PER_PUT = 1000
MAX_VALUES_PER_METRIC = 150
MAX_DIMENSIONS = 30
MAX_QUERIES = 500
MAX_GMS_DATAPOINTS = 1440
DEFAULT_MAX_DATAPOINTS = 100_800
LIST_METRICS_PAGE = 500
PAST_LIMIT_S = 14 * 86400
FUTURE_LIMIT_S = 2 * 3600
VALUE_LIMIT = 2.0**360
STANDARD_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


@functools.cache
def standard_units() -> frozenset[str]:
    """CloudWatch's StandardUnit values, from botocore's CloudWatch model."""
    from catkit.local.protocols.models import service_model

    return frozenset(service_model("cloudwatch").shape_for("StandardUnit").enum)


_QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


# ------------------------------------------------------------------------------------------ errors
def _invalid_value(param: str, value: Any) -> AwsError:
    return AwsError("InvalidParameterValue", f"The value {value} for parameter {param} is invalid.")


def _combination(message: str) -> AwsError:
    return AwsError("InvalidParameterCombination", message)


def _validation(message: str) -> AwsError:
    return AwsError("ValidationError", message)


# ------------------------------------------------------------------------------------------ helpers
def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _dims(items: Sequence[Mapping[str, Any]] | None, param: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name = item.get("Name")
        if name in out:
            raise _invalid_value(param, f"{name} (a dimension name may appear only once)")
        if item.get("Value") is None:
            raise AwsError(
                "MissingParameter", f"The parameter {param}.Value is required for dimension {name}."
            )
        out[str(name)] = str(item["Value"])
    if len(out) > MAX_DIMENSIONS:
        raise AwsError(
            "InvalidParameterValue",
            f"The collection {param} must not have a size greater than {MAX_DIMENSIONS}.",
        )
    return out


def _dims_out(dims: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in dims.items()]


def _check_value(value: Any, param: str) -> float:
    v = float(value)
    if not math.isfinite(v) or abs(v) > VALUE_LIMIT:
        raise _invalid_value(param, value)
    return v


def round_start(start: float, period: int, now: float) -> float:
    """StartTime rounding as GetMetricData/GetMetricStatistics document it.

    High-resolution periods round to their own multiple (5/10/20/30 s divisions of a minute);
    otherwise to the minute (< 15 days ago), 5 minutes (< 63 days) or the hour (older).
    """
    if period < 60:
        step = period
    elif now - start < 15 * 86400:
        step = 60
    elif now - start < 63 * 86400:
        step = 300
    else:
        step = 3600
    return math.floor(start / step) * step


def _check_period(period: Any, param: str, allowed_small: tuple[int, ...]) -> int:
    try:
        p = int(period)
    except (TypeError, ValueError):
        raise _invalid_value(param, period) from None
    if p != period or p <= 0 or (p < 60 and p not in allowed_small) or (p >= 60 and p % 60):
        raise AwsError(
            "InvalidParameterValue",
            f"The parameter {param} must be {', '.join(map(str, allowed_small))} or a multiple of 60; got {period}.",
        )
    return p


class _Tokens:
    """Opaque NextToken values bound to the request that produced them."""

    @staticmethod
    def encode(offset: Any, fingerprint: str) -> str:
        raw = json.dumps({"o": offset, "f": fingerprint}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def decode(token: str, fingerprint: str) -> Any:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token.encode()))
            if doc["f"] != fingerprint:
                raise ValueError("token from another request")
            return doc["o"]
        except Exception:
            raise AwsError(
                "InvalidNextToken",
                "The NextToken is invalid: pass the NextToken returned by the previous call with the same parameters.",
            ) from None


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ metric math
class _TS:
    """A time series inside a metric-math evaluation: ``{timestamp: value}`` plus label and period."""

    __slots__ = ("label", "period", "points")

    def __init__(self, points: dict[float, float], label: str, period: int) -> None:
        self.points = points
        self.label = label
        self.period = period


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>\"[^\"]*\"|'[^']*')|(?P<op>[-+*/^(),\[\]]))"
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive-descent parser of CloudWatch metric math into a small tuple AST."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def parse(self) -> Any:
        if not self.tokens:
            raise ValueError("the expression is empty")
        node = self.expr()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i][1]!r}")
        return node

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ValueError(f"the expression ends early{f', expected {expected!r}' if expected else ''}")
        tok = self.tokens[self.i]
        if expected is not None and tok[1] != expected:
            raise ValueError(f"expected {expected!r} but found {tok[1]!r}")
        self.i += 1
        return tok

    def expr(self) -> Any:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            node = ("bin", op, node, self.term())
        return node

    def term(self) -> Any:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Any:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Any:
        node = self.primary()
        if self.peek() == "^":
            self.take()
            node = ("bin", "^", node, self.unary())
        return node

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return ("num", float(text))
        if kind == "str":
            return ("str", text[1:-1])
        if kind == "name":
            if self.peek() == "(":
                self.take("(")
                args = []
                if self.peek() != ")":
                    args.append(self.expr())
                    while self.peek() == ",":
                        self.take()
                        args.append(self.expr())
                self.take(")")
                return ("call", text.upper(), args)
            return ("id", text)
        if text == "(":
            node = self.expr()
            self.take(")")
            return node
        if text == "[":
            items = [self.expr()]
            while self.peek() == ",":
                self.take()
                items.append(self.expr())
            self.take("]")
            return ("array", items)
        raise ValueError(f"unexpected {text!r}")


_BINARY: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "^": lambda a, b: a**b,
}
_ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "ABS": abs,
    "CEIL": lambda v: float(math.ceil(v)),
    "FLOOR": lambda v: float(math.floor(v)),
    "LOG": math.log,
    "LOG10": math.log10,
}
_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": math.fsum,
    "AVG": lambda vs: math.fsum(vs) / len(vs),
    "MIN": min,
    "MAX": max,
    "STDDEV": lambda vs: math.sqrt(math.fsum((v - math.fsum(vs) / len(vs)) ** 2 for v in vs) / len(vs)),
}
SUPPORTED_FUNCTIONS = (
    *_ELEMENTWISE,
    *_REDUCERS,
    "METRICS",
    "FILL",
    "DIFF",
    "RATE",
    "RUNNING_SUM",
    "PERIOD",
    "DATAPOINT_COUNT",
    "FIRST",
    "LAST",
)


def _safe(fn: Callable[..., float], *args: float) -> float | None:
    try:
        v = fn(*args)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return v if isinstance(v, float | int) and math.isfinite(v) else None


_SEARCH_TOKEN_RE = re.compile(
    r"\s*(?:(?P<schema>\{[^}]*\})|(?P<paren>[()])"
    r'|(?P<key>[^\s()"=]+)\s*=\s*(?P<val>"(?:[^"\\]|\\.)*"|[^\s()"]+)'
    r'|(?P<phrase>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()"]+))'
)
MetricId = tuple[str, str, dict[str, str]]  # (namespace, name, dimensions)
MAX_SEARCH_RESULTS = 500


def _unquote(text: str) -> tuple[str, bool]:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"'), True
    return text, False


def parse_search(text: str) -> tuple[tuple[str, frozenset[str]] | None, Callable[[MetricId], bool]]:
    """Parse a SEARCH term: ``{Namespace,DimName,...}`` schema plus words, ``"phrases"``,
    ``Name=value`` / ``Name="exact value"`` properties, AND / OR / NOT and parentheses.

    Returns ``(schema, predicate)``; the schema selects metrics of that namespace whose dimension
    names are exactly the listed ones. Words match case-insensitively inside the namespace, metric
    name, dimension names or values; quoted property values match exactly.
    """
    schema: tuple[str, frozenset[str]] | None = None
    tokens: list[tuple[str, Any]] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        m = _SEARCH_TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse the SEARCH term near {text[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("schema"):
            parts = [_unquote(p.strip())[0] for p in m.group("schema")[1:-1].split(",") if p.strip()]
            if not parts:
                raise ValueError("an empty {} schema in SEARCH; write {Namespace,DimensionName,...}")
            schema = (parts[0], frozenset(parts[1:]))
        elif m.group("paren"):
            tokens.append(("paren", m.group("paren")))
        elif m.group("key"):
            value, exact = _unquote(m.group("val"))
            tokens.append(("prop", (m.group("key"), value, exact)))
        elif m.group("phrase"):
            tokens.append(("term", _unquote(m.group("phrase"))[0]))
        else:
            word = m.group("word")
            tokens.append(("op", word) if word in ("AND", "OR", "NOT") else ("term", word))
    i = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[i] if i < len(tokens) else None

    def parse_or() -> Callable[[MetricId], bool]:
        nonlocal i
        left = parse_and()
        while peek() == ("op", "OR"):
            i += 1
            right, prev = parse_and(), left
            left = lambda m, a=prev, b=right: a(m) or b(m)  # noqa: E731
        return left

    def parse_and() -> Callable[[MetricId], bool]:
        nonlocal i
        left = parse_not()
        while (tok := peek()) is not None and tok not in (("op", "OR"), ("paren", ")")):
            if tok == ("op", "AND"):
                i += 1
            right, prev = parse_not(), left
            left = lambda m, a=prev, b=right: a(m) and b(m)  # noqa: E731
        return left

    def parse_not() -> Callable[[MetricId], bool]:
        nonlocal i
        tok = peek()
        if tok is None:
            raise ValueError("the SEARCH term ends early")
        i += 1
        if tok == ("op", "NOT"):
            inner = parse_not()
            return lambda m: not inner(m)
        if tok == ("paren", "("):
            inner = parse_or()
            if peek() != ("paren", ")"):
                raise ValueError("a '(' in the SEARCH term is not closed")
            i += 1
            return inner
        if tok[0] == "term":
            needle = str(tok[1]).lower()
            return lambda m: any(needle in f.lower() for f in (m[0], m[1], *m[2], *m[2].values()))
        if tok[0] == "prop":
            key, value, exact = tok[1]

            def prop(m: MetricId) -> bool:
                field = {"Namespace": m[0], "MetricName": m[1]}.get(key, m[2].get(key))
                if field is None:
                    return False
                return field == value if exact else value.lower() in field.lower()

            return prop
        raise ValueError(f"unexpected {tok[1]!r} in the SEARCH term")

    predicate: Callable[[MetricId], bool] = parse_or() if tokens else (lambda m: True)
    if i != len(tokens):
        raise ValueError(f"unexpected {tokens[i][1]!r} in the SEARCH term")
    return schema, predicate


class _MathContext:
    """Evaluates the expressions of one GetMetricData request over its MetricStat series."""

    def __init__(
        self,
        queries: Mapping[str, Mapping[str, Any]],
        stat_series: Mapping[str, _TS],
        start: float,
        end: float,
        search: Callable[[str, str, int], list[_TS]] | None = None,
    ) -> None:
        self.queries = queries
        self.search = search
        self.values: dict[str, Any] = dict(stat_series)
        self.stat_ids = list(stat_series)
        self.start, self.end = start, end
        self._active: list[str] = []

    def value_of(self, qid: str) -> Any:
        if qid in self.values:
            return self.values[qid]
        query = self.queries.get(qid)
        if query is None:
            raise ValueError(f"unknown metric id {qid!r}; ids must name another query in MetricDataQueries")
        if query["Expression"].lstrip().upper().startswith("SELECT "):
            raise ValueError(
                "Metrics Insights queries (SELECT ...) are not supported by the catkit local backend; "
                "use MetricStat queries and metric math"
            )
        if qid in self._active:
            raise ValueError(f"circular reference: {' -> '.join([*self._active, qid])}")
        self._active.append(qid)
        try:
            node = _Parser(query["Expression"]).parse()
            value = self.eval(node, query)
        finally:
            self._active.pop()
        if isinstance(value, _TS) and not value.label:
            value.label = query.get("Label") or qid
        self.values[qid] = value
        return value

    def grid(self, series: _TS) -> list[float]:
        period = series.period or 60
        first = math.floor(self.start / period) * period
        return [float(t) for t in range(int(first), math.ceil(self.end), period)]

    def eval(self, node: Any, query: Mapping[str, Any]) -> Any:
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "str":
            return node[1]
        if kind == "id":
            name = node[1]
            if name in ("REPEAT", "LINEAR") and name not in self.queries:
                return name
            return self.value_of(name)
        if kind == "neg":
            return self.apply1(self.eval(node[1], query), lambda v: -v)
        if kind == "bin":
            return self.binary(node[1], self.eval(node[2], query), self.eval(node[3], query))
        if kind == "array":
            items: list[_TS] = []
            for sub in node[1]:
                v = self.eval(sub, query)
                if isinstance(v, list):
                    items.extend(v)
                elif isinstance(v, _TS):
                    items.append(v)
                else:
                    raise ValueError("an array [...] may only hold time series")
            return items
        if kind == "call":
            return self.call(node[1], [self.eval(a, query) for a in node[2]], query)
        raise ValueError(f"cannot evaluate {node!r}")

    @staticmethod
    def apply1(value: Any, fn: Callable[[float], float]) -> Any:
        if isinstance(value, list):
            return [_MathContext.apply1(v, fn) for v in value]
        if isinstance(value, _TS):
            pts = {t: r for t, v in value.points.items() if (r := _safe(fn, v)) is not None}
            return _TS(pts, "", value.period)
        if isinstance(value, str):
            raise ValueError(f"{value!r} is not a number or time series")
        return _safe(fn, value)

    def binary(self, op: str, a: Any, b: Any) -> Any:
        fn = _BINARY[op]
        if isinstance(a, list) or isinstance(b, list):
            if isinstance(a, list) and isinstance(b, list):
                raise ValueError(f"cannot combine two arrays of time series with {op!r}")
            if isinstance(a, list):
                return [self.binary(op, x, b) for x in a]
            return [self.binary(op, a, x) for x in b]
        if isinstance(a, str) or isinstance(b, str):
            raise ValueError(f"cannot use {op!r} on a string")
        if a is None or b is None:
            return None
        if isinstance(a, _TS) and isinstance(b, _TS):
            pts = {
                t: r
                for t, v in a.points.items()
                if t in b.points and (r := _safe(fn, v, b.points[t])) is not None
            }
            return _TS(pts, "", min(a.period, b.period))
        if isinstance(a, _TS):
            return _TS(
                {t: r for t, v in a.points.items() if (r := _safe(fn, v, b)) is not None}, "", a.period
            )
        if isinstance(b, _TS):
            return _TS(
                {t: r for t, v in b.points.items() if (r := _safe(fn, a, v)) is not None}, "", b.period
            )
        return _safe(fn, a, b)

    def call(self, name: str, args: list[Any], query: Mapping[str, Any]) -> Any:
        if name == "SEARCH":
            if len(args) not in (2, 3) or not all(isinstance(a, str) for a in args[:2]):
                raise ValueError("SEARCH takes ('search term', 'Statistic'[, Period])")
            period = args[2] if len(args) == 3 else query.get("Period")
            if not isinstance(period, float | int) or period <= 0:
                raise ValueError(
                    "SEARCH needs a Period: pass it as the third argument or set the query's Period"
                )
            if self.search is None:
                raise ValueError("SEARCH is not available here")
            return self.search(args[0], args[1], int(period))
        if name == "METRICS":
            wanted = args[0] if args else None
            if wanted is not None and not isinstance(wanted, str):
                raise ValueError("METRICS() takes an optional label filter string")
            return [
                s
                for qid in self.stat_ids
                if (s := self.values[qid]) is not None and (wanted is None or wanted in s.label)
            ]
        if name in _ELEMENTWISE:
            self.arity(name, args, 1)
            return self.apply1(args[0], _ELEMENTWISE[name])
        if name in _REDUCERS:
            self.arity(name, args, 1)
            return self.reduce(name, args[0])
        if name == "FILL":
            self.arity(name, args, 2)
            return self.fill(args[0], args[1])
        if name in ("DIFF", "RATE", "RUNNING_SUM"):
            self.arity(name, args, 1)
            return self.sequential(name, args[0])
        if name == "PERIOD":
            self.arity(name, args, 1)
            return self.map_series(
                args[0], lambda s: _TS(dict.fromkeys(s.points, float(s.period)), "", s.period)
            )
        if name == "DATAPOINT_COUNT":
            self.arity(name, args, 1)
            return self.map_series(args[0], lambda s: float(len(s.points)))
        if name in ("FIRST", "LAST"):
            self.arity(name, args, 1)
            arr = args[0] if isinstance(args[0], list) else [args[0]]
            if not arr:
                return None
            return arr[0] if name == "FIRST" else arr[-1]
        raise ValueError(f"unsupported function {name}; supported: {', '.join(SUPPORTED_FUNCTIONS)}")

    @staticmethod
    def arity(name: str, args: list[Any], n: int) -> None:
        if len(args) != n:
            raise ValueError(f"{name} takes {n} argument{'s' if n > 1 else ''}, got {len(args)}")

    @staticmethod
    def map_series(value: Any, fn: Callable[[_TS], Any]) -> Any:
        if isinstance(value, list):
            return [fn(s) for s in value]
        if not isinstance(value, _TS):
            raise ValueError("this function takes a time series")
        return fn(value)

    def reduce(self, name: str, value: Any) -> Any:
        fn = _REDUCERS[name]
        if isinstance(value, list):  # array -> one series, per timestamp across the series
            if not value:
                return None
            stamps = sorted({t for s in value for t in s.points})
            pts = {}
            for t in stamps:
                vs = [s.points[t] for s in value if t in s.points]
                if vs and (r := _safe(fn, vs)) is not None:
                    pts[t] = r
            return _TS(pts, "", min(s.period for s in value))
        if isinstance(value, _TS):  # series -> scalar over all its datapoints
            vs = list(value.points.values())
            return _safe(fn, vs) if vs else None
        if isinstance(value, str) or value is None:
            raise ValueError(f"{name} takes a time series or an array of time series")
        return value

    def fill(self, value: Any, how: Any) -> Any:
        if isinstance(value, list):
            return [self.fill(v, how) for v in value]
        if not isinstance(value, _TS):
            raise ValueError("FILL takes a time series as its first argument")
        grid = self.grid(value)
        pts: dict[float, float] = {}
        known = sorted(value.points)
        if isinstance(how, _TS):
            for t in grid:
                if t in value.points:
                    pts[t] = value.points[t]
                elif t in how.points:
                    pts[t] = how.points[t]
        elif how == "REPEAT":
            last: float | None = None
            for t in grid:
                if t in value.points:
                    last = value.points[t]
                if last is not None:
                    pts[t] = last
            if known and grid:  # leading gap takes the first real value
                for t in grid:
                    if t >= known[0]:
                        break
                    pts[t] = value.points[known[0]]
        elif how == "LINEAR":
            for t in grid:
                if t in value.points:
                    pts[t] = value.points[t]
                    continue
                before = [k for k in known if k < t]
                after = [k for k in known if k > t]
                if before and after:
                    t0, t1 = before[-1], after[0]
                    v0, v1 = value.points[t0], value.points[t1]
                    pts[t] = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
        elif isinstance(how, float | int):
            for t in grid:
                pts[t] = value.points.get(t, float(how))
        else:
            raise ValueError("FILL's second argument must be a number, a time series, REPEAT or LINEAR")
        return _TS(pts, "", value.period)

    def sequential(self, name: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.sequential(name, v) for v in value]
        if not isinstance(value, _TS):
            raise ValueError(f"{name} takes a time series")
        pts: dict[float, float] = {}
        prev: tuple[float, float] | None = None
        running = 0.0
        for t in sorted(value.points):
            v = value.points[t]
            if name == "RUNNING_SUM":
                running += v
                pts[t] = running
            elif prev is not None:
                pts[t] = v - prev[1] if name == "DIFF" else (v - prev[1]) / (t - prev[0])
            prev = (t, v)
        return _TS(pts, "", value.period)


# ------------------------------------------------------------------------------------------ service
class CloudWatchService(BaseService):
    """CloudWatch operations over a MetricStore and an AlarmBook, on an emulated clock."""

    service_name = "cloudwatch"

    def __init__(
        self,
        metrics: MetricStore,
        alarms: AlarmBook,
        now: Callable[[], float],
        state: Any = None,
    ) -> None:
        self.metrics = metrics
        self.alarms = alarms
        self.now = now
        self.state = state
        self._extras: dict[str, dict[str, Any]] = {}  # alarm name -> {"Tags": {...}, "EvaluateLow...": ...}
        self._saved_signature: Any = None
        if state is not None:
            doc = state.get(STATE_KIND, STATE_KEY_EXTRAS)
            if doc:
                self._extras = {k: dict(v) for k, v in doc.get("alarms", {}).items()}
            self._saved_signature = self._signature()

    # ------------------------------------------------------------------ persistence & evaluation
    def _signature(self) -> Any:
        return (
            tuple(
                (
                    a.name,
                    a.state_value,
                    a.state_updated,
                    a.configuration_updated,
                    len(a.history),
                    a.history[-1].timestamp if a.history else None,
                    a.spec.actions_enabled,
                )
                for a in self.alarms.list()
            ),
            json.dumps(self._extras, sort_keys=True),
        )

    def persist(self, force: bool = False) -> None:
        """Save alarm definitions, state, history and tags if anything changed (or ``force``)."""
        if self.state is None:
            return
        signature = self._signature()
        if not force and signature == self._saved_signature:
            return
        self.state.put(STATE_KIND, STATE_KEY_ALARMS, self.alarms.to_dict())
        self.state.put(STATE_KIND, STATE_KEY_EXTRAS, {"alarms": self._extras})
        self._saved_signature = signature

    def tick(self, now: float | None = None) -> list[Any]:
        """Evaluate due alarms once, record undeliverable actions, persist changes."""
        now = self.now() if now is None else now
        transitions = self.alarms.evaluate(now, self.metrics)
        for inv in self.alarms.pop_actions(lambda arn: not is_autoscaling_action(arn)):
            self.alarms.record_action(
                inv.alarm_name,
                f"Failed to execute action {inv.action}",
                {
                    "actionState": "Failed",
                    "stateUpdateTimestamp": int(inv.timestamp * 1000),
                    "error": "The catkit local backend delivers only Application Auto Scaling actions; "
                    f"{inv.action} was not invoked.",
                },
                now,
            )
        self.persist()
        return transitions

    async def run(self, clock: Any) -> None:
        """Background loop: evaluate alarms every 10 emulated seconds, on 10-second boundaries."""
        while True:
            now = clock.now()
            await clock.sleep_until((math.floor(now / EVALUATION_INTERVAL_S) + 1) * EVALUATION_INTERVAL_S)
            try:
                self.tick(clock.now())
            except Exception:
                log.exception(
                    "alarm evaluation failed; will retry in %s emulated seconds", EVALUATION_INTERVAL_S
                )

    # ------------------------------------------------------------------ metric data
    def put_metric_data(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        namespace = params.get("Namespace") or ""
        if namespace.startswith("AWS/"):
            raise _invalid_value("Namespace", namespace)
        groups: list[tuple[str, list[Mapping[str, Any]]]] = [
            ("MetricData", list(params.get("MetricData") or []))
        ]
        for i, entity in enumerate(params.get("EntityMetricData") or [], start=1):
            groups.append((f"EntityMetricData.member.{i}.MetricData", list(entity.get("MetricData") or [])))
        total = sum(len(items) for _, items in groups)
        if total == 0:
            raise AwsError("MissingParameter", "The parameter MetricData is required.")
        if total > MAX_METRICS_PER_PUT:
            raise AwsError(
                "InvalidParameterValue",
                f"The collection MetricData must not have a size greater than {MAX_METRICS_PER_PUT}.",
            )
        now = self.now()
        records = [
            self._check_datum(datum, f"{prefix}.member.{i}", now)
            for prefix, items in groups
            for i, datum in enumerate(items, start=1)
        ]
        for kind, name, dims, ts, unit, res, payload in records:
            if kind == "value":
                self.metrics.record(namespace, name, dims, payload, ts, unit, res)
            elif kind == "values":
                self.metrics.record_values(namespace, name, dims, payload[0], payload[1], ts, unit, res)
            else:
                self.metrics.record_statistics(namespace, name, dims, *payload, ts, unit, res)
        return {}

    def _check_datum(self, datum: Mapping[str, Any], param: str, now: float) -> tuple[Any, ...]:
        name = datum.get("MetricName")
        if not name:
            raise AwsError("MissingParameter", f"The parameter {param}.MetricName is required.")
        dims = _dims(datum.get("Dimensions"), f"{param}.Dimensions")
        ts = _epoch(datum["Timestamp"]) if datum.get("Timestamp") is not None else now
        if ts > now + FUTURE_LIMIT_S:
            raise AwsError(
                "InvalidParameterValue",
                f"The parameter {param}.Timestamp must specify a time no more than two hours in the future.",
            )
        if ts < now - PAST_LIMIT_S:
            raise AwsError(
                "InvalidParameterValue",
                f"The parameter {param}.Timestamp must specify a time within the past two weeks.",
            )
        unit = datum.get("Unit") or "None"
        if unit not in standard_units():
            raise _invalid_value(f"{param}.Unit", unit)
        res = datum.get("StorageResolution")
        res = 60 if res is None else res
        if res not in (1, 60):
            raise AwsError(
                "InvalidParameterValue",
                f"The value {res} for parameter {param}.StorageResolution is invalid: use 1 (high resolution) or 60.",
            )
        given = [k for k in ("Value", "Values", "StatisticValues") if datum.get(k) not in (None, [])]
        if len(given) > 1:
            raise _combination(
                f"The parameters {param}.{given[0]} and {param}.{given[1]} are mutually exclusive and you have specified both."
            )
        if not given:
            raise AwsError(
                "MissingParameter",
                f"At least one of the parameters {param}.Value, {param}.Values or {param}.StatisticValues must be specified.",
            )
        if datum.get("Counts") and given != ["Values"]:
            raise _combination(f"The parameter {param}.Counts can only be used together with {param}.Values.")
        if given == ["Value"]:
            return ("value", name, dims, ts, unit, res, _check_value(datum["Value"], f"{param}.Value"))
        if given == ["Values"]:
            values = [_check_value(v, f"{param}.Values") for v in datum["Values"]]
            if len(values) > MAX_VALUES_PER_METRIC:
                raise AwsError(
                    "InvalidParameterValue",
                    f"The collection {param}.Values must not have a size greater than {MAX_VALUES_PER_METRIC}.",
                )
            counts = datum.get("Counts") or None
            if counts is not None:
                if len(counts) != len(values):
                    raise _invalid_value(
                        f"{param}.Counts",
                        f"(size {len(counts)}; it must have the same size as {param}.Values)",
                    )
                counts = [_check_value(c, f"{param}.Counts") for c in counts]
                if any(c < 0 for c in counts):
                    raise _invalid_value(f"{param}.Counts", "(counts must not be negative)")
            return ("values", name, dims, ts, unit, res, (values, counts))
        sv = datum["StatisticValues"]
        for key in ("SampleCount", "Sum", "Minimum", "Maximum"):
            if sv.get(key) is None:
                raise AwsError(
                    "MissingParameter", f"The parameter {param}.StatisticValues.{key} is required."
                )
        count, total, lo, hi = (
            _check_value(sv[k], f"{param}.StatisticValues.{k}")
            for k in ("SampleCount", "Sum", "Minimum", "Maximum")
        )
        if count <= 0:
            raise _invalid_value(f"{param}.StatisticValues.SampleCount", sv["SampleCount"])
        if lo > hi:
            raise _combination(
                f"The parameter {param}.StatisticValues.Minimum must not be greater than {param}.StatisticValues.Maximum."
            )
        return ("stats", name, dims, ts, unit, res, (count, total, lo, hi))

    def get_metric_statistics(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stats = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not stats and not extended:
            raise _combination("Must specify either Statistics or ExtendedStatistics.")
        for i, s in enumerate(stats, start=1):
            if s not in STANDARD_STATISTICS:
                raise _invalid_value(f"Statistics.member.{i}", s)
        for i, s in enumerate(extended, start=1):
            if not is_extended_statistic(s):
                raise _invalid_value(f"ExtendedStatistics.member.{i}", s)
        period = _check_period(params.get("Period"), "Period", (1, 5, 10, 30))
        start, end = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        if start >= end:
            raise AwsError(
                "InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime."
            )
        unit = params.get("Unit")
        if unit is not None and unit not in standard_units():
            raise _invalid_value("Unit", unit)
        start = round_start(start, period, self.now())
        requested = math.ceil((end - start) / period)
        if requested > MAX_GMS_DATAPOINTS:
            raise _combination(
                f"You have requested up to {requested:,} datapoints, which exceeds the limit of "
                f"{MAX_GMS_DATAPOINTS:,}. You may reduce the datapoints requested by increasing Period, "
                "or decreasing the time range."
            )
        dims = _dims(params.get("Dimensions"), "Dimensions")
        rows = self.metrics.statistics(
            params["Namespace"],
            params["MetricName"],
            dims,
            start,
            end,
            period,
            [*stats, *extended],
            unit=unit,
        )
        datapoints = []
        for row in rows:
            point: dict[str, Any] = {
                "Timestamp": _ts(row["Timestamp"]),
                "Unit": unit or row.get("Unit", "None"),
            }
            for s in stats:
                point[s] = row[s]
            ext = {s: row[s] for s in extended if s in row}
            if ext:
                point["ExtendedStatistics"] = ext
            datapoints.append(point)
        return {"Label": params["MetricName"], "Datapoints": datapoints}

    def get_metric_data(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        queries = list(params.get("MetricDataQueries") or [])
        if not queries:
            raise AwsError("MissingParameter", "The parameter MetricDataQueries is required.")
        if len(queries) > MAX_QUERIES:
            raise AwsError(
                "InvalidParameterValue",
                f"The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}.",
            )
        start, end = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        if start >= end:
            raise _validation("The parameter EndTime must be greater than StartTime.")
        scan_by = params.get("ScanBy") or "TimestampDescending"
        if scan_by not in ("TimestampDescending", "TimestampAscending"):
            raise _invalid_value("ScanBy", scan_by)
        max_points = int(params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS)
        if max_points < 1:
            raise _invalid_value("MaxDatapoints", max_points)
        now = self.now()
        by_id: dict[str, Mapping[str, Any]] = {}
        for i, q in enumerate(queries, start=1):
            param = f"MetricDataQueries.member.{i}"
            qid = q.get("Id") or ""
            if not _QUERY_ID.match(qid):
                raise _validation(
                    f"The value {qid} for parameter {param}.Id is invalid: it must start with a lowercase letter "
                    "and contain only letters, numbers and underscores."
                )
            if qid in by_id:
                raise _validation(f"The value {qid} for parameter {param}.Id is used more than once.")
            has_stat, has_expr = q.get("MetricStat") is not None, q.get("Expression") is not None
            if has_stat == has_expr:
                raise _validation(
                    f"Exactly one of {param}.MetricStat and {param}.Expression must be specified."
                    if has_stat
                    else f"The parameter {param}.MetricStat is required (or {param}.Expression)."
                )
            by_id[qid] = q
        if not any(q.get("ReturnData", True) for q in queries):
            raise _validation("At least one MetricDataQueries item must have ReturnData set to true.")

        stat_series: dict[str, _TS] = {}
        math_start = end
        for i, q in enumerate(queries, start=1):
            if q.get("MetricStat") is None:
                continue
            series, first = self._metric_stat(q, f"MetricDataQueries.member.{i}.MetricStat", start, end, now)
            stat_series[q["Id"]] = series
            math_start = min(math_start, first)
        ctx_math = _MathContext(
            by_id,
            stat_series,
            math_start if stat_series else start,
            end,
            search=lambda text, stat, period: self._search(text, stat, period, start, end, now),
        )
        results: list[dict[str, Any]] = []
        for q in queries:
            if not q.get("ReturnData", True):
                continue
            try:
                value = ctx_math.value_of(q["Id"])
            except ValueError as exc:
                raise _validation(f"Error in expression {q['Id']}: {exc}") from None
            label = q.get("Label")
            if isinstance(value, list):
                for s in value:
                    results.append(self._result(q["Id"], label or s.label, s.points, scan_by))
            elif isinstance(value, _TS):
                results.append(self._result(q["Id"], label or value.label, value.points, scan_by))
            else:  # a scalar: shown at every timestamp of the request's metrics
                stamps = sorted({t for s in stat_series.values() for t in s.points})
                pts = {t: float(value) for t in stamps} if isinstance(value, float | int) else {}
                results.append(self._result(q["Id"], label or q["Id"], pts, scan_by))
        return self._page(results, params, max_points)

    def _metric_stat(
        self, query: Mapping[str, Any], param: str, start: float, end: float, now: float
    ) -> tuple[_TS, float]:
        ms = query["MetricStat"]
        metric = ms.get("Metric") or {}
        period = _check_period(ms.get("Period"), f"{param}.Period", (1, 5, 10, 20, 30))
        stat = ms.get("Stat") or ""
        if stat not in STANDARD_STATISTICS and not is_extended_statistic(stat):
            raise _validation(
                f"The value {stat} for parameter {param}.Stat is invalid: use SampleCount, Average, Sum, "
                "Minimum, Maximum or an extended statistic such as p99, tm90, IQM."
            )
        unit = ms.get("Unit")
        if unit is not None and unit not in standard_units():
            raise _invalid_value(f"{param}.Unit", unit)
        if not metric.get("Namespace") or not metric.get("MetricName"):
            raise AwsError(
                "MissingParameter", f"The parameters {param}.Metric.Namespace and MetricName are required."
            )
        dims = _dims(metric.get("Dimensions"), f"{param}.Metric.Dimensions")
        first = round_start(start, period, now)
        rows = self.metrics.statistics(
            metric["Namespace"], metric["MetricName"], dims, first, end, period, [stat], unit=unit
        )
        points = {float(r["Timestamp"]): float(r[stat]) for r in rows if stat in r}
        return _TS(points, query.get("Label") or metric["MetricName"], period), first

    def _search(self, text: str, stat: str, period: int, start: float, end: float, now: float) -> list[_TS]:
        """SEARCH(): the matching metrics (at most 500, sorted), each queried like a MetricStat."""
        if stat not in STANDARD_STATISTICS and not is_extended_statistic(stat):
            raise ValueError(f"{stat!r} is not a statistic SEARCH can use")
        _check_period(period, "SEARCH period", (1, 5, 10, 20, 30))
        schema, predicate = parse_search(text)
        found = []
        for ns, name, dims in self.metrics.list_metrics(namespace=schema[0] if schema else None):
            if schema is not None and frozenset(dims) != schema[1]:
                continue
            if predicate((ns, name, dims)):
                found.append((ns, name, dims))
        first = round_start(start, period, now)
        out = []
        for ns, name, dims in found[:MAX_SEARCH_RESULTS]:
            rows = self.metrics.statistics(ns, name, dims, first, end, period, [stat])
            points = {float(r["Timestamp"]): float(r[stat]) for r in rows if stat in r}
            label = " ".join([*(dims[k] for k in sorted(dims)), name])
            out.append(_TS(points, label, period))
        return out

    @staticmethod
    def _result(qid: str, label: str, points: Mapping[float, float], scan_by: str) -> dict[str, Any]:
        stamps = sorted(points, reverse=scan_by == "TimestampDescending")
        return {"Id": qid, "Label": label, "Timestamps": stamps, "Values": [points[t] for t in stamps]}

    def _page(
        self, results: list[dict[str, Any]], params: Mapping[str, Any], max_points: int
    ) -> dict[str, Any]:
        fingerprint = _fingerprint(
            params.get("MetricDataQueries"),
            str(params.get("StartTime")),
            str(params.get("EndTime")),
            params.get("ScanBy"),
            max_points,
        )
        ri, pi = (0, 0)
        if params.get("NextToken"):
            ri, pi = _Tokens.decode(params["NextToken"], fingerprint)
        budget = max_points
        page: list[dict[str, Any]] = []
        next_token = None
        while ri < len(results):
            res = results[ri]
            stamps, values = res["Timestamps"][pi:], res["Values"][pi:]
            take = min(budget, len(stamps))
            complete = take == len(stamps)
            page.append(
                {
                    "Id": res["Id"],
                    "Label": res["Label"],
                    "Timestamps": [_ts(t) for t in stamps[:take]],
                    "Values": values[:take],
                    "StatusCode": "Complete" if complete else "PartialData",
                }
            )
            budget -= take
            if not complete:
                next_token = _Tokens.encode([ri, pi + take], fingerprint)
                break
            ri, pi = ri + 1, 0
            if budget == 0 and ri < len(results):
                next_token = _Tokens.encode([ri, 0], fingerprint)
                break
        out: dict[str, Any] = {"MetricDataResults": page, "Messages": []}
        if next_token:
            out["NextToken"] = next_token
        return out

    def list_metrics(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        dim_filter: dict[str, str | None] = {}
        for item in params.get("Dimensions") or []:
            dim_filter[item["Name"]] = item.get("Value")
        active_since = None
        if params.get("RecentlyActive") is not None:
            if params["RecentlyActive"] != "PT3H":
                raise _invalid_value("RecentlyActive", params["RecentlyActive"])
            active_since = self.now() - 3 * 3600
        metrics = self.metrics.list_metrics(
            namespace=params.get("Namespace"),
            metric_name=params.get("MetricName"),
            dimensions=dim_filter or None,
            active_since=active_since,
        )
        fingerprint = _fingerprint(
            params.get("Namespace"), params.get("MetricName"), dim_filter, active_since is None
        )
        offset = int(_Tokens.decode(params["NextToken"], fingerprint)) if params.get("NextToken") else 0
        page = metrics[offset : offset + LIST_METRICS_PAGE]
        out: dict[str, Any] = {
            "Metrics": [
                {"Namespace": ns, "MetricName": name, "Dimensions": _dims_out(dict(sorted(dims.items())))}
                for ns, name, dims in page
            ]
        }
        if offset + LIST_METRICS_PAGE < len(metrics):
            out["NextToken"] = _Tokens.encode(offset + LIST_METRICS_PAGE, fingerprint)
        return out

    # ------------------------------------------------------------------ alarms
    def put_metric_alarm(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params.get("AlarmName") or ""
        if params.get("Metrics"):
            raise _validation(
                "Metric math alarms (Metrics) are not supported by the catkit local backend; alarm on a single "
                "metric with MetricName, Namespace, Dimensions and Statistic instead."
            )
        for key in (
            "EvaluationWindow",
            "WarmUpConfiguration",
            "EvaluationCriteria",
            "EvaluationInterval",
            "ThresholdMetricId",
        ):
            if params.get(key) is not None:
                raise _validation(f"The parameter {key} is not supported by the catkit local backend.")
        missing = [k for k in ("MetricName", "Namespace", "Period", "Threshold") if params.get(k) is None]
        if missing:
            raise _validation(
                f"The parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"{'are' if len(missing) > 1 else 'is'} required for a metric alarm."
            )
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            for arn in params.get(key) or []:
                if not str(arn).startswith("arn:") or len(str(arn).split(":")) < 6:
                    raise _validation(f"Invalid arn syntax: {arn}")
        unit = params.get("Unit")
        if unit is not None and unit not in standard_units():
            raise _invalid_value("Unit", unit)
        elsc = params.get("EvaluateLowSampleCountPercentile")
        if elsc not in (None, "", "evaluate", "ignore"):
            raise _validation(
                f"Option {elsc} is not supported. Supported options for parameter "
                "EvaluateLowSampleCountPercentile are evaluate and ignore."
            )
        ext = params.get("ExtendedStatistic")
        if ext is not None and not is_extended_statistic(ext):
            raise _invalid_value("ExtendedStatistic", ext)
        try:
            spec = AlarmSpec(
                alarm_name=name,
                namespace=params["Namespace"],
                metric_name=params["MetricName"],
                dimensions=_dims(params.get("Dimensions"), "Dimensions"),
                statistic=params.get("Statistic"),
                extended_statistic=ext,
                period=int(params["Period"]),
                evaluation_periods=int(params["EvaluationPeriods"]),
                datapoints_to_alarm=params.get("DatapointsToAlarm"),
                threshold=float(params["Threshold"]),
                comparison_operator=params["ComparisonOperator"],
                treat_missing_data=params.get("TreatMissingData") or "missing",
                alarm_actions=list(params.get("AlarmActions") or []),
                ok_actions=list(params.get("OKActions") or []),
                insufficient_data_actions=list(params.get("InsufficientDataActions") or []),
                actions_enabled=params.get("ActionsEnabled", True) is not False,
                alarm_description=params.get("AlarmDescription"),
                unit=unit,
            )
            self.alarms.put_alarm(spec, self.now())
        except AlarmSpecError as exc:
            raise _validation(str(exc)) from None
        extras = self._extras.setdefault(name, {})
        if elsc:
            extras["EvaluateLowSampleCountPercentile"] = elsc
        else:
            extras.pop("EvaluateLowSampleCountPercentile", None)
        if params.get("Tags"):
            tags = extras.setdefault("Tags", {})
            tags.update({t["Key"]: t["Value"] for t in params["Tags"]})
        self.persist()
        return {}

    def _alarm_out(self, alarm: Alarm) -> dict[str, Any]:
        spec = alarm.spec
        out: dict[str, Any] = {
            "AlarmName": spec.alarm_name,
            "AlarmArn": alarm.arn,
            "AlarmConfigurationUpdatedTimestamp": _ts(alarm.configuration_updated),
            "ActionsEnabled": spec.actions_enabled,
            "OKActions": list(spec.ok_actions),
            "AlarmActions": list(spec.alarm_actions),
            "InsufficientDataActions": list(spec.insufficient_data_actions),
            "StateValue": alarm.state_value,
            "StateReason": alarm.state_reason,
            "StateUpdatedTimestamp": _ts(alarm.state_updated),
            "MetricName": spec.metric_name,
            "Namespace": spec.namespace,
            "Dimensions": _dims_out(spec.dimensions),
            "Period": spec.period,
            "EvaluationPeriods": spec.evaluation_periods,
            "Threshold": float(spec.threshold),
            "ComparisonOperator": spec.comparison_operator,
            "TreatMissingData": spec.treat_missing_data,
            "StateTransitionedTimestamp": _ts(alarm.state_transitioned),
        }
        if spec.alarm_description is not None:
            out["AlarmDescription"] = spec.alarm_description
        if alarm.state_reason_data:
            out["StateReasonData"] = alarm.state_reason_data
        if spec.statistic:
            out["Statistic"] = spec.statistic
        else:
            out["ExtendedStatistic"] = spec.extended_statistic
        if spec.unit:
            out["Unit"] = spec.unit
        if spec.datapoints_to_alarm is not None:
            out["DatapointsToAlarm"] = spec.datapoints_to_alarm
        elsc = self._extras.get(spec.alarm_name, {}).get("EvaluateLowSampleCountPercentile")
        if elsc:
            out["EvaluateLowSampleCountPercentile"] = elsc
        return out

    def describe_alarms(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        names = params.get("AlarmNames") or None
        prefix = params.get("AlarmNamePrefix")
        if names and prefix:
            raise _combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive; specify one."
            )
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        relational = params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
        state = params.get("StateValue")
        if state is not None and state not in ("OK", "ALARM", "INSUFFICIENT_DATA"):
            raise _invalid_value("StateValue", state)
        max_records = int(params.get("MaxRecords") or 50)
        alarms = []
        if (
            "MetricAlarm" in types and not relational
        ):  # composite alarms (and their relations) don't exist here
            alarms = self.alarms.list(
                names=names, prefix=prefix, state=state, action_prefix=params.get("ActionPrefix")
            )
        fingerprint = _fingerprint(names, prefix, types, state, params.get("ActionPrefix"), max_records)
        offset = int(_Tokens.decode(params["NextToken"], fingerprint)) if params.get("NextToken") else 0
        page = alarms[offset : offset + max_records]
        out: dict[str, Any] = {"MetricAlarms": [self._alarm_out(a) for a in page], "CompositeAlarms": []}
        if offset + max_records < len(alarms):
            out["NextToken"] = _Tokens.encode(offset + max_records, fingerprint)
        return out

    def describe_alarms_for_metric(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        dims = _dims(params.get("Dimensions"), "Dimensions")
        out = []
        for alarm in self.alarms.list():
            spec = alarm.spec
            if spec.metric_name != params["MetricName"] or spec.namespace != params["Namespace"]:
                continue
            if spec.dimensions != dims:
                continue
            if params.get("Statistic") and spec.statistic != params["Statistic"]:
                continue
            if params.get("ExtendedStatistic") and spec.extended_statistic != params["ExtendedStatistic"]:
                continue
            if params.get("Period") and spec.period != params["Period"]:
                continue
            if params.get("Unit") and spec.unit != params["Unit"]:
                continue
            out.append(self._alarm_out(alarm))
        return {"MetricAlarms": out}

    def describe_alarm_history(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        item_type = params.get("HistoryItemType")
        if item_type is not None and item_type not in (
            "ConfigurationUpdate",
            "StateUpdate",
            "Action",
            "AlarmContributorStateUpdate",
            "AlarmContributorAction",
        ):
            raise _invalid_value("HistoryItemType", item_type)
        types = params.get("AlarmTypes") or ["MetricAlarm", "CompositeAlarm"]
        start = _epoch(params["StartDate"]) if params.get("StartDate") is not None else None
        end = _epoch(params["EndDate"]) if params.get("EndDate") is not None else None
        items = (
            self.alarms.history(params.get("AlarmName"), item_type, start, end)
            if "MetricAlarm" in types
            else []
        )
        if (params.get("ScanBy") or "TimestampDescending") == "TimestampAscending":
            items = list(reversed(items))
        max_records = int(params.get("MaxRecords") or 100)
        fingerprint = _fingerprint(
            params.get("AlarmName"), item_type, start, end, params.get("ScanBy"), max_records, types
        )
        offset = int(_Tokens.decode(params["NextToken"], fingerprint)) if params.get("NextToken") else 0
        page = items[offset : offset + max_records]
        out: dict[str, Any] = {
            "AlarmHistoryItems": [
                {
                    "AlarmName": h.alarm_name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": _ts(h.timestamp),
                    "HistoryItemType": h.history_item_type,
                    "HistorySummary": h.summary,
                    "HistoryData": h.data,
                }
                for h in page
            ]
        }
        if offset + max_records < len(items):
            out["NextToken"] = _Tokens.encode(offset + max_records, fingerprint)
        return out

    def delete_alarms(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        names = list(params.get("AlarmNames") or [])
        # AWS: incorrect names are skipped, the correct ones are still deleted.
        self.alarms.delete_alarms(names, self.now())
        for name in names:
            if self.alarms.get(name) is None:
                self._extras.pop(name, None)
        self.persist()
        return {}

    def set_alarm_state(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params["AlarmName"]
        data = params.get("StateReasonData")
        if data is not None:
            try:
                json.loads(data)
            except ValueError:
                raise AwsError("InvalidFormat", f"StateReasonData is not valid JSON: {data[:80]}") from None
        state = params["StateValue"]
        if state not in ("OK", "ALARM", "INSUFFICIENT_DATA"):
            raise _validation(
                f"1 validation error detected: Value '{state}' at 'stateValue' failed to satisfy constraint: "
                "Member must satisfy enum value set: [INSUFFICIENT_DATA, ALARM, OK]"
            )
        if self.alarms.get(name) is None:
            raise AwsError("ResourceNotFound", f"Alarm {name} not found", 404)
        self.alarms.set_state(name, state, params["StateReason"], self.now(), reason_data=data)
        self.persist()
        return {}

    def enable_alarm_actions(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self._set_actions_enabled(params, True)

    def disable_alarm_actions(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self._set_actions_enabled(params, False)

    def _set_actions_enabled(self, params: Mapping[str, Any], enabled: bool) -> dict[str, Any]:
        for name in params.get("AlarmNames") or []:
            alarm = self.alarms.get(name)
            if alarm is not None:
                alarm.spec.actions_enabled = enabled
        self.persist()
        return {}

    # ------------------------------------------------------------------ tags
    def _alarm_for_arn(self, arn: str) -> Alarm:
        parts = (arn or "").split(":", 6)
        alarm = (
            self.alarms.get(parts[6])
            if len(parts) == 7 and parts[2] == "cloudwatch" and parts[5] == "alarm"
            else None
        )
        if alarm is None or alarm.arn != arn:
            raise AwsError("ResourceNotFoundException", f"The resource {arn} does not exist.", 404)
        return alarm

    def tag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        alarm = self._alarm_for_arn(params["ResourceARN"])
        tags = self._extras.setdefault(alarm.name, {}).setdefault("Tags", {})
        tags.update({t["Key"]: t["Value"] for t in params.get("Tags") or []})
        self.persist()
        return {}

    def untag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        alarm = self._alarm_for_arn(params["ResourceARN"])
        tags = self._extras.setdefault(alarm.name, {}).setdefault("Tags", {})
        for key in params.get("TagKeys") or []:
            tags.pop(key, None)
        self.persist()
        return {}

    def list_tags_for_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        alarm = self._alarm_for_arn(params["ResourceARN"])
        tags = self._extras.get(alarm.name, {}).get("Tags", {})
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


# ------------------------------------------------------------------------------------------ component
def load_alarm_book(state: Any, region: str, account_id: str) -> AlarmBook:
    """The persisted alarm book of this backend, or a new one."""
    doc = state.get(STATE_KIND, STATE_KEY_ALARMS) if state is not None else None
    if doc:
        try:
            return AlarmBook.from_dict(doc)
        except Exception:
            backup = f"{STATE_KEY_ALARMS}.unreadable"
            state.put(STATE_KIND, backup, doc)
            log.exception(
                "stored CloudWatch alarms could not be read; starting with none. The stored document was "
                "copied to state row (%r, %r) for inspection.",
                STATE_KIND,
                backup,
            )
    return AlarmBook(region=region, account_id=account_id)


def install(backend: Any) -> None:
    """Backend component: ``backend.alarms``, the ``cloudwatch`` service and the evaluation loop."""
    if getattr(backend, "metrics", None) is None:
        backend.metrics = MetricStore(now=backend.clock.now)
    if getattr(backend, "alarms", None) is None:
        backend.alarms = load_alarm_book(backend.state, backend.region, backend.account_id)
    service = CloudWatchService(backend.metrics, backend.alarms, backend.clock.now, backend.state)
    backend.cloudwatch = service
    backend.add_service("cloudwatch", service)
    backend.add_background(lambda: service.run(backend.clock))

    async def _save() -> None:
        with contextlib.suppress(Exception):
            service.persist(force=True)

    backend.add_shutdown(_save)
