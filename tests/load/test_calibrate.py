"""Service model maths and the saturation test against a fake instance."""

from __future__ import annotations

import json

import numpy as np
import pytest
from botocore.credentials import Credentials

from catkit.whatif import load
from catkit.whatif.calibrate import ServiceModel, calibrate


def test_erlang_c_known_values():
    # M/M/1: P(wait) = rho. M/M/2 at a = 1 (rho 0.5): C = 1/3.
    one = ServiceModel(max_rps=10, workers=1)
    assert one.wait_probability([0, 2.5, 5, 9]) == pytest.approx([0, 0.25, 0.5, 0.9])
    two = ServiceModel(max_rps=10, workers=2)
    assert two.wait_probability(5.0) == pytest.approx(1 / 3)
    assert two.wait_probability([10, 12]).tolist() == [1.0, 1.0]


def test_latency_grows_with_load_and_overload_hits_the_timeout():
    m = ServiceModel(max_rps=40, workers=4, base_p50_ms=20, base_p99_ms=50)
    lam = np.linspace(0, 39.9, 200)
    p50, p99 = m.latency_ms(lam, 0.5), m.latency_ms(lam, 0.99)
    assert (np.diff(p99) >= -1e-9).all() and (p99 >= p50).all()
    assert p50[0] == pytest.approx(20) and p99[0] == pytest.approx(50)
    assert m.latency_ms(40, 0.99) == m.timeout_ms == m.latency_ms(80, 0.5)
    # M/M/1 wait quantile: P(W > t) = rho * exp(-(mu - lam) t)
    one = ServiceModel(max_rps=10, workers=1, base_p50_ms=100, base_p99_ms=100)
    expect = 100 + 1000 * np.log(0.8 / 0.01) / (10 - 8)
    assert one.latency_ms(8, 0.99) == pytest.approx(expect)
    assert one.exceed_probability(8, 100 + 1000 * np.log(0.8 / 0.01) / 2) == pytest.approx(0.01)


def test_concurrency_and_targets():
    m = ServiceModel(max_rps=40, workers=4)
    assert m.concurrency(0) == 0
    assert m.concurrency(20) > 20 / m.service_rate  # served plus queued
    assert m.invocations_target(0.5) == 1200
    assert m.concurrency_target(0.5) == pytest.approx(float(m.concurrency(20)))
    with pytest.raises(ValueError):
        m.invocations_target(0)


def test_json_round_trip_and_emulated_time(tmp_path):
    m = ServiceModel(max_rps=40, workers=4, base_p50_ms=20, base_p99_ms=50, instance_type="ml.c5.xlarge",
                     points=({"concurrency": 1.0, "throughput_rps": 10.0, "p50_ms": 20.0, "p99_ms": 50.0},))
    path = m.save(tmp_path / "svc.json")
    assert json.loads(path.read_text())["max_rps"] == 40
    assert ServiceModel.load(path) == m
    e = m.in_emulated_time(60)
    assert e.max_rps == pytest.approx(40 / 60) and e.base_p50_ms == pytest.approx(1200) and e.workers == 4


@pytest.mark.parametrize(
    "kwargs",
    [{"max_rps": 0}, {"max_rps": -1}, {"max_rps": 10, "workers": 0},
     {"max_rps": 10, "base_p50_ms": 50, "base_p99_ms": 10}],
)
def test_invalid_models(kwargs):
    with pytest.raises(ValueError):
        ServiceModel(**kwargs)


def test_from_points_fits_saturation_and_littles_law():
    pts = [
        {"concurrency": 1, "throughput_rps": 50, "mean_ms": 20, "p50_ms": 19, "p99_ms": 30},
        {"concurrency": 2, "throughput_rps": 95, "mean_ms": 21, "p50_ms": 20, "p99_ms": 35},
        {"concurrency": 4, "throughput_rps": 100, "mean_ms": 40, "p50_ms": 39, "p99_ms": 60},
        {"concurrency": 8, "throughput_rps": 98, "mean_ms": 80, "p50_ms": 80, "p99_ms": 120},
    ]
    m = ServiceModel.from_points(pts, "ml.m5.large")
    assert (m.max_rps, m.workers, m.base_p50_ms, m.base_p99_ms) == (100, 2, 19, 30)
    assert len(m.points) == 4 and m.instance_type == "ml.m5.large"
    with pytest.raises(ValueError, match="no usable"):
        ServiceModel.from_points([{"concurrency": 1, "throughput_rps": 0, "p50_ms": 0}])


def test_calibrate_finds_a_two_worker_instance(fake_endpoint):
    # Two workers, 40 ms each: at most 50 req/s; Little's law gives two workers.
    ep = fake_endpoint(workers=2, service_s=0.04)
    target = load.Target(ep.url, "us-east-1", Credentials("AK", "SK"), "one-instance", local=True)
    m = calibrate(target, levels=(1, 2, 4, 8), seconds_per_level=0.6, progress=False)
    assert 1 <= len(m.points) <= 4
    assert m.max_rps <= 50 * 1.05
    assert m.max_rps >= 20  # loose: a busy CI box still gets well past one worker's 25 req/s
    assert 1 <= m.workers <= 3
    assert m.base_p50_ms >= 40
    assert m.source.startswith("calibrated against one-instance")


def test_many_workers_stay_finite():
    m = ServiceModel(max_rps=1e6, workers=1024)
    p = m.wait_probability([0, 5e5, 9.9e5, 2e6])
    assert np.isfinite(p).all() and p[0] == 0 and 0 < p[2] < 1 and p[3] == 1
    assert np.isfinite(m.concurrency(5e5))


def test_peak_concurrency_is_at_least_the_mean_and_matches_poisson_limits():
    m = ServiceModel(max_rps=40, workers=4, base_p50_ms=25, base_p99_ms=60)
    lam = np.array([0.0, 0.01, 0.1, 1.0, 10.0, 30.0])
    peak, mean = m.peak_concurrency(lam), m.concurrency(lam)
    assert (peak >= mean).all() and peak[0] == 0
    # rare requests: the peak over 10 s is ~ P(at least one request in the window)
    assert peak[1] == pytest.approx(1 - np.exp(-0.01 * 10), rel=0.05)
    assert (np.diff(peak) > 0).all()
    assert m.concurrency_target(0.5, "peak") > m.concurrency_target(0.5)
    with pytest.raises(ValueError, match="mean' or 'peak"):
        m.concurrency_target(0.5, "p99")
