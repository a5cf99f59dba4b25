"""The Application Auto Scaling engine: targets, policies, schedules, cooldowns, activities.

Pure: no I/O, no wall clock, no threads. The caller drives it with :meth:`Engine.tick` and
applies the returned :class:`Decision` objects (for SageMaker: UpdateEndpointWeightsAndCapacities
with the new DesiredInstanceCount), then reports the outcome with :meth:`Engine.complete`. While
a target has an activity in progress the engine starts no other one for it (AAS waits for the
target service; SageMaker blocks scaling while an endpoint is Updating).

This module owns the AAS API over the engine's resources (register/describe/delete targets,
policies, scheduled actions; activities; the tick). What the engine holds, its constructor and its
persistence (``to_dict``/``from_dict``) are :mod:`catkit.autoscaling.engine_state`; the decision
rules are :mod:`catkit.autoscaling.decisions`. Layers: ``EngineState`` <- ``DecisionRules`` <- ``Engine``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from catkit.autoscaling import activities as act
from catkit.autoscaling import step_scaling, target_tracking
from catkit.autoscaling.alarms import AlarmSpec, MetricReader
from catkit.autoscaling.decisions import Decision, DecisionRules
from catkit.autoscaling.errors import ScalingError, not_found, validation
from catkit.autoscaling.policies import (
    STEP_SCALING,
    TARGET_TRACKING,
    Cooldowns,
    ScalingPolicy,
    ScheduledAction,
)
from catkit.autoscaling.schedule import Schedule
from catkit.autoscaling.step_scaling import MAX_STEP_ADJUSTMENTS as MAX_STEP_ADJUSTMENTS
from catkit.autoscaling.targets import SUSPENDED_FLAGS, ScalableTarget, TargetKey, check_bounds, describe_key
from catkit.names import VARIANT_INSTANCE_COUNT

MAX_POLICIES_PER_TARGET = 50
MAX_SCHEDULED_ACTIONS_PER_TARGET = 200

_Resource = TypeVar("_Resource", ScalableTarget, ScalingPolicy, ScheduledAction, act.Activity)


@dataclass
class PolicyResult:
    """PutScalingPolicy outcome: the ARN, the created alarms (name + ARN) and their specs."""

    policy_arn: str
    alarms: list[dict[str, str]]
    alarm_specs: list[AlarmSpec]


def _min_allowed(dimension: str) -> int:
    # Instance-based SageMaker variants never go below one instance (aws-facts §1.5, §8).
    return 1 if dimension == VARIANT_INSTANCE_COUNT else 0


def _scoped(
    items: Iterable[_Resource], service_namespace: str, resource_id: str | None, scalable_dimension: str | None
) -> list[_Resource]:
    """The items of ``service_namespace``, narrowed to a resource id and a scalable dimension when
    given: the filters every Describe* call shares."""
    return [
        x
        for x in items
        if x.service_namespace == service_namespace
        and (resource_id is None or x.resource_id == resource_id)
        and (scalable_dimension is None or x.scalable_dimension == scalable_dimension)
    ]


class Engine(DecisionRules):
    """Application Auto Scaling for one account/region, on caller-supplied time and metrics.

    ``Engine(alarms=None, region=, account_id=, id_factory=None, is_high_resolution=None)``: the
    constructor and the fields are :class:`~catkit.autoscaling.engine_state.EngineState`'s.
    """

    #: Set by the host (not persisted): ``allows_zero(resource_id) -> bool`` for resources whose
    #: dimension's floor is 1 but which may scale to zero - SageMaker asynchronous endpoints
    #: (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html).
    allows_zero: Callable[[str], bool] | None = None

    def _lowest(self, dimension: str, resource_id: str) -> int:
        lowest = _min_allowed(dimension)
        return 0 if lowest and self.allows_zero is not None and self.allows_zero(resource_id) else lowest

    # ================================================================== ids
    def new_id(self) -> str:
        """A fresh UUID string: from ``id_factory`` or deterministic (counter-based, persisted)."""
        if self._id_factory is not None:
            return self._id_factory()
        self._counter += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catkit-autoscaling:{self.account_id}:{self._counter}"))

    def _arn(self, kind: str, key: TargetKey, name_kind: str, name: str) -> str:
        ns, rid, _ = key
        return (
            f"arn:aws:autoscaling:{self.region}:{self.account_id}:{kind}:{self.new_id()}:"
            f"resource/{ns}/{rid}:{name_kind}/{name}"
        )

    # ================================================================== targets
    def register_scalable_target(
        self,
        service_namespace: str,
        resource_id: str,
        scalable_dimension: str,
        now: float,
        min_capacity: int | None = None,
        max_capacity: int | None = None,
        suspended_state: Mapping[str, bool] | None = None,
        role_arn: str | None = None,
    ) -> ScalableTarget:
        """RegisterScalableTarget: create, or update bounds / suspended state of an existing target."""
        key = (service_namespace, resource_id, scalable_dimension)
        lowest = self._lowest(scalable_dimension, resource_id)
        for name, v in (("MinCapacity", min_capacity), ("MaxCapacity", max_capacity)):
            if v is not None and v < lowest:
                raise validation(
                    f"{name} must be at least {lowest} for {scalable_dimension}; got {v}."
                    + (" Scale to zero needs inference components or an asynchronous endpoint." if lowest else "")
                )
        for flag in suspended_state or {}:
            if flag not in SUSPENDED_FLAGS:
                raise validation(f"SuspendedState has no field {flag!r}; use {', '.join(SUSPENDED_FLAGS)}.")
        target = self.targets.get(key)
        if target is None:
            if min_capacity is None or max_capacity is None:
                raise validation(
                    "MinCapacity and MaxCapacity are required when registering a new scalable target "
                    f"({describe_key(key)})."
                )
            check_bounds(min_capacity, max_capacity)
            target = ScalableTarget(
                service_namespace,
                resource_id,
                scalable_dimension,
                int(min_capacity),
                int(max_capacity),
                arn=(
                    f"arn:aws:application-autoscaling:{self.region}:{self.account_id}:"
                    f"scalable-target/{self.new_id().replace('-', '')}"
                ),
                creation_time=now,
                role_arn=role_arn or "",
                bounds_changed=True,
            )
            self.targets[key] = target
            self.cooldowns[key] = Cooldowns()
        else:
            if min_capacity is not None or max_capacity is not None:
                target.set_bounds(min_capacity, max_capacity)
            if role_arn:
                target.role_arn = role_arn
        for flag, value in (suspended_state or {}).items():
            target.suspended[flag] = bool(value)
        return target

    def deregister_scalable_target(
        self, service_namespace: str, resource_id: str, scalable_dimension: str, now: float
    ) -> None:
        """DeregisterScalableTarget: also deletes its policies (and their alarms) and scheduled actions."""
        key = (service_namespace, resource_id, scalable_dimension)
        if key not in self.targets:
            raise not_found(f"No scalable target registered for {describe_key(key)}")
        for pkey in [k for k in self.policies if k[0] == key]:
            self._drop_policy(pkey, now)
        for skey in [k for k in self.scheduled if k[0] == key]:
            del self.scheduled[skey]
            self._schedules.pop(skey, None)
        del self.targets[key]
        self.cooldowns.pop(key, None)
        self._last_not_scaled.pop(key, None)
        aid = self.pending.pop(key, None)
        if aid is not None:
            self._finish(aid, act.OVERRIDDEN, "The scalable target was deregistered.", now)

    def targets_for_resource(self, service_namespace: str, resource_id_prefix: str) -> list[ScalableTarget]:
        """Targets whose resource id equals or starts with ``resource_id_prefix + '/'``."""
        return [
            t
            for t in self.targets.values()
            if t.service_namespace == service_namespace
            and (t.resource_id == resource_id_prefix or t.resource_id.startswith(resource_id_prefix + "/"))
        ]

    def describe_scalable_targets(
        self,
        service_namespace: str,
        resource_ids: Iterable[str] | None = None,
        scalable_dimension: str | None = None,
    ) -> list[ScalableTarget]:
        wanted = set(resource_ids) if resource_ids else None
        targets = sorted(self.targets.values(), key=lambda t: t.creation_time)
        return [
            t
            for t in _scoped(targets, service_namespace, None, scalable_dimension)
            if wanted is None or t.resource_id in wanted
        ]

    def _target(self, key: TargetKey) -> ScalableTarget:
        target = self.targets.get(key)
        if target is None:
            raise not_found(f"No scalable target registered for {describe_key(key)}")
        return target

    # ================================================================== policies
    def put_scaling_policy(
        self,
        policy_name: str,
        service_namespace: str,
        resource_id: str,
        scalable_dimension: str,
        now: float,
        policy_type: str | None = None,
        target_tracking_config: Mapping[str, Any] | None = None,
        step_scaling_config: Mapping[str, Any] | None = None,
    ) -> PolicyResult:
        """PutScalingPolicy: create or replace; target tracking creates its alarms in the book."""
        key = (service_namespace, resource_id, scalable_dimension)
        self._target(key)
        if policy_type is None:
            policy_type = TARGET_TRACKING if target_tracking_config else STEP_SCALING
        if policy_type == "PredictiveScaling":
            raise validation(f"PredictiveScaling policies are not supported for {scalable_dimension}.")
        if policy_type not in (TARGET_TRACKING, STEP_SCALING):
            raise validation(f"PolicyType must be TargetTrackingScaling or StepScaling; got {policy_type!r}.")
        pkey = (key, policy_name)
        existing = self.policies.get(pkey)
        if existing is None and sum(1 for k in self.policies if k[0] == key) >= MAX_POLICIES_PER_TARGET:
            raise ScalingError(
                "LimitExceededException",
                f"A scalable target can have at most {MAX_POLICIES_PER_TARGET} scaling policies.",
            )
        if policy_type == TARGET_TRACKING:
            if not target_tracking_config:
                raise validation(
                    "TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy."
                )
            if step_scaling_config:
                raise validation(
                    "StepScalingPolicyConfiguration is not allowed for a TargetTrackingScaling policy."
                )
            config = dict(target_tracking_config)
            target_value = target_tracking.check_config(config)
            metric = target_tracking.tracked_metric(
                config, resource_id, scalable_dimension, self.is_high_resolution
            )
        else:
            if not step_scaling_config:
                raise validation("StepScalingPolicyConfiguration is required for a StepScaling policy.")
            if target_tracking_config:
                raise validation(
                    "TargetTrackingScalingPolicyConfiguration is not allowed for a StepScaling policy."
                )
            config = dict(step_scaling_config)
            step_scaling.validate_config(config)

        arn = existing.policy_arn if existing else self._arn("scalingPolicy", key, "policyName", policy_name)
        policy = ScalingPolicy(
            policy_name=policy_name,
            policy_arn=arn,
            service_namespace=service_namespace,
            resource_id=resource_id,
            scalable_dimension=scalable_dimension,
            policy_type=policy_type,
            config=config,
            creation_time=existing.creation_time if existing else now,
        )
        specs: list[AlarmSpec] = []
        old_alarms = set(existing.alarm_roles.values()) if existing else set()
        if policy_type == TARGET_TRACKING:
            built = target_tracking.alarm_specs(
                metric, target_value, arn, resource_id, bool(config.get("DisableScaleIn", False)), self.new_id
            )
            for role, spec in built.items():
                # An update keeps the alarm's name (and so its state) when the role still exists.
                if existing and role in existing.alarm_roles:
                    spec.alarm_name = existing.alarm_roles[role]
                self.alarms.put_alarm(spec, now)
                policy.alarm_roles[role] = spec.alarm_name
                specs.append(spec)
            policy.alarms = [
                {"AlarmName": s.alarm_name, "AlarmARN": self.alarms.arn_for(s.alarm_name)} for s in specs
            ]
        else:
            # Step policies are invoked by user alarms; list those pointing at the policy.
            policy.alarms = [
                {"AlarmName": a.name, "AlarmARN": a.arn}
                for a in self.alarms.list()
                if arn in (*a.spec.alarm_actions, *a.spec.ok_actions, *a.spec.insufficient_data_actions)
            ]
        stale = old_alarms - set(policy.alarm_roles.values())
        if stale:
            self.alarms.delete_alarms(sorted(stale), now)
        self.policies[pkey] = policy
        self._policy_by_arn[arn] = pkey
        return PolicyResult(arn, [dict(a) for a in policy.alarms], specs)

    def delete_scaling_policy(
        self, policy_name: str, service_namespace: str, resource_id: str, scalable_dimension: str, now: float
    ) -> None:
        key = (service_namespace, resource_id, scalable_dimension)
        pkey = (key, policy_name)
        if pkey not in self.policies:
            raise not_found(f"No scaling policy found for {describe_key(key)}, policy name: {policy_name}")
        self._drop_policy(pkey, now)

    def _drop_policy(self, pkey: tuple[TargetKey, str], now: float) -> None:
        policy = self.policies.pop(pkey)
        self._policy_by_arn.pop(policy.policy_arn, None)
        if policy.alarm_roles:
            self.alarms.delete_alarms(sorted(policy.alarm_roles.values()), now)

    def describe_scaling_policies(
        self,
        service_namespace: str,
        policy_names: Iterable[str] | None = None,
        resource_id: str | None = None,
        scalable_dimension: str | None = None,
    ) -> list[ScalingPolicy]:
        wanted = set(policy_names) if policy_names else None
        out = [
            p
            for p in _scoped(self.policies.values(), service_namespace, resource_id, scalable_dimension)
            if wanted is None or p.policy_name in wanted
        ]
        for p in out:
            if p.policy_type == STEP_SCALING:
                p.alarms = [
                    {"AlarmName": a.name, "AlarmARN": a.arn}
                    for a in self.alarms.list()
                    if p.policy_arn
                    in (*a.spec.alarm_actions, *a.spec.ok_actions, *a.spec.insufficient_data_actions)
                ]
        return sorted(out, key=lambda p: p.creation_time)

    def policy_by_arn(self, arn: str) -> ScalingPolicy | None:
        pkey = self._policy_by_arn.get(arn)
        return self.policies.get(pkey) if pkey else None

    # ================================================================== scheduled actions
    def put_scheduled_action(
        self,
        name: str,
        service_namespace: str,
        resource_id: str,
        scalable_dimension: str,
        now: float,
        schedule: str | None = None,
        timezone: str | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
        min_capacity: int | None = None,
        max_capacity: int | None = None,
    ) -> ScheduledAction:
        """PutScheduledAction: create, or update the fields given (Schedule is required to create)."""
        key = (service_namespace, resource_id, scalable_dimension)
        self._target(key)
        skey = (key, name)
        existing = self.scheduled.get(skey)
        if existing is None:
            if not schedule:
                raise validation("Schedule is required when creating a scheduled action.")
            if sum(1 for k in self.scheduled if k[0] == key) >= MAX_SCHEDULED_ACTIONS_PER_TARGET:
                raise ScalingError(
                    "LimitExceededException",
                    f"A scalable target can have at most {MAX_SCHEDULED_ACTIONS_PER_TARGET} scheduled actions.",
                )
        lowest = self._lowest(scalable_dimension, resource_id)
        for label, v in (("MinCapacity", min_capacity), ("MaxCapacity", max_capacity)):
            if v is not None and v < lowest:
                raise validation(f"ScalableTargetAction.{label} must be at least {lowest}; got {v}.")
        if min_capacity is not None and max_capacity is not None:
            check_bounds(min_capacity, max_capacity)
        given = {
            "timezone": timezone,
            "start_time": start_time,
            "end_time": end_time,
            "min_capacity": min_capacity,
            "max_capacity": max_capacity,
        }
        if existing is not None:
            action = existing.updated(schedule=schedule or None, **given)
        else:
            arn = self._arn("scheduledAction", key, "scheduledActionName", name)
            action = ScheduledAction(name, arn, *key, schedule or "", **given, creation_time=now)
        if action.min_capacity is None and action.max_capacity is None:
            raise validation("ScalableTargetAction must set MinCapacity, MaxCapacity or both.")
        parsed = action.parse()
        action.next_run = parsed.next_after(now)
        self.scheduled[skey] = action
        self._schedules[skey] = parsed
        return action

    def delete_scheduled_action(
        self, name: str, service_namespace: str, resource_id: str, scalable_dimension: str
    ) -> None:
        key = (service_namespace, resource_id, scalable_dimension)
        skey = (key, name)
        if skey not in self.scheduled:
            raise not_found(
                f"No scheduled action found for {describe_key(key)}, scheduled action name: {name}"
            )
        del self.scheduled[skey]
        self._schedules.pop(skey, None)

    def describe_scheduled_actions(
        self,
        service_namespace: str,
        names: Iterable[str] | None = None,
        resource_id: str | None = None,
        scalable_dimension: str | None = None,
    ) -> list[ScheduledAction]:
        wanted = set(names) if names else None
        actions = _scoped(self.scheduled.values(), service_namespace, resource_id, scalable_dimension)
        return sorted((a for a in actions if wanted is None or a.name in wanted), key=lambda a: a.creation_time)

    def _schedule(self, skey: tuple[TargetKey, str]) -> Schedule:
        parsed = self._schedules.get(skey)
        if parsed is None:
            parsed = self._schedules[skey] = self.scheduled[skey].parse()
        return parsed

    # ================================================================== activities
    def describe_scaling_activities(
        self,
        service_namespace: str,
        resource_id: str | None = None,
        scalable_dimension: str | None = None,
        include_not_scaled: bool = False,
    ) -> list[act.Activity]:
        """Activities newest first (DescribeScalingActivities)."""
        newest_first = reversed(self._activities)
        return [
            a
            for a in _scoped(newest_first, service_namespace, resource_id, scalable_dimension)
            if include_not_scaled or not a.is_not_scaled
        ]

    def activity(self, activity_id: str) -> act.Activity | None:
        return self._activity_by_id.get(activity_id)

    def _add_activity(
        self, key: TargetKey, description: str, cause: str, now: float, status: str, **kw: Any
    ) -> act.Activity:
        ns, rid, dim = key
        a = act.Activity(self.new_id(), ns, rid, dim, description, cause, now, status, **kw)
        self._activities.append(a)
        self._activity_by_id[a.activity_id] = a
        horizon = now - act.RETENTION_S
        while self._activities and self._activities[0].start_time < horizon:
            old = self._activities.popleft()
            self._activity_by_id.pop(old.activity_id, None)
        return a

    def accepted(self, activity_id: str, now: float) -> None:
        """The target service accepted the change: Pending -> InProgress."""
        a = self._activity_by_id.get(activity_id)
        if a is not None and a.status_code == act.PENDING:
            a.status_code = act.IN_PROGRESS

    def complete(
        self, activity_id: str, ok: bool, message: str, now: float, status: str | None = None
    ) -> None:
        """Report the outcome of a Decision. ``message`` becomes the failure reason when not ok.

        ``status`` may force a terminal code (e.g. ``Unfulfilled`` on timeout, ``Overridden``).
        """
        a = self._activity_by_id.get(activity_id)
        if a is None or a.status_code in act.TERMINAL:
            return
        word = act.capacity_word(a.service_namespace, a.scalable_dimension)
        if ok:
            code = status or act.SUCCESSFUL
            text = message or (
                f"Successfully set {word} to {a.desired_capacity}. "
                f"Change successfully fulfilled by {a.service_namespace}."
            )
        else:
            code = status or act.FAILED
            text = f"Failed to set {word} to {a.desired_capacity}. Reason: {message}"
            before = self._cooldown_before.get(activity_id)
            key = (a.service_namespace, a.resource_id, a.scalable_dimension)
            if before is not None and key in self.cooldowns:
                self.cooldowns[key] = Cooldowns.from_dict(before)
        self._finish(activity_id, code, text, now)

    def _finish(self, activity_id: str, code: str, text: str, now: float) -> None:
        a = self._activity_by_id.get(activity_id)
        self._cooldown_before.pop(activity_id, None)
        if a is None:
            return
        a.status_code, a.status_message, a.end_time = code, text, now
        key = (a.service_namespace, a.resource_id, a.scalable_dimension)
        if self.pending.get(key) == activity_id:
            del self.pending[key]

    # ================================================================== driving
    def tick(
        self,
        now: float,
        metrics: MetricReader,
        current_capacity: Callable[[str], int | None],
    ) -> list[Decision]:
        """Evaluate the alarms at ``now``, then :meth:`decide`. (A fleet is normally driven by
        :class:`catkit.autoscaling.driver.ScalingDriver`, which owns the whole step.)"""
        self.alarms.evaluate(now, metrics)
        return self.decide(now, current_capacity)
