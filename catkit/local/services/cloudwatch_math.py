"""CloudWatch metric math: the expression language of GetMetricData and its SEARCH terms.

Owns the tokenizer and recursive-descent parser of metric-math expressions, their evaluation over
time series (:class:`TimeSeries`, :class:`MathContext`: arithmetic, FILL, DIFF, RATE, the
reducers, METRICS, PERIOD, ...) and the parser of SEARCH terms (:func:`parse_search`). Pure: no
metric store, no service, no I/O; the CloudWatch service hands in the MetricStat series and a
``search`` callback and turns the ``ValueError`` raised here into AWS errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any


class TimeSeries:
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

    def binary(self, operators: tuple[str, ...], operand: Callable[[], Any]) -> Any:
        """``operand (op operand)*`` for ``op`` in ``operators``, left-associative."""
        node = operand()
        while self.peek() in operators:
            op = self.take()[1]
            node = ("bin", op, node, operand())
        return node

    def expr(self) -> Any:
        return self.binary(("+", "-"), self.term)

    def term(self) -> Any:
        return self.binary(("*", "/"), self.unary)

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
        alternatives = [parse_and()]
        while peek() == ("op", "OR"):
            i += 1
            alternatives.append(parse_and())
        return alternatives[0] if len(alternatives) == 1 else lambda m: any(p(m) for p in alternatives)

    def parse_and() -> Callable[[MetricId], bool]:
        nonlocal i
        terms = [parse_not()]
        while (tok := peek()) is not None and tok not in (("op", "OR"), ("paren", ")")):
            if tok == ("op", "AND"):  # AND may be left out: adjacent terms must all match
                i += 1
            terms.append(parse_not())
        return terms[0] if len(terms) == 1 else lambda m: all(p(m) for p in terms)

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


class MathContext:
    """Evaluates the expressions of one GetMetricData request over its MetricStat series."""

    def __init__(
        self,
        queries: Mapping[str, Mapping[str, Any]],
        stat_series: Mapping[str, TimeSeries],
        start: float,
        end: float,
        search: Callable[[str, str, int], list[TimeSeries]] | None = None,
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
        if isinstance(value, TimeSeries) and not value.label:
            value.label = query.get("Label") or qid
        self.values[qid] = value
        return value

    def grid(self, series: TimeSeries) -> list[float]:
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
            items: list[TimeSeries] = []
            for sub in node[1]:
                v = self.eval(sub, query)
                if isinstance(v, list):
                    items.extend(v)
                elif isinstance(v, TimeSeries):
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
            return [MathContext.apply1(v, fn) for v in value]
        if isinstance(value, TimeSeries):
            pts = {t: r for t, v in value.points.items() if (r := _safe(fn, v)) is not None}
            return TimeSeries(pts, "", value.period)
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
        if isinstance(a, TimeSeries) and isinstance(b, TimeSeries):
            pts = {
                t: r
                for t, v in a.points.items()
                if t in b.points and (r := _safe(fn, v, b.points[t])) is not None
            }
            return TimeSeries(pts, "", min(a.period, b.period))
        if isinstance(a, TimeSeries):
            return TimeSeries(
                {t: r for t, v in a.points.items() if (r := _safe(fn, v, b)) is not None}, "", a.period
            )
        if isinstance(b, TimeSeries):
            return TimeSeries(
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
                args[0], lambda s: TimeSeries(dict.fromkeys(s.points, float(s.period)), "", s.period)
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
    def map_series(value: Any, fn: Callable[[TimeSeries], Any]) -> Any:
        if isinstance(value, list):
            return [fn(s) for s in value]
        if not isinstance(value, TimeSeries):
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
            return TimeSeries(pts, "", min(s.period for s in value))
        if isinstance(value, TimeSeries):  # series -> scalar over all its datapoints
            vs = list(value.points.values())
            return _safe(fn, vs) if vs else None
        if isinstance(value, str) or value is None:
            raise ValueError(f"{name} takes a time series or an array of time series")
        return value

    def fill(self, value: Any, how: Any) -> Any:
        if isinstance(value, list):
            return [self.fill(v, how) for v in value]
        if not isinstance(value, TimeSeries):
            raise ValueError("FILL takes a time series as its first argument")
        grid = self.grid(value)
        pts: dict[float, float] = {}
        known = sorted(value.points)
        if isinstance(how, TimeSeries):
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
        return TimeSeries(pts, "", value.period)

    def sequential(self, name: str, value: Any) -> Any:
        if isinstance(value, list):
            return [self.sequential(name, v) for v in value]
        if not isinstance(value, TimeSeries):
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
        return TimeSeries(pts, "", value.period)
