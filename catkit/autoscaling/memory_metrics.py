"""An in-memory metric store implementing the engine's MetricReader port (pure, no I/O).

Used by tests and by the offline simulator: ``record`` datapoints with their (emulated)
timestamps, then the alarm book reads them back with ``statistics`` exactly as it reads the local
backend's ``MetricStore``. Series are kept as time-sorted arrays, so a query costs
O(log n + datapoints in the window); ``prune(before)`` drops old data for long simulations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


def series_key(namespace: str, name: str, dimensions: Mapping[str, str]) -> SeriesKey:
    return (namespace, name, tuple(sorted(dimensions.items())))


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Percentile ``p`` (0-100) of sorted values by linear interpolation between closest ranks."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (p / 100.0) * (len(sorted_values) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = rank - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def aggregate(values: Sequence[float], statistics: Sequence[str]) -> dict[str, float]:
    """Compute CloudWatch statistics (incl. ``pNN``) over raw values of one period."""
    out: dict[str, float] = {}
    ordered: list[float] | None = None
    for stat in statistics:
        if stat == "Sum":
            out[stat] = float(sum(values))
        elif stat == "SampleCount":
            out[stat] = float(len(values))
        elif stat == "Average":
            out[stat] = float(sum(values)) / len(values)
        elif stat == "Minimum":
            out[stat] = float(min(values))
        elif stat == "Maximum":
            out[stat] = float(max(values))
        elif stat[:1] in ("p", "P") and stat[1:].replace(".", "", 1).isdigit():
            ordered = ordered or sorted(values)
            out[stat] = percentile(ordered, float(stat[1:]))
        else:
            raise ValueError(
                f"unsupported statistic {stat!r}; use Sum, SampleCount, Average, Minimum, Maximum or pNN"
            )
    return out


class MemoryMetrics:
    """Datapoints per series, queried by period buckets aligned to multiples of the period."""

    def __init__(self) -> None:
        self._times: dict[SeriesKey, list[float]] = {}
        self._values: dict[SeriesKey, list[float]] = {}

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
        key = series_key(namespace, name, dimensions)
        times = self._times.setdefault(key, [])
        values = self._values.setdefault(key, [])
        if not times or timestamp >= times[-1]:
            times.append(float(timestamp))
            values.append(float(value))
        else:
            i = bisect.bisect_right(times, timestamp)
            times.insert(i, float(timestamp))
            values.insert(i, float(value))

    def statistics(
        self,
        namespace: str,
        name: str,
        dimensions: Mapping[str, str],
        start: float,
        end: float,
        period: int,
        statistics: Sequence[str],
    ) -> list[dict]:
        key = series_key(namespace, name, dimensions)
        times = self._times.get(key)
        if not times:
            return []
        values = self._values[key]
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_left(times, end)
        buckets: dict[float, list[float]] = {}
        for i in range(lo, hi):
            b = math.floor(times[i] / period) * period
            buckets.setdefault(b, []).append(values[i])
        return [{"Timestamp": b, **aggregate(vs, statistics)} for b, vs in sorted(buckets.items())]

    def prune(self, before: float) -> None:
        """Forget datapoints older than ``before``."""
        for key, times in self._times.items():
            cut = bisect.bisect_left(times, before)
            if cut:
                del times[:cut]
                del self._values[key][:cut]
