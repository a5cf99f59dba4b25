"""The simulator and the local backend's fleet port give the driver the same inputs: same decisions.

Two runs of the same traffic on a fake clock, each through the one
:class:`~catkit.autoscaling.driver.ScalingDriver`:

* the **backend side**: the backend's own :class:`~catkit.local.fleet.scaling_port.EndpointFleet`
  port over a fake endpoint manager; every request is recorded by the backend's data plane
  (:meth:`catkit.local.fleet.invoke.DataPlane.record`) in the second it arrives, the driver is
  stepped every 10 s like the backend's scheduler, concurrency comes as in-flight peaks per window;
* the **simulator**: :func:`catkit.whatif.simulate.simulate` with its own fleet port, per-minute
  statistic sets and event skipping (it steps only where something can change).

The fake manager launches and retires instances the way the simulator assumes (scale-out: new
instances serve after ``PROVISIONING_S``; scale-in: removed instances stop taking traffic at once,
the variant is Updating for ``TERMINATION_S``), so any difference in decisions comes from the
driver's inputs. Both the 1-minute and the high-resolution metric, on a step and on a spiky trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from catkit.autoscaling import AlarmBook, Engine
from catkit.autoscaling.config import ScalingConfig
from catkit.autoscaling.driver import ScalingDriver
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.clock import FakeClock
from catkit.local.errors import AwsError
from catkit.local.fleet.invoke import DataPlane
from catkit.local.fleet.scaling_port import EndpointFleet
from catkit.local.fleet.state import Variant
from catkit.names import variant_dimensions
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate import simulate

T0 = 1_704_067_200.0  # an hour boundary
PROVISIONING_S = 240.0
TERMINATION_S = 60.0
SVC = ServiceModel(max_rps=2.0, workers=2, base_p50_ms=300, base_p99_ms=900)
RID = "endpoint/ep/variant/AllTraffic"


@dataclass(frozen=True)
class View:
    endpoint_name: str
    variant_name: str
    desired_instance_count: int
    status: str


class FakeManager:
    """The EndpointManager calls the scaling port makes, with the simulator's launch/retire rules."""

    def __init__(self, clock: FakeClock, capacity: int) -> None:
        self.clock = clock
        self.desired = self.serving = capacity
        self.change: tuple[float, int] | None = None  # (ready_at, serving after)
        self.window: list[float] = []  # per-second concurrency per instance since the last sample

    def tick(self) -> None:
        if self.change is not None and self.clock.now() >= self.change[0]:
            self.serving, self.change = self.change[1], None

    def get_variant(self, endpoint: str, variant: str) -> View | None:
        self.tick()
        status = "Updating" if self.change is not None else "InService"
        return View(endpoint, variant, self.desired, status) if (endpoint, variant) == ("ep", "AllTraffic") else None

    def describe_endpoint(self, name: str) -> dict:
        return {}

    def set_desired_instance_count(self, endpoint: str, variant: str, n: int) -> None:
        if self.change is not None:
            raise AwsError("ValidationException", 'Cannot update in-progress endpoint "ep".')
        now = self.clock.now()
        if n >= self.serving:
            self.change = (now + PROVISIONING_S, n)
        else:
            self.serving = n  # removed instances stop taking traffic at once
            self.change = (now + TERMINATION_S, n)
        self.desired = n

    def take_concurrency_samples(self) -> list[tuple[dict[str, str], list[float]]]:
        values = [float(np.mean(self.window))] * self.serving if self.window else []
        self.window = []
        return [(variant_dimensions("ep"), values)]


def backend_side(counts: np.ndarray, config: ScalingConfig, capacity: int) -> list[tuple[float, int, str]]:
    clock = FakeClock(T0)
    metrics = MetricStore(now=clock.now)
    manager = FakeManager(clock, capacity)
    engine = Engine(AlarmBook())
    driver = ScalingDriver(engine, metrics, EndpointFleet(manager))
    for op, kwargs in config.requests("ep"):
        {"register_scalable_target": _register, "put_scaling_policy": _policy}[op](engine, T0, kwargs)
    data = DataPlane({}, clock, "us-east-1", "123456789012", metrics=lambda: metrics, resumed=lambda: True)
    variant = Variant("ep", {"VariantName": "AllTraffic", "DesiredInstanceCount": capacity})
    lam_grid = np.linspace(0.0, SVC.max_rps, 4097)
    conc = np.append(SVC.concurrency(lam_grid[:-1]), SVC.concurrency(lam_grid[-2:-1]))
    try:
        for s, n in enumerate(counts):
            clock._now = T0 + s
            if s and s % 10 == 0:
                driver.step(clock.now())  # the backend's scheduler: every 10 s on the boundary
            manager.tick()
            clock._now = T0 + s + 0.5  # requests of second s arrive within it
            for _ in range(int(n)):
                data.record(variant, 200, None, 1000.0, 100.0, manager.serving)
            lam = n / manager.serving
            manager.window.append(float(conc[-1] if lam >= SVC.max_rps else np.interp(lam, lam_grid, conc)))
    finally:
        data.http.close()
    return _events(engine)


def _register(engine: Engine, now: float, kw: dict) -> None:
    engine.register_scalable_target(kw["ServiceNamespace"], kw["ResourceId"], kw["ScalableDimension"], now,
                                    min_capacity=kw["MinCapacity"], max_capacity=kw["MaxCapacity"])


def _policy(engine: Engine, now: float, kw: dict) -> None:
    engine.put_scaling_policy("simulated-policy", kw["ServiceNamespace"], kw["ResourceId"], kw["ScalableDimension"],
                              now, policy_type="TargetTrackingScaling",
                              target_tracking_config=kw["TargetTrackingScalingPolicyConfiguration"])


def _events(engine: Engine) -> list[tuple[float, int, str]]:
    acts = reversed(engine.describe_scaling_activities("sagemaker", RID))
    return [(a.start_time, a.desired_capacity, a.status_code) for a in acts]


def simulator_side(counts: np.ndarray, config: ScalingConfig, capacity: int) -> list[tuple[float, int, str]]:
    res = simulate(counts.astype(float), config, SVC, duration_s=len(counts), start=T0, initial_capacity=capacity,
                   provisioning_s=PROVISIONING_S, termination_s=TERMINATION_S, endpoint_name="ep")
    a = res.activities
    return [(float(t), int(c), s) for t, c, s in zip(a["start_time"], a["desired_capacity"], a["status"], strict=True)]


def step_trace(hours: float = 3.0) -> np.ndarray:
    n = int(hours * 3600)
    rate = np.where((np.arange(n) > 1800) & (np.arange(n) < 5400), 5.0, 0.6)
    return np.random.default_rng(7).poisson(rate)


def spiky_trace(hours: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(11)
    n = int(hours * 3600)
    rate = 1.0 + 0.8 * np.sin(np.arange(n) / 900.0)
    for start in rng.integers(0, n - 600, 6):
        rate[start : start + rng.integers(60, 400)] += rng.uniform(2, 6)
    return rng.poisson(np.clip(rate, 0, None))


CONFIGS = {
    "1-minute": ScalingConfig(min_capacity=1, max_capacity=8, target_value=60.0, scale_out_cooldown=60,
                              scale_in_cooldown=120),
    "high-resolution": ScalingConfig(min_capacity=1, max_capacity=8, target_value=0.5, metric="high_resolution",
                                     scale_out_cooldown=60, scale_in_cooldown=120),
}


@pytest.mark.parametrize("trace", [step_trace, spiky_trace], ids=["step", "spiky"])
@pytest.mark.parametrize("metric", list(CONFIGS))
def test_same_traffic_same_decisions(trace, metric):
    counts = trace()
    config = CONFIGS[metric]
    backend = backend_side(counts, config, capacity=1)
    simulated = simulator_side(counts, config, capacity=1)
    scaled = [e for e in backend if e[2] == "Successful"]
    assert len(scaled) >= 2, backend  # the trace scales out and back in
    assert simulated == backend
