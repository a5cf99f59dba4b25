"""The alarm book: CloudWatch metric alarms of one account/region, evaluated on a caller's clock.

This module owns alarm state and history (:class:`Alarm`, :class:`AlarmHistoryItem`), evaluation
scheduling, the action outbox and persistence (:class:`AlarmBook`). What an alarm is and which state
its datapoints call for are the pure rules of :mod:`catkit.autoscaling.alarm_rules` (:class:`AlarmSpec`,
:func:`~catkit.autoscaling.alarm_rules.decide`), re-exported here. It reads metrics only through the
:class:`MetricReader` port (``MetricStore.statistics``) and never looks at a wall clock: every call
takes ``now`` (epoch seconds).

How the book evaluates (AWS CloudWatch user guide, "Evaluating an alarm"):

* Latest datapoint: ASSUMPTION - only *complete* periods are evaluated (a period ``[t, t+P)`` is
  evaluated once ``now >= t + P``); the running period is never looked at, so a partially filled
  Sum cannot read as "low". Change :data:`EVALUATE_PARTIAL_PERIOD` to evaluate it.
* Evaluation cadence: alarms with a period of 60 s or more are evaluated once a minute, alarms
  with a high-resolution period (10 or 30 s) every 10 s, on boundaries of that interval.
  ``evaluate`` is idempotent for a given ``now``: alarms not yet due are skipped, so callers that
  share one book cannot evaluate an alarm twice.
* Actions fire on state changes. For Application/EC2 Auto Scaling actions (ARNs
  ``arn:<partition>:autoscaling:...``) the alarm keeps invoking the action once a minute (every
  period for high-resolution alarms) while it stays in the state, as AWS documents. Invocations are
  returned by ``evaluate`` and also kept in an outbox that consumers drain with
  :meth:`AlarmBook.pop_actions` (the latest invocation per alarm and action is kept).
* Reading: a period is read from the metric store at the evaluation after it completes and
  once more at the next one (:data:`REREAD_PERIODS`); older periods of the range are remembered.
  ASSUMPTION: datapoints that arrive more than a period late (back-dated PutMetricData) are not
  seen by an alarm that already read that period; CloudWatch re-reads the whole range. This keeps
  long simulations cheap.
* Statistics: a standard or an extended statistic (``p99``, ``tm90`` ...) is passed through to the
  reader. ``unit`` is stored and shown but not used to filter (ASSUMPTION: the local metric store
  keeps one unit per metric).
"""

from __future__ import annotations

import functools
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from catkit.autoscaling.alarm_rules import (
    ALARM,
    COMPARISONS,
    INSUFFICIENT_DATA,
    OK,
    STATES,
    STATISTICS,
    TREAT_MISSING,
    AlarmSpec,
    AlarmSpecError,
    Outcome,
    action_repeat_interval,
    decide,
    decide_state,
    evaluation_interval,
    evaluation_range,
    first_eventful,
    is_autoscaling_action,
)
from catkit.timeconv import from_epoch

__all__ = [
    "ALARM",
    "COMPARISONS",
    "EVALUATE_PARTIAL_PERIOD",
    "INSUFFICIENT_DATA",
    "OK",
    "REREAD_PERIODS",
    "STATES",
    "STATISTICS",
    "TREAT_MISSING",
    "ActionInvocation",
    "Alarm",
    "AlarmBook",
    "AlarmHistoryItem",
    "AlarmSpec",
    "AlarmSpecError",
    "AlarmTransition",
    "MetricReader",
    "action_repeat_interval",
    "decide_state",
    "evaluation_interval",
    "evaluation_range",
    "first_eventful",
    "is_autoscaling_action",
    "newest_period",
]

EVALUATE_PARTIAL_PERIOD = False
# How many already-read periods (the newest) are read again at each evaluation.
REREAD_PERIODS = 1
HISTORY_RETENTION_S = 30 * 24 * 3600  # CloudWatch keeps alarm history for 30 days.
INITIAL_REASON = "Unchecked: Initial alarm creation"


class MetricReader(Protocol):
    """Port to a metric store: ``statistics`` is called like
    :meth:`catkit.autoscaling.metrics_store.MetricStore.statistics` ``(namespace, name, dimensions,
    start, end, period, statistics)`` and returns its rows (``Timestamp`` plus one key per statistic).
    A reader may also have ``period_values`` (as :meth:`MetricStore.period_values`: the values
    without rows, or None to ask ``statistics``)."""

    statistics: Callable[..., list[dict[str, Any]]]


@dataclass
class AlarmHistoryItem:
    """One DescribeAlarmHistory entry; ``data`` is the HistoryData JSON string."""

    timestamp: float
    alarm_name: str
    history_item_type: str  # ConfigurationUpdate | StateUpdate | Action
    summary: str
    data: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlarmTransition:
    """A state change (``repeat`` False) or a repeated Auto Scaling action invocation (``repeat`` True).

    ``actions`` are the ARNs to invoke for the new state (empty when actions are disabled).
    """

    alarm_name: str
    old_state: str
    new_state: str
    timestamp: float
    reason: str
    actions: list[str]
    repeat: bool = False


@dataclass
class ActionInvocation:
    """One action an alarm asks to run; kept in the book's outbox until popped."""

    alarm_name: str
    action: str
    state: str
    timestamp: float


@dataclass
class Alarm:
    """An alarm: its spec and live state. Created and updated only by :class:`AlarmBook`."""

    spec: AlarmSpec
    arn: str
    state_value: str = INSUFFICIENT_DATA
    state_reason: str = INITIAL_REASON
    state_reason_data: str | None = None
    state_updated: float = 0.0
    state_transitioned: float = 0.0
    configuration_updated: float = 0.0
    history: list[AlarmHistoryItem] = field(default_factory=list)
    next_evaluation: float = 0.0
    last_action_at: float | None = None
    # The datapoints (oldest first) of the latest evaluation, whatever its outcome; the scaling
    # engine reads the metric value from here.
    recent_datapoints: list[float] = field(default_factory=list)
    last_evaluated: float | None = None
    # Period start -> value read at earlier evaluations (not persisted; refilled after a restart).
    _cache: dict[float, float | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.alarm_name


def newest_period(period: int, now: float) -> float:
    """Start of the newest period an evaluation at ``now`` reads (see :data:`EVALUATE_PARTIAL_PERIOD`)."""
    return math.floor(now / period) * period - (0 if EVALUATE_PARTIAL_PERIOD else period)


@functools.lru_cache(maxsize=4096)
def _iso(ts: float) -> str:
    return from_epoch(ts).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class AlarmBook:
    """All metric alarms of one account/region: definitions, live state, history, action outbox."""

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.account_id = account_id
        self._alarms: dict[str, Alarm] = {}
        self._history: deque[AlarmHistoryItem] = deque()
        self._outbox: dict[tuple[str, str], ActionInvocation] = {}

    # ------------------------------------------------------------------ definitions
    def arn_for(self, name: str) -> str:
        return f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}"

    def put_alarm(self, spec: AlarmSpec, now: float) -> Alarm:
        """Create or replace an alarm (PutMetricAlarm). An update keeps the current state."""
        spec.validate()
        existing = self._alarms.get(spec.alarm_name)
        if existing is None:
            alarm = Alarm(
                spec=spec,
                arn=self.arn_for(spec.alarm_name),
                state_updated=now,
                state_transitioned=now,
                configuration_updated=now,
                next_evaluation=now,
            )
            self._alarms[spec.alarm_name] = alarm
            verb, body = "created", {"type": "Create", "createdAlarm": self._config_doc(spec)}
        else:
            old = existing.spec
            existing.spec = spec
            existing._cache.clear()
            existing.configuration_updated = now
            existing.next_evaluation = now
            alarm = existing
            verb = "updated"
            body = {
                "type": "Update",
                "originalUpdatedAlarm": self._config_doc(old),
                "updatedAlarm": self._config_doc(spec),
            }
        self._add_history(
            alarm,
            AlarmHistoryItem(
                now,
                spec.alarm_name,
                "ConfigurationUpdate",
                f'Alarm "{spec.alarm_name}" {verb}',
                json.dumps({"version": "1.0", **body}),
            ),
        )
        return alarm

    def delete_alarms(self, names: Iterable[str], now: float) -> list[str]:
        """Delete alarms (DeleteAlarms); returns the names that did not exist. History is kept."""
        missing = []
        for name in names:
            alarm = self._alarms.pop(name, None)
            if alarm is None:
                missing.append(name)
                continue
            for key in [k for k in self._outbox if k[0] == name]:
                del self._outbox[key]
            self._add_history(
                alarm,
                AlarmHistoryItem(
                    now,
                    name,
                    "ConfigurationUpdate",
                    f'Alarm "{name}" deleted',
                    json.dumps(
                        {"version": "1.0", "type": "Delete", "deletedAlarm": self._config_doc(alarm.spec)}
                    ),
                ),
            )
        return missing

    def get(self, name: str) -> Alarm | None:
        return self._alarms.get(name)

    def list(
        self,
        names: Iterable[str] | None = None,
        prefix: str | None = None,
        state: str | None = None,
        action_prefix: str | None = None,
    ) -> list[Alarm]:
        """Alarms sorted by name, filtered like DescribeAlarms."""
        if not (names or prefix or state or action_prefix):
            return [self._alarms[name] for name in sorted(self._alarms)]
        wanted = set(names) if names else None
        out = []
        for name in sorted(self._alarms):
            a = self._alarms[name]
            if wanted is not None and name not in wanted:
                continue
            if prefix and not name.startswith(prefix):
                continue
            if state and a.state_value != state:
                continue
            if action_prefix and not any(
                x.startswith(action_prefix)
                for x in (*a.spec.alarm_actions, *a.spec.ok_actions, *a.spec.insufficient_data_actions)
            ):
                continue
            out.append(a)
        return out

    def history(
        self,
        alarm_name: str | None = None,
        item_type: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[AlarmHistoryItem]:
        """History items, newest first (DescribeAlarmHistory), including deleted alarms'."""
        out = [
            h
            for h in self._history
            if (alarm_name is None or h.alarm_name == alarm_name)
            and (item_type is None or h.history_item_type == item_type)
            and (start is None or h.timestamp >= start)
            and (end is None or h.timestamp <= end)
        ]
        out.reverse()
        return out

    def record_action(self, alarm_name: str, summary: str, data: Mapping[str, Any], now: float) -> None:
        """Add an ``Action`` history item (e.g. "Successfully executed action arn:...")."""
        alarm = self._alarms.get(alarm_name)
        item = AlarmHistoryItem(now, alarm_name, "Action", summary, json.dumps({"version": "1.0", **data}))
        if alarm is not None:
            self._add_history(alarm, item)
        else:
            self._history.append(item)

    # ------------------------------------------------------------------ state
    def set_state(
        self, name: str, state: str, reason: str, now: float, reason_data: str | None = None
    ) -> AlarmTransition | None:
        """SetAlarmState: set the state until the next evaluation; fires actions on a change."""
        alarm = self._alarms.get(name)
        if alarm is None:
            raise KeyError(name)
        if state not in STATES:
            raise AlarmSpecError(f"StateValue must be one of {', '.join(STATES)}; got {state!r}.")
        return self._change(alarm, state, reason, reason_data, now)

    def evaluate(self, now: float, metrics: MetricReader) -> list[AlarmTransition]:
        """Evaluate every alarm that is due at ``now``; returns state changes and repeated actions."""
        out: list[AlarmTransition] = []
        for alarm in list(self._alarms.values()):
            if now < alarm.next_evaluation:
                continue
            interval = evaluation_interval(alarm.spec.period)
            alarm.next_evaluation = (math.floor(now / interval) + 1) * interval
            outcome, data = self._evaluate_one(alarm, now, metrics)
            changed = None
            if outcome.state is not None and outcome.state != alarm.state_value:
                doc = data()
                changed = self._change(
                    alarm, outcome.state, outcome.reason(), json.dumps(doc, separators=(",", ":")), now, doc
                )
            if changed is not None:
                out.append(changed)
            else:
                rep = self._repeat(alarm, now)
                if rep is not None:
                    out.append(rep)
        return out

    def next_evaluation(self) -> float:
        """When the next alarm is due for evaluation (inf when there are no alarms)."""
        return min((a.next_evaluation for a in self._alarms.values()), default=math.inf)

    def defer(self, name: str, until: float) -> None:
        """Skip the evaluations of alarm ``name`` before ``until``: its next one is the first on its
        interval at or after ``until``. Only for a caller that knows those evaluations would change
        nothing (the scaling driver, from forecast metrics); state, history and actions stay."""
        alarm = self._alarms.get(name)
        if alarm is None or alarm.next_evaluation >= until:
            return
        interval = evaluation_interval(alarm.spec.period)
        alarm.next_evaluation = math.ceil(until / interval) * interval

    def pop_actions(self, accept: Callable[[str], bool]) -> list[ActionInvocation]:
        """Remove and return pending action invocations whose action ARN ``accept`` takes."""
        keys = [k for k in self._outbox if accept(k[1])]
        items = [self._outbox.pop(k) for k in keys]
        items.sort(key=lambda x: x.timestamp)
        return items

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "account_id": self.account_id,
            "alarms": [
                {
                    "spec": a.spec.to_dict(),
                    "arn": a.arn,
                    "state_value": a.state_value,
                    "state_reason": a.state_reason,
                    "state_reason_data": a.state_reason_data,
                    "state_updated": a.state_updated,
                    "state_transitioned": a.state_transitioned,
                    "configuration_updated": a.configuration_updated,
                    "next_evaluation": a.next_evaluation,
                    "last_action_at": a.last_action_at,
                    "recent_datapoints": a.recent_datapoints,
                    "last_evaluated": a.last_evaluated,
                }
                for a in self._alarms.values()
            ],
            "history": [h.to_dict() for h in self._history],
            "outbox": [asdict(x) for x in self._outbox.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlarmBook:
        book = cls(d.get("region", "us-east-1"), d.get("account_id", "123456789012"))
        for a in d.get("alarms", []):
            alarm = Alarm(spec=AlarmSpec.from_dict(a["spec"]), **{k: v for k, v in a.items() if k != "spec"})
            book._alarms[alarm.name] = alarm
        for h in d.get("history", []):
            item = AlarmHistoryItem(**h)
            book._history.append(item)
            if item.alarm_name in book._alarms:
                book._alarms[item.alarm_name].history.append(item)
        for x in d.get("outbox", []):
            inv = ActionInvocation(**x)
            book._outbox[(inv.alarm_name, inv.action)] = inv
        return book

    # ------------------------------------------------------------------ internals
    def _evaluate_one(
        self, alarm: Alarm, now: float, metrics: MetricReader
    ) -> tuple[Outcome, Callable[[], dict[str, Any]]]:
        spec = alarm.spec
        p = spec.period
        r = evaluation_range(spec.evaluation_periods)
        last_start = newest_period(p, now)
        first_start = last_start - (r - 1) * p
        stat = spec.stat_name
        # Periods read at an earlier evaluation come from the cache, except the newest
        # REREAD_PERIODS of them, read again to catch datapoints that arrived late.
        cache = alarm._cache
        query_from = first_start
        if cache:
            known = max(cache)
            query_from = min(max(first_start, known - (REREAD_PERIODS - 1) * p), last_start)
        for b in [b for b in cache if b < first_start or b >= query_from]:
            del cache[b]
        b = query_from
        while b <= last_start:
            cache[b] = None
            b += p
        quick = getattr(metrics, "period_values", None)  # the same values without rows, where it can
        got = quick(spec.namespace, spec.metric_name, spec.dimensions, query_from, last_start + p, p, stat) if (
            quick is not None) else None
        if got is not None:
            first, read = got
            for i, v in enumerate(read):
                ts = first + i * p
                if v is not None and query_from <= ts <= last_start:
                    cache[ts] = float(v)
        else:
            for row in metrics.statistics(
                spec.namespace, spec.metric_name, spec.dimensions, query_from, last_start + p, p, [stat]
            ):
                ts = float(row["Timestamp"])
                v = row.get(stat)
                if v is not None and query_from <= ts <= last_start:
                    cache[math.floor(ts / p) * p] = float(v)
        stamps = [first_start + i * p for i in range(r)]
        values: list[float | None] = [cache.get(t) for t in stamps]
        outcome = decide(spec, values, alarm.state_value, stamps)
        recent = [(stamps[i], v) for i, v in enumerate(values) if v is not None][-spec.evaluation_periods :]
        alarm.recent_datapoints = [v for _, v in recent]
        alarm.last_evaluated = now

        def data() -> dict[str, Any]:
            stat_doc = (
                {"statistic": spec.statistic}
                if spec.statistic
                else {"extendedStatistic": spec.extended_statistic}
            )
            return {
                "version": "1.0",
                "queryDate": _iso(now),
                "startDate": _iso(first_start),
                **stat_doc,
                "period": p,
                "recentDatapoints": [v for _, v in recent],
                "threshold": float(spec.threshold),
                "evaluatedDatapoints": [{"timestamp": _iso(t), "value": v} for t, v in reversed(recent)],
            }

        return outcome, data

    def _change(
        self,
        alarm: Alarm,
        state: str,
        reason: str,
        reason_data: str | None,
        now: float,
        reason_doc: dict[str, Any] | None = None,
    ) -> AlarmTransition | None:
        old, old_reason = alarm.state_value, alarm.state_reason
        if state == old:
            # Same state: no history, no actions; the reason of the last transition stays.
            return None
        alarm.state_value, alarm.state_reason, alarm.state_reason_data = state, reason, reason_data
        alarm.state_updated = alarm.state_transitioned = now
        new_state: dict[str, Any] = {"stateValue": state, "stateReason": reason}
        if reason_doc is not None:  # reason_data parsed already
            new_state["stateReasonData"] = reason_doc
        elif reason_data:
            try:
                new_state["stateReasonData"] = json.loads(reason_data)
            except ValueError:
                new_state["stateReasonData"] = reason_data
        self._add_history(
            alarm,
            AlarmHistoryItem(
                now,
                alarm.name,
                "StateUpdate",
                f"Alarm updated from {old} to {state}",
                json.dumps(
                    {
                        "version": "1.0",
                        "oldState": {"stateValue": old, "stateReason": old_reason},
                        "newState": new_state,
                    }
                ),
            ),
        )
        actions = alarm.spec.actions_for(state)
        alarm.last_action_at = now if actions else None
        for act in actions:
            self._outbox[(alarm.name, act)] = ActionInvocation(alarm.name, act, state, now)
        return AlarmTransition(alarm.name, old, state, now, reason, list(actions))

    def _repeat(self, alarm: Alarm, now: float) -> AlarmTransition | None:
        acts = [a for a in alarm.spec.actions_for(alarm.state_value) if is_autoscaling_action(a)]
        if not acts:
            return None
        every = action_repeat_interval(alarm.spec.period)
        if alarm.last_action_at is not None and now - alarm.last_action_at < every - 1e-6:
            return None
        alarm.last_action_at = now
        for act in acts:
            self._outbox[(alarm.name, act)] = ActionInvocation(alarm.name, act, alarm.state_value, now)
        return AlarmTransition(
            alarm.name, alarm.state_value, alarm.state_value, now, alarm.state_reason, acts, repeat=True
        )

    def _add_history(self, alarm: Alarm, item: AlarmHistoryItem) -> None:
        self._history.append(item)
        alarm.history.append(item)
        horizon = item.timestamp - HISTORY_RETENTION_S
        while self._history and self._history[0].timestamp < horizon:
            self._history.popleft()
        while alarm.history and alarm.history[0].timestamp < horizon:
            alarm.history.pop(0)

    @staticmethod
    def _config_doc(spec: AlarmSpec) -> dict[str, Any]:
        return {
            "alarmName": spec.alarm_name,
            "namespace": spec.namespace,
            "metricName": spec.metric_name,
            "dimensions": [{"name": k, "value": v} for k, v in spec.dimensions.items()],
            **(
                {"statistic": spec.statistic}
                if spec.statistic
                else {"extendedStatistic": spec.extended_statistic}
            ),
            "period": spec.period,
            "evaluationPeriods": spec.evaluation_periods,
            "datapointsToAlarm": spec.m,
            "threshold": float(spec.threshold),
            "comparisonOperator": spec.comparison_operator,
            "treatMissingData": spec.treat_missing_data,
            "actionsEnabled": spec.actions_enabled,
            "alarmActions": spec.alarm_actions,
            "okactions": spec.ok_actions,
            "insufficientDataActions": spec.insufficient_data_actions,
        }
