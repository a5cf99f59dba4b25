"""The indexed M-out-of-N lookup (:func:`alarm_indices` + :func:`first_invoked`, what the event
skipping reads from per-traffic tables) agrees with the window scan it replaces
(:func:`first_eventful` with ``transitions=False``) on random values, rules and quiet bands."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from catkit.autoscaling.alarm_rules import ALARM, OK, AlarmSpec, alarm_indices, first_eventful, first_invoked

ASG = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:resource/sagemaker/x:policyName/p"
SNS = "arn:aws:sns:us-east-1:123456789012:topic"
OPERATORS = ["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 400),
    n=st.integers(1, 15),
    m_less=st.integers(0, 14),
    operator=st.sampled_from(OPERATORS),
    actions=st.sampled_from(["alarm", "none", "sns", "ok"]),
    band=st.sampled_from(["none", "all", "finite", "empty"]),
    quiet_for=st.one_of(st.none(), st.integers(0, 500)),
    state=st.sampled_from([OK, ALARM]),
)
def test_first_invoked_equals_the_window_scan(
    seed: int, length: int, n: int, m_less: int, operator: str, actions: str, band: str, quiet_for: int | None,
    state: str,
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.choice(rng.uniform(0, 10, 6), length + n)  # few distinct values: ties with the threshold
    threshold = float(rng.choice(values)) if rng.random() < 0.5 else float(rng.uniform(0, 10))
    spec = AlarmSpec(
        "a", "ns", "m", statistic="Average", evaluation_periods=n, datapoints_to_alarm=max(1, n - m_less),
        threshold=threshold, comparison_operator=operator,
        alarm_actions=[ASG] if actions == "alarm" else [SNS] if actions == "sns" else [],
        ok_actions=[ASG] if actions == "ok" else [],
    )
    lo = int(rng.integers(n - 1, len(values)))
    hi = int(rng.integers(lo, len(values) + 1))
    a, b = sorted(rng.uniform(0, 10, 2).tolist())
    quiet = {"none": None, "all": (-np.inf, np.inf), "finite": (a, b), "empty": (1.0, 0.0)}[band]
    scanned = first_eventful(spec, state, values, range(lo, hi), quiet, transitions=False, quiet_for=quiet_for)
    indexed = first_invoked(spec, values, alarm_indices(spec, values), lo, hi, quiet, quiet_for)
    assert indexed - lo == scanned


def test_alarm_indices_are_the_windows_reaching_m() -> None:
    spec = AlarmSpec("a", "ns", "m", statistic="Sum", evaluation_periods=3, datapoints_to_alarm=2, threshold=5.0)
    values = np.array([6.0, 1.0, 6.0, 6.0, 1.0, 1.0, 6.0, 1.0])
    # Windows ending at 2..7 hold 2, 2, 2, 1, 1, 1 values above 5.
    assert alarm_indices(spec, values).tolist() == [2, 3, 4]
    assert first_invoked(spec, values, alarm_indices(spec, values), 2, 8) == 8  # no scaling action
