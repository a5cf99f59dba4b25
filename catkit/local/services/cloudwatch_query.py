"""GetMetricData answered from a MetricStore: MetricStat series, SEARCH, metric math, paging.

Owns how the queries of one (already checked) GetMetricData request become results: each
MetricStat is read from the store at its period from the rounded StartTime, expressions are
evaluated by :mod:`catkit.local.services.cloudwatch_math` (SEARCH reads the store the same way),
and the results are cut into pages of at most MaxDatapoints values, a NextToken naming
``[result, point]`` where the next page starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.errors import AwsError
from catkit.local.services.cloudwatch_input import (
    check_period,
    check_unit,
    dims_in,
    is_statistic,
    round_start,
    validation,
)
from catkit.local.services.cloudwatch_math import MAX_SEARCH_RESULTS, MathContext, TimeSeries, parse_search
from catkit.local.services.pagination import decode_token, encode_token, request_fingerprint
from catkit.timeconv import from_epoch

HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)


def query_results(
    metrics: MetricStore,
    queries: Sequence[Mapping[str, Any]],
    by_id: Mapping[str, Mapping[str, Any]],
    start: float,
    end: float,
    now: float,
    scan_by: str,
) -> list[dict[str, Any]]:
    """One ``{"Id", "Label", "Timestamps", "Values"}`` per returned series, in ``scan_by`` order
    (epoch timestamps); expression errors become ValidationError naming the query."""
    stat_series: dict[str, TimeSeries] = {}
    math_start = end
    for i, q in enumerate(queries, start=1):
        if q.get("MetricStat") is None:
            continue
        param = f"MetricDataQueries.member.{i}.MetricStat"
        series, first = metric_stat(metrics, q, param, start, end, now)
        stat_series[q["Id"]] = series
        math_start = min(math_start, first)
    ctx_math = MathContext(
        by_id,
        stat_series,
        math_start if stat_series else start,
        end,
        search=lambda text, stat, period: search(metrics, text, stat, period, start, end, now),
    )
    results: list[dict[str, Any]] = []
    for q in queries:
        if not q.get("ReturnData", True):
            continue
        try:
            value = ctx_math.value_of(q["Id"])
        except ValueError as exc:
            raise validation(f"Error in expression {q['Id']}: {exc}") from None
        label = q.get("Label")
        if isinstance(value, list):
            for s in value:
                results.append(_result(q["Id"], label or s.label, s.points, scan_by))
        elif isinstance(value, TimeSeries):
            results.append(_result(q["Id"], label or value.label, value.points, scan_by))
        else:  # a scalar: shown at every timestamp of the request's metrics
            stamps = sorted({t for s in stat_series.values() for t in s.points})
            pts = {t: float(value) for t in stamps} if isinstance(value, float | int) else {}
            results.append(_result(q["Id"], label or q["Id"], pts, scan_by))
    return results


def metric_stat(
    metrics: MetricStore, query: Mapping[str, Any], param: str, start: float, end: float, now: float
) -> tuple[TimeSeries, float]:
    """The series of a MetricStat query and the rounded start it was read from."""
    ms = query["MetricStat"]
    metric = ms.get("Metric") or {}
    period = check_period(ms.get("Period"), f"{param}.Period", HIGH_RESOLUTION_PERIODS)
    stat = ms.get("Stat") or ""
    if not is_statistic(stat):
        raise validation(
            f"The value {stat} for parameter {param}.Stat is invalid: use SampleCount, Average, Sum, "
            "Minimum, Maximum or an extended statistic such as p99, tm90, IQM."
        )
    unit = ms.get("Unit")
    check_unit(unit, f"{param}.Unit")
    if not metric.get("Namespace") or not metric.get("MetricName"):
        raise AwsError(
            "MissingParameter", f"The parameters {param}.Metric.Namespace and MetricName are required."
        )
    dims = dims_in(metric.get("Dimensions"), f"{param}.Metric.Dimensions")
    first = round_start(start, period, now)
    rows = metrics.statistics(
        metric["Namespace"], metric["MetricName"], dims, first, end, period, [stat], unit=unit
    )
    points = {float(r["Timestamp"]): float(r[stat]) for r in rows if stat in r}
    return TimeSeries(points, query.get("Label") or metric["MetricName"], period), first


def search(
    metrics: MetricStore, text: str, stat: str, period: int, start: float, end: float, now: float
) -> list[TimeSeries]:
    """SEARCH(): the matching metrics (at most 500, sorted), each queried like a MetricStat."""
    if not is_statistic(stat):
        raise ValueError(f"{stat!r} is not a statistic SEARCH can use")
    check_period(period, "SEARCH period", HIGH_RESOLUTION_PERIODS)
    schema, predicate = parse_search(text)
    found = []
    for ns, name, dims in metrics.list_metrics(namespace=schema[0] if schema else None):
        if schema is not None and frozenset(dims) != schema[1]:
            continue
        if predicate((ns, name, dims)):
            found.append((ns, name, dims))
    first = round_start(start, period, now)
    out = []
    for ns, name, dims in found[:MAX_SEARCH_RESULTS]:
        rows = metrics.statistics(ns, name, dims, first, end, period, [stat])
        points = {float(r["Timestamp"]): float(r[stat]) for r in rows if stat in r}
        label = " ".join([*(dims[k] for k in sorted(dims)), name])
        out.append(TimeSeries(points, label, period))
    return out


def _result(qid: str, label: str, points: Mapping[float, float], scan_by: str) -> dict[str, Any]:
    stamps = sorted(points, reverse=scan_by == "TimestampDescending")
    return {"Id": qid, "Label": label, "Timestamps": stamps, "Values": [points[t] for t in stamps]}


def page_results(
    results: list[dict[str, Any]],
    params: Mapping[str, Any],
    max_points: int,
    invalid: Callable[[], Exception],
) -> dict[str, Any]:
    """The GetMetricData response: at most ``max_points`` values of ``results`` from the position
    in ``params["NextToken"]`` (``invalid()`` is raised for a bad one)."""
    fingerprint = request_fingerprint(
        params.get("MetricDataQueries"),
        str(params.get("StartTime")),
        str(params.get("EndTime")),
        params.get("ScanBy"),
        max_points,
    )
    ri, pi = (0, 0)
    if params.get("NextToken"):
        position = decode_token(params["NextToken"], fingerprint, invalid)
        if not (isinstance(position, list) and len(position) == 2 and all(type(p) is int for p in position)):
            raise invalid()
        ri, pi = position
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
                "Timestamps": [from_epoch(t) for t in stamps[:take]],
                "Values": values[:take],
                "StatusCode": "Complete" if complete else "PartialData",
            }
        )
        budget -= take
        if not complete:
            next_token = encode_token([ri, pi + take], fingerprint)
            break
        ri, pi = ri + 1, 0
        if budget == 0 and ri < len(results):
            next_token = encode_token([ri, 0], fingerprint)
            break
    out: dict[str, Any] = {"MetricDataResults": page, "Messages": []}
    if next_token:
        out["NextToken"] = next_token
    return out
