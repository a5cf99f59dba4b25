"""plots: figures render to PNG with Agg and carry the expected artists."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from catkit.cost import EndpointCost, night_schedule_savings
from catkit.invoke import Prediction
from catkit.notebook import plots

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


def test_plot_scaling_history_fetches_metrics_and_activities(session, stubs, monkeypatch):
    from helpers_fakes import describe_endpoint, describe_endpoint_config

    monkeypatch.setattr(session, "now", lambda: T + timedelta(minutes=10))
    metrics = _metrics()
    results = []
    for i, (name, stat) in enumerate([("Invocations", "Sum"), ("InvocationsPerInstance", "Sum")]):
        rows = metrics[(metrics["metric"] == name) & (metrics["stat"] == stat)]
        results.append({"Id": f"q{i}", "Timestamps": [t.to_pydatetime() for t in rows["timestamp"]],
                        "Values": rows["value"].tolist(), "StatusCode": "Complete"})
    stubs["cloudwatch"].add_response("get_metric_data", {"MetricDataResults": results})
    rid = "endpoint/ep1/variant/AllTraffic"
    target = {"ServiceNamespace": "sagemaker", "ResourceId": rid, "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    aas = stubs["application-autoscaling"]
    aas.add_response("describe_scaling_activities", {"ScalingActivities": [{
        "ActivityId": "a1", **target, "Description": "Setting desired instance count to 4.", "Cause": "alarm",
        "StartTime": T + timedelta(minutes=4), "EndTime": T + timedelta(minutes=5), "StatusCode": "Successful"}]})
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": [{
        "PolicyARN": "arn:p", "PolicyName": "p", **target, "PolicyType": "TargetTrackingScaling",
        "CreationTime": T, "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 700.0}}]})
    stubs["sagemaker"].add_response("describe_endpoint", describe_endpoint("ep1"))
    stubs["sagemaker"].add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1", count=2))
    fig = plots.plot_scaling_history(session, "ep1")
    ax, right = fig.axes
    assert "target 700" in [line.get_label() for line in ax.lines]
    assert list(right.lines[0].get_ydata()) == [2, 4]
    assert [t.get_text() for t in ax.texts] == ["→4"]
    _png(fig)
    stubs.verify()
