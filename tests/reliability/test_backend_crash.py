"""Backend crashes and storage faults: kill -9 mid-deploy and mid-upload, a full disk, an unusable
CATKIT_HOME. Nothing acknowledged may be lost; half-done work completes or ends Failed with a
reason; storage errors are clear and leave no corrupted state."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import botocore.exceptions
import pytest

from catkit.local import lifecycle
from catkit.testing import (
    LocalBackend,
    create_model,
    deploy_endpoint,
    process_exited,
    upload_model,
    wait_for_endpoint,
    wait_until,
)

PV = {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large"}


def test_kill9_mid_deploy_and_update_then_restart_finishes_the_work(tmp_path):
    # time scale 60 with a 120 s emulated provisioning delay: 2 real seconds per new instance.
    b = LocalBackend(tmp_path / "home", time_scale=60, env={"CATKIT_PROVISIONING_SECONDS": "120"})
    try:
        b.start()
        url = upload_model(b)
        sm = b.client("sagemaker")
        assert deploy_endpoint(sm, "steady", url)["EndpointStatus"] == "InService"
        old_pids = b.instance_pids("steady")
        old_dirs = set((b.home / "instances" / "steady").iterdir())
        assert len(old_dirs) == 1
        create_model(sm, "fresh-m", url)
        sm.create_endpoint_config(EndpointConfigName="fresh-c", ProductionVariants=[
            {**PV, "ModelName": "fresh-m", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="fresh", EndpointConfigName="fresh-c")  # acknowledged: Creating
        sm.update_endpoint_weights_and_capacities(EndpointName="steady", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])  # acknowledged: Updating
        assert sm.describe_endpoint(EndpointName="fresh")["EndpointStatus"] == "Creating"
        assert sm.describe_endpoint(EndpointName="steady")["EndpointStatus"] == "Updating"
        b.kill()
        # Instances never outlive their backend.
        wait_until(lambda: all(process_exited(p) for p in old_pids), 15, what="instances of the killed backend to exit")

        b.start()
        sm, rt = b.client("sagemaker"), b.client("sagemaker-runtime")
        assert {m["ModelName"] for m in sm.list_models()["Models"]} == {"steady-m", "fresh-m"}
        assert {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]} == {
            "steady-c", "fresh-c"}
        fresh = wait_for_endpoint(sm, "fresh", ("InService", "Failed"), timeout=120)
        assert fresh["EndpointStatus"] == "InService", fresh.get("FailureReason")
        steady = wait_for_endpoint(sm, "steady", ("InService",), timeout=120)
        wait_until(lambda: sm.describe_endpoint(EndpointName="steady")["ProductionVariants"][0][
            "CurrentInstanceCount"] == 2, 120, what="the acknowledged scale-out to complete")
        assert steady["ProductionVariants"][0]["DesiredInstanceCount"] == 2
        for name in ("fresh", "steady"):
            r = rt.invoke_endpoint(EndpointName=name, Body=b"back", ContentType="text/plain")
            assert r["Body"].read() == b"back"
        assert b.client("s3").get_object(Bucket="models", Key="echo/model.tar.gz")["ContentLength"] > 0
        # The killed run's instance directories (unpacked models) were swept at start-up (finding 4).
        now = set((b.home / "instances" / "steady").iterdir())
        assert not old_dirs & now and len(now) == 2, (old_dirs, now)
        out = subprocess.run([sys.executable, "-c", "import sys, catkit.cli; sys.exit(catkit.cli.main())",
                              "local", "status", "--home", str(b.home)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "state " in out.stdout and "instances " in out.stdout, out
    finally:
        b.close()


def test_kill9_mid_upload_loses_no_acknowledged_object(tmp_path):
    b = LocalBackend(tmp_path / "home", time_scale=600, env={"CATKIT_LOCAL_COMPONENTS": ""})
    try:
        b.start()
        s3 = b.client("s3")
        s3.create_bucket(Bucket="uploads")
        acked: dict[str, str] = {}
        attempted: dict[str, str] = {}
        stop = threading.Event()

        def uploader() -> None:
            i = 0
            while not stop.is_set():
                data = os.urandom(256 * 1024)
                key = f"obj-{i:05d}"
                attempted[key] = hashlib.md5(data).hexdigest()
                try:
                    s3.put_object(Bucket="uploads", Key=key, Body=data)
                except Exception:
                    return  # the backend died under us
                acked[key] = attempted[key]
                i += 1

        t = threading.Thread(target=uploader)
        t.start()
        wait_until(lambda: len(acked) >= 20, 60, what="some acknowledged uploads")
        b.kill()
        stop.set()
        t.join(30)

        b.start()
        s3 = b.client("s3")
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket="uploads").get("Contents", [])}
        assert set(acked) <= listed, sorted(set(acked) - listed)
        assert listed <= set(attempted)
        for key in listed:  # acknowledged or not, whatever is there is whole
            body = s3.get_object(Bucket="uploads", Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == attempted[key], key
        assert not list((b.home / "s3").rglob("*.tmp"))
    finally:
        b.close()


def _fsize_limited_backend(home: Path, limit: int, log: Path) -> subprocess.Popen[bytes]:
    """A backend whose process may not grow any file beyond ``limit`` bytes (RLIMIT_FSIZE, SIGXFSZ
    ignored): writes past it fail with EFBIG, like a full disk, without needing privileges."""
    launcher = (
        "import os, resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'catkit.local.lifecycle', 'run', '--home', "
        f"{str(home)!r}, '--time-scale', '600'])\n"
    )
    env = dict(os.environ, CATKIT_HOME=str(home), CATKIT_LOCAL_COMPONENTS="catkit.local.services.sagemaker",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", launcher], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def test_full_disk_gives_a_clear_error_and_corrupts_nothing(tmp_path):
    acked: list[str] = []
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    proc = _fsize_limited_backend(home, 2 * 1024 * 1024, tmp_path / "backend.out")
    try:
        url = wait_until(lambda: (doc := lifecycle.read_state(home)) and lifecycle.health(doc["url"]) and doc["url"],
                         60, what="the size-limited backend")
        probe = LocalBackend(home, time_scale=600)
        probe.url = url
        s3, sm = probe.client("s3"), probe.client("sagemaker")
        s3.create_bucket(Bucket="data")
        s3.put_object(Bucket="data", Key="small", Body=b"v1")
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket="data", Key="big", Body=b"x" * (3 * 1024 * 1024))
        err = e.value.response["Error"]
        assert err["Code"] == "InternalError" and "could not write" in err["Message"], err
        with pytest.raises(botocore.exceptions.ClientError) as e:  # overwrite the small one: refused too
            s3.put_object(Bucket="data", Key="small", Body=b"y" * (3 * 1024 * 1024))
        assert e.value.response["Error"]["Code"] == "InternalError"
        # Nothing unacknowledged is served; the acknowledged version is intact.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.head_object(Bucket="data", Key="big")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert s3.get_object(Bucket="data", Key="small")["Body"].read() == b"v1"
        # The backend keeps serving what fits.
        create_model(sm, "after-full", "s3://data/small")
        assert sm.describe_model(ModelName="after-full")["ModelName"] == "after-full"
        # Control-plane state fills the "disk" too (the sqlite WAL may not grow past the limit):
        # every acknowledged model survives, the refused one leaves no trace.
        bulky = {f"K{i}": "v" * 1000 for i in range(30)}  # + the script variables: within AWS's 32 KB per model
        refused = None
        for i in range(200):
            try:
                create_model(sm, f"bulky-{i}", "s3://data/small", env=bulky)
                acked.append(f"bulky-{i}")
            except botocore.exceptions.ClientError as e:
                refused = (f"bulky-{i}", e.response["Error"])
                break
        assert refused is not None, "the size limit was never hit"
        assert refused[1]["Code"] == "InternalFailure" and "could not write its state" in refused[1]["Message"]
        with pytest.raises(botocore.exceptions.ClientError):
            sm.describe_model(ModelName=refused[0])
        assert sm.describe_model(ModelName=acked[-1])["ModelName"] == acked[-1]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # "Disk space freed": a normal restart finds exactly the acknowledged state.
    b = LocalBackend(home, time_scale=600, env={"CATKIT_LOCAL_COMPONENTS": "catkit.local.services.sagemaker"})
    try:
        b.start()
        s3 = b.client("s3")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="data")["Contents"]] == ["small"]
        assert s3.get_object(Bucket="data", Key="small")["Body"].read() == b"v1"
        sm = b.client("sagemaker")
        assert sm.describe_model(ModelName="after-full")["ModelName"] == "after-full"
        names = {m["ModelName"] for page in sm.get_paginator("list_models").paginate() for m in page["Models"]}
        assert names == {"after-full", *acked}
        assert not list((home / "s3").rglob("*.tmp"))
    finally:
        b.close()


def test_unusable_catkit_home_is_a_clear_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where CATKIT_HOME's parent should be")
    home = blocker / "home"
    with pytest.raises(Exception) as e:
        lifecycle.start(home, None, 600)
    assert str(home) in str(e.value) and "CATKIT_HOME" in str(e.value), e.value
    assert blocker.read_text().startswith("a file")  # untouched


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_catkit_home_is_a_clear_error(tmp_path):
    home = tmp_path / "ro-home"
    home.mkdir(mode=0o500)
    try:
        with pytest.raises(Exception) as e:
            lifecycle.start(home, None, 600)
        assert str(home) in str(e.value) and "CATKIT_HOME" in str(e.value), e.value
        assert list(home.iterdir()) == []
    finally:
        home.chmod(0o700)


def test_kill9_keeps_acknowledged_scalable_targets_and_policies(tmp_path):
    """RegisterScalableTarget / PutScalingPolicy answered 200 survive kill -9 (found by the chaos run:
    the engine was saved only when a scaling activity changed)."""
    b = LocalBackend(tmp_path / "home", time_scale=600)
    try:
        b.start()
        sm, aas = b.client("sagemaker"), b.client("application-autoscaling")
        assert deploy_endpoint(sm, "scaled", upload_model(b))["EndpointStatus"] == "InService"
        rid, dim = "endpoint/scaled/variant/AllTraffic", "sagemaker:variant:DesiredInstanceCount"
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
                                     MinCapacity=1, MaxCapacity=3)
        aas.put_scaling_policy(
            PolicyName="tt", ServiceNamespace="sagemaker", ResourceId=rid, ScalableDimension=dim,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 20.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        b.kill()
        b.start()
        targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(rid, 1, 3)]
        policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        assert [p["PolicyName"] for p in policies] == ["tt"]
    finally:
        b.close()
