"""What the local backend is made of: the three components and how they plug into its core.

The backend's core (:class:`catkit.local.backend.Backend`) always has the clock, the state store,
S3, the one metric store, the one alarm book, the one scheduler and the one
:class:`~catkit.autoscaling.driver.ScalingDriver`. A component adds an AWS service and the parts
behind it, handing each part what it needs (no part reaches into the backend for more):

* ``cloudwatch`` - the CloudWatch service over the metric store and alarm book, and a job that
  records alarm actions the backend cannot deliver (SNS, EC2, ...);
* ``sagemaker`` - the fleet (:class:`~catkit.local.fleet.endpoints.EndpointManager`), the
  ``sagemaker`` and ``sagemaker-runtime`` services, the endpoints' (absent) CloudWatch Logs
  (``logs``: what SDK v3 asks while deploying), the fleet as the driver's fleet port, and the
  fleet's jobs (per-minute instance metrics, health checks), and the asynchronous-inference queues
  (InvokeEndpointAsync, backlog metrics every 10 s) and the serverless worker pool (cold starts,
  throttling, idle release every 10 s);
* ``application-autoscaling`` - the engine restored from the state store and driven by the
  driver, its service, its persistence and the endpoint hooks (deregistration on delete, the
  update guard).

Periodic work runs on the backend's scheduler, in this order at equal times: fleet sampling (10),
the scaling step (20), undeliverable alarm actions (30), saving the engine (35) and the alarm
book (40). ``Backend(components=...)`` takes these names; other dotted names are modules with an
``install(backend)`` function (extensions, tests).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from catkit.autoscaling.alarms import AlarmBook
from catkit.autoscaling.driver import ScalingDriver
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.errors import ScalingError
from catkit.autoscaling.metrics_store import MetricStore
from catkit.autoscaling.policies import TARGET_TRACKING
from catkit.local.clock import Clock
from catkit.local.errors import AwsError
from catkit.local.fleet.async_inference import AsyncInference
from catkit.local.fleet.endpoints import EndpointManager
from catkit.local.fleet.scaling_port import EndpointFleet
from catkit.local.fleet.serverless import ServerlessPool
from catkit.local.scheduler import Scheduler
from catkit.local.services.autoscaling import ApplicationAutoScalingService
from catkit.local.services.cloudwatch import CloudWatchService
from catkit.local.services.cloudwatch_store import AlarmPersistence
from catkit.local.services.logs import LogsService
from catkit.local.services.runtime import RuntimeService
from catkit.local.services.sagemaker import SageMakerService
from catkit.names import parse_variant_resource_id

log = logging.getLogger("catkit.local.autoscaling")

class Backend(Protocol):
    """The core of :class:`catkit.local.backend.Backend` that components use and extend."""

    home: Any
    clock: Clock
    state: Any
    s3: Any
    region: str
    account_id: str
    metrics: MetricStore
    alarms: AlarmBook
    alarm_store: AlarmPersistence
    scheduler: Scheduler
    driver: ScalingDriver
    cloudwatch: CloudWatchService | None
    endpoints: EndpointManager | None
    autoscaling: AutoscalingController | None

    def add_service(self, name: str, service: Any) -> None: ...

    def add_background(self, factory: Callable[[], Any]) -> None: ...

    def add_shutdown(self, fn: Callable[[], Any]) -> None: ...


#: Scheduler order of each periodic job at equal times (lower first).
ORDER_SAMPLE, ORDER_STEP, ORDER_ACTIONS, ORDER_SAVE_ENGINE, ORDER_SAVE_ALARMS = 10, 20, 30, 35, 40
TICK_S = 10.0


def install_cloudwatch(backend: Backend) -> None:
    """The ``cloudwatch`` service; alarms are evaluated by the driver's step."""
    service = CloudWatchService(backend.metrics, backend.alarms, backend.clock.now, store=backend.alarm_store)
    backend.cloudwatch = service
    backend.add_service("cloudwatch", service)
    backend.scheduler.every("cloudwatch-actions", TICK_S, service.record_undeliverable_actions,
                            order=ORDER_ACTIONS)


def install_sagemaker(backend: Backend, **manager_options: Any) -> None:
    """The fleet, the ``sagemaker``, ``sagemaker-runtime`` and ``logs`` services, the fleet's jobs.
    ``manager_options`` go to :class:`EndpointManager` (e.g. ``instance_options`` in tests)."""
    manager = EndpointManager(backend, **manager_options)
    backend.endpoints = manager
    queues = AsyncInference(manager, manager.data.endpoints, lambda: backend.s3, lambda: backend.metrics,
                            backend.clock, backend.region, backend.account_id)
    manager.on_endpoint_deleted(queues.forget)
    serverless = ServerlessPool(manager.pool, backend.clock, lambda: backend.metrics)
    manager.data.serverless = serverless
    backend.add_service("sagemaker", SageMakerService(manager))
    backend.add_service("sagemaker-runtime", RuntimeService(manager, queues))
    backend.add_service("logs", LogsService())
    backend.driver.fleet = EndpointFleet(manager)
    backend.scheduler.every("fleet-minute", 60.0, manager.sample_minute, order=ORDER_SAMPLE)
    backend.scheduler.every("async-backlog", TICK_S, queues.sample, order=ORDER_SAMPLE)

    async def _sweep(now: float) -> None:
        await serverless.sweep(list(manager.data.endpoints.values()), now)

    backend.scheduler.every("serverless-sweep", TICK_S, _sweep, order=ORDER_SAMPLE)
    health_real = min(max(backend.clock.real_seconds(manager.settings.health_interval_seconds), 0.5), 10.0)
    backend.scheduler.every("fleet-health", backend.clock.emulated_seconds(health_real),
                            _ignore_now(manager.check_health), order=ORDER_SAMPLE + 1)
    backend.add_background(manager.resume)
    backend.add_shutdown(manager.shutdown)
    backend.add_shutdown(queues.shutdown)  # hooks run in reverse: the queues stop first
    backend.add_shutdown(manager.multimodel.shutdown)


def install_autoscaling(backend: Backend) -> None:
    """Application Auto Scaling: the persisted engine on the driver, its service and hooks."""
    if backend.endpoints is None:
        raise RuntimeError(
            "the application-autoscaling component scales SageMaker variants: install the sagemaker "
            "component before it"
        )
    controller = AutoscalingController(
        backend.state, backend.clock, backend.driver, backend.endpoints, backend.alarm_store
    )
    backend.autoscaling = controller
    backend.add_service("application-autoscaling", controller.service)
    backend.scheduler.every("autoscaling-save", TICK_S, _ignore_now(controller.persist),
                            order=ORDER_SAVE_ENGINE)

    async def _save() -> None:
        with contextlib.suppress(Exception):
            controller.persist(force=True)

    backend.add_shutdown(_save)


class AutoscalingController:
    """Application Auto Scaling of the local backend: the engine the driver steps, kept in the state
    store (kind ``application-autoscaling``) after every change, its API service, and the endpoint
    hooks: a deleted endpoint's scalable targets are deregistered (AAS does that silently,
    aws-facts §1.5), and an UpdateEndpoint that removes an auto-scaled variant or changes its
    instance type is refused (AWS requires DeleteScalingPolicy + DeregisterScalableTarget first)."""

    STATE_KIND = "application-autoscaling"
    STATE_KEY = "engine"

    def __init__(
        self,
        state: Any,
        clock: Clock,
        driver: ScalingDriver,
        endpoints: EndpointManager,
        alarm_store: AlarmPersistence,
    ) -> None:
        self.state = state
        self.clock = clock
        self.driver = driver
        self.endpoints = endpoints
        self.alarm_store = alarm_store
        alarms = driver.engine.alarms
        doc = state.get(self.STATE_KIND, self.STATE_KEY) or {}
        ids = {"id_factory": lambda: str(uuid.uuid4())}
        if doc.get("engine"):
            driver.engine = Engine.from_dict(doc["engine"], alarms=alarms, **ids)
        else:
            driver.engine = Engine(alarms, alarms.region, alarms.account_id, **ids)
        self.engine = driver.engine
        # Every acknowledged mutation is saved at once: the change signature below follows scaling
        # activities only, so a RegisterScalableTarget / PutScalingPolicy answered 200 was lost on
        # kill -9 until the next activity (found by benchmarks/chaos.py).
        self.engine.allows_zero = self._allows_zero
        self.service = ApplicationAutoScalingService(self.engine, clock.now, self._variant_exists,
                                                     lambda: self.persist(force=True))
        self.service.tags = {k: dict(v) for k, v in (doc.get("tags") or {}).items()}
        self.service.serverless = self._serverless
        self._saved: Any = None
        self._reconcile_alarms()
        endpoints.on_endpoint_deleted(self.on_endpoint_deleted)
        endpoints.add_update_guard(self.update_guard)

    def _variant_exists(self, endpoint: str, variant: str) -> bool:
        view = self.endpoints.get_variant(endpoint, variant)
        return view is not None and view.status != "Deleting"

    def _allows_zero(self, resource_id: str) -> bool:
        """Asynchronous endpoints' variants may scale to zero instances (async-inference-autoscale.html)."""
        names = parse_variant_resource_id(resource_id)
        if names is None:
            return False
        try:
            return self.endpoints.describe_endpoint(names[0]).get("AsyncInferenceConfig") is not None
        except AwsError:
            return False

    def _serverless(self, endpoint: str, variant: str) -> bool:
        """Whether the variant is serverless (its provisioned concurrency is what scales)."""
        try:
            desc = self.endpoints.describe_endpoint(endpoint)
        except AwsError:
            return False
        pv = next((v for v in desc.get("ProductionVariants") or [] if v.get("VariantName") == variant), {})
        return "CurrentServerlessConfig" in pv

    def tick(self, now: float | None = None) -> list[Any]:
        """One scaling step now (the scheduler does this every 10 s), then save what changed."""
        decisions = self.driver.step(self.clock.now() if now is None else now)
        self.persist()
        return decisions

    # ------------------------------------------------------------------ persistence
    def _signature(self) -> Any:
        acts = self.engine._activities
        return (
            len(acts),
            acts[-1].activity_id if acts else None,
            tuple((a.activity_id, a.status_code) for a in acts if a.status_code in ("Pending", "InProgress")),
            tuple(sorted(self.engine.pending.items())),
            tuple(a.next_run for a in self.engine.scheduled.values()),
        )

    def persist(self, force: bool = False) -> None:
        """Save the engine (and tags) if anything changed, and the alarm book with it (target
        tracking policies own alarms there)."""
        signature = self._signature()
        if force or signature != self._saved:
            self.state.put(self.STATE_KIND, self.STATE_KEY, {"engine": self.engine.to_dict(), "tags": self.service.tags})
            self._saved = signature
        self.alarm_store.persist(force)

    def _reconcile_alarms(self) -> None:
        """Recreate target-tracking alarms missing from the book (e.g. after a crash between saves)."""
        now = self.clock.now()
        for policy in list(self.engine.policies.values()):
            if policy.policy_type != TARGET_TRACKING:
                continue
            if all(self.engine.alarms.get(n) is not None for n in policy.alarm_roles.values()):
                continue
            try:
                self.engine.put_scaling_policy(
                    policy.policy_name, *policy.key, now, policy_type=TARGET_TRACKING,
                    target_tracking_config=policy.config,
                )
                log.warning("recreated the alarms of scaling policy %s", policy.policy_arn)
            except ScalingError as e:
                log.error("could not recreate the alarms of %s: %s", policy.policy_arn, e)

    # ------------------------------------------------------------------ endpoint hooks
    def on_endpoint_deleted(self, endpoint_name: str) -> None:
        """AAS silently deregisters the scalable targets of a deleted endpoint (aws-facts §1.5)."""
        prefix = f"endpoint/{endpoint_name}/".lower()
        now = self.clock.now()
        for target in list(self.engine.targets.values()):
            if target.service_namespace == "sagemaker" and target.resource_id.lower().startswith(prefix):
                with contextlib.suppress(ScalingError):
                    self.engine.deregister_scalable_target(*target.key, now)
                self.service.tags.pop(target.arn, None)
                self.driver.forget(target.resource_id)
        self.persist()

    def update_guard(self, endpoint_name: str, current: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        """Refuse an UpdateEndpoint that removes an auto-scaled variant or changes its instance type."""
        new_by_name = {v.get("VariantName"): v for v in new}
        for old in current:
            name = old.get("VariantName")
            rid = f"endpoint/{endpoint_name}/variant/{name}".lower()
            if not any(t.resource_id.lower() == rid for t in self.engine.targets.values()):
                continue
            replacement = new_by_name.get(name)
            what = None
            if replacement is None:
                what = "UpdateEndpoint cannot remove it"
            elif replacement.get("InstanceType") != old.get("InstanceType"):
                what = (
                    f"UpdateEndpoint cannot change its instance type from {old.get('InstanceType')} to "
                    f"{replacement.get('InstanceType')}"
                )
            if what:
                raise AwsError(
                    "ValidationException",
                    f'The variant "{name}" of endpoint "{endpoint_name}" is registered as a scalable target with '
                    f"Application Auto Scaling, so {what}. Delete its scaling policies (DeleteScalingPolicy) and "
                    "deregister it (DeregisterScalableTarget) first.",
                )


def _ignore_now(fn: Callable[[], object]) -> Callable[[float], object]:
    return lambda now: fn()


#: Component names, in install order, with the modules they were known by before (still accepted).
INSTALLERS: dict[str, Callable[[Backend], None]] = {
    "cloudwatch": install_cloudwatch,
    "sagemaker": install_sagemaker,
    "application-autoscaling": install_autoscaling,
}
ALIASES: dict[str, str | None] = {
    "catkit.local.metrics_store": None,  # the metric store is part of the core now
    "catkit.autoscaling.metrics_store": None,
    "catkit.local.services.cloudwatch": "cloudwatch",
    "catkit.local.endpoints": "sagemaker",
    "catkit.local.fleet.endpoints": "sagemaker",
    "catkit.local.services.sagemaker": "sagemaker",
    "catkit.local.autoscaling_controller": "application-autoscaling",
    "catkit.local.fleet.scaling_port": "application-autoscaling",
}
DEFAULT_COMPONENTS: tuple[str, ...] = tuple(INSTALLERS)
