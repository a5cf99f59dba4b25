"""The simulated fleet: one variant's instances under a per-second traffic array, as a fleet port.

:class:`SimulatedFleet` implements :class:`catkit.autoscaling.driver.FleetPort`, so the simulator
is driven by the same :class:`~catkit.autoscaling.driver.ScalingDriver` step as the local backend.
It keeps per-second arrays of serving and billed instances, filled segment by segment as the fleet
changes (it is piecewise constant: counts change only when a decision is applied or finishes).

What it emits into the one :class:`~catkit.autoscaling.metrics_store.MetricStore`, per minute
(each minute once it is complete: readers only ever look at complete periods):

* ``Invocations``: a statistic set with one sample per request (Sum = requests);
* ``InvocationsPerInstance``: each request counts ``1 / serving instances`` (Sum per minute);
* ``ConcurrentRequestsPerModel`` (only when a policy tracks it): per 10-second window, the
  concurrency per instance from the :class:`~catkit.whatif.calibrate.ServiceModel` - the mean
  in-flight requests (Little's law) or the expected peak per 10-second sample, which is what the
  local backend observes (``concurrency_statistic``).

Minutes without traffic get no datapoint here: the driver's idle-zeros rule fills them, as it does
for the backend. Applying a decision follows UpdateEndpointWeightsAndCapacities semantics: the
variant is ``Updating`` until the change is done. Scale-out: new instances are billed from the
decision (ASSUMPTION: AWS bills instances while they launch) and serve after ``provisioning_s``.
Scale-in: removed instances stop taking traffic at once and are billed until ``termination_s``
later, when the variant is InService again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from catkit.autoscaling.driver import TICK_S, ConcurrencySample, VariantStatus
from catkit.autoscaling.metrics_store import MetricStore
from catkit.names import SAGEMAKER_METRICS
from catkit.whatif.calibrate import ServiceModel

FILL_AHEAD_S = 3600  # per-second arrays are filled this far ahead of the reads in one vector op
_WINDOW = int(TICK_S)


@dataclass
class _Change:
    """The running capacity change: done at ``ready_at``, then ``serving`` serve and are billed."""

    ready_at: float
    serving: int


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
        concurrency_statistic: str = "mean",
        emit_concurrency: bool = True,
    ) -> None:
        self.rate = rate
        self.t0 = t0
        self.resource_id = resource_id
        self.dims = dict(dims)
        self.service = service
        self.metrics = metrics
        self.provisioning_s = provisioning_s
        self.termination_s = termination_s
        self.emit_concurrency = emit_concurrency
        n = len(rate)
        self.serving = np.empty(n, dtype=np.int32)
        self.billed = np.empty(n, dtype=np.int32)
        self.filled = 0
        self.cur_serving = capacity
        self.cur_billed = capacity
        self.desired = capacity
        self.change: _Change | None = None
        self.cum_rate = np.concatenate(([0.0], np.cumsum(rate)))
        self.now = t0  # the time the fleet was last advanced to
        self._recorded = 0  # seconds whose data-plane metrics are in the store (whole minutes)
        self._conc_cum = np.zeros(len(rate) + 1)  # cumulative per-second concurrency per instance
        self._conc_valid = 0  # ... valid up to this second (extended ahead, cut back on changes)
        self._sampled = 0  # start (seconds from t0) of the next concurrency window to sample
        # Concurrency per instance versus load, as a lookup table (the Erlang C sum is per call).
        self._lam_grid = np.linspace(0.0, service.max_rps, 4097)
        if concurrency_statistic == "peak":
            conc = service.peak_concurrency(self._lam_grid[:-1])
        elif concurrency_statistic == "mean":
            conc = service.concurrency(self._lam_grid[:-1])
        else:
            raise ValueError(f"concurrency_statistic is 'mean' or 'peak', got {concurrency_statistic!r}")
        self._conc = np.append(conc, conc[-1])

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
        self.billed[a:idx] = self.cur_billed
        self.filled = idx

    def set_counts(self, idx: int, serving: int, billed: int) -> None:
        """From second ``idx`` on, ``serving`` instances take traffic and ``billed`` are billed."""
        if self.filled > idx:
            self.filled = idx
        else:
            self.fill_to(idx, ahead=0)
        self._conc_valid = min(self._conc_valid, idx)
        self.cur_serving, self.cur_billed = serving, billed

    def finish(self) -> None:
        """Close the last segment at the end of the traffic (a change still running keeps its state)."""
        ch = self.change
        if ch is not None and ch.ready_at < self.t0 + len(self.rate):
            self.set_counts(self.at(ch.ready_at), ch.serving, ch.serving)
        self.fill_to(len(self.rate))

    # ------------------------------------------------------------------ FleetPort
    def advance(self, now: float) -> None:
        self.now = now
        ch = self.change
        if ch is not None and ch.ready_at <= now:
            self.set_counts(self.at(ch.ready_at), ch.serving, ch.serving)
            self.change = None
        self._record_invocations(self.at(math.floor(now / 60) * 60))

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        if resource_id != self.resource_id:
            return None
        return VariantStatus("Updating" if self.change is not None else "InService", self.desired)

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
        if not self.emit_concurrency:
            return []
        a = self._sampled
        end = int(math.floor(now / _WINDOW) * _WINDOW - self.t0)  # windows are epoch-aligned
        end = min(end, len(self.rate))
        if end <= a:
            return []
        self._sampled = end
        cum = self._concurrency_cum(end)
        first = math.ceil((self.t0 + a) / _WINDOW) * _WINDOW - self.t0  # a partial first window
        out = []
        i = a
        j = int(first) if first > a else a + _WINDOW
        while i < end:
            j = min(j, end)
            out.append(ConcurrencySample(self.t0 + i, self.dims, ((cum[j] - cum[i]) / (j - i),), weight=j - i))
            i, j = j, j + _WINDOW
        return out

    def next_change(self, now: float) -> float | None:
        return self.change.ready_at if self.change is not None else None

    # ------------------------------------------------------------------ metrics
    def _concurrency_cum(self, end: int) -> np.ndarray:
        """Cumulative per-second concurrency per instance, valid at least up to ``end``."""
        v = self._conc_valid
        if end > v:
            hi = min(len(self.rate), max(end, v + FILL_AHEAD_S))
            self.fill_to(hi, ahead=0)
            lam = self.rate[v:hi] / self.serving[v:hi]
            conc = np.interp(lam, self._lam_grid, self._conc)
            conc = np.where(lam >= self.service.max_rps, self._conc[-1], conc)
            self._conc_cum[v + 1 : hi + 1] = self._conc_cum[v] + np.cumsum(conc)
            self._conc_valid = hi
        return self._conc_cum

    def _record_invocations(self, idx: int) -> None:
        """Record Invocations / InvocationsPerInstance for seconds ``[recorded, idx)``, per minute."""
        a = self._recorded
        if idx <= a:
            return
        self.fill_to(idx)
        record = self.metrics.record_statistics
        i = a
        while i < idx:
            j = min(idx, (int(self.t0 + i) // 60 + 1) * 60 - int(self.t0))
            total = float(self.cum_rate[j] - self.cum_rate[i])
            if total > 0:
                serving = self.serving[i:j]
                per = float(np.dot(self.rate[i:j], 1.0 / serving))
                stamp = self.t0 + i
                record(SAGEMAKER_METRICS, "Invocations", self.dims, total, total, 1.0, 1.0, stamp)
                lo, hi = 1.0 / float(serving.max()), 1.0 / float(serving.min())
                record(SAGEMAKER_METRICS, "InvocationsPerInstance", self.dims, total, per, lo, hi, stamp)
            i = j
        self._recorded = idx
