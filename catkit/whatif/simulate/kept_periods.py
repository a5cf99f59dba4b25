"""Per-period metric values a simulated fleet keeps between driver steps.

A :class:`~catkit.whatif.simulate.fleet.SimulatedFleet` answers the same periods of a metric many
times: the alarms read the newest complete periods at each evaluation
(:meth:`~catkit.autoscaling.metrics_store.MetricStore.period_values`), and the driver's lookahead
forecasts the periods around the last change of the serving count at each step
(:meth:`SimulatedFleet.forecast`). Each answer used to be its own small batch of array operations.
:class:`KeptPeriods` computes one statistic per period of one metric in batches of
:data:`PERIODS_AHEAD` periods (with the serving count of now, as a forecast does) and hands out
slices. A period's value depends only on the serving counts of its own seconds, so the values stay
right until the serving count changes; the fleet then drops them from the period holding the
change on (:meth:`KeptPeriods.drop_from`), and the next read recomputes from there. Periods that
have ended before the change keep their values: they are what the store answers for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Periods computed past the last one asked for, in one batch.
PERIODS_AHEAD = 32


class KeptPeriods:
    """``compute(start, end)`` (the statistic of each period in ``[start, end)``, NaN where there
    is no datapoint) kept per period from ``origin`` (a period start) for the first ``whole``
    periods (those that end within the traffic)."""

    def __init__(self, compute: Callable[[float, float], np.ndarray], origin: float, period: int, whole: int) -> None:
        self.compute = compute
        self.origin = float(origin)
        self.period = int(period)
        self.whole = max(0, int(whole))
        self.first = 0  # the index of the period values[0] stands for
        self.values = np.empty(0)  # read-only; those periods computed with the serving counts as they are

    def get(self, start: float, end: float) -> np.ndarray | None:
        """The values of the periods in ``[start, end)`` (both period boundaries; a read-only
        view), or None when they are not all whole periods of the traffic."""
        p = self.period
        a, b = start - self.origin, end - self.origin
        if a < 0 or a % p or b % p or b > self.whole * p:
            return None
        i0, i1 = int(a // p), int(b // p)
        first, values = self.first, self.values
        have = first + len(values)
        if i0 < first or i0 > have:  # not next to the values kept: start over from i0
            first, values, have = i0, np.empty(0), i0
        if i1 > have:
            upto = min(self.whole, max(i1, have + PERIODS_AHEAD))
            more = np.asarray(self.compute(self.origin + have * p, self.origin + upto * p), dtype=np.float64)
            if len(more) != upto - have:  # pragma: no cover - compute answers every period asked for
                raise AssertionError(f"expected {upto - have} periods, got {len(more)}")
            values = np.concatenate((values, more)) if len(values) else more
            values.flags.writeable = False
        self.first, self.values = first, values
        return values[i0 - first : i1 - first]

    def drop_from(self, ts: float) -> None:
        """The serving count changes at second ``ts``: forget the periods from the one holding it."""
        keep = max(0, math.floor((ts - self.origin) / self.period) - self.first)
        if keep < len(self.values):
            self.values = self.values[:keep]
