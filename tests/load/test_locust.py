"""catkit's shapes on Locust: the rate plan (pure), rows -> LoadResult, and a distributed run (a master
and two workers on loopback) against the local backend through ``catkit load locust``."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from botocore.credentials import Credentials

from catkit import cli
from catkit.whatif import load, shapes
from catkit.whatif.distributed import ROW_COLUMNS, RatePlan, locustfile_path, result_from_rows


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_rate_plan_users_times_pace_is_the_shapes_rate(scale):
    shape = shapes.Step(before_rps=2.5 / scale, after_rps=7 / scale, at_s=30 * scale)
    plan = RatePlan(shape, duration_s=60 * scale, time_scale=scale, per_user_rps=2.0)
    assert plan.real_duration_s == pytest.approx(60)
    for t, rate, users in ((0.0, 2.5, 2), (29.9, 2.5, 2), (30.1, 7.0, 4), (59.9, 7.0, 4)):
        assert plan.real_rate(t) == pytest.approx(rate)
        assert plan.users(t) == users
        assert users / plan.interval(t) == pytest.approx(rate)  # all users together: the shape's rate
        assert 1 / plan.interval(t) <= 2.0 + 1e-9  # no user faster than per_user_rps
    assert plan.tick(10) == (2, 10.0)
    assert plan.tick(60) is None and plan.real_rate(60) == 0 and plan.interval(60) is None


def test_rate_plan_zero_rate_and_caps():
    plan = RatePlan(shapes.Spike(at_s=10, duration_s=5, extra_rps=100), duration_s=20, per_user_rps=1.0, max_users=40)
    assert plan.users(5) == 0 and plan.interval(5) is None and plan.tick(5) == (0, 10.0)
    assert plan.users(12) == 40  # capped
    assert 40 / plan.interval(12) == pytest.approx(100)  # capped users pace faster to keep the rate
    for bad in ({"time_scale": 0}, {"per_user_rps": -1}, {"duration_s": 0}):
        with pytest.raises(ValueError):
            RatePlan(shapes.Constant(1), **{"duration_s": 10, **bad})


def test_rows_become_the_same_frame_as_run_load(fake_endpoint):
    ep = fake_endpoint()
    target = load.Target(ep.url, "us-east-1", Credentials("AKIDEXAMPLE", "secret"), "ep")
    generated = load.run_load(target, shape=10.0, duration_s=0.3, progress=False, target_models=["a", "b"])
    rows = pd.DataFrame({
        "time": [2.0, 0.5, 1.0, 1.5], "sent_delay_ms": [0.0] * 4, "latency_ms": [3.0, 1.0, 2.0, 4.0],
        "status": [200, 500, 200, 200], "error": ["", "ModelError", "", ""], "variant": ["AllTraffic", "", "A", "A"],
        "target_model": ["a", "a", "a", "b"], "worker": ["1", "0", "0", "1"],
    })
    result = result_from_rows(rows, endpoint_name="ep", shape=shapes.Constant(2), duration_s=2, time_scale=60.0,
                              start_timestamp=1000.0, real_seconds=0.1)
    f = result.frame
    assert list(f.columns) == [*generated.frame.columns[:8], "worker", "cold"]
    assert set(generated.frame.columns) <= set(f.columns)
    assert f["time"].tolist() == [0.5, 1.0, 1.5, 2.0]  # in send order
    assert f["timestamp"].tolist() == [1000.5, 1001.0, 1001.5, 1002.0]
    assert f["cold"].tolist() == [None, True, True, False]  # first *successful* call of each model
    assert result.planned == 4 and result.ok == 3
    assert result.summary()["errors"] == {"ModelError": 1}
    assert len(result.timeline(1.0)) == 3


def test_locustfile_is_shipped_with_catkit():
    text = Path(locustfile_path()).read_text()
    assert "class CatkitShape(LoadTestShape)" in text and "class InvokeEndpointUser(FastHttpUser)" in text


@pytest.fixture(scope="module")
def echo_endpoint():
    # Never import locust here: it monkey-patches the standard library (gevent) on import.
    if importlib.util.find_spec("locust") is None:
        pytest.skip("needs Locust (catkit[locust])")
    from catkit.testing import deploy_endpoint, start_local_backend, upload_model

    with start_local_backend(time_scale=60) as backend:
        sm = backend.client("sagemaker")
        deploy_endpoint(sm, "locust-echo", upload_model(backend), count=1)
        yield backend


@pytest.mark.slow
def test_distributed_run_master_and_two_workers(echo_endpoint, tmp_path, capsys, monkeypatch):
    """`catkit load locust`: a master and two worker processes on 127.0.0.1, against the local
    backend at time scale 60; an 8-real-second step from 6 to 12 requests per second."""
    backend = echo_endpoint
    monkeypatch.setenv("CATKIT_HOME", str(backend.home))
    out = tmp_path / "rows.csv"
    logs = tmp_path / "logs"
    shape = "step:before_rps=0.1,after_rps=0.2,at_s=240"  # emulated: x60 real requests per second
    rc = cli.main(["load", "locust", "locust-echo", "--shape", shape, "--duration", "8m", "--workers", "2",
                   "--backend", "local", "--home", str(backend.home), "--log-dir", str(logs), "--out", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0, (logs / "master.log").read_text()[-3000:]
    frame = pd.read_csv(out, keep_default_na=False)
    planned = 0.1 * 240 + 0.2 * 240  # 72 requests (emulated rates x emulated seconds)
    assert summary["requests"] == len(frame) and summary["ok"] == len(frame) and summary["workers"] == 2
    assert summary["time_scale"] == 60.0
    # Users pace themselves: never more than planned (one extra per user at a rate change at most);
    # less only by Locust's ramp-up (users start during the first second).
    assert planned * 0.25 <= len(frame) <= planned + 12
    assert set(frame["worker"].astype(str)) == {"0", "1"}  # both workers sent and reported rows
    assert (frame["status"] == 200).all() and (frame["error"] == "").all()
    assert set(frame["variant"]) == {"AllTraffic"}
    assert frame["time"].between(0, 480).all() and frame["time"].is_monotonic_increasing
    assert set(ROW_COLUMNS) <= set(frame.columns) and {"timestamp", "cold"} <= set(frame.columns)
    assert np.isfinite(frame["latency_ms"]).all() and math.isfinite(summary["p99_ms"])
