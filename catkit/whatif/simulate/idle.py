"""Idle cost in the simulator: asynchronous inference with scale to zero, and serverless variants.

Two more fleets beside :class:`~catkit.whatif.simulate.fleet.SimulatedFleet`, and
:func:`compare_idle_options`, which serves one traffic four ways - real-time 24/7, real-time with a
night schedule (both :func:`~catkit.whatif.simulate.run.simulate`), asynchronous with scale to zero
and serverless - and tabulates cost, p50/p99 latency and cold starts.

* :func:`simulate_async` steps the one :class:`~catkit.autoscaling.driver.ScalingDriver` over an
  :class:`AsyncQueueFleet`: a FIFO queue drained by the serving instances at the service model's
  throughput, the backlog metrics (``ApproximateBacklogSize``, ``ApproximateBacklogSizePerInstance``,
  ``HasBacklogWithoutCapacity``) recorded every 10 s like the local backend, and AWS's scale-to-zero
  pattern: MinCapacity 0, target tracking on backlog per instance, a step policy (+1) on a
  ``HasBacklogWithoutCapacity`` alarm (async-inference-autoscale.html). A request's latency is its
  time in the queue plus the service's median time; a "cold start" is a wake-up from zero instances
  (the requests that arrived meanwhile wait the provisioning delay).
* :func:`simulate_serverless` is per second and needs no scaling engine (serverless capacity is not
  an Application Auto Scaling target unless provisioned): the concurrency a second needs
  (Little's law, rate x service time) is served by warm workers; more workers are cold-started (the
  cold start's seconds are added to those requests' latency), beyond ``MaxConcurrency`` requests
  are throttled, and workers idle for ``idle_s`` are released. Billing is GB-seconds of the
  requests' duration plus data processed (:func:`catkit.cost.serverless_cost`).

Deterministic: arrivals are the integer parts of the cumulative traffic.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catkit.autoscaling import AlarmBook, Engine
from catkit.autoscaling.alarm_rules import AlarmSpec
from catkit.autoscaling.config import NightSchedule, ScalingConfig
from catkit.autoscaling.driver import ConcurrencySample, ScalingDriver, VariantStatus
from catkit.autoscaling.metrics_store import MetricStore
from catkit.instance_types import get_instance_type
from catkit.names import AAS_SAGEMAKER, SAGEMAKER_METRICS, VARIANT_INSTANCE_COUNT, variant_resource_id
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.shapes import Shape
from catkit.whatif.simulate.run import DEFAULT_PROVISIONING_S, DEFAULT_START, simulate, traffic_array

#: Emulated seconds a serverless cold start adds (the local backend's default container setup plus
#: a model load; AWS does not publish a figure - ASSUMPTION, calibrate with a real ModelSetupTime).
DEFAULT_COLD_START_S = 5.0
DEFAULT_IDLE_S = 600.0  # serverless worker idle release (ASSUMPTION, as the local backend)


def _arrivals(rate: np.ndarray) -> np.ndarray:
    cum = np.floor(np.cumsum(rate) + 1e-9)
    return np.diff(np.concatenate([[0.0], cum])).astype(np.int64)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cum, q), len(order) - 1)])


@dataclass
class IdleOption:
    """One way of serving the traffic: its cost, latency, cold starts, and capacity over time."""

    name: str
    cost_usd: float
    p50_ms: float
    p99_ms: float
    cold_starts: int
    requests: int
    throttled: int = 0
    capacity: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)  # instances/workers per second
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {"option": self.name, "cost_usd": self.cost_usd, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "cold_starts": self.cold_starts, "requests": self.requests, "throttled": self.throttled,
                "note": self.note}


class AsyncQueueFleet:
    """The asynchronous endpoint as the driver's fleet port (one variant, per-second queue)."""

    def __init__(self, rate: np.ndarray, t0: float, rid: str, endpoint: str, service: ServiceModel,
                 metrics: MetricStore, *, initial: int, provisioning_s: float) -> None:
        self.arrivals = _arrivals(rate)
        self.t0, self.t, self.rid = t0, t0, rid
        self.dims = {"EndpointName": endpoint}
        self.service, self.metrics = service, metrics
        self.provisioning_s = provisioning_s
        self.ready, self.desired = initial, initial
        self.pending: list[float] = []  # ready times of launching instances
        self.queue: deque[list[float]] = deque()  # [arrival second, count]
        self.carry = 0.0
        self.waits: list[tuple[float, int]] = []
        n = len(rate)
        self.serving = np.zeros(n, dtype=np.int32)
        self.billed = np.zeros(n, dtype=np.float64)
        self.wakeups = 0

    @property
    def backlog(self) -> int:
        return int(sum(c for _, c in self.queue))

    def advance(self, now: float) -> None:
        end = min(now, self.t0 + len(self.arrivals))
        while self.t < end:
            i = int(self.t - self.t0)
            while self.pending and self.pending[0] <= self.t:
                self.pending.pop(0)
                self.ready += 1
            if self.arrivals[i]:
                self.queue.append([self.t, int(self.arrivals[i])])
            self.carry += self.ready * self.service.max_rps
            can = int(self.carry)
            while can and self.queue:
                arrived, count = self.queue[0]
                take = min(can, int(count))
                self.waits.append((self.t - arrived, take))
                can -= take
                self.carry -= take
                if take == count:
                    self.queue.popleft()
                else:
                    self.queue[0][1] = count - take
            if not self.queue:
                self.carry = min(self.carry, 1.0)  # idle capacity is not banked
            self.serving[i] = self.ready
            self.billed[i] = self.ready + len(self.pending)
            if i % 10 == 9:
                self._record(self.t)
            self.t += 1

    def _record(self, ts: float) -> None:
        backlog = self.backlog
        rec = self.metrics.record
        rec(SAGEMAKER_METRICS, "ApproximateBacklogSize", self.dims, float(backlog), ts)
        if self.ready:
            rec(SAGEMAKER_METRICS, "ApproximateBacklogSizePerInstance", self.dims, backlog / self.ready, ts)
        rec(SAGEMAKER_METRICS, "HasBacklogWithoutCapacity", self.dims, 1.0 if backlog and not self.ready else 0.0, ts)

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        return VariantStatus("Updating" if self.pending else "InService", self.desired)

    def set_capacity(self, resource_id: str, desired: int) -> None:
        have = self.ready + len(self.pending)
        if have == 0 and desired > 0:
            self.wakeups += 1
        if desired > have:
            self.pending.extend([self.t + self.provisioning_s] * (desired - have))
        else:
            drop = have - desired
            while drop and self.pending:
                self.pending.pop()
                drop -= 1
            self.ready -= drop
        self.desired = desired

    def concurrency_samples(self, now: float) -> Iterable[ConcurrencySample]:
        return ()

    def next_change(self, now: float) -> float | None:
        return self.pending[0] if self.pending else None


def simulate_async(
    traffic: Shape | float | Sequence[float] | np.ndarray,
    service: ServiceModel | None = None,
    *,
    duration_s: float,
    backlog_per_instance: float = 5.0,
    max_capacity: int = 2,
    initial_capacity: int = 0,
    scale_in_cooldown: int = 600,
    scale_out_cooldown: int = 300,
    wake_cooldown: int = 60,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    start: float = DEFAULT_START,
    instance_type: str | None = None,
    endpoint_name: str = "simulated-async",
) -> IdleOption:
    """Asynchronous inference with scale to zero (the policies of
    :func:`catkit.scaling.configure_scale_to_zero`) through the scaling driver."""
    service = service or ServiceModel(max_rps=40.0, workers=4, source="default (not calibrated)")
    itype = get_instance_type(instance_type or service.instance_type)
    t0 = float(math.floor(start))
    rate = traffic_array(traffic, duration_s)
    rid = variant_resource_id(endpoint_name)
    metrics = MetricStore(percentiles=False)
    fleet = AsyncQueueFleet(rate, t0, rid, endpoint_name, service, metrics, initial=initial_capacity,
                            provisioning_s=provisioning_s)
    counter = iter(range(1, 1 << 62))
    alarms = AlarmBook()
    engine = Engine(alarms, id_factory=lambda: f"00000000-0000-4000-8000-{next(counter):012d}")
    engine.allows_zero = lambda _rid: True  # an asynchronous endpoint's variant
    driver = ScalingDriver(engine, metrics, fleet)
    key = (AAS_SAGEMAKER, rid, VARIANT_INSTANCE_COUNT)
    engine.register_scalable_target(*key, t0, min_capacity=0, max_capacity=max_capacity)
    dims = [{"Name": "EndpointName", "Value": endpoint_name}]
    engine.put_scaling_policy("backlog", *key, t0, policy_type="TargetTrackingScaling", target_tracking_config={
        "TargetValue": float(backlog_per_instance), "ScaleInCooldown": scale_in_cooldown,
        "ScaleOutCooldown": scale_out_cooldown,
        "CustomizedMetricSpecification": {"MetricName": "ApproximateBacklogSizePerInstance",
                                          "Namespace": SAGEMAKER_METRICS, "Dimensions": dims, "Statistic": "Average"},
    })
    wake = engine.put_scaling_policy("wake", *key, t0, policy_type="StepScaling", step_scaling_config={
        "AdjustmentType": "ChangeInCapacity", "Cooldown": wake_cooldown, "MetricAggregationType": "Maximum",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
    })
    alarms.put_alarm(AlarmSpec(
        alarm_name="has-backlog-without-capacity", namespace=SAGEMAKER_METRICS, metric_name="HasBacklogWithoutCapacity",
        dimensions={"EndpointName": endpoint_name}, statistic="Maximum", period=60, evaluation_periods=1,
        threshold=1.0, comparison_operator="GreaterThanOrEqualToThreshold", alarm_actions=[wake.policy_arn],
    ), t0)
    t_end = t0 + len(rate)
    now = math.ceil(t0 / 10) * 10.0
    while now < t_end:
        driver.step(now)
        now = driver.next_step(now)
    fleet.advance(t_end)
    base = float(service.base_p50_ms or 0.0)
    waits = np.array([w for w, _ in fleet.waits] or [0.0]) * 1000.0 + base
    weights = np.array([c for _, c in fleet.waits] or [0], dtype=float)
    served = int(weights.sum())
    return IdleOption(
        "async, scale to zero", float(fleet.billed.sum()) * itype.price_per_hour / 3600.0,
        _weighted_quantile(waits, weights, 0.5), _weighted_quantile(waits, weights, 0.99), fleet.wakeups,
        served, capacity=fleet.serving.astype(float),
        note=f"{fleet.backlog} still queued at the end" if fleet.backlog else "",
    )


def simulate_serverless(
    traffic: Shape | float | Sequence[float] | np.ndarray,
    service: ServiceModel | None = None,
    *,
    duration_s: float,
    memory_mb: int = 2048,
    max_concurrency: int = 20,
    provisioned_concurrency: int = 0,
    cold_start_s: float = DEFAULT_COLD_START_S,
    idle_s: float = DEFAULT_IDLE_S,
    request_bytes: float = 0.0,
    response_bytes: float = 0.0,
) -> IdleOption:
    """A serverless variant serving ``traffic`` (see the module docstring)."""
    from catkit.cost import serverless_cost
    from catkit.endpoint_kinds import check_serverless

    check_serverless(memory_mb, max_concurrency, provisioned_concurrency or None)
    service = service or ServiceModel(max_rps=40.0, workers=4, source="default (not calibrated)")
    rate = traffic_array(traffic, duration_s)
    arrivals = _arrivals(rate)
    d = float(service.base_p50_ms or 0.0) / 1000.0  # one request's duration on one worker
    last_used = np.full(max_concurrency, -math.inf)
    last_used[:provisioned_concurrency] = math.inf  # provisioned workers never go cold
    warm = provisioned_concurrency
    cold = throttled = 0
    lat_values: list[float] = []
    lat_weights: list[int] = []
    workers = np.zeros(len(rate))
    for i, n in enumerate(arrivals):
        warm = int(np.sum(i - last_used < idle_s))
        if n:
            need = min(max_concurrency, max(1, math.ceil(n * d)))
            over = max(0, int(n) - int(max_concurrency / d) if d > 0 else 0)
            throttled += over
            served = int(n) - over
            new = max(0, need - warm)
            cold += new
            last_used[:need] = np.maximum(last_used[:need], i)
            warm = max(warm, need)
            slow = min(served, new)
            if slow:
                lat_values.append((d + cold_start_s) * 1000.0)
                lat_weights.append(slow)
            if served - slow:
                lat_values.append(d * 1000.0)
                lat_weights.append(served - slow)
        workers[i] = warm
    served_total = int(sum(lat_weights))
    bill = serverless_cost(served_total, d, memory_mb, request_bytes=request_bytes, response_bytes=response_bytes,
                           provisioned_concurrency=provisioned_concurrency, hours=len(rate) / 3600.0)
    values, weights = np.array(lat_values or [0.0]), np.array(lat_weights or [0], dtype=float)
    return IdleOption("serverless", bill.total_usd, _weighted_quantile(values, weights, 0.5),
                      _weighted_quantile(values, weights, 0.99), cold, served_total, throttled, capacity=workers,
                      note=f"{memory_mb} MB, MaxConcurrency {max_concurrency}")


def compare_idle_options(
    traffic: Shape | float | Sequence[float] | np.ndarray,
    service: ServiceModel | None = None,
    *,
    duration_s: float = 86400.0,
    instances: int = 2,
    night: NightSchedule | None = None,
    memory_mb: int = 2048,
    max_concurrency: int = 20,
    cold_start_s: float = DEFAULT_COLD_START_S,
    backlog_per_instance: float = 5.0,
    start: float = DEFAULT_START,
) -> list[IdleOption]:
    """The same traffic served four ways: real-time 24/7 (``instances``), real-time with a night
    schedule (``night``, default 1 instance 20:00-07:00), asynchronous with scale to zero, serverless."""
    service = service or ServiceModel(max_rps=40.0, workers=4, source="default (not calibrated)")
    rate = traffic_array(traffic, duration_s)
    fixed = ScalingConfig(min_capacity=instances, max_capacity=instances)
    scheduled = ScalingConfig(min_capacity=instances, max_capacity=instances, night=night or NightSchedule(night_min=1))
    out = []
    for name, cfg in (("real-time 24/7", fixed), ("real-time, night schedule", scheduled)):
        r = simulate(rate, cfg, service, duration_s=len(rate), start=start)
        out.append(IdleOption(name, r.cost_usd, r.latency_quantile(0.5), r.latency_quantile(0.99), 0,
                              int(_arrivals(rate).sum()), capacity=r.serving.astype(float)))
    out.append(simulate_async(rate, service, duration_s=len(rate), max_capacity=instances,
                              backlog_per_instance=backlog_per_instance, start=start))
    out.append(simulate_serverless(rate, service, duration_s=len(rate), memory_mb=memory_mb,
                                   max_concurrency=max_concurrency, cold_start_s=cold_start_s))
    return out


def idle_options_frame(options: Sequence[IdleOption]) -> Any:
    """The options as a DataFrame (one row each)."""
    import pandas as pd

    return pd.DataFrame([o.row() for o in options])


__all__ = [
    "DEFAULT_COLD_START_S",
    "DEFAULT_IDLE_S",
    "AsyncQueueFleet",
    "IdleOption",
    "compare_idle_options",
    "example_spiky_day",
    "idle_options_frame",
    "simulate_async",
    "simulate_serverless",
]


def example_spiky_day(peak_rps: float = 2.0, quiet_rps: float = 0.001) -> Shape:
    """An illustrative day for idle cost (not a measurement): almost nothing (``quiet_rps``, a
    request every few minutes) with four 20-minute bursts of ``peak_rps`` (2-minute ramps) at 08:00,
    11:00, 14:00 and 17:00 UTC. ``t = 0`` is midnight."""
    from catkit.whatif.shapes import Constant, Spike

    shape: Shape = Constant(quiet_rps)
    for hour in (8, 11, 14, 17):
        shape = shape + Spike(at_s=hour * 3600.0, duration_s=1200.0, extra_rps=peak_rps, rise_s=120.0)
    return shape
