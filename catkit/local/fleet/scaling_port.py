"""Application Auto Scaling wired into the local backend: the engine on the backend's clock.

``install(backend)`` (a backend component, after ``catkit.local.fleet.endpoints``) sets
``backend.autoscaling`` (an :class:`AutoscalingController`) and registers the
``application-autoscaling`` service. The controller

* keeps one :class:`catkit.autoscaling.engine.Engine` whose alarms live in ``backend.alarms`` (the
  CloudWatch alarm book, so target-tracking alarms show in DescribeAlarms with live state and
  history), persisted in ``backend.state`` (kind ``application-autoscaling``) after every change;
* ticks the engine every 10 emulated seconds on 10-second boundaries of ``backend.clock``, so at
  time scale 60 a three-minute AlarmHigh fires within seconds and a 15-minute scale-in plays out
  in about 15 s;
* emits zero ``Invocations``/``InvocationsPerInstance`` datapoints for auto-scaled variants that
  had no traffic in a minute (SageMaker does this so target tracking can scale in, aws-facts
  §1.5), late in that minute so the minute's evaluation sees them; the endpoint manager's own
  idle zeros (for every variant) are switched off, since AWS emits them for auto-scaled variants
  only;
* applies decisions with UpdateEndpointWeightsAndCapacities semantics
  (``backend.endpoints.set_desired_instance_count``): instances launch with the provisioning
  delay and drain on scale-in; an activity stays InProgress until the endpoint is InService again,
  then becomes Successful (or Failed with SageMaker's error). Scaling waits while an endpoint is
  not InService (AWS blocks automatic scaling during updates);
* deregisters an endpoint's scalable targets when the endpoint is deleted, and refuses an
  UpdateEndpoint that removes an auto-scaled variant or changes its instance type (AWS requires
  DeleteScalingPolicy + DeregisterScalableTarget first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Mapping
from typing import Any

from catkit.autoscaling.alarms import AlarmBook
from catkit.autoscaling.engine import Decision, Engine
from catkit.autoscaling.errors import ScalingError
from catkit.autoscaling.policies import TARGET_TRACKING
from catkit.local.errors import AwsError
from catkit.local.services.autoscaling import (
    NAMESPACE,
    VARIANT_DIMENSION,
    ApplicationAutoScalingService,
    parse_variant_resource_id,
)

log = logging.getLogger("catkit.local.autoscaling")

STATE_KIND = "application-autoscaling"
STATE_KEY = "engine"
TICK_S = 10.0
ZERO_AFTER_S = 50.0  # emit a minute's zero datapoints this far into the minute if it had no traffic
METRICS_NS = "AWS/SageMaker"


class AutoscalingController:
    """Drives the engine for the local backend; see the module docstring."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.clock = backend.clock
        self.state = backend.state
        alarms = getattr(backend, "alarms", None)
        if alarms is None:
            alarms = AlarmBook(backend.region, backend.account_id)
            backend.alarms = alarms
        doc = self.state.get(STATE_KIND, STATE_KEY) if self.state is not None else None
        kw: dict[str, Any] = {
            "id_factory": lambda: str(uuid.uuid4()),
            "is_high_resolution": self._is_high_resolution,
        }
        if doc and doc.get("engine"):
            self.engine = Engine.from_dict(doc["engine"], alarms=alarms, **kw)
        else:
            self.engine = Engine(alarms, backend.region, backend.account_id, **kw)
        self.service = ApplicationAutoScalingService(
            self.engine, self.clock.now, self._variant_exists, self.persist
        )
        self.service.tags = {k: dict(v) for k, v in ((doc or {}).get("tags") or {}).items()}
        self._zero_done: dict[str, float] = {}
        self._saved: Any = None
        self._reconcile_alarms()

    # ------------------------------------------------------------------ endpoints
    @property
    def endpoints(self) -> Any:
        return getattr(self.backend, "endpoints", None)

    def _variant_exists(self, endpoint: str, variant: str) -> bool:
        eps = self.endpoints
        if eps is None:
            return False
        view = eps.get_variant(endpoint, variant)
        return view is not None and view.status not in ("Deleting",)

    def _view(self, resource_id: str) -> Any:
        eps = self.endpoints
        if eps is None:
            return None
        try:
            endpoint, variant = parse_variant_resource_id(resource_id)
        except AwsError:
            return None
        return eps.get_variant(endpoint, variant)

    def current_capacity(self, resource_id: str) -> int | None:
        """DesiredInstanceCount of an InService variant; None (skip) while it is not InService."""
        view = self._view(resource_id)
        if view is None or view.status != "InService":
            return None
        return int(view.desired_instance_count)

    def _is_high_resolution(self, namespace: str, name: str, dims: Mapping[str, str]) -> bool:
        """Whether a metric has sub-minute datapoints (PutMetricData StorageResolution 1) in the
        last 3 hours - standard-resolution data only ever fills minute buckets."""
        metrics = getattr(self.backend, "metrics", None)
        if metrics is None:
            return False
        now = self.clock.now()
        try:
            rows = metrics.statistics(namespace, name, dims, now - 3 * 3600, now, 10, ["SampleCount"])
        except Exception:
            return False
        return any(float(r["Timestamp"]) % 60 for r in rows)

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
        """Save the engine (and tags) if anything changed; also flush the alarm book."""
        signature = self._signature()
        if not force and signature == self._saved:
            return
        if self.state is not None:
            self.state.put(
                STATE_KIND, STATE_KEY, {"engine": self.engine.to_dict(), "tags": self.service.tags}
            )
        self._saved = signature
        cw = getattr(self.backend, "cloudwatch", None)
        if cw is not None:
            with contextlib.suppress(Exception):
                cw.persist()

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
                    policy.policy_name,
                    *policy.key,
                    now,
                    policy_type=TARGET_TRACKING,
                    target_tracking_config=policy.config,
                )
                log.warning("recreated the alarms of scaling policy %s", policy.policy_arn)
            except ScalingError as e:
                log.error("could not recreate the alarms of %s: %s", policy.policy_arn, e)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Background task: tick every 10 emulated seconds, on 10-second boundaries."""
        while True:
            now = self.clock.now()
            await self.clock.sleep_until((math.floor(now / TICK_S) + 1) * TICK_S)
            try:
                self.tick(self.clock.now())
            except Exception:
                log.exception("autoscaling tick failed; retrying in %s emulated seconds", TICK_S)

    def tick(self, now: float | None = None) -> list[Decision]:
        """One step: idle zeros, engine tick, apply decisions, settle finished activities, persist."""
        now = self.clock.now() if now is None else now
        self._emit_idle_zeros(now)
        decisions = self.engine.tick(now, self.backend.metrics, self.current_capacity)
        for d in decisions:
            self._apply(d, now)
        self._settle(now)
        self.persist()
        return decisions

    def _apply(self, d: Decision, now: float) -> None:
        endpoint, variant = parse_variant_resource_id(d.resource_id)
        try:
            self.endpoints.set_desired_instance_count(endpoint, variant, d.desired_capacity)
        except AwsError as e:
            self.engine.complete(
                d.activity_id,
                False,
                f"{e.message} (Service: AmazonSageMaker; Status Code: {e.status}; Error Code: {e.code}; "
                f"Request ID: {uuid.uuid4()})",
                now,
            )
            log.warning("scaling %s to %d failed: %s", d.resource_id, d.desired_capacity, e)
        else:
            self.engine.accepted(d.activity_id, now)
            log.info(
                "scaling %s from %d to %d (%s)",
                d.resource_id,
                d.previous_capacity,
                d.desired_capacity,
                d.cause,
            )

    def _settle(self, now: float) -> None:
        """Finish in-progress activities whose endpoint is InService again."""
        for key, activity_id in list(self.engine.pending.items()):
            activity = self.engine.activity(activity_id)
            if activity is None:
                continue
            view = self._view(key[1])
            if view is None:
                self.engine.complete(activity_id, False, f"The resource {key[1]} no longer exists.", now)
                continue
            if activity.status_code == "Pending":
                # Decided but never applied (the backend stopped in between): apply it now.
                if view.status == "InService":
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
            if view.status == "Failed":
                reason = self._failure_reason(view.endpoint_name) or "the endpoint update failed"
                self.engine.complete(activity_id, False, reason, now)
            elif view.status == "InService":
                if view.desired_instance_count == activity.desired_capacity:
                    self.engine.complete(activity_id, True, "", now)
                else:
                    reason = self._failure_reason(view.endpoint_name)
                    if reason:
                        self.engine.complete(activity_id, False, reason, now)
                    else:
                        self.engine.complete(
                            activity_id,
                            True,
                            f"Desired instance count was changed to {view.desired_instance_count} by a newer "
                            "request.",
                            now,
                            status="Overridden",
                        )

    def _failure_reason(self, endpoint: str) -> str | None:
        with contextlib.suppress(Exception):
            return self.endpoints.describe_endpoint(endpoint).get("FailureReason")
        return None

    def _emit_idle_zeros(self, now: float) -> None:
        metrics = getattr(self.backend, "metrics", None)
        if metrics is None:
            return
        minute = math.floor(now / 60) * 60
        for target in list(self.engine.targets.values()):
            if target.service_namespace != NAMESPACE or target.scalable_dimension != VARIANT_DIMENSION:
                continue
            rid = target.resource_id
            done = self._zero_done.get(rid)
            # The current minute once it is far enough along; the previous one if a tick was missed.
            todo = []
            if done is not None and done < minute - 60:
                todo.append((minute - 60, minute - 0.001))
            if now - minute >= ZERO_AFTER_S and done != minute:
                todo.append((minute, now))
            for start, stamp in todo:
                self._zero_done[rid] = start
                view = self._view(rid)
                if view is None or view.status not in ("InService", "Updating"):
                    continue
                dims = {"EndpointName": view.endpoint_name, "VariantName": view.variant_name}
                rows = metrics.statistics(
                    METRICS_NS, "Invocations", dims, start, start + 60, 60, ["SampleCount"]
                )
                if any(r.get("SampleCount") for r in rows):
                    continue
                metrics.record(METRICS_NS, "Invocations", dims, 0.0, stamp)
                metrics.record(METRICS_NS, "InvocationsPerInstance", dims, 0.0, stamp)
            if done is None and not todo:
                self._zero_done[rid] = minute - 60

    # ------------------------------------------------------------------ endpoint hooks
    def on_endpoint_deleted(self, endpoint_name: str) -> None:
        """AAS silently deregisters the scalable targets of a deleted endpoint (aws-facts §1.5)."""
        prefix = f"endpoint/{endpoint_name}/".lower()
        now = self.clock.now()
        for target in list(self.engine.targets.values()):
            if target.service_namespace == NAMESPACE and target.resource_id.lower().startswith(prefix):
                with contextlib.suppress(ScalingError):
                    self.engine.deregister_scalable_target(*target.key, now)
                self.service.tags.pop(target.arn, None)
                self._zero_done.pop(target.resource_id, None)
        self.persist()

    def update_guard(
        self, endpoint_name: str, current: list[dict[str, Any]], new: list[dict[str, Any]]
    ) -> None:
        """Refuse an UpdateEndpoint that removes an auto-scaled variant or changes its instance type."""
        new_by_name = {v.get("VariantName"): v for v in new}
        for old in current:
            name = old.get("VariantName")
            rid = f"endpoint/{endpoint_name}/variant/{name}"
            if not any(t.resource_id.lower() == rid.lower() for t in self.engine.targets.values()):
                continue
            replacement = new_by_name.get(name)
            if replacement is None:
                raise AwsError(
                    "ValidationException",
                    f'The variant "{name}" of endpoint "{endpoint_name}" is registered as a scalable target with '
                    "Application Auto Scaling, so UpdateEndpoint cannot remove it. Delete its scaling policies "
                    "(DeleteScalingPolicy) and deregister it (DeregisterScalableTarget) first.",
                )
            if replacement.get("InstanceType") != old.get("InstanceType"):
                raise AwsError(
                    "ValidationException",
                    f'The variant "{name}" of endpoint "{endpoint_name}" is registered as a scalable target with '
                    f"Application Auto Scaling, so UpdateEndpoint cannot change its instance type from "
                    f"{old.get('InstanceType')} to {replacement.get('InstanceType')}. Delete its scaling policies "
                    "(DeleteScalingPolicy) and deregister it (DeregisterScalableTarget) first.",
                )


def install(backend: Any) -> None:
    """Backend component: ``backend.autoscaling``, the ``application-autoscaling`` service, the tick loop."""
    controller = AutoscalingController(backend)
    backend.autoscaling = controller
    backend.add_service("application-autoscaling", controller.service)
    endpoints = getattr(backend, "endpoints", None)
    if endpoints is not None:
        # AWS emits idle zeros only for auto-scaled variants; the controller does that itself.
        if hasattr(endpoints, "emit_idle_zeros"):
            endpoints.emit_idle_zeros = False
        endpoints.on_endpoint_deleted(controller.on_endpoint_deleted)
        if hasattr(endpoints, "add_update_guard"):
            endpoints.add_update_guard(controller.update_guard)
    backend.add_background(controller.run)

    async def _save() -> None:
        with contextlib.suppress(Exception):
            controller.persist(force=True)
        await asyncio.sleep(0)

    backend.add_shutdown(_save)
