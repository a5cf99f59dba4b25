"""InvokeEndpoint through the runtime service: routing across variants, errors with AWS's codes,
timeouts, payload limit and the per-request / sampled metrics."""

from __future__ import annotations

import asyncio
import collections

import pytest

from catkit.local.errors import AwsError
from catkit.testing import wait_until_async

DIMS = {"EndpointName": "ep", "VariantName": "AllTraffic"}


def test_weights_target_variant_and_weight_updates(h):
    async def body(h):
        await h.model("m")
        d = await h.deploy("ep", variants=[("A", "m", 1, 3.0), ("B", "m", 1, 1.0)])
        assert d["EndpointStatus"] == "InService"
        counts = collections.Counter()
        for _ in range(400):
            counts[(await h.invoke("ep", b"x"))["InvokedProductionVariant"]] += 1
        assert 0.65 < counts["A"] / 400 < 0.85, counts  # 3:1 weights -> 75 % (±5 sigma)
        for _ in range(10):
            assert (await h.invoke("ep", b"x", TargetVariant="B"))["InvokedProductionVariant"] == "B"
        with pytest.raises(AwsError) as e:
            await h.invoke("ep", b"x", TargetVariant="C")
        assert e.value.code == "ValidationError" and "variant C" in e.value.message
        await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="ep",
                   DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 0.0}])
        d = await h.wait("ep", ("InService",))
        weights = {v["VariantName"]: (v["CurrentWeight"], v["DesiredWeight"]) for v in d["ProductionVariants"]}
        assert weights == {"A": (0.0, 0.0), "B": (1.0, 1.0)}
        assert {(await h.invoke("ep", b"x"))["InvokedProductionVariant"] for _ in range(50)} == {"B"}

    h.run(body)


def test_container_errors_become_model_errors_with_metrics(h):
    async def body(h):
        await h.deploy("ep", count=1)
        with pytest.raises(AwsError) as e:
            await h.invoke("ep", b"bad", ContentType="application/x-fail")
        err = e.value
        assert (err.code, err.status) == ("ModelError", 424)
        assert err.fields["OriginalStatusCode"] == 500
        assert "boom: bad" in err.fields["OriginalMessage"]
        assert err.fields["LogStreamArn"] == (
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/ep")
        assert err.message.startswith('Received server error (500) from primary with message "')
        # Locally the message names AWS's log group and stream and the instance's log file.
        inst = h.manager.variant_instances("ep", "AllTraffic")[0]
        assert f"CloudWatch group /aws/sagemaker/Endpoints/ep, stream AllTraffic/{inst.id}" in err.message
        assert str(inst.log_path) in err.message and "catkit local logs ep" in err.message
        with pytest.raises(AwsError) as e:  # a user handler's exception is a 500 in AWS's scikit-learn container
            await h.invoke("ep", b"x", ContentType="application/x-unsupported")
        assert e.value.fields["OriginalStatusCode"] == 500
        await h.invoke("ep", b"fine")
        m = h.backend.metrics
        assert m.values("Invocations", **DIMS) == [1.0, 1.0, 1.0]
        assert m.values("Invocation5XXErrors", **DIMS) == [1.0, 1.0, 0.0]
        assert m.values("Invocation4XXErrors", **DIMS) == [0.0, 0.0, 0.0]  # 4xx: tests/local/sagemaker/test_containers_e2e.py
        assert m.values("InvocationModelErrors", **DIMS) == [1.0, 1.0, 0.0]
        assert all(v > 0 for v in m.values("ModelLatency", **DIMS))
        assert all(v >= 0 for v in m.values("OverheadLatency", **DIMS))
        units = {r[1]: r[5] for r in m.records}
        assert units["ModelLatency"] == units["OverheadLatency"] == "Microseconds"
        ts = [r[4] for r in m.records]
        assert all(abs(t - h.backend.clock.now()) < 3600 * 24 * 30 for t in ts)  # emulated timestamps

    h.run(body)


def test_invocations_per_instance_is_one_over_active_instances(h):
    async def body(h):
        await h.deploy("ep", count=2)
        for _ in range(4):
            await h.invoke("ep", b"x")
        assert h.backend.metrics.values("InvocationsPerInstance", **DIMS) == [0.5] * 4

    h.run(body)


def test_timeout_is_a_model_error_and_instance_keeps_serving(h):
    async def body(h):
        await h.deploy("ep", count=1)
        h.manager.invocation_timeout = 0.5
        with pytest.raises(AwsError) as e:
            await h.invoke("ep", b"2", ContentType="application/x-slow")
        assert e.value.code == "ModelError"
        assert e.value.message.startswith(
            'Received server error (0) from primary with message "Your invocation timed out while waiting for '
            "a response from container primary.")
        assert h.backend.metrics.values("InvocationModelErrors", **DIMS) == [1.0]
        h.manager.invocation_timeout = 60
        assert (await h.invoke("ep", b"after"))["Body"] == b"after"

    h.run(body)


def test_payload_over_6_mb_is_rejected(h):
    async def body(h):
        await h.deploy("ep", count=1)
        with pytest.raises(AwsError) as e:
            await h.invoke("ep", b"x" * (6 * 1024 * 1024 + 1))
        assert e.value.code == "ValidationError" and e.value.status == 413
        assert "6291456" in e.value.message
        big = b"y" * (6 * 1024 * 1024 - 100)
        assert len((await h.invoke("ep", big, ContentType="application/octet-stream"))["Body"]) == len(big)

    h.run(body)


def test_concurrency_and_utilization_sampling(h):
    async def body(h):
        await h.deploy("ep", count=1)
        slow = [asyncio.create_task(h.invoke("ep", b"0.6", ContentType="application/x-slow")) for _ in range(3)]
        # Sample as soon as all three are in flight (nothing awaits in between).
        await wait_until_async(lambda: sum(i.outstanding for i in h.manager.variant_instances("ep", "AllTraffic")) == 3,
                               30, what="three requests in flight")
        now = h.backend.clock.now()
        h.manager.sample_concurrency(now)
        await asyncio.gather(*slow)
        h.manager.sample_concurrency(now + 10)
        m = h.backend.metrics
        conc = [r for r in m.records if r[1] == "ConcurrentRequestsPerModel"]
        assert [r[3] for r in conc] == [3.0, 3.0]  # second window still saw the peak of 3
        assert all(r[6] == 1 and r[2] == DIMS for r in conc)
        h.manager.sample_concurrency(now + 20)
        assert m.values("ConcurrentRequestsPerModel", **DIMS)[-1] == 0.0
        h.manager.sample_minute(now + 60)  # primes psutil's CPU counter
        h.manager.sample_minute(now + 120)
        cpu = [r for r in m.records if r[1] == "CPUUtilization"]
        mem = [r for r in m.records if r[1] == "MemoryUtilization"]
        assert cpu and mem and cpu[0][0] == "/aws/sagemaker/Endpoints" and cpu[0][5] == "Percent"
        assert all(0 <= r[3] <= 200 for r in cpu)  # ml.m5.large: 2 vCPU -> 0-200 %
        assert all(0 < r[3] < 100 for r in mem)
        # idle zeros are not the fleet's: the scaling driver emits them, for auto-scaled variants only
        assert not [r for r in m.records if r[1] == "Invocations" and r[3] == 0.0]

    h.run(body)


def test_no_healthy_instance_is_service_unavailable(h):
    async def body(h):
        await h.deploy("ep", count=1)
        h.manager.capacity_wait_real = 0.2
        h.manager._resumed = True
        for inst in h.manager.variant_instances("ep", "AllTraffic"):
            inst.state = inst.state.__class__.FAILED  # as if the only instance just died
        with pytest.raises(AwsError) as e:
            await h.invoke("ep", b"x")
        assert (e.value.code, e.value.status) == ("ServiceUnavailable", 503)

    h.run(body)
