"""Matplotlib figures for notebooks: instances vs load with scaling activities, latency, cost,
the live fleet chart of :class:`catkit.notebook.monitor.LiveMonitor`, pictures; and
:func:`show_and_save`, the one way a notebook shows a figure.

Each ``plot_*`` function takes the DataFrames the other helpers return (tidy metrics from
:mod:`catkit.metrics`, activities from :func:`catkit.scaling.scaling_activities`, an
:class:`catkit.cost.EndpointCost`) and returns a ``matplotlib.figure.Figure`` without showing it,
so they work headless (Agg) too. ``show_and_save(fig, out / "name.png")`` writes the PNG and
displays the same image inline (an ``image/png`` output, kept by papermill and the HTML export).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from catkit.names import DEFAULT_VARIANT

LATENCY_STATS = ("p50", "p90", "p99")


def _figure(ax: Any = None, figsize: tuple[float, float] = (10, 4)) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def new_axes(figsize: tuple[float, float] = (9, 3.5)) -> tuple[Any, Any]:
    """``fig, ax`` for a figure of your own: not managed by pyplot, so only :func:`show_and_save`
    shows it (no second copy from the inline backend)."""
    return _figure(None, figsize)


def _series(metrics: Any, metric: str, stat: str) -> Any:
    rows = metrics[(metrics["metric"] == metric) & (metrics["stat"] == stat)]
    return rows.groupby("timestamp")["value"].sum().sort_index()


def instance_counts(metrics: Any, activities: Any = None, initial: int | None = None) -> Any:
    """Instance count over time as a Series indexed by timestamp.

    With ``activities`` (successful, with ``desired_capacity``) and ``initial``: a step series
    starting at the first metric timestamp. Otherwise derived from the metrics:
    ``Invocations:Sum / InvocationsPerInstance:Sum`` per period (only periods with traffic).
    """
    import pandas as pd

    if activities is not None and initial is not None and not activities.empty:
        done = activities[(activities["status"] == "Successful") & activities["desired_capacity"].notna()]
        when = done["end_time"].fillna(done["start_time"])
        steps = pd.Series(done["desired_capacity"].astype(int).to_numpy(), index=pd.DatetimeIndex(when))
        start = metrics["timestamp"].min() if not metrics.empty else (when.min() if len(when) else None)
        if start is not None and not pd.isna(start):
            steps = pd.concat([pd.Series([initial], index=pd.DatetimeIndex([start])), steps])
        return steps.sort_index()
    inv = _series(metrics, "Invocations", "Sum")
    per = _series(metrics, "InvocationsPerInstance", "Sum")
    joined = pd.concat([inv.rename("inv"), per.rename("per")], axis=1).dropna()
    joined = joined[joined["per"] > 0]
    return (joined["inv"] / joined["per"]).round().astype(int)


def plot_instances_vs_load(
    metrics: Any,
    activities: Any = None,
    *,
    initial_instances: int | None = None,
    target_value: float | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Invocations per instance (left axis) and instance count (right axis, steps) over time.

    Scaling activities are marked with dashed vertical lines (green scale-out, orange scale-in,
    red failed) labelled with the new desired count; ``target_value`` draws the target line.
    """
    fig, ax = _figure(ax)
    per = _series(metrics, "InvocationsPerInstance", "Sum")
    ax.plot(per.index, per.to_numpy(), color="tab:blue", label="invocations / instance / period")
    if target_value is not None:
        ax.axhline(target_value, color="tab:blue", linestyle=":", label=f"target {target_value:g}")
    ax.set_ylabel("invocations per instance")
    ax.set_xlabel("time (UTC)")
    counts = instance_counts(metrics, activities, initial_instances)
    right = ax.twinx()
    if len(counts):
        right.step(counts.index, counts.to_numpy(), where="post", color="tab:red", label="instances")
        right.set_ylim(0, max(counts.max(), 1) * 1.3)
    right.set_ylabel("instances")
    mark_activities(ax, activities, initial_instances)
    lines = ax.get_legend_handles_labels()
    rlines = right.get_legend_handles_labels()
    ax.legend(lines[0] + rlines[0], lines[1] + rlines[1], loc="upper left", fontsize=8)
    ax.set_title(title or "Instances vs invocations per instance")
    return fig


def mark_activities(ax: Any, activities: Any, initial_instances: int | None = None) -> None:
    """Dashed vertical lines at each scaling activity's start (green scale-out, orange scale-in,
    red failed), labelled with the new desired count."""
    if activities is None or activities.empty:
        return
    previous = initial_instances
    for _, act in activities.sort_values("start_time").iterrows():
        desired = act["desired_capacity"]
        known = desired is not None and not _isna(desired)
        if act["status"] != "Successful":
            color = "tab:red"
        elif previous is not None and known and desired < previous:
            color = "tab:orange"
        else:
            color = "tab:green"
        ax.axvline(act["start_time"], color=color, linestyle="--", linewidth=1, alpha=0.8)
        if known:
            ax.annotate(f"→{int(desired)}", (act["start_time"], 1.0), xycoords=("data", "axes fraction"),
                        fontsize=8, color=color, va="bottom")
            if act["status"] == "Successful":
                previous = int(desired)


def _isna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def plot_latency(metrics: Any, *, stats: tuple[str, ...] = LATENCY_STATS, metric: str = "ModelLatency",
                 title: str | None = None, ax: Any = None) -> Any:
    """Latency percentiles over time in milliseconds (CloudWatch reports microseconds)."""
    fig, ax = _figure(ax)
    drawn = 0
    for stat in stats:
        series = _series(metrics, metric, stat)
        if series.empty:
            continue
        ax.plot(series.index, series.to_numpy() / 1000.0, label=f"{metric} {stat}")
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, f"no {metric} data", transform=ax.transAxes, ha="center")
    ax.set_ylabel("milliseconds")
    ax.set_xlabel("time (UTC)")
    if drawn:
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"{metric} percentiles")
    return fig


def plot_prediction_latency(predictions: Any, *, title: str | None = None, ax: Any = None) -> Any:
    """Histogram of client-side latencies (a list of Predictions or a predictions DataFrame)
    with p50/p90/p99 marked."""
    import numpy as np

    fig, ax = _figure(ax)
    if hasattr(predictions, "columns"):
        values = predictions["latency_ms"].to_numpy(dtype=float)
    else:
        values = np.array([p.latency_ms for p in predictions], dtype=float)
    ax.hist(values, bins=min(50, max(5, len(values) // 5)), color="tab:blue", alpha=0.7)
    for q, color in ((50, "tab:green"), (90, "tab:orange"), (99, "tab:red")):
        if len(values):
            value = float(np.percentile(values, q))
            ax.axvline(value, color=color, linestyle="--", label=f"p{q} {value:.1f} ms")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    ax.legend(fontsize=8)
    ax.set_title(title or "Client-side latency")
    return fig


def plot_cost(cost: Any, *, title: str | None = None, ax: Any = None) -> Any:
    """Cumulative USD over time of an :class:`catkit.cost.EndpointCost` (one line per variant)."""
    fig, ax = _figure(ax)
    timeline = cost.timeline
    for variant, rows in timeline.groupby("variant", sort=True):
        rows = rows.sort_values("start")
        xs = [rows["start"].iloc[0], *rows["end"]]
        ys = [0.0, *rows["usd"].cumsum()]
        ax.plot(xs, ys, marker=".", label=f"{variant} ({rows['instance_type'].iloc[0]})")
    ax.set_ylabel("USD")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"{cost.endpoint}: ${cost.usd:,.2f} so far, ${cost.usd_per_month:,.0f}/month at current size")
    return fig


def plot_schedule_savings(savings: Any, *, title: str | None = None, ax: Any = None) -> Any:
    """Bars: monthly USD always-on vs with the night/weekend schedule."""
    fig, ax = _figure(ax, figsize=(6, 4))
    labels = ["always on", "night schedule"]
    values = [savings.usd_per_month_always_on, savings.usd_per_month_scheduled]
    bars = ax.bar(labels, values, color=["tab:gray", "tab:green"])
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(f"${value:,.0f}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
    ax.set_ylabel("USD per month")
    ax.set_title(
        title or f"{savings.instance_type}: saves ${savings.usd_saved_per_month:,.0f}/month "
        f"({savings.fraction_saved:.0%})"
    )
    return fig


def plot_idle_options(options: Any, rate: Any = None, *, title: str | None = None) -> Any:
    """Idle cost side by side (:func:`catkit.whatif.simulate.compare_idle_options`): capacity over
    the day per option (with the traffic, when ``rate`` is given) and the day's cost per option."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax, bars_ax = fig.subplots(1, 2, width_ratios=[2.2, 1])
    colors = ["tab:gray", "tab:blue", "tab:orange", "tab:green"]
    for opt, color in zip(options, colors, strict=False):
        cap = np.asarray(opt.capacity, dtype=float)
        ax.step(np.arange(len(cap)) / 3600.0, cap, where="post", color=color, label=opt.name, lw=1.2)
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("instances (serverless: warm workers)")
    if rate is not None:
        load_ax = ax.twinx()
        r = np.asarray(rate, dtype=float)
        load_ax.fill_between(np.arange(len(r)) / 3600.0, r, color="black", alpha=0.08, step="post")
        load_ax.set_ylabel("requests / s")
    ax.legend(loc="upper left", fontsize=8)
    names = [o.name.replace(", ", ",\n") for o in options]
    values = [o.cost_usd for o in options]
    bars = bars_ax.bar(names, values, color=colors[: len(values)])
    for bar, opt in zip(bars, options, strict=True):
        bars_ax.annotate(f"${opt.cost_usd:,.2f}\n{opt.cold_starts} cold", (bar.get_x() + bar.get_width() / 2,
                         opt.cost_usd), ha="center", va="bottom", fontsize=8)
    bars_ax.set_ylabel("USD for the day")
    bars_ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title or "One day of spiky traffic, four ways to serve it")
    return fig


def plot_scaling_history(
    session: Any,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    minutes: float = 60,
    period: int = 60,
    target_value: float | None = None,
) -> Any:
    """Fetch and plot :func:`plot_instances_vs_load` for an endpoint over the last ``minutes``.

    Reads ``Invocations``/``InvocationsPerInstance`` (CloudWatch) and the scaling activities
    (Application Auto Scaling; left out if unavailable). ``target_value`` defaults to the
    variant's target-tracking policy target when there is one.
    """
    from datetime import timedelta

    from botocore.exceptions import BotoCoreError, ClientError

    from catkit import metrics, scaling

    end = session.now()
    start = end - timedelta(minutes=minutes)
    frame = metrics.endpoint_metrics(
        session, endpoint, variant, metrics=["Invocations", "InvocationsPerInstance"],
        start=start, end=end, period=period,
    )
    activities, initial = None, None
    try:
        history = scaling.scaling_activities(session, endpoint, variant)
        if target_value is None:
            for policy in scaling.describe_policies(session, endpoint, variant):
                config = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
                if "TargetValue" in config:
                    target_value = float(config["TargetValue"])
                    break
    except (ClientError, BotoCoreError):
        history = None
    if history is not None:
        ok = history[(history["status"] == "Successful") & history["desired_capacity"].notna()]
        when = ok["end_time"].fillna(ok["start_time"])
        before = ok[when < start]
        if len(before):
            initial = int(before["desired_capacity"].iloc[-1])
        else:
            desc = session.sagemaker.describe_endpoint(EndpointName=endpoint)
            config = session.sagemaker.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
            initial = next(
                (int(v.get("InitialInstanceCount", 1)) for v in config["ProductionVariants"]
                 if v["VariantName"] == variant),
                None,
            )
        activities = history[history["start_time"] >= start]
    return plot_instances_vs_load(
        frame, activities, initial_instances=initial, target_value=target_value,
        title=f"{endpoint} / {variant}: instances vs invocations per instance",
    )


def figure_png(fig: Any, *, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (tight bounding box)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def show_and_save(fig: Any, path: str | Path, *, dpi: int = 100) -> None:
    """Save ``fig`` as PNG at ``path`` and show the same image inline in Jupyter.

    Returns nothing, so a cell ending with it has no stray result. A figure made with pyplot is
    closed afterwards, so the inline backend does not draw it a second time.
    """
    png = figure_png(fig, dpi=dpi)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close(fig)  # no-op for a Figure that pyplot does not manage
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(data=png, format="png"))


def plot_images(images: Any, titles: Any = None, *, size: float = 2.6, title: str | None = None) -> Any:
    """Pictures (PIL images or arrays) side by side, each with its title underneath."""
    from matplotlib.figure import Figure

    images = list(images)
    titles = list(titles) if titles is not None else [""] * len(images)
    fig = Figure(figsize=(size * len(images), size + 0.6), layout="constrained")
    axes = fig.subplots(1, len(images), squeeze=False)[0]
    for ax, image, caption in zip(axes, images, titles, strict=True):
        ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(caption, fontsize=10)
    if title:
        fig.suptitle(title)
    return fig


def plot_fleet_live(
    samples: Any,
    metrics: Any = None,
    activities: Any = None,
    *,
    target_value: float | None = None,
    title: str | None = None,
) -> Any:
    """The live monitor's chart: invocations per instance per period (CloudWatch, left axis) and
    the instances in service and desired (sampled from DescribeEndpoint, right axis, steps), with
    each scaling activity marked. ``samples``: DataFrame with ``timestamp``, ``current``, ``desired``."""
    fig, ax = _figure(figsize=(9, 3.4))
    if metrics is not None and not metrics.empty:
        per = _series(metrics, "InvocationsPerInstance", "Sum")
        ax.plot(per.index, per.to_numpy(), color="tab:blue", marker=".", label="invocations / instance / period")
    if target_value is not None:
        ax.axhline(target_value, color="tab:blue", linestyle=":", label=f"target {target_value:g}")
    ax.set_ylabel("invocations per instance")
    ax.set_xlabel("time (service clock, UTC)")
    right = ax.twinx()
    if samples is not None and len(samples):
        right.step(samples["timestamp"], samples["current"], where="post", color="tab:red", label="in service")
        right.step(samples["timestamp"], samples["desired"], where="post", color="tab:red", linestyle="--",
                   alpha=0.6, label="desired")
        top = max(int(samples[["current", "desired"]].max().max()), 1)
        right.set_ylim(0, top * 1.3 + 0.5)
    right.set_ylabel("instances")
    first = int(samples["desired"].iloc[0]) if samples is not None and len(samples) else None
    mark_activities(ax, activities, first)
    lines, labels = ax.get_legend_handles_labels()
    rlines, rlabels = right.get_legend_handles_labels()
    if lines or rlines:
        ax.legend(lines + rlines, labels + rlabels, loc="upper left", fontsize=8)
    ax.set_title(title or "live: instances and invocations per instance")
    return fig
