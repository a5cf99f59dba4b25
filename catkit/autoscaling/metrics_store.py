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
  bucket is small, then a mergeable log-bucketed histogram with 1 % relative accuracy.
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

The store is **not persisted**: metric data is lost when the backend restarts (alarm definitions and
state are persisted by the CloudWatch service, not here). It is thread-safe (one lock).
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_RETENTION",
    "MemoryMetrics",
    "MetricStore",
    "is_extended_statistic",
    "is_percentile_statistic",
    "parse_extended_statistic",
]

#: (bucket width in seconds, how long data stays at that width in seconds), finest first.
DEFAULT_RETENTION: tuple[tuple[int, int], ...] = ((1, 3 * 3600), (60, 15 * 86400))

_STANDARD_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PCT = r"(?:\d{1,2}(?:\.\d{1,10})?|100(?:\.0{1,10})?)"
_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PERCENTILE_RE = re.compile(rf"^p({_PCT})$")
_SHORT_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts)({_PCT})$", re.IGNORECASE)
_PERCENT_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts)\(({_PCT})?%:({_PCT})?%\)$", re.IGNORECASE)
_ABSOLUTE_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts|pr)\(({_NUM})?:({_NUM})?\)$", re.IGNORECASE)
_RAW_LIMIT = 32  # exact values kept per bucket before switching to the histogram
_ALPHA = 0.01  # relative accuracy of the histogram
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_COMPACT_EVERY = 300.0
_MAX_BINS = 2048  # per sign: a value range of 1.02**2048 (~1e17) at full accuracy
_BIN_SLACK = 8

DimensionKey = frozenset  # frozenset[tuple[str, str]]


def is_percentile_statistic(stat: str) -> bool:
    """True for CloudWatch percentile statistics ``pNN`` / ``pNN.NN`` (``p0`` .. ``p100``)."""
    return bool(_PERCENTILE_RE.match(stat))


def parse_extended_statistic(stat: str) -> tuple[str, float | None, float | None, bool] | None:
    """Parse a CloudWatch extended statistic into ``(kind, low, high, absolute)``, None if invalid.

    Kinds: ``p`` (percentile, ``high`` = NN), ``tm`` trimmed mean, ``wm`` winsorized mean,
    ``tc`` trimmed count, ``ts`` trimmed sum (``tm90`` = ``tm(0%:90%)``, ``tm(10%:90%)``, or
    absolute bounds ``TM(150:1000)``), ``pr`` percent rank ``PR(:300)`` and ``IQM`` (``tm(25%:75%)``).
    Percent bounds are in percent; absolute bounds select ``low < value <= high``.
    """
    if stat == "IQM":
        return ("tm", 25.0, 75.0, False)
    m = _PERCENTILE_RE.match(stat)
    if m:
        return ("p", None, float(m.group(1)), False)
    m = _SHORT_RANGE_RE.match(stat)
    if m:
        return (m.group(1).lower(), 0.0, float(m.group(2)), False)
    m = _PERCENT_RANGE_RE.match(stat)
    if m:
        lo = float(m.group(2)) if m.group(2) else 0.0
        hi = float(m.group(3)) if m.group(3) else 100.0
        return (m.group(1).lower(), lo, hi, False) if lo < hi else None
    m = _ABSOLUTE_RANGE_RE.match(stat)
    if m and (m.group(2) or m.group(3)):
        lo = float(m.group(2)) if m.group(2) else None
        hi = float(m.group(3)) if m.group(3) else None
        if lo is not None and hi is not None and not lo < hi:
            return None
        return (m.group(1).lower(), lo, hi, True)
    return None


def is_extended_statistic(stat: str) -> bool:
    """True for any extended statistic :func:`parse_extended_statistic` understands."""
    return parse_extended_statistic(stat) is not None


class _Bins:
    """Dense log-histogram counts of one sign: ``counts[i]`` belongs to bin ``offset + i``.

    A contiguous ``array('d')`` costs 8 bytes per bin (a dict ~70); when the range of bins would
    exceed ``_MAX_BINS`` the lowest bins are collapsed, so upper percentiles stay accurate.
    """

    __slots__ = ("counts", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.counts = array("d")

    def add(self, key: int, weight: float) -> None:
        i = key - self.offset
        counts = self.counts
        if 0 <= i < len(counts):
            counts[i] += weight
        else:
            self._grow_and_add(key, weight)

    def _grow_and_add(self, key: int, weight: float) -> None:
        old, offset = self.counts, self.offset
        if not old:
            lo, hi = key - _BIN_SLACK, key + _BIN_SLACK
        else:
            lo = min(offset, key - _BIN_SLACK) if key < offset else offset
            hi = (
                max(offset + len(old) - 1, key + _BIN_SLACK)
                if key >= offset + len(old)
                else offset + len(old) - 1
            )
        lo = max(lo, hi - _MAX_BINS + 1)
        new = array("d", bytes(8 * (hi - lo + 1)))
        for j, c in enumerate(old):
            if c:
                new[max(offset + j, lo) - lo] += c
        new[max(key, lo) - lo] += weight
        self.offset, self.counts = lo, new

    def merge(self, other: _Bins) -> None:
        for j, c in enumerate(other.counts):
            if c:
                self.add(other.offset + j, c)

    def items(self) -> list[tuple[int, float]]:
        """Non-empty ``(bin, count)`` in ascending bin order."""
        offset = self.offset
        return [(offset + j, c) for j, c in enumerate(self.counts) if c]

    def total(self) -> float:
        return math.fsum(self.counts)


class _Distribution:
    """Weighted values: exact while small, then a log-bucketed histogram (DDSketch-like)."""

    __slots__ = ("neg", "pos", "raw_values", "raw_weights", "zero")

    def __init__(self) -> None:
        self.raw_values: array | None = array("d")
        self.raw_weights: array | None = None  # None: every raw value has weight 1
        self.pos: _Bins | None = None
        self.neg: _Bins | None = None
        self.zero = 0.0

    def add(self, value: float, count: float = 1.0) -> None:
        raw = self.raw_values
        if raw is not None:
            if count != 1.0 and self.raw_weights is None:
                self.raw_weights = array("d", [1.0]) * len(raw)
            raw.append(value)
            if self.raw_weights is not None:
                self.raw_weights.append(count)
            if len(raw) > _RAW_LIMIT:
                self._to_histogram()
            return
        self._bin(value, count)

    def _bin(self, value: float, count: float) -> None:
        if value > 0.0:
            self.pos.add(math.ceil(math.log(value) * _INV_LOG_GAMMA), count)  # type: ignore[union-attr]
        elif value < 0.0:
            self.neg.add(math.ceil(math.log(-value) * _INV_LOG_GAMMA), count)  # type: ignore[union-attr]
        else:
            self.zero += count

    def _raw_pairs(self) -> list[tuple[float, float]]:
        values = self.raw_values or array("d")
        weights = self.raw_weights if self.raw_weights is not None else [1.0] * len(values)
        return list(zip(values, weights, strict=True))

    def _to_histogram(self) -> None:
        pairs = self._raw_pairs()
        self.raw_values = self.raw_weights = None
        self.pos, self.neg = _Bins(), _Bins()
        for v, c in pairs:
            self._bin(v, c)

    def merge(self, other: _Distribution) -> None:
        if other.raw_values is not None:
            for v, c in other._raw_pairs():
                self.add(v, c)
            return
        if self.raw_values is not None:
            self._to_histogram()
        self.pos.merge(other.pos)  # type: ignore[union-attr,arg-type]
        self.neg.merge(other.neg)  # type: ignore[union-attr,arg-type]
        self.zero += other.zero

    def pairs(self, minimum: float, maximum: float) -> list[tuple[float, float]]:
        """``(value, weight)`` ascending; histogram bins stand for their representative value."""
        if self.raw_values is not None:
            return sorted(self._raw_pairs())
        out = [(-_representative(k), c) for k, c in reversed(self.neg.items())]  # type: ignore[union-attr]
        if self.zero:
            out.append((0.0, self.zero))
        out.extend((_representative(k), c) for k, c in self.pos.items())  # type: ignore[union-attr]
        return [(min(max(v, minimum), maximum), w) for v, w in out]

    def quantile(self, q: float, minimum: float, maximum: float) -> float:
        """Nearest-rank quantile (``q`` in [0, 1]), clamped to the exact [minimum, maximum]."""
        if q <= 0.0:
            return minimum
        if q >= 1.0:
            return maximum
        pairs = self.pairs(minimum, maximum)
        rank = q * math.fsum(w for _, w in pairs)
        acc = 0.0
        for v, w in pairs:
            acc += w
            if acc >= rank - 1e-9:
                return v
        return maximum


def _representative(key: int) -> float:
    """The value a histogram bin stands for: within ``_ALPHA`` of every value in the bin."""
    return 2.0 * _GAMMA**key / (_GAMMA + 1.0)


class _Bucket:
    """Aggregate of the datapoints in one storage bucket."""

    __slots__ = ("count", "dist", "maximum", "minimum", "total")

    def __init__(self, percentiles: bool = True) -> None:
        self.total = 0.0
        self.count = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.dist: _Distribution | None = _Distribution() if percentiles else None

    def add(self, value: float, count: float = 1.0) -> None:
        self.total += value * count
        self.count += count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        if self.dist is not None:
            self.dist.add(value, count)

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
        self._lock = threading.Lock()
        # (namespace, name, frozenset(dims.items())) -> {unit: _Series}
        self._series: dict[tuple[str, str, frozenset], dict[str, _Series]] = {}

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
        with self._lock:
            bucket = self._bucket(namespace, name, dimensions, timestamp, unit, storage_resolution)
            if bucket is not None:
                bucket.add(float(value))

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
        with self._lock:
            bucket = self._bucket(namespace, name, dimensions, timestamp, unit, storage_resolution)
            if bucket is not None:
                for v, c in zip(values, counts, strict=True):
                    if c > 0:
                        bucket.add(v, c)

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
        with self._lock:
            bucket = self._bucket(namespace, name, dimensions, timestamp, unit, storage_resolution)
            if bucket is not None:
                bucket.add_set(float(sample_count), float(total), float(minimum), float(maximum))

    def _bucket(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        timestamp: float,
        unit: str,
        storage_resolution: int,
    ) -> _Bucket | None:
        timestamp = float(timestamp)
        if timestamp > self._latest:
            self._latest = timestamp
            if timestamp >= self._next_compact:
                self._compact_locked(self._now())
        key = (namespace, name, frozenset(dimensions.items()))
        units = self._series.get(key)
        if units is None:
            units = self._series[key] = {}
        series = units.get(unit)
        if series is None:
            series = units[unit] = _Series(len(self._retention))
        if timestamp > series.last_timestamp:
            series.last_timestamp = timestamp
        tier = 0 if storage_resolution == 1 else self._standard_tier
        age = self._now() - timestamp
        while tier < len(self._retention) and age >= self._retention[tier][1]:
            tier += 1
        if tier >= len(self._retention):
            return None  # older than retention: CloudWatch would not keep it either
        width = self._retention[tier][0]
        start = int(timestamp // width) * width
        buckets = series.tiers[tier]
        bucket = buckets.get(start)
        if bucket is None:
            bucket = buckets[start] = _Bucket(self._percentiles)
        return bucket

    def now(self) -> float:
        """The store's "now": its clock, or else the newest timestamp recorded (-inf when empty)."""
        return self._now_fn() if self._now_fn is not None else self._latest

    _now = now

    # ---------------------------------------------------------------- retention
    def compact(self, now: float | None = None) -> None:
        """Roll aged buckets into coarser tiers and drop data past retention."""
        with self._lock:
            self._compact_locked(self._now() if now is None else float(now))

    def _compact_locked(self, now: float) -> None:
        if not math.isfinite(now):
            return
        self._next_compact = max(now, self._latest) + _COMPACT_EVERY
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
            if stat not in _STANDARD_STATS and not is_extended_statistic(stat):
                raise ValueError(
                    f"unknown statistic {stat!r}; use one of {', '.join(_STANDARD_STATS)}, pNN, tmNN, "
                    "tm(NN%:NN%), wmNN, tcNN, tsNN, TM(a:b), PR(a:b) or IQM"
                )
        extended = {s: parse_extended_statistic(s) for s in statistics if s not in _STANDARD_STATS}
        want_dist = bool(extended)
        key = (namespace, name, frozenset(dimensions.items()))
        groups: dict[int, _Bucket] = {}
        units_seen: set[str] = set()
        with self._lock:
            units = self._series.get(key)
            if not units:
                return []
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
                    value = _extended_value(extended[stat], group)  # type: ignore[arg-type]
                    if value is not None:
                        point[stat] = value
            out.append(point)
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
            for (ns, name, dims), units in self._series.items():
                if namespace is not None and ns != namespace:
                    continue
                if metric_name is not None and name != metric_name:
                    continue
                dim_map = dict(dims)
                if dimensions and not all(
                    k in dim_map and (v is None or dim_map[k] == v) for k, v in dimensions.items()
                ):
                    continue
                if active_since is not None and max(s.last_timestamp for s in units.values()) < active_since:
                    continue
                out.append((ns, name, dim_map))
        out.sort(key=lambda m: (m[0], m[1], sorted(m[2].items())))
        return out

    def bucket_count(self) -> int:
        """Number of storage buckets held (for tests and memory diagnostics)."""
        with self._lock:
            return sum(len(b) for units in self._series.values() for s in units.values() for b in s.tiers)


def _extended_value(spec: tuple[str, float | None, float | None, bool], group: _Bucket) -> float | None:
    """One extended statistic over a period's distribution; None when no value qualifies."""
    kind, lo, hi, absolute = spec
    dist = group.dist
    assert dist is not None
    if kind == "p":
        return dist.quantile((hi or 0.0) / 100.0, group.minimum, group.maximum)
    pairs = dist.pairs(group.minimum, group.maximum)
    total = sum(w for _, w in pairs)
    if total <= 0:
        return None
    if absolute:
        inside = [(v, w) for v, w in pairs if (lo is None or v > lo) and (hi is None or v <= hi)]
        weight = sum(w for _, w in inside)
        weighted = sum(v * w for v, w in inside)
        if kind == "pr":
            return 100.0 * weight / total
        if kind == "wm":
            low = group.minimum if lo is None else lo
            high = group.maximum if hi is None else hi
            return sum(min(max(v, low), high) * w for v, w in pairs) / total
    else:
        lo_rank, hi_rank = (lo or 0.0) / 100.0 * total, (hi if hi is not None else 100.0) / 100.0 * total
        weight = weighted = 0.0
        acc = 0.0
        for v, w in pairs:
            overlap = min(acc + w, hi_rank) - max(acc, lo_rank)
            if overlap > 0:
                weight += overlap
                weighted += v * overlap
            acc += w
        if kind == "wm":
            v_lo = dist.quantile((lo or 0.0) / 100.0, group.minimum, group.maximum)
            v_hi = dist.quantile((hi if hi is not None else 100.0) / 100.0, group.minimum, group.maximum)
            return (weighted + lo_rank * v_lo + (total - hi_rank) * v_hi) / total
    if kind == "tc":
        return weight
    if kind == "ts":
        return weighted if weight > 0 else None
    return weighted / weight if weight > 0 else None


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
