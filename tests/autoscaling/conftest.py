"""A fake world for engine tests: one SageMaker variant, a fake clock, metrics in memory.

``World.step(load)`` advances 10 s, records what SageMaker would emit for ``load`` invocations
per minute spread over the *active* instances (InvocationsPerInstance; ConcurrentRequestsPerModel
when ``concurrency`` is given), ticks the engine and applies its decisions. Decisions become
active after ``provisioning_s`` (0 = at once), like instances that need time to launch.
"""

from __future__ import annotations

import pytest

from catkit.autoscaling.engine import Decision, Engine
from catkit.autoscaling.memory_metrics import MemoryMetrics

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
        self.metrics = MemoryMetrics()
        self.engine = Engine()
        self.desired = capacity
        self.active = capacity
        self.provisioning_s = provisioning_s
        self.inflight: list[tuple[float, Decision]] = []
        self.timeline: list[tuple[float, int]] = []
        self.decisions: list[Decision] = []
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

    def capacity(self, resource_id: str) -> int | None:
        return self.desired if resource_id == RID else None

    def step(self, load_per_minute: float, concurrency: float | None = None) -> list[Decision]:
        self.metrics.record(NS, "Invocations", DIMS, load_per_minute / 6, self.now + 1)
        self.metrics.record(
            NS, "InvocationsPerInstance", DIMS, load_per_minute / 6 / self.active, self.now + 1
        )
        if concurrency is not None:
            self.metrics.record(
                NS, "ConcurrentRequestsPerModel", DIMS, concurrency / self.active, self.now + 1
            )
        self.now += 10
        for done_at, d in list(self.inflight):
            if self.now >= done_at:
                self.inflight.remove((done_at, d))
                self.active = d.desired_capacity
                self.engine.complete(d.activity_id, True, "", self.now)
        out = self.engine.tick(self.now, self.metrics, self.capacity)
        for d in out:
            self.decisions.append(d)
            self.desired = d.desired_capacity
            self.engine.accepted(d.activity_id, self.now)
            if self.provisioning_s <= 0:
                self.active = d.desired_capacity
                self.engine.complete(d.activity_id, True, "", self.now)
            else:
                self.inflight.append((self.now + self.provisioning_s, d))
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
