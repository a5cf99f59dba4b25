"""Event skipping changes no decision: the simulator stepping only where something can change
equals stepping the driver every 10 seconds, on random traffic and random policies.

Both runs use the one :class:`~catkit.autoscaling.driver.ScalingDriver`; the only difference is
``tick_every_grid_point``. Compared: every scaling activity (times, capacities, status, cause,
description) and the per-second serving and billed instance counts - and the same again when the
simulation reads per-traffic tables shared with other simulations (``tables=``, as
``recommend_scaling`` does), with the same summary.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate import DEFAULT_START, NightSchedule, ScalingConfig, simulate
from catkit.whatif.simulate.tables import TrafficTables, segments

SVC = ServiceModel(max_rps=20, workers=4, base_p50_ms=40, base_p99_ms=120)
COOLDOWNS = [0, 10, 30, 60, 120, 300, 600]


@st.composite
def traffic(draw: st.DrawFn) -> np.ndarray:
    """Piecewise-constant rates (idle stretches included) with Poisson noise and spikes."""
    hours = draw(st.floats(1.0, 5.0))
    n = int(hours * 3600)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, n, draw(st.integers(1, 12))))
    levels = rng.choice([0.0, 0.0, 0.3, 2.0, 8.0, 20.0, 45.0, 90.0], len(cuts) + 1)
    rate = np.repeat(levels, np.diff(np.concatenate(([0], cuts, [n]))))
    for start in rng.integers(0, n, draw(st.integers(0, 4))):
        rate[start : start + rng.integers(5, 900)] += rng.uniform(5, 120)
    noisy = draw(st.booleans())
    return rng.poisson(rate).astype(float) if noisy else rate


@st.composite
def policies(draw: st.DrawFn) -> tuple[ScalingConfig, dict]:
    high_res = draw(st.booleans())
    lo = draw(st.integers(1, 3))
    hi = draw(st.integers(lo, 9))
    target = draw(st.floats(0.3, 6.0)) if high_res else draw(st.floats(40.0, 1500.0))
    night = None
    if draw(st.booleans()):
        night = NightSchedule(night_min=draw(st.integers(1, 2)), night_starts_hour=draw(st.sampled_from([19, 20, 21])),
                              day_starts_hour=draw(st.sampled_from([0, 1, 22])), weekdays="SUN-SAT")
    config = ScalingConfig(
        min_capacity=lo, max_capacity=hi, target_value=target,
        metric="high_resolution" if high_res else "invocations",
        scale_out_cooldown=draw(st.sampled_from(COOLDOWNS)), scale_in_cooldown=draw(st.sampled_from(COOLDOWNS)),
        disable_scale_in=draw(st.booleans()), night=night,
    )
    run = {
        # Starts off the minute and off the 10-second grid; around 19:00-20:00 so schedules fire.
        "start": DEFAULT_START + 19 * 3600 + draw(st.integers(0, 3599)),
        "initial_capacity": draw(st.integers(lo, hi)),
        "provisioning_s": float(draw(st.sampled_from([0, 7, 60, 240, 601]))),
        "termination_s": float(draw(st.sampled_from([0, 25, 60, 130]))),
        "concurrency_statistic": draw(st.sampled_from(["peak", "mean"])),
    }
    return config, run


def _records(result) -> list[dict]:
    """The activities as comparable records (NaN capacities of bound changes as None)."""
    frame = result.activities
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _same_run(rate: np.ndarray, config: ScalingConfig, run: dict) -> None:
    kw = dict(duration_s=len(rate), **run)
    skipping = simulate(rate, config, SVC, **kw)
    ticking = simulate(rate, config, SVC, tick_every_grid_point=True, **kw)
    assert skipping.ticks <= ticking.ticks
    assert _records(skipping) == _records(ticking)
    assert np.array_equal(skipping.serving, ticking.serving)
    assert np.array_equal(skipping.billed, ticking.billed)
    # Per-traffic tables shared between simulations (as recommend_scaling does) change nothing.
    tables = TrafficTables(rate)
    for _ in range(2):  # the second run reads what the first left in the tables
        shared = simulate(None, config, SVC, tables=tables, **kw)
        assert _records(shared) == _records(skipping)
        assert np.array_equal(shared.serving, skipping.serving)
        assert np.array_equal(shared.billed, skipping.billed)
    for result in (skipping, ticking, shared):  # the runs the fleet noted equal those of its arrays
        runs, billed = result.meta["_segments"][1], result.meta["_billed"]
        for noted, derived in zip(runs, segments(result.serving), strict=True):
            assert noted.dtype == derived.dtype and np.array_equal(noted, derived)
        assert billed == int(result.billed.sum())
    a, b = shared.summary(300.0), skipping.summary(300.0)
    for key in ("cost_usd", "instances_mean", "scaling_events", "overload_requests", "p50_ms", "p99_ms",
                "slow_fraction"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-9, nan_ok=True), key


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(), policies())
def test_event_skipping_takes_the_decisions_of_ticking_every_ten_seconds(rate, policy):
    config, run = policy
    _same_run(rate, config, run)


def test_a_month_of_diurnal_traffic_takes_the_same_decisions_in_far_fewer_steps():
    from catkit.whatif import load

    shape = load.Diurnal(low_rps=5, high_rps=120, weekend_factor=0.5) + load.Spike(
        at_s=9 * 3600, duration_s=1800, extra_rps=80, rise_s=300, every_s=86400)
    rate = shape.per_second(3 * 86400)
    for config in (ScalingConfig(), ScalingConfig(metric="high_resolution", target_value=SVC.concurrency_target(0.5))):
        skipping = simulate(rate, config, SVC, duration_s=len(rate))
        ticking = simulate(rate, config, SVC, duration_s=len(rate), tick_every_grid_point=True)
        assert _records(skipping) == _records(ticking)
        assert np.array_equal(skipping.serving, ticking.serving)
        assert len(skipping.activities) > 10  # the traffic does scale the variant
        assert skipping.ticks * 10 < ticking.ticks
        # A step to decide each activity and one when it finishes; few others: a cooldown running out
        # while the alarm stays in the engine's quiet band takes none (the next band is read ahead).
        assert skipping.ticks <= 2 * len(skipping.activities) + 20


def test_shared_tables_answer_alarm_scans_from_their_lookups_with_the_same_decisions():
    """With tables= (recommend_scaling's way), scans past the last serving change read the kept
    alarm lookups (alarm_indices + first_invoked) instead of counting windows: same decisions."""
    from catkit.whatif import load

    shape = load.Diurnal(low_rps=5, high_rps=120) + load.Spike(at_s=9 * 3600, duration_s=1800, extra_rps=80,
                                                               rise_s=300, every_s=86400)
    rate = shape.per_second(86400)
    tables = TrafficTables(rate)
    for config in (ScalingConfig(), ScalingConfig(metric="high_resolution", target_value=SVC.concurrency_target(0.5),
                                                  scale_in_cooldown=60)):
        ticking = simulate(rate, config, SVC, duration_s=len(rate), tick_every_grid_point=True)
        for _ in range(2):
            shared = simulate(None, config, SVC, duration_s=len(rate), tables=tables)
            assert _records(shared) == _records(ticking)
            assert np.array_equal(shared.serving, ticking.serving)
        assert len(shared.activities) > 10
    lookups = [key for key in tables._memo if key[1][0] == "alarm_indices"]
    assert {key[0][1] for key in lookups} == {"InvocationsPerInstance", "ConcurrentRequestsPerModel"}


def test_traffic_tables_memo_keeps_by_key_and_drops_the_least_recently_used(monkeypatch):
    from catkit.whatif.simulate import tables as tables_module

    monkeypatch.setattr(tables_module, "MEMO_BYTES", 3 * 800)
    tables = TrafficTables(np.ones(60))
    built = []

    def build(key):
        built.append(key)
        return np.zeros(100)  # 800 bytes

    for key in ("a", "b", "c", "a"):  # three fit: "a" is built once
        tables.memo((key,), lambda key=key: build(key))
    assert built == ["a", "b", "c"]
    tables.memo(("d",), lambda: build("d"))  # over the bound: "b", the least recently used, goes
    assert set(tables._memo) == {("a",), ("c",), ("d",)}
    assert tables._memo_bytes == 3 * 800
    tables.memo(("b",), lambda: build("b"))
    assert built == ["a", "b", "c", "d", "b"]
