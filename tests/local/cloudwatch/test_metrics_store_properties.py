"""Property tests of MetricStore: exact aggregates, percentile accuracy, compaction keeps totals."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from catkit.autoscaling.metrics_store import MetricStore

T0 = 1_700_000_040.0
values_st = st.lists(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False), min_size=1, max_size=400)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@settings(max_examples=60, deadline=None)
@given(values=values_st, q=st.sampled_from([0.5, 0.9, 0.99]))
def test_aggregates_are_exact_and_percentiles_within_one_percent(values: list[float], q: float) -> None:
    store = MetricStore()
    for i, v in enumerate(values):
        store.record("NS", "M", {"D": "x"}, v, T0 + (i % 60), storage_resolution=1)
    name = f"p{q * 100:g}"
    [p] = store.statistics(
        "NS", "M", {"D": "x"}, T0, T0 + 60, 60, ["SampleCount", "Sum", "Minimum", "Maximum", name]
    )
    assert p["SampleCount"] == len(values)
    assert math.isclose(p["Sum"], math.fsum(values), rel_tol=1e-9)
    assert (p["Minimum"], p["Maximum"]) == (min(values), max(values))
    exact = nearest_rank(values, q)
    assert math.isclose(p[name], exact, rel_tol=0.0101), (p[name], exact)


@settings(max_examples=30, deadline=None)
@given(offsets=st.lists(st.integers(min_value=0, max_value=6 * 3600), min_size=1, max_size=200))
def test_compaction_preserves_counts_and_sums(offsets: list[int]) -> None:
    now = [T0 + 6 * 3600]
    store = MetricStore(now=lambda: now[0])
    for off in offsets:
        store.record("NS", "M", {}, float(off % 7), T0 + off, storage_resolution=1)
    before = store.statistics("NS", "M", {}, T0, T0 + 7 * 3600, 3600, ["SampleCount", "Sum"])
    now[0] = T0 + 10 * 3600
    store.compact()
    after = store.statistics("NS", "M", {}, T0, T0 + 7 * 3600, 3600, ["SampleCount", "Sum"])
    assert before == after
