"""Metrics computed when read: the :class:`MetricSource` port of the metric store.

A source (the offline simulator's fleet attaches one per metric it emits,
:meth:`catkit.autoscaling.metrics_store.MetricStore.attach`) answers a query's periods as
statistic sets computed on demand; :func:`source_rows` turns one source's periods into the rows
:meth:`MetricStore.statistics` returns when nothing else feeds the metric (the simulator's reads:
each period one statistic set, so the rows are its values as they are, with no groups to merge);
:func:`merge_source` adds a source's periods to a query's groups where recorded data is merged in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class MetricSource(Protocol):
    """A metric whose statistics are computed when read instead of recorded (see :meth:`MetricStore.attach`)."""

    def period_statistics(
        self, start: float, end: float, period: int
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The data whose storage buckets start in ``[start, end)``, grouped into epoch-aligned
        ``period`` periods: ``(first period start, sample counts, sums, minima, maxima)``, one array
        element per consecutive period from the first (count 0: no data in that period)."""
        ...



def source_rows(
    source: MetricSource, unit: str, start: float, end: float, period: int, statistics: Sequence[str]
) -> list[dict[str, Any]]:
    """:meth:`MetricStore.statistics` rows of a source read alone (standard statistics): the
    values a group of one statistic set gives, without the groups."""
    first, counts, totals, minima, maxima = source.period_statistics(start, end, period)
    have = np.flatnonzero(counts > 0)
    columns = {"SampleCount": counts, "Sum": totals, "Minimum": minima, "Maximum": maxima}
    picked = []
    for stat in statistics:
        if stat == "Average":
            picked.append((stat, [t / c for t, c in zip(totals[have].tolist(), counts[have].tolist(), strict=True)]))
        else:
            picked.append((stat, columns[stat][have].tolist()))
    base = int(first)
    out = []
    for i, k in enumerate(have.tolist()):
        row: dict[str, Any] = {"Timestamp": float(base + k * period), "Unit": unit}
        for stat, values in picked:
            row[stat] = values[i]
        out.append(row)
    return out


def source_values(
    source: MetricSource, start: float, end: float, period: int, statistic: str
) -> tuple[float, list[float | None]]:
    """:meth:`MetricStore.period_values` of a source read alone (a standard statistic): the first
    period's start and the statistic per period from there, None where a period has no data - the
    values :func:`source_rows` gives, without the rows. From the source's own ``period_values(start,
    end, period, statistic)`` if it has one (None: it cannot tell), else its period statistics."""
    quick = getattr(source, "period_values", None)
    got = quick(start, end, period, statistic) if quick is not None else None
    if got is not None:
        return got
    first, counts, totals, minima, maxima = source.period_statistics(start, end, period)
    have = counts.tolist()
    if statistic == "Average":
        return first, [t / c if c > 0 else None for t, c in zip(totals.tolist(), have, strict=True)]
    column = {"SampleCount": counts, "Sum": totals, "Minimum": minima, "Maximum": maxima}[statistic].tolist()
    return first, [v if c > 0 else None for v, c in zip(column, have, strict=True)]


def merge_source(
    groups: dict[int, Any],
    units_seen: set[str],
    unit: str,
    source: MetricSource,
    start: float,
    end: float,
    period: int,
    want_dist: bool,
    bucket: Any,
) -> None:
    """Add a source's periods to a :meth:`MetricStore.statistics` query's ``groups`` (period start ->
    ``bucket``, the store's bucket class: one statistic set per period)."""
    first, counts, totals, minima, maxima = source.period_statistics(start, end, period)
    have = np.flatnonzero(counts > 0)
    if not len(have):
        return
    units_seen.add(unit)
    rows = zip(
        have.tolist(),
        counts[have].tolist(),
        totals[have].tolist(),
        minima[have].tolist(),
        maxima[have].tolist(),
        strict=True,
    )
    base = int(first)
    for k, count, total, minimum, maximum in rows:
        pstart = base + k * period
        group = groups.get(pstart)
        if group is None:
            if not want_dist or minimum != maximum:  # no distribution to keep (as add_set decides)
                groups[pstart] = bucket.of_set(count, total, minimum, maximum)
                continue
            group = groups[pstart] = bucket(want_dist)
        group.add_set(count, total, minimum, maximum)


def source_times(source: MetricSource, start: float, end: float, period: int) -> list[float]:
    """Starts of the ``period`` periods of a source with data in ``[start, end)``
    (:meth:`MetricStore.datapoint_times`): from its ``datapoint_times(start, end, period)`` if it
    has one (a cheaper answer, or None when it cannot tell), else from its period statistics."""
    quick = getattr(source, "datapoint_times", None)
    times = quick(start, end, period) if quick is not None else None
    if times is not None:
        return times
    first, counts, _, _, _ = source.period_statistics(start, end, period)
    return (first + period * np.flatnonzero(counts > 0)).tolist()


__all__ = ["MetricSource", "merge_source", "source_rows", "source_times", "source_values"]
