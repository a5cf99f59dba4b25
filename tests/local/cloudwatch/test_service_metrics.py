"""CloudWatch service, metric data operations, called directly with botocore-shaped params."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catkit.local.errors import AwsError
from catkit.local.services.cloudwatch import round_start

T0 = 1_700_000_040.0
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def put(cw, ctx, *data, namespace="Custom/App"):
    return cw.put_metric_data({"Namespace": namespace, "MetricData": list(data)}, ctx)


def gms(cw, ctx, **kw):
    params = {
        "Namespace": "Custom/App",
        "MetricName": "Latency",
        "Dimensions": DIMS,
        "StartTime": dt(T0 - 600),
        "EndTime": dt(T0 + 600),
        "Period": 60,
        "Statistics": ["Sum", "SampleCount", "Average", "Minimum", "Maximum"],
    }
    params.update(kw)
    return cw.get_metric_statistics(params, ctx)


def error_of(fn, *args, **kwargs) -> AwsError:
    with pytest.raises(AwsError) as info:
        fn(*args, **kwargs)
    return info.value


def test_put_value_then_get_metric_statistics(cw, ctx, clock) -> None:
    put(
        cw,
        ctx,
        {
            "MetricName": "Latency",
            "Dimensions": DIMS,
            "Value": 4.0,
            "Unit": "Milliseconds",
            "Timestamp": dt(T0 + 1),
        },
        {
            "MetricName": "Latency",
            "Dimensions": DIMS,
            "Value": 6.0,
            "Unit": "Milliseconds",
            "Timestamp": dt(T0 + 2),
        },
    )
    out = gms(cw, ctx)
    assert out["Label"] == "Latency"
    assert out["Datapoints"] == [
        {
            "Timestamp": dt(T0),
            "Unit": "Milliseconds",
            "Sum": 10.0,
            "SampleCount": 2.0,
            "Average": 5.0,
            "Minimum": 4.0,
            "Maximum": 6.0,
        }
    ]


def test_timestamp_defaults_to_the_emulated_clock(cw, ctx, clock) -> None:
    clock.advance(125)
    put(cw, ctx, {"MetricName": "Latency", "Dimensions": DIMS, "Value": 1.0})
    [point] = gms(cw, ctx)["Datapoints"]
    assert point["Timestamp"] == dt(T0 + 120)


def test_values_counts_and_extended_statistics(cw, ctx) -> None:
    put(
        cw,
        ctx,
        {
            "MetricName": "Latency",
            "Dimensions": DIMS,
            "Values": [10.0, 20.0, 30.0],
            "Counts": [1, 8, 1],
            "Timestamp": dt(T0),
        },
    )
    out = gms(cw, ctx, Statistics=["SampleCount"], ExtendedStatistics=["p50", "p99"])
    [point] = out["Datapoints"]
    assert point["SampleCount"] == 10.0
    assert point["ExtendedStatistics"] == {"p50": 20.0, "p99": 30.0}


def test_statistic_values(cw, ctx) -> None:
    put(
        cw,
        ctx,
        {
            "MetricName": "Latency",
            "Dimensions": DIMS,
            "Timestamp": dt(T0),
            "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 1, "Maximum": 9},
        },
    )
    [point] = gms(cw, ctx)["Datapoints"]
    assert (point["SampleCount"], point["Sum"], point["Average"], point["Minimum"], point["Maximum"]) == (
        4.0,
        20.0,
        5.0,
        1.0,
        9.0,
    )


def test_high_resolution_datapoints_are_queryable_per_second(cw, ctx) -> None:
    put(
        cw,
        ctx,
        *[
            {
                "MetricName": "Latency",
                "Dimensions": DIMS,
                "Value": 1.0,
                "StorageResolution": 1,
                "Timestamp": dt(T0 + i),
            }
            for i in range(3)
        ],
    )
    out = gms(cw, ctx, Period=1, StartTime=dt(T0), EndTime=dt(T0 + 60), Statistics=["Sum"])
    assert [p["Timestamp"] for p in out["Datapoints"]] == [dt(T0), dt(T0 + 1), dt(T0 + 2)]


@pytest.mark.parametrize(
    ("datum", "code", "fragment"),
    [
        ({"Value": 1.0, "Values": [1.0]}, "InvalidParameterCombination", "mutually exclusive"),
        (
            {"Value": 1.0, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}},
            "InvalidParameterCombination",
            "mutually exclusive",
        ),
        ({}, "MissingParameter", "At least one of the parameters"),
        ({"Value": float("nan")}, "InvalidParameterValue", "MetricData.member.1.Value"),
        ({"Value": float("inf")}, "InvalidParameterValue", "is invalid"),
        ({"Value": 2.0**361}, "InvalidParameterValue", "is invalid"),
        ({"Values": [1.0] * 151}, "InvalidParameterValue", "greater than 150"),
        ({"Values": [1.0, 2.0], "Counts": [1.0]}, "InvalidParameterValue", "same size"),
        ({"Value": 1.0, "Unit": "Furlongs"}, "InvalidParameterValue", "Unit"),
        ({"Value": 1.0, "StorageResolution": 10}, "InvalidParameterValue", "StorageResolution"),
        (
            {"Value": 1.0, "Timestamp": dt(T0 + 2 * 3600 + 1)},
            "InvalidParameterValue",
            "two hours in the future",
        ),
        ({"Value": 1.0, "Timestamp": dt(T0 - 14 * 86400 - 1)}, "InvalidParameterValue", "past two weeks"),
        (
            {"Value": 1.0, "Dimensions": [{"Name": "a", "Value": str(i)} for i in range(2)]},
            "InvalidParameterValue",
            "only once",
        ),
        (
            {"StatisticValues": {"SampleCount": 2, "Sum": 3, "Minimum": 5, "Maximum": 1}},
            "InvalidParameterCombination",
            "Minimum",
        ),
    ],
)
def test_put_metric_data_validation(cw, ctx, datum, code, fragment) -> None:
    err = error_of(put, cw, ctx, {"MetricName": "M", **datum})
    assert err.code == code and err.status == 400
    assert fragment in err.message


def test_put_metric_data_is_all_or_nothing(cw, ctx) -> None:
    err = error_of(
        put,
        cw,
        ctx,
        {"MetricName": "Latency", "Dimensions": DIMS, "Value": 1.0, "Timestamp": dt(T0)},
        {"MetricName": "Latency", "Dimensions": DIMS, "Value": float("nan")},
    )
    assert "MetricData.member.2.Value" in err.message
    assert gms(cw, ctx)["Datapoints"] == []


def test_aws_namespaces_are_reserved(cw, ctx) -> None:
    err = error_of(put, cw, ctx, {"MetricName": "M", "Value": 1.0}, namespace="AWS/SageMaker")
    assert (err.code, err.message) == (
        "InvalidParameterValue",
        "The value AWS/SageMaker for parameter Namespace is invalid.",
    )


def test_at_most_1000_metrics_per_call(cw, ctx) -> None:
    put(cw, ctx, *[{"MetricName": f"m{i}", "Value": 1.0} for i in range(1000)])
    err = error_of(put, cw, ctx, *[{"MetricName": f"m{i}", "Value": 1.0} for i in range(1001)])
    assert "greater than 1000" in err.message


def test_entity_metric_data_is_recorded_too(cw, ctx) -> None:
    cw.put_metric_data(
        {
            "Namespace": "Custom/App",
            "EntityMetricData": [
                {
                    "Entity": {"KeyAttributes": {"Type": "Service"}},
                    "MetricData": [
                        {"MetricName": "Latency", "Dimensions": DIMS, "Value": 3.0, "Timestamp": dt(T0)}
                    ],
                }
            ],
        },
        ctx,
    )
    assert gms(cw, ctx, Statistics=["Sum"])["Datapoints"][0]["Sum"] == 3.0


@pytest.mark.parametrize(
    ("kw", "code", "fragment"),
    [
        (
            {"Statistics": [], "ExtendedStatistics": []},
            "InvalidParameterCombination",
            "Statistics or ExtendedStatistics",
        ),
        ({"Period": 7}, "InvalidParameterValue", "multiple of 60"),
        ({"Period": 90}, "InvalidParameterValue", "multiple of 60"),
        ({"StartTime": dt(T0), "EndTime": dt(T0)}, "InvalidParameterValue", "StartTime must be less"),
        (
            {"Period": 1, "StartTime": dt(T0), "EndTime": dt(T0 + 1441)},
            "InvalidParameterCombination",
            "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440",
        ),
        ({"ExtendedStatistics": ["p999"]}, "InvalidParameterValue", "ExtendedStatistics.member.1"),
        ({"Statistics": ["Median"]}, "InvalidParameterValue", "Statistics.member.1"),
    ],
)
def test_get_metric_statistics_validation(cw, ctx, kw, code, fragment) -> None:
    err = error_of(gms, cw, ctx, **kw)
    assert err.code == code
    assert fragment in err.message


def test_exactly_1440_datapoints_is_allowed(cw, ctx) -> None:
    # AWS: "The maximum number of data points returned from a single call is 1,440"; a request
    # of exactly 1,440 is answered in full (one per second of high-resolution data here).
    for first in (0, 720):
        put(
            cw,
            ctx,
            *[
                {
                    "MetricName": "Latency",
                    "Dimensions": DIMS,
                    "Value": float(first + i),
                    "StorageResolution": 1,
                    "Timestamp": dt(T0 + first + i),
                }
                for i in range(720)
            ],
        )
    out = gms(cw, ctx, Period=1, StartTime=dt(T0), EndTime=dt(T0 + 1440), Statistics=["Sum", "SampleCount"])
    points = sorted(out["Datapoints"], key=lambda p: p["Timestamp"])
    assert len(points) == 1440
    assert [p["Timestamp"] for p in points] == [dt(T0 + i) for i in range(1440)]
    assert [p["Sum"] for p in points] == [float(i) for i in range(1440)]
    assert all(p["SampleCount"] == 1.0 for p in points)


def test_unit_filter(cw, ctx) -> None:
    put(
        cw,
        ctx,
        {"MetricName": "Latency", "Dimensions": DIMS, "Value": 1.0, "Unit": "Seconds", "Timestamp": dt(T0)},
    )
    assert gms(cw, ctx, Unit="Milliseconds")["Datapoints"] == []
    assert gms(cw, ctx, Unit="Seconds")["Datapoints"][0]["Unit"] == "Seconds"


@pytest.mark.parametrize(
    ("start", "period", "expected"),
    [
        (T0 + 34, 60, T0),  # minute
        (T0 + 34, 300, T0),  # still to the minute when recent
        (T0 + 34, 10, T0 + 30),
        (T0 + 34, 5, T0 + 30),
        (T0 + 34, 1, T0 + 34),
        (T0 - 20 * 86400 + 170, 300, 1_698_272_100.0),  # 15-63 days ago: 5 minutes
    ],
)
def test_start_time_rounding(start, period, expected) -> None:
    assert round_start(start, period, T0) == expected


def test_list_metrics_filters_and_pagination(cw, ctx) -> None:
    put(
        cw,
        ctx,
        *[
            {
                "MetricName": "Invocations",
                "Dimensions": [{"Name": "EndpointName", "Value": f"ep{i:03d}"}],
                "Value": 1.0,
            }
            for i in range(501)
        ],
    )
    put(cw, ctx, {"MetricName": "Other", "Value": 1.0}, namespace="Custom/Other")
    first = cw.list_metrics({"Namespace": "Custom/App"}, ctx)
    assert len(first["Metrics"]) == 500
    assert first["Metrics"][0] == {
        "Namespace": "Custom/App",
        "MetricName": "Invocations",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep000"}],
    }
    second = cw.list_metrics({"Namespace": "Custom/App", "NextToken": first["NextToken"]}, ctx)
    assert [m["Dimensions"][0]["Value"] for m in second["Metrics"]] == ["ep500"]
    assert "NextToken" not in second
    only = cw.list_metrics({"Dimensions": [{"Name": "EndpointName", "Value": "ep007"}]}, ctx)
    assert len(only["Metrics"]) == 1
    assert cw.list_metrics({"MetricName": "Other"}, ctx)["Metrics"][0]["Namespace"] == "Custom/Other"
    err = error_of(cw.list_metrics, {"Namespace": "Custom/Other", "NextToken": first["NextToken"]}, ctx)
    assert err.code == "InvalidNextToken"


def test_list_metrics_recently_active(cw, ctx, clock) -> None:
    put(cw, ctx, {"MetricName": "Old", "Value": 1.0, "Timestamp": dt(T0 - 4 * 3600)})
    put(cw, ctx, {"MetricName": "New", "Value": 1.0})
    names = [m["MetricName"] for m in cw.list_metrics({"RecentlyActive": "PT3H"}, ctx)["Metrics"]]
    assert names == ["New"]
