"""Fixtures for the CloudWatch service tests: a FakeClock, an in-memory state store, the service."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from catkit.autoscaling.alarms import AlarmBook
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.clock import FakeClock
from catkit.local.services.base import RequestContext
from catkit.local.services.cloudwatch import CloudWatchService

T0 = 1_700_000_040.0  # a minute boundary


class MemoryState:
    """StateStore's interface in memory; documents round-trip through JSON like the real one."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}
        self.puts = 0

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self.rows[(kind, key)] = json.dumps(doc)
        self.puts += 1

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self.rows.get((kind, key))
        return None if raw is None else json.loads(raw)

    def delete(self, kind: str, key: str) -> bool:
        return self.rows.pop((kind, key), None) is not None

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return sorted((k, json.loads(v)) for (kd, k), v in self.rows.items() if kd == kind)

    def snapshot(self) -> MemoryState:
        other = MemoryState()
        other.rows = copy.deepcopy(self.rows)
        return other


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
def cw(clock: FakeClock, state: MemoryState) -> CloudWatchService:
    return CloudWatchService(MetricStore(now=clock.now), AlarmBook(), clock.now, state)


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(region="us-east-1", account_id="123456789012", service="cloudwatch")
