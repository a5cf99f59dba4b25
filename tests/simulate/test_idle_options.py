"""The idle-cost options in the simulator: async scale to zero through the scaling driver,
serverless cold starts and throttling, and the four-way comparison."""

from __future__ import annotations

import numpy as np
import pytest

from catkit import cost
from catkit.instance_types import get_instance_type
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate.idle import (
    compare_idle_options,
    example_spiky_day,
    idle_options_frame,
    simulate_async,
    simulate_serverless,
)

SERVICE = ServiceModel(max_rps=10.0, workers=1)  # 100 ms per request


def test_async_scales_zero_one_zero():
    rate = np.zeros(4 * 3600)
    rate[3600:3660] = 1.0  # one minute of traffic after an idle hour
    r = simulate_async(rate, SERVICE, duration_s=len(rate), max_capacity=2, scale_in_cooldown=300)
    assert r.capacity[:3600].max() == 0  # nothing runs while idle
    assert r.capacity[3600:].max() >= 1  # HasBacklogWithoutCapacity woke one instance
    assert r.capacity[-1] == 0  # and target tracking took it back to zero
    assert r.cold_starts == 1 and r.requests == 60
    assert r.p99_ms >= 240_000  # the first requests waited for the provisioning delay
    price = get_instance_type("ml.m5.xlarge").price_per_hour
    assert 0 < r.cost_usd < 4 * price  # paid for well under the 4 hours


def test_serverless_cold_starts_after_idle_and_throttles():
    rate = np.zeros(3600)
    rate[0] = 1
    rate[100] = 1  # warm: within the idle period
    rate[2000] = 1  # cold again after > 600 s idle
    r = simulate_serverless(rate, SERVICE, duration_s=3600, memory_mb=1024, max_concurrency=2, cold_start_s=5)
    assert r.cold_starts == 2 and r.requests == 3
    assert r.p99_ms == pytest.approx(5100.0)
    busy = np.full(120, 50.0)  # 50 req/s x 0.1 s = 5 concurrent > MaxConcurrency 2 (20 req/s)
    t = simulate_serverless(busy, SERVICE, duration_s=120, memory_mb=1024, max_concurrency=2)
    assert t.throttled == 120 * 30 and t.requests == 120 * 20
    assert t.cost_usd == pytest.approx(cost.serverless_cost(2400, 0.1, 1024).total_usd)


def test_compare_four_options_on_a_spiky_day():
    opts = compare_idle_options(example_spiky_day(2.0), SERVICE, duration_s=86400, instances=2)
    frame = idle_options_frame(opts)
    assert list(frame["option"]) == ["real-time 24/7", "real-time, night schedule", "async, scale to zero",
                                     "serverless"]
    price = get_instance_type("ml.m5.xlarge").price_per_hour
    assert opts[0].cost_usd == pytest.approx(2 * 24 * price)
    assert opts[0].cost_usd > opts[1].cost_usd > opts[2].cost_usd > opts[3].cost_usd
    assert opts[2].cold_starts >= 4 and opts[3].cold_starts >= 4
    assert len({o.requests for o in opts}) == 1
