"""widgets: ScalingPanel builds and applies without a frontend (as in a headless papermill run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import ANY
from helpers_fakes import describe_endpoint

from catkit.notebook.widgets import ScalingPanel

RID = "endpoint/ep1/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
POLICY_ARN = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/sagemaker/" + RID + ":policyName/p"


def _no_current_scaling(stubs):
    aas = stubs["application-autoscaling"]
    aas.add_response("describe_scalable_targets", {"ScalableTargets": []})
    aas.add_response("describe_scaling_policies", {"ScalingPolicies": []})


def test_panel_defaults_apply_and_refresh(session, stubs):
    _no_current_scaling(stubs)
    panel = ScalingPanel(session, "ep1")
    assert panel.settings() == {"min_capacity": 2, "max_capacity": 10, "target_value": 1000.0,
                                "scale_out_cooldown": 60, "scale_in_cooldown": 300}
    panel.min_instances.value = 3
    panel.max_instances.value = 12
    panel.target_value.value = 600.0
    panel.scale_in_cooldown.value = 600
    aas = stubs["application-autoscaling"]
    aas.add_response("register_scalable_target", {}, {**TARGET, "MinCapacity": 3, "MaxCapacity": 12})
    aas.add_response("put_scaling_policy", {"PolicyARN": POLICY_ARN}, {
        **TARGET, "PolicyName": ANY, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 600.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 60, "ScaleInCooldown": 600, "DisableScaleIn": False}})
    policy = panel.apply()
    assert policy.policy_arn == POLICY_ARN and "3..12 instances" in panel.status.value
    stubs["sagemaker"].add_response("describe_endpoint", describe_endpoint("ep1", "Updating", current=3, desired=5))
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
    panel = ScalingPanel(session, "ep1")
    assert panel.settings() == {"min_capacity": 4, "max_capacity": 30, "target_value": 250.0,
                                "scale_out_cooldown": 30, "scale_in_cooldown": 900}
    assert panel.max_instances.max == 30


def test_apply_rejects_min_above_max_and_button_shows_error(session, stubs):
    panel = ScalingPanel(session, "ep1", load=False)
    panel.min_instances.value = 8
    panel.max_instances.value = 3
    with pytest.raises(ValueError, match="above max"):
        panel.apply()
    panel.apply_button.click()  # the button handler must not raise; it reports in the panel
    assert "error" in panel.status.value and "above max" in panel.status.value


def test_display_does_not_block_without_frontend(session, capsys):
    panel = ScalingPanel(session, "ep1", load=False)
    assert panel.display() is panel
    assert "VBox" in capsys.readouterr().out  # plain-text repr without a frontend


def test_auto_refresh_updates_label_in_background(session, monkeypatch):
    import threading

    panel = ScalingPanel(session, "ep1", load=False)
    calls = threading.Event()

    def fake_refresh():
        panel.instances.value = "instances: <b>7</b>"
        calls.set()
        return {}

    monkeypatch.setattr(panel, "refresh", fake_refresh)
    panel.start_auto_refresh(interval=0.01)
    try:
        assert calls.wait(10)
    finally:
        panel.stop_auto_refresh()
    assert panel._auto_thread is None and "<b>7</b>" in panel.instances.value
    with pytest.raises(ValueError, match="interval"):
        panel.start_auto_refresh(0)


def test_panel_config_is_a_scaling_config(session):
    from catkit.autoscaling.config import HIGH_RES_METRIC, ScalingConfig

    panel = ScalingPanel(session, "ep1", metric="high_resolution", load=False)
    assert panel.metric == HIGH_RES_METRIC
    panel.target_value.value = 5.0
    assert panel.config == ScalingConfig(metric=HIGH_RES_METRIC, target_value=5.0)
    panel.min_instances.value = 11
    with pytest.raises(ValueError, match="above max"):
        panel.config  # noqa: B018
