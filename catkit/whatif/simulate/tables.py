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

A run's summary reads them segment by segment (runs of one serving count), never second by second:
per count, the load-histogram bins are kept run-length encoded (a smooth traffic stays in one bin
for seconds on end), so a segment's histogram is its runs' bins weighted by their requests (exact
per-run sums; the partial runs at a segment's ends from a long-double running sum of the rates).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from catkit.whatif.calibrate import ServiceModel

#: Windows per lazily computed block of a per-count concurrency array.
BLOCK = 4096
#: A count's load bins are run-length encoded when they change at most this often (runs / seconds);
#: a noisier traffic is read second by second (as many runs as seconds would cost more).
RUNS_AT_MOST = 0.25
#: Load-histogram bins: linear up to 90 % utilisation, then uniform in -log10(1 - rho), then overload.
HIST_LINEAR, HIST_TAIL, HIST_U_MAX = 2048, 4096, 7.0
#: Bytes of arrays :meth:`TrafficTables.memo` keeps at most (the least recently used go first): the
#: alarm lookups of a 1,008-setting sweep over 30 days take ~90 MB.
MEMO_BYTES = 128 << 20


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
        self._runs: dict[tuple[float, int], tuple[np.ndarray, np.ndarray, np.ndarray] | None] = {}
        self._total: float | None = None
        #: Other per-traffic values by a key naming all they depend on (the simulated fleet's
        #: forecasts for a serving count: :meth:`SimulatedFleet.forecast`).
        self.kept: dict[tuple, object] = {}
        self._memo: OrderedDict[tuple, Any] = OrderedDict()
        self._memo_bytes = 0
        self._cum: np.ndarray | None = None
        self._spare: list[np.ndarray] = []  # per-second count arrays a sweep gave back (recycle)

    def count_array(self, shape: tuple[int, ...] | None = None, dtype: Any = np.int32) -> np.ndarray:
        """An array for a simulation's per-second instance counts (default: int32, the traffic's
        length; or per-item statistics of ``shape`` and ``dtype``): one given back by
        :meth:`recycle` (its pages already mapped: a month's count array faults in some 2,500 pages
        when first written) or a new one. Contents undefined."""
        shape = shape if shape is not None else self.rate.shape
        for i, a in enumerate(self._spare):
            if a.shape == shape and a.dtype == dtype:
                return self._spare.pop(i)
        return np.empty(shape, dtype=dtype)

    def recycle(self, *arrays: np.ndarray) -> None:
        """Give back arrays of a simulation whose result nobody reads any more (a sweep keeps only
        its summary row), for the next simulation's :meth:`count_array`. Keeps at most six."""
        for a in arrays:
            if len(self._spare) < 6 and a.base is None and a.flags.writeable and all(a is not b for b in self._spare):
                self._spare.append(a)

    def memo(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()``, kept by ``key`` (naming all it depends on) while the arrays kept so stay
        under :data:`MEMO_BYTES`, the least recently used dropped first: derived values many
        simulations of the traffic read (the alarm lookups of :mod:`catkit.autoscaling.lookahead`)."""
        memo = self._memo
        if key in memo:
            memo.move_to_end(key)
            return memo[key]
        value = memo[key] = build()
        self._memo_bytes += getattr(value, "nbytes", 0)
        while self._memo_bytes > MEMO_BYTES and len(memo) > 1:
            _, old = memo.popitem(last=False)
            self._memo_bytes -= getattr(old, "nbytes", 0)
        return value

    @property
    def total(self) -> float:
        """Requests in the whole traffic (``rate.sum()``, once)."""
        if self._total is None:
            self._total = float(self.rate.sum())
        return self._total

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

    def _load_runs(self, service: ServiceModel, instances: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Runs of equal load-histogram bins with ``instances`` serving: (starts with the traffic's
        length appended, bin per run, requests per run); None when the bins change too often."""
        key = (float(service.max_rps), instances)
        if key not in self._runs:
            bins = self.load_bins(service, instances)
            n = len(bins)
            cut = np.flatnonzero(bins[1:] != bins[:-1]) + 1
            if len(cut) + 1 > RUNS_AT_MOST * n:
                self._runs[key] = None
            else:
                starts = np.concatenate(([0], cut)).astype(np.int64)
                self._runs[key] = (np.append(starts, n), bins[starts].astype(np.intp),
                                   np.add.reduceat(self.rate, starts) if n else np.zeros(0))
        return self._runs[key]

    def _cumulative(self) -> np.ndarray:
        """Running sum of the rates from 0, in long double (a partial run's requests as a difference)."""
        if self._cum is None:
            self._cum = np.concatenate((np.zeros(1, dtype=np.longdouble), np.cumsum(self.rate, dtype=np.longdouble)))
        return self._cum

    def load_histogram(
        self, service: ServiceModel, starts: np.ndarray, ends: np.ndarray, counts: np.ndarray, bins: int
    ) -> np.ndarray:
        """Requests per load-histogram bin (``bins`` bins) over the segments ``[starts, ends)``
        served by ``counts`` instances: what ``np.bincount`` of the per-second bins weighted by the
        rates gives, summed run by run (see the module docstring)."""
        w = np.zeros(bins)
        for c in np.unique(counts).tolist():
            at = counts == c
            a, b = starts[at], ends[at]
            runs = self._load_runs(service, int(c))
            if runs is None:  # noisy traffic: second by second
                per_second = self.load_bins(service, int(c))
                idx = np.concatenate([per_second[x:y] for x, y in zip(a.tolist(), b.tolist(), strict=True)])
                rate = np.concatenate([self.rate[x:y] for x, y in zip(a.tolist(), b.tolist(), strict=True)])
                w += np.bincount(idx, weights=rate, minlength=bins)
                continue
            rs, rb, rw = runs
            first = np.searchsorted(rs, a, side="right") - 1  # the run holding each segment's first second
            stop = np.searchsorted(rs, b, side="left")  # runs starting before each segment's end
            many = stop - first
            # Every (segment, run) pair: the run index, and whether it lies wholly inside the segment.
            j = np.arange(int(many.sum())) + np.repeat(first - (np.cumsum(many) - many), many)
            lo, hi = np.repeat(a, many), np.repeat(b, many)
            whole = (rs[j] >= lo) & (rs[j + 1] <= hi)
            weights = np.where(whole, rw[j], 0.0)
            part = np.flatnonzero(~whole)
            if len(part):
                cum = self._cumulative()
                x = np.maximum(rs[j[part]], lo[part])
                y = np.minimum(rs[j[part] + 1], hi[part])
                weights[part] = (cum[y] - cum[x]).astype(np.float64)
            w += np.bincount(rb[j], weights=weights, minlength=bins)
        return w

    def overload_total(self, max_rps: float, starts: np.ndarray, ends: np.ndarray, counts: np.ndarray) -> float:
        """Requests beyond capacity over the segments ``[starts, ends)`` served by ``counts`` instances."""
        over = 0.0
        for c in np.unique(counts).tolist():
            at = counts == c
            where, cum = self._overload_table(max_rps, int(c))
            lo, hi = np.searchsorted(where, starts[at]), np.searchsorted(where, ends[at])
            over += float((cum[hi] - cum[lo]).sum())
        return over

    def _overload_table(self, max_rps: float, instances: int) -> tuple[np.ndarray, np.ndarray]:
        """The seconds in which ``instances`` instances are overloaded and a running sum (from 0) of
        the requests beyond their capacity there: kept per count, small as overload is rare."""
        key = (float(max_rps), instances)
        kept = self._over.get(key)
        if kept is None:
            excess = self.rate - instances * max_rps
            where = np.flatnonzero(excess > 0)
            kept = self._over[key] = (where, np.concatenate(([0.0], np.cumsum(excess[where]))))
        return kept


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
