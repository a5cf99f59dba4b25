"""Event skipping for the scaling driver: which alarm evaluation ahead can change anything.

:class:`Lookahead` serves :meth:`catkit.autoscaling.driver.ScalingDriver.next_step` when the fleet
can forecast its metrics (:meth:`~catkit.autoscaling.driver.FleetPort.forecast`: the offline
simulator). For each alarm it reads the forecast values of the periods ahead, adds the idle zeros
the driver will record (minutes without traffic of an auto-scaled variant read 0), and applies the
alarm's own M-out-of-N rule to many evaluations at once
(:func:`~catkit.autoscaling.alarm_rules.first_eventful`) with the engine's word on which metric
values an invocation cannot act on (:meth:`~catkit.autoscaling.decisions.DecisionRules.quiet_band`:
capacity at max/min, cooldowns, a proposal equal to the current capacity); where that band ends
before the scan's limit (a cooldown runs out), the scan goes on with the band the engine gives
from then on, its state being the same until the next step. Nothing here decides:
the driver steps at the time found and the engine decides there, as it would when stepped every
10 seconds.

Forecasts hold while the fleet does not change: the driver bumps :attr:`Lookahead.epoch` when it
applies a change and when the time the fleet announced for its next change has passed. Scan
results are kept per alarm and epoch, so a step that changes neither the fleet nor the engine's
answer costs no new forecast. A fleet that versions its forecasts (``forecast_version``: the
simulator's changes only when its serving count does) keeps them, and the alarms' prefix counts
over them, across bumps that leave the version as it was (:meth:`Lookahead.forecasts_for`).

A fleet whose forecasts past its last change are whole-traffic arrays shared by many runs
(:attr:`Lookahead.indexed`: the simulator's ``uniform_forecast`` with shared tables) lets the
decisions-only scan skip the counting there: the indices where the alarm's rule holds
(:func:`~catkit.autoscaling.alarm_rules.alarm_indices`, built once per array and rule in the
fleet's memo) are searched (:func:`~catkit.autoscaling.alarm_rules.first_invoked`), and only the
few evaluations whose windows still reach the periods before that change are counted, in plain
Python over one small forecast (:meth:`Lookahead._head`).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from catkit.autoscaling.alarm_rules import (
    ALARM,
    COMPARISONS,
    INSUFFICIENT_DATA,
    OK,
    action_repeat_interval,
    alarm_indices,
    evaluation_interval,
    evaluation_range,
    first_eventful,
    first_invoked,
    has_autoscaling_action,
    prefix_counts,
)
from catkit.autoscaling.alarms import Alarm, newest_period

if TYPE_CHECKING:
    from catkit.autoscaling.engine import Engine

#: Evaluations looked at per round of a scan (growing, then repeating the last size).
FORECAST_CHUNKS = (60, 240, 960, 3840)
#: Periods asked of the fleet at least, per forecast.
FETCH_PERIODS = 120

#: ``forecast(namespace, name, dims, statistic, period, start, end)`` of a FleetPort.
Forecast = Callable[[str, str, Mapping[str, str], str, int, float, float], "np.ndarray | None"]
#: ``idle(namespace, name, dims)``: None when the driver adds no idle zeros to the metric, else a
#: function ``(values, first) -> values`` adding them to per-minute values from ``first``.
#: ``uniform_forecast(namespace, name, dims, statistic, period)`` of a fleet that keeps whole-traffic
#: forecasts: ``(split, first, values, memo)`` (see :meth:`SimulatedFleet.uniform_forecast`) or None.
Indexed = Callable[[str, str, Mapping[str, str], str, int], "tuple[float, float, np.ndarray, Any] | None"]
IdleZeros = Callable[[str, str, Mapping[str, str]], "Callable[[np.ndarray, float], np.ndarray] | None"]


def _before(end: float, t: float, interval: float, most: int) -> int:
    """How many of the evaluations ``t, t + interval, ...`` (at most ``most``) come before ``end``."""
    if end >= t + most * interval:
        return most
    return max(0, math.ceil((end - t) / interval))


def _breaches(spec: Any, values: list[float]) -> list[bool]:
    """Which of ``values`` (present datapoints) breach ``spec``'s threshold."""
    return list(map(COMPARISONS[spec.comparison_operator], values, itertools.repeat(float(spec.threshold))))


class Lookahead:
    """The first eventful evaluation of each alarm, from forecasts (see the module docstring).

    ``exact``: alarm state changes count as eventful (alarm histories stay as when stepping every
    10 s); otherwise only evaluations that can start an activity do.
    """

    def __init__(self, exact: bool = True, idle_catch_up_minutes: int = 60) -> None:
        self.exact = exact
        self.idle_catch_up_minutes = idle_catch_up_minutes
        self.epoch = 0
        self._version: Any = None  # the fleet's forecast version the kept forecasts belong to
        self._scans: dict[str, tuple[Any, float, bool]] = {}  # alarm -> (key, time, found)
        self._forecasts: dict[Any, tuple[float, np.ndarray, float]] = {}  # metric -> (first, values, asked end)
        self._counts: dict[str, tuple[np.ndarray, Any, Any]] = {}  # alarm -> prefix counts of its values
        self._bands: dict[str, tuple[Any, float, float, Any]] = {}  # alarm -> (spec, from, until, quiet band)
        self._metric_keys: dict[str, tuple[Any, tuple]] = {}  # alarm -> (spec, the metric its forecasts are kept by)
        self._lookups: dict[str, tuple[Any, Any]] = {}  # alarm -> (spec, its _indexed answer)
        # alarm -> (spec, Auto Scaling action in ALARM, in OK, actions repeat on the evaluation grid)
        self._rules: dict[str, tuple[Any, bool, bool, bool]] = {}
        # (alarm, id of indexed values) -> (spec, values, their alarm_indices or None: gaps), for good.
        self._alarmed: dict[tuple[str, int], tuple[Any, np.ndarray, np.ndarray | None]] = {}
        #: The fleet's ``uniform_forecast`` (set by the driver; None: counting windows only).
        self.indexed: Indexed | None = None

    def bump(self) -> None:
        """The fleet or the engine changed: answers found so far no longer hold (forecasts too,
        unless the fleet versions them: :meth:`forecasts_for`)."""
        self.epoch += 1
        self._scans.clear()
        self._bands.clear()
        if self._version is None:
            self._forecasts.clear()
            self._counts.clear()
            self._lookups.clear()

    def forecasts_for(self, version: Any) -> None:
        """The fleet's forecasts are those of ``version`` (None: unversioned; they are then
        dropped at every :meth:`bump`): forecasts kept for another version are dropped."""
        if version is None or version != self._version:
            self._forecasts.clear()
            self._counts.clear()
            self._lookups.clear()
        self._version = version

    def _rule(self, spec: Any) -> tuple[Any, bool, bool, bool]:
        """``(spec, invokes an Auto Scaling action in ALARM, in OK, actions repeat on the
        evaluation grid)``, kept per alarm while its spec stays the same object."""
        kept = self._rules.get(spec.alarm_name)
        if kept is None or kept[0] is not spec:
            kept = self._rules[spec.alarm_name] = (
                spec, has_autoscaling_action(spec, ALARM), has_autoscaling_action(spec, OK),
                action_repeat_interval(spec.period) == evaluation_interval(spec.period))
        return kept

    def next_eventful(
        self,
        alarm: Alarm,
        now: float,
        limit: float,
        engine: Engine,
        capacity: Callable[[str], int | None],
        forecast: Forecast,
        idle: IdleZeros,
    ) -> float:
        """The first evaluation of ``alarm`` after ``now`` that can change anything if it comes
        before ``limit`` (else ``limit`` or later; its next evaluation when that cannot be told)."""
        due = alarm.next_evaluation
        spec = alarm.spec
        if due >= limit or spec.statistic is None:
            return due
        state = alarm.state_value
        if self.exact and state not in (OK, ALARM):
            return due
        quiet = None
        _, on_alarm, _, on_grid = self._rule(spec)
        if (state == ALARM or not self.exact) and on_alarm:
            if not on_grid:
                return due  # actions repeat off the evaluation grid: keep every evaluation
            quiet = self._quiet(alarm, now, engine, capacity)
            if quiet is None:
                return due
        key = (spec, quiet, state if self.exact else None)
        cached = self._scans.get(spec.alarm_name)
        start = due
        if cached is not None and cached[0] in (key, (spec, quiet, state)):
            _, t, found = cached
            if found and t >= due:
                return t
            if not found:
                if t >= limit:
                    return t
                start = max(due, t)
        t, found = self._scan(alarm, start, limit if quiet is None else min(limit, quiet[2]), quiet, forecast, idle,
                              alarm.state_value)
        while not found and quiet is not None and quiet[2] < limit:
            # The band ends (a cooldown runs out) before the limit: the engine's band from then on,
            # its state being the same until a step (a decision, a fleet change) bumps the epoch.
            until = quiet[2]
            quiet = engine.quiet_band(spec.alarm_name, until, capacity)
            if quiet is None or quiet[2] <= until:
                found = True  # the engine cannot tell: the evaluation at t counts
                break
            # A later piece does not know the state it starts from (transitions aside, skipped
            # changes leave it stale): a window with missing data in it then stops the scan at its start.
            t, found = self._scan(alarm, t, min(limit, quiet[2]), quiet, forecast, idle,
                                  alarm.state_value if self.exact else INSUFFICIENT_DATA)
        told = self._counts.get(spec.alarm_name)
        if not self.exact and (told is None or bool(np.isnan(told[0]).any())):
            key = (spec, key[1], state)  # the missing-data rule looks at the state
        self._scans[spec.alarm_name] = (key, t, found)
        return t

    def _quiet(
        self, alarm: Alarm, now: float, engine: Engine, capacity: Callable[[str], int | None]
    ) -> tuple[float, float, float] | None:
        """The engine's :meth:`quiet_band` for ``alarm``, kept while the fleet and the engine's
        cooldowns stay as they are (until the band's end)."""
        spec = alarm.spec
        kept = self._bands.get(spec.alarm_name)
        if kept is not None and kept[0] is spec and kept[1] <= now < kept[2]:
            return kept[3]
        band = engine.quiet_band(spec.alarm_name, now, capacity)
        self._bands[spec.alarm_name] = (spec, now, band[2] if band is not None else now, band)
        return band

    def _scan(
        self,
        alarm: Alarm,
        start: float,
        limit: float,
        quiet: tuple[float, float, float] | None,
        forecast: Forecast,
        idle: IdleZeros,
        state: str,
    ) -> tuple[float, bool]:
        """(time, True) of the first eventful evaluation from ``start`` (on the alarm's interval)
        before ``limit``, the alarm being in ``state`` at ``start``; (a time >= limit, False) when
        there is none. From the fleet's :attr:`indexed` lookups where it has them, else by counting
        windows over forecasts (:meth:`_count`)."""
        indexed = None if self.exact else self._indexed(alarm, idle)
        if indexed is None:
            return self._count(alarm, start, limit, quiet, forecast, idle, state)
        split, first, values, alarmed = indexed
        spec = alarm.spec
        period = spec.period
        j0 = int((newest_period(period, start) - first) // period)  # the newest period read at start
        # Evaluations whose window reaches before the split read periods of other serving counts: counted.
        head = max(0, int((split - first) // period) + spec.evaluation_periods - 1 - j0)
        t = start + period * head
        rule = self._rule(spec)
        if head and not self._quiet_head(rule, j0, head, t, quiet, len(values)):
            found = self._head(alarm, indexed, j0, start, min(limit, t), quiet, forecast)
            if found is None:
                found = self._count(alarm, start, min(limit, t), quiet, forecast, idle, state)
            if found[1] or found[0] >= limit:
                return found
        elif t >= limit:
            return start + period * _before(limit, start, period, head), False
        most = _before(limit, t, period, len(values))  # evaluations before the limit (the traffic's at most)
        told = max(0, min(most, len(values) - (j0 + head)))  # those whose periods the fleet can tell
        quiet_for = None if quiet is None else _before(quiet[2], t, period, told)
        j = first_invoked(spec, values, alarmed, j0 + head, j0 + head + told, quiet[:2] if quiet else None, quiet_for,
                          acts=rule[1:3])
        k = j - (j0 + head)
        if k < told or told < most:
            return t + period * k, True  # eventful, or the first evaluation the fleet cannot tell
        return t + period * most, t + period * most < limit

    def _head(
        self, alarm: Alarm, indexed: tuple[float, float, np.ndarray, np.ndarray], j0: int, start: float,
        limit: float, quiet: tuple[float, float, float] | None, forecast: Forecast,
    ) -> tuple[float, bool] | None:
        """:meth:`_count` (decisions only) for the few evaluations from ``start`` before ``limit``,
        the first reading period ``j0`` of the ``indexed`` values: the M-of-N rule
        window by window over one forecast of just their periods, in plain Python (cheaper than
        array calls for a dozen values). None when it cannot tell that way (a gap, periods untold,
        OK-state actions)."""
        spec = alarm.spec
        period, n = spec.period, spec.evaluation_periods
        size = _before(limit, start, period, 1 << 30)
        _, acts, on_ok, _ = self._rule(spec)
        if on_ok:
            return None
        values = self._window(spec, indexed, j0 - n + 1, n - 1 + size, forecast)
        if values is None:
            return None
        if not acts:
            return start + period * size, False  # windows all whole: no evaluation invokes anything
        breaches = _breaches(spec, values)
        quiet_for = size if quiet is None else _before(quiet[2], start, period, size)
        count, m = sum(breaches[: n - 1]), spec.m
        for k in range(size):
            count += breaches[k + n - 1]
            if k:
                count -= breaches[k - 1]
            if count >= m:
                latest = values[k + n - 1]
                if quiet is None or k >= quiet_for or latest < quiet[0] or latest > quiet[1]:
                    return start + period * k, True
        return start + period * size, False

    @staticmethod
    def _window(
        spec: Any, indexed: tuple[float, float, np.ndarray, np.ndarray], j: int, count: int, forecast: Forecast
    ) -> list[float] | None:
        """The forecast values of ``count`` periods from period ``j`` of the ``indexed`` values, as
        floats (those before the split forecast, the others read there); None unless all are told
        and present."""
        split, first, uniform, _ = indexed
        if j < 0 or j + count > len(uniform):
            return None
        s = max(j, min(j + count, int((split - first) // spec.period)))  # the first period read from uniform
        values = []
        if s > j:
            lo = first + j * spec.period
            got = forecast(spec.namespace, spec.metric_name, spec.dimensions, spec.statistic or "", spec.period, lo,
                           first + s * spec.period)
            if got is None or len(got) < s - j:
                return None
            values = got.tolist()
            if any(map(math.isnan, values)):
                return None  # a gap
        return values + uniform[s : j + count].tolist()  # no gaps in indexed values

    @staticmethod
    def _quiet_head(
        rule: tuple[Any, bool, bool, bool], j0: int, head: int, t: float, quiet: tuple[float, float, float] | None,
        told: int,
    ) -> bool:
        """Whether none of the ``head`` evaluations from the one reading period ``j0`` (up to
        ``t``) can be eventful without looking at their values: their periods are all from the
        first whole one and told (so present: the fleet's gaps do not depend on the counts), and
        the alarm invokes nothing in ALARM or the engine's band takes every value until ``t``."""
        spec, on_alarm, on_ok, _ = rule
        if j0 - spec.evaluation_periods + 1 < 0 or j0 + head > told or on_ok:
            return False
        if not on_alarm:
            return True
        return quiet is not None and quiet[0] == -math.inf and quiet[1] == math.inf and quiet[2] >= t

    def _indexed(
        self, alarm: Alarm, idle: IdleZeros
    ) -> tuple[float, float, np.ndarray, np.ndarray] | None:
        """``(split, first, values, alarmed)`` for an alarm evaluated once per period whose metric
        the fleet forecasts from shared tables (:attr:`indexed`) without gaps:
        :func:`first_invoked` looks up its evaluations reading only periods from ``split`` on in
        the :func:`alarm_indices` ``alarmed`` of ``values``, kept with the tables. Kept per alarm
        while the forecasts hold."""
        spec = alarm.spec
        kept = self._lookups.get(alarm.spec.alarm_name)
        if kept is not None and kept[0] is spec:
            return kept[1]
        found = None
        if self.indexed is not None and spec.statistic is not None and (
                evaluation_interval(spec.period) == spec.period):
            add_zeros = idle(spec.namespace, spec.metric_name, spec.dimensions)
            catch_up = add_zeros is None or (
                spec.period == 60 and evaluation_range(spec.evaluation_periods) <= self.idle_catch_up_minutes)
            got = self.indexed(spec.namespace, spec.metric_name, spec.dimensions, spec.statistic, spec.period)
            if got is not None and catch_up:
                split, first, values, memo = got
                ours = self._alarmed.get((alarm.spec.alarm_name, id(values)))
                if ours is None or ours[0] is not spec or ours[1] is not values:
                    # Idle zeros only fill gaps: none to fill without them.
                    gaps = memo(("gaps",), lambda: bool(np.isnan(values).any()))
                    rule = ("alarm_indices", spec.comparison_operator, float(spec.threshold),
                            spec.evaluation_periods, spec.m)
                    alarmed = None if gaps else memo(rule, lambda: alarm_indices(spec, values))
                    ours = self._alarmed[(alarm.spec.alarm_name, id(values))] = (spec, values, alarmed)
                if ours[2] is not None:
                    found = (split, first, values, ours[2])
        self._lookups[alarm.spec.alarm_name] = (spec, found)
        return found

    def _count(self, alarm: Alarm, start: float, limit: float, quiet: tuple[float, float, float] | None,
               forecast: Forecast, idle: IdleZeros, state: str) -> tuple[float, bool]:
        """:meth:`_scan` by counting the windows of forecast values, chunk by chunk."""
        spec = alarm.spec
        period, n = spec.period, spec.evaluation_periods
        interval = evaluation_interval(period)
        lag = math.floor(start / period) * period - newest_period(period, start)
        t = start
        linear = interval % period == 0  # one period further per evaluation (or a whole number)
        # Up to a finite limit in one chunk (calls cost more than elements here); else growing chunks.
        sizes = FORECAST_CHUNKS if not math.isfinite(limit) else FORECAST_CHUNKS[-1:]
        for size in itertools.chain(sizes, itertools.repeat(FORECAST_CHUNKS[-1])):
            if t >= limit:
                return t, False
            size = _before(limit, t, interval, size)  # evaluations before the limit
            if linear:  # the common case in plain arithmetic: evaluation j reads period i0 + j * stride
                stride = interval // period
                newest0 = math.floor(t / period) * period - lag
                newest_last = newest0 + (size - 1) * stride * period
            else:
                times = t + interval * np.arange(size, dtype=np.float64)
                newest = np.floor(times / period) * period - lag
                newest0, newest_last = float(newest[0]), float(newest[-1])
            told = self._told(alarm, newest0 - (n - 1) * period, newest_last + period, forecast, idle)
            if told is None:
                return t, True
            first, values, counts = told
            if linear:
                i0 = int((newest0 - first) // period)
                known = max(0, min(size, -(-(len(values) - i0) // stride)))  # evaluations whose periods are told
                index = range(i0, i0 + stride * known, stride) if known else range(0)
                quiet_for = None if quiet is None else _before(quiet[2], t, interval, size)
            else:
                index = ((newest - first) // period).astype(np.int64)
                known = int(np.searchsorted(index, len(values)))  # evaluations whose periods are all told
                index = index[:known]
                quiet_for = int(np.searchsorted(times, quiet[2])) if quiet is not None else None  # band ends
            k = first_eventful(spec, state, values, index, quiet[:2] if quiet else None,
                               self.exact, counts, quiet_for)
            if k < size:
                return t + interval * k, True
            t = t + interval * size
            if not self.exact:
                # Skipped state changes leave the state at the next chunk's start unknown here: a
                # window with missing data there stops the scan at that chunk's start.
                state = INSUFFICIENT_DATA
        raise AssertionError("unreachable")  # pragma: no cover

    def _told(
        self, alarm: Alarm, start: float, end: float, forecast: Forecast, idle: IdleZeros
    ) -> tuple[float, np.ndarray, tuple[np.ndarray, np.ndarray]] | None:
        """The alarm's forecast values (idle zeros added) from a period at or before ``start``
        through ``end`` or as far as the fleet can tell, with the alarm's prefix counts over them.
        Kept per epoch and metric (alarms on the same metric and period share them)."""
        spec = alarm.spec
        period = spec.period
        named = self._metric_keys.get(alarm.spec.alarm_name)
        if named is None or named[0] is not spec:
            named = self._metric_keys[alarm.spec.alarm_name] = (spec, (
                spec.namespace, spec.metric_name, frozenset(spec.dimensions.items()), spec.statistic, period))
        metric = named[1]
        kept = self._forecasts.get(metric)
        if kept is None or kept[0] > start or (end > kept[2] and len(kept[1]) >= (kept[2] - kept[0]) // period):
            add_zeros = idle(spec.namespace, spec.metric_name, spec.dimensions)
            if add_zeros is not None and (
                period != 60 or evaluation_range(spec.evaluation_periods) > self.idle_catch_up_minutes
            ):
                return None  # idle zeros are only predicted for minute periods within the catch-up
            end = max(end, start + FETCH_PERIODS * period)  # later rounds ask for more
            if kept is not None:  # cover what the other alarms on this metric asked for too
                start, end = min(start, kept[0]), max(end, kept[2])
            values = forecast(spec.namespace, spec.metric_name, spec.dimensions, spec.statistic or "", period,
                              start, end)
            if values is None:
                return None
            if add_zeros is not None:
                values = add_zeros(values, start)
            kept = self._forecasts[metric] = (start, values, end)
        first, values, _ = kept
        counts = self._counts.get(alarm.spec.alarm_name)
        if counts is None or counts[0] is not values or counts[1] is not spec:
            counts = self._counts[alarm.spec.alarm_name] = (values, spec, prefix_counts(spec, values))
        return first, values, counts[2]

    def silent_at(
        self,
        alarm: Alarm,
        now: float,
        at: float,
        engine: Engine,
        capacity: Callable[[str], int | None],
        forecast: Forecast,
        idle: IdleZeros,
    ) -> bool:
        """Whether the evaluation of ``alarm`` at ``at`` (a step taken for another reason) can be
        left out: it changes nothing (as :meth:`next_eventful` finds) and reads OK, so it invokes
        no action that the engine would weigh against another alarm's."""
        interval = evaluation_interval(alarm.spec.period)
        if alarm.next_evaluation > at or at % interval:
            return False  # not due then anyway
        if self.next_eventful(alarm, now, at + 1.0, engine, capacity, forecast, idle) <= at:
            return False
        spec = alarm.spec
        newest = newest_period(spec.period, at)
        start = newest - (spec.evaluation_periods - 1) * spec.period
        indexed = None if self.exact else self._indexed(alarm, idle)
        if indexed is not None and start >= indexed[0]:
            _, first, values, alarmed = indexed
            j = int((newest - first) // spec.period)
            if j >= len(values):
                return False
            at_j = int(alarmed.searchsorted(alarmed.dtype.type(j)))  # no cast of alarmed
            return not (at_j < len(alarmed) and alarmed[at_j] == j)  # reads OK: fewer than M breach
        if indexed is not None:
            window = self._window(spec, indexed, int((start - indexed[1]) // spec.period), spec.evaluation_periods,
                                  forecast)
            if window is not None:
                return sum(_breaches(spec, window)) < spec.m  # reads OK
        told = self._told(alarm, start, newest + spec.period, forecast, idle)
        if told is None:
            return False
        first, values, (cum_real, cum_breach) = told
        hi = int((newest - first) // spec.period) + 1
        lo = hi - spec.evaluation_periods
        if lo < 0 or hi > len(values) or cum_real[hi] - cum_real[lo] != spec.evaluation_periods:
            return False
        return bool(cum_breach[hi] - cum_breach[lo] < spec.m)  # reads OK
