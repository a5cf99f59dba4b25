"""The backend's core (one metric store, one alarm book, one scaling step) and the cloudwatch component.

A real :class:`catkit.local.backend.Backend` on a fake clock, assembled but not listening: the
scheduler's jobs are run by hand (``run_due``), so every test is exact in emulated time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from catkit.autoscaling.alarms import AlarmBook, AlarmSpec
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.backend import Backend
from catkit.local.clock import FakeClock
from catkit.local.services import cloudwatch
from catkit.local.services.base import RequestContext

T0 = 1_700_000_040.0


def assembled(home: Path, components: tuple[str, ...] = ("cloudwatch",)) -> Backend:
    backend = Backend(home, clock=FakeClock(start=T0), components=components, region="eu-west-1",
                      account_id="111122223333")
    backend._install_components()
    return backend


def shut_down(backend: Backend) -> None:
    async def hooks() -> None:
        for fn in reversed(backend._shutdowns):
            await fn()

    asyncio.run(hooks())
    backend.state.close()


def test_one_store_one_book_one_driver_and_cloudwatch_uses_them(tmp_path: Path) -> None:
    backend = assembled(tmp_path)
    try:
        assert isinstance(backend.metrics, MetricStore)
        assert isinstance(backend.alarms, AlarmBook)
        assert backend.alarms.arn_for("x") == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:x"
        service = backend.services["cloudwatch"]
        assert service is backend.cloudwatch
        assert service.alarms is backend.alarms and service.metrics is backend.metrics
        assert backend.driver.engine.alarms is backend.alarms  # the step evaluates this book
        assert backend.installed_components == ["cloudwatch"]
        names = [j.name for j in sorted(backend.scheduler.jobs, key=lambda j: j.order)]
        assert names.index("scaling-step") < names.index("cloudwatch-actions") < names.index("alarms-save")
    finally:
        shut_down(backend)


def test_old_component_module_names_still_select_components(tmp_path: Path) -> None:
    backend = assembled(tmp_path, ("catkit.local.metrics_store", "catkit.local.services.cloudwatch"))
    try:
        assert backend.installed_components == ["cloudwatch"]  # the metric store is core now
    finally:
        shut_down(backend)


def test_metric_store_ages_data_on_the_backend_clock(tmp_path: Path) -> None:
    backend = assembled(tmp_path)
    try:
        backend.metrics.record("NS", "M", {}, 1.0, T0, storage_resolution=1)
        backend.clock.advance(4 * 3600)
        backend.metrics.compact()
        assert backend.metrics.bucket_count() == 1  # rolled into a minute bucket
        backend.clock.advance(16 * 86400)
        backend.metrics.compact()
        assert backend.metrics.bucket_count() == 0
    finally:
        shut_down(backend)


def test_the_scaling_step_evaluates_alarms_every_ten_seconds_and_shutdown_saves(tmp_path: Path) -> None:
    backend = assembled(tmp_path)
    spec = AlarmSpec(alarm_name="hr", namespace="NS", metric_name="M", statistic="Maximum", period=10,
                     evaluation_periods=1, threshold=5.0, alarm_actions=["arn:aws:sns:eu-west-1:111122223333:t"])
    backend.alarms.put_alarm(spec, backend.clock.now())
    for i in range(6):
        backend.metrics.record("NS", "M", {}, 9.0, T0 + i * 10 + 1, storage_resolution=1)
    ran = []
    for t in (T0 + 10, T0 + 20):
        backend.clock._now = t
        ran.append(asyncio.run(backend.scheduler.run_due(t)))
    assert all(names.index("scaling-step") < names.index("cloudwatch-actions") for names in ran)
    alarm = backend.alarms.get("hr")
    assert alarm.state_value == "ALARM" and alarm.last_evaluated == T0 + 20
    # the SNS action cannot be delivered locally: the history says so
    assert any("Failed to execute action" in h.summary for h in alarm.history)
    shut_down(backend)
    reloaded = cloudwatch.load_alarm_book(assembled(tmp_path).state, "eu-west-1", "111122223333")
    assert reloaded.get("hr").state_value == "ALARM"


def test_a_new_backend_on_the_same_home_loads_persisted_alarms(tmp_path: Path) -> None:
    first = assembled(tmp_path)
    first.cloudwatch.put_metric_alarm(
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
    first.state.close()  # a crash: no shutdown hooks; PutMetricAlarm saved before answering
    second = assembled(tmp_path)
    try:
        assert second.alarms.get("a") is not None
    finally:
        shut_down(second)


def test_unreadable_alarm_row_starts_empty_and_is_backed_up(state) -> None:
    doc = {"alarms": [{"spec": {"bogus": 1}}]}
    state.put(cloudwatch.STATE_KIND, cloudwatch.STATE_KEY_ALARMS, doc)
    book = cloudwatch.load_alarm_book(state, "us-east-1", "123456789012")
    assert book.list() == []
    assert state.get(cloudwatch.STATE_KIND, cloudwatch.STATE_KEY_ALARMS + ".unreadable") == doc
