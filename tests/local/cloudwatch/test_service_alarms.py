"""CloudWatch alarm operations over the AlarmBook: shapes, filters, evaluation, history, persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.errors import AwsError
from catkit.local.services.cloudwatch import CloudWatchService, load_alarm_book

T0 = 1_700_000_040.0
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]
SCALING_ARN = (
    "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:abc:resource/sagemaker/"
    "endpoint/ep/variant/AllTraffic:policyName/p"
)
SNS_ARN = "arn:aws:sns:us-east-1:123456789012:topic"


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def alarm_params(name: str = "high-latency", **kw):
    params = {
        "AlarmName": name,
        "Namespace": "Custom/App",
        "MetricName": "Latency",
        "Dimensions": DIMS,
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 100.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmDescription": "latency too high",
    }
    params.update(kw)
    return params


def latency(cw, ctx, value: float, at: float) -> None:
    cw.put_metric_data(
        {
            "Namespace": "Custom/App",
            "MetricData": [
                {"MetricName": "Latency", "Dimensions": DIMS, "Value": value, "Timestamp": dt(at)}
            ],
        },
        ctx,
    )


def test_put_and_describe_alarm_shape(cw, ctx) -> None:
    given = alarm_params(Unit="Milliseconds", DatapointsToAlarm=1, EvaluateLowSampleCountPercentile="ignore")
    cw.put_metric_alarm(given, ctx)
    [alarm] = cw.describe_alarms({}, ctx)["MetricAlarms"]
    assert alarm["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-latency"
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert alarm["StateUpdatedTimestamp"] == dt(T0)
    assert alarm["AlarmConfigurationUpdatedTimestamp"] == dt(T0)
    # Every member given comes back as given, plus the defaults of the two left out.
    expected = {k: v for k, v in given.items() if k != "AlarmName"}
    expected.update(TreatMissingData="missing", ActionsEnabled=True)
    assert len(expected) == 14
    assert {k: alarm[k] for k in expected} == expected
    assert cw.describe_alarms({}, ctx)["CompositeAlarms"] == []


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"Statistic": None}, "Exactly one of Statistic or ExtendedStatistic"),
        ({"Period": 45}, "Period must be"),
        ({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "not supported"),
        ({"DatapointsToAlarm": 3}, "DatapointsToAlarm"),
        ({"TreatMissingData": "sometimes"}, "TreatMissingData"),
        ({"Metrics": [{"Id": "m1", "Expression": "1"}]}, "Metric math alarms"),
        ({"MetricName": None}, "MetricName"),
        ({"AlarmActions": ["not-an-arn"]}, "Invalid arn syntax"),
        ({"EvaluateLowSampleCountPercentile": "maybe"}, "evaluate and ignore"),
    ],
)
def test_put_metric_alarm_validation(cw, ctx, kw, fragment) -> None:
    params = {k: v for k, v in alarm_params(**kw).items() if v is not None}
    with pytest.raises(AwsError) as info:
        cw.put_metric_alarm(params, ctx)
    assert info.value.code in ("ValidationError", "InvalidParameterValue")
    assert fragment in info.value.message
    assert cw.describe_alarms({}, ctx)["MetricAlarms"] == []


def test_describe_alarms_filters_and_pagination(cw, ctx) -> None:
    for i in range(5):
        cw.put_metric_alarm(alarm_params(f"a{i}", AlarmActions=[SNS_ARN] if i == 3 else []), ctx)
    cw.put_metric_alarm(alarm_params("b0"), ctx)
    names = lambda out: [a["AlarmName"] for a in out["MetricAlarms"]]  # noqa: E731
    assert names(cw.describe_alarms({"AlarmNamePrefix": "a"}, ctx)) == ["a0", "a1", "a2", "a3", "a4"]
    assert names(cw.describe_alarms({"AlarmNames": ["b0", "a1", "zz"]}, ctx)) == ["a1", "b0"]
    assert names(cw.describe_alarms({"ActionPrefix": "arn:aws:sns"}, ctx)) == ["a3"]
    assert names(cw.describe_alarms({"StateValue": "ALARM"}, ctx)) == []
    assert names(cw.describe_alarms({"AlarmTypes": ["CompositeAlarm"]}, ctx)) == []
    page1 = cw.describe_alarms({"MaxRecords": 4}, ctx)
    page2 = cw.describe_alarms({"MaxRecords": 4, "NextToken": page1["NextToken"]}, ctx)
    assert names(page1) + names(page2) == ["a0", "a1", "a2", "a3", "a4", "b0"]
    assert "NextToken" not in page2
    with pytest.raises(AwsError) as info:
        cw.describe_alarms({"AlarmNames": ["a0"], "AlarmNamePrefix": "a"}, ctx)
    assert info.value.code == "InvalidParameterCombination"


def test_evaluation_moves_alarm_to_alarm_and_records_history(cw, ctx, clock) -> None:
    cw.put_metric_alarm(alarm_params(), ctx)
    for minute in range(3):
        latency(cw, ctx, 150.0, T0 + 60 * minute + 1)
    clock.advance(180)
    transitions = cw.tick()
    assert [(t.old_state, t.new_state) for t in transitions] == [("INSUFFICIENT_DATA", "ALARM")]
    [alarm] = cw.describe_alarms({"StateValue": "ALARM"}, ctx)["MetricAlarms"]
    assert alarm["StateUpdatedTimestamp"] == dt(T0 + 180)
    assert alarm["StateReason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints")
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [150.0, 150.0]
    history = cw.describe_alarm_history({"AlarmName": "high-latency"}, ctx)["AlarmHistoryItems"]
    assert [(h["HistoryItemType"], h["HistorySummary"]) for h in history] == [
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        ("ConfigurationUpdate", 'Alarm "high-latency" created'),
    ]
    assert history[0]["Timestamp"] == dt(T0 + 180)
    assert history[0]["AlarmType"] == "MetricAlarm"
    only_state = cw.describe_alarm_history(
        {"HistoryItemType": "StateUpdate", "ScanBy": "TimestampAscending"}, ctx
    )
    assert len(only_state["AlarmHistoryItems"]) == 1


def test_describe_alarm_history_date_range_and_pagination(cw, ctx, clock) -> None:
    for i in range(3):
        cw.put_metric_alarm(alarm_params(f"a{i}"), ctx)
        clock.advance(60)
    items = cw.describe_alarm_history({"StartDate": dt(T0 + 60), "EndDate": dt(T0 + 600)}, ctx)[
        "AlarmHistoryItems"
    ]
    assert [h["AlarmName"] for h in items] == ["a2", "a1"]
    page1 = cw.describe_alarm_history({"MaxRecords": 2}, ctx)
    page2 = cw.describe_alarm_history({"MaxRecords": 2, "NextToken": page1["NextToken"]}, ctx)
    assert [h["AlarmName"] for h in page1["AlarmHistoryItems"] + page2["AlarmHistoryItems"]] == [
        "a2",
        "a1",
        "a0",
    ]


def test_set_alarm_state(cw, ctx) -> None:
    cw.put_metric_alarm(alarm_params(), ctx)
    cw.set_alarm_state(
        {
            "AlarmName": "high-latency",
            "StateValue": "ALARM",
            "StateReason": "testing",
            "StateReasonData": '{"a": 1}',
        },
        ctx,
    )
    [alarm] = cw.describe_alarms({}, ctx)["MetricAlarms"]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["StateReasonData"]) == (
        "ALARM",
        "testing",
        '{"a": 1}',
    )
    with pytest.raises(AwsError) as info:
        cw.set_alarm_state({"AlarmName": "nope", "StateValue": "OK", "StateReason": "x"}, ctx)
    assert (info.value.code, info.value.status) == ("ResourceNotFound", 404)
    with pytest.raises(AwsError) as info:
        cw.set_alarm_state(
            {
                "AlarmName": "high-latency",
                "StateValue": "OK",
                "StateReason": "x",
                "StateReasonData": "{not json",
            },
            ctx,
        )
    assert info.value.code == "InvalidFormat"


def test_delete_alarms_skips_unknown_names(cw, ctx) -> None:
    cw.put_metric_alarm(alarm_params("a"), ctx)
    cw.put_metric_alarm(alarm_params("b"), ctx)
    cw.delete_alarms({"AlarmNames": ["a", "does-not-exist"]}, ctx)
    assert [a["AlarmName"] for a in cw.describe_alarms({}, ctx)["MetricAlarms"]] == ["b"]
    summaries = [
        h["HistorySummary"] for h in cw.describe_alarm_history({"AlarmName": "a"}, ctx)["AlarmHistoryItems"]
    ]
    assert summaries[0] == 'Alarm "a" deleted'


def test_enable_and_disable_alarm_actions(cw, ctx, state) -> None:
    cw.put_metric_alarm(alarm_params(), ctx)
    cw.disable_alarm_actions({"AlarmNames": ["high-latency"]}, ctx)
    assert cw.describe_alarms({}, ctx)["MetricAlarms"][0]["ActionsEnabled"] is False
    assert (
        load_alarm_book(state, "us-east-1", "123456789012").get("high-latency").spec.actions_enabled is False
    )
    cw.enable_alarm_actions({"AlarmNames": ["high-latency"]}, ctx)
    assert cw.describe_alarms({}, ctx)["MetricAlarms"][0]["ActionsEnabled"] is True


def test_describe_alarms_for_metric(cw, ctx) -> None:
    cw.put_metric_alarm(alarm_params("avg"), ctx)
    cw.put_metric_alarm(alarm_params("p99", Statistic=None, ExtendedStatistic="p99"), ctx)
    cw.put_metric_alarm(alarm_params("other-dims", Dimensions=DIMS[:1]), ctx)
    base = {"Namespace": "Custom/App", "MetricName": "Latency", "Dimensions": DIMS}
    assert sorted(a["AlarmName"] for a in cw.describe_alarms_for_metric(base, ctx)["MetricAlarms"]) == [
        "avg",
        "p99",
    ]
    only = cw.describe_alarms_for_metric({**base, "ExtendedStatistic": "p99"}, ctx)["MetricAlarms"]
    assert [(a["AlarmName"], a["ExtendedStatistic"]) for a in only] == [("p99", "p99")]
    assert cw.describe_alarms_for_metric({**base, "Period": 300}, ctx)["MetricAlarms"] == []


def test_tags(cw, ctx) -> None:
    cw.put_metric_alarm(alarm_params(Tags=[{"Key": "team", "Value": "ml"}]), ctx)
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high-latency"
    cw.tag_resource({"ResourceARN": arn, "Tags": [{"Key": "env", "Value": "dev"}]}, ctx)
    cw.untag_resource({"ResourceARN": arn, "TagKeys": ["team"]}, ctx)
    assert cw.list_tags_for_resource({"ResourceARN": arn}, ctx) == {"Tags": [{"Key": "env", "Value": "dev"}]}
    with pytest.raises(AwsError) as info:
        cw.list_tags_for_resource({"ResourceARN": arn + "x"}, ctx)
    assert info.value.code == "ResourceNotFoundException"


def test_alarms_survive_a_restart(cw, ctx, clock, state) -> None:
    cw.put_metric_alarm(alarm_params(Tags=[{"Key": "team", "Value": "ml"}]), ctx)
    cw.set_alarm_state({"AlarmName": "high-latency", "StateValue": "ALARM", "StateReason": "manual"}, ctx)
    restarted_state = state.snapshot()
    book = load_alarm_book(restarted_state, "us-east-1", "123456789012")
    again = CloudWatchService(MetricStore(now=clock.now), book, clock.now, restarted_state)
    [alarm] = again.describe_alarms({}, ctx)["MetricAlarms"]
    assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "manual")
    assert len(again.describe_alarm_history({}, ctx)["AlarmHistoryItems"]) == 2
    assert again.list_tags_for_resource({"ResourceARN": alarm["AlarmArn"]}, ctx)["Tags"] == [
        {"Key": "team", "Value": "ml"}
    ]


def test_evaluation_persists_only_on_change(cw, ctx, clock, state) -> None:
    cw.put_metric_alarm(alarm_params(), ctx)
    puts = state.puts
    clock.advance(60)
    cw.tick()  # INSUFFICIENT_DATA stays INSUFFICIENT_DATA: nothing to save
    assert state.puts == puts
    latency(cw, ctx, 500.0, T0 + 60)
    latency(cw, ctx, 500.0, T0 + 120)
    clock.advance(120)
    cw.tick()
    assert state.puts > puts
    assert load_alarm_book(state, "us-east-1", "123456789012").get("high-latency").state_value == "ALARM"


def test_non_autoscaling_actions_are_reported_not_delivered(cw, ctx, clock) -> None:
    cw.put_metric_alarm(alarm_params(AlarmActions=[SNS_ARN, SCALING_ARN]), ctx)
    cw.set_alarm_state({"AlarmName": "high-latency", "StateValue": "ALARM", "StateReason": "x"}, ctx)
    cw.tick()
    actions = cw.describe_alarm_history({"HistoryItemType": "Action"}, ctx)["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in actions] == [f"Failed to execute action {SNS_ARN}"]
    # the scaling action stays in the outbox for the autoscaling controller
    pending = cw.alarms.pop_actions(lambda arn: arn == SCALING_ARN)
    assert [p.action for p in pending] == [SCALING_ARN]


def test_autoscaling_alarms_created_in_the_book_show_up_and_persist(cw, ctx, clock, state) -> None:
    from catkit.autoscaling.alarms import AlarmSpec

    cw.alarms.put_alarm(
        AlarmSpec(
            alarm_name="TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh-1",
            namespace="AWS/SageMaker",
            metric_name="InvocationsPerInstance",
            dimensions={"EndpointName": "ep", "VariantName": "AllTraffic"},
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            threshold=70.0,
            alarm_actions=[SCALING_ARN],
        ),
        clock.now(),
    )
    assert [
        a["AlarmName"]
        for a in cw.describe_alarms({"AlarmNamePrefix": "TargetTracking-"}, ctx)["MetricAlarms"]
    ]
    clock.advance(10)
    cw.tick()
    assert (
        load_alarm_book(state, "us-east-1", "123456789012").get(
            "TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh-1"
        )
        is not None
    )
