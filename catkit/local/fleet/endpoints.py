"""EndpointManager: the SageMaker endpoint state machine, instance pools, routing and metrics.

Owns every endpoint of the local backend: CreateEndpoint -> ``Creating`` -> ``InService`` |
``Failed``; UpdateEndpoint (blue/green: new instances first, traffic switch, then drain + stop of
the old ones); UpdateEndpointWeightsAndCapacities (``Updating``, launch or drain, ``InService``);
DeleteEndpoint (``Deleting``, then gone). Instances are real processes (:mod:`catkit.local.fleet.instances`);
a crashed or unhealthy instance is replaced while the endpoint stays ``InService`` on the rest.
InvokeEndpoint requests are routed here (:meth:`EndpointManager.invoke`) with
:mod:`catkit.local.fleet.router`, and per-request metrics go to ``backend.metrics``.

Endpoint documents (with a snapshot of each variant's model, like AWS, which keeps serving a
deployed model after DeleteModel) are persisted in ``backend.state`` (kind ``sagemaker.endpoint``),
so after a restart endpoints come back and InService ones relaunch their instances (without the
provisioning delay: the emulated hardware was already provisioned).

``install(backend)`` registers the ``sagemaker`` and ``sagemaker-runtime`` services and sets
``backend.endpoints``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import os
import shutil
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from catkit.instance_types import INSTANCE_TYPES
from catkit.local.errors import AwsError
from catkit.local.fleet import router
from catkit.local.fleet.instances import (
    Instance,
    InstanceLaunchError,
    InstanceSettings,
    InstanceSpec,
    InstanceState,
    KeepAlivePool,
)
from catkit.local.validation import (
    arn,
    check_name,
    not_found,
    runtime_endpoint_not_found,
)

log = logging.getLogger("catkit.local.fleet.endpoints")

KIND_MODEL = "sagemaker.model"
KIND_CONFIG = "sagemaker.endpoint-config"
KIND_ENDPOINT = "sagemaker.endpoint"

NS_INVOCATIONS = "AWS/SageMaker"
NS_INSTANCE = "/aws/sagemaker/Endpoints"
MAX_BODY = 6 * 1024 * 1024  # InvokeEndpoint Body max in the botocore model (6291456)

# Error-status strings used in UpdateEndpoint/UpdateEndpointWeightsAndCapacities refusals.
_BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")


@dataclass(frozen=True)
class VariantView:
    """What the autoscaling wiring reads about a production variant."""

    endpoint_name: str
    variant_name: str
    desired_instance_count: int
    current_instance_count: int
    status: str  # the endpoint's status
    instance_type: str
    current_weight: float
    desired_weight: float


class _NoMetrics:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


class Variant:
    """A live production variant: its persisted properties and its instance pool."""

    __slots__ = ("current_weight", "dims", "instances", "invocations_window", "name", "props", "status_entry")

    def __init__(self, endpoint_name: str, props: dict[str, Any]) -> None:
        self.props = props
        self.name: str = props["VariantName"]
        self.current_weight: float = float(props.get("CurrentWeight", props.get("DesiredWeight", 1.0)))
        self.instances: list[Instance] = []
        self.dims = {"EndpointName": endpoint_name, "VariantName": self.name}
        self.status_entry: dict[str, Any] | None = None
        self.invocations_window = 0

    @property
    def desired_count(self) -> int:
        return int(self.props["DesiredInstanceCount"])

    @property
    def current_count(self) -> int:
        return sum(1 for i in self.instances if i.state is InstanceState.IN_SERVICE)

    def active(self) -> list[Instance]:
        """Instances that count towards capacity (not draining/stopped/failed)."""
        keep = (InstanceState.IN_SERVICE, InstanceState.STARTING, InstanceState.PROVISIONING)
        return [i for i in self.instances if i.state in keep]

    def spec(self, endpoint_name: str) -> InstanceSpec:
        p = self.props
        return InstanceSpec(
            endpoint=endpoint_name,
            variant=self.name,
            instance_type=p["InstanceType"],
            model_data_url=p.get("ModelDataUrl"),
            environment=dict(p.get("Environment") or {}),
            mode=p.get("Mode") or "SingleModel",
        )


class Endpoint:
    __slots__ = ("doc", "name", "op", "pending", "variants")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.name: str = doc["EndpointName"]
        self.variants: list[Variant] = [Variant(self.name, p) for p in doc["Variants"]]
        self.pending: list[Variant] | None = None
        self.op: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        return self.doc["EndpointStatus"]


def _resolved_image(image: str | None) -> str | None:
    if not image:
        return None
    base = image.split("@", 1)[0]
    return f"{base}@sha256:{hashlib.sha256(base.encode()).hexdigest()}"


class EndpointManager:
    """All endpoints of one backend. See the module docstring for the lifecycle rules."""

    def __init__(
        self,
        backend: Any,
        settings: InstanceSettings | None = None,
        *,
        invocation_timeout: float | None = None,
        max_instances: int | None = None,
    ) -> None:
        self.backend = backend
        self.clock = backend.clock
        self.state = backend.state
        self.region: str = getattr(backend, "region", "us-east-1")
        self.account_id: str = getattr(backend, "account_id", "123456789012")
        self.home = Path(backend.home)
        self.settings = settings or InstanceSettings.from_env(**dict(getattr(backend, "instance_options", {}) or {}))
        env_timeout = os.environ.get("CATKIT_INVOCATION_TIMEOUT_SECONDS")
        self.invocation_timeout = float(invocation_timeout or env_timeout or 60.0)
        self.max_instances = int(max_instances or os.environ.get("CATKIT_MAX_INSTANCES") or 32)
        self.capacity_wait_real = 20.0  # real seconds a request waits for a starting instance
        self.emit_idle_zeros = True
        self._endpoints: dict[str, Endpoint] = {}
        self._deleted_listeners: list[Callable[[str], Any]] = []
        self._update_guards: list[Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], None]] = []
        self._session: aiohttp.ClientSession | None = None  # health checks, model loading
        self.http = KeepAlivePool()  # the InvokeEndpoint forwarder (hot path)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._resumed = False  # run() has relaunched the persisted endpoints' instances
        from catkit.local.fleet.multimodel import MultiModelManager

        self.multimodel = MultiModelManager(self)  # TargetModel routing/loading for MultiModel variants
        self._load()

    @property
    def invocation_timeout(self) -> float:
        """Real seconds an instance has to answer /invocations (AWS: 60 s) before ModelError."""
        return self._timeout.total or 60.0

    @invocation_timeout.setter
    def invocation_timeout(self, seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=float(seconds))
        # The model server abandons a call at the same limit and replaces its worker thread, so a
        # hanging handler costs one ModelError instead of wedging the instance.
        self.settings.model_timeout_real = float(seconds)

    # ------------------------------------------------------------------ persistence
    def _load(self) -> None:
        for doc in _state_docs(self.state, KIND_ENDPOINT):
            self._endpoints[doc["EndpointName"].lower()] = Endpoint(doc)

    def _save(self, ep: Endpoint) -> None:
        ep.doc["Variants"] = [v.props for v in ep.variants]
        if ep.pending is not None:
            ep.doc["PendingVariants"] = [v.props for v in ep.pending]
        else:
            ep.doc.pop("PendingVariants", None)
        self.state.put(KIND_ENDPOINT, ep.name.lower(), ep.doc)

    def _set_status(self, ep: Endpoint, status: str, reason: str | None = None) -> None:
        ep.doc["EndpointStatus"] = status
        if reason is not None:
            ep.doc["FailureReason"] = reason[:1024]
        ep.doc["LastModifiedTime"] = self.clock.now()
        self._save(ep)

    # ------------------------------------------------------------------ lookups
    def get_config(self, name: str) -> dict[str, Any]:
        doc = self.state.get(KIND_CONFIG, name.lower())
        if doc is None:
            raise not_found("endpoint-config", name, self.region, self.account_id)
        return doc

    def get_model(self, name: str) -> dict[str, Any]:
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
        return [ep.name for ep in self._endpoints.values()]

    def endpoint_doc(self, name: str) -> dict[str, Any]:
        return self._endpoint(name).doc

    def _variant_props(self, config: dict[str, Any], retain_from: Endpoint | None = None,
                       exclude: set[str] | None = None) -> list[dict[str, Any]]:
        out = []
        now = self.clock.now()
        for pv in config["ProductionVariants"]:
            model = self.get_model(pv["ModelName"])
            containers = model.get("Containers") or ([model["PrimaryContainer"]] if model.get("PrimaryContainer") else [])
            if len(containers) != 1:
                raise AwsError(
                    "ValidationException",
                    f"Model \"{model['ModelName']}\" has {len(containers)} containers; the local backend runs "
                    "exactly one container per production variant (serial inference pipelines are not "
                    "supported locally).",
                )
            c = containers[0]
            weight = float(pv.get("InitialVariantWeight", 1.0))
            props = {
                "VariantName": pv["VariantName"],
                "ModelName": pv["ModelName"],
                "InstanceType": pv["InstanceType"],
                "DesiredInstanceCount": int(pv.get("InitialInstanceCount", 1)),
                "DesiredWeight": weight,
                "CurrentWeight": weight,
                "Image": c.get("Image"),
                "ModelDataUrl": c.get("ModelDataUrl"),
                "Environment": dict(c.get("Environment") or {}),
                "Mode": c.get("Mode") or "SingleModel",
                "MultiModelConfig": dict(c.get("MultiModelConfig") or {}),
                "ResolutionTime": now,
            }
            if retain_from is not None:
                old = next((v for v in retain_from.variants if v.name == props["VariantName"]), None)
                if old is not None:
                    ex = exclude or set()
                    if "DesiredInstanceCount" not in ex:
                        props["DesiredInstanceCount"] = old.desired_count
                    if "DesiredWeight" not in ex:
                        props["DesiredWeight"] = props["CurrentWeight"] = float(old.props["DesiredWeight"])
            out.append(props)
        return out

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
        check_name(name, "endpointName")
        if name.lower() in self._endpoints:
            raise AwsError(
                "ValidationException",
                f'Cannot create already existing endpoint "{arn("endpoint", name, self.region, self.account_id)}".',
            )
        config = self.get_config(config_name)
        props = self._variant_props(config)
        self._check_capacity(sum(p["DesiredInstanceCount"] for p in props))
        now = self.clock.now()
        doc = {
            "EndpointName": name,
            "EndpointArn": arn("endpoint", name, self.region, self.account_id),
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
            "Tags": list(tags or []),
            "Variants": props,
        }
        ep = Endpoint(doc)
        for v in ep.variants:
            v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.", "StartTime": now}
        self._save(ep)  # durable first: if the state can't be written, nothing starts
        self._endpoints[name.lower()] = ep
        self._start_op(ep, self._create(ep))
        return doc["EndpointArn"]

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        ep = self._endpoint(name)
        d = ep.doc
        out: dict[str, Any] = {
            "EndpointName": d["EndpointName"],
            "EndpointArn": d["EndpointArn"],
            "EndpointConfigName": d["EndpointConfigName"],
            "EndpointStatus": d["EndpointStatus"],
            "CreationTime": d["CreationTime"],
            "LastModifiedTime": d["LastModifiedTime"],
            "ProductionVariants": [self._variant_summary(v) for v in ep.variants],
        }
        if d.get("FailureReason"):
            out["FailureReason"] = d["FailureReason"]
        if ep.pending is not None and d.get("PendingConfigName"):
            out["PendingDeploymentSummary"] = {
                "EndpointConfigName": d["PendingConfigName"],
                "StartTime": d.get("PendingStartTime", d["LastModifiedTime"]),
                "ProductionVariants": [
                    {**self._variant_summary(v), "InstanceType": v.props["InstanceType"]} for v in ep.pending
                ],
            }
        return out

    def _variant_summary(self, v: Variant) -> dict[str, Any]:
        p = v.props
        s: dict[str, Any] = {
            "VariantName": v.name,
            "CurrentWeight": v.current_weight,
            "DesiredWeight": float(p["DesiredWeight"]),
            "CurrentInstanceCount": v.current_count,
            "DesiredInstanceCount": v.desired_count,
        }
        if p.get("Image"):
            s["DeployedImages"] = [
                {
                    "SpecifiedImage": p["Image"],
                    "ResolvedImage": _resolved_image(p["Image"]),
                    "ResolutionTime": p.get("ResolutionTime"),
                }
            ]
        if v.status_entry:
            s["VariantStatus"] = [dict(v.status_entry)]
        return s

    def delete_endpoint(self, name: str) -> None:
        ep = self._endpoint(name)
        if ep.status == "Deleting":
            return
        self._set_status(ep, "Deleting")
        for v in [*ep.variants, *(ep.pending or [])]:
            v.status_entry = {"Status": "Deleting", "StartTime": self.clock.now()}
        previous = ep.op if ep.op is not None and not ep.op.done() else None
        if previous is not None:
            previous.cancel()
        self._start_op(ep, self._delete(ep, previous))

    def update_endpoint(self, name: str, config_name: str, *, retain: bool = False,
                        exclude: list[str] | None = None) -> str:
        ep = self._endpoint(name)
        self._check_updatable(ep)
        config = self.get_config(config_name)
        props = self._variant_props(config, ep if retain else None, set(exclude or ()))
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
        ep = self._endpoint(name)
        self._check_updatable(ep)
        by_name = {v.name: v for v in ep.variants}
        seen = set()
        for item in desired:
            vn = item["VariantName"]
            if vn not in by_name:
                raise AwsError(
                    "ValidationException",
                    f'The variant name(s) "{vn}" is/are not present in the endpoint '
                    f'"{ep.doc["EndpointArn"]}". Check the variant names with DescribeEndpoint.',
                )
            if vn in seen:
                raise AwsError("ValidationException", f'Variant "{vn}" appears more than once in the request.')
            seen.add(vn)
            if "DesiredWeight" not in item and "DesiredInstanceCount" not in item:
                raise AwsError(
                    "ValidationException",
                    f'Specify DesiredWeight and/or DesiredInstanceCount for variant "{vn}".',
                )
            n = item.get("DesiredInstanceCount")
            if n is not None and int(n) < 1:
                raise AwsError(
                    "ValidationException",
                    f"DesiredInstanceCount for variant \"{vn}\" must be at least 1 for instance-based "
                    f"variants, got {n}.",
                )
            w = item.get("DesiredWeight")
            if w is not None and (not math.isfinite(float(w)) or float(w) < 0):
                raise AwsError("ValidationException", f'DesiredWeight for variant "{vn}" must be >= 0.')
        extra = sum(
            max(0, int(i["DesiredInstanceCount"]) - by_name[i["VariantName"]].desired_count)
            for i in desired
            if i.get("DesiredInstanceCount") is not None
        )
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

    def _check_updatable(self, ep: Endpoint) -> None:
        a = ep.doc["EndpointArn"]
        if ep.status == "Failed":
            raise AwsError(
                "ValidationException",
                f'Cannot update failed endpoint "{a}". DeleteEndpoint is the only operation allowed on a '
                "Failed endpoint; delete it and create it again.",
            )
        if ep.status in _BUSY:
            raise AwsError("ValidationException", f'Cannot update in-progress endpoint "{a}".')

    # ------------------------------------------------------------------ for autoscaling
    def get_variant(self, endpoint: str, variant: str) -> VariantView | None:
        ep = self._endpoints.get(endpoint.lower())
        if ep is None:
            return None
        v = router.find_variant(ep.variants, variant)
        if v is None:
            return None
        return VariantView(
            endpoint_name=ep.name,
            variant_name=v.name,
            desired_instance_count=v.desired_count,
            current_instance_count=v.current_count,
            status=ep.status,
            instance_type=v.props["InstanceType"],
            current_weight=v.current_weight,
            desired_weight=float(v.props["DesiredWeight"]),
        )

    def set_desired_instance_count(self, endpoint: str, variant: str, n: int) -> None:
        """UpdateEndpointWeightsAndCapacities for one variant's instance count (raises AwsError
        ValidationException if the endpoint/variant is missing or the endpoint is not InService)."""
        self.update_weights_and_capacities(endpoint, [{"VariantName": variant, "DesiredInstanceCount": int(n)}])

    def on_endpoint_deleted(self, callback: Callable[[str], Any]) -> None:
        """``callback(endpoint_name)`` (sync or async) runs after an endpoint is gone."""
        self._deleted_listeners.append(callback)

    def add_update_guard(self, guard: Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], None]) -> None:
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

    async def _session_get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=75, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def _launch(self, ep: Endpoint, v: Variant, *, provision: bool = True) -> Instance:
        inst = Instance(v.spec(ep.name), self.home)
        v.instances.append(inst)
        try:
            await inst.launch(
                self.backend.s3, self.clock, self.settings, await self._session_get(),
                provision=provision, on_exit=self._on_instance_exit,
            )
        except BaseException:
            with contextlib.suppress(ValueError):
                v.instances.remove(inst)
            raise
        log.info("instance %s of %s/%s in service on port %s", inst.id, ep.name, v.name, inst.port)
        return inst

    async def _launch_many(self, ep: Endpoint, v: Variant, n: int, *, provision: bool = True) -> list[Instance]:
        if n <= 0:
            return []
        return await _run_all([self._launch(ep, v, provision=provision) for _ in range(n)])

    async def _retire(self, v: Variant, inst: Instance, *, drain: bool = True) -> None:
        try:
            await inst.stop(self.clock, self.settings, drain=drain)
        finally:
            with contextlib.suppress(ValueError):
                v.instances.remove(inst)

    async def _stop_all(self, variants: list[Variant], *, drain: bool = True) -> None:
        jobs = [self._retire(v, i, drain=drain) for v in variants for i in list(v.instances)]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    async def _create(self, ep: Endpoint) -> None:
        now = self.clock.now()
        for v in ep.variants:
            v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.", "StartTime": now}
        try:
            await _run_all([self._launch_many(ep, v, v.desired_count) for v in ep.variants])
        except InstanceLaunchError as e:
            reason = str(e)
            await self._stop_all(ep.variants, drain=False)
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
            await _run_all([self._launch_many(ep, v, v.desired_count) for v in new])
        except InstanceLaunchError as e:
            reason = str(e)
            await self._stop_all(new, drain=False)
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
        ep.doc.pop("PendingStartTime", None)
        self._save(ep)
        await self._stop_all(old, drain=True)
        self._set_status(ep, "InService")

    async def _apply_capacities(self, ep: Endpoint, before: dict[str, int]) -> None:
        failed: str | None = None
        for v in list(ep.variants):
            try:
                await self._scale(ep, v, v.desired_count)
            except InstanceLaunchError as e:
                failed = str(e)
                v.props["DesiredInstanceCount"] = before.get(v.name, v.desired_count)
                await self._scale(ep, v, v.desired_count)
        for v in ep.variants:
            v.current_weight = float(v.props["DesiredWeight"])
            v.props["CurrentWeight"] = v.current_weight
            v.status_entry = None
        if failed:
            self._set_status(ep, "InService", f"Failed to update the instance count; rolled back: {failed}")
        else:
            self._set_status(ep, "InService")

    async def _scale(self, ep: Endpoint, v: Variant, n: int) -> None:
        active = v.active()
        if n > len(active):
            await self._launch_many(ep, v, n - len(active))
        elif n < len(active):
            # Not-yet-serving instances go first, then the newest ones (LIFO).
            order = sorted(active, key=lambda i: (i.routable, i.launched_at or 0.0), reverse=False)
            victims = [i for i in order if not i.routable]
            serving = sorted((i for i in active if i.routable), key=lambda i: i.launched_at or 0.0, reverse=True)
            victims = (victims + serving)[: len(active) - n]
            for i in victims:
                i.state = InstanceState.DRAINING  # stop routing to it right now
            await asyncio.gather(*(self._retire(v, i) for i in victims), return_exceptions=True)

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
        try:
            await self._stop_all([*ep.variants, *(ep.pending or [])], drain=True)
        finally:
            self._endpoints.pop(ep.name.lower(), None)
            self.state.delete(KIND_ENDPOINT, ep.name.lower())
            await asyncio.to_thread(shutil.rmtree, self.home / "instances" / ep.name, True)
            for cb in list(self._deleted_listeners):
                try:
                    res = cb(ep.name)
                    if asyncio.iscoroutine(res):
                        await res
                except Exception:
                    log.exception("on_endpoint_deleted listener failed for %s", ep.name)

    # ------------------------------------------------------------------ health & replacement
    def _owner(self, inst: Instance) -> tuple[Endpoint, Variant] | None:
        ep = self._endpoints.get(inst.spec.endpoint.lower())
        if ep is None or ep.status == "Deleting":
            return None
        for v in [*ep.variants, *(ep.pending or [])]:
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
                await self._launch(ep, v, provision=provision)
                return
            except InstanceLaunchError as e:
                log.error("replacement instance for %s/%s failed (attempt %d): %s", ep.name, v.name, attempt, e)
                await self.clock.sleep(60)

    def _owner_variant(self, ep: Endpoint, v: Variant) -> Variant | None:
        if self._endpoints.get(ep.name.lower()) is not ep or ep.status == "Deleting":
            return None
        return v if v in ep.variants or v in (ep.pending or []) else None

    async def check_health(self) -> None:
        """One round of /ping liveness checks; an instance failing ``unhealthy_after`` checks in a
        row, or whose process holds more memory than its instance has, is killed and replaced."""
        session = await self._session_get()
        insts = [
            i for ep in list(self._endpoints.values()) for v in ep.variants for i in v.instances
            if i.state is InstanceState.IN_SERVICE
        ]
        results = await asyncio.gather(*(i.ping(session, self.settings.ping_timeout_real) for i in insts))
        for inst, ok in zip(insts, results, strict=True):
            rss = inst.over_memory() if ok and inst.state is InstanceState.IN_SERVICE else None
            if rss is not None and inst.state is InstanceState.IN_SERVICE:
                log.warning(
                    "instance %s uses %.0f MiB, more than its %.0f MiB of memory (%s); recycling it, as an "
                    "out-of-memory container would be on AWS", inst.id, rss / 2**20, inst.memory_bytes / 2**20,
                    inst.spec.instance_type,
                )
            elif ok:
                inst.health_failures = 0
                continue
            else:
                inst.health_failures += 1
            if rss is not None or (
                inst.health_failures >= self.settings.unhealthy_after and inst.state is InstanceState.IN_SERVICE
            ):
                if rss is None:
                    log.warning("instance %s failed %d health checks; replacing it", inst.id, inst.health_failures)
                inst.state = InstanceState.FAILED
                owner = self._owner(inst)
                if owner is not None:
                    ep, v = owner
                    with contextlib.suppress(ValueError):
                        v.instances.remove(inst)
                    self._track(asyncio.ensure_future(self._replace(ep, v)))
                await inst.kill()

    # ------------------------------------------------------------------ metrics sampling
    def sample_concurrency(self, timestamp: float) -> None:
        """ConcurrentRequestsPerModel: one 1-second-resolution datapoint per serving instance per
        call (the peak in-flight count, queued included, since the previous sample)."""
        metrics = getattr(self.backend, "metrics", None) or _NoMetrics()
        for ep in list(self._endpoints.values()):
            for v in ep.variants:
                for inst in v.instances:
                    if inst.state is not InstanceState.IN_SERVICE:
                        continue
                    metrics.record(NS_INVOCATIONS, "ConcurrentRequestsPerModel", v.dims, float(inst.window_max),
                                   timestamp, unit="Count", storage_resolution=1)
                    inst.window_max = inst.outstanding

    def sample_minute(self, timestamp: float) -> None:
        """Per emulated minute: CPUUtilization / MemoryUtilization per instance, and zeros for
        Invocations/InvocationsPerInstance of InService variants that had no traffic (AWS emits
        zeros for auto-scaled variants so target tracking can scale in; see aws-facts §1.5)."""
        metrics = getattr(self.backend, "metrics", None) or _NoMetrics()
        for ep in list(self._endpoints.values()):
            for v in ep.variants:
                for inst in v.instances:
                    if inst.state is not InstanceState.IN_SERVICE:
                        continue
                    usage = inst.sample_usage()
                    if usage is None:
                        continue
                    cpu, mem = usage
                    metrics.record(NS_INSTANCE, "CPUUtilization", v.dims, cpu, timestamp, unit="Percent")
                    metrics.record(NS_INSTANCE, "MemoryUtilization", v.dims, mem, timestamp, unit="Percent")
                if self.emit_idle_zeros and ep.status in ("InService", "Updating") and v.invocations_window == 0:
                    metrics.record(NS_INVOCATIONS, "Invocations", v.dims, 0.0, timestamp)
                    metrics.record(NS_INVOCATIONS, "InvocationsPerInstance", v.dims, 0.0, timestamp)
                v.invocations_window = 0
        self.multimodel.sample_minute(timestamp)

    # ------------------------------------------------------------------ background
    async def run(self) -> None:
        """Background task: resume persisted endpoints, then health checks and metric sampling."""
        self._resume()
        await asyncio.gather(self._health_loop(), self._metrics_loop())

    def _resume(self) -> None:
        for ep in list(self._endpoints.values()):
            status = ep.status
            if status == "Deleting":
                self._start_op(ep, self._delete(ep))
            elif status == "Creating":
                self._start_op(ep, self._create(ep))
            elif status in ("InService", "Updating", "RollingBack", "SystemUpdating"):
                pending_props = ep.doc.get("PendingVariants")
                self._start_op(ep, self._relaunch(ep, pending_props))
        self._resumed = True

    async def _relaunch(self, ep: Endpoint, pending_props: list[dict[str, Any]] | None) -> None:
        async def one(v: Variant) -> None:
            for _ in range(v.desired_count):
                try:
                    await self._launch(ep, v, provision=False)
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

    async def _health_loop(self) -> None:
        while True:
            real = min(max(self.clock.real_seconds(self.settings.health_interval_seconds), 0.5), 10.0)
            await asyncio.sleep(real)
            try:
                await self.check_health()
            except Exception:
                log.exception("health check round failed")

    async def _metrics_loop(self) -> None:
        step = 10.0
        nxt = math.floor(self.clock.now() / step) * step + step
        while True:
            await self.clock.sleep_until(nxt)
            try:
                self.sample_concurrency(nxt)
                if nxt % 60 == 0:
                    self.sample_minute(nxt)
            except Exception:
                log.exception("metric sampling failed")
            nxt += step
            if self.clock.now() > nxt + 10 * step:  # fell far behind (suspended laptop): skip ahead
                nxt = math.floor(self.clock.now() / step) * step + step

    async def shutdown(self) -> None:
        """Stop every instance (short drain) - endpoint documents keep their status for the next start."""
        self._closing = True
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        insts = [(v, i) for ep in self._endpoints.values() for v in [*ep.variants, *(ep.pending or [])]
                 for i in list(v.instances)]

        async def stop(v: Variant, i: Instance) -> None:
            with contextlib.suppress(Exception):
                await i.drain(2.0)
                await i.stop(self.clock, self.settings, drain=False)
            with contextlib.suppress(ValueError):
                v.instances.remove(i)

        await asyncio.gather(*(stop(v, i) for v, i in insts))
        self.http.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ data plane
    async def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        target_model: str | None = None,
    ) -> dict[str, Any]:
        """Route one InvokeEndpoint request; returns the botocore-shaped InvokeEndpoint output."""
        t0 = time.perf_counter()
        ep = self._endpoints.get(endpoint_name.lower())
        if ep is None or ep.status in ("Creating", "Failed", "Deleting"):
            # An endpoint that never served (or is going away) answers like an unknown one. AWS's
            # exact answer for Creating/Failed is unconfirmed in shared/aws-facts.md; easy to change.
            raise runtime_endpoint_not_found(endpoint_name, self.account_id)
        if len(body) > MAX_BODY:
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have "
                f"length less than or equal to {MAX_BODY}",
                413,
            )
        if target_variant:
            variant = router.find_variant(ep.variants, target_variant)
            if variant is None:
                raise AwsError(
                    "ValidationError",
                    f"The variant {target_variant} was not found for endpoint {ep.name} of account "
                    f"{self.account_id}. Check the variant names with DescribeEndpoint.",
                )
        else:
            variant = router.choose_variant(ep.variants)
        assert variant is not None
        lease = None
        if target_model is not None or variant.props.get("Mode") == "MultiModel":
            # Multi-model: catkit.local.fleet.multimodel routes by model, loads it, begins the request.
            lease = await self.multimodel.acquire(ep, variant, target_model)
            inst, url = lease.instance, lease.url
        else:
            inst = router.least_outstanding(variant.instances)
            if inst is None:
                variant, inst = await self._wait_for_capacity(ep, variant, bool(target_variant))
            inst.begin_request()
            url = inst.invocations_url
        variant.invocations_window += 1
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        if custom_attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
        if inference_id:
            headers["X-Amzn-SageMaker-Inference-Id"] = inference_id
        if target_model:
            headers["X-Amzn-SageMaker-Target-Model"] = target_model
        status = 0
        payload = b""
        resp_headers: Mapping[str, str] = {}
        error: str | None = None
        host, port, path = _split_url(url)
        t1 = time.perf_counter()
        try:
            status, resp_headers, payload = await self.http.post(
                host, port, path, headers, body, self.invocation_timeout
            )
        except TimeoutError:
            error = "timeout"
        except OSError as e:  # ConnectionError / ForwardProtocolError: the instance failed us
            error = f"{type(e).__name__}: {e}"
        except ValueError as e:  # a header value HTTP cannot carry (CR/LF/NUL, non-Latin-1)
            raise AwsError("ValidationError", f"Invalid request header: {e}.") from None
        finally:
            t2 = time.perf_counter()
            inst.end_request()
            if lease is not None:
                lease.release()
        model_us = (t2 - t1) * 1e6
        n_active = variant.current_count or 1
        self._record(variant, status, error, model_us, (time.perf_counter() - t0) * 1e6 - model_us, n_active)
        if error is None and status < 400:
            out: dict[str, Any] = {"Body": payload, "InvokedProductionVariant": variant.name}
            ct = resp_headers.get("content-type")
            if ct:
                out["ContentType"] = ct
            ca = resp_headers.get("x-amzn-sagemaker-custom-attributes")
            if ca:
                out["CustomAttributes"] = ca
            return out
        raise self._model_error(ep, status, payload, error)

    def _record(self, v: Variant, status: int, error: str | None, model_us: float, overhead_us: float,
                n_active: int) -> None:
        metrics = getattr(self.backend, "metrics", None)
        if metrics is None:
            return
        now = self.clock.now()
        d = v.dims
        rec = metrics.record
        rec(NS_INVOCATIONS, "Invocations", d, 1.0, now)
        rec(NS_INVOCATIONS, "InvocationsPerInstance", d, 1.0 / n_active, now)
        rec(NS_INVOCATIONS, "ModelLatency", d, model_us, now, unit="Microseconds")
        rec(NS_INVOCATIONS, "OverheadLatency", d, max(0.0, overhead_us), now, unit="Microseconds")
        e4 = 1.0 if error is None and 400 <= status < 500 else 0.0
        e5 = 1.0 if error is None and status >= 500 else 0.0
        me = 1.0 if (error is not None or status >= 400) else 0.0
        rec(NS_INVOCATIONS, "Invocation4XXErrors", d, e4, now)
        rec(NS_INVOCATIONS, "Invocation5XXErrors", d, e5, now)
        rec(NS_INVOCATIONS, "InvocationModelErrors", d, me, now)

    async def _wait_for_capacity(self, ep: Endpoint, variant: Variant, pinned: bool) -> tuple[Variant, Instance]:
        """No serving instance in the chosen variant: use another variant that has one (unless the
        caller pinned TargetVariant), else wait briefly for one that is starting (restart,
        replacement), else 503 ServiceUnavailable like AWS."""
        deadline = time.monotonic() + self.capacity_wait_real
        while True:
            candidates = [variant] if pinned else [variant, *[v for v in ep.variants if v is not variant]]
            for v in candidates:
                inst = router.least_outstanding(v.instances)
                if inst is not None:
                    return v, inst
            # Capacity is on its way while instances start, or a replacement is pending.
            starting = not self._resumed or any(
                i.state in (InstanceState.STARTING, InstanceState.PROVISIONING) for v in candidates for i in v.instances
            ) or (ep.status in ("InService", "Updating") and any(len(v.active()) < v.desired_count for v in candidates))
            if not starting or time.monotonic() > deadline or ep.status in ("Deleting", "Failed"):
                raise AwsError("ServiceUnavailable", "The service is unavailable. Try your call again.", 503)
            await asyncio.sleep(0.05)

    def _model_error(self, ep: Endpoint, status: int, payload: bytes, error: str | None) -> AwsError:
        r, a = self.region, self.account_id
        see = (
            f"See https://{r}.console.aws.amazon.com/cloudwatch/home?region={r}#logEventViewer:group="
            f"/aws/sagemaker/Endpoints/{ep.name} in account {a} for more information."
        )
        log_arn = f"arn:aws:logs:{r}:{a}:log-group:/aws/sagemaker/Endpoints/{ep.name}"
        if error == "timeout":
            original = (
                "Your invocation timed out while waiting for a response from container primary. Review the "
                "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
            )
            msg = f'Received server error (0) from primary with message "{original}". {see}'
            code = 0
        elif error is not None:
            original = f"The connection to container primary failed: {error}"
            msg = f'Received server error (0) from primary with message "{original}". {see}'
            code = 0
        else:
            original = payload.decode("utf-8", errors="replace")
            kind = "client" if status < 500 else "server"
            msg = f'Received {kind} error ({status}) from primary with message "{original}". {see}'
            code = status
        return AwsError(
            "ModelError", msg, 424,
            fields={"OriginalStatusCode": code, "OriginalMessage": original, "LogStreamArn": log_arn},
        )


@functools.lru_cache(maxsize=4096)
def _split_url(url: str) -> tuple[str, int, str]:
    """``http://127.0.0.1:PORT/path`` -> (host, port, path) for the forwarder."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80), parts.path or "/"


async def _run_all(coros: list[Awaitable[Any]]) -> list[Any]:
    """Run concurrently; on the first exception cancel the others, wait for them, re-raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    first = next((t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()), None)
    if first is not None:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise first
    return [t.result() for t in tasks]


def _state_docs(state: Any, kind: str) -> list[dict[str, Any]]:
    """``state.list(kind)`` as documents, whether the store returns docs, (key, doc) pairs or a dict."""
    items = state.list(kind)
    if isinstance(items, Mapping):
        return [dict(v) for v in items.values()]
    out = []
    for it in items:
        if isinstance(it, tuple | list) and len(it) == 2 and isinstance(it[1], Mapping):
            out.append(dict(it[1]))
        else:
            out.append(dict(it))
    return out


def install(backend: Any) -> None:
    """Create ``backend.endpoints`` and register the ``sagemaker`` and ``sagemaker-runtime`` services."""
    from catkit.local.services.runtime import RuntimeService
    from catkit.local.services.sagemaker import SageMakerService

    manager = EndpointManager(backend)
    backend.endpoints = manager
    backend.add_service("sagemaker", SageMakerService(manager))
    backend.add_service("sagemaker-runtime", RuntimeService(manager))
    backend.add_background(manager.run)
    backend.add_shutdown(manager.shutdown)
    backend.add_shutdown(manager.multimodel.shutdown)


__all__ = ["INSTANCE_TYPES", "EndpointManager", "Variant", "VariantView", "install"]
