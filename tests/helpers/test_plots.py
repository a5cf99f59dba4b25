"""plots: figures render to PNG with Agg and carry the expected artists."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from catkit import plots
from catkit.cost import EndpointCost, night_schedule_savings
from catkit.invoke import Prediction

T = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG")
    return data


def _metrics(minutes=10):
    rows = []
    for i in range(minutes):
        ts = T + timedelta(minutes=i)
        instances = 2 if i < 5 else 4
        inv = 1000.0 * (i + 1)
        rows += [
            {"timestamp": ts, "metric": "Invocations", "stat": "Sum", "value": inv},
            {"timestamp": ts, "metric": "InvocationsPerInstance", "stat": "Sum", "value": inv / instances},
            {"timestamp": ts, "metric": "ModelLatency", "stat": "p50", "value": 10_000.0},
            {"timestamp": ts, "metric": "ModelLatency", "stat": "p90", "value": 20_000.0},
            {"timestamp": ts, "metric": "ModelLatency", "stat": "p99", "value": 40_000.0},
        ]
    frame = pd.DataFrame(rows)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def _activities():
    return pd.DataFrame({
        "start_time": pd.to_datetime([T + timedelta(minutes=4), T + timedelta(minutes=8), T + timedelta(minutes=9)], utc=True),
        "end_time": pd.to_datetime([T + timedelta(minutes=5), T + timedelta(minutes=9), pd.NaT], utc=True),
        "status": ["Successful", "Successful", "Failed"],
        "desired_capacity": pd.array([4, 3, None], dtype="Int64"),
    })


def test_instance_counts_from_metrics_and_from_activities():
    derived = plots.instance_counts(_metrics())
    assert derived.tolist() == [2] * 5 + [4] * 5
    steps = plots.instance_counts(_metrics(), _activities(), initial=2)
    assert steps.tolist() == [2, 4, 3]


def test_instances_vs_load_figure():
    fig = plots.plot_instances_vs_load(_metrics(), _activities(), initial_instances=2, target_value=1000)
    ax, right = fig.axes
    labels = [line.get_label() for line in ax.lines]
    assert "invocations / instance / period" in labels and "target 1000" in labels
    markers = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(markers) == 3  # one dashed line per scaling activity
    colors = [line.get_color() for line in markers]
    assert colors == ["tab:green", "tab:orange", "tab:red"]  # out, in, failed
    assert [t.get_text() for t in ax.texts] == ["→4", "→3"]
    assert right.lines and right.lines[0].get_label() == "instances"
    _png(fig)


def test_latency_figure_in_ms():
    fig = plots.plot_latency(_metrics())
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["ModelLatency p50", "ModelLatency p90", "ModelLatency p99"]
    assert ax.lines[2].get_ydata()[0] == pytest.approx(40.0)  # 40 000 us -> 40 ms
    _png(fig)
    empty = plots.plot_latency(_metrics().iloc[0:0])
    assert "no ModelLatency data" in empty.axes[0].texts[0].get_text()


def test_prediction_latency_histogram():
    preds = [Prediction(value=None, latency_ms=float(i), variant="AllTraffic", raw=b"") for i in range(1, 101)]
    fig = plots.plot_prediction_latency(preds)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[0].startswith("p50 ") and labels[2].startswith("p99 ")
    assert fig.axes[0].patches  # histogram bars
    _png(fig)


def test_cost_figures():
    timeline = pd.DataFrame({
        "variant": ["AllTraffic"] * 2, "instance_type": ["ml.m5.xlarge"] * 2,
        "start": [T, T + timedelta(hours=1)], "end": [T + timedelta(hours=1), T + timedelta(hours=3)],
        "instances": [2, 4], "instance_hours": [2.0, 8.0], "usd": [0.46, 1.84],
    })
    ec = EndpointCost("ep1", T, T + timedelta(hours=3), 10.0, 2.30, 671.6, {}, timeline)
    fig = plots.plot_cost(ec)
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == pytest.approx([0.0, 0.46, 2.30])
    assert "$2.30 so far" in fig.axes[0].get_title()
    _png(fig)
    bars = plots.plot_schedule_savings(night_schedule_savings("ml.m5.xlarge", 2, 1))
    assert len(bars.axes[0].patches) == 2
    _png(bars)
