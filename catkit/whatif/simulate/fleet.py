"""The simulated fleet: one variant's instances under a per-second traffic array, as a fleet port.

:class:`SimulatedFleet` implements :class:`catkit.autoscaling.driver.FleetPort`, so the simulator
is driven by the same :class:`~catkit.autoscaling.driver.ScalingDriver` step as the local backend.
It keeps per-second arrays of serving and billed instances, filled segment by segment as the fleet
changes (it is piecewise constant: counts change only when a decision is applied or finishes).

Its data-plane metrics are not recorded datapoint by datapoint: they are attached to the one
:class:`~catkit.autoscaling.metrics_store.MetricStore` as sources (:meth:`MetricStore.attach`)
that compute, when read, what SageMaker would have emitted from the per-second arrays - only
periods complete at the fleet's current time, as if recorded when they ended:

* ``Invocations``: per minute a statistic set with one sample per request (Sum = requests);
* ``InvocationsPerInstance``: each request counts ``1 / serving instances`` (Sum per minute);
* ``ConcurrentRequestsPerModel`` (only when a policy tracks it): per epoch-aligned 10-second window,
  what the driver records for a :class:`~catkit.autoscaling.driver.ConcurrencySample` of the window
  (at its start, 1-second resolution, weight = the window's seconds): the concurrency per instance
  of the :class:`~catkit.whatif.calibrate.ServiceModel` queue at the window's mean load, with the
  instances serving at the window's end behind least-outstanding-requests routing (as the local
  backend routes; see :func:`_concurrency_table`) - the expected peak in flight in the window,
  which is what the backend's sampler records, or the mean in flight (``concurrency_statistic``).

Minutes without traffic get no datapoint here: the driver's idle-zeros rule fills them, as it does
for the backend. :meth:`SimulatedFleet.forecast` answers the same statistics for periods ahead,
assuming the instance counts stay as they are; the driver uses it to skip steps that cannot change
anything. Applying a decision follows UpdateEndpointWeightsAndCapacities semantics: the variant is
``Updating`` until the change is done. Scale-out: new instances are billed from the decision
(ASSUMPTION: AWS bills instances while they launch) and serve after ``provisioning_s``. Scale-in:
removed instances stop taking traffic at once and are billed until ``termination_s`` later, when
the variant is InService again.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from catkit.autoscaling.driver import CONCURRENCY_METRIC, TICK_S, ConcurrencySample, VariantStatus
from catkit.autoscaling.metrics_store import MetricStore
from catkit.names import SAGEMAKER_METRICS
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate.kept_periods import KeptPeriods
from catkit.whatif.simulate.tables import TrafficTables

FILL_AHEAD_S = 600  # per-second arrays are filled this far ahead of the reads in one vector op
_WINDOW = int(TICK_S)
_INVOCATIONS, _PER_INSTANCE = "Invocations", "InvocationsPerInstance"
_STATISTICS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")


@dataclass
class _Change:
    """The running capacity change: done at ``ready_at``, then ``serving`` serve and are billed."""

    ready_at: float
    serving: int


class _Source:
    """One metric of the fleet as a :class:`~catkit.autoscaling.metrics_store.MetricSource`."""

    def __init__(self, fleet: SimulatedFleet, metric: str) -> None:
        self.fleet, self.metric = fleet, metric

    def period_statistics(
        self, start: float, end: float, period: int
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        unit = _WINDOW if self.metric == CONCURRENCY_METRIC else 60
        emitted = math.floor(self.fleet.now / unit) * unit  # items that ended by now
        return self.fleet.period_statistics(self.metric, start, min(end, emitted), period, first_at=start)

    def period_values(
        self, start: float, end: float, period: int, statistic: str
    ) -> tuple[float, list[float | None]] | None:
        """:func:`~catkit.autoscaling.metric_sources.source_values` of complete periods from the
        fleet's kept values (:meth:`SimulatedFleet.kept_values`); None (ask the period statistics)
        for other reads."""
        unit = _WINDOW if self.metric == CONCURRENCY_METRIC else 60
        if end > math.floor(self.fleet.now / unit) * unit:
            return None  # items not all emitted yet
        values = self.fleet.kept_values(self.metric, statistic, period, start, end)
        if values is None:
            return None
        return start, [None if math.isnan(v) else v for v in values.tolist()]

    def datapoint_times(self, start: float, end: float, period: int) -> list[float] | None:
        """Minutes with requests in ``[start, end)`` (as far as emitted): per-minute request sums of
        the shared tables, whatever the serving counts (a minute has data when any of its seconds
        has a request). None (ask the period statistics) for other metrics and periods, and when
        the tables are the fleet's own (their sums over the whole traffic would cost a lone run more)."""
        if period != 60 or self.metric == CONCURRENCY_METRIC or not self.fleet.shared:
            return None
        fleet = self.fleet
        items = fleet._minutes
        k_lo, k_hi = items.select(start, min(end, math.floor(fleet.now / 60) * 60))
        served = fleet.tables.kept.get(("minutes with requests", items.lead))  # how many before each minute
        if served is None:
            sums = fleet.tables.item_sums(60, items.lead)[0]
            served = fleet.tables.kept[("minutes with requests", items.lead)] = np.concatenate(
                ([0], np.cumsum(sums > 0)))
        if k_hi <= k_lo or served[k_hi] - served[k_lo] == k_hi - k_lo:  # every minute had a request (the common case)
            base = items.base
            return [base + 60.0 * k for k in range(k_lo, k_hi)]
        sums = fleet.tables.item_sums(60, items.lead)[0][k_lo:k_hi]
        return (items.base + 60.0 * (k_lo + np.flatnonzero(sums))).tolist()


class SimulatedFleet:
    """One variant under ``rate`` (requests/s per second from ``t0``); see the module docstring."""

    def __init__(
        self,
        rate: np.ndarray,
        t0: float,
        resource_id: str,
        dims: Mapping[str, str],
        service: ServiceModel,
        capacity: int,
        metrics: MetricStore,
        *,
        provisioning_s: float,
        termination_s: float,
        concurrency_statistic: str = "peak",
        emit_concurrency: bool = True,
        tables: TrafficTables | None = None,
    ) -> None:
        # Per-traffic tables, shared by every simulation of this traffic when the caller passes them.
        self.tables = tables if tables is not None and tables.rate is rate else TrafficTables(rate)
        # Whole-traffic forecasts per serving count pay off only over many simulations of the traffic.
        self.shared = self.tables is tables
        self.rate = self.tables.rate
        self.t0 = float(t0)
        if self.t0 != math.floor(self.t0):
            raise ValueError(f"t0 is a whole second, got {t0}")
        self.resource_id = resource_id
        self.dims = dict(dims)
        self.service = service
        self.metrics = metrics
        self.provisioning_s = provisioning_s
        self.termination_s = termination_s
        self.emit_concurrency = emit_concurrency
        self.serving = self.tables.count_array()  # billed per second: billed_array(), from the changes
        self.filled = 0
        self._changes = [(0, capacity, capacity)]  # (second, serving, billed) from which the counts hold
        self.cur_serving = capacity
        self.cur_billed = capacity
        self.since = 0  # the second from which ``cur_serving`` instances have served
        self.forecast_version = 0  # forecasts hold while this stays (the serving count stays)
        self.desired = capacity
        self.change: _Change | None = None
        self._status: tuple[bool | None, int, VariantStatus | None] = (None, capacity, None)
        self.now = self.t0  # the time the fleet was last advanced to
        if concurrency_statistic not in ("peak", "mean"):
            raise ValueError(f"concurrency_statistic is 'mean' or 'peak', got {concurrency_statistic!r}")
        self.concurrency_statistic = concurrency_statistic
        self._lam_grid = np.linspace(0.0, service.max_rps, 4097)
        self._conc_tables: dict[int, np.ndarray] = {}  # serving count -> concurrency table
        self._kept: dict[tuple[str, str, int], KeptPeriods] = {}  # (metric, statistic, period) -> values
        self._minutes = _Items(self, 60, _PER_INSTANCE)  # Invocations derive from the same requests
        self._windows = _Items(self, _WINDOW, CONCURRENCY_METRIC)
        metrics.attach(SAGEMAKER_METRICS, _INVOCATIONS, self.dims, _Source(self, _INVOCATIONS))
        metrics.attach(SAGEMAKER_METRICS, _PER_INSTANCE, self.dims, _Source(self, _PER_INSTANCE))
        if emit_concurrency:
            metrics.attach(SAGEMAKER_METRICS, CONCURRENCY_METRIC, self.dims, _Source(self, CONCURRENCY_METRIC),
                           unit="Count")

    # ------------------------------------------------------------------ per-second arrays
    def at(self, ts: float) -> int:
        """Index of the first second at or after ``ts``."""
        return max(0, min(len(self.rate), math.ceil(ts - self.t0)))

    def fill_to(self, idx: int, ahead: int = FILL_AHEAD_S) -> None:
        """Make the arrays valid up to ``idx`` with the current counts (filling ``ahead`` further in
        one go; :meth:`set_counts` truncates that optimistic part when the counts change)."""
        if idx <= self.filled:
            return
        a = self.filled
        idx = min(len(self.rate), idx + ahead)
        self.serving[a:idx] = self.cur_serving
        self.filled = idx

    def set_counts(self, idx: int, serving: int, billed: int) -> None:
        """From second ``idx`` on, ``serving`` instances take traffic and ``billed`` are billed."""
        changes = self._changes
        while changes and changes[-1][0] >= idx:  # a later change made earlier is overwritten
            changes.pop()
        changes.append((idx, serving, billed))
        if self.filled > idx:
            self.filled = idx
        else:
            self.fill_to(idx, ahead=0)
        if serving != self.cur_serving:  # the metrics depend on the serving count only
            self._minutes.invalidate(idx)
            self._windows.invalidate(idx)
            for kept in self._kept.values():
                kept.drop_from(self.t0 + idx)
            self.since = idx
            self.forecast_version += 1
        self.cur_serving, self.cur_billed = serving, billed

    def finish(self) -> None:
        """Close the last segment at the end of the traffic (a change still running keeps its state)."""
        ch = self.change
        if ch is not None and ch.ready_at < self.t0 + len(self.rate):
            self.set_counts(self.at(ch.ready_at), ch.serving, ch.serving)
        self.fill_to(len(self.rate))

    def billed_array(self) -> np.ndarray:
        """Instances billed per second (int32, as ``serving``) from the counts' changes: nothing in
        a run reads it, so it is made only for a result's reader (a sweep's rows never do)."""
        changes, n = self._changes, len(self.rate)
        lengths = [max(0, z - c[0]) for c, z in zip(changes, [c[0] for c in changes[1:]] + [n], strict=True)]
        return np.repeat(np.array([c[2] for c in changes], dtype=np.int32), lengths)

    def count_runs(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int]:
        """From the counts' changes, what :func:`~catkit.whatif.simulate.tables.segments` of
        ``serving`` and ``billed.sum()`` give once the run is finished: ((starts, ends, counts) of the
        runs of one serving count, billed instance-seconds) - without reading the per-second arrays."""
        changes, n, billed = self._changes, len(self.rate), 0
        starts: list[int] = []
        counts: list[int] = []
        for i, (a, serving, b) in enumerate(changes):
            z = changes[i + 1][0] if i + 1 < len(changes) else n
            if z <= a:
                continue
            billed += b * (z - a)
            if not counts or counts[-1] != serving:
                starts.append(a)
                counts.append(serving)
        st = np.array(starts, dtype=np.int64)
        return (st, np.append(st[1:], n).astype(np.int64), np.array(counts, dtype=np.int64)), billed

    def release(self) -> None:
        """Done with this fleet for good (its run's result is made): give its per-item arrays back
        to shared tables for the next simulation of the traffic."""
        if self.shared:
            self.tables.recycle(self._minutes.data, self._windows.data)

    # ------------------------------------------------------------------ FleetPort
    def advance(self, now: float) -> None:
        self.now = now
        ch = self.change
        if ch is not None and ch.ready_at <= now:
            self.set_counts(self.at(ch.ready_at), ch.serving, ch.serving)
            self.change = None

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        if resource_id != self.resource_id:
            return None
        updating, kept = self.change is not None, self._status  # one (frozen) status while it holds
        if kept[0] is not updating or kept[1] != self.desired:
            kept = self._status = (updating, self.desired,
                                   VariantStatus("Updating" if updating else "InService", self.desired))
        return kept[2]

    def set_capacity(self, resource_id: str, desired: int) -> None:
        now = self.now  # the driver applies at the step time the fleet advanced to
        now_idx = self.at(now)
        if desired >= self.cur_serving:
            self.set_counts(now_idx, self.cur_serving, max(self.cur_billed, desired))
            ready = now + self.provisioning_s
        else:
            self.set_counts(now_idx, desired, self.cur_billed)
            ready = now + self.termination_s
        self.desired = desired
        self.change = _Change(ready, desired)

    def concurrency_samples(self, now: float) -> list[ConcurrencySample]:
        """None: the fleet's concurrency windows reach the store through its attached source."""
        return []

    def next_change(self, now: float) -> float | None:
        return self.change.ready_at if self.change is not None else None

    def forecast(
        self, namespace: str, name: str, dims: Mapping[str, str], statistic: str, period: int, start: float,
        end: float,
    ) -> np.ndarray | None:
        """``statistic`` of the metric for the periods ``start, start + period, ...`` before ``end``
        if the instance counts stay as they are now (NaN: no datapoint); None for metrics the fleet
        does not emit. Values equal what the store will answer for those periods once complete."""
        if not self._emits(namespace, name, dims, statistic) or start % period:
            return None
        # Only periods that end within the traffic: the fleet cannot tell what comes after it.
        end = min(end, start + max(0, math.floor((self.t0 + len(self.rate) - start) / period)) * period)
        return self._forecast_values(name, statistic, start, end, period, kept=True)

    def _forecast_values(
        self, name: str, statistic: str, start: float, end: float, period: int, kept: bool = False
    ) -> np.ndarray:
        """:meth:`forecast` of the periods in ``[start, end)``: those whose items all start after
        the last change of the serving count read the same for every simulation of this traffic
        with that count, from the shared tables; the others computed from the per-second arrays
        (or with ``kept``, from :meth:`kept_values` where it can)."""
        split = max(start, math.ceil((self.t0 + self.since) / period) * period)
        shared = self._uniform_values(name, statistic, int(period)) if split < end and self.shared else None
        head = split if shared is not None else end
        values = self.kept_values(name, statistic, period, start, head) if kept and head > start else None
        if values is None and head > start:
            values = self._values(name, statistic, start, head, period)
        if shared is None:
            return values
        first, uniform = shared
        tail = uniform[int((split - first) // period) : int((end - first) // period)]
        return tail if split == start else np.concatenate((values, tail))

    def kept_values(self, name: str, statistic: str, period: int, start: float, end: float) -> np.ndarray | None:
        """``statistic`` of metric ``name`` per period in ``[start, end)`` (period boundaries, whole
        periods of the traffic; else None) with the serving counts as they are, as :meth:`forecast`
        gives them: kept across reads until the serving count changes (:class:`KeptPeriods`)."""
        period = int(period)
        key = (name, statistic, period)
        kept = self._kept.get(key)
        if kept is None:
            origin = math.floor(self.t0 / period) * period
            whole = math.floor((self.t0 + len(self.rate) - origin) / period)
            kept = self._kept[key] = KeptPeriods(
                lambda a, b: self._values(name, statistic, a, b, period), origin, period, whole)
        return kept.get(start, end)

    def _emits(self, namespace: str, name: str, dims: Mapping[str, str], statistic: str) -> bool:
        metrics = (_INVOCATIONS, _PER_INSTANCE, CONCURRENCY_METRIC) if self.emit_concurrency else (
            _INVOCATIONS, _PER_INSTANCE)
        return namespace == SAGEMAKER_METRICS and name in metrics and (
            dims if type(dims) is dict else dict(dims)) == self.dims and statistic in _STATISTICS

    def uniform_forecast(
        self, namespace: str, name: str, dims: Mapping[str, str], statistic: str, period: int
    ) -> tuple[float, float, np.ndarray, Callable[[tuple, Callable[[], Any]], Any]] | None:
        """``(split, first, values, memo)``: :meth:`forecast` answers ``values[(p - first) //
        period]`` for every period ``p >= split`` while the serving count stays (``values`` read-only,
        kept in the shared tables; ``first`` and ``split`` period starts); ``memo(key, build)`` keeps
        what is derived from ``values`` in the shared tables (``key`` names the derivation). None when
        the fleet does not share tables or cannot tell. Whether a period has a datapoint does not
        depend on the serving counts (requests for the invocation metrics, the window's seconds for
        concurrency), so a ``values`` without NaN means :meth:`forecast` has none from ``first``
        on, before ``split`` too."""
        period = int(period)
        if not self.shared or not self._emits(namespace, name, dims, statistic):
            return None
        kept = self._uniform_values(name, statistic, period)
        if kept is None:
            return None
        first, values = kept
        split = max(first, math.ceil((self.t0 + self.since) / period) * period)
        key = self._uniform_key(name, statistic, period)
        return split, first, values, lambda derived, build: self.tables.memo((key, derived), build)

    def _uniform_key(self, name: str, statistic: str, period: int) -> tuple:
        svc = self.service
        return ("forecast", name, statistic, period, self.cur_serving, self.t0, svc.max_rps, svc.workers,
                svc.timeout_ms, self.concurrency_statistic)

    def _values(self, name: str, statistic: str, start: float, end: float, period: int) -> np.ndarray:
        _, count, total, minimum, maximum = self.period_statistics(name, start, end, period, first_at=start)
        return _statistic(statistic, count, total, minimum, maximum)

    def _uniform_values(self, name: str, statistic: str, period: int) -> tuple[float, np.ndarray] | None:
        """(start of the first whole period, ``statistic`` per whole period of the traffic from
        there) of metric ``name`` if ``cur_serving`` instances served throughout: the values
        :meth:`forecast` gives for those periods, kept in the shared tables (read-only)."""
        items = self._windows if name == CONCURRENCY_METRIC else self._minutes
        if period % items.unit:
            return None
        key = self._uniform_key(name, statistic, period)
        kept = self.tables.kept.get(key)
        if kept is None:
            first = math.ceil(self.t0 / period) * period  # its items are all on the unit grid
            whole = max(0, math.floor((self.t0 + len(self.rate) - first) / period))
            per = period // items.unit
            k0 = int((first - items.base) // items.unit)
            count, total, minimum, maximum = self._uniform_statistics(items, k0, k0 + whole * per)
            if name == _INVOCATIONS:  # as period_statistics reads Invocations
                ones = np.ones_like(count)
                total, minimum, maximum = count, ones, ones
            if per > 1 and whole:  # the groups period_statistics makes: `per` items from each boundary
                heads = np.arange(0, whole * per, per)
                count, total = np.add.reduceat(count, heads), np.add.reduceat(total, heads)
                minimum, maximum = np.minimum.reduceat(minimum, heads), np.maximum.reduceat(maximum, heads)
            values = _statistic(statistic, count, total, minimum, maximum)
            values.flags.writeable = False
            kept = self.tables.kept[key] = (float(first), values)
        return kept

    # ------------------------------------------------------------------ metrics
    def period_statistics(
        self, metric: str, start: float, end: float, period: int, first_at: float
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Statistic sets of ``metric`` for the items (minutes; 10-second windows for concurrency)
        whose storage buckets start in ``[start, end)``, per epoch-aligned ``period`` from the
        period of ``first_at``: ``(first period start, counts, sums, minima, maxima)``."""
        period = int(period)
        first = math.floor(first_at / period) * period
        span = max(0, math.ceil((end - first) / period))
        items = self._windows if metric == CONCURRENCY_METRIC else self._minutes
        k_lo, k_hi = items.select(start, end)
        if not span or k_hi <= k_lo:
            empty = np.zeros(span)
            return float(first), empty, empty, empty, empty
        count, total, minimum, maximum = items.statistics(k_lo, k_hi)
        if metric == _INVOCATIONS:  # one sample of 1 per request
            ones = np.ones_like(count)
            total, minimum, maximum = count, ones, ones
        if (period == items.unit and k_hi - k_lo == span and items.regular(k_lo)
                and first == items.base + k_lo * items.unit):
            return float(first), count, total, minimum, maximum  # the common read: one item per period
        per = period // items.unit if period % items.unit == 0 else 0
        if per and items.regular(k_lo):
            # Items on the unit grid, a whole number per period: the groups start every `per` items
            # from the first period boundary (the same groups as from the stamps, found by arithmetic).
            stamp = items.base + k_lo * items.unit
            lead = int(((-stamp) % period) // items.unit)
            heads = np.concatenate(([0], np.arange(lead or per, k_hi - k_lo, per)))
            slots = int((math.floor(stamp / period) * period - first) // period) + np.arange(len(heads))
        else:
            stamps = items.stamps(k_lo, k_hi)
            slot = ((np.floor(stamps / period) * period - first) // period).astype(np.int64)
            heads = np.concatenate(([0], np.flatnonzero(np.diff(slot)) + 1))
            slots = slot[heads]
        grouped = (
            np.add.reduceat(count, heads),
            np.add.reduceat(total, heads),
            np.minimum.reduceat(minimum, heads),
            np.maximum.reduceat(maximum, heads),
        )
        if len(slots) == span and slots[0] == 0 and slots[-1] == span - 1:
            return float(first), *grouped  # one group per period, in order (slots count up by one)
        keep = (slots >= 0) & (slots < span)
        out = np.zeros((4, span))
        for row, values in zip(out, grouped, strict=True):
            row[slots[keep]] = values[keep]
        return float(first), out[0], out[1], out[2], out[3]

    def _concurrency_table(self, instances: int) -> np.ndarray:
        """Concurrency per instance versus load per instance on ``_lam_grid`` (beyond it:
        saturated) with ``instances`` serving, kept per count (the queue sums cost)."""
        table = self._conc_tables.get(instances)
        if table is None:
            svc = self.service
            table = self._conc_tables[instances] = _concurrency_table(
                svc.max_rps, svc.workers, svc.timeout_ms, self.concurrency_statistic, instances)
        return table

    def _item_statistics(self, metric: str, a: int, b: int, heads: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per item of seconds ``[a, b)`` starting at ``heads`` (relative): (count, sum, min, max)."""
        self.fill_to(b)
        if metric == CONCURRENCY_METRIC:
            # The queue model at the window's mean load per instance (a window's peak is that of the
            # queue it saw, not an average of per-second states: one busy second is no overload).
            # The instances sampled are those serving at the window's end.
            seconds = np.diff(np.append(heads, b - a)).astype(np.float64)
            instances = self.serving[a:b][np.append(heads[1:], b - a) - 1]
            load = np.add.reduceat(self.rate[a:b], heads) / seconds / instances
            value = np.empty_like(load)
            for n in np.unique(instances).tolist():
                at = instances == n
                table = self._concurrency_table(int(n))
                value[at] = np.where(load[at] >= self.service.max_rps, table[-1],
                                     np.interp(load[at], self._lam_grid, table))
            return seconds, value * seconds, value, value
        requests = np.add.reduceat(self.rate[a:b], heads)
        serving = self.serving[a:b]
        most, least = np.maximum.reduceat(serving, heads), np.minimum.reduceat(serving, heads)
        # A minute served by one count throughout reads requests / count, as _uniform_statistics.
        per_instance = np.where(most == least, requests / most, np.add.reduceat(self.rate[a:b] / serving, heads))
        return requests, per_instance, 1.0 / most, 1.0 / least

    def _uniform_statistics(self, items: _Items, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        """Per item ``[lo, hi)`` of ``items``, all served by ``cur_serving`` instances throughout:
        (count, sum, min, max) from the shared per-traffic tables - the same values
        :meth:`_item_statistics` computes from the per-second arrays."""
        n = self.cur_serving
        if items.metric == CONCURRENCY_METRIC:
            svc = self.service
            value = self.tables.concurrency(
                items.unit, items.lead, n, (svc.max_rps, svc.workers, svc.timeout_ms, self.concurrency_statistic),
                self._concurrency_table(n), self._lam_grid, svc.max_rps, lo, hi)
            seconds = self.tables.item_sums(items.unit, items.lead)[1][lo:hi]
            return seconds, value * seconds, value, value
        requests = self.tables.item_sums(items.unit, items.lead)[0][lo:hi]
        inverse = np.full(hi - lo, 1.0 / n)
        return requests, requests / n, inverse, inverse


def _statistic(statistic: str, count: np.ndarray, total: np.ndarray, minimum: np.ndarray,
               maximum: np.ndarray) -> np.ndarray:
    """``statistic`` per period from statistic sets (NaN where a period has no data)."""
    have = count > 0
    if statistic == "Average":
        return np.divide(total, count, out=np.full(len(count), np.nan), where=have)
    value = {"Sum": total, "SampleCount": count, "Minimum": minimum, "Maximum": maximum}[statistic]
    return np.where(have, value, np.nan)


@functools.lru_cache(maxsize=256)
def _concurrency_table(max_rps: float, workers: int, timeout_ms: float, statistic: str, instances: int) -> np.ndarray:
    """Concurrency per instance (``statistic``: "peak" or "mean") of ``instances`` instances behind
    least-outstanding-requests routing, on a 4097-point grid of load per instance from 0 to
    ``max_rps``; shared by simulations.

    The local backend routes each request to the instance with the fewest in flight
    (:func:`catkit.local.fleet.router.least_outstanding`), which keeps the instances within about
    one request of each other. ASSUMPTION (join-the-shortest-queue read as one pooled queue): the
    ``n`` instances behave as one M/M/(n c) queue whose in-flight count splits evenly, so the mean
    per instance is ``pooled_mean(n λ) / n`` and a window peak per instance is ``pooled_peak(n λ)
    / n`` - but at least the chance that the instance served a request in the window at all
    (``1 - exp(-(λ T + pooled_mean / n))``: at light load the requests land on idle instances, one
    each). Within about 10 % of request-level routing through the backend's router and sampler
    (n = 2..8, 2..75 % load; tests/simulate/test_driver_agreement.py).
    """
    model = ServiceModel(max_rps=max_rps * instances, workers=workers * instances, timeout_ms=timeout_ms)
    per_instance = np.linspace(0.0, max_rps, 4097)[:-1]
    mean = model.concurrency(per_instance * instances) / instances
    if statistic == "peak":
        touched = 1.0 - np.exp(-(per_instance * _WINDOW + mean))
        conc = np.maximum(model.peak_concurrency(per_instance * instances) / instances, touched)
    else:
        conc = mean
    out = np.append(conc, conc[-1])
    out.flags.writeable = False
    return out


class _Items:
    """A fleet's per-item statistics (items: epoch-aligned minutes or 10-second windows; the first
    may be partial), computed ahead in vector operations and kept until the instance counts of
    their seconds change. Item ``k`` covers seconds ``[lead + (k - partial) * unit, ...)``."""

    AHEAD = 64  # items computed past the last one asked for, in one go

    def __init__(self, fleet: SimulatedFleet, unit: int, metric: str) -> None:
        self.fleet, self.unit, self.metric = fleet, unit, metric
        n, t0 = len(fleet.rate), fleet.t0
        self.lead = int((-t0) % unit)  # seconds before the first aligned boundary
        self.partial = 1 if self.lead else 0
        # Minute buckets start on the minute; a window's 1-second bucket is its first second (so
        # the partial first window is stamped t0).
        self.base = t0 + self.lead - self.partial * unit
        self.count = self.partial + max(0, math.ceil((n - self.lead) / unit))
        self.valid = 0  # items [0, valid) are computed
        self.data = fleet.tables.count_array((4, self.count), np.float64)  # count, sum, min, max per item

    def regular(self, k: int) -> bool:
        """Whether item ``k`` is stamped on the unit grid (the partial first window is not)."""
        return k > 0 or not self.partial or self.unit == 60

    def stamps(self, k_lo: int, k_hi: int) -> np.ndarray:
        out = self.base + np.arange(k_lo, k_hi) * float(self.unit)
        if k_lo == 0 and not self.regular(0):
            out[0] = self.fleet.t0
        return out

    def first_second(self, k: int) -> int:
        return max(0, min(len(self.fleet.rate), self.lead + (k - self.partial) * self.unit))

    def item_of(self, second: int) -> int:
        """The item holding ``second``."""
        return self.partial + (second - self.lead) // self.unit if second >= self.lead else 0

    def select(self, start: float, end: float) -> tuple[int, int]:
        """Items whose storage bucket starts in ``[start, end)``."""
        k_lo = max(0, math.ceil((start - self.base) / self.unit))
        k_hi = min(self.count, max(0, math.ceil((end - self.base) / self.unit)))
        if not self.regular(0):
            t0 = self.fleet.t0
            k_lo = 0 if start <= t0 < end else max(k_lo, 1)
        return k_lo, max(k_lo, k_hi)

    def invalidate(self, second: int) -> None:
        """The instance counts changed from ``second`` on."""
        self.valid = min(self.valid, self.item_of(second))

    def statistics(self, k_lo: int, k_hi: int) -> tuple[np.ndarray, ...]:
        """(count, sum, minimum, maximum) of items ``[k_lo, k_hi)``."""
        if k_hi > self.valid:
            lo, hi = self.valid, min(self.count, max(k_hi, self.valid + self.AHEAD))
            # Items from the first starting at or after the last change of the serving count are
            # served by the current count throughout: from the shared tables.
            since = self.fleet.since
            split = self.item_of(since)
            if self.first_second(split) < since:
                split += 1
            split = min(hi, max(lo, split))
            if split > lo:
                a, b = self.first_second(lo), self.first_second(split)
                heads = np.concatenate(([a], self.first_second(lo + 1) + np.arange(split - lo - 1) * self.unit)) - a
                self.data[:, lo:split] = self.fleet._item_statistics(self.metric, a, b, heads)
            if hi > split:
                self.data[:, split:hi] = self.fleet._uniform_statistics(self, split, hi)
            self.valid = hi
        d = self.data
        return d[0, k_lo:k_hi], d[1, k_lo:k_hi], d[2, k_lo:k_hi], d[3, k_lo:k_hi]
