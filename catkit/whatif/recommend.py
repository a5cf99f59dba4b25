"""Scaling recommendation: sweep scaling settings through the simulator, rank by cost under an SLO.

:func:`recommend_scaling` answers "which target value, cooldowns, minimum capacity, metric and
night schedule serve my traffic within a p99 latency SLO for the least money?". It builds a grid
of :class:`~catkit.autoscaling.config.ScalingConfig` candidates (the :class:`SearchSpace`), simulates each on the same traffic (in
parallel for big grids, through joblib: local processes by default, a Dask or Ray cluster inside
``joblib.parallel_config(backend="dask")`` / ``"ray"``), and returns a :class:`Recommendation`: a table ranked by cost
among the settings that meet the SLO (at most ``max_slow_fraction`` of requests slower than
``slo_p99_ms``, overload counted as slow), a plot, and the winner as ready-to-send
``put_scaling_policy`` / ``register_scalable_target`` / ``put_scheduled_action`` arguments.

Target values come from the service model, the way AWS's load-testing guidance picks them: a
fraction (e.g. 40/50/70 %) of one instance's saturation throughput, times 60 for
SageMakerVariantInvocationsPerInstance; for the high-resolution ConcurrentRequestsPerModel metric
the mean concurrency at that utilisation.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catkit.autoscaling.config import INVOCATIONS_METRIC, METRIC_ALIASES, NightSchedule, ScalingConfig
from catkit.names import DEFAULT_VARIANT
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.shapes import Shape
from catkit.whatif.simulate import (
    DEFAULT_PROVISIONING_S,
    DEFAULT_START,
    DEFAULT_TERMINATION_S,
    SimulationResult,
    simulate,
    traffic_array,
)
from catkit.whatif.simulate.tables import TrafficTables

DEFAULT_FRACTIONS = (0.4, 0.5, 0.7)  # AWS optimize-endpoint-scaling example: 40/50/70 % of saturation
HA_MIN = 2  # AWS: at least two instances for high availability

COLUMNS = [
    "rank",
    "meets_slo",
    "metric",
    "target_value",
    "target_utilisation",
    "min_capacity",
    "max_capacity",
    "scale_out_cooldown",
    "scale_in_cooldown",
    "night_min",
    "cost_usd",
    "cost_per_day_usd",
    "instances_mean",
    "instances_max",
    "slow_fraction",
    "p99_ms",
    "overload_fraction",
    "scaling_events",
    "highly_available",
]


@dataclass(frozen=True)
class SearchSpace:
    """The scaling settings :func:`recommend_scaling` sweeps (keywords of both
    :func:`recommend_scaling` and :func:`candidate_configs`).

    Target utilisations ``target_fractions`` x ``metrics`` ("invocations" = 1-minute,
    "high_resolution" = 10-second) x ``min_capacities`` x cooldowns x (no schedule, a night
    schedule that drops MinCapacity from ``night_hours[0]`` to ``night_hours[1]`` on weekdays and
    all weekend, when ``night``). ``require_ha`` keeps at least two instances at all times.
    """

    target_fractions: Sequence[float] = DEFAULT_FRACTIONS
    metrics: Sequence[str] = ("invocations", "high_resolution")
    min_capacities: Sequence[int] = (1, 2, 3)
    max_capacity: int = 10
    scale_out_cooldowns: Sequence[int] = (60, 300)
    scale_in_cooldowns: Sequence[int] = (300, 900)
    night: bool = True
    night_hours: tuple[int, int] = (20, 7)
    require_ha: bool = True

    def configs(self, service: ServiceModel, concurrency_statistic: str = "mean") -> list[tuple[ScalingConfig, float]]:
        """The grid: ``(config, target utilisation)`` pairs, target values from ``service``."""
        lowest = HA_MIN if self.require_ha else 1
        mins = sorted({m for m in self.min_capacities if lowest <= m <= self.max_capacity})
        if not mins:
            raise ValueError(
                f"no minimum capacity left to try: min_capacities={list(self.min_capacities)}, "
                f"require_ha={self.require_ha} (needs >= {HA_MIN}), max_capacity={self.max_capacity}"
            )
        out: list[tuple[ScalingConfig, float]] = []
        for metric in self.metrics:
            for frac in self.target_fractions:
                if not 0 < frac < 1:
                    raise ValueError(f"target fractions are utilisations in (0, 1), got {frac}")
                if METRIC_ALIASES.get(metric) == INVOCATIONS_METRIC:
                    tv = service.invocations_target(frac)
                else:
                    tv = service.concurrency_target(frac, concurrency_statistic)
                for lo in mins:
                    nights: list[NightSchedule | None] = [None]
                    if self.night and lo > lowest:
                        start, end = self.night_hours
                        nights.append(NightSchedule(night_min=lowest, night_starts_hour=start, day_starts_hour=end))
                    for out_cd in self.scale_out_cooldowns:
                        for in_cd in self.scale_in_cooldowns:
                            for ns in nights:
                                cfg = ScalingConfig(
                                    min_capacity=lo,
                                    max_capacity=self.max_capacity,
                                    target_value=round(float(tv), 3),
                                    metric=metric,
                                    scale_out_cooldown=int(out_cd),
                                    scale_in_cooldown=int(in_cd),
                                    night=ns,
                                )
                                out.append((cfg, float(frac)))
        return out


def candidate_configs(
    service: ServiceModel, *, concurrency_statistic: str = "mean", **space: Any
) -> list[tuple[ScalingConfig, float]]:
    """The grid: ``(config, target utilisation)`` pairs for the :class:`SearchSpace` given by
    ``space`` keywords; see :func:`recommend_scaling`."""
    return SearchSpace(**space).configs(service, concurrency_statistic)


@dataclass
class _Job:
    rate: np.ndarray
    service: ServiceModel
    start: float
    provisioning_s: float
    termination_s: float
    slo_p99_ms: float
    concurrency_statistic: str = "mean"
    #: Names the traffic: a worker keeps the tables of the last traffic it saw (see _worker_tables).
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


#: The worker process's per-traffic tables: (job key, tables). One traffic at a time, so a worker
#: running many chunks of one sweep builds them once; the next sweep replaces them.
_WORKER_TABLES: tuple[str, TrafficTables] | None = None


def _worker_tables(job: _Job) -> TrafficTables:
    global _WORKER_TABLES
    if _WORKER_TABLES is None or _WORKER_TABLES[0] != job.key:
        _WORKER_TABLES = None  # let the old tables go before building the new ones
        # Tables of a copy: joblib hands a large ``rate`` to its workers as a memory map of a file it
        # deletes when the sweep ends, waiting (1 s, joblib.disk.delete_folder's retries) while a
        # worker still maps it - as tables kept across chunks would.
        rate = np.array(job.rate)
        rate.flags.writeable = False
        _WORKER_TABLES = (job.key, TrafficTables(rate))
    return _WORKER_TABLES[1]


def _row(res: SimulationResult, frac: float, slo: float, max_slow: float) -> dict[str, Any]:
    s = res.summary(slo)
    c = res.config
    return {
        "meets_slo": bool(s["slow_fraction"] <= max_slow),
        "metric": "high_resolution" if c.high_resolution else "invocations",
        "target_value": c.target_value,
        "target_utilisation": frac,
        "min_capacity": c.min_capacity,
        "max_capacity": c.max_capacity,
        "scale_out_cooldown": c.scale_out_cooldown,
        "scale_in_cooldown": c.scale_in_cooldown,
        "night_min": c.night.night_min if c.night else None,
        "cost_usd": s["cost_usd"],
        "cost_per_day_usd": s["cost_per_day_usd"],
        "instances_mean": s["instances_mean"],
        "instances_max": s["instances_max"],
        "slow_fraction": s["slow_fraction"],
        "p99_ms": s["p99_ms"],
        "overload_fraction": s["overload_fraction"],
        "scaling_events": s["scaling_events"],
        "highly_available": c.lowest_capacity >= HA_MIN,
        "_wall_s": res.wall_seconds,
    }


def _parallelism(processes: int | None, settings: int) -> tuple[int, str]:
    """``n_jobs`` for the sweep and the name of the joblib backend that will run it.

    ``processes`` given: that. Otherwise the ``n_jobs`` of an active ``joblib.parallel_config``
    (e.g. ``-1`` = every worker of a Dask cluster), else the single-machine default: up to 4 worker
    processes for grids of 16+ settings, in-process below that.
    """
    from joblib.parallel import get_active_backend

    backend, context_jobs = get_active_backend()
    if processes is None:
        if context_jobs is not None:
            processes = int(context_jobs)
        else:
            processes = min(4, os.cpu_count() or 1) if settings >= 16 else 1
    if processes == 0:
        raise ValueError("processes must not be 0 (1 = in this process, -1 = all of joblib's workers)")
    return processes, ("in-process" if processes == 1 else type(backend).__name__)


def _chunks(items: list, workers: int) -> list[list]:
    """Chunks of the sweep for ``workers`` processes: ``workers * 8`` interleaved sets of settings
    (every kind in each); the last quarter of them cut into pieces of at most 8 settings, run last,
    the last ``2 * workers`` of those in pairs (a worker then waits at most ~2 runs for the other)."""
    n_sets = min(len(items), workers * 8)
    sets = [items[i::n_sets] for i in range(n_sets)]
    whole = n_sets - n_sets // 4
    pieces = [s[j : j + 8] for s in sets[whole:] for j in range(0, len(s), 8)]
    cut = max(0, len(pieces) - 2 * workers)
    return sets[:whole] + pieces[:cut] + [p[j : j + 2] for p in pieces[cut:] for j in range(0, len(p), 2)]


def _run_chunk(
    job: _Job, items: list[tuple[int, ScalingConfig, float]], max_slow: float, tables: TrafficTables | None = None
) -> list[tuple[int, dict]]:
    # What depends on the traffic and the instance count only: once per sweep (in-process) or per
    # worker process (kept across the chunks it runs).
    tables = tables if tables is not None else _worker_tables(job)
    out = []
    for k, cfg, frac in items:
        res = simulate(
            None,
            cfg,
            job.service,
            duration_s=len(job.rate),
            start=job.start,
            provisioning_s=job.provisioning_s,
            termination_s=job.termination_s,
            concurrency_statistic=job.concurrency_statistic,
            tables=tables,
        )
        out.append((k, _row(res, frac, job.slo_p99_ms, max_slow)))
        tables.recycle(res.serving)  # only the row is kept: the next run fills it again (billed: never built)
    return out


@dataclass
class Recommendation:
    """Outcome of :func:`recommend_scaling`: the ranked ``table``, the ``best`` config (None when
    nothing meets the SLO) and its simulation ``best_result``; ``baseline`` compares a given
    config (e.g. the seed's) on the same traffic."""

    table: Any
    best: ScalingConfig | None
    best_result: SimulationResult | None
    slo_p99_ms: float
    configs: list[ScalingConfig]
    baseline: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def _need_best(self) -> ScalingConfig:
        if self.best is None:
            raise LookupError(
                f"no setting met the SLO (p99 <= {self.slo_p99_ms} ms); raise max_capacity, try lower target "
                "fractions, a larger instance type, or a looser SLO - see .table for how close each came"
            )
        return self.best

    def put_scaling_policy_args(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        """``application-autoscaling`` ``put_scaling_policy(**args)`` for the winner."""
        return self._need_best().put_scaling_policy_args(endpoint, variant)

    def register_scalable_target_args(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        return self._need_best().register_scalable_target_args(endpoint, variant)

    def put_scheduled_action_args(self, endpoint: str, variant: str = DEFAULT_VARIANT) -> list[dict[str, Any]]:
        return self._need_best().put_scheduled_action_args(endpoint, variant)

    def apply(self, session: Any, endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, Any]:
        """Register the target, put the policy and the scheduled actions of the winner
        (:func:`catkit.scaling.apply_config`)."""
        from catkit.scaling import apply_config  # the AWS helpers (boto3) only when applying

        return apply_config(session, endpoint, self._need_best(), variant)

    def top(self, n: int = 10) -> Any:
        return self.table.head(n)

    def plot(self, ax: Any = None) -> Any:
        """Cost versus share of slow requests for every setting; the winner starred."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        t = self.table
        for metric, marker in (("invocations", "o"), ("high_resolution", "^")):
            for ok, color in ((True, "tab:green"), (False, "tab:red")):
                sel = t[(t["metric"] == metric) & (t["meets_slo"] == ok)]
                if len(sel):
                    ax.scatter(
                        sel["cost_per_day_usd"],
                        sel["slow_fraction"] * 100,
                        marker=marker,
                        color=color,
                        alpha=0.6,
                        label=f"{metric}, {'meets' if ok else 'misses'} SLO",
                    )
        max_slow = self.meta.get("max_slow_fraction", 0.01)
        ax.axhline(max_slow * 100, color="grey", ls=":", label=f"SLO: {max_slow:.0%} slower than {self.slo_p99_ms:g} ms")
        if self.best is not None and len(t):
            w = t.iloc[0]
            ax.scatter([w["cost_per_day_usd"]], [w["slow_fraction"] * 100], marker="*", s=300, color="gold",
                       edgecolor="black", zorder=5, label="recommended")
        if self.baseline:
            ax.scatter([self.baseline["cost_per_day_usd"]], [self.baseline["slow_fraction"] * 100], marker="X",
                       s=120, color="black", zorder=5, label="baseline")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_xlabel("cost per day (USD)")
        ax.set_ylabel(f"% requests slower than {self.slo_p99_ms:g} ms")
        ax.set_title("Scaling settings: cost vs latency")
        ax.legend(fontsize="x-small")
        return ax.figure

    def _repr_html_(self) -> str:
        head = f"<p><b>Recommended:</b> {self.best.label() if self.best else 'none meets the SLO'}</p>"
        return head + self.table.head(10).to_html()

    def __repr__(self) -> str:
        best = self.best.label() if self.best else "none meets the SLO"
        return f"Recommendation({len(self.table)} settings, best: {best})"


def recommend_scaling(
    traffic: Shape | float | Sequence[float] | np.ndarray,
    service_model: ServiceModel,
    slo_p99_ms: float,
    *,
    duration_s: float | None = None,
    max_slow_fraction: float = 0.01,
    baseline: ScalingConfig | None = None,
    start: float = DEFAULT_START,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    termination_s: float = DEFAULT_TERMINATION_S,
    processes: int | None = None,
    progress: bool = True,
    concurrency_statistic: str = "mean",
    **space: Any,
) -> Recommendation:
    """Sweep scaling settings on ``traffic`` and rank them by cost among those meeting the SLO.

    ``traffic``: a :class:`catkit.whatif.load.Shape` (then ``duration_s`` is required; a week covers
    weekends for night schedules) or per-second rates. ``service_model``: one instance's
    :class:`ServiceModel` (from :func:`catkit.whatif.calibrate.calibrate`). The SLO holds when at most
    ``max_slow_fraction`` (1 %) of requests are slower than ``slo_p99_ms``, overload counted as
    slow. The grid (``space`` keywords, the fields of :class:`SearchSpace`): target utilisations
    ``target_fractions`` x ``metrics`` ("invocations" = 1-minute, "high_resolution" = 10-second)
    x ``min_capacities`` (up to ``max_capacity``) x ``scale_out_cooldowns`` x
    ``scale_in_cooldowns`` x (no schedule, a night schedule that drops MinCapacity from
    ``night_hours[0]`` to ``night_hours[1]`` on weekdays and all weekend, when ``night``).
    ``require_ha`` keeps at least two instances at all times (AWS's availability guidance).
    ``baseline`` (e.g. :data:`catkit.autoscaling.config.SEED_CONFIG`) is simulated
    too and reported in ``.baseline``. ``processes``: joblib ``n_jobs`` for the sweep (default: the
    ``n_jobs`` of an active ``joblib.parallel_config``, else up to 4 local worker processes for grids
    of 16+ settings and none below); the sweep runs on joblib's active backend, so
    ``with joblib.parallel_config(backend="dask", n_jobs=-1): recommend_scaling(...)`` spreads it over
    a Dask cluster (Ray: ``ray.util.joblib.register_ray()`` and ``backend="ray"``);
    ``.meta["joblib_backend"]`` says which ran it; each worker builds the per-traffic tables
    (:class:`~catkit.whatif.simulate.tables.TrafficTables`) once and keeps them for all its chunks. ``concurrency_statistic`` ("mean" or "peak", see
    :func:`catkit.whatif.simulate.simulate`) sets how ConcurrentRequestsPerModel reads and so the
    high-resolution target values; it stays "mean" here (simulate's default is "peak", what the local
    backend samples) because the grid's targets come from one instance's queue, while a window peak
    per instance falls as instances are added behind least-outstanding routing, so a peak target at
    a given utilisation does not mean that utilisation. Returns a :class:`Recommendation`.
    """
    if not slo_p99_ms > 0:
        raise ValueError(f"slo_p99_ms must be > 0, got {slo_p99_ms}")
    if not 0 <= max_slow_fraction < 1:
        raise ValueError("max_slow_fraction is a fraction in [0, 1)")
    if isinstance(traffic, Shape | int | float) and duration_s is None:
        raise ValueError("duration_s is required when traffic is a shape (e.g. 7 * 86400 for a week)")
    n = duration_s if duration_s is not None else len(np.asarray(traffic))
    rate = traffic_array(traffic, n)
    grid = SearchSpace(**space).configs(service_model, concurrency_statistic)
    job = _Job(rate, service_model, start, provisioning_s, termination_s, float(slo_p99_ms), concurrency_statistic)
    items = [(k, cfg, frac) for k, (cfg, frac) in enumerate(grid)]
    processes, backend_name = _parallelism(processes, len(items))
    rows: dict[int, dict] = {}
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc="simulating settings", unit="run")
        except ImportError:
            bar = None
    if processes == 1:
        tables = TrafficTables(job.rate)
        for item in items:
            for k, row in _run_chunk(job, [item], max_slow_fraction, tables):
                rows[k] = row
            if bar is not None:
                bar.update(1)
    else:
        import joblib

        workers = max(1, joblib.effective_n_jobs(processes))
        # Many chunks (progress, and no worker idles long at the end) of every kind of setting each:
        # taken with a stride, as neighbouring settings of the grid cost alike (one metric, one minimum).
        # The first chunk a worker runs so builds most of its tables (TrafficTables, their memo of
        # alarm lookups): loky measures a worker's memory after its first task and replaces a worker
        # that grows by 300 MB more, which chunks of a few targets each (tables built later) did.
        # The last sets go in small pieces at the end, so that the workers finish together.
        chunks = _chunks(items, workers)
        # Whatever joblib backend is active runs the chunks: loky processes here by default, a Dask
        # or Ray cluster inside `joblib.parallel_config(backend="dask")` / "ray".
        results = joblib.Parallel(n_jobs=processes, return_as="generator")(
            joblib.delayed(_run_chunk)(job, chunk, max_slow_fraction) for chunk in chunks
        )
        for done in results:
            for k, row in done:
                rows[k] = row
            if bar is not None:
                bar.update(len(done))
        global _WORKER_TABLES
        if _WORKER_TABLES is not None and _WORKER_TABLES[0] == job.key:
            _WORKER_TABLES = None  # a backend of threads ran the chunks here: do not hold the tables on
    if bar is not None:
        bar.close()

    import pandas as pd

    table = pd.DataFrame([rows[k] for k in sorted(rows)])
    wall = float(table.pop("_wall_s").sum())
    table["_cfg"] = range(len(table))
    table = table.sort_values(
        ["meets_slo", "cost_usd", "slow_fraction", "instances_max"], ascending=[False, True, True, True], kind="stable"
    ).reset_index(drop=True)
    table.insert(0, "rank", [i + 1 if ok else None for i, ok in enumerate(table["meets_slo"])])
    table["rank"] = table["rank"].astype("Int64")
    order = table.pop("_cfg").tolist()
    configs = [grid[k][0] for k in order]
    table = table[COLUMNS]

    best = configs[0] if len(table) and bool(table.iloc[0]["meets_slo"]) else None
    best_result = None
    if best is not None:
        best_result = simulate(rate, best, service_model, duration_s=len(rate), start=start,
                               provisioning_s=provisioning_s, termination_s=termination_s,
                               concurrency_statistic=concurrency_statistic)
    base = None
    if baseline is not None:
        res = simulate(rate, baseline, service_model, duration_s=len(rate), start=start,
                       provisioning_s=provisioning_s, termination_s=termination_s,
                       concurrency_statistic=concurrency_statistic)
        base = {"config": baseline.label(), **_row(res, math.nan, float(slo_p99_ms), max_slow_fraction)}
        base.pop("_wall_s", None)
        if best is not None:
            base["savings_per_day_usd"] = base["cost_per_day_usd"] - float(table.iloc[0]["cost_per_day_usd"])
    return Recommendation(
        table=table,
        best=best,
        best_result=best_result,
        slo_p99_ms=float(slo_p99_ms),
        configs=configs,
        baseline=base,
        meta={
            "max_slow_fraction": max_slow_fraction,
            "settings": len(table),
            "simulated_days_each": len(rate) / 86400.0,
            "simulation_cpu_seconds": wall,
            "processes": processes,
            "joblib_backend": backend_name,
        },
    )
