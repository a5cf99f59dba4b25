"""Per-period values the simulated fleet keeps between steps: never stale after a change of the
serving count (catkit/whatif/simulate/kept_periods.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catkit.autoscaling.metrics_store import MetricStore
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate.fleet import SimulatedFleet
from catkit.whatif.simulate.kept_periods import PERIODS_AHEAD, KeptPeriods
from catkit.whatif.simulate.tables import TrafficTables

SVC = ServiceModel(max_rps=40, workers=4, base_p50_ms=25, base_p99_ms=60)
DIMS = {"EndpointName": "e", "VariantName": "v"}
RID = "endpoint/e/variant/v"


def test_kept_periods_hand_out_computed_values_and_recompute_from_a_change_on():
    data = np.arange(100, dtype=np.float64)  # the value of period i, as the fleet's counts make it
    calls = []

    def compute(start: float, end: float) -> np.ndarray:
        calls.append((start, end))
        return data[int((start - 1000) // 10) : int((end - 1000) // 10)].copy()

    kept = KeptPeriods(compute, origin=1000.0, period=10, whole=100)
    assert kept.get(1020, 1050).tolist() == [2, 3, 4]
    assert calls == [(1020.0, 1020.0 + 10 * PERIODS_AHEAD)]  # one batch, from the first period asked for
    assert kept.get(1050, 1080).tolist() == [5, 6, 7] and len(calls) == 1  # kept: no new computation
    with pytest.raises(ValueError):
        kept.get(1000, 1010).__setitem__(0, 1.0)  # read-only
    data[4:] += 100  # the serving count changes at second 1045 (period 4 on)
    kept.drop_from(1045)
    assert kept.get(1020, 1070).tolist() == [2, 3, 104, 105, 106]  # recomputed from period 4, not stale
    assert calls[-1][0] == 1040.0
    # not whole periods of the traffic, or not on period boundaries: not kept
    assert kept.get(990, 1010) is None and kept.get(1005, 1020) is None and kept.get(1900, 2010) is None
    # far ahead of what is kept: start over there rather than computing the periods in between
    assert kept.get(1800, 1810).tolist() == [180] and calls[-1][0] == 1800.0
    assert kept.get(1000, 1010).tolist() == [0]


def _fresh(fleet: SimulatedFleet, name: str, statistic: str, period: int, start: float, end: float) -> np.ndarray:
    return fleet._values(name, statistic, start, end, period)  # computed now, nothing kept


@pytest.mark.parametrize("shared", [True, False])
def test_fleet_reads_equal_fresh_computations_after_every_change(shared):
    rng = np.random.default_rng(11)
    n = 4 * 3600
    rate = np.abs(50 + 30 * np.sin(np.arange(n) / 900.0) + rng.normal(0, 8, n))
    t0 = 1_000_000.0
    tables = TrafficTables(rate)
    store = MetricStore(lambda: fleet.now, percentiles=False)
    fleet = SimulatedFleet(tables.rate, t0, RID, DIMS, SVC, 2, store, provisioning_s=120, termination_s=30,
                           tables=tables if shared else None)
    reads = (("InvocationsPerInstance", "Sum", 60), ("Invocations", "Sum", 60),
             ("ConcurrentRequestsPerModel", "Average", 10), ("ConcurrentRequestsPerModel", "Average", 60))
    now, changes = t0, 0
    while now < t0 + n - 1200:
        now += 10.0 * float(rng.integers(3, 40))
        fleet.advance(now)
        if fleet.change is None and rng.random() < 0.6:
            fleet.set_capacity(RID, int(rng.integers(1, 7)))
            changes += 1
        for name, statistic, period in reads:
            newest = math.floor(now / period) * period - period  # the newest complete period
            start = newest - period * int(rng.integers(0, 20))
            got = fleet.forecast("AWS/SageMaker", name, DIMS, statistic, period, start, newest + 15 * period)
            want = _fresh(fleet, name, statistic, period, start, newest + 15 * period)
            np.testing.assert_array_equal(got, want)
            first, values = store.period_values("AWS/SageMaker", name, DIMS, start, newest + period, period,
                                                statistic)
            rows = store.statistics("AWS/SageMaker", name, DIMS, start, newest + period, period, [statistic])
            assert first == start
            assert {first + i * period: v for i, v in enumerate(values) if v is not None} == {
                r["Timestamp"]: r[statistic] for r in rows}
            np.testing.assert_array_equal(
                np.array([math.nan if v is None else v for v in values]),
                _fresh(fleet, name, statistic, period, start, newest + period))
    assert changes > 20 and fleet._kept  # the reads went through kept values, over many changes
