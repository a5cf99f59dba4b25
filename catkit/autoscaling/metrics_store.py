"""In-memory CloudWatch metric store: records datapoints, answers statistics like CloudWatch.

Owns metric *data* (not alarms); the one metric store of catkit. The local backend records every
SageMaker metric here on the request hot path and PutMetricData writes here; the offline simulator
records the metrics its simulated fleet emits; the engine tests record what they need. Alarm
evaluation, GetMetricStatistics / GetMetricData and the scaling driver read it through
:meth:`MetricStore.statistics`. Pure: no I/O, no wall clock (``now`` is injected).

Model (mirrors CloudWatch):

- A metric is (namespace, name, full dimension set); dimension matching is exact on the whole set.
- High-resolution datapoints (``storage_resolution=1``) aggregate into 1-second buckets,
  standard-resolution ones (``60``) into 1-minute buckets aligned to the epoch. Each bucket keeps
  sum, sample count, min, max and a value distribution for percentiles: exact values while the
  bucket is small, then a mergeable log-bucketed histogram with 1 % relative accuracy. The
  distribution and the extended statistics (pNN, tmNN, ...) are
  :mod:`catkit.autoscaling.metric_statistics`; this module owns storage, retention and queries.
- Period buckets are aligned to the epoch (``floor(t / period) * period``). A datapoint belongs to
  a query when its storage bucket starts in ``[start, end)``. High-resolution data can be queried at
  any period (AWS allows 1, 5, 10, 30 and multiples of 60); standard-resolution data has minute
  granularity whatever period is asked for.
- Retention tiers like CloudWatch's: 1-second data older than 3 h rolls up into 1-minute buckets,
  1-minute data is dropped after 15 days (CloudWatch would further keep 5-minute data for 63 days
  and 1-hour data for 455 days; pass ``retention=`` to keep more). Compaction runs by itself every
  5 emulated minutes from :meth:`record` and can be forced with :meth:`compact`.
- Percentiles are unavailable for buckets fed by statistic sets (``StatisticValues``) unless the
  set is a single value (SampleCount 1 or Minimum == Maximum), as in CloudWatch.
- A metric can also be *attached* as a :class:`MetricSource` that computes its period statistics on
  demand (:meth:`MetricStore.attach`): the offline simulator's fleet computes a month of per-minute
  statistic sets from its per-second arrays instead of recording 43,200 of them one by one. Queries
  merge a source's periods with recorded buckets of the same metric; sources are not aged by
  retention and have no value distributions (percentiles unavailable, as for statistic sets).

The store does no I/O; :meth:`MetricStore.dumps` / :meth:`MetricStore.loads` turn everything
recorded into bytes and back (the local backend keeps them across restarts:
:class:`catkit.local.services.cloudwatch_store.MetricPersistence`). :attr:`MetricStore.changes`
counts recordings, so a caller can tell whether there is anything new to save. It is thread-safe
(one lock).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from catkit.autoscaling import metric_sources, metrics_dump
from catkit.autoscaling.metric_batches import FoldingLock, MetricBatch, fold_rows
from catkit.autoscaling.metric_sources import MetricSource, merge_source, source_rows
from catkit.autoscaling.metric_statistics import (
    STANDARD_STATISTICS,
    Distribution,
    extended_value,
    is_extended_statistic,
    is_percentile_statistic,
    parse_extended_statistic,
)

__all__ = [
    "DEFAULT_RETENTION",
    "MemoryMetrics",
    "MetricSource",
    "MetricStore",
    "is_extended_statistic",
    "is_percentile_statistic",
    "parse_extended_statistic",
]

#: (bucket width in seconds, how long data stays at that width in seconds), finest first.
DEFAULT_RETENTION: tuple[tuple[int, int], ...] = ((1, 3 * 3600), (60, 15 * 86400))

_COMPACT_EVERY = 300.0

DimensionKey = frozenset  # frozenset[tuple[str, str]]


class _Bucket:
    """Aggregate of the datapoints in one storage bucket."""

    __slots__ = ("count", "dist", "maximum", "minimum", "total")

    def __init__(self, percentiles: bool = True) -> None:
        self.total = 0.0
        self.count = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.dist: Distribution | None = Distribution() if percentiles else None

    def add(self, value: float, count: float = 1.0) -> None:
        self.total += value * count
        self.count += count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if self.dist is not None:
            self.dist.add(value, count)

    def add_values(self, values: list[float]) -> None:
        """``add(value)`` for each of ``values``, in order (a run of batch rows, :mod:`.metric_batches`)."""
        total, count = self.total, self.count
        for value in values:
            total += value
            count += 1.0
        self.total, self.count = total, count
        low, high = min(values), max(values)
        if low < self.minimum:
            self.minimum = low
        if high > self.maximum:
            self.maximum = high
        if self.dist is not None:
            self.dist.add_values(values)

    @classmethod
    def of_set(cls, sample_count: float, total: float, minimum: float, maximum: float) -> _Bucket:
        """A bucket holding one statistic set and no distribution (a source's period)."""
        bucket = cls.__new__(cls)
        bucket.count, bucket.total, bucket.minimum, bucket.maximum = sample_count, total, minimum, maximum
        bucket.dist = None
        return bucket

    def add_pairs(self, pairs: Iterable[tuple[float, float]]) -> None:
        """Add each ``(value, count)``."""
        for value, count in pairs:
            self.add(value, count)

    def add_set(self, sample_count: float, total: float, minimum: float, maximum: float) -> None:
        self.total += total
        self.count += sample_count
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        if self.dist is not None:
            if minimum == maximum:
                self.dist.add(minimum, sample_count)
            elif sample_count == 1:
                self.dist.add(total, 1.0)
            else:
                self.dist = None  # percentiles unavailable, like CloudWatch

    def merge(self, other: _Bucket) -> None:
        self.total += other.total
        self.count += other.count
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        if self.dist is not None:
            if other.dist is None:
                self.dist = None
            else:
                self.dist.merge(other.dist)


class _Series:
    """One metric with one unit: a bucket dict per retention tier."""

    __slots__ = ("last_timestamp", "tiers")

    def __init__(self, n_tiers: int) -> None:
        self.tiers: list[dict[int, _Bucket]] = [{} for _ in range(n_tiers)]
        self.last_timestamp = -math.inf

    def empty(self) -> bool:
        return not any(self.tiers)


class MetricStore:
    """CloudWatch-like metric storage with per-second aggregation and retention tiers.

    ``now`` is an optional clock (emulated epoch seconds) used to age data; without it the newest
    timestamp recorded stands for "now" (right for the offline simulator).
    """

    def __init__(
        self,
        now: Callable[[], float] | None = None,
        retention: Sequence[tuple[int, int]] = DEFAULT_RETENTION,
        *,
        percentiles: bool = True,
    ) -> None:
        widths = [int(w) for w, _ in retention]
        if not widths or widths[0] != 1 or any(b % a for a, b in itertools.pairwise(widths)):
            raise ValueError(
                f"retention must start at 1-second buckets and each width must divide the next, got {retention!r}"
            )
        if 60 not in widths:
            raise ValueError(
                f"retention must include 60-second buckets for standard resolution, got {retention!r}"
            )
        self._retention = tuple((int(w), float(keep)) for w, keep in retention)
        self._standard_tier = widths.index(60)
        self._now_fn = now
        self._percentiles = percentiles  # False: no value distributions (no pNN etc.), cheaper
        self._latest = -math.inf
        self._next_compact = -math.inf
        self._lock = FoldingLock(lambda rows: fold_rows(self, rows))  # folds MetricBatch rows (metric_batches)
        # (namespace, name, frozenset(dims.items())) -> {unit: _Series}
        self._series: dict[tuple[str, str, frozenset], dict[str, _Series]] = {}
        self.changes = 0  # recordings and compactions so far (what a saved copy can be compared by)
        # Attached metrics computed on demand: same key -> {unit: MetricSource}
        self._sources: dict[tuple[str, str, frozenset], dict[str, MetricSource]] = {}

    # ---------------------------------------------------------------- snapshots
    def dumps(self) -> bytes:
        """Everything recorded, as bytes for :meth:`loads` (e.g. to keep metric data across restarts)."""
        with self._lock:
            return metrics_dump.dump(self._retention, self._latest, self._series)

    def loads(self, data: bytes) -> None:
        """Replace the data with what :meth:`dumps` returned (ValueError if it is not such a dump,
        or was made with other retention tiers). Only the store's own classes are unpickled."""
        latest, series = metrics_dump.load(data, self._retention)
        with self._lock:
            self._series = series
            self._latest = max(self._latest, float(latest))
            self._next_compact = -math.inf
            self.changes += 1

    def attach(
        self, namespace: str, name: str, dimensions: Mapping[str, str], source: MetricSource, unit: str = "None"
    ) -> None:
        """Serve ``(namespace, name, dimensions)`` with ``unit`` from ``source`` (replacing an earlier
        one): queries read its periods as if they had been recorded as statistic sets."""
        with self._lock:
            self._sources.setdefault((namespace, name, frozenset(dimensions.items())), {})[unit] = source

    # ---------------------------------------------------------------- recording
    def record(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        value: float,
        timestamp: float,
        unit: str = "None",
        storage_resolution: int = 60,
    ) -> None:
        """Record one datapoint (O(1); the hot path of every invocation)."""
        self._into_bucket(
            namespace, name, dimensions, timestamp, unit, storage_resolution, _Bucket.add, float(value)
        )

    def record_values(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        values: Iterable[float],
        counts: Iterable[float] | None,
        timestamp: float,
        unit: str = "None",
        storage_resolution: int = 60,
    ) -> None:
        """Record PutMetricData ``Values``/``Counts`` (each value seen ``count`` times, default 1)."""
        values = [float(v) for v in values]
        counts = [1.0] * len(values) if counts is None else [float(c) for c in counts]
        if len(counts) != len(values):
            raise ValueError(f"{len(values)} values but {len(counts)} counts; they must pair up")
        pairs = [(v, c) for v, c in zip(values, counts, strict=True) if c > 0]
        self._into_bucket(
            namespace, name, dimensions, timestamp, unit, storage_resolution, _Bucket.add_pairs, pairs
        )

    def record_statistics(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        sample_count: float,
        total: float,
        minimum: float,
        maximum: float,
        timestamp: float,
        unit: str = "None",
        storage_resolution: int = 60,
    ) -> None:
        """Record a PutMetricData ``StatisticValues`` set (SampleCount, Sum, Minimum, Maximum)."""
        stats = (float(sample_count), float(total), float(minimum), float(maximum))
        self._into_bucket(namespace, name, dimensions, timestamp, unit, storage_resolution, _Bucket.add_set, *stats)

    def _into_bucket(self, namespace: str, name: str, dimensions: Mapping[str, str], timestamp: float, unit: str,
                     storage_resolution: int, add: Callable[..., None], *data: Any) -> None:
        """``add(bucket, *data)`` on the storage bucket of ``timestamp``, under the lock; the bucket is
        made on first use. Nothing happens when the datapoint is older than retention."""
        timestamp = float(timestamp)
        key = (namespace, name, frozenset(dimensions.items()))
        with self._lock:
            self.changes += 1
            self._into_bucket_locked(key, timestamp, unit, storage_resolution, add, *data)

    def record_many(
        self,
        namespace: str,
        dimensions: Mapping[str, str],
        items: Iterable[tuple[str, float, str]],
        timestamp: float,
    ) -> None:
        """Several ``(name, value, unit)`` datapoints of one namespace, dimensions and time, under one
        lock (an invocation's seven metrics: the data plane's hot path)."""
        timestamp = float(timestamp)
        dims = frozenset(dimensions.items())
        with self._lock:
            self.changes += 1
            where = self._place_locked(timestamp, 60)  # one time and resolution: placed once for all
            if where is not None:
                for name, value, unit in items:
                    self._bucket_locked((namespace, name, dims), unit, timestamp, *where).add(float(value))

    def batch(self, namespace: str, dimensions: Mapping[str, str], metrics: Sequence[tuple[str, str]]) -> MetricBatch:
        """A recorder of rows of ``metrics`` (``(name, unit)`` pairs, standard resolution) of one
        namespace and dimension set: ``batch.add(timestamp, values)`` is ``record_many`` of one row at
        the store's now ``timestamp``, in O(1), seen by every read (:mod:`.metric_batches`)."""
        return MetricBatch(self, self._lock, namespace, frozenset(dimensions.items()), metrics)

    def _into_bucket_locked(
        self, key: tuple[str, str, frozenset[tuple[str, str]]], timestamp: float, unit: str,
        storage_resolution: int, add: Callable[..., None], *data: Any,
    ) -> None:
        where = self._place_locked(timestamp, storage_resolution)
        if where is not None:  # else older than retention: CloudWatch would not keep it either
            add(self._bucket_locked(key, unit, timestamp, *where), *data)

    def _place_locked(self, timestamp: float, storage_resolution: int, now: float | None = None,
                      ) -> tuple[int, int] | None:
        """(tier, bucket start) of a datapoint at ``timestamp`` (at ``now``, default the store's), or None past retention."""
        if timestamp > self._latest:
            self._latest = timestamp
            if timestamp >= self._next_compact:
                self._compact_locked(self._now() if now is None else now)
        tier = 0 if storage_resolution == 1 else self._standard_tier
        age = (self._now() if now is None else now) - timestamp
        while tier < len(self._retention) and age >= self._retention[tier][1]:
            tier += 1
        if tier >= len(self._retention):
            return None
        width = self._retention[tier][0]
        return tier, int(timestamp // width) * width

    def _bucket_locked(self, key: tuple[str, str, frozenset[tuple[str, str]]], unit: str, timestamp: float,
                       tier: int, start: int) -> _Bucket:
        units = self._series.get(key)
        if units is None:
            units = self._series[key] = {}
        series = units.get(unit)
        if series is None:
            series = units[unit] = _Series(len(self._retention))
        if timestamp > series.last_timestamp:
            series.last_timestamp = timestamp
        buckets = series.tiers[tier]
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = _Bucket(self._percentiles)
        return bucket

    def now(self) -> float:
        """The store's "now": its clock, or else the newest timestamp recorded (-inf when empty)."""
        if self._now_fn is not None:
            return self._now_fn()
        with self._lock:  # batch rows recorded count
            return self._latest

    def _now(self) -> float:  # now() with the lock held
        return self._now_fn() if self._now_fn is not None else self._latest

    # ---------------------------------------------------------------- retention
    def compact(self, now: float | None = None) -> None:
        """Roll aged buckets into coarser tiers and drop data past retention."""
        with self._lock:
            self._compact_locked(self._now() if now is None else float(now))

    def _compact_locked(self, now: float) -> None:
        if not math.isfinite(now):
            return
        self._next_compact = max(now, self._latest) + _COMPACT_EVERY
        self.changes += 1
        dead: list[tuple[str, str, frozenset]] = []
        for key, units in self._series.items():
            for unit in [u for u, s in units.items() if self._compact_series(s, now)]:
                del units[unit]
            if not units:
                dead.append(key)
        for key in dead:
            del self._series[key]

    def _compact_series(self, series: _Series, now: float) -> bool:
        """Compact one series; True when it holds no data any more."""
        for index, (_, keep) in enumerate(self._retention):
            cutoff = now - keep
            buckets = series.tiers[index]
            old: list[int] = []
            for start in buckets:  # insertion order is nearly time order: stop at the first young one
                if start >= cutoff:
                    break
                old.append(start)
            if not old:
                continue
            if index + 1 < len(self._retention):
                width = self._retention[index + 1][0]
                coarser = series.tiers[index + 1]
                for start in old:
                    bucket = buckets.pop(start)
                    target = (start // width) * width
                    into = coarser.get(target)
                    if into is None:
                        coarser[target] = bucket
                    else:
                        into.merge(bucket)
            else:
                for start in old:
                    del buckets[start]
        return series.empty()

    # ---------------------------------------------------------------- queries
    def statistics(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        start: float,
        end: float,
        period: int,
        statistics: Sequence[str],
        unit: str | None = None,
    ) -> list[dict[str, Any]]:
        """Aggregate ``[start, end)`` into epoch-aligned ``period`` buckets, oldest first.

        ``statistics`` are CloudWatch names (``SampleCount``, ``Average``, ``Sum``, ``Minimum``,
        ``Maximum``) and percentiles (``p50``, ``p99.9``). Each returned dict has ``Timestamp``
        (epoch float, period start), ``Unit`` and the requested statistics; periods without data
        are left out. ``unit`` restricts to datapoints recorded with that unit (None = all).
        A percentile is omitted where the data came from multi-valued statistic sets.
        """
        period = int(period)
        if period <= 0:
            raise ValueError(f"period must be a positive number of seconds, got {period!r}")
        for stat in statistics:
            if stat not in STANDARD_STATISTICS and not is_extended_statistic(stat):
                raise ValueError(
                    f"unknown statistic {stat!r}; use one of {', '.join(STANDARD_STATISTICS)}, pNN, tmNN, "
                    "tm(NN%:NN%), wmNN, tcNN, tsNN, TM(a:b), PR(a:b) or IQM"
                )
        extended = {s: parse_extended_statistic(s) for s in statistics if s not in STANDARD_STATISTICS}
        want_dist = bool(extended)
        key = (namespace, name, frozenset(dimensions.items()))
        groups: dict[int, _Bucket] = {}
        units_seen: set[str] = set()
        with self._lock:
            units = self._series.get(key) or {}
            sources = dict(self._sources.get(key) or {})
            if not units and not sources:
                return []
            alone = not units and not extended and len(sources) == 1
            for series_unit, series in units.items():
                if unit is not None and series_unit != unit:
                    continue
                for (width, _), buckets in zip(self._retention, series.tiers, strict=True):
                    for bstart, bucket in _buckets_in_range(buckets, width, start, end):
                        units_seen.add(series_unit)
                        pstart = (bstart // period) * period
                        group = groups.get(pstart)
                        if group is None:
                            group = groups[pstart] = _Bucket(want_dist)
                        group.merge(bucket)
        if alone:
            # One source and nothing recorded (the simulator's metrics): its periods as they are.
            ((source_unit, source),) = sources.items()
            if unit is None or source_unit == unit:
                return source_rows(source, source_unit, start, end, period, statistics)
            return []
        for source_unit, source in sources.items():
            if unit is None or source_unit == unit:
                # Sources keep no distributions when the store keeps none (the simulator's).
                dist = want_dist and self._percentiles
                merge_source(groups, units_seen, source_unit, source, start, end, period, dist, _Bucket)
        out: list[dict[str, Any]] = []
        out_unit = units_seen.pop() if len(units_seen) == 1 else "None"
        for pstart in sorted(groups):
            group = groups[pstart]
            if group.count <= 0:
                continue
            point: dict[str, Any] = {"Timestamp": float(pstart), "Unit": out_unit}
            for stat in statistics:
                if stat == "SampleCount":
                    point[stat] = group.count
                elif stat == "Sum":
                    point[stat] = group.total
                elif stat == "Average":
                    point[stat] = group.total / group.count
                elif stat == "Minimum":
                    point[stat] = group.minimum
                elif stat == "Maximum":
                    point[stat] = group.maximum
                elif group.dist is not None:
                    spec = extended[stat]
                    value = extended_value(spec, group.dist, group.minimum, group.maximum)  # type: ignore[arg-type]
                    if value is not None:
                        point[stat] = value
            out.append(point)
        return out

    def period_values(
        self, namespace: str, name: str, dimensions: Mapping[str, str], start: float, end: float, period: int,
        statistic: str,
    ) -> tuple[float, list[float | None]] | None:
        """``(first period start, statistic per period or None: no data)`` of a metric fed by one source
        alone (a standard statistic): :meth:`statistics` without rows; else None."""
        key = (namespace, name, frozenset(dimensions.items()))
        sources = self._sources.get(key)
        if sources is None or len(sources) != 1 or key in self._series or self._lock.pending or (
                statistic not in STANDARD_STATISTICS):
            return None
        return metric_sources.source_values(next(iter(sources.values())), start, end, int(period), statistic)

    def datapoint_times(
        self, namespace: str, name: str, dimensions: Mapping[str, str], start: float, end: float, period: int
    ) -> set[float]:
        """Starts of the epoch-aligned ``period`` periods in ``[start, end)`` holding data: what
        ``statistics(..., ["SampleCount"])`` would return timestamps for, more cheaply."""
        period = int(period)
        key = (namespace, name, frozenset(dimensions.items()))
        sources = self._sources.get(key)
        if sources is not None and len(sources) == 1 and key not in self._series and not self._lock.pending:
            return set(metric_sources.source_times(next(iter(sources.values())), start, end, period))
        out: set[float] = set()
        with self._lock:
            sources = list((self._sources.get(key) or {}).values())
            for series in (self._series.get(key) or {}).values():
                for (width, _), buckets in zip(self._retention, series.tiers, strict=True):
                    out.update(
                        float((b // period) * period) for b, bucket in _buckets_in_range(buckets, width, start, end)
                        if bucket.count > 0
                    )
        for source in sources:
            out.update(metric_sources.source_times(source, start, end, period))
        return out

    def list_metrics(
        self,
        namespace: str | None = None,
        metric_name: str | None = None,
        dimensions: Mapping[str, str | None] | None = None,
        active_since: float | None = None,
    ) -> list[tuple[str, str, dict[str, str]]]:
        """Metrics that have data, as ``(namespace, name, dimensions)``, sorted.

        ``dimensions`` filters like ListMetrics: each named dimension must be present, with the
        given value unless the value is None. ``active_since`` keeps metrics with a datapoint at
        or after that epoch time (ListMetrics ``RecentlyActive=PT3H``).
        """
        out: list[tuple[str, str, dict[str, str]]] = []
        with self._lock:
            sourced = [(k, {u: math.inf for u in v}) for k, v in self._sources.items() if k not in self._series]
            series = [(k, {u: s.last_timestamp for u, s in v.items()}) for k, v in self._series.items()]
            for (ns, name, dims), last_seen in series + sourced:
                if namespace is not None and ns != namespace:
                    continue
                if metric_name is not None and name != metric_name:
                    continue
                dim_map = dict(dims)
                if dimensions and not all(
                    k in dim_map and (v is None or dim_map[k] == v) for k, v in dimensions.items()
                ):
                    continue
                if active_since is not None and max(last_seen.values()) < active_since:
                    continue
                out.append((ns, name, dim_map))
        out.sort(key=lambda m: (m[0], m[1], sorted(m[2].items())))
        return out

    def bucket_count(self) -> int:
        """Number of storage buckets held (for tests and memory diagnostics)."""
        with self._lock:
            return sum(len(b) for units in self._series.values() for s in units.values() for b in s.tiers)


def _buckets_in_range(
    buckets: dict[int, _Bucket], width: int, start: float, end: float
) -> Iterable[tuple[int, _Bucket]]:
    """Buckets whose start lies in ``[start, end)``: direct lookups when the range is short."""
    first = math.ceil(start / width) * width
    if end <= first:
        return []
    span = int((end - first + width - 1) // width)
    if span <= len(buckets):
        found = []
        for i in range(span):
            k = first + i * width
            if k >= end:
                break
            b = buckets.get(k)
            if b is not None:
                found.append((k, b))
        return found
    return [(k, b) for k, b in buckets.items() if start <= k < end]


#: Deprecated name of the in-memory store the engine tests used (``catkit.autoscaling.memory_metrics``);
#: there is one metric store now.
MemoryMetrics = MetricStore
