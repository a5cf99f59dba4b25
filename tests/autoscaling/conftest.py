"""A fake world for engine tests: one SageMaker variant behind the scaling driver, on a fake clock.

``World`` is a :class:`catkit.autoscaling.driver.FleetPort`: ``World.step(load)`` sets the load for
the next 10 s (invocations per minute spread over the *active* instances, and concurrency when
given) and steps the one :class:`~catkit.autoscaling.driver.ScalingDriver`, which records the
metrics, evaluates the alarms, asks the engine, applies and settles - the same step the local
backend and the simulator run. Capacity changes finish after ``provisioning_s`` (0 = at once),
like instances that need time to launch.
"""

from __future__ import annotations

import pytest

from catkit.autoscaling.driver import ConcurrencySample, ScalingDriver, VariantStatus
from catkit.autoscaling.engine import Decision, Engine
from catkit.autoscaling.metrics_store import MetricStore

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 3600)  # an hour boundary
RID = "endpoint/ep/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
NS = "AWS/SageMaker"
DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}
SEED_POLICY = {
    "TargetValue": 1000.0,
    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    "ScaleOutCooldown": 60,
    "ScaleInCooldown": 300,
}


class World:
    def __init__(
        self,
        min_capacity: int = 2,
        max_capacity: int = 10,
        capacity: int = 2,
        provisioning_s: float = 0.0,
        register: bool = True,
    ) -> None:
        self.now = T0
        self.metrics = MetricStore()
        self.driver = ScalingDriver(Engine(), self.metrics, self)
        self.desired = capacity
        self.active = capacity
        self.provisioning_s = provisioning_s
        self.done_at: float | None = None  # when the running capacity change finishes
        self.timeline: list[tuple[float, int]] = []
        self.decisions: list[Decision] = []
        self._load = (0.0, None)
        self._recorded = T0
        if register:
            self.engine.register_scalable_target("sagemaker", RID, DIM, self.now, min_capacity, max_capacity)

    def put_policy(self, name: str = "seed", config: dict | None = None, **kw):
        return self.engine.put_scaling_policy(
            name,
            "sagemaker",
            RID,
            DIM,
            self.now,
            policy_type=kw.pop("policy_type", "TargetTrackingScaling"),
            target_tracking_config=config or SEED_POLICY,
            **kw,
        )

    @property
    def engine(self) -> Engine:
        return self.driver.engine

    @engine.setter
    def engine(self, engine: Engine) -> None:  # e.g. an engine restored from its saved state
        self.driver.engine = engine

    def capacity(self, resource_id: str) -> int | None:
        """What the engine sees as current capacity (for tests that call ``engine.tick`` directly)."""
        return self.desired if resource_id == RID else None

    # -- FleetPort ------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        load, _ = self._load
        if now > self._recorded:  # the data plane of the elapsed 10 s, at its first second
            self.metrics.record(NS, "Invocations", DIMS, load / 6, self._recorded + 1)
            self.metrics.record(NS, "InvocationsPerInstance", DIMS, load / 6 / self.active, self._recorded + 1)
            self._recorded = now
        if self.done_at is not None and now >= self.done_at:
            self.done_at = None
            self.active = self.desired

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        if resource_id != RID:
            return None
        return VariantStatus("Updating" if self.done_at is not None else "InService", self.desired)

    def set_capacity(self, resource_id: str, desired: int) -> None:
        self.desired = desired
        if self.provisioning_s <= 0:
            self.active = desired
        else:
            self.done_at = self.now + self.provisioning_s

    def concurrency_samples(self, now: float) -> list[ConcurrencySample]:
        _, concurrency = self._load
        if concurrency is None:
            return []
        return [ConcurrencySample(now - 10, DIMS, [concurrency / self.active])]

    def next_change(self, now: float) -> float | None:
        return self.done_at

    # -- driving ----------------------------------------------------------------------------------
    def step(self, load_per_minute: float, concurrency: float | None = None) -> list[Decision]:
        self._load = (load_per_minute, concurrency)
        self.now += 10
        out = self.driver.step(self.now)
        self.decisions.extend(out)
        self.timeline.append((self.now, self.desired))
        return out

    def run(self, seconds: float, load_per_minute: float, concurrency: float | None = None) -> None:
        for _ in range(round(seconds / 10)):
            self.step(load_per_minute, concurrency)

    def first_change_after(self, t: float) -> float | None:
        for d_t, d in ((a.start_time, a) for a in reversed(self.activities())):
            if d_t > t and d.desired_capacity is not None:
                return d_t
        return None

    def activities(self, include_not_scaled: bool = False):
        return self.engine.describe_scaling_activities("sagemaker", RID, DIM, include_not_scaled)


@pytest.fixture
def world():
    return World()
