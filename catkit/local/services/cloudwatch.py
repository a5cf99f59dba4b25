"""The local backend's CloudWatch API: metric data over MetricStore, alarms over AlarmBook.

Owns the CloudWatch wire operations (botocore-shaped params in, botocore-shaped results out).
Alarms are evaluated by the backend's scaling step (:class:`catkit.autoscaling.driver.ScalingDriver`),
the only evaluator; undeliverable actions are recorded by :meth:`record_undeliverable_actions`. Request checks and AWS's error texts are in
:mod:`catkit.local.services.cloudwatch_input`, the metric-math language and SEARCH in
:mod:`catkit.local.services.cloudwatch_math`, alarm persistence in
:mod:`catkit.local.services.cloudwatch_store`. It holds no metric data itself
(``catkit.autoscaling.metrics_store``) and no alarm rules (``catkit.autoscaling.alarms`` and ``alarm_rules``).

Operations: PutMetricData, GetMetricData (MetricStat, metric math and SEARCH expressions; Metrics
Insights queries are not supported), GetMetricStatistics, ListMetrics, PutMetricAlarm,
DescribeAlarms, DescribeAlarmHistory, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
EnableAlarmActions, DisableAlarmActions, TagResource, UntagResource, ListTagsForResource.

Local simplifications (said here so they are easy to find): one alarm book per backend (the
backend's region and account, whatever region a request names); metric-math alarms (``Metrics``),
anomaly-detection and composite alarms are rejected with a clear ValidationError; alarm actions
other than Application Auto Scaling policies (SNS, EC2, ...) are not delivered: an ``Action``
history item says so. Timestamps are the backend's emulated clock; request times anchored to the
wall clock's now are read relative to it (:mod:`catkit.local.services.cloudwatch_clock`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from catkit.autoscaling.alarms import Alarm, AlarmBook, AlarmSpecError, is_autoscaling_action
from catkit.autoscaling.metrics_store import MetricStore, is_extended_statistic
from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService, RequestContext
from catkit.local.services.cloudwatch_clock import anchor_metric_data, shift_back, window
from catkit.local.services.cloudwatch_input import (
    ALARM_STATES,
    DEFAULT_MAX_DATAPOINTS,
    FUTURE_LIMIT_S,
    HISTORY_ITEM_TYPES,
    MAX_DIMENSIONS,
    MAX_GMS_DATAPOINTS,
    MAX_METRICS_PER_PUT,
    MAX_QUERIES,
    MAX_VALUES_PER_METRIC,
    PAST_LIMIT_S,
    STANDARD_STATISTICS,
    VALUE_LIMIT,
    alarm_spec,
    check_metric_data,
    check_period,
    check_queries,
    check_query_count,
    check_unit,
    combination,
    dims_in,
    dims_out,
    invalid_value,
    round_start,
    standard_units,
    validation,
)
from catkit.local.services.cloudwatch_math import (
    MAX_SEARCH_RESULTS,
    SUPPORTED_FUNCTIONS,
    MetricId,
    parse_search,
)
from catkit.local.services.cloudwatch_query import page_results, query_results
from catkit.local.services.cloudwatch_store import (
    STATE_KEY_ALARMS,
    STATE_KEY_EXTRAS,
    STATE_KIND,
    AlarmPersistence,
    load_alarm_book,
)
from catkit.local.services.pagination import offset_page, request_fingerprint, with_next_token
from catkit.timeconv import from_epoch, to_epoch_or_none

__all__ = [  # the names this module has always offered, wherever they live now
    "DEFAULT_MAX_DATAPOINTS",
    "EVALUATION_INTERVAL_S",
    "FUTURE_LIMIT_S",
    "LIST_METRICS_PAGE",
    "MAX_DIMENSIONS",
    "MAX_GMS_DATAPOINTS",
    "MAX_METRICS_PER_PUT",
    "MAX_QUERIES",
    "MAX_SEARCH_RESULTS",
    "MAX_VALUES_PER_METRIC",
    "PAST_LIMIT_S",
    "STANDARD_STATISTICS",
    "STATE_KEY_ALARMS",
    "STATE_KEY_EXTRAS",
    "STATE_KIND",
    "SUPPORTED_FUNCTIONS",
    "VALUE_LIMIT",
    "CloudWatchService",
    "MetricId",
    "load_alarm_book",
    "parse_search",
    "round_start",
    "standard_units",
]

log = logging.getLogger("catkit.local.cloudwatch")

EVALUATION_INTERVAL_S = 10.0
LIST_METRICS_PAGE = 500


def _invalid_token() -> AwsError:
    return AwsError(
        "InvalidNextToken",
        "The NextToken is invalid: pass the NextToken returned by the previous call with the same parameters.",
    )


class CloudWatchService(BaseService):
    """CloudWatch operations over a MetricStore and an AlarmBook, on an emulated clock."""

    service_name = "cloudwatch"

    def __init__(
        self,
        metrics: MetricStore,
        alarms: AlarmBook,
        now: Callable[[], float],
        state: Any = None,
        *,
        store: AlarmPersistence | None = None,
    ) -> None:
        self.metrics = metrics
        self.alarms = alarms
        self.now = now
        self.state = state
        self._store = store if store is not None else AlarmPersistence(alarms, state)
        self._extras = self._store.extras  # alarm name -> {"Tags": {...}, "EvaluateLow...": ...}

    # ------------------------------------------------------------------ persistence & actions
    def persist(self, force: bool = False) -> None:
        """Save alarm definitions, state, history and tags if anything changed (or ``force``)."""
        self._store.persist(force)

    def record_undeliverable_actions(self, now: float | None = None) -> None:
        """Record the alarm actions the backend cannot deliver (SNS, EC2, ...) as failed in the
        alarm's history. Alarms are evaluated by the backend's scaling step, before this runs."""
        now = self.now() if now is None else now
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

    def tick(self, now: float | None = None) -> list[Any]:
        """Evaluate due alarms once, record undeliverable actions, persist changes (for tests and
        tools; the backend's scaling step evaluates the alarms)."""
        now = self.now() if now is None else now
        transitions = self.alarms.evaluate(now, self.metrics)
        self.record_undeliverable_actions(now)
        self.persist()
        return transitions

    # ------------------------------------------------------------------ metric data
    def put_metric_data(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        anchor_metric_data(params, self.now)  # Timestamp=datetime.now() on a scaled clock: emulated now
        namespace, records = check_metric_data(params, self.now())
        for kind, name, dims, ts, unit, res, payload in records:
            if kind == "value":
                self.metrics.record(namespace, name, dims, payload, ts, unit, res)
            elif kind == "values":
                self.metrics.record_values(namespace, name, dims, payload[0], payload[1], ts, unit, res)
            else:
                self.metrics.record_statistics(namespace, name, dims, *payload, ts, unit, res)
        return {}

    def get_metric_statistics(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stats = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not stats and not extended:
            raise combination("Must specify either Statistics or ExtendedStatistics.")
        for i, s in enumerate(stats, start=1):
            if s not in STANDARD_STATISTICS:
                raise invalid_value(f"Statistics.member.{i}", s)
        for i, s in enumerate(extended, start=1):
            if not is_extended_statistic(s):
                raise invalid_value(f"ExtendedStatistics.member.{i}", s)
        period = check_period(params.get("Period"), "Period", (1, 5, 10, 30))
        start, end, shift = window(params, self.now)  # a datetime.now()-anchored window: see cloudwatch_clock
        if start >= end:
            raise AwsError(
                "InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime."
            )
        unit = params.get("Unit")
        check_unit(unit, "Unit")
        start = round_start(start, period, self.now())
        requested = math.ceil((end - start) / period)
        if requested > MAX_GMS_DATAPOINTS:
            raise combination(
                f"You have requested up to {requested:,} datapoints, which exceeds the limit of "
                f"{MAX_GMS_DATAPOINTS:,}. You may reduce the datapoints requested by increasing Period, "
                "or decreasing the time range."
            )
        dims = dims_in(params.get("Dimensions"), "Dimensions")
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
                "Timestamp": from_epoch(shift_back(row["Timestamp"], shift)),
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
        check_query_count(queries)
        start, end, shift = window(params, self.now)
        if start >= end:
            raise validation("The parameter EndTime must be greater than StartTime.")
        scan_by = params.get("ScanBy") or "TimestampDescending"
        if scan_by not in ("TimestampDescending", "TimestampAscending"):
            raise invalid_value("ScanBy", scan_by)
        max_points = int(params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS)
        if max_points < 1:
            raise invalid_value("MaxDatapoints", max_points)
        by_id = check_queries(queries)
        results = query_results(self.metrics, queries, by_id, start, end, self.now(), scan_by)
        answer = page_results(results, params, max_points, _invalid_token)
        for result in answer.get("MetricDataResults", []) if shift else []:
            result["Timestamps"] = [shift_back(t, shift) for t in result.get("Timestamps", [])]
        return answer

    def list_metrics(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        dim_filter: dict[str, str | None] = {}
        for item in params.get("Dimensions") or []:
            dim_filter[item["Name"]] = item.get("Value")
        active_since = None
        if params.get("RecentlyActive") is not None:
            if params["RecentlyActive"] != "PT3H":
                raise invalid_value("RecentlyActive", params["RecentlyActive"])
            active_since = self.now() - 3 * 3600
        metrics = self.metrics.list_metrics(
            namespace=params.get("Namespace"),
            metric_name=params.get("MetricName"),
            dimensions=dim_filter or None,
            active_since=active_since,
        )
        fingerprint = request_fingerprint(
            params.get("Namespace"), params.get("MetricName"), dim_filter, active_since is None
        )
        page, token = offset_page(
            metrics, params.get("NextToken"), LIST_METRICS_PAGE, fingerprint, _invalid_token
        )
        out: dict[str, Any] = {
            "Metrics": [
                {"Namespace": ns, "MetricName": name, "Dimensions": dims_out(dict(sorted(dims.items())))}
                for ns, name, dims in page
            ]
        }
        return with_next_token(out, token)

    # ------------------------------------------------------------------ alarms
    def put_metric_alarm(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params.get("AlarmName") or ""
        try:
            self.alarms.put_alarm(alarm_spec(params), self.now())
        except AlarmSpecError as exc:
            raise validation(str(exc)) from None
        extras = self._extras.setdefault(name, {})
        elsc = params.get("EvaluateLowSampleCountPercentile")
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
            "AlarmConfigurationUpdatedTimestamp": from_epoch(alarm.configuration_updated),
            "ActionsEnabled": spec.actions_enabled,
            "OKActions": list(spec.ok_actions),
            "AlarmActions": list(spec.alarm_actions),
            "InsufficientDataActions": list(spec.insufficient_data_actions),
            "StateValue": alarm.state_value,
            "StateReason": alarm.state_reason,
            "StateUpdatedTimestamp": from_epoch(alarm.state_updated),
            "MetricName": spec.metric_name,
            "Namespace": spec.namespace,
            "Dimensions": dims_out(spec.dimensions),
            "Period": spec.period,
            "EvaluationPeriods": spec.evaluation_periods,
            "Threshold": float(spec.threshold),
            "ComparisonOperator": spec.comparison_operator,
            "TreatMissingData": spec.treat_missing_data,
            "StateTransitionedTimestamp": from_epoch(alarm.state_transitioned),
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
            raise combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive; specify one."
            )
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        relational = params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
        state = params.get("StateValue")
        if state is not None and state not in ALARM_STATES:
            raise invalid_value("StateValue", state)
        max_records = int(params.get("MaxRecords") or 50)
        alarms = []
        if (
            "MetricAlarm" in types and not relational
        ):  # composite alarms (and their relations) don't exist here
            alarms = self.alarms.list(
                names=names, prefix=prefix, state=state, action_prefix=params.get("ActionPrefix")
            )
        fingerprint = request_fingerprint(
            names, prefix, types, state, params.get("ActionPrefix"), max_records
        )
        page, token = offset_page(alarms, params.get("NextToken"), max_records, fingerprint, _invalid_token)
        out: dict[str, Any] = {"MetricAlarms": [self._alarm_out(a) for a in page], "CompositeAlarms": []}
        return with_next_token(out, token)

    def describe_alarms_for_metric(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        dims = dims_in(params.get("Dimensions"), "Dimensions")
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
        if item_type is not None and item_type not in HISTORY_ITEM_TYPES:
            raise invalid_value("HistoryItemType", item_type)
        types = params.get("AlarmTypes") or ["MetricAlarm", "CompositeAlarm"]
        start, end = to_epoch_or_none(params.get("StartDate")), to_epoch_or_none(params.get("EndDate"))
        items = (
            self.alarms.history(params.get("AlarmName"), item_type, start, end)
            if "MetricAlarm" in types
            else []
        )
        if (params.get("ScanBy") or "TimestampDescending") == "TimestampAscending":
            items = list(reversed(items))
        max_records = int(params.get("MaxRecords") or 100)
        fingerprint = request_fingerprint(
            params.get("AlarmName"), item_type, start, end, params.get("ScanBy"), max_records, types
        )
        page, token = offset_page(items, params.get("NextToken"), max_records, fingerprint, _invalid_token)
        out: dict[str, Any] = {
            "AlarmHistoryItems": [
                {
                    "AlarmName": h.alarm_name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": from_epoch(h.timestamp),
                    "HistoryItemType": h.history_item_type,
                    "HistorySummary": h.summary,
                    "HistoryData": h.data,
                }
                for h in page
            ]
        }
        return with_next_token(out, token)

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
        if state not in ALARM_STATES:
            raise validation(
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
