"""Helpers for the idle-cost answers: endpoint kinds (serverless, asynchronous), their costs, and
asynchronous inference with scale to zero end to end through ``Session(backend="local")``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from catkit import cost, scaling
from catkit import deploy as d
from catkit import invoke as inv
from catkit.endpoint_kinds import AsyncInference, Serverless, production_variant
from catkit.local import lifecycle
from catkit.session import Session
from catkit.testing import echo_archive


def test_serverless_limits_are_aws():
    Serverless(memory_mb=6144, max_concurrency=200, provisioned_concurrency=200)
    for bad in (dict(memory_mb=1536), dict(memory_mb=8192), dict(max_concurrency=0), dict(max_concurrency=201),
                dict(max_concurrency=5, provisioned_concurrency=6)):
        with pytest.raises(ValueError):
            Serverless(**bad)


def test_serverless_variant_has_no_instance_fields():
    pv = production_variant("AllTraffic", "m", "ml.m5.xlarge", 2, Serverless(2048, 10, 2))
    assert pv["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10, "ProvisionedConcurrency": 2}
    assert "InstanceType" not in pv and "InitialInstanceCount" not in pv
    assert production_variant("AllTraffic", "m", "ml.m5.xlarge", 2)["InitialInstanceCount"] == 2


def test_async_config():
    cfg = AsyncInference("s3://b/out", "s3://b/fail", 4, success_topic="arn:aws:sns:us-east-1:123456789012:t").to_config()
    assert cfg == {
        "OutputConfig": {"S3OutputPath": "s3://b/out", "S3FailurePath": "s3://b/fail",
                         "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:123456789012:t"}},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    }
    with pytest.raises(ValueError):
        AsyncInference("b/out")
    with pytest.raises(ValueError):
        AsyncInference("s3://b/out", max_concurrent_per_instance=1001)


def test_serverless_cost_is_gb_seconds_plus_data():
    c = cost.serverless_cost(100_000, 0.2, 2048, request_bytes=50_000, response_bytes=1_000)
    assert c.gb_seconds == pytest.approx(100_000 * 0.2 * 2)
    assert c.compute_usd == pytest.approx(40_000 * cost.SERVERLESS_USD_PER_GB_SECOND)
    assert c.data_usd == pytest.approx(100_000 * 51_000 / 1024**3 * cost.SERVERLESS_USD_PER_GB_PROCESSED)
    assert c.provisioned_usd == 0 and c.total_usd == pytest.approx(c.compute_usd + c.data_usd)
    warm = cost.serverless_cost(0, 0.2, 1024, provisioned_concurrency=2, hours=1)
    assert warm.total_usd == pytest.approx(2 * 1 * 3600 * cost.PROVISIONED_USD_PER_GB_SECOND)


def test_async_cost_is_instance_time():
    price = cost.price_per_hour(None, "ml.m5.xlarge").usd_per_hour
    assert cost.async_cost("ml.m5.xlarge", 3.5) == pytest.approx(3.5 * price)
    assert cost.async_cost("ml.m5.xlarge", 0) == 0


@pytest.fixture(scope="module")
def local():
    home = Path(tempfile.mkdtemp(prefix="catkit-idle-helpers-"))
    try:
        yield Session(backend="local", home=str(home), time_scale=120), home
    finally:
        lifecycle.stop(home, timeout=15)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_deploy_async_invoke_and_scale_to_zero(local):
    session, home = local
    archive = home / "echo.tar.gz"
    archive.write_bytes(echo_archive())
    out = f"s3://{session.bucket}/async-out"
    ep = d.deploy(session, str(archive), name="idle-async", instance_count=1, progress=False,
                  async_inference=AsyncInference(out, f"s3://{session.bucket}/async-fail", 2))
    assert ep.status == "InService"
    policies = scaling.configure_scale_to_zero(session, "idle-async", max_capacity=1, backlog_per_instance=2,
                                               scale_in_cooldown=60, wake_cooldown=60)
    assert [p.policy_name for p in policies] == ["catkit-backlog-per-instance", "catkit-wake-from-zero"]
    target = scaling.describe_target(session, "idle-async")
    assert target is not None and target["MinCapacity"] == 0
    ok = inv.invoke_async(session, "idle-async", {"hat": 1}, timeout=120, poll=0.1, progress=False)
    assert ok.status == "Completed" and ok.value == {"hat": 1}
    assert ok.output_location.startswith(out + "/")
    bad = inv.invoke_async(session, "idle-async", b"x", serializer=inv.Serializer("application/x-fail", lambda b: b),
                           timeout=120, poll=0.1, progress=False)
    assert bad.status == "Failed" and "boom" in (bad.error or "")
    removed = scaling.remove_scaling(session, "idle-async")
    assert removed["policies"] == 2
    d.delete_endpoint(session, "idle-async", wait=True, progress=False)
