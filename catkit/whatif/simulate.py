"""Offline discrete-event simulator of an auto-scaled SageMaker variant, on the real scaling engine.

``simulate(traffic, config, service, duration_s=...)`` answers "what happens to latency and cost
under this traffic with these scaling settings?" in seconds: it drives
:class:`catkit.autoscaling.Engine` - the same engine the local backend runs, no re-implemented
rules - with the metrics a fleet under that traffic would emit, applies its decisions with a
provisioning delay, and returns per-second time series of instances, load per instance, latency
p50/p99 estimates (from the :class:`~catkit.whatif.calibrate.ServiceModel`), overload and cost.

How it runs (fast: 30 days at 1-second resolution take about a second):

* Traffic is a per-second array (requests/s) computed once with numpy from a
  :class:`catkit.whatif.load.Shape` (or given as an array).
* The fleet is piecewise constant: serving and billed instance counts change only when a scaling
  decision is applied or finishes, so their per-second arrays are filled segment by segment.
* The engine reads metrics through :class:`FleetMetrics`, a MetricReader that aggregates the
  per-second arrays on demand: ``Invocations`` and ``InvocationsPerInstance`` (each request counts
  ``1 / serving instances``, Sum per period; a period without traffic reads 0, as SageMaker emits
  zeros for auto-scaled variants), ``ConcurrentRequestsPerModel`` (mean in-flight per instance,
  Little's law on the service model) and ``CPUUtilization``.
* The engine is ticked on the local controller's 10-second grid, in the controller's order (engine
  tick, apply decisions, settle finished activities), but only at grid points where it can act:
  alarm evaluations (every minute; every 10 s with a high-resolution alarm), scheduled actions,
  bound changes and completions of capacity changes. Skipped ticks are provably no-ops.
* Applying a decision (UpdateEndpointWeightsAndCapacities semantics, like the local backend): the
  variant is ``Updating`` (the engine waits) until the change is done. Scale-out: new instances are
  billed from the decision (ASSUMPTION: AWS bills instances while they launch) and serve after
  ``provisioning_s``. Scale-in: removed instances stop taking traffic at once and are billed until
  ``termination_s`` later, when the variant is InService again.
* Overload: requests beyond ``serving × max_rps`` in a second are counted as overload (no backlog
  is carried over - on SageMaker they would queue and time out); their latency is the timeout.

Everything is deterministic. Times are epoch seconds; traffic time ``t = 0`` is ``start``
(default Monday 2024-01-01 00:00 UTC, so diurnal shapes and night schedules line up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catkit.autoscaling import AlarmBook, Engine
from catkit.autoscaling.config import (  # the policy vocabulary, re-exported here
    HIGH_RES_METRIC,
    INVOCATIONS_METRIC,
    SEED_CONFIG,
    NightSchedule,
    ScalingConfig,
)
from catkit.autoscaling.config import METRIC_ALIASES as METRIC_ALIASES
from catkit.autoscaling.schedule import Schedule
from catkit.instance_types import get_instance_type
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.shapes import Shape, as_shape

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
DEFAULT_START = 1_704_067_200.0  # Monday 2024-01-01 00:00:00 UTC
TICK_S = 10  # the local controller's engine cadence
DEFAULT_PROVISIONING_S = 240.0  # the local backend's default (catkit.local.fleet.instances)
DEFAULT_TERMINATION_S = 60.0  # ASSUMPTION: scale-in keeps the variant Updating about a minute
SM_NS = "AWS/SageMaker"
FILL_AHEAD_S = 3600  # per-second arrays are filled this far ahead of the reads in one vector op
INSTANCE_NS = "/aws/sagemaker/Endpoints"


# ====================================================================== the fleet
class FleetMetrics:
    """MetricReader over the fleet's per-second arrays (``MetricStore.statistics`` signature)."""

    def __init__(self, fleet: _Fleet) -> None:
        self.fleet = fleet

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
        f = self.fleet
        if dimensions != f.dims:
            return []
        kind = _METRICS.get((namespace, name))
        if kind is None:
            return []
        t0 = f.t0
        lo = start if start > t0 else t0
        hi = end if end < f.now else f.now
        if hi <= lo:
            return []
        f.fill_to(int(hi - t0))
        out = []
        b = (lo // period) * period
        while b < hi:
            i = int((b if b > lo else lo) - t0)
            j = int((b + period if b + period < hi else hi) - t0)
            if j > i:
                row = f.aggregate(kind, i, j, statistics)
                row["Timestamp"] = float(b)
                out.append(row)
            b += period
        return out


_METRICS = {
    (SM_NS, "Invocations"): "invocations",
    (SM_NS, "InvocationsPerInstance"): "per_instance",
    (SM_NS, "ConcurrentRequestsPerModel"): "concurrency",
    (INSTANCE_NS, "CPUUtilization"): "cpu",
}


class _Fleet:
    """Per-second state of one variant, filled segment by segment as the fleet changes.

    Cumulative sums (with a leading 0) make a period's Sum/Average O(1): ``cum_rate`` is static,
    the per-instance series are extended whenever the serving count array is filled.
    """

    def __init__(
        self,
        rate: np.ndarray,
        t0: float,
        dims: dict[str, str],
        service: ServiceModel,
        capacity: int,
        vcpu: int,
        concurrency_statistic: str = "mean",
    ) -> None:
        self.rate = rate
        self.t0 = t0
        self.dims = dims
        self.service = service
        self.vcpu = vcpu
        n = len(rate)
        self.serving = np.empty(n, dtype=np.int32)
        self.billed = np.empty(n, dtype=np.int32)
        self.filled = 0
        self.cur_serving = capacity
        self.cur_billed = capacity
        self.desired = capacity
        self.status = "InService"
        self.now = t0
        self.op: dict[str, Any] | None = None  # the running capacity change
        self.cum_rate = np.concatenate(([0.0], np.cumsum(rate)))
        self._cum: dict[str, np.ndarray] = {}  # kind -> cumulative per-second values (lazily)
        # Concurrency per instance versus load, as a lookup table (the Erlang C sum is per call).
        self._lam_grid = np.linspace(0.0, service.max_rps, 4097)
        if concurrency_statistic == "peak":
            conc = service.peak_concurrency(self._lam_grid[:-1])
        elif concurrency_statistic == "mean":
            conc = service.concurrency(self._lam_grid[:-1])
        else:
            raise ValueError(f"concurrency_statistic is 'mean' or 'peak', got {concurrency_statistic!r}")
        self._conc = np.append(conc, conc[-1])

    def fill_to(self, idx: int, ahead: int = FILL_AHEAD_S) -> None:
        """Make the arrays valid up to ``idx`` with the current state (filling ``ahead`` further
        in one go; :meth:`change` truncates that optimistic part when the state changes)."""
        if idx <= self.filled:
            return
        a = self.filled
        idx = min(len(self.rate), idx + ahead)
        self.serving[a:idx] = self.cur_serving
        self.billed[a:idx] = self.cur_billed
        for kind, cum in self._cum.items():
            vals = self._values(kind, self.rate[a:idx], self.cur_serving)
            cum[a + 1 : idx + 1] = cum[a] + np.cumsum(vals)
        self.filled = idx

    def change(self, idx: int, serving: int, billed: int) -> None:
        """From second ``idx`` on, ``serving`` instances take traffic and ``billed`` are billed."""
        if self.filled > idx:
            self.filled = idx
        else:
            self.fill_to(idx, ahead=0)
        self.cur_serving, self.cur_billed = serving, billed

    def _values(self, kind: str, r: np.ndarray, n: Any) -> np.ndarray:
        lam = r / n
        if kind == "per_instance":
            return lam
        if kind == "concurrency":
            v = np.interp(lam, self._lam_grid, self._conc)
            return np.where(lam >= self.service.max_rps, self._conc[-1], v)
        return 100.0 * self.vcpu * np.minimum(lam / self.service.max_rps, 1.0)  # cpu

    def _cumulative(self, kind: str) -> np.ndarray:
        cum = self._cum.get(kind)
        if cum is None:
            cum = np.zeros(len(self.rate) + 1)
            f = self.filled
            if f:
                cum[1 : f + 1] = np.cumsum(self._values(kind, self.rate[:f], self.serving[:f]))
            self._cum[kind] = cum
        return cum

    def at(self, ts: float) -> int:
        return max(0, min(len(self.rate), math.ceil(ts - self.t0)))

    def aggregate(self, kind: str, i: int, j: int, statistics: Sequence[str]) -> dict[str, float]:
        total = float(self.cum_rate[j] - self.cum_rate[i])
        out: dict[str, float] = {}
        if kind in ("invocations", "per_instance"):
            if total <= 0:  # SageMaker emits zeros for auto-scaled variants without traffic
                return {st: 0.0 if st != "SampleCount" else 1.0 for st in statistics}
            if kind == "invocations":
                s = total
            else:
                cum = self._cumulative(kind)
                s = float(cum[j] - cum[i])
            for st in statistics:
                if st == "Sum":
                    out[st] = s
                elif st == "SampleCount":
                    out[st] = total
                elif st == "Average":
                    out[st] = s / total
                elif st in ("Minimum", "Maximum"):
                    n = self.serving[i:j]
                    if kind == "invocations":
                        out[st] = 1.0
                    else:
                        out[st] = 1.0 / float(n.max() if st == "Minimum" else n.min())
                else:
                    raise ValueError(_UNSUPPORTED.format(st))
            return out
        cum = self._cumulative(kind)
        s = float(cum[j] - cum[i])
        for st in statistics:
            if st == "Sum":
                out[st] = s
            elif st == "SampleCount":
                out[st] = float(j - i)
            elif st == "Average":
                out[st] = s / (j - i)
            elif st in ("Minimum", "Maximum"):
                v = self._values(kind, self.rate[i:j], self.serving[i:j])
                out[st] = float(v.min() if st == "Minimum" else v.max())
            else:
                raise ValueError(_UNSUPPORTED.format(st))
        return out


_UNSUPPORTED = "the simulator's metrics support Sum, SampleCount, Average, Minimum and Maximum, not {!r}"


# ====================================================================== results
@dataclass
class SimulationResult:
    """Per-second series of one simulation plus the scaling activities (see :meth:`frame`, :meth:`summary`)."""

    config: ScalingConfig
    service: ServiceModel
    start: float
    rate: np.ndarray  # requests/s, per second
    serving: np.ndarray  # instances taking traffic
    billed: np.ndarray  # instances billed (serving + launching + draining)
    price_per_hour: float
    activities: Any  # DataFrame, oldest first
    wall_seconds: float
    ticks: int
    meta: dict[str, Any] = field(default_factory=dict)

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
        w, lam = self._load_histogram()
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
        w, lam = self._load_histogram()
        total = w.sum()
        if total <= 0:
            return float("nan")
        if q < 0.9:
            per_bin = self.service.latency_ms(np.minimum(lam, self.service.max_rps * 2), q)
            order = np.argsort(per_bin)
            cum = np.cumsum(w[order]) / total
            return float(per_bin[order][np.searchsorted(cum, q)])
        lo, hi = float(self.service.base_p99_ms or 0), float(self.service.timeout_ms)
        if (w * self.service.exceed_probability(lam, hi * 0.999)).sum() / total > 1 - q:
            return hi
        for _ in range(40):
            mid = (lo + hi) / 2
            if (w * self.service.exceed_probability(lam, mid)).sum() / total > 1 - q:
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
        if cached is not None:
            return cached
        m = self.service.max_rps
        rho = self.per_instance_rps / m
        lin, tail, u_max = 2048, 4096, 7.0
        with np.errstate(divide="ignore"):
            u = -np.log10(np.maximum(1.0 - rho, 1e-300))
        idx = np.where(
            rho < 0.9,
            (rho / 0.9 * lin).astype(np.int64),
            lin + np.minimum(((u - 1.0) / (u_max - 1.0) * tail).astype(np.int64), tail),
        )
        w = np.bincount(idx, weights=self.rate, minlength=lin + tail + 1)
        lin_centres = (np.arange(lin) + 0.5) / lin * 0.9
        tail_centres = 1.0 - 10.0 ** -(1.0 + (np.arange(tail) + 0.5) / tail * (u_max - 1.0))
        centres = np.concatenate((lin_centres, tail_centres, [2.0])) * m
        self.meta["_hist"] = (w, centres)
        return w, centres

    def summary(self, slo_p99_ms: float | None = None) -> dict[str, Any]:
        """Cost, instance hours, instances min/mean/max, overload, latency estimates, speed."""
        total = float(self.rate.sum())
        over = float(self.overload.sum())
        out: dict[str, Any] = {
            "config": self.config.label(),
            "days": self.duration_s / 86400.0,
            "requests": total,
            "cost_usd": self.cost_usd,
            "cost_per_day_usd": self.cost_usd / (self.duration_s / 86400.0),
            "instance_hours": float(self.billed.sum()) / 3600.0,
            "instances_min": int(self.serving.min()),
            "instances_mean": float(self.serving.mean()),
            "instances_max": int(self.serving.max()),
            "scaling_events": int(np.count_nonzero(np.diff(self.serving))),
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


# ====================================================================== the simulation
def traffic_array(traffic: Shape | float | Sequence[float] | np.ndarray, duration_s: float) -> np.ndarray:
    """Per-second rates for ``duration_s`` seconds from a shape, a constant or an array."""
    n = math.ceil(duration_s)
    if n < 60:
        raise ValueError(f"duration_s must be at least 60 seconds, got {duration_s}")
    if isinstance(traffic, Shape | int | float):
        return as_shape(traffic).per_second(n)
    arr = np.asarray(traffic, dtype=np.float64)
    if arr.ndim != 1 or len(arr) < n:
        raise ValueError(f"a traffic array needs one rate per second, at least {n} values; got shape {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError("traffic rates must be finite and >= 0")
    return arr[:n].copy()


def _initial_bounds(config: ScalingConfig, t0: float) -> tuple[int, int]:
    """Bounds in force at ``t0``: the scheduled action that ran last before it (within 8 days)."""
    if config.night is None:
        return config.min_capacity, config.max_capacity
    best: tuple[float, int, int] | None = None
    for a in config.night.actions(config.min_capacity, config.max_capacity):
        sched = Schedule(a["schedule"], a["timezone"])
        t = t0 - 8 * 86400
        last = None
        while True:
            nxt = sched.next_after(t)
            if nxt is None or nxt > t0:
                break
            last, t = nxt, nxt
        if last is not None and (best is None or last > best[0]):
            best = (last, a["min_capacity"], a["max_capacity"])
    if best is None:
        return config.min_capacity, config.max_capacity
    return best[1], best[2]


def simulate(
    traffic: Shape | float | Sequence[float] | np.ndarray,
    config: ScalingConfig = SEED_CONFIG,
    service: ServiceModel | None = None,
    *,
    duration_s: float,
    start: float = DEFAULT_START,
    initial_capacity: int | None = None,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    termination_s: float = DEFAULT_TERMINATION_S,
    instance_type: str | None = None,
    endpoint_name: str = "simulated",
    variant_name: str = "AllTraffic",
    concurrency_statistic: str = "mean",
    tick_every_grid_point: bool = False,
) -> SimulationResult:
    """Simulate ``duration_s`` seconds of ``traffic`` on a variant scaled by ``config``.

    ``traffic``: a :class:`catkit.whatif.load.Shape` (``t = 0`` at ``start``), a constant rate or an
    array of per-second rates. ``service``: the instance's :class:`ServiceModel` (default: 40
    req/s, 4 workers - replace with a calibration). ``initial_capacity``: instances at ``start``
    (default: MinCapacity in force then). ``concurrency_statistic``: what ConcurrentRequestsPerModel
    reads - ``"mean"`` in-flight requests per instance (Little's law) or ``"peak"``, the expected
    peak per 10-second sample, which is what the local backend records. ``tick_every_grid_point`` ticks the engine every 10 s
    like the local controller instead of only when it can act (same result, slower; for tests).
    Returns a :class:`SimulationResult`.
    """
    wall0 = time.perf_counter()
    service = service or ServiceModel(max_rps=40.0, workers=4, source="default (not calibrated)")
    itype = get_instance_type(instance_type or service.instance_type)
    if provisioning_s < 0 or termination_s < 0:
        raise ValueError("provisioning_s and termination_s are seconds >= 0")
    t0 = float(math.floor(start))
    rate = traffic_array(traffic, duration_s)
    t_end = t0 + len(rate)
    dims = {"EndpointName": endpoint_name, "VariantName": variant_name}
    rid = f"endpoint/{endpoint_name}/variant/{variant_name}"

    lo, hi = _initial_bounds(config, t0)
    cap = initial_capacity if initial_capacity is not None else lo
    if cap < 1:
        raise ValueError("initial_capacity must be >= 1")
    fleet = _Fleet(rate, t0, dims, service, int(cap), itype.vcpu, concurrency_statistic)
    reader = FleetMetrics(fleet)

    counter = iter(range(1, 1 << 62))
    engine = Engine(
        AlarmBook(),
        id_factory=lambda: f"00000000-0000-4000-8000-{next(counter):012d}",
        is_high_resolution=lambda ns, name, d: False,
    )
    engine.register_scalable_target(NAMESPACE, rid, DIMENSION, t0, min_capacity=lo, max_capacity=hi)
    result = engine.put_scaling_policy(
        "simulated-policy",
        NAMESPACE,
        rid,
        DIMENSION,
        t0,
        policy_type="TargetTrackingScaling",
        target_tracking_config=config.policy_configuration(),
    )
    eval_every = min((60 if s.period >= 60 else 10) for s in result.alarm_specs)
    if config.night is not None:
        for a in config.night.actions(config.min_capacity, config.max_capacity):
            engine.put_scheduled_action(
                a["name"], NAMESPACE, rid, DIMENSION, t0, schedule=a["schedule"], timezone=a["timezone"],
                min_capacity=a["min_capacity"], max_capacity=a["max_capacity"],
            )
    target = engine.targets[(NAMESPACE, rid, DIMENSION)]

    def current_capacity(resource_id: str) -> int | None:
        return fleet.desired if fleet.status == "InService" and resource_id == rid else None

    def grid_up(ts: float) -> float:
        return math.ceil(ts / TICK_S) * TICK_S

    ticks = 0
    now = grid_up(t0)
    while now < t_end:
        # Fleet events due by now (the end of a capacity change).
        op = fleet.op
        if op is not None and op["ready_at"] <= now:
            fleet.change(fleet.at(op["ready_at"]), op["serving"], op["billed"])
            fleet.status = "InService"
        fleet.now = now
        ticks += 1
        for d in engine.tick(now, reader, current_capacity):
            engine.accepted(d.activity_id, now)
            n = d.desired_capacity
            if n >= fleet.cur_serving:
                fleet.change(fleet.at(now), fleet.cur_serving, max(fleet.cur_billed, n))
                ready = now + provisioning_s
            else:
                fleet.change(fleet.at(now), n, fleet.cur_billed)
                ready = now + termination_s
            fleet.desired = n
            fleet.status = "Updating"
            fleet.op = {"activity": d.activity_id, "ready_at": ready, "serving": n, "billed": n}
        # Settle like the controller: complete the activity once the variant is InService again.
        op = fleet.op
        if op is not None and fleet.status == "InService":
            engine.complete(op["activity"], True, "", now)
            fleet.op = None
        # Next tick: the next alarm evaluation, scheduled action, change completion or bound change.
        nxt = (math.floor(now / eval_every) + 1) * eval_every
        if fleet.op is not None:
            nxt = min(nxt, max(grid_up(fleet.op["ready_at"]), now + TICK_S))
        if target.bounds_changed:
            nxt = now + TICK_S
        for action in engine.scheduled.values():
            if action.next_run is not None:
                nxt = min(nxt, max(grid_up(action.next_run), now + TICK_S))
        now = now + TICK_S if tick_every_grid_point else nxt
    # Close the last segment (a change still running keeps its state at the end).
    op = fleet.op
    if op is not None and op["ready_at"] < t_end:
        fleet.change(fleet.at(op["ready_at"]), op["serving"], op["billed"])
    fleet.fill_to(len(rate))

    activities = _activities_frame(engine, rid)
    return SimulationResult(
        config=config,
        service=service,
        start=t0,
        rate=rate,
        serving=fleet.serving,
        billed=fleet.billed,
        price_per_hour=itype.price_per_hour,
        activities=activities,
        wall_seconds=time.perf_counter() - wall0,
        ticks=ticks,
        meta={
            "instance_type": itype.name,
            "provisioning_s": provisioning_s,
            "termination_s": termination_s,
            "eval_every_s": eval_every,
            "alarms": [s.alarm_name for s in result.alarm_specs],
            "concurrency_statistic": concurrency_statistic,
        },
    )


def _activities_frame(engine: Engine, rid: str) -> Any:
    import pandas as pd

    rows = []
    for a in reversed(engine.describe_scaling_activities(NAMESPACE, resource_id=rid)):
        rows.append(
            {
                "start_time": a.start_time,
                "end_time": a.end_time,
                "status": a.status_code,
                "desired_capacity": a.desired_capacity,
                "previous_capacity": a.previous_capacity,
                "description": a.description,
                "cause": a.cause,
            }
        )
    cols = ["start_time", "end_time", "status", "desired_capacity", "previous_capacity", "description", "cause"]
    return pd.DataFrame(rows, columns=cols)


def compare_timelines(
    simulated: Sequence[tuple[float, int]], emulated: Sequence[tuple[float, int]]
) -> Any:
    """Pair capacity changes of two runs in order: DataFrame (capacity, simulated_t, emulated_t, diff_s).

    Each input is ``[(time, new instance count), ...]`` in time order (e.g. activity start
    times and desired capacities). Rows are matched by position; a missing event shows as NaN.
    """
    import pandas as pd

    n = max(len(simulated), len(emulated))
    rows = []
    for k in range(n):
        s = simulated[k] if k < len(simulated) else (math.nan, None)
        e = emulated[k] if k < len(emulated) else (math.nan, None)
        rows.append(
            {
                "event": k + 1,
                "simulated_capacity": s[1],
                "emulated_capacity": e[1],
                "simulated_t": s[0],
                "emulated_t": e[0],
                "diff_s": abs(s[0] - e[0]) if s[1] is not None and e[1] is not None else math.nan,
            }
        )
    return pd.DataFrame(rows)


def emulated_capacity_events(
    session: Any, endpoint: str, variant: str = "AllTraffic"
) -> list[tuple[float, int, float | None]]:
    """Successful capacity changes of a real or local variant, oldest first:
    ``[(start epoch s, new instance count, end epoch s or None), ...]`` from
    DescribeScalingActivities (the form :func:`compare_timelines` and :func:`plot_side_by_side` take)."""
    pages = session.autoscaling.get_paginator("describe_scaling_activities").paginate(
        ServiceNamespace=NAMESPACE, ResourceId=f"endpoint/{endpoint}/variant/{variant}", ScalableDimension=DIMENSION
    )
    out = []
    for page in pages:
        for a in page.get("ScalingActivities", []):
            words = a.get("Description", "").rstrip(".").split()
            if a.get("StatusCode") != "Successful" or not words or not words[-1].isdigit():
                continue
            if "instance count" not in a["Description"]:
                continue
            end = a.get("EndTime")
            out.append((_epoch(a["StartTime"]), int(words[-1]), _epoch(end) if end is not None else None))
    return sorted(out)


def _epoch(v: Any) -> float:
    return float(v.timestamp()) if hasattr(v, "timestamp") else float(v)


def simulated_capacity_events(result: SimulationResult) -> list[tuple[float, int, float | None]]:
    """The simulator's successful capacity changes in the same form as :func:`emulated_capacity_events`."""
    a = result.activities
    a = a[a["desired_capacity"].notna() & (a["status"] == "Successful")]
    return [
        (float(t), int(c), float(e) if e == e else None)
        for t, c, e in zip(a["start_time"], a["desired_capacity"], a["end_time"], strict=True)
    ]


def agreement(result: SimulationResult, emulated: Sequence[tuple[float, int, float | None]]) -> Any:
    """Scaling events of a simulation next to an emulated (or AWS) run: see :func:`compare_timelines`."""
    sim = [(t, c) for t, c, _ in simulated_capacity_events(result)]
    return compare_timelines(sim, [(t, c) for t, c, _ in emulated])


def plot_side_by_side(
    result: SimulationResult,
    emulated: Sequence[tuple[float, int, float | None]],
    initial_capacity: int,
    ax: Any = None,
    label: str = "local backend (emulated)",
) -> Any:
    """Instance counts over time: the simulator's serving instances and the emulated run's.

    Emulated instances change at an activity's end (scale-out: new instances in service) or start
    (scale-in: removed instances stop taking traffic at once)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    t = pd.to_datetime(result.start + np.arange(result.duration_s), unit="s", utc=True)
    ax.step(t, result.serving, where="post", label="simulator", lw=2, alpha=0.7)
    times, counts, cur = [result.start], [initial_capacity], initial_capacity
    for start, cap, end in emulated:
        at = end if cap > cur and end is not None else start
        times.append(at)
        counts.append(cap)
        cur = cap
    times.append(result.start + result.duration_s)
    counts.append(cur)
    ax.step(pd.to_datetime(times, unit="s", utc=True), counts, where="post", label=label, ls="--", lw=2)
    ax2 = ax.twinx()
    ax2.plot(t, result.rate, color="grey", lw=0.6, alpha=0.5)
    ax2.set_ylabel("requests/s", color="grey")
    ax.set_ylabel("instances")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title("Instance count: simulated vs emulated")
    return ax.figure


@dataclass
class Comparison:
    """A load run on a real or local endpoint next to the simulation of the same traffic
    (:func:`compare_with_endpoint`): ``table`` pairs the scaling events, :meth:`plot` draws both."""

    simulated: SimulationResult
    emulated: list[tuple[float, int, float | None]]
    load: Any  # catkit.whatif.load.LoadResult
    table: Any
    initial_capacity: int

    @property
    def max_diff_s(self) -> float:
        """Largest decision-time difference over the paired events (NaN when counts differ)."""
        d = self.table["diff_s"]
        return float(d.max()) if len(d) and d.notna().all() else math.nan

    def plot(self, ax: Any = None) -> Any:
        return plot_side_by_side(self.simulated, self.emulated, self.initial_capacity, ax=ax)


def compare_with_endpoint(
    session: Any,
    endpoint: str,
    traffic: Shape | float,
    config: ScalingConfig,
    *,
    duration_s: float,
    service: ServiceModel | None = None,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    termination_s: float = DEFAULT_TERMINATION_S,
    variant: str = "AllTraffic",
    apply: bool = True,
    concurrency_statistic: str = "peak",
    **load_kwargs: Any,
) -> Comparison:
    """Apply ``config`` to ``endpoint`` (unless ``apply=False``), drive it with ``traffic`` through
    :func:`catkit.whatif.load.run_load` (time scale "auto" on the local backend), then simulate the same
    traffic from the same start with the same settings and pair the scaling events.

    ``provisioning_s``: how long an instance launch takes there (emulated seconds locally; measure
    it, e.g. an endpoint's CreationTime -> InService). ``service`` matters for latency only; by
    default a large instance that never saturates. ``concurrency_statistic`` defaults to "peak", the
    way the local backend samples ConcurrentRequestsPerModel. Extra keywords go to ``run_load``.
    """
    from catkit.whatif import load as load_mod

    desc = session.sagemaker.describe_endpoint(EndpointName=endpoint)
    variants = {v["VariantName"]: v for v in desc.get("ProductionVariants", [])}
    if variant not in variants:
        raise ValueError(f"endpoint {endpoint} has no variant {variant!r}; it has {sorted(variants)}")
    initial = int(variants[variant].get("CurrentInstanceCount") or 1)
    if apply:
        config.apply(session, endpoint, variant)
    load_kwargs.setdefault("progress", False)
    res = load_mod.run_load(session, endpoint, traffic, duration_s=duration_s, **load_kwargs)
    emulated = [e for e in emulated_capacity_events(session, endpoint, variant) if e[0] >= res.start_timestamp - 1]
    sim = simulate(
        traffic,
        config,
        service or ServiceModel(max_rps=1e6, workers=1024, source="never saturates (comparison default)"),
        duration_s=duration_s,
        start=res.start_timestamp,
        initial_capacity=initial,
        provisioning_s=provisioning_s,
        termination_s=termination_s,
        endpoint_name=endpoint,
        variant_name=variant,
        concurrency_statistic=concurrency_statistic,
    )
    return Comparison(sim, emulated, res, agreement(sim, emulated), initial)


__all__ = [
    "DEFAULT_START",
    "HIGH_RES_METRIC",
    "INVOCATIONS_METRIC",
    "SEED_CONFIG",
    "Comparison",
    "FleetMetrics",
    "NightSchedule",
    "ScalingConfig",
    "SimulationResult",
    "agreement",
    "compare_timelines",
    "compare_with_endpoint",
    "emulated_capacity_events",
    "plot_side_by_side",
    "simulate",
    "simulated_capacity_events",
    "traffic_array",
]
