"""Code that uses the wall clock (``datetime.now()`` windows, as AWS's examples do) works against
the local backend: at time scale 1 the emulated clock is the wall clock; on a scaled clock,
now-anchored CloudWatch windows are read relative to the emulated now."""

from __future__ import annotations

import datetime as dt

import pytest

from catkit.testing.endpoints import deploy_endpoint, upload_model
from catkit.testing.wait import wait_until

UTC = dt.UTC


def _invoke(b, name, n):
    rt = b.client("sagemaker-runtime")
    for _ in range(n):
        rt.invoke_endpoint(EndpointName=name, Body=b"x", ContentType="text/plain")


def _last_hour(metric_name, name):
    now = dt.datetime.now(UTC)
    return {
        "Namespace": "AWS/SageMaker", "MetricName": metric_name, "StartTime": now - dt.timedelta(minutes=60),
        "EndTime": now, "Period": 60,
        "Dimensions": [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
    }


def _metric_data(cw, name):
    q = _last_hour("Invocations", name)
    return cw.get_metric_data(
        StartTime=q["StartTime"], EndTime=q["EndTime"],
        MetricDataQueries=[{"Id": "inv", "MetricStat": {"Metric": {k: q[k] for k in (
            "Namespace", "MetricName", "Dimensions")}, "Period": 60, "Stat": "Sum"}}],
    )["MetricDataResults"][0], q


@pytest.mark.parametrize("time_scale", [1, 1000])
def test_datetime_now_windowed_metric_queries_find_datapoints(local_backend_factory, time_scale):
    b = local_backend_factory(time_scale=time_scale, env={"CATKIT_PROVISIONING_SECONDS": "0"})
    deploy_endpoint(b.client("sagemaker"), "wall", upload_model(b))
    if time_scale > 1:  # the scaled clock is (at least) an hour ahead of the wall clock
        wait_until(lambda: b.info()["now"] - dt.datetime.now(UTC).timestamp() > 2 * 3600, timeout=60)
    _invoke(b, "wall", 3)
    cw = b.client("cloudwatch")
    q = _last_hour("Invocations", "wall")
    points = cw.get_metric_statistics(Statistics=["Sum"], **q)["Datapoints"]
    assert sum(p["Sum"] for p in points) == 3
    assert all(q["StartTime"] - dt.timedelta(minutes=1) <= p["Timestamp"] <= q["EndTime"] for p in points)
    result, q = _metric_data(cw, "wall")
    assert sum(result["Values"]) == 3
    assert all(q["StartTime"] - dt.timedelta(minutes=1) <= t <= q["EndTime"] for t in result["Timestamps"])
    # a custom metric published with the client's own clock is found the same way
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Orders", "Value": 5.0,
                                                      "Timestamp": dt.datetime.now(UTC)}])
    now = dt.datetime.now(UTC)
    got = cw.get_metric_statistics(Namespace="App", MetricName="Orders", StartTime=now - dt.timedelta(minutes=10),
                                   EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=["Sum"])
    assert [p["Sum"] for p in got["Datapoints"]] == [5.0]


def test_datetime_now_windowed_scaling_activities_at_the_default_time_scale(local_backend_factory):
    b = local_backend_factory(env={"CATKIT_PROVISIONING_SECONDS": "0"})  # time scale 1: the wall clock
    deploy_endpoint(b.client("sagemaker"), "acts", upload_model(b))
    since = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    aas = b.client("application-autoscaling")
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/acts/variant/AllTraffic",
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                 MinCapacity=2, MaxCapacity=3)

    def recent():
        acts = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
        return [a for a in acts if since <= a["StartTime"] <= dt.datetime.now(UTC)]

    acts = wait_until(recent, timeout=60)
    assert "desired" in acts[0]["Description"].lower()
