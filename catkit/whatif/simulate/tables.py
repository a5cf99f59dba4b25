"""Per-traffic tables shared by every simulation of one traffic: what depends only on the traffic
and the number of instances serving.

A :class:`SimulatedFleet`'s metrics for a minute or a 10-second window in which the serving count
stays ``n`` depend on nothing else than the traffic in it and ``n``; so do a second's latency and
overload. :class:`TrafficTables` computes those once per traffic - per-item request sums (minutes
and 10-second windows, on the fleet's item grid), per-``n`` concurrency per window (lazily, in
blocks), per-``n`` load-histogram bins and overload per second - and every simulation of that
traffic (:func:`catkit.whatif.simulate.simulate` with ``tables=``;
:func:`catkit.whatif.recommend.recommend_scaling` shares one per worker) reads them instead of
recomputing them from the per-second arrays. Values equal what a fleet computes for those items
itself (the same operations on the same numbers), so sharing changes no decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from catkit.whatif.calibrate import ServiceModel

#: Windows per lazily computed block of a per-count concurrency array.
BLOCK = 4096
#: Load-histogram bins: linear up to 90 % utilisation, then uniform in -log10(1 - rho), then overload.
HIST_LINEAR, HIST_TAIL, HIST_U_MAX = 2048, 4096, 7.0


def histogram_bins(rho: np.ndarray) -> np.ndarray:
    """The load-histogram bin of each utilisation in ``rho`` (see :data:`HIST_LINEAR`)."""
    with np.errstate(divide="ignore"):
        u = -np.log10(np.maximum(1.0 - rho, 1e-300))
    return np.where(
        rho < 0.9,
        (rho / 0.9 * HIST_LINEAR).astype(np.int64),
        HIST_LINEAR + np.minimum(((u - 1.0) / (HIST_U_MAX - 1.0) * HIST_TAIL).astype(np.int64), HIST_TAIL),
    )


class TrafficTables:
    """Tables of one per-second ``rate`` array (read-only from here on; see the module docstring)."""

    def __init__(self, rate: np.ndarray) -> None:
        rate = np.asarray(rate, dtype=np.float64)
        if rate.ndim != 1 or np.any(rate < 0) or not np.all(np.isfinite(rate)):
            raise ValueError("traffic rates are one finite rate >= 0 per second")
        if rate.flags.writeable:
            rate = rate.copy()
            rate.flags.writeable = False
        self.rate = rate
        self._sums: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._conc: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._bins: dict[tuple[float, int], np.ndarray] = {}
        self._over: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = {}

    def item_sums(self, unit: int, lead: int) -> tuple[np.ndarray, np.ndarray]:
        """(requests, seconds) per item of ``unit`` seconds, the first ``lead`` seconds (if any)
        making a partial first item - the fleet's item grid."""
        key = (unit, lead)
        kept = self._sums.get(key)
        if kept is None:
            n = len(self.rate)
            starts = np.concatenate(([0] if lead else [], np.arange(lead, n, unit))).astype(np.int64)
            starts = starts[starts < n] if n else starts
            seconds = np.diff(np.append(starts, n)).astype(np.float64)
            sums = np.add.reduceat(self.rate, starts) if n else np.zeros(0)
            kept = self._sums[key] = (sums, seconds)
        return kept

    def concurrency(
        self, unit: int, lead: int, instances: int, key: tuple, table: np.ndarray, grid: np.ndarray, max_rps: float,
        lo: int, hi: int,
    ) -> np.ndarray:
        """Concurrency per instance of items ``[lo, hi)`` with ``instances`` serving throughout:
        ``table`` (on ``grid``, saturated at ``max_rps``) at each item's mean load per instance.
        ``key`` names the table (service model and statistic); computed per block and kept."""
        full = (unit, lead, instances, key)
        kept = self._conc.get(full)
        sums, seconds = self.item_sums(unit, lead)
        if kept is None:
            kept = self._conc[full] = (np.empty(len(sums)), np.zeros(-(-len(sums) // BLOCK), dtype=bool))
        values, done = kept
        for b in range(lo // BLOCK, -(-hi // BLOCK)):
            if not done[b]:
                a, z = b * BLOCK, min(len(sums), (b + 1) * BLOCK)
                load = sums[a:z] / seconds[a:z] / instances
                values[a:z] = np.where(load >= max_rps, table[-1], np.interp(load, grid, table))
                done[b] = True
        return values[lo:hi]

    def load_bins(self, service: ServiceModel, instances: int) -> np.ndarray:
        """Load-histogram bin per second with ``instances`` serving (int16)."""
        key = (float(service.max_rps), instances)
        kept = self._bins.get(key)
        if kept is None:
            rho = self.rate / max(instances, 1) / service.max_rps
            kept = self._bins[key] = histogram_bins(rho).astype(np.int16)
        return kept

    def overload(self, max_rps: float, instances: int, a: int, b: int) -> float:
        """Requests in seconds ``[a, b)`` beyond ``instances`` instances' capacity (kept per count
        as the overloaded seconds and a running sum over them: small, as overload is rare)."""
        key = (float(max_rps), instances)
        kept = self._over.get(key)
        if kept is None:
            excess = self.rate - instances * max_rps
            where = np.flatnonzero(excess > 0)
            kept = self._over[key] = (where, np.concatenate(([0.0], np.cumsum(excess[where]))))
        where, cum = kept
        lo, hi = np.searchsorted(where, (a, b))
        return float(cum[hi] - cum[lo])


def segments(serving: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, counts) of the runs of equal values in ``serving``."""
    if not len(serving):
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    cut = np.flatnonzero(serving[1:] != serving[:-1]) + 1
    starts = np.concatenate(([0], cut))
    ends = np.append(cut, len(serving))
    return starts, ends, serving[starts].astype(np.int64)


__all__ = ["TrafficTables", "histogram_bins", "segments"]
