"""widgets: the scaling panel, the deploy panel and the live monitor without a frontend (as in a
headless papermill run): values, validation in the sliders, plain messages when the endpoint is
gone or busy, the bounded live refresh, the static copy for saved notebooks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY
from helpers_fakes import describe_endpoint, describe_endpoint_config, endpoint_arn, not_found_error

from catkit.deploy import EndpointNotFoundError
from catkit.notebook._live import LiveRefresh, plain_error
from catkit.notebook.deploy_panel import DeployPanel, high_availability_warning
from catkit.notebook.widgets import EndpointNotInServiceError, ScalingPanel

RID = "endpoint/ep1/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
POLICY_ARN = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/sagemaker/" + RID + ":policyName/p"


def _no_current_scaling(stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("describe_scalable_targets", {"ScalableTargets": []})
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": []})


def _endpoint(stubs, status="InService", **kw):
    stubs["sagemaker"].add_response("describe_endpoint", describe_endpoint("ep1", status, **kw), {"EndpointName": "ep1"})


def test_panel_defaults_apply_and_refresh(session, stubs):
    _no_current_scaling(stubs)
    _endpoint(stubs)  # the panel reads the live count at once (no "instances: ?")
    panel = ScalingPanel(session, "ep1")
    assert "<b>2</b>" in panel.instances.value and "InService" in panel.instances.value
    assert panel.settings() == {"min_capacity": 2, "max_capacity": 10, "target_value": 1000.0,
                                "scale_out_cooldown": 60, "scale_in_cooldown": 300}
    panel.min_instances.value = 3
    panel.max_instances.value = 12
    panel.target_value.value = 600.0
    panel.scale_in_cooldown.value = 600
    _endpoint(stubs)  # apply checks the endpoint first
    aas = stubs["application-autoscaling"]
    aas.add_response("register_scalable_target", {}, {**TARGET, "MinCapacity": 3, "MaxCapacity": 12})
    aas.add_response("put_scaling_policy", {"PolicyARN": POLICY_ARN}, {
        **TARGET, "PolicyName": ANY, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 600.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 60, "ScaleInCooldown": 600, "DisableScaleIn": False}})
    policy = panel.apply()
    assert policy.policy_arn == POLICY_ARN and "3..12 instances" in panel.status.value
    _endpoint(stubs, "Updating", current=3, desired=5)
    assert panel.refresh() == {"status": "Updating", "current": 3, "desired": 5}
    assert "<b>3</b>" in panel.instances.value
    stubs.verify()


def test_panel_loads_current_settings(session, stubs):
    aas = stubs["application-autoscaling"]
    created = datetime(2026, 1, 1, tzinfo=UTC)
    aas.add_response("describe_scalable_targets", {"ScalableTargets": [{
        **TARGET, "MinCapacity": 4, "MaxCapacity": 30, "RoleARN": "arn:aws:iam::123456789012:role/x", "CreationTime": created}]})
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": [{
        "PolicyARN": POLICY_ARN, "PolicyName": "p", **TARGET, "PolicyType": "TargetTrackingScaling", "CreationTime": created,
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 250.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 30, "ScaleInCooldown": 900}}]})
    _endpoint(stubs)
    panel = ScalingPanel(session, "ep1")
    assert panel.settings() == {"min_capacity": 4, "max_capacity": 30, "target_value": 250.0,
                                "scale_out_cooldown": 30, "scale_in_cooldown": 900}
    assert panel.max_instances.max == 30


def test_sliders_keep_min_at_or_below_max(session):
    panel = ScalingPanel(session, "ep1", load=False)
    panel.max_instances.value = 5
    panel.min_instances.value = 8  # dragging min past max takes max along
    assert (panel.min_instances.value, panel.max_instances.value) == (8, 8)
    panel.max_instances.value = 3  # and dragging max below min takes min along
    assert (panel.min_instances.value, panel.max_instances.value) == (3, 3)
    assert panel.config.min_capacity <= panel.config.max_capacity


def test_labels_have_room_and_say_what_the_value_means(session):
    panel = ScalingPanel(session, "ep1", load=False)
    for control in (panel.min_instances, panel.max_instances, panel.target_value,
                    panel.scale_out_cooldown, panel.scale_in_cooldown):
        assert control.style.description_width == "15em", control.description
    assert panel.target_value.description == "target value"
    assert "invocations per instance per minute" in panel.target_unit.value
    assert "concurrent requests per model" in ScalingPanel(session, "ep1", metric="high_resolution",
                                                           load=False).target_unit.value


def test_deleted_endpoint_disables_the_panel_with_a_plain_message(session, stubs):
    panel = ScalingPanel(session, "ep1", load=False)
    stubs["sagemaker"].add_client_error("describe_endpoint", **not_found_error("ep1"))
    assert panel.refresh()["status"] is None
    assert "no longer exists" in panel.instances.value
    assert "no longer exists (deleted)" in panel.status.value and "ValidationException" not in panel.status.value
    assert all(c.disabled for c in panel.controls)
    stubs["sagemaker"].add_client_error("describe_endpoint", **not_found_error("ep1"))
    with pytest.raises(EndpointNotFoundError):
        panel.apply()
    stubs["sagemaker"].add_client_error("describe_endpoint", **not_found_error("ep1"))
    panel.apply_button.click()  # a click never shows a raw ClientError
    assert "no longer exists" in panel.status.value and "ClientError" not in panel.status.value


def test_busy_endpoint_disables_apply_until_in_service(session, stubs):
    panel = ScalingPanel(session, "ep1", load=False)
    _endpoint(stubs, "Updating", current=2, desired=5)
    panel.refresh()
    assert panel.apply_button.disabled and not panel.max_instances.disabled
    assert "is Updating" in panel.status.value
    _endpoint(stubs, "Updating", current=2, desired=5)
    with pytest.raises(EndpointNotInServiceError, match="Updating"):
        panel.apply()
    _endpoint(stubs, current=5, desired=5)
    panel.refresh()
    assert not panel.apply_button.disabled and "available" in panel.status.value


def test_plain_error_is_the_aws_message():
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "ValidationException", "Message": "Unable to register scalable target"}},
                      "RegisterScalableTarget")
    assert plain_error(exc) == "Unable to register scalable target (ValidationException)"
    assert plain_error(ValueError("min above max")) == "min above max"


def test_display_does_not_block_without_frontend(session, capsys):
    panel = ScalingPanel(session, "ep1", load=False)
    assert panel.display() is panel
    assert "ScalingPanel(ep1/AllTraffic" in capsys.readouterr().out  # plain text without a frontend


def test_rich_display_keeps_a_static_copy(session):
    panel = ScalingPanel(session, "ep1", load=False)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "min .. max instances" in bundle["text/html"] and "2 .. 10" in bundle["text/html"]
    panel.stop_auto_refresh()


def test_live_refresh_runs_only_while_shown_and_stops_when_gone(session, monkeypatch):
    panel = ScalingPanel(session, "ep1", load=False, refresh_interval=0.01)
    calls: list[float] = []
    gone_after = 3

    def fake_refresh():
        calls.append(time.monotonic())
        return {"status": None if len(calls) >= gone_after else "InService", "current": 2, "desired": 2}

    monkeypatch.setattr(panel, "refresh", fake_refresh)
    panel.start_auto_refresh()
    try:
        time.sleep(0.1)  # no frontend view: the refresh must not call the API at all
        assert calls == [] and panel.live.running
        panel.widget._view_count = 1  # a frontend shows the panel
        deadline = time.monotonic() + 10
        while panel.live.running and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not panel.live.running and len(calls) == gone_after  # it stopped itself once the endpoint went
    finally:
        panel.stop_auto_refresh()
    with pytest.raises(ValueError, match="interval"):
        panel.start_auto_refresh(0)


def test_live_refresh_is_bounded_in_time():
    class W:
        _view_count = 1

    ticks = threading.Event()
    live = LiveRefresh(W(), lambda: bool(ticks.set()) or True, interval=0.01, max_seconds=0.2, name="t")
    live.start()
    assert ticks.wait(10)
    deadline = time.monotonic() + 10
    while live.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not live.running


def test_panel_config_is_a_scaling_config(session):
    from catkit.autoscaling.config import HIGH_RES_METRIC, ScalingConfig

    panel = ScalingPanel(session, "ep1", metric="high_resolution", load=False)
    assert panel.metric == HIGH_RES_METRIC
    panel.target_value.value = 5.0
    assert panel.config == ScalingConfig(metric=HIGH_RES_METRIC, target_value=5.0)


# -- deploy panel --------------------------------------------------------------------------------
def test_deploy_panel_warns_below_two_instances_and_prices(session):
    panel = DeployPanel(session, "s3://b/model.tar.gz", "ep1")
    assert panel.ha_warning.value == "" and "$0.46/hour" in panel.price.value  # 2 x ml.m5.xlarge, bundled
    panel.instance_count.value = 1
    assert "single point of failure" in panel.ha_warning.value
    assert high_availability_warning(1) in panel.ha_warning.value.replace("&#x27;", "'")
    assert high_availability_warning(2) == ""
    assert "ml.m5.xlarge (4 vCPU, 16 GiB)" in [label for label, _ in panel.instance_type.options]


def test_deploy_panel_reuses_and_resizes_a_running_endpoint(session, stubs, no_sleep):
    panel = DeployPanel(session, "s3://b/model.tar.gz", "ep1", instance_count=3, poll=0.1)
    sm = stubs["sagemaker"]
    _endpoint(stubs)  # exists with 2
    _endpoint(stubs)
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1"), {"EndpointConfigName": "ep1"})
    _endpoint(stubs)
    sm.add_response("update_endpoint_weights_and_capacities", {"EndpointArn": endpoint_arn("ep1")},
                    {"EndpointName": "ep1", "DesiredWeightsAndCapacities": [
                        {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}]})
    _endpoint(stubs, current=3, desired=3)
    _endpoint(stubs, current=3, desired=3)
    state = panel.deploy(progress=False)
    assert (state.status, state.current) == ("InService", 3) and "InService" in panel.status.value
    stubs.verify()


def test_deploy_panel_refuses_another_instance_type_in_plain_words(session, stubs):
    panel = DeployPanel(session, "s3://b/model.tar.gz", "ep1", instance_type="ml.c5.xlarge")
    sm = stubs["sagemaker"]
    _endpoint(stubs)
    _endpoint(stubs)
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1"), {"EndpointConfigName": "ep1"})
    panel.deploy_button.click()
    assert "already runs ml.m5.xlarge" in panel.status.value and not panel.deploy_button.disabled
