"""Traffic shapes: pure, vectorised, composable functions of time (table-driven)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catkit.whatif import shapes

H = 3600.0
SAT = 5 * 86400.0  # day 5 of a run starting on a Monday


@pytest.mark.parametrize(
    "shape,t,expected",
    [
        (shapes.Constant(5), 0, 5),
        (shapes.Constant(5), 1e6, 5),
        (shapes.Ramp(0, 10, ramp_s=10, start_s=5), 0, 0),
        (shapes.Ramp(0, 10, ramp_s=10, start_s=5), 10, 5),
        (shapes.Ramp(0, 10, ramp_s=10, start_s=5), 99, 10),
        (shapes.Ramp(8, 2, ramp_s=6), 3, 5),
        (shapes.Step(1, 4, at_s=10), 9.99, 1),
        (shapes.Step(1, 4, at_s=10), 10, 4),
        (shapes.Spike(at_s=10, duration_s=5, extra_rps=7), 9.9, 0),
        (shapes.Spike(at_s=10, duration_s=5, extra_rps=7), 12, 7),
        (shapes.Spike(at_s=10, duration_s=5, extra_rps=7), 15, 0),
        (shapes.Spike(at_s=10, duration_s=5, extra_rps=7, every_s=20), 32, 7),
        (shapes.Spike(at_s=10, duration_s=5, extra_rps=7, every_s=20), 36, 0),
        (shapes.Spike(at_s=0, duration_s=10, extra_rps=8, rise_s=4), 2, 4),
        (shapes.Spike(at_s=0, duration_s=10, extra_rps=8, rise_s=4), 5, 8),
        (shapes.Spike(at_s=0, duration_s=10, extra_rps=8, rise_s=4), 9, 2),
        (shapes.Diurnal(2, 10, peak_hour=14), 14 * H, 10),
        (shapes.Diurnal(2, 10, peak_hour=14), 2 * H, 2),
        (shapes.Diurnal(2, 10, peak_hour=14), 8 * H, 6),
        (shapes.Diurnal(2, 10, peak_hour=14), 24 * H + 14 * H, 10),
        (shapes.Diurnal(2, 10, peak_hour=14, weekend_factor=0.5), SAT + 14 * H, 5),
        (shapes.Diurnal(2, 10, peak_hour=14, weekend_factor=0.5), 4 * 86400 + 14 * H, 10),
        (shapes.Diurnal(2, 10, peak_hour=14, weekend_factor=0.5, first_weekday=5), 14 * H, 5),
        (shapes.Constant(3) + shapes.Spike(at_s=0, duration_s=1, extra_rps=2), 0.5, 5),
        (2 * shapes.Constant(3), 7, 6),
        (shapes.Constant(3) * 2 + 1, 7, 7),
        ((shapes.Constant(10) + shapes.Step(0, 10, at_s=5)).clip(max_rate=15), 6, 15),
        (shapes.Constant(1).clip(min_rate=4), 0, 4),
    ],
)
def test_rate_at(shape, t, expected):
    assert shape.rate(t) == pytest.approx(expected)


def test_rates_are_vectorised_and_never_negative():
    shape = shapes.Diurnal(0, 4) + shapes.Spike(at_s=100, duration_s=50, extra_rps=3)
    t = np.arange(0, 86400, 7.0)
    r = shape.rate(t)
    assert r.shape == t.shape and (r >= 0).all()
    assert r[120 // 7] >= 3


@pytest.mark.parametrize(
    "factory",
    [
        lambda: shapes.Constant(-1),
        lambda: shapes.Constant(math.nan),
        lambda: shapes.Ramp(0, 1, ramp_s=0),
        lambda: shapes.Spike(at_s=0, duration_s=0, extra_rps=1),
        lambda: shapes.Spike(at_s=0, duration_s=4, extra_rps=1, rise_s=3),
        lambda: shapes.Spike(at_s=0, duration_s=4, extra_rps=1, every_s=2),
        lambda: shapes.Diurnal(5, 1),
        lambda: shapes.Replay((0.0, 0.0), (1.0, 1.0), 5.0),
        lambda: shapes.Constant(1) + "x",
    ],
)
def test_invalid_shapes_are_rejected(factory):
    with pytest.raises((ValueError, TypeError)):
        factory()


def test_per_second_and_expected_requests():
    assert shapes.Constant(2).expected_requests(60) == pytest.approx(120)
    steps = shapes.Step(1, 3, at_s=10).per_second(20)
    assert steps.tolist() == [1.0] * 10 + [3.0] * 10
    assert shapes.Ramp(0, 10, ramp_s=10).expected_requests(10) == pytest.approx(50)


@pytest.mark.parametrize("duration,rate", [(10.0, 5.0), (60.0, 0.5), (3.0, 100.0)])
def test_arrival_times_follow_the_rate(duration, rate):
    times = shapes.arrival_times(shapes.Constant(rate), duration)
    assert len(times) == round(duration * rate)
    assert (np.diff(times) > 0).all() and times[0] >= 0 and times[-1] < duration
    # evenly spaced: gaps are 1/rate
    assert np.diff(times) == pytest.approx(np.full(len(times) - 1, 1 / rate), rel=1e-3)


def test_arrival_times_skip_zero_rate_and_respect_max_requests():
    shape = shapes.Step(0, 10, at_s=5)
    times = shapes.arrival_times(shape, 10)
    assert len(times) == 50 and times.min() >= 5 - 1e-9
    assert len(shapes.arrival_times(shape, 10, max_requests=7)) == 7
    poisson = shapes.arrival_times(shapes.Constant(50), 100, poisson=True, seed=3)
    assert abs(len(poisson) - 5000) < 5 * math.sqrt(5000)
    assert (np.diff(poisson) >= 0).all()
    again = shapes.arrival_times(shapes.Constant(50), 100, poisson=True, seed=3)
    assert np.array_equal(poisson, again)


def test_example_workday_traffic():
    shape = shapes.example_workday_traffic(peak_rps=100)
    assert shape.rate(14 * H) == pytest.approx(100)
    assert shape.rate(2 * H) == pytest.approx(5)
    assert shape.rate(9 * H + 600) == pytest.approx(float(shapes.Diurnal(5, 100).rate(9 * H + 600)) + 60)
    assert shape.rate(SAT + 14 * H) == pytest.approx(40)


def test_load_module_still_exports_the_shapes():
    from catkit.whatif import load

    for name in ("Shape", "Constant", "Ramp", "Step", "Spike", "Diurnal", "Replay", "Sum", "Scaled", "Clipped",
                 "as_shape", "arrival_times", "example_workday_traffic", "SHAPES"):
        assert getattr(load, name) is getattr(shapes, name), name
