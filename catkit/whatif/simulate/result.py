"""The outcome of one simulation: per-second series, scaling activities, latency and cost views.

:class:`SimulationResult` holds what :func:`catkit.whatif.simulate.simulate` produced - traffic,
serving and billed instances per second, the engine's activities - and derives latency estimates
(from the :class:`~catkit.whatif.calibrate.ServiceModel`), SLO violations, cost, a per-minute
frame and a three-panel plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from catkit.autoscaling.config import ScalingConfig
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate.tables import HIST_LINEAR, HIST_TAIL, HIST_U_MAX, histogram_bins, segments

if TYPE_CHECKING:
    from collections.abc import Callable

    from catkit.whatif.simulate.tables import TrafficTables


class Deferred:
    """A field value made on first read: ``SimulationResult(activities=Deferred(build), ...)`` calls
    ``build()`` the first time ``activities`` is read (a sweep that keeps only the summary row never
    builds the activities DataFrame)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build


class _OnFirstRead:
    """Descriptor of a dataclass field that may be given as a :class:`Deferred` (no default)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_deferred_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.slot)  # dataclasses read this as "the field has no default"
        value = obj.__dict__[self.slot]
        if isinstance(value, Deferred):
            value = obj.__dict__[self.slot] = value.build()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class SimulationResult:
    """Per-second series of one simulation plus the scaling activities (see :meth:`frame`, :meth:`summary`)."""

    config: ScalingConfig
    service: ServiceModel
    start: float
    rate: np.ndarray  # requests/s, per second
    serving: np.ndarray  # instances taking traffic
    billed: np.ndarray = _OnFirstRead()  # instances billed (serving + launching + draining); may be a Deferred
    price_per_hour: float
    activities: Any = _OnFirstRead()  # DataFrame, oldest first (may be given as a Deferred)
    wall_seconds: float
    ticks: int
    meta: dict[str, Any] = field(default_factory=dict)
    #: The traffic's shared :class:`~catkit.whatif.simulate.tables.TrafficTables` when the run had
    #: them: the summary then reads per-count tables instead of recomputing per second.
    tables: TrafficTables | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its deferred fields built (a :class:`Deferred` holds a closure over the run)."""
        self.billed, self.activities  # noqa: B018 - reading builds them
        return self.__dict__

    @property
    def duration_s(self) -> int:
        return len(self.rate)

    @property
    def speed(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.duration_s / self.wall_seconds if self.wall_seconds > 0 else math.inf

    @property
    def per_instance_rps(self) -> np.ndarray:
        return self.rate / np.maximum(self.serving, 1)

    @property
    def overload(self) -> np.ndarray:
        """Requests per second beyond the serving instances' capacity."""
        return np.maximum(0.0, self.rate - self.serving * self.service.max_rps)

    def latency_ms(self, q: float = 0.99) -> np.ndarray:
        """Per-second latency quantile estimate (ms) from the service model."""
        lam = self.per_instance_rps
        grid = np.linspace(0.0, self.service.max_rps, 4097)
        table = self.service.latency_ms(grid[:-1], q)
        out = np.interp(lam, grid[:-1], table)
        return np.where(lam >= self.service.max_rps, self.service.timeout_ms, out)

    @property
    def cost_usd(self) -> float:
        return float(self.billed.sum()) * self.price_per_hour / 3600.0

    def scaling_events(self) -> Any:
        """Changes of the serving instance count: DataFrame (timestamp, t, instances)."""
        import pandas as pd

        idx = np.flatnonzero(np.diff(self.serving)) + 1
        return pd.DataFrame(
            {
                "timestamp": pd.to_datetime(self.start + idx, unit="s", utc=True),
                "t": idx.astype(float),
                "instances": self.serving[idx].astype(int),
            }
        )

    def slo_violation(self, slo_p99_ms: float) -> float:
        """Fraction of requests slower than ``slo_p99_ms``. Every request of a second in which the
        serving instances are at or beyond capacity counts as slow (the queue only grows then)."""
        w, lam = self._used_bins()
        total = w.sum()
        if total <= 0:
            return 0.0
        p = self.service.exceed_probability(lam, slo_p99_ms)
        return float((w * p).sum() / total)

    def p99_ms(self) -> float:
        """Request-weighted overall p99 latency estimate (ms)."""
        return self.latency_quantile(0.99)

    def latency_quantile(self, q: float) -> float:
        """Request-weighted latency quantile (ms) over the whole run.

        For ``q >= 0.9`` the tail of the mixture is solved exactly on the load histogram (the
        smallest x with P(latency > x) <= 1 - q); below that, the weighted median-style quantile
        of the per-load quantiles is used.
        """
        w, lam = self._used_bins()
        total = w.sum()
        if total <= 0:
            return float("nan")
        if q < 0.9:
            per_bin = self.service.latency_ms(np.minimum(lam, self.service.max_rps * 2), q)
            order = np.argsort(per_bin)
            cum = np.cumsum(w[order]) / total
            return float(per_bin[order][np.searchsorted(cum, q)])
        lo, hi = float(self.service.base_p99_ms or 0), float(self.service.timeout_ms)
        wait = self.service.wait_probability(lam)  # one load histogram, many thresholds
        if (w * self.service.exceed_probability(lam, hi * 0.999, wait)).sum() / total > 1 - q:
            return hi
        for _ in range(40):
            mid = (lo + hi) / 2
            if (w * self.service.exceed_probability(lam, mid, wait)).sum() / total > 1 - q:
                lo = mid
            else:
                hi = mid
        return hi

    def _load_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Requests per load level: (weights, per-instance rps of each bin).

        Linear bins up to 90 % utilisation, then bins uniform in ``-log10(1 - ρ)`` up to
        ``1 - 1e-7`` (the latency tail depends on the free capacity ``max_rps - λ``, so it needs
        relative resolution near saturation), then one bin for overload.
        """
        cached = self.meta.get("_hist")
        if cached is None:
            cached = self.meta["_hist"] = self._all_bins()
        return cached

    def _used_bins(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_load_histogram` without its empty bins (the estimates weigh bins by their
        requests: those add nothing but work)."""
        cached = self.meta.get("_used")
        if cached is None:
            w, centres = self._load_histogram()
            used = w > 0
            cached = self.meta["_used"] = (w[used], centres[used])
        return cached

    def _all_bins(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.service.max_rps
        lin, tail, u_max = HIST_LINEAR, HIST_TAIL, HIST_U_MAX
        if self._shared():
            # Per-count tables shared by every simulation of this traffic, taken segment by segment.
            starts, ends, counts = self._segments()
            w = self.tables.load_histogram(self.service, starts, ends, counts, lin + tail + 1)
        else:
            w = np.bincount(histogram_bins(self.per_instance_rps / m), weights=self.rate, minlength=lin + tail + 1)
        lin_centres = (np.arange(lin) + 0.5) / lin * 0.9
        tail_centres = 1.0 - 10.0 ** -(1.0 + (np.arange(tail) + 0.5) / tail * (u_max - 1.0))
        return w, np.concatenate((lin_centres, tail_centres, [2.0])) * m

    def _shared(self) -> bool:
        """Whether the run's shared per-traffic tables stand for its traffic."""
        return self.tables is not None and self.tables.rate is self.rate and len(self.rate) > 0

    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Runs of one serving count (starts, ends, counts), found once."""
        kept = self.meta.get("_segments")
        if kept is None or kept[0] is not self.serving:
            kept = self.meta["_segments"] = (self.serving, segments(self.serving))
        return kept[1]

    def summary(self, slo_p99_ms: float | None = None) -> dict[str, Any]:
        """Cost, instance hours, instances min/mean/max, overload, latency estimates, speed."""
        if self._shared():
            total = self.tables.total
            starts, ends, counts = self._segments()
            over = self.tables.overload_total(self.service.max_rps, starts, ends, counts)
            serving = {"instances_min": int(counts.min()),
                       "instances_mean": float((counts * (ends - starts)).sum()) / self.duration_s,
                       "instances_max": int(counts.max()), "scaling_events": len(starts) - 1}
        else:
            total = float(self.rate.sum())
            over = float(self.overload.sum())
            serving = {"instances_min": int(self.serving.min()), "instances_mean": float(self.serving.mean()),
                       "instances_max": int(self.serving.max()),
                       "scaling_events": int(np.count_nonzero(np.diff(self.serving)))}
        # Billed instance-seconds: from the run while ``billed`` is still the run's (not yet built).
        kept = self.meta.get("_billed")
        pending = isinstance(self.__dict__.get("_deferred_billed"), Deferred)
        billed = float(kept if kept is not None and pending else self.billed.sum())
        cost = billed * self.price_per_hour / 3600.0  # cost_usd's formula, billed summed once for both
        out: dict[str, Any] = {
            "config": self.config.label(),
            "days": self.duration_s / 86400.0,
            "requests": total,
            "cost_usd": cost,
            "cost_per_day_usd": cost / (self.duration_s / 86400.0),
            "instance_hours": billed / 3600.0,
            **serving,  # instances_min, instances_mean, instances_max, scaling_events
            "overload_requests": over,
            "overload_fraction": over / total if total else 0.0,
            "p50_ms": self.latency_quantile(0.5),
            "p99_ms": self.p99_ms(),
            "simulated_seconds_per_second": self.speed,
        }
        if slo_p99_ms is not None:
            v = self.slo_violation(slo_p99_ms)
            out["slo_p99_ms"] = slo_p99_ms
            out["slow_fraction"] = v
            out["meets_slo"] = v <= 0.01
        return out

    def frame(self, resolution_s: int = 60) -> Any:
        """DataFrame per ``resolution_s`` bucket, indexed by UTC time: rate_rps, instances (mean
        serving), billed, per_instance_rps, utilisation, p50_ms, p99_ms (max in bucket),
        overload_requests, cost_usd."""
        import pandas as pd

        n = self.duration_s
        k = max(1, int(resolution_s))
        m = n // k * k

        def agg(a: np.ndarray, how: str = "mean") -> np.ndarray:
            head = a[:m].reshape(-1, k)
            vals = getattr(head, how)(axis=1)
            if m < n:
                vals = np.append(vals, getattr(a[m:], how)())
            return vals

        lam = self.per_instance_rps
        p99 = self.latency_ms(0.99)
        p50 = self.latency_ms(0.5)
        idx = pd.to_datetime(self.start + np.arange(0, n, k), unit="s", utc=True)
        return pd.DataFrame(
            {
                "rate_rps": agg(self.rate),
                "instances": agg(self.serving.astype(np.float64)),
                "billed": agg(self.billed.astype(np.float64)),
                "per_instance_rps": agg(lam),
                "utilisation": agg(lam / self.service.max_rps),
                "p50_ms": agg(p50, "max"),
                "p99_ms": agg(p99, "max"),
                "overload_requests": agg(self.overload, "sum"),
                "cost_usd": agg(self.billed.astype(np.float64), "sum") * self.price_per_hour / 3600.0,
            },
            index=idx,
        )

    def plot(self, resolution_s: int = 60, slo_p99_ms: float | None = None, axes: Any = None) -> Any:
        """Three stacked panels: load and instances, latency p50/p99, cumulative cost."""
        import matplotlib.pyplot as plt

        f = self.frame(resolution_s)
        if axes is None:
            fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
        else:
            fig = axes[0].figure
        ax = axes[0]
        ax.plot(f.index, f["rate_rps"], color="tab:blue", lw=0.8, label="requests/s")
        ax.set_ylabel("requests/s")
        ax2 = ax.twinx()
        ax2.step(f.index, f["instances"], where="post", color="tab:red", label="instances")
        ax2.set_ylabel("instances")
        ax.set_title(self.config.label(), fontsize="small")
        axes[1].plot(f.index, f["p50_ms"], lw=0.8, label="p50")
        axes[1].plot(f.index, f["p99_ms"], lw=0.8, label="p99")
        if slo_p99_ms:
            axes[1].axhline(slo_p99_ms, color="grey", ls=":", label="SLO p99")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("latency (ms)")
        axes[1].legend(fontsize="small")
        axes[2].plot(f.index, f["cost_usd"].cumsum(), color="tab:green")
        axes[2].set_ylabel("cost (USD)")
        fig.tight_layout()
        return fig


