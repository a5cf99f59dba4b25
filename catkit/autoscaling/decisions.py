"""How the engine decides: scheduled actions, bound enforcement and policies at work.

The decision rules of Application Auto Scaling as a mixin of :class:`catkit.autoscaling.Engine`
(which owns the resources: targets, policies, scheduled actions, activities, cooldowns). Pure: no
I/O, no wall clock. :meth:`DecisionRules.decide` is called once per step by the scaling driver.

Decision rules (aws-facts §1.2, §1.3, §1.8, §1.9):

* Every firing policy proposes a capacity; the LARGEST proposal wins (scale-out and scale-in).
* Target tracking scales out when ANY policy's AlarmHigh fires and scales in only when ALL
  target-tracking policies with scale-in enabled have their AlarmLow in ALARM.
* Capacity is clamped to [MinCapacity, MaxCapacity]; nothing to do -> a not-scaled activity
  (AlreadyAtMaxCapacity / AlreadyAtMinCapacity / AlreadyAtDesiredCapacity).
* Scale-out cooldown: further scale-out is computed from the capacity before the cooldown-starting
  scale-out and passes only if larger than the current capacity. Scale-in cooldown blocks
  scale-in; a scale-out during it proceeds and ends it. ASSUMPTION: scale-in is also held during a
  scale-out cooldown. Cooldowns are per target, with the length of the policy that scaled.
  A failed activity restores the cooldown state it replaced.
* Suspended state: DynamicScalingOutSuspended / DynamicScalingInSuspended stop policy scale-out /
  scale-in; ScheduledScalingSuspended skips scheduled actions (their runs are not replayed).
* Scheduled actions set MinCapacity/MaxCapacity (an activity of their own), ignore cooldowns, and
  capacity outside the new bounds is moved inside them (cause "minimum capacity was set to N").
  Missed runs (the engine was not ticked) run once. After EndTime nothing is reverted.
* The "current capacity" of a target is what the caller's ``current_capacity(resource_id)``
  returns; for a SageMaker variant that is its DesiredInstanceCount (ASSUMPTION, aws-facts §1.6).

:meth:`DecisionRules.quiet_band` states, from these rules, for which metric values a target-tracking
alarm that stays in ALARM cannot start an activity (at max/min capacity, in a cooldown, or with a
proposal equal to the current capacity), so the scaling driver can skip those evaluations.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catkit.autoscaling import activities as act
from catkit.autoscaling import step_scaling, target_tracking
from catkit.autoscaling.alarms import ALARM, ActionInvocation
from catkit.autoscaling.engine_state import EngineState
from catkit.autoscaling.policies import TARGET_TRACKING, Cooldowns, ScalingPolicy
from catkit.autoscaling.targets import ScalableTarget, TargetKey

if TYPE_CHECKING:
    from catkit.autoscaling.schedule import Schedule

# Not-scaled reasons are recorded at most once per this interval for the same cause and code.
NOT_SCALED_REPEAT_S = 3600.0
#: A quiet band that holds for every value, for ever.
ALWAYS_QUIET = (-math.inf, math.inf, math.inf)


@dataclass
class Decision:
    """Set the target's capacity to ``desired_capacity``; report back with ``Engine.complete``."""

    activity_id: str
    service_namespace: str
    resource_id: str
    scalable_dimension: str
    desired_capacity: int
    previous_capacity: int
    cause: str



@dataclass
class _Proposal:
    capacity: int
    direction: str  # "out" | "in" | "none"
    policy: ScalingPolicy
    alarm_name: str
    state: str



class DecisionRules(EngineState):
    """The decision half of :class:`~catkit.autoscaling.Engine` (see the module docstring), over
    the state :class:`~catkit.autoscaling.engine_state.EngineState` holds."""

    # Provided by the Engine:
    def policy_by_arn(self, arn: str) -> ScalingPolicy | None:
        raise NotImplementedError

    def _add_activity(
        self, key: TargetKey, description: str, cause: str, now: float, status: str, **kw: Any
    ) -> act.Activity:
        raise NotImplementedError

    def _schedule(self, skey: tuple[TargetKey, str]) -> Schedule:
        raise NotImplementedError

    def decide(self, now: float, current_capacity: Callable[[str], int | None]) -> list[Decision]:
        """Run due scheduled actions and act on the policy alarms' pending actions at ``now``.

        ``current_capacity(resource_id)`` returns the target's current capacity (None if the
        resource is gone or busy; the target is then skipped). Returns the capacity changes to apply.
        """
        self._run_schedules(now)
        invocations = self.alarms.pop_actions(self._policy_by_arn.__contains__)
        by_target: dict[TargetKey, list[ActionInvocation]] = {}
        for inv in invocations:
            pkey = self._policy_by_arn.get(inv.action)
            if pkey is not None:
                by_target.setdefault(pkey[0], []).append(inv)
        decisions: list[Decision] = []
        for key, target in self.targets.items():
            if key in self.pending or not (target.bounds_changed or key in by_target):
                continue
            current = current_capacity(target.resource_id)
            if current is None:
                continue
            decision = None
            if target.bounds_changed:
                target.bounds_changed = False
                decision = self._enforce_bounds(target, int(current), now)
            if decision is None and key in by_target:
                decision = self._apply_policies(target, int(current), by_target[key], now)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def quiet_band(
        self, alarm_name: str, now: float, current_capacity: Callable[[str], int | None]
    ) -> tuple[float, float, float] | None:
        """``(low, high, until)``: while alarm ``alarm_name`` stays in ALARM, an invocation of its
        actions before ``until`` whose newest datapoint lies in ``[low, high]`` starts no activity
        (it may record a not-scaled one), as :meth:`decide` would find with the state it has now.
        None when the engine cannot tell: step scaling, several policies on one target, bounds
        about to be enforced."""
        alarm = self.alarms.get(alarm_name)
        pkeys = {self._policy_by_arn[a] for a in alarm.spec.actions_for(ALARM) if a in self._policy_by_arn} if (
            alarm is not None) else set()
        if not pkeys:
            return ALWAYS_QUIET  # no policy acts on it
        if len(pkeys) > 1:
            return None
        pkey = pkeys.pop()
        tkey = pkey[0]  # the policy's target (its key)
        policy, target = self.policies[pkey], self.targets.get(tkey)
        if target is None or tkey in self.pending:
            return ALWAYS_QUIET  # decide() skips a target with an activity in progress
        if policy.policy_type != TARGET_TRACKING or target.bounds_changed:
            return None
        if sum(1 for k in self.policies if k[0] == tkey) > 1:
            return None
        current = current_capacity(target.resource_id)
        if current is None:
            return ALWAYS_QUIET
        tv = float(policy.config["TargetValue"])
        cd = self.cooldowns.get(tkey) or Cooldowns()
        in_out_cd = cd.in_out_cooldown(now)
        if alarm_name == policy.alarm_roles.get("high"):
            if target.is_suspended("DynamicScalingOutSuspended") or current >= target.max_capacity:
                return ALWAYS_QUIET
            base = cd.out_base if in_out_cd and cd.out_base is not None else current
            if base <= 0:
                return None
            # No scale-out while the proposal from `base` stays at or below the current capacity.
            high = _scale_out_edge(base, current, tv)
            return (-math.inf, high, cd.out_until if in_out_cd and cd.out_until is not None else math.inf)
        if alarm_name != policy.alarm_roles.get("low") or not policy.scale_in_enabled:
            return ALWAYS_QUIET  # _tt_proposal proposes nothing
        if target.is_suspended("DynamicScalingInSuspended") or current <= target.min_capacity:
            return ALWAYS_QUIET
        running = [t for t in (cd.in_until, cd.out_until) if t is not None and now < t]
        if running:
            return (-math.inf, math.inf, max(running))  # scale-in waits for both cooldowns
        # No scale-in while the proposal stays at the current capacity.
        low = _scale_in_edge(current, tv)
        return (low, math.inf, math.inf)

    def _decide(self, target: ScalableTarget, current: int, desired: int, cause: str, now: float) -> Decision:
        word = act.capacity_word(target.service_namespace, target.scalable_dimension)
        a = self._add_activity(
            target.key,
            f"Setting {word} to {desired}.",
            cause,
            now,
            act.PENDING,
            desired_capacity=desired,
            previous_capacity=current,
        )
        self.pending[target.key] = a.activity_id
        self._last_not_scaled.pop(target.key, None)
        return Decision(a.activity_id, *target.key, desired, current, cause)

    def _enforce_bounds(self, target: ScalableTarget, current: int, now: float) -> Decision | None:
        if current < target.min_capacity:
            return self._decide(
                target,
                current,
                target.min_capacity,
                f"minimum capacity was set to {target.min_capacity}",
                now,
            )
        if current > target.max_capacity:
            return self._decide(
                target,
                current,
                target.max_capacity,
                f"maximum capacity was set to {target.max_capacity}",
                now,
            )
        return None

    def _run_schedules(self, now: float) -> None:
        due = [
            (a.next_run, a.creation_time, k)
            for k, a in self.scheduled.items()
            if a.next_run is not None and a.next_run <= now
        ]
        for _, _, skey in sorted(due):  # in time order per target, as AWS guarantees
            action = self.scheduled[skey]
            action.next_run = self._schedule(skey).next_after(now)
            target = self.targets.get(skey[0])
            if target is None or target.is_suspended("ScheduledScalingSuspended"):
                continue
            text = act.bounds_text(action.min_capacity, action.max_capacity)
            cause = act.scheduled_cause(action.name)
            new_min = target.min_capacity if action.min_capacity is None else action.min_capacity
            new_max = target.max_capacity if action.max_capacity is None else action.max_capacity
            if new_min > new_max:
                self._add_activity(
                    target.key,
                    f"Setting {text}",
                    cause,
                    now,
                    act.FAILED,
                    end_time=now,
                    status_message=(
                        f"Failed to set {text}. Reason: the new minimum capacity ({new_min}) would be greater "
                        f"than the maximum capacity ({new_max})."
                    ),
                )
                continue
            target.set_bounds(action.min_capacity, action.max_capacity)
            self._add_activity(
                target.key,
                f"Setting {text}",
                cause,
                now,
                act.SUCCESSFUL,
                end_time=now,
                status_message=f"Successfully set {text}",
            )

    # ------------------------------------------------------------------ policies at work
    def _apply_policies(
        self, target: ScalableTarget, current: int, invocations: list[ActionInvocation], now: float
    ) -> Decision | None:
        cd = self.cooldowns.setdefault(target.key, Cooldowns())
        in_out_cd = cd.in_out_cooldown(now)
        out_base = cd.out_base if in_out_cd and cd.out_base is not None else current
        proposals: list[_Proposal] = []
        seen: set[tuple[str, str]] = set()
        for inv in invocations:
            if (inv.action, inv.alarm_name) in seen:
                continue
            seen.add((inv.action, inv.alarm_name))
            policy = self.policy_by_arn(inv.action)
            alarm = self.alarms.get(inv.alarm_name)
            if policy is None or alarm is None or alarm.state_value != inv.state:
                continue
            values = alarm.recent_datapoints
            if policy.policy_type == TARGET_TRACKING:
                p = self._tt_proposal(target, policy, alarm.name, inv.state, values, current, out_base)
            else:
                p = self._step_proposal(policy, alarm, inv.state, values, current, out_base)
            if p is not None:
                proposals.append(p)
        if not proposals:
            return None
        best = max(proposals, key=lambda p: p.capacity)
        cause = act.alarm_cause(best.alarm_name, best.state, best.policy.policy_name)
        desired = min(max(best.capacity, target.min_capacity), target.max_capacity)
        if best.capacity > current:
            if target.is_suspended("DynamicScalingOutSuspended"):
                return None
            if desired <= current:
                if in_out_cd and current < target.max_capacity:
                    return None
                code = act.ALREADY_AT_MAX if current >= target.max_capacity else act.ALREADY_AT_DESIRED
                self._not_scaled(target, current, best.capacity, cause, code, now)
                return None
            before = cd.to_dict()
            if not in_out_cd:
                cd.out_base = current
            cd.out_until = now + best.policy.cooldown("out")
            cd.in_until = None  # a scale-out ends a running scale-in cooldown
            decision = self._decide(target, current, desired, cause, now)
            self._cooldown_before[decision.activity_id] = before
            return decision
        if best.capacity < current:
            if target.is_suspended("DynamicScalingInSuspended"):
                return None
            if cd.in_in_cooldown(now) or in_out_cd:
                return None
            if desired >= current:
                self._not_scaled(target, current, best.capacity, cause, act.ALREADY_AT_MIN, now)
                return None
            before = cd.to_dict()
            cd.in_until = now + best.policy.cooldown("in")
            decision = self._decide(target, current, desired, cause, now)
            self._cooldown_before[decision.activity_id] = before
            return decision
        if not (in_out_cd or cd.in_in_cooldown(now)):
            self._not_scaled(target, current, best.capacity, cause, act.ALREADY_AT_DESIRED, now)
        return None

    def _tt_proposal(
        self,
        target: ScalableTarget,
        policy: ScalingPolicy,
        alarm_name: str,
        state: str,
        values: list[float],
        current: int,
        out_base: int,
    ) -> _Proposal | None:
        if state != ALARM or not values:
            return None
        tv = float(policy.config["TargetValue"])
        metric = values[-1]
        if alarm_name == policy.alarm_roles.get("high"):
            # During a scale-out cooldown the proposal is computed from the capacity before it
            # started, so only a larger scale-out than the one already made gets through.
            cap = target_tracking.desired_capacity(out_base, metric, tv)
            return _Proposal(max(cap, current), "out", policy, alarm_name, state)
        if alarm_name != policy.alarm_roles.get("low") or not policy.scale_in_enabled:
            return None
        # Scale in only when every target-tracking policy with scale-in enabled agrees.
        for other in self.policies.values():
            if other.key == target.key and other.scale_in_enabled:
                low = self.alarms.get(other.alarm_roles.get("low", ""))
                if low is None or low.state_value != ALARM:
                    return None
        cap = min(target_tracking.desired_capacity(current, metric, tv), current)
        return _Proposal(cap, "in", policy, alarm_name, state)

    def _step_proposal(
        self, policy: ScalingPolicy, alarm: Any, state: str, values: list[float], current: int, out_base: int
    ) -> _Proposal | None:
        if not values:
            return None
        cfg = policy.config
        value = step_scaling.aggregate(values, cfg.get("MetricAggregationType"))
        step = step_scaling.find_step(cfg["StepAdjustments"], value - float(alarm.spec.threshold))
        if step is None:
            return None
        raw = step_scaling.new_capacity(cfg, step, current)
        if raw > current and out_base != current and cfg["AdjustmentType"] != "ExactCapacity":
            # During a scale-out cooldown the step applies to the capacity before that scale-out,
            # so only the difference beyond it is added (+2 then +3 adds 1 more).
            raw = max(step_scaling.new_capacity(cfg, step, out_base), current)
        direction = "out" if raw > current else "in" if raw < current else "none"
        return _Proposal(max(raw, 0), direction, policy, alarm.name, state)

    def _not_scaled(
        self, target: ScalableTarget, current: int, wanted: int, cause: str, code: str, now: float
    ) -> None:
        last = self._last_not_scaled.get(target.key)
        if last is not None and last[0] == cause and last[1] == code and now - last[2] < NOT_SCALED_REPEAT_S:
            return
        self._last_not_scaled[target.key] = (cause, code, now)
        reason: dict[str, Any] = {"Code": code, "CurrentCapacity": current}
        if code == act.ALREADY_AT_MAX:
            reason["MaxCapacity"] = target.max_capacity
        elif code == act.ALREADY_AT_MIN:
            reason["MinCapacity"] = target.min_capacity
        word = act.capacity_word(target.service_namespace, target.scalable_dimension)
        self._add_activity(
            target.key,
            "Attempting to scale due to alarm triggered",
            cause,
            now,
            act.FAILED,
            end_time=now,
            status_message=f"Failed to set {word} to {wanted}",
            not_scaled_reasons=[reason],
        )


@functools.lru_cache(maxsize=4096)
def _scale_out_edge(base: int, current: int, tv: float) -> float:
    """The highest metric value whose target-tracking proposal from ``base`` stays at or below
    ``current`` (kept: quiet bands ask it at every lookahead)."""
    return _edge(lambda v: target_tracking.desired_capacity(base, v, tv) <= current, tv * current / base, -1.0)


@functools.lru_cache(maxsize=4096)
def _scale_in_edge(current: int, tv: float) -> float:
    """The lowest metric value whose target-tracking proposal from ``current`` stays at it."""
    return _edge(lambda v: target_tracking.desired_capacity(current, v, tv) >= current, tv * (current - 1) / current,
                 1.0)


def _edge(holds: Callable[[float], bool], guess: float, direction: float) -> float:
    """A value where the monotone condition ``holds``, moving from ``guess`` in ``direction`` (+1
    up, -1 down) until it does: it then holds for every value further that way."""
    v, step = guess, abs(guess) * 1e-12 + 1e-300
    while not holds(v):
        v += direction * step
        step *= 2
    return v
