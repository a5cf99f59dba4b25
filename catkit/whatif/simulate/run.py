"""Run one simulation: traffic in, the scaling driver stepping a simulated fleet, a result out.

``simulate(traffic, config, service, duration_s=...)`` answers "what happens to latency and cost
under this traffic with these scaling settings?" in seconds. It registers the variant and the
policy with a fresh :class:`catkit.autoscaling.Engine` - the engine the local backend runs - and
steps the one :class:`~catkit.autoscaling.driver.ScalingDriver` over a
:class:`~catkit.whatif.simulate.fleet.SimulatedFleet`: the same ordered step (idle zeros, metrics,
alarms, decision, apply, settle) as the local backend, no re-implemented rules.

Event skipping: the fleet's metrics are computed for the whole traffic at once (vectorised, see
:mod:`~catkit.whatif.simulate.fleet`), and the driver is stepped on the backend's 10-second grid
but only where a step can change anything (:meth:`ScalingDriver.next_step` with the fleet's
forecasts: an alarm evaluation that can change its state or start an activity, a scheduled action,
the end of a capacity change, bound changes). Each stop is one ordinary driver step, so the
decisions are the engine's; ``tick_every_grid_point=True`` steps every 10 s instead (the same
decisions and activities - tests/simulate/test_event_skipping.py - only slower).

Everything is deterministic. Times are epoch seconds; traffic time ``t = 0`` is ``start``
(default Monday 2024-01-01 00:00 UTC, so diurnal shapes and night schedules line up).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from catkit.autoscaling import AlarmBook, Engine
from catkit.autoscaling.config import HIGH_RES_METRIC, SEED_CONFIG, ScalingConfig
from catkit.autoscaling.driver import TICK_S, ScalingDriver
from catkit.autoscaling.metrics_store import MetricStore
from catkit.autoscaling.schedule import Schedule
from catkit.instance_types import get_instance_type
from catkit.names import AAS_SAGEMAKER as NAMESPACE
from catkit.names import VARIANT_INSTANCE_COUNT as DIMENSION
from catkit.names import variant_dimensions, variant_resource_id
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.shapes import Shape, as_shape
from catkit.whatif.simulate.fleet import SimulatedFleet
from catkit.whatif.simulate.result import Deferred, SimulationResult
from catkit.whatif.simulate.tables import TrafficTables

DEFAULT_START = 1_704_067_200.0  # Monday 2024-01-01 00:00:00 UTC
DEFAULT_PROVISIONING_S = 240.0  # the local backend's default (catkit.local.fleet.instances)
DEFAULT_TERMINATION_S = 60.0  # ASSUMPTION: scale-in keeps the variant Updating about a minute
#: Why the simulator's ConcurrentRequestsPerModel defaults to the per-window peak.
CONCURRENCY_STATISTIC_NOTE = (
    "AWS defines ConcurrentRequestsPerModel as the number of concurrent requests received by the model "
    "container, requests queued inside it included, emitted every 10 seconds (SageMaker developer guide, "
    "'Define a scaling policy' - endpoint-auto-scaling-add-code-define.html, and the launch post "
    "'Amazon SageMaker inference launches faster auto scaling for generative AI models', 2024-07-25; "
    "shared/aws-facts.md section 1.7). It does not say which value of the changing count inside the "
    "10 seconds a datapoint carries. ASSUMPTION: the largest (every request received in the window "
    "counts, however short) - what the local backend records (catkit.local.fleet.sampling: the peak "
    "in-flight count per instance since the previous 10-second sample). The simulator defaults to the "
    "expected value of that peak (exact for its M/M/c queue, catkit.whatif.window_peak; instances "
    "pooled as the backend's least-outstanding-requests routing keeps them) so that it agrees with the "
    "backend (tests/simulate/test_driver_agreement.py); 'mean' reads a datapoint as the mean in flight."
)


def traffic_array(traffic: Shape | float | Sequence[float] | np.ndarray, duration_s: float) -> np.ndarray:
    """Per-second rates for ``duration_s`` seconds from a shape, a constant or an array."""
    n = math.ceil(duration_s)
    if n < 60:
        raise ValueError(f"duration_s must be at least 60 seconds, got {duration_s}")
    if isinstance(traffic, Shape | int | float):
        return as_shape(traffic).per_second(n)
    arr = np.asarray(traffic, dtype=np.float64)
    if arr.ndim != 1 or len(arr) < n:
        raise ValueError(f"a traffic array needs one rate per second, at least {n} values; got shape {arr.shape}")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError("traffic rates must be finite and >= 0")
    return arr[:n].copy()


def _initial_bounds(config: ScalingConfig, t0: float) -> tuple[int, int]:
    """Bounds in force at ``t0``: the scheduled action that ran last before it (within 8 days)."""
    if config.night is None:
        return config.min_capacity, config.max_capacity
    best: tuple[float, int, int] | None = None
    for a in config.night.actions(config.min_capacity, config.max_capacity):
        sched = Schedule(a["schedule"], a["timezone"])
        t = t0 - 8 * 86400
        last = None
        while True:
            nxt = sched.next_after(t)
            if nxt is None or nxt > t0:
                break
            last, t = nxt, nxt
        if last is not None and (best is None or last > best[0]):
            best = (last, a["min_capacity"], a["max_capacity"])
    if best is None:
        return config.min_capacity, config.max_capacity
    return best[1], best[2]


def simulate(
    traffic: Shape | float | Sequence[float] | np.ndarray | None,
    config: ScalingConfig = SEED_CONFIG,
    service: ServiceModel | None = None,
    *,
    duration_s: float,
    start: float = DEFAULT_START,
    initial_capacity: int | None = None,
    provisioning_s: float = DEFAULT_PROVISIONING_S,
    termination_s: float = DEFAULT_TERMINATION_S,
    instance_type: str | None = None,
    endpoint_name: str = "simulated",
    variant_name: str = "AllTraffic",
    concurrency_statistic: str = "peak",
    tick_every_grid_point: bool = False,
    tables: TrafficTables | None = None,
) -> SimulationResult:
    """Simulate ``duration_s`` seconds of ``traffic`` on a variant scaled by ``config``.

    ``traffic``: a :class:`catkit.whatif.shapes.Shape` (``t = 0`` at ``start``), a constant rate or an
    array of per-second rates. ``service``: the instance's :class:`ServiceModel` (default: 40
    req/s, 4 workers - replace with a calibration). ``initial_capacity``: instances at ``start``
    (default: MinCapacity in force then). ``concurrency_statistic``: what ConcurrentRequestsPerModel
    reads per instance and 10-second window - ``"peak"`` (default), the expected peak in-flight
    count, which is what the local backend records, or ``"mean"`` in-flight requests (Little's
    law); see :data:`CONCURRENCY_STATISTIC_NOTE`. ``tick_every_grid_point`` steps the driver every
    10 s like the local backend instead of only when it can act (same decisions, slower; for tests).
    ``tables``: a :class:`~catkit.whatif.simulate.tables.TrafficTables` of this traffic (then
    ``traffic`` may be omitted as ``None``), shared by many simulations of it (e.g. a sweep over
    settings): what depends only on the traffic and the instance count is computed once. Returns a :class:`SimulationResult`.
    """
    wall0 = time.perf_counter()
    service = service or ServiceModel(max_rps=40.0, workers=4, source="default (not calibrated)")
    itype = get_instance_type(instance_type or service.instance_type)
    if provisioning_s < 0 or termination_s < 0:
        raise ValueError("provisioning_s and termination_s are seconds >= 0")
    t0 = float(math.floor(start))
    if tables is not None and (traffic is None or traffic is tables.rate) and len(tables.rate) == math.ceil(duration_s):
        rate = tables.rate  # validated when the tables were made
    elif traffic is None:
        raise ValueError("traffic is required unless tables= holds a traffic of duration_s seconds")
    else:
        rate = traffic_array(traffic, duration_s)
        tables = None
    t_end = t0 + len(rate)
    rid = variant_resource_id(endpoint_name, variant_name)

    lo, hi = _initial_bounds(config, t0)
    cap = initial_capacity if initial_capacity is not None else lo
    if cap < 1:
        raise ValueError("initial_capacity must be >= 1")
    clock = [t0]
    # Alarms of target tracking read Sum/Average only; the store's clock is the fleet's.
    metrics = MetricStore(lambda: clock[0], percentiles=False)
    fleet = SimulatedFleet(
        rate,
        t0,
        rid,
        variant_dimensions(endpoint_name, variant_name),
        service,
        int(cap),
        metrics,
        provisioning_s=provisioning_s,
        termination_s=termination_s,
        concurrency_statistic=concurrency_statistic,
        emit_concurrency=config.metric == HIGH_RES_METRIC,
        tables=tables,
    )
    counter = iter(range(1, 1 << 62))
    engine = Engine(AlarmBook(), id_factory=lambda: f"00000000-0000-4000-8000-{next(counter):012d}")
    driver = ScalingDriver(engine, metrics, fleet, decisions_only=True)
    engine.register_scalable_target(NAMESPACE, rid, DIMENSION, t0, min_capacity=lo, max_capacity=hi)
    result = engine.put_scaling_policy(
        "simulated-policy",
        NAMESPACE,
        rid,
        DIMENSION,
        t0,
        policy_type="TargetTrackingScaling",
        target_tracking_config=config.policy_configuration(),
    )
    if config.night is not None:
        for a in config.night.actions(config.min_capacity, config.max_capacity):
            engine.put_scheduled_action(
                a["name"], NAMESPACE, rid, DIMENSION, t0, schedule=a["schedule"], timezone=a["timezone"],
                min_capacity=a["min_capacity"], max_capacity=a["max_capacity"],
            )

    ticks = 0
    now = math.ceil(t0 / TICK_S) * TICK_S
    while now < t_end:
        ticks += 1
        clock[0] = now
        driver.step(now)
        now = now + TICK_S if tick_every_grid_point else driver.next_step(now)
    fleet.finish()
    fleet.release()  # the result keeps the per-second arrays only
    runs, billed_seconds = fleet.count_runs()

    result = SimulationResult(
        config=config,
        service=service,
        start=t0,
        rate=rate,
        serving=fleet.serving,
        billed=Deferred(fleet.billed_array),  # built when read
        price_per_hour=itype.price_per_hour,
        activities=Deferred(lambda: _activities_frame(engine, rid)),  # built when read
        wall_seconds=time.perf_counter() - wall0,
        ticks=ticks,
        tables=tables,
        meta={
            "instance_type": itype.name,
            "provisioning_s": provisioning_s,
            "termination_s": termination_s,
            "eval_every_s": min(60 if s.period >= 60 else 10 for s in result.alarm_specs),
            "alarms": [s.alarm_name for s in result.alarm_specs],
            "concurrency_statistic": concurrency_statistic,
        },
    )
    result.meta["_segments"] = (fleet.serving, runs)  # what the summary would derive from the arrays
    result.meta["_billed"] = billed_seconds  # what billed.sum() gives
    return result


def _activities_frame(engine: Engine, rid: str) -> Any:
    import pandas as pd

    rows = []
    for a in reversed(engine.describe_scaling_activities(NAMESPACE, resource_id=rid)):
        rows.append(
            {
                "start_time": a.start_time,
                "end_time": a.end_time,
                "status": a.status_code,
                "desired_capacity": a.desired_capacity,
                "previous_capacity": a.previous_capacity,
                "description": a.description,
                "cause": a.cause,
            }
        )
    cols = ["start_time", "end_time", "status", "desired_capacity", "previous_capacity", "description", "cause"]
    return pd.DataFrame(rows, columns=cols)


