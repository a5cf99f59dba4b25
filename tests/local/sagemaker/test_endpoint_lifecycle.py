"""Endpoint state machine with real model-server processes: create, fail, scale, update, delete,
crash/health replacement and restart."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from catkit.local.errors import AwsError
from catkit.local.fleet.instances import InstanceState
from catkit.testing import process_exited, wait_until_async

ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def _pids(h, name, variant="AllTraffic"):
    return sorted(i.pid for i in h.manager.variant_instances(name, variant) if i.state is InstanceState.IN_SERVICE)


def _in_flight(h, name, variant="AllTraffic"):
    return sum(i.outstanding for i in h.manager.variant_instances(name, variant))


def test_create_goes_creating_then_inservice_and_serves(h):
    async def body(h):
        await h.model("m")
        await h.config("c", [("AllTraffic", "m", 2)])
        out = await h.sm("CreateEndpoint", EndpointName="Cats", EndpointConfigName="c")
        assert out["EndpointArn"] == f"{ARN}:endpoint/cats"
        d = await h.sm("DescribeEndpoint", EndpointName="cats")  # names are case-insensitive
        assert d["EndpointStatus"] == "Creating"
        assert d["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Creating"
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpoint", EndpointName="Cats", EndpointConfigName="c")
        assert e.value.message == f'Cannot create already existing endpoint "{ARN}:endpoint/cats".'
        with pytest.raises(AwsError) as e:
            await h.invoke("Cats")
        assert e.value.code == "ValidationError"
        d = await h.wait("Cats", ("InService", "Failed"))
        assert d["EndpointStatus"] == "InService", d.get("FailureReason")
        pv = d["ProductionVariants"][0]
        assert (pv["CurrentInstanceCount"], pv["DesiredInstanceCount"]) == (2, 2)
        assert (pv["CurrentWeight"], pv["DesiredWeight"]) == (1.0, 1.0)
        assert pv["DeployedImages"][0]["SpecifiedImage"].endswith("echo:1")
        assert "VariantStatus" not in pv
        assert d["LastModifiedTime"] >= d["CreationTime"]
        r = await h.invoke("Cats", b'{"x": 1}', ContentType="application/json", Accept="application/json",
                           CustomAttributes="trace=1")
        assert r["Body"] == b'{"x": 1}' and r["InvokedProductionVariant"] == "AllTraffic"
        assert r["ContentType"] == "application/json"
        out = await h.sm("ListEndpoints", StatusEquals="InService")
        assert [e["EndpointName"] for e in out["Endpoints"]] == ["Cats"]
        assert (await h.sm("ListEndpoints", StatusEquals="Failed"))["Endpoints"] == []
        # both instances get traffic (least outstanding with random ties)
        served = {(await h.invoke("Cats", b"EX", ContentType="application/x-pid"))["Body"] for _ in range(40)}
        assert {int(p) for p in served} == set(_pids(h, "Cats"))
        log_dir = h.backend.home / "logs" / "instances" / "Cats"
        assert len(list(log_dir.glob("i-*.log"))) == 2

    h.run(body)


def test_missing_model_archive_fails_and_only_delete_is_allowed(h):
    async def body(h):
        d = await h.deploy("broken", url="s3://models/nothing/here.tar.gz")
        assert d["EndpointStatus"] == "Failed"
        assert "Failed to download model data" in d["FailureReason"]
        assert "s3://models/nothing/here.tar.gz" in d["FailureReason"]
        with pytest.raises(AwsError, match="Cannot update failed endpoint"):
            await h.sm("UpdateEndpoint", EndpointName="broken", EndpointConfigName="broken-config")
        with pytest.raises(AwsError, match="Cannot update failed endpoint"):
            await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="broken",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
        with pytest.raises(AwsError) as e:
            await h.invoke("broken")
        assert e.value.code == "ValidationError"
        await h.sm("DeleteEndpoint", EndpointName="broken")
        await h.wait_gone("broken")

    h.run(body)


def test_ping_never_healthy_fails_the_endpoint(h, fake_backend, archive_bytes):
    fake_backend.s3.put("models", "hang/model.tar.gz", archive_bytes({"hang": b"1"}))
    fake_backend.instance_options = {"startup_health_real_floor": 2.0, "startup_health_seconds": 1.0}

    async def body(h):
        d = await h.deploy("hangs", url="s3://models/hang/model.tar.gz")
        assert d["EndpointStatus"] == "Failed"
        assert "did not pass the ping health check" in d["FailureReason"]
        assert h.manager.variant_instances("hangs", "AllTraffic") == []

    h.run(body)


def test_scale_out_and_in_drains_in_flight_requests(h):
    async def body(h):
        d = await h.deploy("scaler", count=2)
        assert d["EndpointStatus"] == "InService"
        # scale out to 3: Updating, then InService with 3 instances
        await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="scaler",
                   DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
        d = await h.sm("DescribeEndpoint", EndpointName="scaler")
        assert d["EndpointStatus"] == "Updating"
        assert d["ProductionVariants"][0]["DesiredInstanceCount"] == 3
        assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        with pytest.raises(AwsError, match="Cannot update in-progress endpoint"):
            await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="scaler",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 4}])
        d = await h.wait("scaler", ("InService",))
        assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 3
        view = h.manager.get_variant("scaler", "AllTraffic")
        assert (view.desired_instance_count, view.current_instance_count, view.status) == (3, 3, "InService")
        # three slow requests in flight (one per instance), then scale in to 1: all complete
        slow = [asyncio.create_task(h.invoke("scaler", b"1.0", ContentType="application/x-slow")) for _ in range(3)]
        await wait_until_async(lambda: _in_flight(h, "scaler") == 3, 30, what="three requests in flight")
        before = _pids(h, "scaler")
        h.manager.set_desired_instance_count("scaler", "AllTraffic", 1)
        results = await asyncio.gather(*slow)
        assert all(r["Body"] == b"1.0" for r in results)
        d = await h.wait("scaler", ("InService",))
        assert d["ProductionVariants"][0]["CurrentInstanceCount"] == 1
        after = _pids(h, "scaler")
        assert len(after) == 1 and after[0] in before
        await wait_until_async(lambda: all(process_exited(p) for p in before if p not in after), 30,
                               what="the scaled-in instances to exit")
        with pytest.raises(AwsError, match="at least 1"):
            h.manager.set_desired_instance_count("scaler", "AllTraffic", 0)
        with pytest.raises(AwsError, match="not present"):
            h.manager.set_desired_instance_count("scaler", "Nope", 2)

    h.run(body)


def test_killed_instance_is_replaced_while_endpoint_stays_inservice(h):
    async def body(h):
        await h.deploy("crashy", count=2)
        victim, survivor = _pids(h, "crashy")
        os.kill(victim, signal.SIGKILL)
        await wait_until_async(lambda: victim not in _pids(h, "crashy"), 30, what="the manager to notice the kill")
        d = await h.sm("DescribeEndpoint", EndpointName="crashy")
        assert d["EndpointStatus"] == "InService"
        for _ in range(10):  # traffic keeps flowing on the survivor
            assert (await h.invoke("crashy", b"ok"))["Body"] == b"ok"
        pids = await wait_until_async(lambda: len(p := _pids(h, "crashy")) == 2 and p, 30,
                                      what="a replacement instance")
        assert victim not in pids and survivor in pids
        assert (await h.sm("DescribeEndpoint", EndpointName="crashy"))["EndpointStatus"] == "InService"

    h.run(body)


def test_unresponsive_instance_fails_health_checks_and_is_replaced(h):
    async def body(h):
        await h.deploy("frozen", count=1)
        h.manager.settings.ping_timeout_real = 0.3
        (pid,) = _pids(h, "frozen")
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(h.manager.settings.unhealthy_after):
                await h.manager.check_health()
            await wait_until_async(lambda: (p := _pids(h, "frozen")) and pid not in p, 30,
                                   what="the frozen instance to be replaced")
            assert (await h.invoke("frozen", b"back"))["Body"] == b"back"
        finally:
            if not process_exited(pid):
                os.kill(pid, signal.SIGKILL)

    h.run(body)


def test_update_endpoint_blue_green_without_dropped_requests(h):
    async def body(h):
        await h.versions("bg", ("blue", "green"))
        h.manager.set_desired_instance_count("bg", "AllTraffic", 2)
        await h.wait("bg", ("InService",))
        old = _pids(h, "bg")
        seen, errors, stop = [], [], asyncio.Event()

        async def traffic():
            while not stop.is_set():
                try:
                    r = await h.invoke("bg", b"MODEL_VERSION", ContentType="application/x-env")
                    seen.append(r["Body"])
                except Exception as e:  # any failure is a dropped request
                    errors.append(e)

        workers = [asyncio.create_task(traffic()) for _ in range(4)]
        await wait_until_async(lambda: len(seen) >= 8, 30, what="blue traffic to flow")
        await h.sm("UpdateEndpoint", EndpointName="bg", EndpointConfigName="green-config",
                   RetainAllVariantProperties=True)
        d = await h.sm("DescribeEndpoint", EndpointName="bg")
        assert d["EndpointStatus"] == "Updating"
        assert d["PendingDeploymentSummary"]["EndpointConfigName"] == "green-config"
        d = await h.wait("bg", ("InService", "Failed"))
        answered = len(seen)
        await wait_until_async(lambda: len(seen) >= answered + 20, 30, what="traffic after the switch")
        stop.set()
        await asyncio.gather(*workers)
        assert errors == []
        assert d["EndpointConfigName"] == "green-config"
        assert "PendingDeploymentSummary" not in d
        pv = d["ProductionVariants"][0]
        assert pv["DesiredInstanceCount"] == 2 and pv["CurrentInstanceCount"] == 2  # retained
        assert seen[0] == b"blue" and seen[-1] == b"green"
        assert set(seen) == {b"blue", b"green"}
        switch = seen.index(b"green")
        assert b"blue" not in seen[switch + 8:]  # after the switch only in-flight blue answers remain
        assert not set(old) & set(_pids(h, "bg"))
        assert all(process_exited(p) for p in old)

    h.run(body)


def test_update_with_broken_config_rolls_back_and_keeps_serving(h):
    async def body(h):
        await h.deploy("rb", count=1)
        await h.model("bad", url="s3://models/missing.tar.gz")
        await h.config("bad-config", [("AllTraffic", "bad", 1)])
        await h.sm("UpdateEndpoint", EndpointName="rb", EndpointConfigName="bad-config")
        d = await h.wait("rb", ("InService", "Failed"))
        assert d["EndpointStatus"] == "InService"
        assert d["EndpointConfigName"] == "rb-config"
        assert "rolled back" in d["FailureReason"]
        assert (await h.invoke("rb", b"still"))["Body"] == b"still"

    h.run(body)


def test_delete_stops_processes_removes_files_and_notifies(h):
    async def body(h):
        await h.deploy("gone", count=2)
        pids = _pids(h, "gone")
        deleted = []
        h.manager.on_endpoint_deleted(deleted.append)
        await h.sm("DeleteEndpoint", EndpointName="gone")
        assert (await h.sm("DescribeEndpoint", EndpointName="gone"))["EndpointStatus"] == "Deleting"
        await h.wait_gone("gone")
        assert deleted == ["gone"]
        assert all(process_exited(p) for p in pids)
        assert not (h.backend.home / "instances" / "gone").exists()
        assert h.manager.get_variant("gone", "AllTraffic") is None
        # the name can be reused
        await h.sm("CreateEndpoint", EndpointName="gone", EndpointConfigName="gone-config")
        assert (await h.wait("gone", ("InService",)))["EndpointStatus"] == "InService"

    h.run(body)


def test_restart_brings_inservice_endpoints_back(h):
    pids: list[int] = []

    async def first(h):
        await h.deploy("durable", count=2)
        pids.extend(_pids(h, "durable"))

    h.run(first)
    assert all(process_exited(p) for p in pids)  # shutdown never leaves processes behind

    async def second(h):
        d = await h.sm("DescribeEndpoint", EndpointName="durable")
        assert d["EndpointStatus"] == "InService"
        # the first request waits for a relaunched instance instead of failing
        assert (await h.invoke("durable", b"again"))["Body"] == b"again"
        await wait_until_async(lambda: len(_pids(h, "durable")) == 2, 30, what="both instances relaunched")

    h.run(second, background=True)


def test_delete_while_creating_cancels_the_launch(h, fake_backend):
    fake_backend.instance_options = {"provisioning_seconds": 600.0}  # 0.3 s real at the test's time scale

    async def body(h):
        await h.model("m")
        await h.config("c", [("AllTraffic", "m", 2)])
        created = h.backend.clock.now()
        await h.sm("CreateEndpoint", EndpointName="early", EndpointConfigName="c")
        await asyncio.sleep(0.05)  # the launch is under way (provisioning) when the delete arrives
        await h.sm("DeleteEndpoint", EndpointName="early")
        await h.wait_gone("early")
        # Once the cancelled launch would have finished provisioning, no files are left (or appear).
        await wait_until_async(lambda: h.backend.clock.now() > created + 900, 30,
                               what="the provisioning delay to pass on the emulated clock")
        await wait_until_async(lambda: not (h.backend.home / "instances" / "early").exists(), 30,
                               what="the instance files to be removed")

    h.run(body)


def test_update_endpoint_checks_and_guards(h):
    async def body(h):
        await h.deploy("guarded", count=1)
        with pytest.raises(AwsError, match="Could not find endpoint configuration"):
            await h.sm("UpdateEndpoint", EndpointName="guarded", EndpointConfigName="nope")
        calls = []

        def guard(name, current, new):
            calls.append((name, [v["InstanceType"] for v in current], [v["VariantName"] for v in new]))
            raise AwsError("ValidationException", "refused by guard")

        h.manager.add_update_guard(guard)
        await h.config("other", [("AllTraffic", "guarded-model", 1)])
        with pytest.raises(AwsError, match="refused by guard"):
            await h.sm("UpdateEndpoint", EndpointName="guarded", EndpointConfigName="other")
        assert calls == [("guarded", ["ml.m5.large"], ["AllTraffic"])]
        d = await h.sm("DescribeEndpoint", EndpointName="guarded")
        assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "guarded-config"
        with pytest.raises(AwsError, match=">= 0"):
            await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="guarded",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": -1.0}])
        with pytest.raises(AwsError, match="DesiredWeight and/or DesiredInstanceCount"):
            await h.sm("UpdateEndpointWeightsAndCapacities", EndpointName="guarded",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic"}])

    h.run(body)


def test_instance_limit_is_resource_limit_exceeded(h):
    async def body(h):
        h.manager.max_instances = 2
        await h.model("m")
        await h.config("big", [("AllTraffic", "m", 3)])
        with pytest.raises(AwsError) as e:
            await h.sm("CreateEndpoint", EndpointName="big", EndpointConfigName="big")
        assert e.value.code == "ResourceLimitExceeded" and "CATKIT_MAX_INSTANCES" in e.value.message
        with pytest.raises(AwsError):
            await h.sm("DescribeEndpoint", EndpointName="big")

    h.run(body)


def test_update_interrupted_by_restart_resumes(h, fake_backend):
    async def first(h):
        await h.versions("resume", ("v1", "v2"))
        # Provisioning the new fleet takes ~10 real minutes for this manager only: the backend
        # stops mid-update however slow the machine is; the next manager provisions at the default.
        h.manager.settings.provisioning_seconds = 1_200_000.0
        await h.sm("UpdateEndpoint", EndpointName="resume", EndpointConfigName="v2-config")
        assert (await h.sm("DescribeEndpoint", EndpointName="resume"))["EndpointStatus"] == "Updating"

    h.run(first)

    async def second(h):
        d = await h.wait("resume", ("InService", "Failed"))
        assert d["EndpointConfigName"] == "v2-config"
        r = await h.invoke("resume", b"MODEL_VERSION", ContentType="application/x-env")
        assert r["Body"] == b"v2"

    h.run(second, background=True)
