"""Serverless variants: workers started on demand, released after idle, cold starts, throttling.

A production variant with ``ServerlessConfig`` has no instances of its own. :class:`ServerlessPool`
gives each request a worker - one model-server process serving one request at a time (an instance
of the fleet's pool, started without the instance provisioning delay):

* a warm idle worker if there is one; otherwise a **cold start**: a new worker is launched (the
  emulated container setup of ``cold_start_seconds``, then the real process start and model load)
  and the request waits for it; the time from launch to ready is recorded as ``ModelSetupTime``
  (``AWS/SageMaker``, microseconds), the metric AWS publishes for the time to launch new compute
  for a serverless endpoint (shared/aws-facts.md §4): the emulated set-up plus the process start and
  model load in real seconds - like ModelLatency, work this machine really does is measured in real
  time, so a time scale of 120 does not turn a 1-second start into two minutes of set-up;
* beyond ``MaxConcurrency`` requests in flight: ``ThrottlingException`` (HTTP 400; AWS's common
  error "The request was denied due to request throttling." - exact wording for serverless
  unconfirmed, ASSUMPTION);
* ``ProvisionedConcurrency`` workers are kept warm (launched with the endpoint; their number is the
  variant's scalable ``sagemaker:variant:DesiredProvisionedConcurrency``); the utilisation of the
  provisioned workers is sampled as ``ServerlessProvisionedConcurrencyUtilization``;
* workers beyond the provisioned ones are released after ``idle_seconds`` without a request
  (emulated; AWS does not publish its idle timeout - ASSUMPTION: 10 minutes by default);
* payloads up to 4 MB and 60 s per request
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html).

At most ``max_workers`` processes run per variant on this machine (``CATKIT_SERVERLESS_MAX_WORKERS``,
default 4): a request beyond them but within MaxConcurrency waits for a worker instead of being
throttled (a local limit, not AWS's).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.fleet.instances import Instance, InstanceLaunchError, InstanceState
from catkit.local.fleet.state import Endpoint, Variant
from catkit.names import SAGEMAKER_METRICS

log = logging.getLogger("catkit.local.fleet.serverless")

MAX_PAYLOAD = 4 * 1024 * 1024  # request and response (serverless-endpoints-invoke.html)
TIMEOUT_S = 60.0  # /invocations must answer within 1 minute


def is_serverless(variant: Variant) -> bool:
    return bool(variant.props.get("ServerlessConfig"))


@dataclass
class ServerlessLease:
    """A routed serverless request: the worker and whether it was a cold start."""

    instance: Instance
    url: str
    pool: ServerlessPool
    variant: Variant
    cold: bool = False

    def release(self) -> None:
        self.pool._released(self.variant, self.instance)


class ServerlessPool:
    """Workers of every serverless variant of one fleet (see the module docstring)."""

    def __init__(self, pool: Any, clock: Any, metrics: Any, *, cold_start_seconds: float | None = None,
                 idle_seconds: float | None = None, max_workers: int | None = None) -> None:
        self.pool = pool  # catkit.local.fleet.pool.InstancePool
        self.clock = clock
        self.metrics = metrics  # () -> MetricStore | None
        env = os.environ.get
        self.cold_start_seconds = float(cold_start_seconds if cold_start_seconds is not None
                                        else env("CATKIT_SERVERLESS_COLD_START_SECONDS") or 5.0)
        self.idle_seconds = float(idle_seconds if idle_seconds is not None
                                  else env("CATKIT_SERVERLESS_IDLE_SECONDS") or 600.0)
        self.max_workers = int(max_workers or env("CATKIT_SERVERLESS_MAX_WORKERS") or 4)
        self.in_flight: dict[int, int] = {}  # id(variant) -> requests in flight
        self.last_used: dict[str, float] = {}  # instance id -> emulated time its last request ended
        self.cold_starts: list[tuple[str, float]] = []  # (endpoint, ModelSetupTime seconds)
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ routing
    async def acquire(self, ep: Endpoint, variant: Variant) -> ServerlessLease:
        """A worker for one request (begun on it); ThrottlingException beyond MaxConcurrency."""
        cfg = variant.props["ServerlessConfig"]
        key = id(variant)
        if self.in_flight.get(key, 0) >= int(cfg["MaxConcurrency"]):
            raise AwsError(
                "ThrottlingException",
                f"The request was denied due to request throttling: serverless endpoint {ep.name} is already "
                f"processing its MaxConcurrency of {cfg['MaxConcurrency']} concurrent invocations.",
                400,
            )
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            inst, cold = await self._worker(ep, variant)
        except BaseException:
            self.in_flight[key] -= 1
            raise
        inst.begin_request()
        assert inst.invocations_url is not None
        return ServerlessLease(inst, inst.invocations_url, self, variant, cold)

    def _idle_worker(self, variant: Variant) -> Instance | None:
        return next((i for i in variant.instances if i.routable and i.outstanding == 0), None)

    async def _worker(self, ep: Endpoint, variant: Variant) -> tuple[Instance, bool]:
        inst = self._idle_worker(variant)
        if inst is not None:
            return inst, False
        if len(variant.active()) < self.max_workers:
            return await self._cold_start(ep, variant), True
        while True:  # the local process cap: wait for a worker to come free
            await asyncio.sleep(0.01)
            inst = self._idle_worker(variant)
            if inst is not None:
                return inst, False

    async def _cold_start(self, ep: Endpoint, variant: Variant) -> Instance:
        if self.cold_start_seconds > 0:
            await self.clock.sleep(self.cold_start_seconds)  # the emulated container setup
        launched = time.perf_counter()
        try:
            inst = await self.pool.launch(ep.name, variant, provision=False)
        except InstanceLaunchError as e:
            raise AwsError("ModelNotReadyException", f"The serverless endpoint {ep.name} could not start a worker: "
                           f"{e}", 429) from None
        # Emulated set-up, then the real start in real seconds (see the module docstring).
        setup_s = self.cold_start_seconds + (time.perf_counter() - launched)
        self.cold_starts.append((ep.name, setup_s))
        store = self.metrics()
        if store is not None:
            store.record(SAGEMAKER_METRICS, "ModelSetupTime", variant.dims, setup_s * 1e6, self.clock.now(),
                         unit="Microseconds")
        log.info("cold start of a serverless worker for %s/%s took %.2f s (emulated set-up + real start)", ep.name, variant.name, setup_s)
        return inst

    def _released(self, variant: Variant, inst: Instance) -> None:
        key = id(variant)
        self.in_flight[key] = max(0, self.in_flight.get(key, 0) - 1)
        self.last_used[inst.id] = self.clock.now()

    # ------------------------------------------------------------------ idle release, provisioned
    async def sweep(self, endpoints: list[Endpoint], now: float) -> None:
        """Release workers idle longer than ``idle_seconds`` beyond the provisioned ones, and
        record ServerlessProvisionedConcurrencyUtilization for variants with provisioned workers."""
        store = self.metrics()
        for ep in endpoints:
            for v in ep.variants:
                if not is_serverless(v):
                    continue
                provisioned = int(v.props.get("DesiredInstanceCount") or 0)
                serving = [i for i in v.instances if i.state is InstanceState.IN_SERVICE]
                if provisioned and store is not None:
                    busy = sum(1 for i in serving if i.outstanding)
                    store.record(SAGEMAKER_METRICS, "ServerlessProvisionedConcurrencyUtilization", v.dims,
                                 min(1.0, busy / provisioned), now)
                idle = sorted((i for i in serving if i.outstanding == 0),
                              key=lambda i: self.last_used.get(i.id, i.launched_at or 0.0))
                spare = len(serving) - provisioned
                for inst in idle:
                    if spare <= 0:
                        break
                    if now - self.last_used.get(inst.id, inst.launched_at or now) >= self.idle_seconds:
                        inst.state = InstanceState.DRAINING
                        self.last_used.pop(inst.id, None)
                        await self.pool.retire(v, inst, drain=False)
                        spare -= 1

    def warm_count(self, variant: Variant) -> int:
        """Workers of ``variant`` ready to serve now."""
        return sum(1 for i in variant.instances if i.routable)


def check_serverless_variant(pv: dict[str, Any], vn: str) -> None:
    """CreateEndpointConfig checks of a serverless variant beyond botocore's model (ValidationException)."""
    cfg = pv["ServerlessConfig"]
    if pv.get("InstanceType") or pv.get("InitialInstanceCount") is not None:
        raise AwsError(
            "ValidationException",
            f'Variant "{vn}": a serverless variant (ServerlessConfig) cannot set InstanceType or '
            "InitialInstanceCount.",
        )
    mem = int(cfg["MemorySizeInMB"])
    if mem % 1024 or not 1024 <= mem <= 6144:
        raise AwsError(
            "ValidationException",
            f'Variant "{vn}": MemorySizeInMB must be 1024, 2048, 3072, 4096, 5120 or 6144 (1 GB steps), got {mem}.',
        )
    mc, pc = int(cfg["MaxConcurrency"]), cfg.get("ProvisionedConcurrency")
    if pc is not None and int(pc) > mc:
        raise AwsError(
            "ValidationException",
            f'Variant "{vn}": ProvisionedConcurrency ({pc}) must be less than or equal to MaxConcurrency ({mc}).',
        )


__all__ = [
    "MAX_PAYLOAD",
    "TIMEOUT_S",
    "ServerlessLease",
    "ServerlessPool",
    "check_serverless_variant",
    "is_serverless",
]
