"""catkit.autoscaling - Application Auto Scaling and CloudWatch alarms as a pure engine.

No I/O, no wall clock, no asyncio, no threads: every call takes ``now`` (epoch seconds), metrics
are read through a port with ``MetricStore.statistics``'s signature, and capacity is asked of the
caller. The local backend (``catkit.local.fleet.scaling_port``) and the offline simulator both
drive it, so both scale the same way.

Modules (one idea each):

* ``alarm_rules`` - :class:`AlarmSpec` and its validation, the pure M-of-N decision with
  TreatMissingData, evaluation range and cadence.
* ``alarms`` - :class:`AlarmBook` (put_alarm, delete_alarms, get, list, set_state, evaluate,
  history, pop_actions, to_dict/from_dict): state, history, Auto Scaling action repeats.
* ``targets`` / ``policies`` / ``activities`` - the stored resources and activity texts/codes.
* ``target_tracking`` - metric resolution, the AlarmHigh/AlarmLow shapes, the capacity formula.
* ``step_scaling`` - step selection, percent rounding, MinAdjustmentMagnitude, validation.
* ``schedule`` - at()/rate()/cron() with IANA time zones and Start/EndTime.
* ``engine`` - :class:`Engine`: the resources (targets, policies, scheduled actions, activities,
  cooldowns); ``decisions`` - the decision rules and ``engine_state`` - persistence (mixins of Engine).
* ``metrics_store`` - :class:`MetricStore`, the one CloudWatch-like metric store (backend,
  simulator and tests); ``metric_statistics`` - its value distribution and extended statistics.
* ``driver`` - :class:`ScalingDriver`, the one ordered step (idle zeros -> metrics -> alarms ->
  decision -> apply -> settle) over a :class:`FleetPort`.

Engine API (snake_case mirrors of the AAS calls; errors are :class:`ScalingError` with AAS codes)::

    eng = Engine(alarms=AlarmBook(region, account), region=..., account_id=...,
                 id_factory=None,            # default: deterministic UUIDs (persisted counter)
                 is_high_resolution=None)    # (namespace, name, dims) -> bool, for custom metrics
    eng.register_scalable_target(ns, resource_id, dimension, now, min_capacity=, max_capacity=,
                                 suspended_state=, role_arn=) -> ScalableTarget
    eng.deregister_scalable_target(ns, resource_id, dimension, now)
    eng.describe_scalable_targets(ns, resource_ids=None, scalable_dimension=None) -> [ScalableTarget]
    eng.put_scaling_policy(name, ns, resource_id, dimension, now, policy_type=,
                           target_tracking_config=, step_scaling_config=) -> PolicyResult
                           # .policy_arn, .alarms [{"AlarmName","AlarmARN"}], .alarm_specs
    eng.delete_scaling_policy(name, ns, resource_id, dimension, now)
    eng.describe_scaling_policies(ns, policy_names=None, resource_id=None, scalable_dimension=None)
    eng.put_scheduled_action(name, ns, resource_id, dimension, now, schedule=, timezone=,
                             start_time=, end_time=, min_capacity=, max_capacity=) -> ScheduledAction
    eng.delete_scheduled_action(name, ns, resource_id, dimension)
    eng.describe_scheduled_actions(ns, names=None, resource_id=None, scalable_dimension=None)
    eng.describe_scaling_activities(ns, resource_id=None, scalable_dimension=None,
                                    include_not_scaled=False) -> [Activity]   # newest first
    decisions = eng.decide(now, current_capacity)          # current_capacity(resource_id) -> int|None
    decisions = eng.tick(now, metrics, current_capacity)   # alarms.evaluate(now, metrics) + decide
    eng.accepted(decision.activity_id, now)                # Pending -> InProgress
    eng.complete(decision.activity_id, ok, message, now)   # -> Successful / Failed (+ reason)
    eng.to_dict() / Engine.from_dict(d, alarms=book)       # JSON-compatible state

Resources expose ``to_api()`` giving botocore-shaped Describe* items (times as epoch floats).
"""

from __future__ import annotations

from catkit.autoscaling.activities import Activity
from catkit.autoscaling.alarms import AlarmBook, AlarmSpec, AlarmSpecError, AlarmTransition, MetricReader
from catkit.autoscaling.driver import FleetPort, ScalingDriver, ScalingRejected, VariantStatus
from catkit.autoscaling.engine import Decision, Engine, PolicyResult
from catkit.autoscaling.errors import ScalingError
from catkit.autoscaling.metrics_store import MetricStore
from catkit.autoscaling.policies import ScalingPolicy, ScheduledAction
from catkit.autoscaling.targets import ScalableTarget

__all__ = [
    "Activity",
    "AlarmBook",
    "AlarmSpec",
    "AlarmSpecError",
    "AlarmTransition",
    "Decision",
    "Engine",
    "FleetPort",
    "MetricReader",
    "MetricStore",
    "PolicyResult",
    "ScalableTarget",
    "ScalingDriver",
    "ScalingError",
    "ScalingPolicy",
    "ScalingRejected",
    "ScheduledAction",
    "VariantStatus",
]
