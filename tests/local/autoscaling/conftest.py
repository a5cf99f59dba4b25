"""A fake backend for the application-autoscaling component: FakeClock, the real core parts
(StateStore, MetricStore, AlarmBook, ScalingDriver, Scheduler) and a fake endpoint manager with
UpdateEndpointWeightsAndCapacities semantics (Updating for the provisioning delay, then
InService) behind the real EndpointFleet port - no processes, no HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from catkit.autoscaling.alarms import AlarmBook
from catkit.autoscaling.driver import ScalingDriver
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local import components
from catkit.local.clock import FakeClock
from catkit.local.errors import AwsError
from catkit.local.fleet.scaling_port import EndpointFleet
from catkit.local.scheduler import Scheduler
from catkit.local.services.base import RequestContext
from catkit.local.services.cloudwatch_store import AlarmPersistence
from catkit.local.storage.state import StateStore

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 3600)
RID = "endpoint/ep/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}


@dataclass(frozen=True)
class View:
    endpoint_name: str
    variant_name: str
    desired_instance_count: int
    current_instance_count: int
    status: str
    instance_type: str = "ml.m5.xlarge"
    current_weight: float = 1.0
    desired_weight: float = 1.0


class FakeEndpoints:
    def __init__(self, clock: FakeClock, provisioning_s: float = 240.0) -> None:
        self.clock = clock
        self.provisioning_s = provisioning_s
        self.views: dict[tuple[str, str], View] = {}
        self.ready_at: dict[tuple[str, str], float] = {}
        self.deleted: list = []
        self.guards: list = []
        self.calls: list[tuple[float, str, str, int]] = []

    def add(self, endpoint: str, variant: str = "AllTraffic", count: int = 2) -> None:
        self.views[(endpoint.lower(), variant)] = View(endpoint, variant, count, count, "InService")

    def get_variant(self, endpoint: str, variant: str) -> View | None:
        key = (endpoint.lower(), variant)
        view = self.views.get(key)
        if view is not None and key in self.ready_at and self.clock.now() >= self.ready_at[key]:
            del self.ready_at[key]
            view = self.views[key] = replace(
                view, status="InService", current_instance_count=view.desired_instance_count
            )
        return view

    def set_desired_instance_count(self, endpoint: str, variant: str, n: int) -> None:
        view = self.get_variant(endpoint, variant)
        if view is None or view.status != "InService":
            raise AwsError("ValidationException", f'Cannot update in-progress endpoint "{endpoint}".')
        self.calls.append((self.clock.now(), endpoint, variant, n))
        self.views[(endpoint.lower(), variant)] = replace(view, desired_instance_count=n, status="Updating")
        self.ready_at[(endpoint.lower(), variant)] = self.clock.now() + self.provisioning_s

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        return {}

    def take_concurrency_samples(self) -> list:
        return []

    def on_endpoint_deleted(self, cb) -> None:
        self.deleted.append(cb)

    def add_update_guard(self, guard) -> None:
        self.guards.append(guard)

    def delete(self, endpoint: str) -> None:
        for key in [k for k in self.views if k[0] == endpoint.lower()]:
            del self.views[key]
        for cb in self.deleted:
            cb(endpoint)


class FakeBackend:
    def __init__(self, home: Path, provisioning_s: float = 240.0) -> None:
        self.home = home
        self.clock = FakeClock(T0)
        self.state = StateStore(home / "state.sqlite")
        self.metrics = MetricStore(now=self.clock.now)
        self.region, self.account_id = "us-east-1", "123456789012"
        self.alarms = AlarmBook(self.region, self.account_id)
        self.endpoints = FakeEndpoints(self.clock, provisioning_s)
        self.endpoints.add("ep")
        self.alarm_store = AlarmPersistence(self.alarms, self.state)
        self.driver = ScalingDriver(Engine(self.alarms), self.metrics, EndpointFleet(self.endpoints))
        self.scheduler = Scheduler(self.clock)
        self.autoscaling: Any = None
        self.services: dict[str, Any] = {}
        self.backgrounds: list = []
        self.shutdowns: list = []

    def add_service(self, name: str, service: Any) -> None:
        self.services[name] = service

    def add_background(self, factory) -> None:
        self.backgrounds.append(factory)

    def add_shutdown(self, fn) -> None:
        self.shutdowns.append(fn)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        service = self.services["application-autoscaling"]
        return asyncio.run(service.dispatch(operation, params, RequestContext()))

    def invoke(self, n: int, endpoint: str = "ep") -> None:
        """Record what SageMaker records for n requests now (spread over current instances)."""
        view = self.endpoints.get_variant(endpoint, "AllTraffic")
        dims = {"EndpointName": endpoint, "VariantName": "AllTraffic"}
        now = self.clock.now()
        self.metrics.record("AWS/SageMaker", "Invocations", dims, float(n), now)
        self.metrics.record(
            "AWS/SageMaker", "InvocationsPerInstance", dims, n / view.current_instance_count, now
        )

    def run(self, seconds: float, per_minute: float = 0.0) -> None:
        """Advance in 10-s steps, with per_minute requests spread evenly, ticking the controller."""
        for _ in range(round(seconds / 10)):
            if per_minute:
                self.invoke(round(per_minute / 6))
            self.clock.advance(10)
            self.autoscaling.tick(self.clock.now())

    def install(self) -> None:
        """(Re)install the application-autoscaling component, as a backend (re)start does."""
        self.scheduler = Scheduler(self.clock)
        components.install_autoscaling(self)

    def close(self) -> None:
        self.state.close()


@pytest.fixture
def fake_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path))
    b = FakeBackend(tmp_path)
    b.install()
    try:
        yield b
    finally:
        b.close()
