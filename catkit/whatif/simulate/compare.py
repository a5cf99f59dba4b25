"""Simulation next to a real or local endpoint: paired scaling events, side-by-side plots.

:func:`compare_with_endpoint` drives an endpoint with :func:`catkit.whatif.load.run_load`, then
simulates the same traffic from the same start with the same settings; :func:`agreement` /
:func:`compare_timelines` pair the scaling events of both runs and :func:`plot_side_by_side`
draws both instance timelines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from catkit.autoscaling.config import ScalingConfig
from catkit.names import scalable_target_key
from catkit.timeconv import to_epoch, to_epoch_or_none
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.shapes import Shape
from catkit.whatif.simulate.result import SimulationResult
from catkit.whatif.simulate.run import DEFAULT_PROVISIONING_S, DEFAULT_TERMINATION_S, simulate


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
        **scalable_target_key(endpoint, variant)
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
            out.append((to_epoch(a["StartTime"]), int(words[-1]), to_epoch_or_none(end)))
    return sorted(out)


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


def observed_traffic(result: Any, duration_s: float) -> np.ndarray:
    """Requests per second of a load run (:class:`catkit.whatif.load.LoadResult`) as the endpoint
    recorded them: each request at its planned time plus how late it was sent plus its latency
    (both real milliseconds, times the run's time scale), counted per emulated second."""
    f = result.frame
    n = math.ceil(duration_s)
    if len(f) == 0:
        return np.zeros(n)
    late_s = (f["sent_delay_ms"].to_numpy(float) + np.nan_to_num(f["latency_ms"].to_numpy(float))) / 1000.0
    seconds = np.floor(f["time"].to_numpy(float) + late_s * result.time_scale).astype(np.int64)
    return np.bincount(np.clip(seconds, 0, n - 1), minlength=n)[:n].astype(float)


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
    simulate_traffic: str = "observed",
    **load_kwargs: Any,
) -> Comparison:
    """Apply ``config`` to ``endpoint`` (unless ``apply=False``), drive it with ``traffic`` through
    :func:`catkit.whatif.load.run_load` (time scale "auto" on the local backend), then simulate the same
    traffic from the same start with the same settings and pair the scaling events.

    ``provisioning_s``: how long an instance launch takes there (emulated seconds locally; measure
    it, e.g. an endpoint's CreationTime -> InService). ``service`` matters for latency only; by
    default a large instance that never saturates. ``concurrency_statistic`` defaults to "peak", the
    way the local backend samples ConcurrentRequestsPerModel. ``simulate_traffic``: "observed"
    (default) simulates the requests as the endpoint received them - the plan moved by how late each
    left the load generator and how long it took - so a busy client machine does not show up as a
    simulator error; "planned" simulates ``traffic`` itself. Extra keywords go to ``run_load``.
    """
    if simulate_traffic not in ("observed", "planned"):
        raise ValueError(f"simulate_traffic is 'observed' or 'planned', got {simulate_traffic!r}")
    from catkit.scaling import apply_config
    from catkit.whatif import load as load_mod

    desc = session.sagemaker.describe_endpoint(EndpointName=endpoint)
    variants = {v["VariantName"]: v for v in desc.get("ProductionVariants", [])}
    if variant not in variants:
        raise ValueError(f"endpoint {endpoint} has no variant {variant!r}; it has {sorted(variants)}")
    initial = int(variants[variant].get("CurrentInstanceCount") or 1)
    if apply:
        apply_config(session, endpoint, config, variant)
    load_kwargs.setdefault("progress", False)
    res = load_mod.run_load(session, endpoint, traffic, duration_s=duration_s, **load_kwargs)
    emulated = [e for e in emulated_capacity_events(session, endpoint, variant) if e[0] >= res.start_timestamp - 1]
    sim = simulate(
        observed_traffic(res, duration_s) if simulate_traffic == "observed" else traffic,
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


