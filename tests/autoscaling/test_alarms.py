"""Alarm evaluation rules: M of N, missing data, evaluation range, cadence, actions, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from catkit.autoscaling.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmBook,
    AlarmSpec,
    AlarmSpecError,
    decide_state,
    evaluation_range,
)
from catkit.autoscaling.metrics_store import MetricStore

T0 = 1_700_000_040.0 - (1_700_000_040.0 % 60)  # a minute boundary
NS, NAME, DIMS = (
    "AWS/SageMaker",
    "InvocationsPerInstance",
    {"EndpointName": "ep", "VariantName": "AllTraffic"},
)
ASG = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:resource/sagemaker/x:policyName/p"


def spec(**kw) -> AlarmSpec:
    base = dict(
        alarm_name="a",
        namespace=NS,
        metric_name=NAME,
        dimensions=DIMS,
        statistic="Sum",
        period=60,
        evaluation_periods=3,
        threshold=10.0,
        comparison_operator="GreaterThanThreshold",
    )
    base.update(kw)
    return AlarmSpec(**base)


X, G, _ = 20.0, 0.0, None  # breaching, not breaching, missing (threshold 10, GreaterThan)

# The AWS documentation table for a 3-of-3 alarm (evaluation range 5), oldest first.
DOC_TABLE = [
    # datapoints          missing  ignore  breaching  notBreaching   (None = keep current state)
    ([G, _, X, _, X], OK, OK, OK, OK),
    ([G, _, G, _, G], OK, OK, OK, OK),
    ([G, _, _, _, _], OK, OK, OK, OK),
    ([_, _, _, _, _], INSUFFICIENT_DATA, None, ALARM, OK),
    ([G, X, X, _, X], ALARM, ALARM, ALARM, ALARM),
    ([_, _, X, _, _], ALARM, None, ALARM, OK),
]


@pytest.mark.parametrize("values,missing,ignore,breaching,not_breaching", DOC_TABLE)
def test_missing_data_table(values, missing, ignore, breaching, not_breaching):
    for tmd, expected in [
        ("missing", missing),
        ("ignore", ignore),
        ("breaching", breaching),
        ("notBreaching", not_breaching),
    ]:
        state, _reason = decide_state(spec(treat_missing_data=tmd), values, OK)
        assert state == expected, (values, tmd)


@pytest.mark.parametrize(
    "values,m,n,expected",
    [
        ([X, X, G, X, X], 2, 3, ALARM),  # last 3: G X X -> 2 breaching
        ([X, X, X, G, G], 2, 3, OK),  # last 3: X G G
        ([X, G, X, G, X], 3, 3, OK),
        ([G, X, X, X, G, X, G], 3, 5, ALARM),
    ],
)
def test_m_of_n(values, m, n, expected):
    state, _ = decide_state(spec(evaluation_periods=n, datapoints_to_alarm=m), values, OK)
    assert state == expected


@pytest.mark.parametrize(
    "op,value,expected",
    [
        ("GreaterThanThreshold", 10.0, OK),
        ("GreaterThanThreshold", 10.5, ALARM),
        ("GreaterThanOrEqualToThreshold", 10.0, ALARM),
        ("LessThanThreshold", 10.0, OK),
        ("LessThanThreshold", 9.0, ALARM),
        ("LessThanOrEqualToThreshold", 10.0, ALARM),
    ],
)
def test_comparison_operators(op, value, expected):
    state, _ = decide_state(spec(comparison_operator=op, evaluation_periods=1), [value], OK)
    assert state == expected


def test_evaluation_range_looks_back_further_than_n():
    assert evaluation_range(3) == 5
    assert evaluation_range(15) == 20


@pytest.mark.parametrize(
    "kw,word",
    [
        (dict(statistic=None), "Statistic"),
        (dict(extended_statistic="p99"), "Exactly one"),
        (dict(period=45), "Period"),
        (dict(datapoints_to_alarm=4), "DatapointsToAlarm"),
        (dict(comparison_operator="LessThanLowerThreshold"), "ComparisonOperator"),
        (dict(treat_missing_data="zero"), "TreatMissingData"),
        (dict(statistic="Median"), "Statistic"),
    ],
)
def test_invalid_specs_are_rejected_with_the_field_named(kw, word):
    with pytest.raises(AlarmSpecError, match=word):
        spec(**kw)


def feed(metrics: MetricStore, minute: int, value: float) -> None:
    metrics.record(NS, NAME, DIMS, value, T0 + minute * 60 + 5)


def test_too_few_real_datapoints_keep_the_state_until_they_can_decide():
    assert decide_state(spec(), [_, _, _, X, X], INSUFFICIENT_DATA)[0] is None
    assert decide_state(spec(), [_, _, _, G, X], INSUFFICIENT_DATA)[0] == OK


def test_book_goes_to_alarm_after_three_breaching_minutes_and_records_history():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(alarm_actions=["arn:aws:sns:us-east-1:123456789012:t"]), T0)
    assert book.get("a").state_value == INSUFFICIENT_DATA
    for minute in range(3):
        feed(m, minute, 30)
    # At T0+179 the third minute is still running, so it is not evaluated: 2 real datapoints.
    assert book.evaluate(T0 + 179, m) == []
    assert book.get("a").state_value == INSUFFICIENT_DATA
    tr = book.evaluate(T0 + 180, m)
    assert book.get("a").state_value == ALARM
    assert [(t.old_state, t.new_state, t.repeat) for t in tr] == [(INSUFFICIENT_DATA, ALARM, False)]
    assert tr[0].actions == ["arn:aws:sns:us-east-1:123456789012:t"]
    assert book.get("a").state_reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints [30.0 (")
    assert "were greater than the threshold (10.0)" in book.get("a").state_reason
    data = json.loads(book.get("a").state_reason_data)
    assert data["recentDatapoints"] == [30.0, 30.0, 30.0] and data["period"] == 60
    hist = book.history("a", item_type="StateUpdate")
    assert hist[0].summary == f"Alarm updated from {INSUFFICIENT_DATA} to {ALARM}"
    assert json.loads(hist[0].data)["newState"]["stateValue"] == ALARM


def test_evaluation_is_once_per_minute_and_idempotent():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1), T0)
    feed(m, 0, 30)
    calls = []

    class Counting:
        def statistics(self, *a):
            calls.append(a)
            return m.statistics(*a)

    book.evaluate(T0 + 60, Counting())
    book.evaluate(T0 + 60, Counting())
    book.evaluate(T0 + 110, Counting())
    assert len(calls) == 1
    book.evaluate(T0 + 120, Counting())
    assert len(calls) == 2


def test_high_resolution_alarm_is_evaluated_every_10_seconds():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(period=10, evaluation_periods=3), T0)
    for k in range(3):
        m.record(NS, NAME, DIMS, 50, T0 + k * 10 + 1, storage_resolution=1)
    book.evaluate(T0 + 20, m)
    assert book.get("a").state_value == INSUFFICIENT_DATA
    book.evaluate(T0 + 30, m)
    assert book.get("a").state_value == ALARM


def test_autoscaling_actions_repeat_every_minute_while_in_alarm_but_sns_does_not():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1, alarm_actions=[ASG, "arn:aws:sns:us-east-1:1:t"]), T0)
    for minute in range(5):
        feed(m, minute, 30)
    first = book.evaluate(T0 + 60, m)
    assert first[0].actions == [ASG, "arn:aws:sns:us-east-1:1:t"] and not first[0].repeat
    popped = book.pop_actions(lambda arn: arn.startswith("arn:aws:autoscaling:"))
    assert [(p.action, p.state, p.timestamp) for p in popped] == [(ASG, ALARM, T0 + 60)]
    assert book.pop_actions(lambda arn: arn.startswith("arn:aws:autoscaling:")) == []
    again = book.evaluate(T0 + 120, m)
    assert [(t.repeat, t.actions) for t in again] == [(True, [ASG])]
    assert book.pop_actions(lambda a: a == ASG)[0].timestamp == T0 + 120


def test_high_resolution_autoscaling_action_repeats_every_period():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(period=10, evaluation_periods=1, alarm_actions=[ASG]), T0)
    for k in range(4):
        m.record(NS, NAME, DIMS, 50, T0 + k * 10 + 1, storage_resolution=1)
    times = []
    for k in range(1, 5):
        times += [t.timestamp for t in book.evaluate(T0 + k * 10, m)]
    assert times == [T0 + 10, T0 + 20, T0 + 30, T0 + 40]


def test_actions_disabled_fire_nothing():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1, alarm_actions=[ASG], actions_enabled=False), T0)
    feed(m, 0, 30)
    tr = book.evaluate(T0 + 60, m)
    assert tr[0].actions == [] and book.pop_actions(lambda a: True) == []


@pytest.mark.parametrize("stat,expected_state", [("p90", ALARM), ("p50", OK)])
def test_percentile_statistic(stat, expected_state):
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(statistic=None, extended_statistic=stat, evaluation_periods=1), T0)
    for v in [1, 1, 1, 1, 1, 1, 1, 1, 100, 100]:
        m.record(NS, NAME, DIMS, v, T0 + 3)
    book.evaluate(T0 + 60, m)
    assert book.get("a").state_value == expected_state


def test_set_state_is_overridden_by_next_evaluation():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1), T0)
    feed(m, 0, 1)
    book.evaluate(T0 + 60, m)
    assert book.get("a").state_value == OK
    tr = book.set_state("a", ALARM, "testing", T0 + 70)
    assert tr is not None and book.get("a").state_reason == "testing"
    book.evaluate(T0 + 120, m)  # minute 1 has no data; minute 0 is still in the range
    assert book.get("a").state_value == OK


def test_update_keeps_state_and_delete_keeps_history_and_list_filters():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1, alarm_actions=[ASG]), T0)
    book.put_alarm(spec(alarm_name="b", evaluation_periods=1), T0)
    feed(m, 0, 30)
    book.evaluate(T0 + 60, m)
    book.put_alarm(spec(evaluation_periods=1, threshold=5, alarm_actions=[ASG]), T0 + 61)
    assert book.get("a").state_value == ALARM and book.get("a").spec.threshold == 5
    assert [a.name for a in book.list(prefix="a")] == ["a"]
    assert [a.name for a in book.list(state=ALARM)] == ["a", "b"]
    assert [a.name for a in book.list(action_prefix="arn:aws:autoscaling")] == ["a"]
    assert book.get("a").arn == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a"
    assert book.delete_alarms(["a", "zzz"], T0 + 62) == ["zzz"]
    assert book.get("a") is None
    summaries = [h.summary for h in book.history("a")]
    assert summaries[0] == 'Alarm "a" deleted' and summaries[-1] == 'Alarm "a" created'


def test_round_trip_through_json():
    book, m = AlarmBook(), MetricStore()
    book.put_alarm(spec(evaluation_periods=1, alarm_actions=[ASG]), T0)
    feed(m, 0, 30)
    book.evaluate(T0 + 60, m)
    copy = AlarmBook.from_dict(json.loads(json.dumps(book.to_dict())))
    a, b = book.get("a"), copy.get("a")
    assert (b.state_value, b.state_reason, b.next_evaluation, b.spec) == (
        a.state_value,
        a.state_reason,
        a.next_evaluation,
        a.spec,
    )
    assert len(copy.history("a")) == len(book.history("a")) == len(b.history)
    assert copy.pop_actions(lambda x: True)[0].action == ASG


class _Periods:
    """A metric source: a statistic set per minute from per-minute arrays (count 0: no data)."""

    def __init__(self, counts: np.ndarray, totals: np.ndarray) -> None:
        self.counts, self.totals = counts, totals

    def period_statistics(self, start: float, end: float, period: int):
        assert period == 60
        first = math.floor(start / 60) * 60
        k = np.arange(first // 60, math.ceil(end / 60)).astype(int)
        c, t = self.counts[k], self.totals[k]
        return float(first), c, t, np.where(c > 0, t / np.maximum(c, 1), 0.0), t


def test_a_source_read_alone_gives_the_rows_of_the_general_merge():
    rng = np.random.default_rng(3)
    counts = rng.choice([0.0, 1.0, 2.5, 40.0], 200)
    totals = rng.uniform(0, 100, 200) * (counts > 0)
    alone, mixed = MetricStore(lambda: 12000.0), MetricStore(lambda: 12000.0)
    for store in (alone, mixed):
        store.attach("NS", "M", {"D": "x"}, _Periods(counts, totals))
    mixed.record("NS", "M", {"D": "x"}, 1.0, 11990.0)  # recorded data outside the range: the merge runs
    stats = ["SampleCount", "Sum", "Average", "Minimum", "Maximum"]
    for start, end, period in ((0, 6000, 60), (120, 3000, 60), (60, 11000, 60)):
        rows = alone.statistics("NS", "M", {"D": "x"}, start, end, period, stats)
        assert rows and rows == mixed.statistics("NS", "M", {"D": "x"}, start, end, period, stats)
        assert alone.statistics("NS", "M", {"D": "x"}, start, end, period, stats, unit="Count") == []
