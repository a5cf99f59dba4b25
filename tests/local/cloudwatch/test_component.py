"""The metrics_store and cloudwatch backend components: install(), the evaluation loop, reload."""

from __future__ import annotations

import asyncio
from typing import Any

from catkit.autoscaling import metrics_store
from catkit.autoscaling.alarms import AlarmBook, AlarmSpec
from catkit.local.clock import FakeClock
from catkit.local.services import cloudwatch

T0 = 1_700_000_040.0


class FakeBackend:
    """The part of catkit.local.backend.Backend that components use."""

    def __init__(self, state: Any) -> None:
        self.clock = FakeClock(start=T0)
        self.state = state
        self.region = "eu-west-1"
        self.account_id = "111122223333"
        self.services: dict[str, Any] = {}
        self.backgrounds: list[Any] = []
        self.shutdowns: list[Any] = []

    def add_service(self, name: str, service: Any) -> None:
        self.services[name] = service

    def add_background(self, factory: Any) -> None:
        self.backgrounds.append(factory)

    def add_shutdown(self, fn: Any) -> None:
        self.shutdowns.append(fn)


def installed(state: Any) -> FakeBackend:
    backend = FakeBackend(state)
    metrics_store.install(backend)
    cloudwatch.install(backend)
    return backend


def test_install_wires_store_book_service_and_loop(state) -> None:
    backend = installed(state)
    assert isinstance(backend.metrics, metrics_store.MetricStore)
    assert isinstance(backend.alarms, AlarmBook)
    assert backend.alarms.arn_for("x") == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:x"
    assert backend.services["cloudwatch"].alarms is backend.alarms
    assert backend.services["cloudwatch"].metrics is backend.metrics
    assert len(backend.backgrounds) == 1 and len(backend.shutdowns) == 1


def test_install_keeps_an_existing_alarm_book(state) -> None:
    backend = FakeBackend(state)
    book = AlarmBook()
    backend.alarms = book
    metrics_store.install(backend)
    cloudwatch.install(backend)
    assert backend.alarms is book


def test_metric_store_ages_data_on_the_backend_clock(state) -> None:
    backend = installed(state)
    backend.metrics.record("NS", "M", {}, 1.0, T0, storage_resolution=1)
    backend.clock.advance(4 * 3600)
    backend.metrics.compact()
    assert backend.metrics.bucket_count() == 1  # rolled into a minute bucket
    backend.clock.advance(16 * 86400)
    backend.metrics.compact()
    assert backend.metrics.bucket_count() == 0


def test_loop_evaluates_every_ten_emulated_seconds_and_shutdown_saves(state) -> None:
    backend = installed(state)
    spec = AlarmSpec(
        alarm_name="hr",
        namespace="NS",
        metric_name="M",
        statistic="Maximum",
        period=10,
        evaluation_periods=1,
        threshold=5.0,
    )
    backend.alarms.put_alarm(spec, backend.clock.now())
    for i in range(6):
        backend.metrics.record("NS", "M", {}, 9.0, T0 + i * 10 + 1, storage_resolution=1)

    async def scenario() -> None:
        task = asyncio.create_task(backend.backgrounds[0]())
        while backend.clock.now() < T0 + 30:
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for fn in backend.shutdowns:
            await fn()

    asyncio.run(scenario())
    assert backend.clock.now() % 10 == 0
    assert backend.alarms.get("hr").state_value == "ALARM"
    reloaded = cloudwatch.load_alarm_book(state, "eu-west-1", "111122223333")
    assert reloaded.get("hr").state_value == "ALARM"


def test_reinstall_after_restart_loads_persisted_alarms(state) -> None:
    first = installed(state)
    svc = first.services["cloudwatch"]
    from catkit.local.services.base import RequestContext

    svc.put_metric_alarm(
        {
            "AlarmName": "a",
            "Namespace": "NS",
            "MetricName": "M",
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
        RequestContext(),
    )
    second = installed(state.snapshot())
    assert second.alarms.get("a") is not None


def test_unreadable_alarm_row_starts_empty_and_is_backed_up(state) -> None:
    doc = {"alarms": [{"spec": {"bogus": 1}}]}
    state.put(cloudwatch.STATE_KIND, cloudwatch.STATE_KEY_ALARMS, doc)
    book = cloudwatch.load_alarm_book(state, "us-east-1", "123456789012")
    assert book.list() == []
    assert state.get(cloudwatch.STATE_KIND, cloudwatch.STATE_KEY_ALARMS + ".unreadable") == doc
