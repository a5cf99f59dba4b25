"""Per-instance metric sampling of the fleet: concurrency windows and CPU/memory per minute.

Invocation metrics are recorded per request by :mod:`catkit.local.fleet.invoke`; what is sampled
on a schedule lives here:

* ``ConcurrentRequestsPerModel`` (1-second resolution, every 10 emulated seconds): the peak
  in-flight count of each in-service instance since the previous sample (queued requests
  included), after which the instance's window restarts at its current in-flight count;
* per emulated minute: ``CPUUtilization`` and ``MemoryUtilization`` of each in-service instance.

The scaling driver (:mod:`catkit.autoscaling.driver`) takes the concurrency samples on its step
and owns the idle zeros (zero Invocations of auto-scaled variants in minutes without traffic).

Functions take the endpoints and a metric store (anything with ``record``); they never sleep.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from catkit.local.fleet.instances import InstanceState
from catkit.local.fleet.state import Endpoint
from catkit.names import ENDPOINT_INSTANCE_METRICS, SAGEMAKER_METRICS

#: One concurrency sample: a variant's dimensions and one value per in-service instance.
ConcurrencySample = tuple[dict[str, str], list[float]]


def take_concurrency_samples(endpoints: Iterable[Endpoint]) -> list[ConcurrencySample]:
    """For every serving variant: its dimensions and the peak in-flight count of each in-service
    instance since the previous call (a variant without one gets an empty list). Restarts each
    sampled instance's window at its current in-flight count."""
    out: list[ConcurrencySample] = []
    for ep in list(endpoints):
        for v in ep.variants:
            values: list[float] = []
            for inst in v.instances:
                if inst.state is not InstanceState.IN_SERVICE:
                    continue
                values.append(float(inst.window_max))
                inst.window_max = inst.outstanding
            out.append((v.dims, values))
    return out


def record_concurrency(metrics: Any, samples: Iterable[ConcurrencySample], timestamp: float) -> None:
    """Record ``samples`` as high-resolution ``ConcurrentRequestsPerModel`` datapoints."""
    if metrics is None:
        return
    for dims, values in samples:
        for value in values:
            metrics.record(SAGEMAKER_METRICS, "ConcurrentRequestsPerModel", dims, value, timestamp,
                           unit="Count", storage_resolution=1)


def sample_minute(metrics: Any, endpoints: Iterable[Endpoint], timestamp: float) -> None:
    """One emulated minute's CPU/memory datapoints per in-service instance."""
    for ep in list(endpoints):
        for v in ep.variants:
            for inst in v.instances:
                if inst.state is not InstanceState.IN_SERVICE:
                    continue
                usage = inst.sample_usage()
                if usage is None:
                    continue
                cpu, mem = usage
                if metrics is not None:
                    metrics.record(ENDPOINT_INSTANCE_METRICS, "CPUUtilization", v.dims, cpu, timestamp, unit="Percent")
                    metrics.record(ENDPOINT_INSTANCE_METRICS, "MemoryUtilization", v.dims, mem, timestamp,
                                   unit="Percent")


__all__ = ["ConcurrencySample", "record_concurrency", "sample_minute", "take_concurrency_samples"]
