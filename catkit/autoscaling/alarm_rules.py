"""Alarm rules: what an alarm is (:class:`AlarmSpec`, validated like PutMetricAlarm) and the pure
M-out-of-N decision over one evaluation range (:func:`decide`, :func:`decide_state`).

No storage, no clock, no metric reading: :class:`catkit.autoscaling.alarms.AlarmBook` reads the
datapoints and keeps state, history and actions; this module only says which state the datapoints
call for, and why (CloudWatch's state-reason wording). Rules (AWS CloudWatch user guide,
"Evaluating an alarm" and "Configuring how CloudWatch alarms treat missing data"):

* M out of N: the alarm goes to ALARM when at least ``datapoints_to_alarm`` (M) of the last
  ``evaluation_periods`` (N) datapoints breach, else OK.
* Evaluation range: CloudWatch retrieves more datapoints than N. ASSUMPTION (AWS does not publish
  the number; its documentation table uses 5 datapoints for N=3): ``N + max(2, N // 3)`` periods,
  see :func:`evaluation_range`.
* If at least N real datapoints exist in the range, the most recent N real ones are evaluated and
  TreatMissingData is not used. If fewer, missing datapoints are filled per TreatMissingData
  (``breaching``/``notBreaching``) as few times as possible; with ``missing``/``ignore`` only real
  datapoints count, plus the "avoid premature transition" rule: the alarm goes to ALARM when the
  oldest breaching datapoint among the last N is at least M periods old and every more recent real
  datapoint breaches (``ignore`` keeps the current state in that case instead).
* No real datapoint in the range: ``missing`` -> INSUFFICIENT_DATA, ``breaching`` -> ALARM,
  ``notBreaching`` -> OK, ``ignore`` -> keep the current state.
* Evaluation cadence (:func:`evaluation_interval`): once a minute for periods of 60 s or more,
  every 10 s for high-resolution periods. Auto Scaling actions (:func:`is_autoscaling_action`)
  repeat while the alarm stays in its state (:func:`action_repeat_interval`).
* Statistics: SampleCount, Average, Sum, Minimum, Maximum, or an extended statistic (``p99``,
  ``p99.9``, ``tm90`` ...).

:func:`first_eventful` applies the same M-out-of-N rule to many evaluations at once over
forecast values, to find the first evaluation that can change anything (the scaling driver skips
the others); :func:`alarm_indices` and :func:`first_invoked` answer the same for values without
gaps from the indices where the rule holds, built once per values and rule and then searched.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from catkit.timeconv import from_epoch

__all__ = [
    "ALARM",
    "COMPARISONS",
    "INSUFFICIENT_DATA",
    "OK",
    "STATES",
    "STATISTICS",
    "TREAT_MISSING",
    "AlarmSpec",
    "AlarmSpecError",
    "Outcome",
    "action_repeat_interval",
    "alarm_indices",
    "decide",
    "decide_state",
    "evaluation_interval",
    "evaluation_range",
    "first_eventful",
    "first_invoked",
    "has_autoscaling_action",
    "is_autoscaling_action",
    "prefix_counts",
]

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
STATES = (OK, ALARM, INSUFFICIENT_DATA)

TREAT_MISSING = ("missing", "notBreaching", "breaching", "ignore")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISONS: dict[str, Callable[[Any, float], Any]] = {  # floats or arrays (the operator module: no Python frames)
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
# Words CloudWatch uses in state reasons ("were greater than the threshold").
_COMPARISON_WORDS = {
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "GreaterThanThreshold": "greater than",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
_EXTENDED_STAT = re.compile(r"^((p|tm|wm|tc|ts)\d{1,2}(\.\d+)?|p100|(p|tm|wm|tc|ts|pr)\(.+\))$", re.I)
_AUTOSCALING_ARN = re.compile(r"^arn:[^:]+:autoscaling:")


class AlarmSpecError(ValueError):
    """An alarm definition CloudWatch would reject; the message says what to change."""


@dataclass
class AlarmSpec:
    """PutMetricAlarm parameters in snake_case."""

    alarm_name: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    threshold: float = 0.0
    comparison_operator: str = "GreaterThanThreshold"
    treat_missing_data: str = "missing"
    alarm_actions: list[str] = field(default_factory=list)
    ok_actions: list[str] = field(default_factory=list)
    insufficient_data_actions: list[str] = field(default_factory=list)
    actions_enabled: bool = True
    alarm_description: str | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        self.dimensions = dict(self.dimensions or {})
        self.alarm_actions = list(self.alarm_actions or [])
        self.ok_actions = list(self.ok_actions or [])
        self.insufficient_data_actions = list(self.insufficient_data_actions or [])
        if self.treat_missing_data is None:
            self.treat_missing_data = "missing"
        self.validate()

    @property
    def m(self) -> int:
        """Datapoints to alarm (defaults to evaluation periods)."""
        return self.datapoints_to_alarm or self.evaluation_periods

    @property
    def stat_name(self) -> str:
        return self.statistic or self.extended_statistic or ""

    def validate(self) -> None:
        """Raise :class:`AlarmSpecError` naming the offending field, as PutMetricAlarm does."""
        if not self.alarm_name:
            raise AlarmSpecError("AlarmName must not be empty.")
        if (self.statistic is None) == (self.extended_statistic is None):
            raise AlarmSpecError(
                "Exactly one of Statistic or ExtendedStatistic must be specified "
                f"(got Statistic={self.statistic!r}, ExtendedStatistic={self.extended_statistic!r})."
            )
        if self.statistic is not None and self.statistic not in STATISTICS:
            raise AlarmSpecError(f"Statistic must be one of {', '.join(STATISTICS)}; got {self.statistic!r}.")
        if self.extended_statistic is not None and not _EXTENDED_STAT.match(self.extended_statistic):
            raise AlarmSpecError(
                f"ExtendedStatistic {self.extended_statistic!r} is not a valid percentile or trimmed "
                "statistic (examples: p99, p99.9, tm90)."
            )
        if self.period not in (10, 20, 30) and (self.period < 60 or self.period % 60):
            raise AlarmSpecError(f"Period must be 10, 20, 30 or a multiple of 60 seconds; got {self.period}.")
        if self.evaluation_periods < 1:
            raise AlarmSpecError(f"EvaluationPeriods must be at least 1; got {self.evaluation_periods}.")
        if self.period * self.evaluation_periods > 7 * 24 * 3600:
            raise AlarmSpecError("Period * EvaluationPeriods must not exceed one week (604800 seconds).")
        if (
            self.datapoints_to_alarm is not None
            and not 1 <= self.datapoints_to_alarm <= self.evaluation_periods
        ):
            raise AlarmSpecError(
                f"DatapointsToAlarm must be between 1 and EvaluationPeriods ({self.evaluation_periods}); "
                f"got {self.datapoints_to_alarm}."
            )
        if self.comparison_operator not in COMPARISONS:
            raise AlarmSpecError(
                f"ComparisonOperator {self.comparison_operator!r} is not supported for static-threshold "
                f"alarms; use one of {', '.join(COMPARISONS)}."
            )
        if self.treat_missing_data not in TREAT_MISSING:
            raise AlarmSpecError(
                f"TreatMissingData must be one of {', '.join(TREAT_MISSING)}; got {self.treat_missing_data!r}."
            )
        if not math.isfinite(float(self.threshold)):
            raise AlarmSpecError(f"Threshold must be a finite number; got {self.threshold!r}.")

    def breaches(self, value: float) -> bool:
        return COMPARISONS[self.comparison_operator](value, float(self.threshold))

    def actions_for(self, state: str) -> list[str]:
        if not self.actions_enabled:
            return []
        if state == ALARM:
            return self.alarm_actions
        return self.ok_actions if state == OK else self.insufficient_data_actions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlarmSpec:
        return cls(**dict(d))



def evaluation_range(evaluation_periods: int) -> int:
    """How many periods CloudWatch looks back (ASSUMPTION, see module docstring)."""
    return evaluation_periods + max(2, evaluation_periods // 3)


def evaluation_interval(period: int) -> int:
    """How often an alarm is evaluated: each minute, or every 10 s for high-resolution periods."""
    return 60 if period >= 60 else 10


def action_repeat_interval(period: int) -> int:
    """Auto Scaling actions repeat once a minute, every period for high-resolution alarms."""
    return min(60, period)


@functools.lru_cache(maxsize=1024)
def is_autoscaling_action(arn: str) -> bool:
    """True for Application/EC2 Auto Scaling policy ARNs (``arn:<partition>:autoscaling:...``)."""
    return bool(_AUTOSCALING_ARN.match(arn))


def has_autoscaling_action(spec: AlarmSpec, state: str) -> bool:
    """Whether the alarm invokes an Auto Scaling action in ``state`` (those repeat while it stays)."""
    return any(map(is_autoscaling_action, spec.actions_for(state)))


@functools.lru_cache(maxsize=4096)
def _fmt_time(ts: float) -> str:
    return from_epoch(ts).strftime("%d/%m/%y %H:%M:%S")


def _num(v: float) -> str:
    return repr(float(v))


@dataclass
class Outcome:
    """What an evaluation calls for: a state (None keeps the current one) and a lazy reason."""

    state: str | None  # None = keep the current state
    reason: Callable[[], str]  # rendered only when the state changes (cheap evaluations)


def decide_state(spec: AlarmSpec, values: Sequence[float | None], current: str) -> tuple[str | None, str]:
    """Pure M-of-N decision over one evaluation range (oldest first, ``None`` = missing).

    Returns ``(new_state or None to keep the current state, reason)``. Exposed for table tests.
    """
    o = decide(spec, values, current, [0.0] * len(values))
    return o.state, o.reason()


def _keep() -> str:
    return ""


def decide(
    spec: AlarmSpec, values: Sequence[float | None], current: str, stamps: Sequence[float]
) -> Outcome:
    """The M-of-N decision over one evaluation range: ``values`` oldest first (None = missing),
    ``stamps`` their period starts (epoch seconds, for the reason text), ``current`` the state now."""
    n, m = spec.evaluation_periods, spec.m
    tmd = spec.treat_missing_data
    real = [(i, v) for i, v in enumerate(values) if v is not None]
    word = _COMPARISON_WORDS[spec.comparison_operator]

    def listed(points: Sequence[tuple[int, float]]) -> str:
        return ", ".join(f"{_num(v)} ({_fmt_time(stamps[i])})" for i, v in reversed(points))

    if not real:
        plural = "s" if n > 1 else ""
        detail = (
            f"no datapoints were received for {n} period{plural} and {n} missing datapoint{plural} "
            f"{'were' if n > 1 else 'was'} treated as"
        )
        if tmd == "missing":
            return Outcome(INSUFFICIENT_DATA, lambda: f"Insufficient Data: {detail} [Missing].")
        if tmd == "breaching":
            return Outcome(ALARM, lambda: f"Threshold Crossed: {detail} [Breaching].")
        if tmd == "notBreaching":
            return Outcome(OK, lambda: f"Threshold Crossed: {detail} [NonBreaching].")
        return Outcome(None, _keep)

    if len(real) >= n:
        window = real[-n:]
        fills = 0
    elif tmd in ("breaching", "notBreaching"):
        window = real
        fills = n - len(real)
    else:
        window = real
        fills = 0
        # Avoid premature transition: the oldest breaching datapoint among the last N periods is at
        # least M periods old and every more recent real datapoint breaches -> ALARM.
        last_n = values[-n:]
        breach_pos = [k for k, v in enumerate(last_n) if v is not None and spec.breaches(v)]
        if breach_pos and len(last_n) - breach_pos[0] >= m:
            later = [v for v in last_n[breach_pos[0] :] if v is not None]
            if all(spec.breaches(v) for v in later):
                if tmd == "ignore":
                    return Outcome(None, _keep)
                k = len(later)
                return Outcome(
                    ALARM,
                    lambda: (
                        f"Threshold Crossed: {k} datapoint{'s' if k > 1 else ''} [{listed(real[-n:])}] "
                        f"{'were' if k > 1 else 'was'} {word} the threshold ({_num(spec.threshold)}) and the "
                        f"remaining datapoints were missing (minimum {m} datapoint{'s' if m > 1 else ''} for "
                        f"{current} -> ALARM transition)."
                    ),
                )

    compare, threshold = COMPARISONS[spec.comparison_operator], float(spec.threshold)
    breaching = sum([compare(v, threshold) for _, v in window])  # True counts 1
    if tmd == "breaching":
        breaching += fills
    if (
        tmd in ("missing", "ignore")
        and len(window) < n
        and m > breaching
        and breaching + n - len(window) >= m
    ):
        # Too few real datapoints to decide either way (the missing ones could still make M):
        # ASSUMPTION - keep the current state until more data arrives.
        return Outcome(None, _keep)
    total = len(window) + fills
    if breaching >= m:
        new, count, verb = ALARM, breaching, word
    else:
        new, count, verb = OK, total - breaching, f"not {word}"
    need = m if new == ALARM else total - m + 1

    def reason() -> str:
        return (
            f"Threshold Crossed: {count} out of the last {total} datapoints [{listed(window)}] "
            f"{'was' if count == 1 else 'were'} {verb} the threshold ({_num(spec.threshold)}) "
            f"(minimum {need} datapoint{'s' if need != 1 else ''} for {current} -> {new} transition)."
        )

    return Outcome(new, reason)


def prefix_counts(spec: AlarmSpec, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running counts of present and of breaching datapoints over ``values`` (one more element
    than ``values``, starting at 0): what :func:`first_eventful` windows over."""
    v = np.asarray(values, dtype=np.float64)
    cum_real, cum_breach = np.zeros((2, len(v) + 1), dtype=np.int64)
    np.cumsum(v == v, out=cum_real[1:])  # NaN (no datapoint) is the only value unequal to itself
    # Every comparison with NaN is False: a missing datapoint never breaches.
    np.cumsum(COMPARISONS[spec.comparison_operator](v, float(spec.threshold)), out=cum_breach[1:])
    return cum_real, cum_breach


def first_eventful(
    spec: AlarmSpec,
    state: str,
    values: np.ndarray,
    newest: np.ndarray,
    quiet: tuple[float, float] | None = None,
    transitions: bool = True,
    counts: tuple[np.ndarray, np.ndarray] | None = None,
    quiet_for: int | None = None,
) -> int:
    """The first of a run of evaluations that can change anything, ``len(newest)`` if none can.

    ``values``: the metric per period, oldest first (NaN: no datapoint); evaluation ``j`` reads the
    periods up to ``values[newest[j]]`` (a ``range`` of consecutive periods is read by slicing). ``state``: the alarm's state before the run. An evaluation
    whose last N datapoints are all present (then :func:`decide` takes exactly them) is uneventful
    when it keeps the state without invoking an Auto Scaling action - or, in ALARM, invokes one while
    its newest datapoint lies in ``quiet`` (``(low, high)``, inclusive: values for which the engine
    says the invocation decides nothing; None = every invocation counts). Missing datapoints make an
    evaluation eventful (the treat-missing rules are not worth predicting).

    ``transitions=False`` also counts state changes as uneventful unless they invoke an action
    outside ``quiet``: the alarm then keeps its old state until its next evaluation taken. Such a
    run still stops at the last state change before an evaluation with missing data (whose outcome
    can depend on the state it starts from), so that state is exact. ``counts``: the
    :func:`prefix_counts` of ``values`` when the caller keeps them. ``quiet_for``: ``quiet`` holds
    for the first this many evaluations only (None: for all).
    """
    if not len(newest):
        return 0
    if has_autoscaling_action(spec, OK):
        return 0  # OK-state Auto Scaling actions repeat: not predicted
    if transitions and state not in (OK, ALARM):
        return 0
    n = spec.evaluation_periods
    v = values
    cum_real, cum_breach = counts if counts is not None else prefix_counts(spec, values)
    if isinstance(newest, range) and newest.step == 1 and newest.start + 1 >= n:
        # Consecutive periods, every window whole: slices instead of gathers.
        a, b = newest.start + 1, newest.stop + 1
        if (not transitions and quiet is not None and quiet[0] == -math.inf and quiet[1] == math.inf
                and (quiet_for is None or quiet_for >= len(newest)) and cum_real[b - 1] - cum_real[a - n] == b - 1 - (a - n)):
            return len(newest)  # every datapoint present and every invocation quiet: nothing to see
        complete = cum_real[a:b] - cum_real[a - n : b - n] == n
        alarm = (cum_breach[a:b] - cum_breach[a - n : b - n]) >= spec.m
        latest_values = v[a - 1 : b - 1]
    else:
        hi = np.asarray(newest, dtype=np.int64) + 1
        latest_values = None
        lo = np.maximum(hi - n, 0)
        complete = (hi >= n) & (cum_real[hi] - cum_real[lo] == n)
        alarm = (cum_breach[hi] - cum_breach[lo]) >= spec.m
    invoked = alarm if has_autoscaling_action(spec, ALARM) else np.zeros_like(alarm)
    if quiet is not None and invoked.any():
        latest = v[hi - 1] if latest_values is None else latest_values
        loud = (latest < quiet[0]) | (latest > quiet[1])
        if quiet_for is not None:
            loud[quiet_for:] = True
        invoked = invoked & loud  # not in place: invoked may be alarm itself
    eventful = ~complete | invoked
    if transitions:
        eventful |= alarm != (state == ALARM)
    hits = np.flatnonzero(eventful)
    first = int(hits[0]) if len(hits) else len(newest)
    if not transitions and first < len(newest) and not complete[first]:
        # The state the evaluation with missing data starts from must be exact: stop at the last
        # change before it (if any), after which the alarm's state is the one it would have.
        states = np.concatenate(([state == ALARM], alarm[:first])) if state in (OK, ALARM) else None
        if states is None:
            return 0
        changes = np.flatnonzero(states[1:] != states[:-1])
        if len(changes):
            return int(changes[-1])
    return first


def alarm_indices(spec: AlarmSpec, values: np.ndarray) -> np.ndarray:
    """The indices ``j >= N - 1`` of ``values`` (every datapoint present: no NaN) at which an
    evaluation reading ``values[j - N + 1 : j + 1]`` finds at least M of N breaching, ascending
    (int32): where :func:`first_eventful` sees ``alarm``, for every window at once."""
    n = spec.evaluation_periods
    breach = COMPARISONS[spec.comparison_operator](np.asarray(values, dtype=np.float64), float(spec.threshold))
    cum = np.zeros(len(breach) + 1, dtype=np.int32)
    np.cumsum(breach, out=cum[1:])
    return (np.flatnonzero(cum[n:] - cum[:-n] >= spec.m) + (n - 1)).astype(np.int32)


def first_invoked(
    spec: AlarmSpec,
    values: np.ndarray,
    alarmed: np.ndarray,
    lo: int,
    hi: int,
    quiet: tuple[float, float] | None = None,
    quiet_for: int | None = None,
    acts: tuple[bool, bool] | None = None,
) -> int:
    """:func:`first_eventful` with ``transitions=False`` for the evaluations reading periods up
    to ``lo, lo + 1, ..., hi - 1`` of ``values`` (``lo >= N - 1``; every datapoint present), as the
    index of the newest period the first eventful one reads (``hi`` if none). ``alarmed``: the
    :func:`alarm_indices` of ``values`` for ``spec``; ``quiet``, ``quiet_for`` as there (counted in
    evaluations from ``lo``). A binary search and a look at the values of the alarmed evaluations
    from there instead of counting every window. ``acts``: the caller's ``(has_autoscaling_action(spec,
    ALARM), has_autoscaling_action(spec, OK))`` when it keeps them."""
    on_alarm, on_ok = acts if acts is not None else (has_autoscaling_action(spec, ALARM),
                                                     has_autoscaling_action(spec, OK))
    if on_ok:
        return lo  # as first_eventful: OK-state actions are not predicted
    if not on_alarm:
        return hi  # windows all whole: no evaluation invokes anything
    if quiet is not None and quiet[0] == -math.inf and quiet[1] == math.inf and (
            quiet_for is None or quiet_for >= hi - lo):
        return hi  # every invocation quiet
    a, b = alarmed.searchsorted(np.array((lo, hi), dtype=alarmed.dtype)).tolist()  # no cast of alarmed
    if a == b or quiet is None:
        return int(alarmed[a]) if a < b else hi
    j = int(alarmed[a])  # the first alarmed evaluation, in plain Python: often loud already
    latest = float(values[j])
    if latest < quiet[0] or latest > quiet[1] or (quiet_for is not None and j >= lo + quiet_for):
        return j
    size = 64  # alarmed evaluations looked at per round, growing: the first loud one is usually near
    while a < b:
        at = alarmed[a : min(b, a + size)]
        latest = values[at]
        loud = (latest < quiet[0]) | (latest > quiet[1])
        if quiet_for is not None:
            loud |= at >= lo + quiet_for
        hits = np.flatnonzero(loud)
        if len(hits):
            return int(at[hits[0]])
        a, size = a + size, size * 4
    return hi
