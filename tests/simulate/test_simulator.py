"""Simulator rules: bounds, provisioning delay, scale-out/in timing, metrics, schedules, cost."""

from __future__ import annotations

import math

import botocore.session
import numpy as np
import pytest
from botocore.validate import ParamValidator

from catkit.instance_types import get_instance_type
from catkit.whatif import shapes
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate import (
    DEFAULT_START,
    NightSchedule,
    ScalingConfig,
    compare_timelines,
    simulate,
    traffic_array,
)

SVC = ServiceModel(max_rps=40, workers=4, base_p50_ms=20, base_p99_ms=50)
PRICE = get_instance_type("ml.m5.xlarge").price_per_hour
HOUR = 3600


def scale_changes(res):
    a = res.activities
    a = a[a["desired_capacity"].notna()]
    return [(float(t - res.start), int(c), float(e - res.start)) for t, c, e in
            zip(a["start_time"], a["desired_capacity"], a["end_time"], strict=True)]


def test_quiet_traffic_stays_at_min_and_cost_is_per_second():
    res = simulate(shapes.Constant(1), ScalingConfig(min_capacity=2), SVC, duration_s=HOUR)
    assert (res.serving == 2).all() and (res.billed == 2).all()
    assert res.cost_usd == pytest.approx(2 * PRICE)
    assert res.summary()["instance_hours"] == pytest.approx(2.0)
    assert scale_changes(res) == []


def test_step_scales_out_after_three_minutes_with_provisioning_delay():
    # 50 req/s = 3000/min; seed target 1000 per instance per minute on 2 instances -> 1500 each.
    res = simulate(shapes.Step(5, 50, at_s=600), ScalingConfig(), SVC, duration_s=2 * HOUR, provisioning_s=240)
    changes = scale_changes(res)
    t, cap, end = changes[0]
    # AlarmHigh: 3 one-minute datapoints above target -> acts at the evaluation after minute 3.
    assert t == 600 + 180
    assert cap == math.ceil(2 * 1500 / 1000)  # proportional, rounded up
    # New instances serve exactly provisioning_s after the decision, billed from the decision.
    i = int(t)
    assert res.serving[i + 239] == 2 and res.serving[i + 240] == cap
    assert res.billed[i - 1] == 2 and res.billed[i] == cap
    assert end == pytest.approx(math.ceil((t + 240) / 10) * 10)  # completes at the next 10-s tick
    assert res.serving.max() <= 10 and res.serving.min() >= 2


def test_provisioning_delay_changes_only_when_capacity_arrives():
    fast = simulate(shapes.Step(5, 50, at_s=600), ScalingConfig(), SVC, duration_s=HOUR, provisioning_s=60)
    slow = simulate(shapes.Step(5, 50, at_s=600), ScalingConfig(), SVC, duration_s=HOUR, provisioning_s=600)
    first_fast = np.argmax(fast.serving > 2)
    first_slow = np.argmax(slow.serving > 2)
    assert first_slow - first_fast == 540
    assert slow.overload.sum() >= fast.overload.sum()


@pytest.mark.parametrize(
    "shape",
    [
        shapes.Step(1, 1000, at_s=300),  # far beyond max capacity
        shapes.Spike(at_s=600, duration_s=900, extra_rps=300) + 2,
        shapes.Diurnal(0, 200, peak_hour=1),
        shapes.Replay.from_rates([0, 400, 0, 400, 0, 400] * 4, step_s=300),
    ],
)
def test_capacity_never_leaves_min_max(shape):
    cfg = ScalingConfig(min_capacity=2, max_capacity=5, scale_in_cooldown=60, scale_out_cooldown=0)
    res = simulate(shape, cfg, SVC, duration_s=2 * HOUR, provisioning_s=120, termination_s=30)
    assert res.serving.min() >= 2 and res.serving.max() <= 5
    assert res.billed.min() >= 2 and res.billed.max() <= 5
    assert (res.billed >= res.serving).all()
    caps = [c for _, c, _ in scale_changes(res)]
    assert all(2 <= c <= 5 for c in caps)


def test_scale_in_needs_fifteen_low_minutes_and_goes_down_gradually():
    shape = shapes.Replay.from_rates([60] * 30 + [2] * 60, step_s=60)  # high 30 min, then low
    res = simulate(shape, ScalingConfig(min_capacity=2, max_capacity=10), SVC, duration_s=90 * 60,
                   provisioning_s=60, termination_s=60)
    changes = scale_changes(res)
    ups = [c for c in changes if c[1] > 2 and c[0] < 1800]
    assert ups, changes
    downs = [c for c in changes if c[0] >= 1800]
    assert downs and downs[0][0] >= 1800 + 15 * 60
    # removed instances stop serving at the decision but stay billed until termination
    t = int(downs[0][0])
    assert res.serving[t] == downs[0][1] and res.billed[t] > res.serving[t]
    assert res.billed[t + 60] == res.serving[t + 60]


def test_high_resolution_metric_scales_out_sooner():
    step = shapes.Step(5, 60, at_s=600)
    std = simulate(step, ScalingConfig(target_value=1000), SVC, duration_s=HOUR)
    hi = simulate(step, ScalingConfig(metric="high_resolution", target_value=SVC.concurrency_target(0.5)), SVC,
                  duration_s=HOUR)
    t_std, t_hi = scale_changes(std)[0][0], scale_changes(hi)[0][0]
    assert t_hi < t_std
    assert t_hi <= 600 + 60  # three 10-second datapoints instead of three minutes
    assert hi.meta["eval_every_s"] == 10 and std.meta["eval_every_s"] == 60


def test_skipping_idle_ticks_gives_the_same_run_as_ticking_every_ten_seconds():
    shape = shapes.Diurnal(2, 120, peak_hour=12) + shapes.Spike(at_s=9 * HOUR, duration_s=1200, extra_rps=80)
    cfg = ScalingConfig(min_capacity=2, max_capacity=8, scale_in_cooldown=120,
                        night=NightSchedule(night_min=1, night_starts_hour=18, day_starts_hour=6))
    a = simulate(shape, cfg, SVC, duration_s=86400, provisioning_s=95, termination_s=25)
    b = simulate(shape, cfg, SVC, duration_s=86400, provisioning_s=95, termination_s=25,
                 tick_every_grid_point=True)
    assert b.ticks > a.ticks
    assert np.array_equal(a.serving, b.serving) and np.array_equal(a.billed, b.billed)
    assert a.activities.equals(b.activities)


def test_night_schedule_drops_min_at_night_and_restores_it_in_the_morning():
    cfg = ScalingConfig(min_capacity=3, max_capacity=6, night=NightSchedule(night_min=1))
    res = simulate(shapes.Constant(0.5), cfg, SVC, duration_s=2 * 86400, start=DEFAULT_START)  # Monday 00:00
    # Monday 00:00 is night (Sunday 20:00's action was the last to run): starts at 1.
    assert res.serving[0] == 1
    assert res.serving[7 * HOUR + 600] == 3  # 07:00 day action raised the minimum
    assert res.serving[int(20.5 * HOUR)] < 3  # idle evening: scaled in to the night minimum
    acts = res.activities
    assert (acts["cause"].str.contains("scheduled action name catkit-day")).any()
    night_cost = simulate(shapes.Constant(0.5), ScalingConfig(min_capacity=3, max_capacity=6), SVC,
                          duration_s=2 * 86400).cost_usd
    assert res.cost_usd < night_cost


def test_overload_and_latency_estimates():
    one = ScalingConfig(min_capacity=1, max_capacity=1)
    res = simulate(shapes.Constant(50), one, SVC, duration_s=600)  # 50 req/s on a 40 req/s instance
    assert res.overload.sum() == pytest.approx(10 * 600)
    assert res.summary()["overload_fraction"] == pytest.approx(0.2)
    assert res.slo_violation(500) == 1.0
    light = simulate(shapes.Constant(4), one, SVC, duration_s=600)
    assert light.p99_ms() < 500 and light.slo_violation(500) < 0.01
    assert light.latency_ms(0.99)[0] == pytest.approx(float(SVC.latency_ms(4, 0.99)))


def test_metrics_reader_matches_what_sagemaker_records():
    res = simulate(shapes.Constant(30), ScalingConfig(min_capacity=3, max_capacity=3), SVC, duration_s=600)
    assert (res.serving == 3).all()
    f = res.frame(60)
    assert f["per_instance_rps"].iloc[2] == pytest.approx(10)
    assert f["instances"].iloc[0] == 3 and len(f) == 10
    assert f["cost_usd"].sum() == pytest.approx(res.cost_usd)


def test_simulated_fleet_records_what_sagemaker_records():
    from catkit.autoscaling.metrics_store import MetricStore
    from catkit.whatif.simulate import SimulatedFleet

    rate = np.full(300, 6.0)
    t0 = 1_000_050.0  # 50 s into a minute
    dims = {"EndpointName": "e", "VariantName": "v"}
    m = MetricStore(percentiles=False)
    fleet = SimulatedFleet(rate, t0, "endpoint/e/variant/v", dims, SVC, 2, m, provisioning_s=0, termination_s=0)
    fleet.advance(t0 + 300)
    rows = m.statistics("AWS/SageMaker", "InvocationsPerInstance", dims, t0 - 60, 1_000_200.0, 60,
                        ["Sum", "SampleCount", "Average"])
    # buckets aligned to the minute; the first one only partly covered by the run, none before it
    assert [r["Timestamp"] for r in rows] == [1_000_020.0, 1_000_080.0, 1_000_140.0]
    assert rows[0]["Sum"] == pytest.approx(90)  # 30 s at 6 req/s on 2 instances
    assert rows[1]["Sum"] == pytest.approx(180) and rows[1]["SampleCount"] == pytest.approx(360)
    assert rows[1]["Average"] == pytest.approx(0.5)
    inv = m.statistics("AWS/SageMaker", "Invocations", dims, 1_000_080.0, 1_000_140.0, 60, ["Sum"])
    assert [r["Sum"] for r in inv] == [pytest.approx(360)] and inv[0]["Timestamp"] == 1_000_080.0
    # only complete minutes are recorded: the minute at 1_000_320 is still running at t0 + 300
    last = m.statistics("AWS/SageMaker", "Invocations", dims, 1_000_260.0, 1_000_400.0, 60, ["Sum"])
    assert [r["Timestamp"] for r in last] == [1_000_260.0]
    # concurrency per instance, one statistic set per epoch-aligned 10-second window (weight: its
    # seconds), the expected per-window peak by default - what the backend samples
    conc = m.statistics("AWS/SageMaker", "ConcurrentRequestsPerModel", dims, t0, 1_000_080.0, 10,
                        ["Average", "SampleCount"])
    assert [r["Timestamp"] for r in conc] == [t0, 1_000_060.0, 1_000_070.0]
    assert [r["SampleCount"] for r in conc] == [10, 10, 10]
    # two instances behind least-outstanding routing read as one pooled queue, split in two
    pooled = ServiceModel(max_rps=2 * SVC.max_rps, workers=2 * SVC.workers, timeout_ms=SVC.timeout_ms)
    assert conc[1]["Average"] == pytest.approx(float(pooled.peak_concurrency(6.0)) / 2, rel=1e-3)
    assert conc[1]["Average"] > float(pooled.concurrency(6.0)) / 2
    # only windows complete at the fleet's time: the last one ends at t0 + 300
    tail = m.statistics("AWS/SageMaker", "ConcurrentRequestsPerModel", dims, t0, t0 + 400, 10, ["SampleCount"])
    assert tail[-1]["Timestamp"] == t0 + 290
    # the store of the simulator keeps no distributions: percentiles are not available
    assert "p99" not in m.statistics("AWS/SageMaker", "Invocations", dims, 1_000_080.0, 1_000_140.0, 60,
                                     ["Sum", "p99"])[0]


def test_traffic_arrays_and_validation():
    arr = np.r_[np.zeros(600), np.full(600, 50.0)]
    a = simulate(arr, ScalingConfig(), SVC, duration_s=1200)
    b = simulate(shapes.Step(0, 50, at_s=600), ScalingConfig(), SVC, duration_s=1200)
    assert np.array_equal(a.serving, b.serving)
    with pytest.raises(ValueError, match="at least 60"):
        traffic_array(shapes.Constant(1), 10)
    with pytest.raises(ValueError, match="one rate per second"):
        traffic_array(np.ones(100), 200)
    with pytest.raises(ValueError, match=">= 0"):
        traffic_array(-np.ones(100), 100)
    with pytest.raises(ValueError, match="min_capacity"):
        ScalingConfig(min_capacity=0)
    with pytest.raises(ValueError, match="metric"):
        ScalingConfig(metric="cpu")
    with pytest.raises(KeyError, match="unknown instance type"):
        simulate(1.0, ScalingConfig(), SVC, duration_s=120, instance_type="ml.nope")


def _validate(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("application-autoscaling")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_emitted_api_arguments_satisfy_botocore_models():
    cfg = ScalingConfig(min_capacity=2, max_capacity=7, target_value=750, metric="high_resolution",
                        night=NightSchedule(night_min=1, night_starts_hour=21, day_starts_hour=6))
    _validate("RegisterScalableTarget", cfg.register_scalable_target_args("ep"))
    args = cfg.put_scaling_policy_args("ep")
    _validate("PutScalingPolicy", args)
    assert args["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantConcurrentRequestsPerModelHighResolution"}
    actions = cfg.put_scheduled_action_args("ep")
    for a in actions:
        _validate("PutScheduledAction", a)
    assert [a["Schedule"] for a in actions] == ["cron(0 21 * * ? *)", "cron(0 6 ? * MON-FRI *)"]
    assert ScalingConfig().put_scheduled_action_args("ep") == []


def test_compare_timelines_pairs_events():
    t = compare_timelines([(10.0, 3), (100.0, 1)], [(40.0, 3)])
    assert t["diff_s"].tolist()[0] == 30 and math.isnan(t["diff_s"].tolist()[1])
    assert t["emulated_capacity"].isna().tolist() == [False, True]


def test_summary_and_plot():
    # Midnight to 06:00 of a 2 -> 60 req/s day peaking at 14:00: at most ~17 req/s, i.e. under 9 per
    # instance on the 2 minimum instances of 40 req/s each, so the fleet never scales or overloads.
    res = simulate(shapes.Diurnal(2, 60), ScalingConfig(), SVC, duration_s=6 * HOUR)
    s = res.summary(slo_p99_ms=200)
    assert (s["instances_min"], s["instances_max"], s["overload_requests"]) == (2, 2, 0.0)
    # A 200-ms SLO leaves 150 ms of queueing slack over the 50-ms base p99; at under a quarter of
    # capacity almost no request waits that long: met.
    assert s["slow_fraction"] <= 0.01 and s["meets_slo"] is True
    assert s["simulated_seconds_per_second"] > 0 and s["cost_usd"] == pytest.approx(res.cost_usd)
    # An SLO at the base p99 leaves no slack: every request counts as slow (conservative), not met.
    tight = res.summary(slo_p99_ms=50)
    assert tight["slow_fraction"] == 1.0 and tight["meets_slo"] is False
    fig = res.plot(resolution_s=300, slo_p99_ms=200)
    assert len(fig.axes) >= 3
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_zero_traffic_reads_zeros_so_the_variant_scales_in_to_min():
    # SageMaker emits zero invocations for auto-scaled variants without traffic (aws-facts §1.5).
    res = simulate(0.0, ScalingConfig(min_capacity=2, max_capacity=6), SVC, duration_s=HOUR, initial_capacity=5)
    changes = scale_changes(res)
    assert changes and changes[0][1] == 2
    assert 15 * 60 <= changes[0][0] <= 17 * 60
    assert res.serving[-1] == 2


def test_peak_concurrency_statistic_scales_out_at_least_as_much():
    step = shapes.Step(2, 30, at_s=600)
    cfg = ScalingConfig(metric="high_resolution", target_value=4.0)
    mean = simulate(step, cfg, SVC, duration_s=HOUR, concurrency_statistic="mean")
    peak = simulate(step, cfg, SVC, duration_s=HOUR, concurrency_statistic="peak")
    assert peak.meta["concurrency_statistic"] == "peak"
    assert peak.serving.max() >= mean.serving.max()
    assert peak.cost_usd >= mean.cost_usd
    with pytest.raises(ValueError, match="concurrency_statistic"):
        simulate(step, cfg, SVC, duration_s=HOUR, concurrency_statistic="max")


def test_shared_tables_stand_in_for_the_traffic_and_are_checked():
    from catkit.whatif.simulate import SEED_CONFIG
    from catkit.whatif.simulate.tables import TrafficTables

    rate = np.full(3600, 5.0)
    tables = TrafficTables(rate)
    assert not tables.rate.flags.writeable
    res = simulate(None, SEED_CONFIG, duration_s=3600, tables=tables)
    assert res.rate is tables.rate and res.tables is tables
    with pytest.raises(ValueError, match="traffic is required"):
        simulate(None, SEED_CONFIG, duration_s=3600)
    with pytest.raises(ValueError, match="traffic is required"):
        simulate(None, SEED_CONFIG, duration_s=7200, tables=tables)  # not this duration
    with pytest.raises(ValueError, match="finite rate >= 0"):
        TrafficTables(np.array([1.0, -1.0]))
