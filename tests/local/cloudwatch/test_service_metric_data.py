"""GetMetricData: MetricStat, metric math, ordering, ReturnData, pagination and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from catkit.local.errors import AwsError

T0 = 1_700_000_040.0


def dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def stat(qid: str, name: str, stat_name: str = "Sum", period: int = 60, **extra):
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": "Custom/App", "MetricName": name},
            "Period": period,
            "Stat": stat_name,
        },
        **extra,
    }


def expr(qid: str, expression: str, **extra):
    return {"Id": qid, "Expression": expression, **extra}


def with_inputs(*queries):
    """``m1`` (Errors) and ``m2`` (Requests) as hidden inputs (ReturnData False), then ``queries``."""
    return [stat("m1", "Errors", ReturnData=False), stat("m2", "Requests", ReturnData=False), *queries]


@pytest.fixture
def filled(cw, ctx):
    """Errors: 1, 2, 3 per minute; Requests: 10 per minute, for three minutes."""
    data = []
    for minute in range(3):
        t = dt(T0 + 60 * minute + 5)
        data.append({"MetricName": "Errors", "Value": float(minute + 1), "Timestamp": t})
        data.append({"MetricName": "Requests", "Value": 10.0, "Timestamp": t})
    cw.put_metric_data({"Namespace": "Custom/App", "MetricData": data}, ctx)
    return cw


def gmd(cw, ctx, queries, **kw):
    params = {"MetricDataQueries": queries, "StartTime": dt(T0), "EndTime": dt(T0 + 180)}
    params.update(kw)
    return cw.get_metric_data(params, ctx)


def test_metric_stat_defaults_newest_first_and_label_is_metric_name(filled, ctx) -> None:
    [res] = gmd(filled, ctx, [stat("m1", "Errors")])["MetricDataResults"]
    assert res == {
        "Id": "m1",
        "Label": "Errors",
        "StatusCode": "Complete",
        "Timestamps": [dt(T0 + 120), dt(T0 + 60), dt(T0)],
        "Values": [3.0, 2.0, 1.0],
    }


def test_scan_by_ascending(filled, ctx) -> None:
    [res] = gmd(filled, ctx, [stat("m1", "Errors")], ScanBy="TimestampAscending")["MetricDataResults"]
    assert res["Values"] == [1.0, 2.0, 3.0]


def test_error_rate_expression_and_return_data_false(filled, ctx) -> None:
    out = gmd(filled, ctx, with_inputs(expr("e1", "m1/m2*100", Label="Error rate")), ScanBy="TimestampAscending")
    [res] = out["MetricDataResults"]
    assert (res["Id"], res["Label"]) == ("e1", "Error rate")
    assert res["Values"] == pytest.approx([10.0, 20.0, 30.0])


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("m1 + m2", [11.0, 12.0, 13.0]),
        ("-m1 ^ 2", [-1.0, -4.0, -9.0]),
        ("(m1 + 1) * 2", [4.0, 6.0, 8.0]),
        ("SUM([m1, m2])", [11.0, 12.0, 13.0]),
        ("MAX([m1, m2])", [10.0, 10.0, 10.0]),
        ("AVG(m1)", [2.0, 2.0, 2.0]),  # a scalar over the series, shown at every timestamp
        ("RUNNING_SUM(m1)", [1.0, 3.0, 6.0]),
        ("DIFF(m1)", [1.0, 1.0]),
        ("RATE(m1)", [1 / 60, 1 / 60]),
        ("ABS(m1 - 2)", [1.0, 0.0, 1.0]),
        ("PERIOD(m1)", [60.0, 60.0, 60.0]),
        ("m1 / (m1 - 2)", [-1.0, 3.0]),  # division by zero leaves a gap
        ("SUM(METRICS())", [11.0, 12.0, 13.0]),
    ],
)
def test_metric_math(filled, ctx, expression, values) -> None:
    out = gmd(filled, ctx, with_inputs(expr("e1", expression)), ScanBy="TimestampAscending")
    assert out["MetricDataResults"][0]["Values"] == pytest.approx(values)


def test_expressions_can_reference_expressions(filled, ctx) -> None:
    out = gmd(
        filled,
        ctx,
        [
            stat("m1", "Errors", ReturnData=False),
            expr("e1", "m1 * 2", ReturnData=False),
            expr("e2", "e1 + 1"),
        ],
        ScanBy="TimestampAscending",
    )
    assert out["MetricDataResults"][0]["Values"] == [3.0, 5.0, 7.0]


def test_fill_with_a_value_and_repeat(cw, ctx) -> None:
    cw.put_metric_data(
        {
            "Namespace": "Custom/App",
            "MetricData": [{"MetricName": "Sparse", "Value": 5.0, "Timestamp": dt(T0 + 60)}],
        },
        ctx,
    )
    out = gmd(
        cw,
        ctx,
        [
            stat("m1", "Sparse", ReturnData=False),
            expr("zero", "FILL(m1, 0)"),
            expr("rep", "FILL(m1, REPEAT)"),
        ],
        ScanBy="TimestampAscending",
    )
    zero, rep = out["MetricDataResults"]
    assert zero["Values"] == [0.0, 5.0, 0.0]
    assert rep["Values"] == [5.0, 5.0, 5.0]


def test_metrics_array_returns_one_result_per_series(filled, ctx) -> None:
    out = gmd(filled, ctx, with_inputs(expr("all", "METRICS()")))
    assert [(r["Id"], r["Label"]) for r in out["MetricDataResults"]] == [
        ("all", "Errors"),
        ("all", "Requests"),
    ]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("m1 +", "ends early"),
        ("m9 * 2", "unknown metric id 'm9'"),
        ("NOPE(m1)", "unsupported function NOPE"),
        ("SEARCH('{Custom/App} Errors')", "SEARCH takes"),
        ("SEARCH('{Custom/App} (Errors', 'Sum', 60)", "not closed"),
        ("e1 + 1", "circular reference"),
        ("m1 $ 2", "unexpected character"),
        ('SELECT AVG(Errors) FROM "Custom/App"', "Metrics Insights queries"),
    ],
)
def test_expression_errors_are_validation_errors(filled, ctx, expression, fragment) -> None:
    with pytest.raises(AwsError) as info:
        gmd(filled, ctx, [stat("m1", "Errors", ReturnData=False), expr("e1", expression)])
    assert info.value.code == "ValidationError"
    assert "Error in expression e1" in info.value.message and fragment in info.value.message


def test_max_datapoints_paginates_with_next_token(filled, ctx) -> None:
    queries = [stat("m1", "Errors"), stat("m2", "Requests")]
    page1 = gmd(filled, ctx, queries, MaxDatapoints=2)
    assert [(r["Id"], r["StatusCode"], len(r["Values"])) for r in page1["MetricDataResults"]] == [
        ("m1", "PartialData", 2)
    ]
    page2 = gmd(filled, ctx, queries, MaxDatapoints=2, NextToken=page1["NextToken"])
    assert [(r["Id"], r["StatusCode"], r["Values"]) for r in page2["MetricDataResults"]] == [
        ("m1", "Complete", [1.0]),
        ("m2", "PartialData", [10.0]),
    ]
    page3 = gmd(filled, ctx, queries, MaxDatapoints=2, NextToken=page2["NextToken"])
    assert [(r["Id"], r["StatusCode"], len(r["Values"])) for r in page3["MetricDataResults"]] == [
        ("m2", "Complete", 2)
    ]
    assert "NextToken" not in page3
    with pytest.raises(AwsError) as info:
        gmd(filled, ctx, [stat("m1", "Errors")], MaxDatapoints=2, NextToken=page1["NextToken"])
    assert info.value.code == "InvalidNextToken"


def test_percentile_stat_and_unit_filter(cw, ctx) -> None:
    cw.put_metric_data(
        {
            "Namespace": "Custom/App",
            "MetricData": [
                {
                    "MetricName": "Latency",
                    "Values": [float(v) for v in range(1, 101)],
                    "Unit": "Milliseconds",
                    "Timestamp": dt(T0),
                }
            ],
        },
        ctx,
    )
    q = stat("m1", "Latency", "p90")
    [res] = gmd(cw, ctx, [q])["MetricDataResults"]
    assert res["Values"] == [pytest.approx(90, rel=0.011)]
    q["MetricStat"]["Unit"] = "Seconds"
    assert gmd(cw, ctx, [q])["MetricDataResults"][0]["Values"] == []


@pytest.mark.parametrize(
    ("queries", "fragment"),
    [
        ([{"Id": "M1", "Expression": "1"}], "Id is invalid"),
        ([stat("m1", "Errors"), stat("m1", "Requests")], "used more than once"),
        ([{"Id": "m1"}], "MetricStat is required"),
        ([stat("m1", "Errors", Expression="1")], "Exactly one of"),
        ([stat("m1", "Errors", period=7)], "multiple of 60"),
        ([stat("m1", "Errors", "Median")], "Stat is invalid"),
        ([stat("m1", "Errors", ReturnData=False)], "ReturnData"),
    ],
)
def test_query_validation(filled, ctx, queries, fragment) -> None:
    with pytest.raises(AwsError) as info:
        gmd(filled, ctx, queries)
    assert fragment in info.value.message


def test_high_resolution_period_20_is_accepted(cw, ctx) -> None:
    cw.put_metric_data(
        {
            "Namespace": "Custom/App",
            "MetricData": [
                {"MetricName": "Hi", "Value": 1.0, "StorageResolution": 1, "Timestamp": dt(T0 + s)}
                for s in (1, 21, 22)
            ],
        },
        ctx,
    )
    [res] = gmd(cw, ctx, [stat("m1", "Hi", period=20)], ScanBy="TimestampAscending")["MetricDataResults"]
    assert (res["Timestamps"], res["Values"]) == ([dt(T0), dt(T0 + 20)], [1.0, 2.0])


def test_end_before_start_is_rejected(filled, ctx) -> None:
    with pytest.raises(AwsError, match="EndTime must be greater"):
        gmd(filled, ctx, [stat("m1", "Errors")], StartTime=dt(T0 + 10), EndTime=dt(T0))


@pytest.fixture
def endpoints(cw, ctx):
    """Invocations for three endpoints (1, 2, 3 per minute) plus a latency metric and a custom one."""
    data = []
    for i, ep in enumerate(("alpha", "beta", "gamma-prod"), start=1):
        dims = [{"Name": "EndpointName", "Value": ep}, {"Name": "VariantName", "Value": "AllTraffic"}]
        data.append(
            {"MetricName": "Invocations", "Dimensions": dims, "Value": float(i), "Timestamp": dt(T0 + 5)}
        )
        data.append(
            {"MetricName": "ModelLatency", "Dimensions": dims, "Value": 10.0 * i, "Timestamp": dt(T0 + 5)}
        )
    data.append(
        {
            "MetricName": "Invocations",
            "Dimensions": [{"Name": "EndpointName", "Value": "alpha"}],
            "Value": 100.0,
            "Timestamp": dt(T0 + 5),
        }
    )
    cw.put_metric_data({"Namespace": "Custom/SM", "MetricData": data}, ctx)
    return cw


@pytest.mark.parametrize(
    ("term", "labels"),
    [
        (
            '{Custom/SM,EndpointName,VariantName} MetricName="Invocations"',
            [
                "alpha AllTraffic Invocations",
                "beta AllTraffic Invocations",
                "gamma-prod AllTraffic Invocations",
            ],
        ),
        ("{Custom/SM,EndpointName} Invocations", ["alpha Invocations"]),
        (
            "{Custom/SM,EndpointName,VariantName} Invocations AND (alpha OR beta)",
            ["alpha AllTraffic Invocations", "beta AllTraffic Invocations"],
        ),
        (
            "{Custom/SM,EndpointName,VariantName} Invocations NOT prod",
            ["alpha AllTraffic Invocations", "beta AllTraffic Invocations"],
        ),
        ('EndpointName="gamma-prod" latency', ["gamma-prod AllTraffic ModelLatency"]),
        ("EndpointName=gam MetricName=Invocations", ["gamma-prod AllTraffic Invocations"]),
        ('{Custom/SM,EndpointName,VariantName} MetricName="invocations"', []),
    ],
)
def test_search_expressions(endpoints, ctx, term, labels) -> None:
    out = gmd(endpoints, ctx, [{"Id": "s", "Expression": f"SEARCH('{term}', 'Sum', 60)"}])
    assert [r["Label"] for r in out["MetricDataResults"]] == labels


def test_search_results_feed_metric_math(endpoints, ctx) -> None:
    q = "SUM(SEARCH('{Custom/SM,EndpointName,VariantName} MetricName=\"Invocations\"', 'Sum', 60))"
    out = gmd(endpoints, ctx, [{"Id": "total", "Expression": q, "Label": "All endpoints"}])
    [res] = out["MetricDataResults"]
    assert (res["Label"], res["Values"]) == ("All endpoints", [6.0])


def test_search_period_can_come_from_the_query(endpoints, ctx) -> None:
    q = {"Id": "s", "Expression": "SEARCH('{Custom/SM,EndpointName} Invocations', 'Maximum')", "Period": 60}
    assert gmd(endpoints, ctx, [q])["MetricDataResults"][0]["Values"] == [100.0]
