"""MetricStore: aggregation, epoch alignment, percentiles, resolution, compaction, exact dimensions."""

from __future__ import annotations

import math

import pytest

from catkit.autoscaling.metrics_store import MetricStore, is_percentile_statistic

T0 = 1_700_000_040.0  # a minute boundary (divisible by 60)
DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}
ALL = ["SampleCount", "Sum", "Average", "Minimum", "Maximum"]


def test_aggregates_sum_count_min_max_average_per_period() -> None:
    store = MetricStore()
    for i, v in enumerate([1.0, 5.0, 3.0]):
        store.record("NS", "M", DIMS, v, T0 + i)
    [point] = store.statistics("NS", "M", DIMS, T0, T0 + 60, 60, ALL)
    assert point == {
        "Timestamp": T0,
        "Unit": "None",
        "SampleCount": 3.0,
        "Sum": 9.0,
        "Average": 3.0,
        "Minimum": 1.0,
        "Maximum": 5.0,
    }


def test_periods_are_epoch_aligned_oldest_first_and_empty_periods_left_out() -> None:
    store = MetricStore()
    store.record("NS", "M", {}, 1, T0 + 125, storage_resolution=1)  # period starting T0+120
    store.record("NS", "M", {}, 2, T0 + 5, storage_resolution=1)  # period starting T0
    points = store.statistics("NS", "M", {}, T0, T0 + 300, 60, ["Sum"])
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [(T0, 2.0), (T0 + 120, 1.0)]


def test_high_resolution_data_is_queryable_per_second_standard_data_per_minute() -> None:
    store = MetricStore()
    for i in range(20):
        store.record("NS", "hi", {}, 1, T0 + i, storage_resolution=1)
        store.record("NS", "std", {}, 1, T0 + i, storage_resolution=60)
    hi = store.statistics("NS", "hi", {}, T0, T0 + 60, 10, ["SampleCount"])
    assert [(p["Timestamp"], p["SampleCount"]) for p in hi] == [(T0, 10.0), (T0 + 10, 10.0)]
    std = store.statistics("NS", "std", {}, T0, T0 + 60, 10, ["SampleCount"])
    assert [(p["Timestamp"], p["SampleCount"]) for p in std] == [(T0, 20.0)]


def test_range_is_start_inclusive_end_exclusive() -> None:
    store = MetricStore()
    store.record("NS", "M", {}, 1, T0, storage_resolution=1)
    store.record("NS", "M", {}, 1, T0 + 10, storage_resolution=1)
    assert [p["Timestamp"] for p in store.statistics("NS", "M", {}, T0, T0 + 10, 1, ["Sum"])] == [T0]
    assert [p["Timestamp"] for p in store.statistics("NS", "M", {}, T0 + 1, T0 + 11, 1, ["Sum"])] == [T0 + 10]


def test_dimension_matching_is_exact_on_the_full_set() -> None:
    store = MetricStore()
    store.record("NS", "M", {"A": "1", "B": "2"}, 7, T0)
    assert store.statistics("NS", "M", {"A": "1"}, T0, T0 + 60, 60, ["Sum"]) == []
    assert store.statistics("NS", "M", {"A": "1", "B": "3"}, T0, T0 + 60, 60, ["Sum"]) == []
    assert store.statistics("NS", "M", {"B": "2", "A": "1"}, T0, T0 + 60, 60, ["Sum"])[0]["Sum"] == 7.0
    assert store.statistics("NS", "Other", {"A": "1", "B": "2"}, T0, T0 + 60, 60, ["Sum"]) == []


def test_exact_percentiles_for_small_samples() -> None:
    store = MetricStore()
    store.record_values("NS", "M", {}, [float(v) for v in range(1, 21)], None, T0)
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["p50", "p90", "p100", "p0"])
    assert (p["p50"], p["p90"], p["p100"], p["p0"]) == (10.0, 18.0, 20.0, 1.0)


def test_percentiles_of_large_samples_within_one_percent() -> None:
    store = MetricStore()
    for i in range(1, 10_001):
        store.record("NS", "Latency", {}, float(i), T0 + (i % 60), unit="Microseconds", storage_resolution=1)
    [p] = store.statistics("NS", "Latency", {}, T0, T0 + 60, 60, ["p50", "p99", "p99.9", "Maximum"])
    assert p["p50"] == pytest.approx(5000, rel=0.011)
    assert p["p99"] == pytest.approx(9900, rel=0.011)
    assert p["p99.9"] == pytest.approx(9990, rel=0.011)
    assert p["Maximum"] == 10_000.0
    assert p["Unit"] == "Microseconds"


def test_percentiles_with_negative_and_zero_values() -> None:
    store = MetricStore()
    values = [-100.0] * 40 + [0.0] * 20 + [50.0] * 40
    store.record_values("NS", "M", {}, values, None, T0)
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["p10", "p50", "p90"])
    assert p["p10"] == pytest.approx(-100, rel=0.011)
    assert p["p50"] == 0.0
    assert p["p90"] == pytest.approx(50, rel=0.011)


def test_values_with_counts_weight_every_statistic() -> None:
    store = MetricStore()
    store.record_values("NS", "M", {}, [1.0, 10.0], [3.0, 1.0], T0)
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["SampleCount", "Sum", "Average", "p50", "p90"])
    assert (p["SampleCount"], p["Sum"], p["Average"], p["p50"], p["p90"]) == (4.0, 13.0, 3.25, 1.0, 10.0)


def test_statistic_sets_have_no_percentiles_unless_single_valued() -> None:
    store = MetricStore()
    store.record_statistics("NS", "M", {}, 4, 10.0, 1.0, 4.0, T0)
    [p] = store.statistics(
        "NS", "M", {}, T0, T0 + 60, 60, ["SampleCount", "Sum", "Minimum", "Maximum", "p50"]
    )
    assert p == {
        "Timestamp": T0,
        "Unit": "None",
        "SampleCount": 4.0,
        "Sum": 10.0,
        "Minimum": 1.0,
        "Maximum": 4.0,
    }
    store.record_statistics("NS", "Same", {}, 5, 10.0, 2.0, 2.0, T0)
    assert store.statistics("NS", "Same", {}, T0, T0 + 60, 60, ["p50"])[0]["p50"] == 2.0


def test_unit_filter_selects_datapoints_recorded_with_that_unit() -> None:
    store = MetricStore()
    store.record("NS", "M", {}, 1, T0, unit="Count")
    store.record("NS", "M", {}, 100, T0, unit="Milliseconds")
    assert store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["Sum"], unit="Count")[0]["Sum"] == 1.0
    assert store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["Sum"], unit="Seconds") == []
    assert store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["Sum"])[0]["Sum"] == 101.0


def test_unknown_statistic_and_bad_period_are_rejected() -> None:
    store = MetricStore()
    with pytest.raises(ValueError, match="unknown statistic"):
        store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["Median"])
    with pytest.raises(ValueError, match="period"):
        store.statistics("NS", "M", {}, T0, T0 + 60, 0, ["Sum"])


@pytest.mark.parametrize(
    ("stat", "ok"),
    [
        ("p99", True),
        ("p99.9", True),
        ("p0", True),
        ("p100", True),
        ("p100.5", False),
        ("p", False),
        ("tm99", False),
    ],
)
def test_percentile_names(stat: str, ok: bool) -> None:
    assert is_percentile_statistic(stat) is ok


def test_one_second_data_rolls_up_into_minutes_after_three_hours_and_keeps_statistics() -> None:
    now = [T0]
    store = MetricStore(now=lambda: now[0])
    for i in range(120):
        store.record("NS", "M", {}, float(i), T0 + i, storage_resolution=1)
    assert store.bucket_count() == 120
    now[0] = T0 + 3 * 3600 + 200
    store.compact()
    assert store.bucket_count() == 2
    points = store.statistics(
        "NS", "M", {}, T0, T0 + 120, 60, ["SampleCount", "Sum", "Minimum", "Maximum", "p50"]
    )
    assert [(p["Timestamp"], p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"]) for p in points] == [
        (T0, 60.0, float(sum(range(60))), 0.0, 59.0),
        (T0 + 60, 60.0, float(sum(range(60, 120))), 60.0, 119.0),
    ]
    assert points[0]["p50"] == pytest.approx(29, rel=0.011)


def test_data_older_than_retention_is_dropped_and_metric_disappears() -> None:
    now = [T0]
    store = MetricStore(now=lambda: now[0])
    store.record("NS", "M", {"A": "1"}, 1, T0)
    assert store.list_metrics() == [("NS", "M", {"A": "1"})]
    now[0] = T0 + 15 * 86400 + 120
    store.compact()
    assert store.bucket_count() == 0
    assert store.list_metrics() == []
    store.record("NS", "M", {"A": "1"}, 1, T0)  # too old to keep, like CloudWatch
    assert store.bucket_count() == 0


def test_compaction_runs_by_itself_as_time_advances() -> None:
    store = MetricStore()  # no clock: the newest timestamp stands for now
    for i in range(4 * 3600):
        store.record("NS", "M", {}, 1.0, T0 + i, storage_resolution=1)
    # 3 h of 1-s buckets (+ up to one compaction interval) plus the rolled-up minutes
    assert store.bucket_count() <= 3 * 3600 + 300 + 60
    total = store.statistics("NS", "M", {}, T0, T0 + 4 * 3600, 3600, ["SampleCount"])
    assert sum(p["SampleCount"] for p in total) == 4 * 3600


def test_list_metrics_filters() -> None:
    store = MetricStore()
    store.record("AWS/SageMaker", "Invocations", {"EndpointName": "a", "VariantName": "v"}, 1, T0)
    store.record("AWS/SageMaker", "Invocations", {"EndpointName": "b", "VariantName": "v"}, 1, T0 + 5000)
    store.record("Custom", "Thing", {}, 1, T0)
    assert [m[0] for m in store.list_metrics(namespace="Custom")] == ["Custom"]
    assert len(store.list_metrics(metric_name="Invocations")) == 2
    assert store.list_metrics(dimensions={"EndpointName": "b"}) == [
        ("AWS/SageMaker", "Invocations", {"EndpointName": "b", "VariantName": "v"})
    ]
    assert len(store.list_metrics(dimensions={"VariantName": None})) == 2
    assert [m[2].get("EndpointName") for m in store.list_metrics(active_since=T0 + 4000)] == ["b"]


def test_values_and_counts_must_pair_up() -> None:
    with pytest.raises(ValueError, match="counts"):
        MetricStore().record_values("NS", "M", {}, [1.0, 2.0], [1.0], T0)


def test_long_range_query_over_sparse_data_is_exact() -> None:
    store = MetricStore()
    store.record("NS", "M", {}, 3.0, T0 + 86400 * 2 + 7, storage_resolution=1)
    store.record("NS", "M", {}, 4.0, T0 + 86400 * 2 + 8, storage_resolution=1)
    points = store.statistics("NS", "M", {}, T0, T0 + 86400 * 3, 86400, ["Sum", "Average"])
    assert points == [
        {
            "Timestamp": math.floor((T0 + 86400 * 2) / 86400) * 86400.0,
            "Unit": "None",
            "Sum": 7.0,
            "Average": 3.5,
        }
    ]


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("tm50", 25.5),  # mean of the lowest half: 1..50
        ("tm(10%:90%)", 50.5),  # 11..90
        ("IQM", 50.5),  # 26..75
        ("tc90", 90.0),
        ("ts10", 55.0),  # 1..10
        ("TM(90.5:100)", 95.5),  # 91..100
        ("TC(:10.5)", 10.0),
        ("PR(:25.5)", 25.0),
        ("wm(10%:90%)", 50.5),
    ],
)
def test_trimmed_winsorized_and_rank_statistics(stat: str, expected: float) -> None:
    store = MetricStore()
    store.record_values("NS", "M", {}, [float(v) for v in range(1, 101)], None, T0)
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, [stat])
    assert p[stat] == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("stat", ["tm(90%:10%)", "PR(:)", "TM(5:1)", "xx", "p101"])
def test_invalid_extended_statistics_are_rejected(stat: str) -> None:
    with pytest.raises(ValueError, match="unknown statistic"):
        MetricStore().statistics("NS", "M", {}, T0, T0 + 60, 60, [stat])


def test_extreme_value_ranges_keep_upper_percentiles_and_exact_extremes() -> None:
    store = MetricStore()
    values = [1e-30] * 10 + [float(v) for v in range(1, 91)]  # tiny values collapse into the lowest bin
    store.record_values("NS", "M", {}, values, None, T0)
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["p50", "p99", "Minimum", "Maximum"])
    assert p["p50"] == pytest.approx(40, rel=0.011)
    assert p["p99"] == pytest.approx(89, rel=0.011)
    assert (p["Minimum"], p["Maximum"]) == (1e-30, 90.0)


def test_histograms_merge_across_buckets_of_a_period() -> None:
    store = MetricStore()
    for second in range(60):
        store.record_values(
            "NS", "M", {}, [float(second * 100 + i) for i in range(1, 101)], None, T0 + second
        )
    [p] = store.statistics("NS", "M", {}, T0, T0 + 60, 60, ["p50", "p90", "SampleCount"])
    assert p["SampleCount"] == 6000.0
    assert p["p50"] == pytest.approx(3000, rel=0.011)
    assert p["p90"] == pytest.approx(5400, rel=0.011)
