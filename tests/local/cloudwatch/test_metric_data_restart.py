"""CloudWatch metric data survives a backend restart (issue 14 §9), and a metric store dump is read
back only when it is one."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from catkit.autoscaling.metrics_store import MetricStore
from catkit.testing import wait_until


def _stats(cw, start, end):
    got = cw.get_metric_statistics(Namespace="Cats", MetricName="Hats", Dimensions=[{"Name": "Color", "Value": "red"}],
                                   StartTime=start, EndTime=end, Period=60,
                                   Statistics=["Sum", "SampleCount", "Maximum"], ExtendedStatistics=["p50"])
    return sorted((p["Timestamp"], p["Sum"], p["SampleCount"], p["Maximum"], p["ExtendedStatistics"]["p50"])
                  for p in got["Datapoints"])


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_metric_data_survives_a_restart(local_backend_factory, how):
    backend = local_backend_factory(components=("cloudwatch",))
    cw = backend.client("cloudwatch")
    now = dt.datetime.fromtimestamp(backend.info()["now"], dt.UTC).replace(second=0, microsecond=0)
    start, end = now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=2)
    for minute in range(5):
        cw.put_metric_data(Namespace="Cats", MetricData=[{
            "MetricName": "Hats", "Dimensions": [{"Name": "Color", "Value": "red"}],
            "Timestamp": now - dt.timedelta(minutes=minute), "Values": [1.0, 2.0, 3.0 + minute], "Unit": "Count"}])
    before = _stats(cw, start, end)
    assert len(before) == 5
    if how == "kill_9":  # saved within a few real seconds of the last datapoint: wait for a copy holding all
        dims = {"Color": "red"}
        t0, t1 = start.timestamp(), end.timestamp()

        def saved_all() -> bool:
            path = backend.home / "metrics.bin"
            if not path.exists():
                return False
            saved = MetricStore()
            saved.loads(path.read_bytes())
            points = saved.statistics("Cats", "Hats", dims, t0, t1, 60, ["SampleCount"])
            return sum(p["SampleCount"] for p in points) == 15

        wait_until(saved_all, timeout=60, what="metric data saved")
    backend.restart(kill=how == "kill_9")
    cw = backend.client("cloudwatch")
    assert _stats(cw, start, end) == before
    listed = cw.list_metrics(Namespace="Cats")["Metrics"]
    assert [m["MetricName"] for m in listed] == ["Hats"]


def test_a_metric_store_dump_round_trips_and_nothing_else_is_unpickled():
    store = MetricStore()
    for t in range(0, 600, 7):
        store.record("N", "M", {"D": "x"}, float(t % 13), 1_000_000.0 + t, storage_resolution=1)
    copy = MetricStore()
    copy.loads(store.dumps())
    args = ("N", "M", {"D": "x"}, 1_000_000.0, 1_000_600.0, 60, ["Sum", "Maximum", "p90"])
    assert copy.statistics(*args) == store.statistics(*args)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(ValueError):
        copy.loads(pickle.dumps(("catkit-metrics-1", copy._retention, 0.0, {"x": Evil()})))
    with pytest.raises(ValueError):
        copy.loads(b"not a dump")
    assert copy.statistics(*args) == store.statistics(*args)  # a refused dump changes nothing
