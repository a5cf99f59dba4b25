"""CloudWatch request checks: AWS's limits, validation rules and error texts for request values.

Owns what CloudWatch accepts and how it says no: dimensions, datum values, periods, units,
statistics, timestamps (two weeks back, two hours ahead), StartTime rounding (:func:`round_start`),
the MetricDataQueries ids and the PutMetricAlarm parameters the local backend supports. Each check
turns botocore-shaped request values into plain values or raises the :class:`AwsError` AWS would.
No state, no metric store, no I/O.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from catkit.autoscaling.alarms import AlarmSpec
from catkit.autoscaling.metrics_store import is_extended_statistic
from catkit.local.errors import AwsError
from catkit.timeconv import to_epoch

MAX_METRICS_PER_PUT = 1000
MAX_VALUES_PER_METRIC = 150
MAX_DIMENSIONS = 30
MAX_QUERIES = 500
MAX_GMS_DATAPOINTS = 1440
DEFAULT_MAX_DATAPOINTS = 100_800
PAST_LIMIT_S = 14 * 86400
FUTURE_LIMIT_S = 2 * 3600
VALUE_LIMIT = 2.0**360
STANDARD_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
HISTORY_ITEM_TYPES = (
    "ConfigurationUpdate",
    "StateUpdate",
    "Action",
    "AlarmContributorStateUpdate",
    "AlarmContributorAction",
)
QUERY_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


@functools.cache
def standard_units() -> frozenset[str]:
    """CloudWatch's StandardUnit values, from botocore's CloudWatch model."""
    from catkit.local.protocols.models import service_model

    return frozenset(service_model("cloudwatch").shape_for("StandardUnit").enum)


# ------------------------------------------------------------------------------------------ errors
def invalid_value(param: str, value: Any) -> AwsError:
    """InvalidParameterValue: ``The value V for parameter P is invalid.``"""
    return AwsError("InvalidParameterValue", f"The value {value} for parameter {param} is invalid.")


def combination(message: str) -> AwsError:
    """InvalidParameterCombination with ``message``."""
    return AwsError("InvalidParameterCombination", message)


def validation(message: str) -> AwsError:
    """ValidationError with ``message``."""
    return AwsError("ValidationError", message)


# ------------------------------------------------------------------------------------------ values
def dims_in(items: Sequence[Mapping[str, Any]] | None, param: str) -> dict[str, str]:
    """A request's ``[{"Name", "Value"}]`` dimensions as a dict (names unique, values required)."""
    out: dict[str, str] = {}
    for item in items or []:
        name = item.get("Name")
        if name in out:
            raise invalid_value(param, f"{name} (a dimension name may appear only once)")
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


def dims_out(dims: Mapping[str, str]) -> list[dict[str, str]]:
    """A dimensions dict in CloudWatch's ``[{"Name", "Value"}]`` response shape."""
    return [{"Name": k, "Value": v} for k, v in dims.items()]


def check_value(value: Any, param: str) -> float:
    """A finite datapoint value within CloudWatch's range (about ±2^360)."""
    v = float(value)
    if not math.isfinite(v) or abs(v) > VALUE_LIMIT:
        raise invalid_value(param, value)
    return v


def check_unit(unit: Any, param: str) -> None:
    """A StandardUnit (or None, meaning any unit)."""
    if unit is not None and unit not in standard_units():
        raise invalid_value(param, unit)


def is_statistic(stat: Any) -> bool:
    """A standard statistic (Sum, Average, ...) or an extended one (p99, tm90, IQM, ...)."""
    return stat in STANDARD_STATISTICS or is_extended_statistic(stat)


def check_period(period: Any, param: str, allowed_small: tuple[int, ...]) -> int:
    """A period of ``allowed_small`` seconds or a multiple of 60."""
    try:
        p = int(period)
    except (TypeError, ValueError):
        raise invalid_value(param, period) from None
    if p != period or p <= 0 or (p < 60 and p not in allowed_small) or (p >= 60 and p % 60):
        raise AwsError(
            "InvalidParameterValue",
            f"The parameter {param} must be {', '.join(map(str, allowed_small))} or a multiple of 60; got {period}.",
        )
    return p


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


def time_range(params: Mapping[str, Any]) -> tuple[float, float]:
    """StartTime and EndTime of a request, as epoch seconds."""
    return to_epoch(params["StartTime"]), to_epoch(params["EndTime"])


# ------------------------------------------------------------------------------------------ PutMetricData
class Datum(NamedTuple):
    """One checked MetricData item; ``kind`` says what ``payload`` holds:
    ``value`` a float, ``values`` ``(values, counts or None)``, ``stats`` ``(count, sum, min, max)``."""

    kind: str
    name: str
    dims: dict[str, str]
    timestamp: float
    unit: str
    resolution: int
    payload: Any


def check_metric_data(params: Mapping[str, Any], now: float) -> tuple[str, list[Datum]]:
    """The namespace and checked datums of a PutMetricData request (MetricData and EntityMetricData)."""
    namespace = params.get("Namespace") or ""
    if namespace.startswith("AWS/"):
        raise invalid_value("Namespace", namespace)
    groups: list[tuple[str, list[Mapping[str, Any]]]] = [("MetricData", list(params.get("MetricData") or []))]
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
    return namespace, [
        check_datum(datum, f"{prefix}.member.{i}", now)
        for prefix, items in groups
        for i, datum in enumerate(items, start=1)
    ]


def check_datum(datum: Mapping[str, Any], param: str, now: float) -> Datum:
    """One MetricData item checked the way PutMetricData checks it; ``param`` names it in errors."""
    name = datum.get("MetricName")
    if not name:
        raise AwsError("MissingParameter", f"The parameter {param}.MetricName is required.")
    dims = dims_in(datum.get("Dimensions"), f"{param}.Dimensions")
    ts = to_epoch(datum["Timestamp"]) if datum.get("Timestamp") is not None else now
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
        raise invalid_value(f"{param}.Unit", unit)
    res = datum.get("StorageResolution")
    res = 60 if res is None else res
    if res not in (1, 60):
        raise AwsError(
            "InvalidParameterValue",
            f"The value {res} for parameter {param}.StorageResolution is invalid: use 1 (high resolution) or 60.",
        )
    given = [k for k in ("Value", "Values", "StatisticValues") if datum.get(k) not in (None, [])]
    if len(given) > 1:
        raise combination(
            f"The parameters {param}.{given[0]} and {param}.{given[1]} are mutually exclusive and you have specified both."
        )
    if not given:
        raise AwsError(
            "MissingParameter",
            f"At least one of the parameters {param}.Value, {param}.Values or {param}.StatisticValues must be specified.",
        )
    if datum.get("Counts") and given != ["Values"]:
        raise combination(f"The parameter {param}.Counts can only be used together with {param}.Values.")
    if given == ["Value"]:
        return Datum("value", name, dims, ts, unit, res, check_value(datum["Value"], f"{param}.Value"))
    if given == ["Values"]:
        return Datum("values", name, dims, ts, unit, res, _check_values(datum, param))
    return Datum("stats", name, dims, ts, unit, res, _check_statistic_values(datum["StatisticValues"], param))


def _check_values(datum: Mapping[str, Any], param: str) -> tuple[list[float], list[float] | None]:
    values = [check_value(v, f"{param}.Values") for v in datum["Values"]]
    if len(values) > MAX_VALUES_PER_METRIC:
        raise AwsError(
            "InvalidParameterValue",
            f"The collection {param}.Values must not have a size greater than {MAX_VALUES_PER_METRIC}.",
        )
    counts = datum.get("Counts") or None
    if counts is not None:
        if len(counts) != len(values):
            raise invalid_value(
                f"{param}.Counts",
                f"(size {len(counts)}; it must have the same size as {param}.Values)",
            )
        counts = [check_value(c, f"{param}.Counts") for c in counts]
        if any(c < 0 for c in counts):
            raise invalid_value(f"{param}.Counts", "(counts must not be negative)")
    return values, counts


def _check_statistic_values(sv: Mapping[str, Any], param: str) -> tuple[float, float, float, float]:
    for key in ("SampleCount", "Sum", "Minimum", "Maximum"):
        if sv.get(key) is None:
            raise AwsError("MissingParameter", f"The parameter {param}.StatisticValues.{key} is required.")
    count, total, lo, hi = (
        check_value(sv[k], f"{param}.StatisticValues.{k}")
        for k in ("SampleCount", "Sum", "Minimum", "Maximum")
    )
    if count <= 0:
        raise invalid_value(f"{param}.StatisticValues.SampleCount", sv["SampleCount"])
    if lo > hi:
        raise combination(
            f"The parameter {param}.StatisticValues.Minimum must not be greater than {param}.StatisticValues.Maximum."
        )
    return count, total, lo, hi


# ------------------------------------------------------------------------------------------ GetMetricData
def check_query_count(queries: Sequence[Mapping[str, Any]]) -> None:
    """One to 500 MetricDataQueries."""
    if not queries:
        raise AwsError("MissingParameter", "The parameter MetricDataQueries is required.")
    if len(queries) > MAX_QUERIES:
        raise AwsError(
            "InvalidParameterValue",
            f"The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}.",
        )


def check_queries(queries: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """MetricDataQueries by Id: ids well-formed and unique, exactly one of MetricStat and
    Expression each, at least one returning data."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for i, q in enumerate(queries, start=1):
        param = f"MetricDataQueries.member.{i}"
        qid = q.get("Id") or ""
        if not QUERY_ID.match(qid):
            raise validation(
                f"The value {qid} for parameter {param}.Id is invalid: it must start with a lowercase letter "
                "and contain only letters, numbers and underscores."
            )
        if qid in by_id:
            raise validation(f"The value {qid} for parameter {param}.Id is used more than once.")
        has_stat, has_expr = q.get("MetricStat") is not None, q.get("Expression") is not None
        if has_stat == has_expr:
            raise validation(
                f"Exactly one of {param}.MetricStat and {param}.Expression must be specified."
                if has_stat
                else f"The parameter {param}.MetricStat is required (or {param}.Expression)."
            )
        by_id[qid] = q
    if not any(q.get("ReturnData", True) for q in queries):
        raise validation("At least one MetricDataQueries item must have ReturnData set to true.")
    return by_id


# ------------------------------------------------------------------------------------------ PutMetricAlarm
_UNSUPPORTED_ALARM_KEYS = (
    "EvaluationWindow",
    "WarmUpConfiguration",
    "EvaluationCriteria",
    "EvaluationInterval",
    "ThresholdMetricId",
)


def alarm_spec(params: Mapping[str, Any]) -> AlarmSpec:
    """The AlarmSpec of a PutMetricAlarm request, after the checks AWS makes beyond the model (and
    the refusals of what the local backend does not emulate). AlarmSpecError is left to the caller."""
    if params.get("Metrics"):
        raise validation(
            "Metric math alarms (Metrics) are not supported by the catkit local backend; alarm on a single "
            "metric with MetricName, Namespace, Dimensions and Statistic instead."
        )
    for key in _UNSUPPORTED_ALARM_KEYS:
        if params.get(key) is not None:
            raise validation(f"The parameter {key} is not supported by the catkit local backend.")
    missing = [k for k in ("MetricName", "Namespace", "Period", "Threshold") if params.get(k) is None]
    if missing:
        raise validation(
            f"The parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} required for a metric alarm."
        )
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        for arn in params.get(key) or []:
            if not str(arn).startswith("arn:") or len(str(arn).split(":")) < 6:
                raise validation(f"Invalid arn syntax: {arn}")
    unit = params.get("Unit")
    check_unit(unit, "Unit")
    elsc = params.get("EvaluateLowSampleCountPercentile")
    if elsc not in (None, "", "evaluate", "ignore"):
        raise validation(
            f"Option {elsc} is not supported. Supported options for parameter "
            "EvaluateLowSampleCountPercentile are evaluate and ignore."
        )
    ext = params.get("ExtendedStatistic")
    if ext is not None and not is_extended_statistic(ext):
        raise invalid_value("ExtendedStatistic", ext)
    return AlarmSpec(
        alarm_name=params.get("AlarmName") or "",
        namespace=params["Namespace"],
        metric_name=params["MetricName"],
        dimensions=dims_in(params.get("Dimensions"), "Dimensions"),
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
