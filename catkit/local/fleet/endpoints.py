"""EndpointManager: the SageMaker endpoint state machine and the instance pools of the fleet.

Owns every endpoint of the local backend: CreateEndpoint -> ``Creating`` -> ``InService`` |
``Failed``; UpdateEndpoint (blue/green: new instances first, traffic switch, then drain + stop of
the old ones); UpdateEndpointWeightsAndCapacities (``Updating``, launch or drain, ``InService``);
DeleteEndpoint (``Deleting``, then gone). Instances are real processes
(:mod:`catkit.local.fleet.instances`); a crashed or unhealthy instance is replaced while the
endpoint stays ``InService`` on the rest.

The manager composes the fleet's other parts: the documents and their persistence
(:mod:`catkit.local.fleet.state`; after a restart endpoints come back and InService ones relaunch
their instances, without the provisioning delay: the emulated hardware was already provisioned),
the data plane (:mod:`catkit.local.fleet.invoke`: routing, forwarding, invocation metrics,
ModelError), metric sampling (:mod:`catkit.local.fleet.sampling`) and multi-model placement
(:mod:`catkit.local.fleet.multimodel`). Services reach the fleet only through the public methods
listed on :class:`EndpointManager`; the component that creates the manager and registers the
``sagemaker`` and ``sagemaker-runtime`` services is :func:`catkit.local.services.sagemaker.install`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Protocol

from catkit.instance_types import INSTANCE_TYPES
from catkit.local.clock import Clock
from catkit.local.errors import AwsError
from catkit.local.fleet import housekeeping, router, sampling
from catkit.local.fleet.instances import Instance, InstanceLaunchError, InstanceSettings, InstanceState
from catkit.local.fleet.invoke import MAX_BODY, DataPlane
from catkit.local.fleet.multimodel import MultiModelManager
from catkit.local.fleet.pool import InstancePool, run_all
from catkit.local.fleet.state import (
    KIND_CONFIG,
    KIND_ENDPOINT,
    KIND_MODEL,
    SERVING,
    Endpoint,
    Variant,
    VariantView,
    apply_endpoint_settings,
    check_updatable,
    check_weights_and_capacities,
    describe,
    load_endpoints,
    new_endpoint,
    save_endpoint,
    variant_props,
)
from catkit.local.validation import arn, check_name, not_found
from catkit.names import ENDPOINT_INSTANCE_METRICS, SAGEMAKER_METRICS

log = logging.getLogger("catkit.local.fleet.endpoints")

NS_INVOCATIONS = SAGEMAKER_METRICS  # deprecated alias: use catkit.names.SAGEMAKER_METRICS
NS_INSTANCE = ENDPOINT_INSTANCE_METRICS  # deprecated alias: use catkit.names.ENDPOINT_INSTANCE_METRICS

class FleetHost(Protocol):
    """What the fleet takes from the backend that hosts it."""

    home: Any
    clock: Clock
    state: Any  # catkit.local.storage.state.StateStore
    s3: Any  # async head_object / get_object (catkit.local.storage.s3.LocalS3)
    metrics: Any  # catkit.autoscaling.metrics_store.MetricStore (record on the hot path)
    region: str
    account_id: str


UpdateGuard = Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], None]


class EndpointManager:
    """All endpoints of one backend (see the module docstring for the lifecycle rules).

    Public API (what services, the multi-model router, the scaling port and tests call):

    * control plane - ``create_endpoint``, ``describe_endpoint``, ``update_endpoint``,
      ``update_weights_and_capacities``, ``delete_endpoint``; lookups ``get_model``,
      ``get_config``, ``endpoint_names``, ``endpoint_doc``;
    * autoscaling - ``get_variant`` (a :class:`VariantView` or None),
      ``set_desired_instance_count``, ``on_endpoint_deleted(callback)``, ``add_update_guard(guard)``,
      ``variant_instances``;
    * data plane - ``invoke`` (InvokeEndpoint), and for the multi-model router:
      ``wait_for_capacity``, ``record_invocation``, ``model_error``, ``variant_of``;
    * health and metrics - ``check_health`` (one /ping round), ``take_concurrency_samples``,
      ``sample_concurrency(timestamp)``, ``sample_minute(timestamp)``;
    * lifecycle - ``resume()`` (relaunch the persisted endpoints' instances once, at start),
      ``shutdown()``; the backend's scheduler calls ``check_health`` and ``sample_minute``
      periodically and the scaling driver takes the concurrency samples;
    * settings - ``settings`` (:class:`InstanceSettings`), ``invocation_timeout``,
      ``capacity_wait_real``, ``max_instances``; parts - ``pool`` (:class:`InstancePool`), ``data``
      (:class:`DataPlane`), ``multimodel``, ``http``.
    """

    def __init__(
        self,
        backend: FleetHost,
        settings: InstanceSettings | None = None,
        *,
        invocation_timeout: float | None = None,
        max_instances: int | None = None,
        instance_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.clock = backend.clock
        self.state = backend.state
        self.region: str = backend.region
        self.account_id: str = backend.account_id
        self.home = Path(backend.home)
        self.settings = settings or InstanceSettings.from_env(**dict(instance_options or {}))
        self.max_instances = int(max_instances or os.environ.get("CATKIT_MAX_INSTANCES") or 32)
        self._endpoints: dict[str, Endpoint] = load_endpoints(self.state)
        # Before any launch: what a killed previous run left (its instances' dirs, deleted endpoints' logs).
        housekeeping.sweep_orphans(self.home, [ep.name for ep in self._endpoints.values()])
        self._deleted_listeners: list[Callable[[str], Any]] = []
        self._update_guards: list[UpdateGuard] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._resumed = False  # run() has relaunched the persisted endpoints' instances
        self.pool = InstancePool(self.home, self.clock, self.settings, lambda: self.backend.s3, self._on_instance_exit)
        self.data = DataPlane(
            self._endpoints, self.clock, self.region, self.account_id,
            metrics=lambda: self.backend.metrics, resumed=lambda: self._resumed,
        )
        self.http = self.data.http  # the InvokeEndpoint forwarder (hot path)
        env_timeout = os.environ.get("CATKIT_INVOCATION_TIMEOUT_SECONDS")
        self.invocation_timeout = float(invocation_timeout or env_timeout or 60.0)
        self.multimodel = MultiModelManager(self)  # TargetModel routing/loading for MultiModel variants
        self.data.multimodel = self.multimodel

    @property
    def invocation_timeout(self) -> float:
        """Real seconds an instance has to answer /invocations (AWS: 60 s) before ModelError."""
        return self.data.timeout

    @invocation_timeout.setter
    def invocation_timeout(self, seconds: float) -> None:
        self.data.timeout = float(seconds) or 60.0
        # The model server abandons a call at the same limit and replaces its worker thread, so a
        # hanging handler costs one ModelError instead of wedging the instance.
        self.settings.model_timeout_real = float(seconds)

    @property
    def capacity_wait_real(self) -> float:
        """Real seconds a request waits for a starting instance before 503 ServiceUnavailable."""
        return self.data.capacity_wait_real

    @capacity_wait_real.setter
    def capacity_wait_real(self, seconds: float) -> None:
        self.data.capacity_wait_real = float(seconds)

    # ------------------------------------------------------------------ persistence
    def _save(self, ep: Endpoint) -> None:
        save_endpoint(self.state, ep)

    def _set_status(self, ep: Endpoint, status: str, reason: str | None = None) -> None:
        ep.doc["EndpointStatus"] = status
        if reason is not None:
            ep.doc["FailureReason"] = reason[:1024]
        ep.doc["LastModifiedTime"] = self.clock.now()
        self._save(ep)

    # ------------------------------------------------------------------ lookups
    def get_config(self, name: str) -> dict[str, Any]:
        """The stored endpoint configuration ``name`` (ValidationException if missing)."""
        doc = self.state.get(KIND_CONFIG, name.lower())
        if doc is None:
            raise not_found("endpoint-config", name, self.region, self.account_id)
        return doc

    def get_model(self, name: str) -> dict[str, Any]:
        """The stored model ``name`` (ValidationException if missing)."""
        doc = self.state.get(KIND_MODEL, name.lower())
        if doc is None:
            raise not_found("model", name, self.region, self.account_id)
        return doc

    def _endpoint(self, name: str) -> Endpoint:
        ep = self._endpoints.get((name or "").lower())
        if ep is None:
            raise not_found("endpoint", name, self.region, self.account_id)
        return ep

    def endpoint_names(self) -> list[str]:
        """Names of every endpoint, in creation order."""
        return [ep.name for ep in self._endpoints.values()]

    def endpoint_doc(self, name: str) -> dict[str, Any]:
        """The live document of endpoint ``name`` (ValidationException if missing)."""
        return self._endpoint(name).doc

    def _check_capacity(self, extra: int) -> None:
        used = sum(len(v.active()) for ep in self._endpoints.values() for v in ep.variants)
        if used + extra > self.max_instances:
            raise AwsError(
                "ResourceLimitExceeded",
                f"The account-level service limit 'local instances for endpoint usage' is {self.max_instances} "
                f"Instances, with current utilization of {used} Instances and a request delta of {extra} "
                "Instances. Delete unused endpoints, or raise CATKIT_MAX_INSTANCES before starting the "
                "local backend.",
            )

    # ------------------------------------------------------------------ control plane
    def create_endpoint(self, name: str, config_name: str, tags: list[dict[str, str]] | None = None) -> str:
        """CreateEndpoint: store the endpoint (``Creating``) and launch its instances; returns its ARN."""
        check_name(name, "endpointName")
        endpoint_arn = arn("endpoint", name, self.region, self.account_id)
        if name.lower() in self._endpoints:
            raise AwsError("ValidationException", f'Cannot create already existing endpoint "{endpoint_arn}".')
        config = self.get_config(config_name)
        props = variant_props(config, self.get_model, self.clock.now())
        self._check_capacity(sum(p["DesiredInstanceCount"] for p in props))
        ep = new_endpoint(name, endpoint_arn, config["EndpointConfigName"], props, tags, self.clock.now())
        apply_endpoint_settings(ep.doc, config)
        self._save(ep)  # durable first: if the state can't be written, nothing starts
        self._endpoints[name.lower()] = ep
        self._start_op(ep, self._create(ep))
        return endpoint_arn

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        """DescribeEndpoint's output for ``name`` (ValidationException if missing)."""
        return describe(self._endpoint(name))

    def delete_endpoint(self, name: str) -> None:
        """DeleteEndpoint: ``Deleting``, drain and stop the instances, then forget the endpoint."""
        ep = self._endpoint(name)
        if ep.status == "Deleting":
            return
        self._set_status(ep, "Deleting")
        for v in ep.all_variants():
            v.status_entry = {"Status": "Deleting", "StartTime": self.clock.now()}
        previous = ep.op if ep.op is not None and not ep.op.done() else None
        if previous is not None:
            previous.cancel()
        self._start_op(ep, self._delete(ep, previous))

    def update_endpoint(self, name: str, config_name: str, *, retain: bool = False,
                        exclude: list[str] | None = None) -> str:
        """UpdateEndpoint (blue/green) to configuration ``config_name``; returns the endpoint's ARN."""
        ep = self._endpoint(name)
        check_updatable(ep)
        config = self.get_config(config_name)
        props = variant_props(config, self.get_model, self.clock.now(), ep if retain else None, set(exclude or ()))
        for guard in self._update_guards:
            guard(ep.name, [dict(v.props) for v in ep.variants], [dict(p) for p in props])
        # Blue/green: the new fleet runs beside the old one until traffic switches.
        self._check_capacity(sum(p["DesiredInstanceCount"] for p in props))
        ep.pending = [Variant(ep.name, p) for p in props]
        for v in ep.pending:
            v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.",
                              "StartTime": self.clock.now()}
        ep.doc["PendingConfigName"] = config["EndpointConfigName"]
        ep.doc["PendingStartTime"] = self.clock.now()
        ep.doc.pop("FailureReason", None)
        self._set_status(ep, "Updating")
        self._start_op(ep, self._update(ep))
        return ep.doc["EndpointArn"]

    def update_weights_and_capacities(self, name: str, desired: list[Mapping[str, Any]]) -> str:
        """UpdateEndpointWeightsAndCapacities; returns the endpoint's ARN."""
        ep = self._endpoint(name)
        check_updatable(ep)
        extra = check_weights_and_capacities(ep, desired)
        by_name = {v.name: v for v in ep.variants}
        if extra:
            self._check_capacity(extra)
        before = {v.name: v.desired_count for v in ep.variants}
        for item in desired:
            v = by_name[item["VariantName"]]
            if item.get("DesiredWeight") is not None:
                v.props["DesiredWeight"] = float(item["DesiredWeight"])
            if item.get("DesiredInstanceCount") is not None:
                v.props["DesiredInstanceCount"] = int(item["DesiredInstanceCount"])
            v.status_entry = {"Status": "Updating", "StartTime": self.clock.now()}
        ep.doc.pop("FailureReason", None)
        self._set_status(ep, "Updating")
        self._start_op(ep, self._apply_capacities(ep, before))
        return ep.doc["EndpointArn"]

    # ------------------------------------------------------------------ for autoscaling
    def get_variant(self, endpoint: str, variant: str) -> VariantView | None:
        """What autoscaling reads about a variant; None if the endpoint or variant is missing."""
        ep = self._endpoints.get(endpoint.lower())
        if ep is None:
            return None
        v = router.find_variant(ep.variants, variant)
        return None if v is None else v.view(ep)

    def set_desired_instance_count(self, endpoint: str, variant: str, n: int) -> None:
        """UpdateEndpointWeightsAndCapacities for one variant's instance count (raises AwsError
        ValidationException if the endpoint/variant is missing or the endpoint is not InService)."""
        self.update_weights_and_capacities(endpoint, [{"VariantName": variant, "DesiredInstanceCount": int(n)}])

    def on_endpoint_deleted(self, callback: Callable[[str], Any]) -> None:
        """``callback(endpoint_name)`` (sync or async) runs after an endpoint is gone."""
        self._deleted_listeners.append(callback)

    def add_update_guard(self, guard: UpdateGuard) -> None:
        """``guard(endpoint_name, current_variants, new_variants)`` runs before UpdateEndpoint starts
        and may raise AwsError to refuse it (AWS refuses updates that change the instance type of,
        or remove, an auto-scaled variant). Variant dicts carry VariantName, ModelName,
        InstanceType, DesiredInstanceCount, DesiredWeight."""
        self._update_guards.append(guard)

    def variant_instances(self, endpoint: str, variant: str) -> list[Instance]:
        """The variant's instances (any state) - for metrics and tests."""
        ep = self._endpoints.get(endpoint.lower())
        if ep is None:
            return []
        v = router.find_variant(ep.variants, variant)
        return list(v.instances) if v else []

    # ------------------------------------------------------------------ operations
    def _start_op(self, ep: Endpoint, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        ep.op = task
        self._track(task)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("endpoint task failed", exc_info=task.exception())

    async def _create(self, ep: Endpoint) -> None:
        now = self.clock.now()
        for v in ep.variants:
            v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.", "StartTime": now}
        try:
            await run_all([self.pool.launch_many(ep.name, v, v.desired_count) for v in ep.variants])
        except InstanceLaunchError as e:
            reason = str(e)
            await self.pool.stop_all(ep.variants, drain=False)
            for v in ep.variants:
                v.status_entry = None
            self._set_status(ep, "Failed", reason)
            log.warning("endpoint %s failed: %s", ep.name, reason)
            return
        for v in ep.variants:
            v.status_entry = None
        self._set_status(ep, "InService")

    async def _update(self, ep: Endpoint) -> None:
        new = ep.pending or []
        now = self.clock.now()
        for v in new:
            v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.", "StartTime": now}
        try:
            await run_all([self.pool.launch_many(ep.name, v, v.desired_count) for v in new])
        except InstanceLaunchError as e:
            reason = str(e)
            await self.pool.stop_all(new, drain=False)
            ep.pending = None
            ep.doc.pop("PendingConfigName", None)
            self._set_status(
                ep, "InService", f"Failed to update endpoint; rolled back to the previous configuration: {reason}"
            )
            return
        # Switch traffic atomically (no await between these lines), then drain the old fleet.
        old = ep.variants
        for v in new:
            v.status_entry = None
        ep.variants = new
        ep.pending = None
        ep.doc["EndpointConfigName"] = ep.doc.pop("PendingConfigName", ep.doc["EndpointConfigName"])
        with contextlib.suppress(AwsError):
            apply_endpoint_settings(ep.doc, self.get_config(ep.doc["EndpointConfigName"]))
        ep.doc.pop("PendingStartTime", None)
        self._save(ep)
        await self.pool.stop_all(old, drain=True)
        self._set_status(ep, "InService")

    async def _apply_capacities(self, ep: Endpoint, before: dict[str, int]) -> None:
        failed: str | None = None
        for v in list(ep.variants):
            try:
                await self.pool.scale(ep.name, v, v.desired_count)
            except InstanceLaunchError as e:
                failed = str(e)
                v.props["DesiredInstanceCount"] = before.get(v.name, v.desired_count)
                await self.pool.scale(ep.name, v, v.desired_count)
        for v in ep.variants:
            v.current_weight = float(v.props["DesiredWeight"])
            v.props["CurrentWeight"] = v.current_weight
            v.status_entry = None
        if failed:
            self._set_status(ep, "InService", f"Failed to update the instance count; rolled back: {failed}")
        else:
            self._set_status(ep, "InService")

    async def _delete(self, ep: Endpoint, previous: asyncio.Future[None] | None = None) -> None:
        if previous is not None:  # let a cancelled Create/Update clean up its launches first
            try:
                await previous
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception:
                pass
        # The endpoint stays visible (Deleting) until everything is released - processes, files,
        # the listeners' resources (scalable targets) - so "gone" means cleaned up.
        try:
            await self.pool.stop_all(ep.all_variants(), drain=True)
        finally:
            try:
                await asyncio.to_thread(shutil.rmtree, self.home / "instances" / ep.name, True)
                await asyncio.to_thread(shutil.rmtree, self.home / "logs" / "instances" / ep.name, True)
                for cb in list(self._deleted_listeners):
                    try:
                        res = cb(ep.name)
                        if asyncio.iscoroutine(res):
                            await res
                    except Exception:
                        log.exception("on_endpoint_deleted listener failed for %s", ep.name)
            finally:
                self._endpoints.pop(ep.name.lower(), None)
                self.state.delete(KIND_ENDPOINT, ep.name.lower())

    # ------------------------------------------------------------------ health & replacement
    def _owner(self, inst: Instance) -> tuple[Endpoint, Variant] | None:
        ep = self._endpoints.get(inst.spec.endpoint.lower())
        if ep is None or ep.status == "Deleting":
            return None
        for v in ep.all_variants():
            if inst in v.instances:
                return ep, v
        return None

    async def _on_instance_exit(self, inst: Instance, rc: int) -> None:
        if self._closing:
            return
        owner = self._owner(inst)
        inst.state = InstanceState.FAILED
        if owner is None:
            return
        ep, v = owner
        log.warning("instance %s of %s/%s exited with code %s; replacing it", inst.id, ep.name, v.name, rc)
        with contextlib.suppress(ValueError):
            v.instances.remove(inst)
        self._track(asyncio.ensure_future(self._replace(ep, v)))  # before any await: capacity is pending
        await inst.kill()

    async def _replace(self, ep: Endpoint, v: Variant, *, provision: bool = True, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            if self._closing or self._owner_variant(ep, v) is None or len(v.active()) >= v.desired_count:
                return
            try:
                await self.pool.launch(ep.name, v, provision=provision)
                return
            except InstanceLaunchError as e:
                log.error("replacement instance for %s/%s failed (attempt %d): %s", ep.name, v.name, attempt, e)
                await self.clock.sleep(60)

    def _owner_variant(self, ep: Endpoint, v: Variant) -> Variant | None:
        if self._endpoints.get(ep.name.lower()) is not ep or ep.status == "Deleting":
            return None
        return v if v in ep.all_variants() else None

    async def check_health(self) -> None:
        """One round of /ping liveness checks; an instance failing ``unhealthy_after`` checks in a
        row, or whose process holds more memory than its instance has, is killed and replaced."""
        insts = [
            i for ep in list(self._endpoints.values()) for v in ep.variants for i in v.instances
            if i.state is InstanceState.IN_SERVICE
        ]
        for inst in await self.pool.unhealthy(insts):
            inst.state = InstanceState.FAILED
            owner = self._owner(inst)
            if owner is not None:
                ep, v = owner
                with contextlib.suppress(ValueError):
                    v.instances.remove(inst)
                self._track(asyncio.ensure_future(self._replace(ep, v)))
            await inst.kill()

    # ------------------------------------------------------------------ data plane
    def invoke(self, endpoint_name: str, body: bytes, **options: Any) -> Coroutine[Any, Any, dict[str, Any]]:
        """InvokeEndpoint (await it): the botocore-shaped output (options: :meth:`.invoke.DataPlane.invoke`).
        Hands back the data plane's coroutine itself: one coroutine frame less on the hot path."""
        return self.data.invoke(endpoint_name, body, **options)

    async def wait_for_capacity(self, ep: Endpoint, variant: Variant, pinned: bool) -> tuple[Variant, Instance]:
        """A serving instance of ``variant`` (or, unless ``pinned``, of another variant of ``ep``),
        waiting briefly for a starting one; AwsError ServiceUnavailable (503) if none comes."""
        return await self.data.wait_for_capacity(ep, variant, pinned)

    def record_invocation(self, variant: Variant, status: int, error: str | None = None,
                          model_us: float = 0.0, overhead_us: float = 0.0) -> None:
        """Record one invocation's metrics for ``variant`` (status, or ``error``; latencies in us)."""
        self.data.record(variant, status, error, model_us, overhead_us, variant.current_count or 1)

    def model_error(self, ep: Endpoint, status: int, payload: bytes, error: str | None = None) -> AwsError:
        """AWS's ModelError (424) for a container of ``ep`` that answered ``status``/``payload``."""
        return self.data.model_error(ep, status, payload, error)

    def variant_of(self, inst: Instance) -> Variant | None:
        """The (serving or pending) variant ``inst`` belongs to, or None."""
        ep = self._endpoints.get(inst.spec.endpoint.lower())
        if ep is None:
            return None
        return next((v for v in ep.all_variants() if inst in v.instances), None)

    # ------------------------------------------------------------------ metrics sampling
    def take_concurrency_samples(self) -> list[tuple[dict[str, str], list[float]]]:
        """Per serving variant: its dimensions and one peak-in-flight value per in-service instance
        since the previous sample; restarts the instances' windows (see :mod:`.sampling`)."""
        return sampling.take_concurrency_samples(self._endpoints.values())

    def sample_concurrency(self, timestamp: float) -> None:
        """ConcurrentRequestsPerModel: one 1-second-resolution datapoint per serving instance per
        call (the peak in-flight count, queued included, since the previous sample)."""
        sampling.record_concurrency(self._metrics(), self.take_concurrency_samples(), timestamp)

    def sample_minute(self, timestamp: float) -> None:
        """Per emulated minute: CPUUtilization / MemoryUtilization per instance and the multi-model
        per-instance metrics."""
        sampling.sample_minute(self._metrics(), self._endpoints.values(), timestamp)
        self.multimodel.sample_minute(timestamp)

    def _metrics(self) -> Any:
        return self.backend.metrics

    # ------------------------------------------------------------------ start-up
    async def resume(self) -> None:
        """Once at start: finish what the previous run left (deletions, creations) and relaunch the
        instances of serving endpoints (without the provisioning delay)."""
        self._resume()

    def _resume(self) -> None:
        for ep in list(self._endpoints.values()):
            status = ep.status
            if status == "Deleting":
                self._start_op(ep, self._delete(ep))
            elif status == "Creating":
                self._start_op(ep, self._create(ep))
            elif status in SERVING:
                pending_props = ep.doc.get("PendingVariants")
                self._start_op(ep, self._relaunch(ep, pending_props))
        self._resumed = True

    async def _relaunch(self, ep: Endpoint, pending_props: list[dict[str, Any]] | None) -> None:
        async def one(v: Variant) -> None:
            for _ in range(v.desired_count):
                if len(v.active()) >= v.desired_count:  # a scaling step or replacement got there first
                    break
                try:
                    await self.pool.launch(ep.name, v, provision=False)
                except InstanceLaunchError as e:
                    log.error("relaunching %s/%s after restart failed: %s", ep.name, v.name, e)
                    self._track(asyncio.ensure_future(self._replace(ep, v)))

        await asyncio.gather(*(one(v) for v in ep.variants))
        if pending_props and ep.doc.get("PendingConfigName"):
            ep.pending = [Variant(ep.name, p) for p in pending_props]
            self._set_status(ep, "Updating")
            await self._update(ep)
        elif ep.status != "InService":
            for v in ep.variants:
                v.current_weight = float(v.props["DesiredWeight"])
                v.status_entry = None
            self._set_status(ep, "InService")

    async def shutdown(self, *, kill: bool = False) -> None:
        """Stop every instance (short drain; ``kill``: SIGKILL at once, for a reset) - endpoint
        documents keep their status for the next start. A second call does nothing."""
        if self._closing:
            return
        self._closing = True
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        await self.pool.stop_now((v for ep in self._endpoints.values() for v in ep.all_variants()), kill=kill)
        self.http.close()
        await self.pool.close()


__all__ = [
    "INSTANCE_TYPES",
    "KIND_CONFIG",
    "KIND_ENDPOINT",
    "KIND_MODEL",
    "MAX_BODY",
    "Endpoint",
    "EndpointManager",
    "Variant",
    "VariantView",
]
