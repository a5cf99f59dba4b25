"""Batched recording (``MetricStore.batch``, catkit.autoscaling.metric_batches) reads back exactly
what ``record_many`` per row gives: the same statistics (percentiles included), metric lists, dumps
and change counts, whatever else is recorded or read between rows and across compactions."""

from __future__ import annotations

import random

import pytest

from catkit.autoscaling.metrics_store import MetricStore

METRICS = (("ModelLatency", "Microseconds"), ("Invocations", "None"), ("InvocationsPerInstance", "None"))
STATS = ["SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50", "p99", "tm90"]


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _read_all(store: MetricStore, now: float) -> list:
    out: list = [store.list_metrics(), store.bucket_count(), store.changes]
    for ns, name, dims in store.list_metrics():
        for start, period in ((now - 600, 1), (now - 3600, 60), (now - 5 * 3600, 300), (now - 20 * 86400, 86400)):
            out.append(store.statistics(ns, name, dims, start, now + 60, period, STATS))
            out.append(sorted(store.datapoint_times(ns, name, dims, start, now + 60, period)))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_batch_rows_read_back_as_record_many(seed):
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    clock_a, clock_b = _Clock(t0), _Clock(t0)
    eager, lazy = MetricStore(clock_a), MetricStore(clock_b)
    dims = [{"EndpointName": f"e{i}", "VariantName": "AllTraffic"} for i in range(2)]
    batches = [lazy.batch("AWS/SageMaker", d, METRICS) for d in dims]
    t = t0
    for step in range(1500):
        # mostly sub-second steps, sometimes minutes to days: runs in one bucket, bucket changes, compactions
        steps = [0.0, 0.003, 0.2, 1.0, 7.0, 61.0, 400.0, 4000.0] if rng.random() < 0.97 else [3 * 3600.0, 16 * 86400.0]
        t += rng.choice(steps)
        clock_a.t = clock_b.t = t
        kind = rng.random()
        if kind < 0.8:
            i = rng.randrange(2)
            values = (rng.choice([rng.uniform(50, 5000), 123.0, 0.0, -7.5]), 1.0, 1.0 / rng.choice([1, 2, 3]))
            eager.record_many("AWS/SageMaker", dims[i], [(n, v, u) for (n, u), v in zip(METRICS, values, strict=True)],
                              t)
            batches[i].add(t, values)
        elif kind < 0.9:  # a high-resolution sample and a PutMetricData-like write between rows
            for store in (eager, lazy):
                store.record("AWS/SageMaker", "ConcurrentRequestsPerModel", dims[0], float(step % 5), t, "Count", 1)
                store.record_statistics("AWS/SageMaker", "ModelLatency", dims[1], 2.5, 40.0, 3.0, 30.0, t,
                                        "Microseconds")
        elif kind < 0.985:
            assert _read_all(lazy, t) == _read_all(eager, t)
        else:
            assert lazy.dumps() == eager.dumps()
    assert _read_all(lazy, t) == _read_all(eager, t)
    assert lazy.dumps() == eager.dumps()
    assert lazy.changes == eager.changes


def test_rows_count_for_a_clockless_store_now_and_survive_loads():
    lazy, eager = MetricStore(), MetricStore()
    batch = lazy.batch("NS", {"D": "1"}, METRICS[:1])
    for t in (100.0, 130.0, 250.0):
        batch.add(t, (t,))
        eager.record_many("NS", {"D": "1"}, [("ModelLatency", t, "Microseconds")], t)
    assert lazy.now() == eager.now() == 250.0
    copy = MetricStore()
    copy.loads(lazy.dumps())
    args = ("NS", "ModelLatency", {"D": "1"}, 0, 400, 60, STATS)
    assert copy.statistics(*args) == eager.statistics(*args) != []


def test_waiting_rows_stay_bounded():
    from catkit.autoscaling.metric_batches import FOLD_AT

    store = MetricStore(_Clock(1_700_000_000.0))
    batch = store.batch("NS", {"D": "1"}, METRICS)
    for i in range(5 * FOLD_AT):
        batch.add(1_700_000_000.0 + i, (1.0, 1.0, 1.0))
        assert len(store._lock.pending) < FOLD_AT  # folded by add itself, with no reader
    args = ("NS", "Invocations", {"D": "1"}, 1_699_990_000.0, 1_700_010_000.0, 86400, ["SampleCount"])
    assert store.statistics(*args)[0]["SampleCount"] == 5 * FOLD_AT
