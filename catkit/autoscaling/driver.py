"""The one scaling step: idle zeros -> metrics -> alarms -> engine decision -> apply -> settle.

:class:`ScalingDriver` owns the order in which Application Auto Scaling and CloudWatch act on a
fleet, and the AWS rules that sit between the fleet and the engine. The local backend, the
offline simulator and the engine tests each implement the small :class:`FleetPort` and call
:meth:`ScalingDriver.step`; nobody else writes this loop. Pure: no I/O, no wall clock, no asyncio.

The AWS rules owned here (sources in shared/aws-facts.md):

* **Idle zeros** (§1.5): an auto-scaled SageMaker variant with no traffic in a minute emits
  ``Invocations`` and ``InvocationsPerInstance`` datapoints of 0, so target tracking can scale in.
  Once a minute is complete and had no ``Invocations`` datapoint, the driver records the zeros,
  before the alarms of the same step read that minute.
* **High-resolution sampling** (§1.7): ``ConcurrentRequestsPerModel`` is emitted every 10 seconds
  per instance (requests queued in the container included). The fleet reports one value per serving
  instance for each 10-second window; the driver records it at 1-second storage resolution with
  the window's start as its timestamp, so the 10-second period ``[t, t + 10)`` holds the
  concurrency observed during exactly that window.
* **Which metrics are high resolution**: a customized metric with sub-minute datapoints in the
  last 3 hours (PutMetricData StorageResolution 1) gets the 10-second AlarmHigh.
* **Settling** a capacity change: an activity stays InProgress while the variant is not
  InService; then it is Successful, Failed with SageMaker's reason, or Overridden when a newer
  request changed the desired count. A decision never applied (a crash in between) is applied at
  the next step.

Steps happen on a 10-second grid. A caller may skip grid points where nothing can change
(:meth:`ScalingDriver.next_step`): idle zeros and concurrency windows of the skipped time are
caught up at the next step, so the decisions equal those of stepping every 10 seconds.

**Event skipping.** A fleet that can tell its metrics ahead (:meth:`FleetPort.forecast`: the
offline simulator) lets :meth:`~ScalingDriver.next_step` skip alarm evaluations too. For each alarm
it reads the forecast values of the periods ahead (with the idle zeros this driver will add) and
finds the first evaluation that can change anything
(:func:`~catkit.autoscaling.alarm_rules.first_eventful`): a state change, missing data, or in ALARM
an action invocation the engine cannot rule out (:meth:`Engine.quiet_band`: not at max/min
capacity, not in a cooldown, a metric value whose proposal differs from the current capacity).
The next step is the earliest of those, the next scheduled action and the next fleet change; the
skipped evaluations are deferred (:meth:`AlarmBook.defer`) at that step, so every alarm evaluates
on its own interval, as when stepping every 10 s. Decisions, activities (not-scaled records
aside: they are throttled diagnostics, see the engine) and alarm state histories are the same as
stepping every 10 seconds (tests/simulate/test_event_skipping.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from catkit.autoscaling.alarm_rules import evaluation_interval
from catkit.autoscaling.engine import Decision, Engine
from catkit.autoscaling.lookahead import Lookahead
from catkit.autoscaling.metrics_store import MetricStore
from catkit.names import (
    AAS_SAGEMAKER,
    SAGEMAKER_METRICS,
    VARIANT_INSTANCE_COUNT,
    parse_variant_resource_id,
    variant_dimensions,
)

#: The driver's cadence (seconds): the finest alarm evaluation interval and sampling window.
TICK_S = 10.0
#: Idle zeros are caught up for at most this many past minutes (a long suspend is not replayed).
MAX_IDLE_CATCH_UP_MINUTES = 60
#: A customized metric counts as high resolution with sub-minute data this recent.
HIGH_RESOLUTION_LOOKBACK_S = 3 * 3600.0
CONCURRENCY_METRIC = "ConcurrentRequestsPerModel"
IDLE_METRICS = ("Invocations", "InvocationsPerInstance")
#: How far next_step looks for an eventful alarm evaluation, round by round, in evaluations of the
#: most frequently evaluated alarm (240: 40 minutes of a 10-second alarm, 4 hours of a 1-minute one).
LOOKAHEAD_HORIZONS = (240, 960, 3840, 15360, math.inf)
#: Deprecated: the horizons of 1-minute alarms in seconds (next_step scales them by the alarms' interval).
LOOKAHEAD_HORIZONS_S = tuple(h * 60.0 for h in LOOKAHEAD_HORIZONS)

SERVING = ("InService", "Updating")


@dataclass(frozen=True)
class VariantStatus:
    """What the driver needs to know of one variant: its status and DesiredInstanceCount."""

    status: str  # "InService", "Updating", "Failed", ... (SageMaker's endpoint status)
    desired: int
    failure_reason: str | None = None


@dataclass(frozen=True)
class ConcurrencySample:
    """Concurrent requests per serving instance during the 10-second window starting at ``start``."""

    start: float
    dimensions: Mapping[str, str]
    values: Sequence[float]  # one per instance (a statistic set stands for many, see ``weight``)
    weight: float = 1.0  # samples each value stands for (the simulator passes seconds x instances)


class ScalingRejected(Exception):
    """The fleet refused a capacity change; the message is the reason AWS would give."""


class FleetPort(Protocol):
    """The fleet as the driver sees it. Implemented by the local backend, the simulator, tests."""

    def advance(self, now: float) -> None:
        """Bring the fleet up to ``now``: finish capacity changes that are done, record the
        data-plane metrics (Invocations, InvocationsPerInstance, ...) of the elapsed time."""

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        """The variant behind a scalable target; None when it no longer exists."""

    def set_capacity(self, resource_id: str, desired: int) -> None:
        """UpdateEndpointWeightsAndCapacities semantics; raise :class:`ScalingRejected` to refuse."""

    def concurrency_samples(self, now: float) -> Iterable[ConcurrencySample]:
        """Per-instance concurrency of every 10-second window that ended since the last call."""

    def next_change(self, now: float) -> float | None:
        """When the fleet will next change by itself (a launch finishing), or None."""

    def forecast(
        self, namespace: str, name: str, dims: Mapping[str, str], statistic: str, period: int, start: float,
        end: float,
    ) -> np.ndarray | None:
        """``statistic`` per ``period`` of a metric the fleet emits, for the periods from ``start``
        (as many as it can tell, up to ``end``) if nothing changes: exactly what the metric store
        will answer once they are complete, NaN where there will be no datapoint. None when the
        fleet cannot tell (real instances): the driver then evaluates every alarm on its interval.
        Optional: fleets without this method are treated as returning None. A fleet may also
        carry a ``forecast_version`` attribute that changes whenever its forecasts would (the
        simulator's: when its serving count changes); forecasts are then kept across steps
        that leave it as it was."""


class ScalingDriver:
    """Steps one :class:`Engine` over one :class:`FleetPort` and one :class:`MetricStore`.

    The engine's alarms must live in the book the driver evaluates (``engine.alarms``); the
    driver sets ``engine.is_high_resolution`` (the rule above). ``decisions_only`` (with a
    forecasting fleet) lets :meth:`next_step` also skip alarm state changes that cannot start an
    activity: decisions and activities stay the same, alarm histories record such changes at the
    next evaluation taken instead of when they happened.
    """

    def __init__(
        self, engine: Engine, metrics: MetricStore, fleet: FleetPort | None = None, *, decisions_only: bool = False
    ) -> None:
        self.metrics = metrics
        self.fleet = fleet
        self.lookahead = Lookahead(exact=not decisions_only, idle_catch_up_minutes=MAX_IDLE_CATCH_UP_MINUTES)
        self._change_at: float | None = None  # when the fleet said it would next change
        self._signature: tuple = ()  # the engine state the lookahead's answers were given for
        self.engine = engine
        self._idle_done: dict[str, float] = {}  # resource id -> start of the last minute handled
        self._idle_from: dict[str, float] = {}  # resource id -> first minute the idle rule covers
        self._idle_dims: dict[str, dict[str, str]] = {}  # resource id -> its variant's metric dimensions
        # Evaluations next_step found uneventful: (the step they end at, {alarm name: (its spec,
        # whether its evaluation at that step is skipped too)}).
        self._skip: tuple[float, dict[str, tuple[object, bool]]] | None = None

    @property
    def engine(self) -> Engine:
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Drive ``engine`` from now on (e.g. one restored from saved state)."""
        self._engine = engine
        engine.is_high_resolution = self.is_high_resolution

    # ------------------------------------------------------------------ the step
    def step(self, now: float) -> list[Decision]:
        """One step at ``now``: fleet -> idle zeros and concurrency -> alarms -> decisions ->
        apply -> settle. Returns the decisions taken (already applied or failed)."""
        fleet = self.fleet
        skip, self._skip = self._skip, None
        if skip is not None and skip[0] == now:
            for name, (spec, silent) in skip[1].items():
                alarm = self._engine.alarms.get(name)
                if alarm is not None and alarm.spec is spec:  # not deleted or redefined since
                    self._engine.alarms.defer(alarm.name, now + 1.0 if silent else now)
        if fleet is not None:
            fleet.advance(now)
            if self._change_at is not None and now >= self._change_at:
                self._change_at = None
                self.lookahead.bump()  # the fleet's forecasts no longer hold
            self._record_concurrency(fleet.concurrency_samples(now))
            self._record_idle_zeros(now, fleet)
        self._engine.alarms.evaluate(now, self.metrics)
        if fleet is None:
            return []
        decisions = self._engine.decide(now, self._capacity)
        for d in decisions:
            self._apply(d, now)
        self._settle(now)
        return decisions

    def next_step(self, now: float) -> float:
        """The next grid time after ``now`` at which a step can change anything: an alarm
        evaluation (with a forecasting fleet: only one that can change anything, see the module
        docstring), a scheduled action, the fleet finishing a change, or a pending decision.
        Call :meth:`step` at exactly that time to skip what lies between."""
        eng, fleet, lookahead = self._engine, self.fleet, self.lookahead
        nxt = math.inf
        for action in eng.scheduled.values():
            run = action.next_run
            if run is not None and run < nxt:
                nxt = run
        if fleet is not None:
            change = fleet.next_change(now)
            self._change_at = change
            if change is not None and change < nxt:
                nxt = change
        if any(t.bounds_changed for t in eng.targets.values()):
            nxt = now
        if any(self._awaiting_apply(aid) for aid in eng.pending.values()):
            nxt = now
        alarms = eng.alarms.list()
        forecast = getattr(fleet, "forecast", None)
        if forecast is not None:
            lookahead.forecasts_for(self._forecast_version())
            lookahead.indexed = getattr(fleet, "uniform_forecast", None)
        signature = self._engine_signature()
        if signature != self._signature:  # bounds, cooldowns or activities changed: new answers
            self._signature = signature
            lookahead.bump()
        capacity, idle = self._capacity, self._idle_zeros
        if forecast is None:
            nxt = min(nxt, eng.alarms.next_evaluation())
        else:
            # Breadth first: every alarm up to a horizon, then a longer one, so that the work is in
            # proportion to the time until the next step, not to the quietest alarm's horizon.
            every = min((evaluation_interval(a.spec.period) for a in alarms), default=60)
            eventful = lookahead.next_eventful
            for horizon in LOOKAHEAD_HORIZONS:
                limit = min(nxt, now + horizon * every)
                # Scans reach the grid step the limit rounds up to, which silent_at asks about below.
                reach = math.ceil(limit / TICK_S) * TICK_S + 1.0 if math.isfinite(limit) else limit
                found = math.inf
                for alarm in alarms:
                    t = eventful(alarm, now, reach, eng, capacity, forecast, idle)
                    if t < found:
                        found = t
                if found < limit or limit >= nxt:
                    nxt = min(nxt, found)
                    break
        grid = math.ceil(nxt / TICK_S) * TICK_S if math.isfinite(nxt) else math.inf
        grid = max(grid, (math.floor(now / TICK_S) + 1) * TICK_S)
        # Evaluations before the step are skipped; at the step, those that would read OK and change
        # nothing are skipped too.
        if forecast is None:
            self._skip = None
        else:
            told, silent = math.isfinite(grid), lookahead.silent_at
            self._skip = (grid, {
                a.spec.alarm_name: (a.spec, told and silent(a, now, grid, eng, capacity, forecast, idle))
                for a in alarms
            })
        return grid

    def _forecast_version(self) -> Any:
        """What the forecasts with idle zeros depend on: the fleet's ``forecast_version`` (None
        when it has none: forecasts are then not kept across changes) and, per variant target,
        whether the idle rule adds zeros (its start and whether the variant serves)."""
        version = getattr(self.fleet, "forecast_version", None)
        if version is None:
            return None
        assert self.fleet is not None
        idle = []
        for rid, start in self._idle_from.items():
            status = self.fleet.variant_status(rid)
            idle.append((rid, start, status is not None and status.status in SERVING))
        return version, tuple(idle)

    def _engine_signature(self) -> tuple:
        """What the engine's quiet bands depend on besides the fleet: bounds, suspensions,
        cooldowns and activities in progress of every target."""
        eng = self._engine
        pending, cooldowns = eng.pending, eng.cooldowns
        return tuple([
            (key, t.min_capacity, t.max_capacity, tuple(sorted(t.suspended.items())) if t.suspended else (),
             pending.get(key), tuple(vars(cooldowns[key]).values()) if key in cooldowns else None)
            for key, t in eng.targets.items()
        ])

    def _idle_zeros(self, namespace: str, name: str, dims: Mapping[str, str]) -> Any:
        """For a metric this driver adds idle zeros to (an auto-scaled variant's Invocations or
        InvocationsPerInstance): a function adding them to forecast per-minute values - minutes
        without a datapoint, from the target's first minute on, while it serves."""
        if namespace != SAGEMAKER_METRICS or name not in IDLE_METRICS:
            return None
        rid = next(
            (
                t.resource_id
                for t in self.engine.targets.values()
                if t.service_namespace == AAS_SAGEMAKER
                and t.scalable_dimension == VARIANT_INSTANCE_COUNT
                and (names := parse_variant_resource_id(t.resource_id)) is not None
                and variant_dimensions(*names) == dict(dims)
            ),
            None,
        )
        if rid is None:
            return None

        def add(values: np.ndarray, first: float) -> np.ndarray:
            # Invocations and InvocationsPerInstance have a datapoint in the same minutes (both are
            # recorded per request), so a NaN of either forecast is a minute without traffic.
            assert self.fleet is not None
            status = self.fleet.variant_status(rid)
            start = self._idle_from.get(rid)
            if status is None or status.status not in SERVING or start is None:
                return values
            idle = np.isnan(values)
            if start > first:
                idle[: min(len(idle), math.ceil((start - first) / 60))] = False
            return np.where(idle, 0.0, values)

        return add

    # ------------------------------------------------------------------ rules
    def is_high_resolution(self, namespace: str, name: str, dims: Mapping[str, str]) -> bool:
        """Whether a metric had sub-minute datapoints in the last 3 hours (standard-resolution
        data only ever fills minute buckets)."""
        now = self.metrics.now()
        if not math.isfinite(now):
            return False
        rows = self.metrics.statistics(
            namespace, name, dims, now - HIGH_RESOLUTION_LOOKBACK_S, now + 1, 10, ["SampleCount"]
        )
        return any(float(r["Timestamp"]) % 60 for r in rows)

    def _record_concurrency(self, samples: Iterable[ConcurrencySample]) -> None:
        for s in samples:
            if not s.values:
                continue
            n = len(s.values) * s.weight
            self.metrics.record_statistics(
                SAGEMAKER_METRICS,
                CONCURRENCY_METRIC,
                s.dimensions,
                n,
                sum(s.values) * s.weight,
                min(s.values),
                max(s.values),
                s.start,
                unit="Count",
                storage_resolution=1,
            )

    def _record_idle_zeros(self, now: float, fleet: FleetPort) -> None:
        last_complete = math.floor(now / 60) * 60 - 60  # start of the newest complete minute
        for target in list(self._engine.targets.values()):
            if target.service_namespace != AAS_SAGEMAKER or target.scalable_dimension != VARIANT_INSTANCE_COUNT:
                continue
            rid = target.resource_id
            done = self._idle_done.get(rid)
            if done is None:  # first seen: from the current minute on
                self._idle_done[rid] = last_complete
                self._idle_from[rid] = last_complete + 60
                continue
            if done >= last_complete:
                continue
            first = max(done + 60, last_complete - 60 * (MAX_IDLE_CATCH_UP_MINUTES - 1))
            self._idle_done[rid] = last_complete
            dims = self._idle_dims.get(rid)
            if dims is None:
                names = parse_variant_resource_id(rid)
                dims = self._idle_dims[rid] = variant_dimensions(*names) if names is not None else {}
            status = fleet.variant_status(rid)
            if not dims or status is None or status.status not in SERVING:
                continue
            seen = self.metrics.datapoint_times(SAGEMAKER_METRICS, "Invocations", dims, first, last_complete + 60, 60)
            if len(seen) > (last_complete - first) // 60:
                continue  # every minute has a datapoint (the common case): nothing to look for
            minute = first
            while minute <= last_complete:
                if minute not in seen:
                    self.metrics.record(SAGEMAKER_METRICS, "Invocations", dims, 0.0, minute)
                    self.metrics.record(SAGEMAKER_METRICS, "InvocationsPerInstance", dims, 0.0, minute)
                minute += 60

    def forget(self, resource_id: str) -> None:
        """Drop per-target bookkeeping (the target was deregistered)."""
        self._idle_done.pop(resource_id, None)
        self._idle_from.pop(resource_id, None)
        self._idle_dims.pop(resource_id, None)

    # ------------------------------------------------------------------ apply and settle
    def _capacity(self, resource_id: str) -> int | None:
        """DesiredInstanceCount of an InService variant; None (skip) while it is not InService."""
        assert self.fleet is not None
        status = self.fleet.variant_status(resource_id)
        if status is None or status.status != "InService":
            return None
        return int(status.desired)

    def _apply(self, d: Decision, now: float) -> None:
        assert self.fleet is not None
        try:
            self.lookahead.bump()
            self.fleet.set_capacity(d.resource_id, d.desired_capacity)
        except ScalingRejected as e:
            self._engine.complete(d.activity_id, False, str(e), now)
        else:
            self._engine.accepted(d.activity_id, now)

    def _awaiting_apply(self, activity_id: str) -> bool:
        a = self._engine.activity(activity_id)
        return a is not None and a.status_code == "Pending"

    def _settle(self, now: float) -> None:
        """Finish in-progress activities whose variant is InService again."""
        assert self.fleet is not None
        for key, activity_id in list(self._engine.pending.items()):
            activity = self._engine.activity(activity_id)
            if activity is None:
                continue
            status = self.fleet.variant_status(key[1])
            if status is None:
                self._engine.complete(activity_id, False, f"The resource {key[1]} no longer exists.", now)
                continue
            if activity.status_code == "Pending":
                # Decided but never applied (the backend stopped in between): apply it now.
                if status.status == "InService":
                    self._apply(
                        Decision(
                            activity_id,
                            *key,
                            activity.desired_capacity or 0,
                            activity.previous_capacity or 0,
                            activity.cause,
                        ),
                        now,
                    )
                continue
            if status.status == "Failed":
                self._engine.complete(activity_id, False, status.failure_reason or "the endpoint update failed", now)
            elif status.status == "InService":
                if status.desired == activity.desired_capacity:
                    self._engine.complete(activity_id, True, "", now)
                elif status.failure_reason:
                    self._engine.complete(activity_id, False, status.failure_reason, now)
                else:
                    self._engine.complete(
                        activity_id,
                        True,
                        f"Desired instance count was changed to {status.desired} by a newer request.",
                        now,
                        status="Overridden",
                    )
