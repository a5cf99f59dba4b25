"""A run's summary from the shared per-traffic tables (segment by segment, the load histogram run
by run) equals the summary computed second by second from its arrays.

Tolerance: the histogram's bin weights are the same requests summed in another order (per run,
and a partial run as a difference of a long-double running sum), so they agree to rounding -
relative 1e-12 per bin here; cost, instance counts and events are integer sums and agree exactly;
latency and slow fraction, computed from the weights, agree to relative 1e-9 (the p99 bisection
stops within ``timeout_ms * 2**-40`` of the same root either way).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from catkit.autoscaling.config import SEED_CONFIG
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate.result import SimulationResult
from catkit.whatif.simulate.tables import HIST_LINEAR, HIST_TAIL, TrafficTables

SVC = ServiceModel(max_rps=20, workers=4, base_p50_ms=40, base_p99_ms=120)


def _rate(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    t = np.arange(n)
    smooth = 30 + 25 * np.sin(t / n * 6 * np.pi) + np.where((t % 5000) < 300, 60.0, 0.0)
    if kind == "smooth":
        return smooth
    if kind == "noisy":
        return rng.poisson(smooth).astype(float)
    steps = np.repeat(rng.choice([0.0, 0.5, 12.0, 39.9, 40.0, 41.0, 95.0], 40), -(-n // 40))[:n]
    return steps  # piecewise constant, idle stretches and exact capacity included


def _serving(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    cuts = np.sort(rng.choice(np.arange(1, n), rng.integers(0, 60), replace=False))
    edges = np.concatenate(([0], cuts, [n]))
    counts = rng.integers(1, 7, len(edges) - 1)
    serving = np.repeat(counts, np.diff(edges)).astype(np.int32)
    return serving, serving + rng.integers(0, 2, n).astype(np.int32)


@pytest.mark.parametrize("kind", ["smooth", "noisy", "steps"])
def test_summary_from_shared_tables_equals_the_per_second_summary(kind):
    rng = np.random.default_rng(["smooth", "noisy", "steps"].index(kind))
    n = 40_000
    tables = TrafficTables(_rate(rng, n, kind))
    for _ in range(6):
        serving, billed = _serving(rng, n)
        common = dict(config=SEED_CONFIG, service=SVC, start=0.0, rate=tables.rate, serving=serving, billed=billed,
                      price_per_hour=0.23, activities=None, wall_seconds=1.0, ticks=1)
        shared = SimulationResult(**common, tables=tables)
        direct = SimulationResult(**common)
        assert shared._shared() and not direct._shared()
        w_shared, _ = shared._load_histogram()
        w_direct, _ = direct._load_histogram()
        assert len(w_shared) == HIST_LINEAR + HIST_TAIL + 1
        np.testing.assert_allclose(w_shared, w_direct, rtol=1e-12, atol=1e-9)
        a, b = shared.summary(300.0), direct.summary(300.0)
        assert a.keys() == b.keys()
        for key in ("cost_usd", "instance_hours", "instances_min", "instances_max", "instances_mean",
                    "scaling_events", "requests"):
            assert a[key] == b[key], key
        for key in ("overload_requests", "overload_fraction", "p50_ms", "p99_ms", "slow_fraction"):
            assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12, nan_ok=True), key
    # Both encodings of the tables were exercised: run-length for smooth traffic, per second for noise.
    encoded = [runs is not None for runs in tables._runs.values()]
    assert any(encoded) if kind != "noisy" else not all(encoded)


def test_forecasts_from_shared_tables_equal_the_fleets_own():
    """The simulated fleet's forecasts for periods after its last change come from whole-traffic
    values per serving count kept in the shared tables: the same numbers as its own computation."""
    from catkit.autoscaling.metrics_store import MetricStore
    from catkit.whatif.simulate.fleet import SimulatedFleet

    rng = np.random.default_rng(7)
    rate = _rate(rng, 6 * 3600, "noisy") * (np.arange(6 * 3600) % 5000 > 400)  # idle stretches too
    t0 = 1_000_007.0  # off the minute and off the 10-second grid
    dims = {"EndpointName": "e", "VariantName": "v"}
    tables = TrafficTables(rate)
    fleets = [SimulatedFleet(tables.rate, t0, "endpoint/e/variant/v", dims, SVC, 2, MetricStore(lambda: 0.0),
                             provisioning_s=60, termination_s=20, tables=shared) for shared in (tables, None)]
    assert fleets[0].shared and not fleets[1].shared
    now = t0
    for step in range(40):
        now += float(rng.integers(1, 60)) * 10
        desired = int(rng.integers(1, 7))
        for fleet in fleets:
            fleet.advance(now)
            if step % 3 == 0 and fleet.change is None:
                fleet.set_capacity("endpoint/e/variant/v", desired)
        for name, period, statistic in (("InvocationsPerInstance", 60, "Sum"), ("Invocations", 60, "SampleCount"),
                                        ("ConcurrentRequestsPerModel", 10, "Average"),
                                        ("ConcurrentRequestsPerModel", 60, "Maximum")):
            start = (math.floor(now / period) - int(rng.integers(0, 20))) * period
            got = [f.forecast("AWS/SageMaker", name, dims, statistic, period, start, start + 300 * period)
                   for f in fleets]
            np.testing.assert_array_equal(got[0], got[1])
    assert any(key[0] == "forecast" for key in tables.kept)


def test_a_simulation_result_pickles_with_its_deferred_fields_built():
    import pickle

    from catkit.whatif.simulate import simulate

    rng = np.random.default_rng(7)
    res = simulate(_rate(rng, 7_200, "steps"), SEED_CONFIG, SVC, duration_s=7_200)
    assert "_deferred_billed" in res.__dict__  # billed and activities are built when first read
    back = pickle.loads(pickle.dumps(res))
    np.testing.assert_array_equal(back.billed, res.billed)
    assert back.activities.equals(res.activities)
    assert back.summary(300.0) == res.summary(300.0)
