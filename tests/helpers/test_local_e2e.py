"""End to end through ``Session(backend="local")``: the helpers' one code path against the
embedded backend (a real gateway process and real model-server processes).

deploy -> invoke/batch -> resize -> blue/green update -> metrics -> cost -> multi-model S3 side ->
delete by tag; target tracking under load -> activities, cost timeline, plot, panel (only when the
backend serves application-autoscaling).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from catkit import cost, metrics, mme, scaling
from catkit import deploy as d
from catkit import invoke as inv
from catkit.local import lifecycle
from catkit.notebook import plots
from catkit.notebook.widgets import ScalingPanel
from catkit.session import Session
from catkit.testing import model_archive, wait_until

pytestmark = pytest.mark.slow

INFERENCE = b'''
import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "version.txt")) as f:
        return f.read().strip()


def transform_fn(model, body, content_type, accept):
    return json.dumps({"version": model, "bytes": len(body)}), "application/json"
'''


def _archive(path: Path, version: str) -> str:
    path.write_bytes(model_archive(INFERENCE, {"version.txt": version}))
    return str(path)


@pytest.fixture(scope="module")
def local():
    home = Path(tempfile.mkdtemp(prefix="catkit-helpers-e2e-"))
    try:
        session = Session(backend="local", home=str(home), time_scale=1000)
        yield session, home
    finally:
        lifecycle.stop(home, timeout=15)
        shutil.rmtree(home, ignore_errors=True)


def _served(session: Session) -> set[str]:
    with urllib.request.urlopen(f"{session.endpoint_url}/_catkit/info", timeout=5) as resp:
        return set(json.loads(resp.read())["services"])


def test_deploy_invoke_resize_update_cost_delete(local):
    session, home = local
    assert session.backend == "local" and session.endpoint_url.startswith("http://127.0.0.1:")
    assert session.pricing is None
    v1, v2 = _archive(home / "v1.tar.gz", "v1"), _archive(home / "v2.tar.gz", "v2")

    ep = d.deploy(session, v1, name="helpers-e2e", image_uri="local/echo:1", poll=0.2, progress=False,
                  tags={"catkit:purpose": "helpers-e2e"})
    assert ep.status == "InService" and ep.model_data.startswith(f"s3://{session.bucket}/")

    pred = inv.invoke(session, "helpers-e2e", {"x": 1})
    assert pred.value == {"version": "v1", "bytes": 8} and pred.variant == "AllTraffic" and pred.latency_ms > 0

    desc = d.set_instance_count(session, "helpers-e2e", 3, poll=0.2, progress=False)
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 3

    # blue/green: traffic keeps flowing while the new fleet comes up
    stop, seen, errors = threading.Event(), [], []

    def traffic() -> None:
        while not stop.is_set():
            try:
                seen.append(inv.invoke(session, "helpers-e2e", b"ping").value["version"])
            except Exception as exc:
                errors.append(exc)
            stop.wait(0.02)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        d.update_model(session, "helpers-e2e", v2, poll=0.2, progress=False, delete_old=True)
    finally:
        stop.set()
        worker.join()
    assert errors == [] and "v1" in seen
    assert inv.invoke(session, "helpers-e2e", b"abc").value == {"version": "v2", "bytes": 3}
    # blue/green kept the capacity
    desc = d.describe_endpoint(session, "helpers-e2e")
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 3

    preds = inv.invoke_batch(session, "helpers-e2e", [[i] for i in range(12)], progress=False)
    assert all(p.ok for p in preds) and {p.value["version"] for p in preds} == {"v2"}

    frame = metrics.endpoint_metrics(session, "helpers-e2e", metrics=["Invocations"], minutes=24 * 60)
    # 2 single calls + the traffic during the update + 12 batch calls, at emulated timestamps
    assert frame["value"].sum() == 2 + len(seen) + 12

    bill = cost.endpoint_cost(session, "helpers-e2e")
    assert bill.usd > 0 and bill.prices["ml.m5.xlarge"].usd_per_hour == 0.23  # bundled table locally
    assert bill.usd_per_month == pytest.approx(3 * 0.23 * 730)

    busy = cost.find_idle_endpoints(session, hours=24, include_all=True)
    assert busy.set_index("endpoint").loc["helpers-e2e", "idle"] == False  # noqa: E712 - numpy bool

    assert d.delete_tagged_endpoints(session, "catkit:purpose", "helpers-e2e", wait=True, poll=0.2) == [
        "helpers-e2e"
    ]
    with pytest.raises(d.EndpointNotFoundError):
        d.describe_endpoint(session, "helpers-e2e")


def test_multi_model_prefix_management(local):
    session, home = local
    v1 = _archive(home / "m1.tar.gz", "m1")
    ep = mme.deploy_multi_model(session, name="helpers-mme", image_uri="local/mme:1", poll=0.2, progress=False,
                                tags={"catkit:purpose": "helpers-e2e"})
    assert ep.status == "InService" and ep.model_data.endswith("/catkit/mme/helpers-mme/")
    assert mme.model_prefix(session, "helpers-mme") == ep.model_data
    assert mme.add_model(session, "helpers-mme", v1, name="cats/m1.tar.gz") == "cats/m1.tar.gz"
    assert mme.add_model(session, "helpers-mme", f"{ep.model_data}cats/m1.tar.gz", name="m1-copy.tar.gz")
    assert mme.list_models(session, "helpers-mme") == ["cats/m1.tar.gz", "m1-copy.tar.gz"]
    mme.remove_model(session, "helpers-mme", "m1-copy.tar.gz")
    assert mme.list_models(session, "helpers-mme") == ["cats/m1.tar.gz"]
    assert d.delete_endpoint(session, "helpers-mme")[0] == "endpoint:helpers-mme"


def _deploy_for_scaling(local, name: str) -> Session:
    """Deploy the echo model as ``name`` (skips where the backend has no application-autoscaling)."""
    session, home = local
    if "application-autoscaling" not in _served(session):
        pytest.skip("this build of the local backend does not serve application-autoscaling yet")
    d.deploy(session, _archive(home / f"{name}.tar.gz", name), name=name, image_uri="local/echo:1",
             poll=0.2, progress=False)
    return session


def _load_until(session: Session, name: str, pick, **batch) -> object:
    """Send batches of 20 requests until ``pick(activities)`` has rows (60 s at most); those rows."""
    found = []

    def picked() -> bool:
        inv.invoke_batch(session, name, [[1]] * 20, progress=False, **batch)
        found[:] = [pick(scaling.scaling_activities(session, name))]
        return len(found[0]) > 0

    wait_until(picked, 60, 0, what=f"a scaling activity of {name} under load")
    return found[0]


def test_autoscaling_under_load_shows_in_activities_cost_and_plot(local):
    session = _deploy_for_scaling(local, "helpers-scale")
    home = local[1]
    # target 1 invocation/instance/minute: at time scale 1000 a few requests per real second exceed it.
    # No scale-in, so the assertions below cannot race the (fast, emulated) 15-minute AlarmLow.
    policy = scaling.configure_target_tracking(session, "helpers-scale", min_capacity=2, max_capacity=3,
                                               target_value=1.0, disable_scale_in=True)
    assert any("-AlarmHigh-" in name for name in policy.alarms)
    assert scaling.describe_target(session, "helpers-scale")["MaxCapacity"] == 3
    panel = ScalingPanel(session, "helpers-scale")
    assert panel.settings()["target_value"] == 1.0 and panel.settings()["max_capacity"] == 3

    scaled = _load_until(session, "helpers-scale",
                         lambda acts: acts[(acts["status"] == "Successful") & (acts["desired_capacity"] == 3)],
                         max_workers=4)
    assert len(scaled) == 1, scaled
    d.wait_for_endpoint(session, "helpers-scale", poll=0.2, progress=False)
    assert panel.refresh()["current"] == 3

    bill = cost.endpoint_cost(session, "helpers-scale")
    assert bill.timeline["instances"].tolist() == [2, 3] and bill.notes == []
    fig = plots.plot_scaling_history(session, "helpers-scale", minutes=24 * 60)
    assert [t.get_text() for t in fig.axes[0].texts] == ["→3"]
    fig.savefig(home / "scaling.png")

    assert scaling.remove_scaling(session, "helpers-scale") == {"policies": 1, "scheduled_actions": 0, "targets": 1}
    d.delete_endpoint(session, "helpers-scale")


def test_step_scaling_alarm_drives_scale_out(local):
    session = _deploy_for_scaling(local, "helpers-step")
    policy = scaling.configure_step_scaling(session, "helpers-step", threshold=1, steps=[(0, None, 1)],
                                            max_capacity=3, cooldown=60)
    done = _load_until(session, "helpers-step", lambda acts: acts[acts["status"] == "Successful"])
    assert len(done) >= 1, "the step alarm never triggered a scale-out within 60 s"
    assert done["desired_capacity"].iloc[0] == 3 and policy.alarms[0] in done["cause"].iloc[0]
    assert scaling.remove_scaling(session, "helpers-step")["policies"] == 1
    alarms = session.cloudwatch.describe_alarms(AlarmNamePrefix="catkit-step-helpers-step")["MetricAlarms"]
    assert alarms == []
    d.delete_endpoint(session, "helpers-step")


def test_deploy_panel_live_monitor_and_scaling_panel_on_the_local_backend(local):
    """The notebook panels against the real backend: deploy (then reuse and resize), watch traffic
    live, and the scaling panel disabling itself once the endpoint is deleted."""
    from catkit.notebook.deploy_panel import DeployPanel
    from catkit.notebook.monitor import LiveMonitor

    session, home = local
    panel = DeployPanel(session, _archive(home / "panel.tar.gz", "p1"), "helpers-panel", poll=0.2,
                        image_uri="local/echo:1", tags={"catkit:purpose": "helpers-e2e"})
    assert panel.deploy(progress=False).current == 2
    panel.instance_count.value = 3
    state = panel.deploy(progress=False)  # running it again reuses the endpoint and resizes it
    assert (state.status, state.current) == ("InService", 3) and "InService" in panel.status.value

    with LiveMonitor(session, "helpers-panel", interval=0.05) as monitor:
        inv.invoke_batch(session, "helpers-panel", [[1]] * 30, progress=False)
        wait_until(lambda: len(monitor.samples) >= 3, 30, 0.02, what="three monitor samples")
    assert not monitor.running and monitor.final["current"] == 3 and monitor.final["status"] == "InService"
    assert list(monitor.history.columns) == ["timestamp", "status", "current", "desired"]
    assert monitor.chart.value.startswith("<svg") and "instances <b>3</b>" in monitor.summary.value
    assert "image/png" in monitor._repr_mimebundle_()  # the saved notebook keeps the final chart

    scaling_panel = ScalingPanel(session, "helpers-panel")
    assert "<b>3</b>" in scaling_panel.instances.value and not scaling_panel.apply_button.disabled
    d.delete_endpoint(session, "helpers-panel", wait=True, poll=0.2, progress=False)
    assert scaling_panel.refresh()["status"] is None and scaling_panel.apply_button.disabled
    assert "no longer exists" in scaling_panel.status.value
