"""The scaling driver's own rules: idle zeros, concurrency windows, apply/settle outcomes, next step."""

from __future__ import annotations

import pytest

from catkit.autoscaling.driver import ConcurrencySample, ScalingDriver, ScalingRejected, VariantStatus
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.metrics_store import MetricStore

from .conftest import DIM, DIMS, NS, RID, SEED_POLICY, T0, World


def sums(world: World, name: str, start: float, end: float, period: int = 60) -> list[tuple[float, float]]:
    rows = world.metrics.statistics(NS, name, DIMS, start, end, period, ["Sum", "SampleCount"])
    return [(r["Timestamp"], r["Sum"]) for r in rows]


class QuietWorld(World):
    """A World whose data plane records nothing (no traffic at all), so only the driver writes."""

    def advance(self, now: float) -> None:
        if self.done_at is not None and now >= self.done_at:
            self.done_at = None
            self.active = self.desired


def test_idle_zeros_only_for_complete_minutes_of_auto_scaled_variants():
    w = QuietWorld()
    w.run(50, 0)  # the first step sees the target: from its current minute (T0) on
    assert sums(w, "Invocations", T0 - 3600, T0 + 3600) == []  # T0's minute is not over yet
    w.run(140, 0)
    # by T0+190 the minutes T0, T0+60 and T0+120 are complete; the running one is not
    expected = [(T0, 0.0), (T0 + 60, 0.0), (T0 + 120, 0.0)]
    assert sums(w, "Invocations", T0 - 3600, T0 + 3600) == expected
    assert sums(w, "InvocationsPerInstance", T0 - 3600, T0 + 3600) == expected
    # a variant that is not a scalable target gets none
    w.engine.deregister_scalable_target("sagemaker", RID, DIM, w.now)
    w.run(300, 0)
    assert sums(w, "Invocations", T0 + 180, T0 + 3600) == []


def test_a_minute_with_traffic_gets_no_zero_and_skipped_steps_are_caught_up():
    w = QuietWorld()
    w.step(0)
    w.metrics.record(NS, "Invocations", DIMS, 5.0, T0 + 75)  # traffic in minute T0+60 only
    w.now += 290  # the driver was not stepped for 5 minutes
    w.driver.step(w.now)  # catches up every complete minute at once
    assert sums(w, "Invocations", T0, T0 + 3600) == [(T0, 0.0), (T0 + 60, 5.0), (T0 + 120, 0.0),
                                                     (T0 + 180, 0.0), (T0 + 240, 0.0)]


def test_concurrency_samples_are_recorded_at_their_window_start_in_one_second_buckets():
    w = World()
    w.step(0, concurrency=6.0)  # window [T0, T0+10): 6 in flight over 2 instances -> 3 each
    rows = w.metrics.statistics(NS, "ConcurrentRequestsPerModel", DIMS, T0, T0 + 20, 10,
                                ["Average", "SampleCount"])
    assert rows == [{"Timestamp": T0, "Unit": "Count", "Average": 3.0, "SampleCount": 1.0}]
    # a statistic set standing for many samples (the simulator's seconds) keeps the average
    w.driver._record_concurrency([ConcurrencySample(T0 + 10, DIMS, (2.0,), weight=10)])
    rows = w.metrics.statistics(NS, "ConcurrentRequestsPerModel", DIMS, T0 + 10, T0 + 20, 10,
                                ["Average", "SampleCount"])
    assert rows[0]["Average"] == 2.0 and rows[0]["SampleCount"] == 10.0


class ScriptedFleet:
    """A fleet whose answers the test sets: status per call, refusal on apply."""

    def __init__(self) -> None:
        self.status: VariantStatus | None = VariantStatus("InService", 2)
        self.refuse: str | None = None
        self.applied: list[int] = []

    def advance(self, now: float) -> None:
        pass

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        return self.status

    def set_capacity(self, resource_id: str, desired: int) -> None:
        if self.refuse:
            raise ScalingRejected(self.refuse)
        self.applied.append(desired)
        self.status = VariantStatus("Updating", desired)

    def concurrency_samples(self, now: float) -> list:
        return []

    def next_change(self, now: float) -> float | None:
        return None


def scripted(min_capacity: int = 3) -> tuple[ScalingDriver, ScriptedFleet, Engine]:
    """A target whose MinCapacity (3) is above the current capacity (2): the next step scales to 3."""
    fleet = ScriptedFleet()
    engine = Engine()
    driver = ScalingDriver(engine, MetricStore(), fleet)
    engine.register_scalable_target("sagemaker", RID, DIM, T0, min_capacity, 10)
    return driver, fleet, engine


def last(engine: Engine):
    return engine.describe_scaling_activities("sagemaker", RID)[0]


@pytest.mark.parametrize(
    "after,code,message",
    [
        (VariantStatus("InService", 3), "Successful", "Successfully set desired instance count to 3."),
        (VariantStatus("InService", 5), "Overridden", "changed to 5 by a newer request"),
        (VariantStatus("InService", 2, "the new instances failed their health checks"), "Failed",
         "Reason: the new instances failed their health checks"),
        (VariantStatus("Failed", 3, "ping never answered"), "Failed", "Reason: ping never answered"),
        (None, "Failed", "no longer exists"),
    ],
    ids=["done", "overridden", "rolled-back", "endpoint-failed", "gone"],
)
def test_settle_outcomes(after, code, message):
    driver, fleet, engine = scripted()
    driver.step(T0 + 10)
    assert fleet.applied == [3] and last(engine).status_code == "InProgress"
    driver.step(T0 + 20)  # still Updating: nothing to settle
    assert last(engine).status_code == "InProgress"
    fleet.status = after
    driver.step(T0 + 30)
    assert last(engine).status_code == code and message in last(engine).status_message


def test_a_refused_change_fails_the_activity_with_the_fleets_reason():
    driver, fleet, engine = scripted()
    fleet.refuse = "Cannot update in-progress endpoint (Service: AmazonSageMaker; Status Code: 400)"
    driver.step(T0 + 10)
    a = last(engine)
    assert a.status_code == "Failed" and fleet.refuse in a.status_message and engine.pending == {}


def test_a_decision_never_applied_is_applied_at_the_next_step():
    driver, fleet, engine = scripted()
    fleet.status = VariantStatus("Updating", 2)  # busy: the engine waits
    driver.step(T0 + 10)
    assert fleet.applied == []
    # a decision recorded but not applied (the backend stopped in between)
    fleet.status = VariantStatus("InService", 2)
    target = engine.targets[("sagemaker", RID, DIM)]
    decision = engine._decide(target, 2, 3, "minimum capacity was set to 3", T0 + 20)
    target.bounds_changed = False
    assert last(engine).status_code == "Pending"
    assert driver.next_step(T0 + 20) == T0 + 30  # a pending decision wants the next grid point
    driver.step(T0 + 30)
    assert fleet.applied == [3] and last(engine).activity_id == decision.activity_id
    assert last(engine).status_code == "InProgress"


def test_next_step_is_the_next_alarm_evaluation_or_sooner():
    w = World()
    assert w.driver.next_step(T0 + 3) == T0 + 10  # no alarms, nothing due: the next grid point
    w.put_policy(config=SEED_POLICY)
    w.step(0)
    w.step(0)
    # 1-minute alarms evaluate on the minute; a fleet change due earlier comes first
    assert w.driver.next_step(w.now) == T0 + 60
    w.done_at = T0 + 43
    assert w.driver.next_step(w.now) == T0 + 50  # on the 10-second grid
