"""What the scaling engine holds, and its JSON-compatible form.

:class:`EngineState` is the base of :class:`catkit.autoscaling.Engine` (through
:class:`catkit.autoscaling.decisions.DecisionRules`): its constructor makes the resources (targets,
policies, scheduled actions, cooldowns, activities) and the engine's bookkeeping (id counter,
pending activities, cooldown snapshots, the not-scaled throttle, parsed schedules);
:meth:`EngineState.to_dict` writes them and :meth:`EngineState.from_dict` builds an engine from
them. The alarm book is persisted by its owner (``AlarmBook.to_dict``). Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

from catkit.autoscaling import activities as act
from catkit.autoscaling.alarms import AlarmBook
from catkit.autoscaling.policies import Cooldowns, ScalingPolicy, ScheduledAction
from catkit.autoscaling.targets import ScalableTarget, TargetKey

if TYPE_CHECKING:
    from catkit.autoscaling.schedule import Schedule


class EngineState:
    """The engine's resources and bookkeeping (see the module docstring)."""

    def __init__(
        self,
        alarms: AlarmBook | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        id_factory: Callable[[], str] | None = None,
        is_high_resolution: Callable[[str, str, Mapping[str, str]], bool] | None = None,
    ) -> None:
        self.alarms = alarms if alarms is not None else AlarmBook(region, account_id)
        self.region = region
        self.account_id = account_id
        self._id_factory = id_factory
        self.is_high_resolution = is_high_resolution
        self._counter = 0
        self.targets: dict[TargetKey, ScalableTarget] = {}
        self.policies: dict[tuple[TargetKey, str], ScalingPolicy] = {}
        self.scheduled: dict[tuple[TargetKey, str], ScheduledAction] = {}
        self.cooldowns: dict[TargetKey, Cooldowns] = {}
        self.pending: dict[TargetKey, str] = {}
        self._activities: deque[act.Activity] = deque()
        self._activity_by_id: dict[str, act.Activity] = {}
        self._cooldown_before: dict[str, dict[str, Any]] = {}
        self._last_not_scaled: dict[TargetKey, tuple[str, str, float]] = {}
        self._policy_by_arn: dict[str, tuple[TargetKey, str]] = {}
        self._schedules: dict[tuple[TargetKey, str], Schedule] = {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible state (the alarm book is persisted by its owner, see ``AlarmBook.to_dict``)."""
        return {
            "version": 1,
            "region": self.region,
            "account_id": self.account_id,
            "counter": self._counter,
            "targets": [t.to_dict() for t in self.targets.values()],
            "policies": [p.to_dict() for p in self.policies.values()],
            "scheduled": [a.to_dict() for a in self.scheduled.values()],
            "cooldowns": [[list(k), c.to_dict()] for k, c in self.cooldowns.items()],
            "pending": [[list(k), v] for k, v in self.pending.items()],
            "activities": [a.to_dict() for a in self._activities],
            "cooldown_before": self._cooldown_before,
            "last_not_scaled": [[list(k), list(v)] for k, v in self._last_not_scaled.items()],
        }

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        alarms: AlarmBook | None = None,
        id_factory: Callable[[], str] | None = None,
        is_high_resolution: Callable[[str, str, Mapping[str, str]], bool] | None = None,
    ) -> Self:
        """An engine with the state ``d`` (from :meth:`to_dict`), on the alarm book ``alarms``."""
        eng = cls(
            alarms,
            d.get("region", "us-east-1"),
            d.get("account_id", "123456789012"),
            id_factory,
            is_high_resolution,
        )
        eng._counter = int(d.get("counter", 0))
        for t in d.get("targets", []):
            target = ScalableTarget.from_dict(t)
            eng.targets[target.key] = target
        for p in d.get("policies", []):
            policy = ScalingPolicy.from_dict(p)
            eng.policies[(policy.key, policy.policy_name)] = policy
            eng._policy_by_arn[policy.policy_arn] = (policy.key, policy.policy_name)
        for a in d.get("scheduled", []):
            action = ScheduledAction.from_dict(a)
            eng.scheduled[(action.key, action.name)] = action
        for k, c in d.get("cooldowns", []):
            eng.cooldowns[tuple(k)] = Cooldowns.from_dict(c)
        for k, v in d.get("pending", []):
            eng.pending[tuple(k)] = v
        for a in d.get("activities", []):
            activity = act.Activity.from_dict(a)
            eng._activities.append(activity)
            eng._activity_by_id[activity.activity_id] = activity
        eng._cooldown_before = dict(d.get("cooldown_before", {}))
        for k, v in d.get("last_not_scaled", []):
            eng._last_not_scaled[tuple(k)] = (v[0], v[1], float(v[2]))
        return eng
