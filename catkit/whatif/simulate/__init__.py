"""Offline simulator of an auto-scaled SageMaker variant, on the real scaling engine and driver.

``simulate(traffic, config, service, duration_s=...)`` answers "what happens to latency and cost
under this traffic with these scaling settings?" in seconds: the engine the local backend runs,
stepped by the same :class:`~catkit.autoscaling.driver.ScalingDriver`, over a simulated fleet.

The settings are :class:`catkit.autoscaling.config.ScalingConfig` (re-exported here). Modules: ``fleet`` (the simulated
fleet port and the metrics it emits), ``run`` (:func:`simulate`), ``result``
(:class:`SimulationResult`: latency, cost, frames, plots), ``compare`` (against a real or local
endpoint), ``idle`` (asynchronous scale to zero and serverless, and the four-way idle-cost comparison).
"""

from __future__ import annotations

from catkit.autoscaling.config import (  # the policy vocabulary, offered here as before
    HIGH_RES_METRIC,
    INVOCATIONS_METRIC,
    METRIC_ALIASES,
    SEED_CONFIG,
    NightSchedule,
    ScalingConfig,
)
from catkit.autoscaling.driver import TICK_S
from catkit.names import AAS_SAGEMAKER as NAMESPACE
from catkit.names import VARIANT_INSTANCE_COUNT as DIMENSION
from catkit.whatif.calibrate import ServiceModel  # the old module offered it; notebooks use it
from catkit.whatif.shapes import Shape
from catkit.whatif.simulate.compare import (
    Comparison,
    agreement,
    compare_timelines,
    compare_with_endpoint,
    emulated_capacity_events,
    observed_traffic,
    plot_side_by_side,
    simulated_capacity_events,
)
from catkit.whatif.simulate.fleet import SimulatedFleet
from catkit.whatif.simulate.idle import (
    IdleOption,
    compare_idle_options,
    example_spiky_day,
    idle_options_frame,
    simulate_async,
    simulate_serverless,
)
from catkit.whatif.simulate.result import SimulationResult
from catkit.whatif.simulate.run import (
    DEFAULT_PROVISIONING_S,
    DEFAULT_START,
    DEFAULT_TERMINATION_S,
    simulate,
    traffic_array,
)

__all__ = [
    "DEFAULT_PROVISIONING_S",
    "DEFAULT_START",
    "DEFAULT_TERMINATION_S",
    "DIMENSION",
    "HIGH_RES_METRIC",
    "INVOCATIONS_METRIC",
    "METRIC_ALIASES",
    "NAMESPACE",
    "SEED_CONFIG",
    "TICK_S",
    "Comparison",
    "IdleOption",
    "NightSchedule",
    "ScalingConfig",
    "ServiceModel",
    "Shape",
    "SimulatedFleet",
    "SimulationResult",
    "agreement",
    "compare_idle_options",
    "compare_timelines",
    "compare_with_endpoint",
    "emulated_capacity_events",
    "example_spiky_day",
    "idle_options_frame",
    "observed_traffic",
    "plot_side_by_side",
    "simulate",
    "simulate_async",
    "simulate_serverless",
    "simulated_capacity_events",
    "traffic_array",
]
