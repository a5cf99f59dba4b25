"""Chaos run of the local backend: kill -9 instances and the backend itself under load, then check
that nothing acknowledged was lost and nothing was left behind. Bounded in time, loopback only.

Long variant (issue 14)::

    .venv/bin/python benchmarks/chaos.py --seconds 300 --backend-kills 10 --instance-kills 25 --json chaos.json

CI variant: tests/chaos/test_chaos_ci.py (``--seconds 15 --backend-kills 2 --instance-kills 3``).

What it does, in its own temporary ``CATKIT_HOME`` (removed at the end), all random choices from
``--seed``:

- starts a backend; deploys ``chaos-sme`` (the echo model, registered with Application Auto Scaling
  1..3 with a target-tracking policy, whose CloudWatch alarms the backend creates) and ``chaos-mme``
  (a multi-model endpoint with three models), and puts a custom CloudWatch alarm;
- drives both endpoints from two threads (one request at a time each) and writes S3 objects (and
  now and then a model) from a third: what the backend acknowledged (HTTP 200) is recorded;
- at random moments kills a random model-server process (SIGKILL) or the backend itself (SIGKILL,
  then restarts it after a random pause);
- afterwards waits for both endpoints to be InService at their desired counts, then checks: every
  acknowledged S3 object (same MD5), model, endpoint config, endpoint, scalable target, scaling
  policy and alarm is there; no model-server process or instance directory is left over; every
  failed request got an AWS-shaped error (an error code, not a bare HTTP status) - except those
  that could not reach the backend while it was down, counted apart; and the auto-scaled variant
  never had more instances in service than its MaxCapacity.

Prints the counts (kills survived, requests sent/failed, acknowledged-but-lost: goal 0).
``--json`` writes the report. Exit status 1 if anything acknowledged was lost, an orphan was left,
an error was not AWS-shaped or the variant went past MaxCapacity.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import botocore.exceptions as bx
import psutil
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.testing import (
    LocalBackend,
    create_model,
    multi_model_archive,
    process_exited,
    upload_model,
    wait_until,
)
from catkit.testing.endpoints import ROLE

SME, MME, BUCKET = "chaos-sme", "chaos-mme", "chaos"
RID = f"endpoint/{SME}/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
MAX_CAPACITY = 3  # of the auto-scaled variant: never more instances in service than this
UNREACHABLE = (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ReadTimeoutError,
               bx.ConnectTimeoutError, ConnectionError)


class Run:
    """One chaos run's shared state: what was acknowledged, what failed and how."""

    def __init__(self, backend: LocalBackend, seed: int) -> None:
        self.b = backend
        self.seed = seed
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.down_until = 0.0  # the backend is (being) killed/restarted until then (monotonic)
        self.down = threading.Event()
        self.counts: collections.Counter[str] = collections.Counter()
        self.aws_errors: collections.Counter[str] = collections.Counter()
        self.not_aws_shaped: list[str] = []
        self.objects: dict[str, str] = {}  # acknowledged S3 key -> MD5
        self.acked: dict[str, set[str]] = collections.defaultdict(set)
        self.policy_alarms: list[str] = []

    def client(self, service: str) -> Any:
        return self.b.client(service, config=Config(retries={"max_attempts": 1}, connect_timeout=3,
                                                    read_timeout=60, max_pool_connections=4))

    def outcome(self, kind: str, call: Any) -> Any:
        """Run ``call()``; count it under ``kind`` as ok / AWS error / unreachable / not AWS-shaped."""
        with self.lock:
            self.counts[f"{kind}_sent"] += 1
        try:
            result = call()
        except bx.ClientError as e:
            code = str(e.response.get("Error", {}).get("Code") or "")
            with self.lock:
                self.counts[f"{kind}_failed"] += 1
                if code and not code.isdigit():
                    self.aws_errors[code] += 1
                else:
                    self.not_aws_shaped.append(f"{kind}: HTTP {code}: {str(e)[:200]}")
            return None
        except UNREACHABLE as e:
            with self.lock:
                self.counts[f"{kind}_failed"] += 1
                if self.down.is_set() or time.monotonic() < self.down_until:
                    self.counts["unreachable_while_down"] += 1
                else:
                    self.not_aws_shaped.append(f"{kind}: {type(e).__name__}: {str(e)[:200]}")
            time.sleep(0.05)
            return None
        with self.lock:
            self.counts[f"{kind}_ok"] += 1
        return result


def setup(run: Run) -> None:
    b = run.b
    sm, aas, cw, s3 = run.client("sagemaker"), run.client("application-autoscaling"), run.client("cloudwatch"), \
        run.client("s3")
    url = upload_model(b, "sme/model.tar.gz", bucket=BUCKET)
    for k in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"mme/m{k}.tar.gz", Body=multi_model_archive(f"m{k}", mb=1))
    create_model(sm, f"{SME}-m", url)
    sm.create_model(ModelName=f"{MME}-m", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "local/mme:1", "Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/mme/"})
    for name in (SME, MME):
        sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
        run.acked["model"].add(f"{name}-m")
        run.acked["endpoint_config"].add(f"{name}-c")
        run.acked["endpoint"].add(name)
    wait_in_service(run, 120)
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=MAX_CAPACITY)
    run.acked["scalable_target"].add(RID)
    policy = aas.put_scaling_policy(
        PolicyName="chaos-tt", ServiceNamespace="sagemaker", ResourceId=RID, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 2.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 120,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    run.acked["scaling_policy"].add("chaos-tt")
    run.policy_alarms = [a["AlarmName"] for a in policy.get("Alarms", [])]
    cw.put_metric_alarm(AlarmName="chaos-custom", Namespace="AWS/SageMaker", MetricName="Invocations",
                        Dimensions=[{"Name": "EndpointName", "Value": SME}, {"Name": "VariantName", "Value": "AllTraffic"}],
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1e9,
                        ComparisonOperator="GreaterThanThreshold")
    run.acked["alarm"].update(["chaos-custom", *run.policy_alarms])


def wait_in_service(run: Run, timeout: float) -> None:
    sm = run.client("sagemaker")

    def settled() -> bool:
        for name in run.acked["endpoint"]:
            d = sm.describe_endpoint(EndpointName=name)
            pv = d["ProductionVariants"][0]
            if d["EndpointStatus"] != "InService" or pv.get("CurrentInstanceCount") != pv.get("DesiredInstanceCount"):
                return False
        return True

    wait_until(settled, timeout, 0.2, what="the chaos endpoints to be InService at their desired counts")


def invoke_loop(run: Run, mme: bool, seed: int) -> None:
    rt, rng = run.client("sagemaker-runtime"), random.Random(seed)
    while not run.stop.is_set():
        if mme:
            run.outcome("invoke", lambda: rt.invoke_endpoint(
                EndpointName=MME, TargetModel=f"m{rng.randrange(3)}.tar.gz", Body=b"{}",
                ContentType="application/json")["Body"].read())
        else:
            run.outcome("invoke", lambda: rt.invoke_endpoint(EndpointName=SME, Body=b"chaos",
                                                             ContentType="text/plain")["Body"].read())


def watch_loop(run: Run) -> None:
    """Record the largest instance count of the auto-scaled variant (scale-out happened)."""
    sm = run.client("sagemaker")
    while not run.stop.wait(0.5):
        try:
            pv = sm.describe_endpoint(EndpointName=SME)["ProductionVariants"][0]
        except (bx.ClientError, *UNREACHABLE):
            continue
        with run.lock:
            run.counts["max_sme_instances"] = max(run.counts["max_sme_instances"], pv.get("CurrentInstanceCount") or 0)


def write_loop(run: Run, seed: int) -> None:
    s3, sm, rng = run.client("s3"), run.client("sagemaker"), random.Random(seed)
    i = 0
    while not run.stop.is_set():
        key, data = f"obj/{i:05d}", rng.randbytes(rng.randint(0, 32 * 1024))
        if run.outcome("write", lambda key=key, data=data: s3.put_object(Bucket=BUCKET, Key=key, Body=data)) is not None:
            with run.lock:
                run.objects[key] = hashlib.md5(data).hexdigest()
        if i % 10 == 9:
            name = f"chaos-extra-{i}"
            if run.outcome("write", lambda name=name: create_model(sm, name, f"s3://{BUCKET}/sme/model.tar.gz") or True):
                with run.lock:
                    run.acked["model"].add(name)
        i += 1
        time.sleep(0.03)


def chaos_loop(run: Run, seconds: float, backend_kills: int, instance_kills: int, rng: random.Random) -> None:
    events = ["backend"] * backend_kills + ["instance"] * instance_kills
    rng.shuffle(events)
    slot = seconds / (len(events) + 1)
    start = time.monotonic()
    for k, event in enumerate(events):
        time.sleep(max(0.0, start + (k + rng.uniform(0.2, 1.0)) * slot - time.monotonic()))  # a random moment of slot k
        if event == "instance":
            deadline = time.monotonic() + 30  # right after a restart the instances are still starting
            while (pids := [p for ep in (SME, MME) for p in run.b.instance_pids(ep) if not process_exited(p)]) == [] \
                    and time.monotonic() < deadline:
                time.sleep(0.1)
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
                run.counts["instance_kills"] += 1
        else:
            run.down.set()
            run.b.kill()
            run.counts["backend_kills"] += 1
            time.sleep(rng.uniform(0.0, 0.5))
            run.b.start()
            run.down_until = time.monotonic() + 1.0  # pooled connections of the dead process fail once
            run.down.clear()
    time.sleep(max(0.0, start + seconds - time.monotonic()))


def verify(run: Run) -> dict[str, list[str]]:
    """What acknowledged is missing or wrong, and what was left over."""
    sm, s3 = run.client("sagemaker"), run.client("s3")
    aas, cw = run.client("application-autoscaling"), run.client("cloudwatch")
    models = sm.get_paginator("list_models").paginate().build_full_result()["Models"]
    lost: list[str] = []
    for key, md5 in sorted(run.objects.items()):
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            if hashlib.md5(body).hexdigest() != md5:
                lost.append(f"s3 {key}: content differs")
        except bx.ClientError as e:
            lost.append(f"s3 {key}: {e.response['Error']['Code']}")
    found = {
        "model": {m["ModelName"] for m in models},
        "endpoint_config": {c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]},
        "endpoint": {e["EndpointName"] for e in sm.list_endpoints(MaxResults=100)["Endpoints"]
                     if e["EndpointStatus"] in ("InService", "Updating")},  # Updating: scaling in after the load
        "scalable_target": {t["ResourceId"] for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")[
            "ScalableTargets"] if (t["MinCapacity"], t["MaxCapacity"]) == (1, MAX_CAPACITY)},
        "scaling_policy": {p["PolicyName"] for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")[
            "ScalingPolicies"]},
        "alarm": {a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]},
    }
    for kind, names in run.acked.items():
        lost += [f"{kind} {n}" for n in sorted(names - found.get(kind, set()))]
    for name in sorted(run.acked["endpoint"] & found["endpoint"]):  # consistent: still on its own config
        config = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        if config != f"{name}-c":
            lost.append(f"endpoint {name}: on config {config}")
    return {"lost": lost, **orphans(run)}


def orphans(run: Run) -> dict[str, list[str]]:
    """Model-server processes and instance directories that belong to no serving instance."""
    home = str(run.b.home)
    live = {ep: set(run.b.instance_pids(ep)) for ep in run.acked["endpoint"]}
    procs = [p.pid for p in psutil.process_iter(["cmdline"])
             if "catkit.serving.server" in " ".join(p.info["cmdline"] or []) and home in " ".join(p.info["cmdline"])]
    serving = set().union(*live.values())
    dirs = [str(d) for d in (run.b.home / "instances").glob("*/*")
            if not (d / "ready.json").exists() or not any(str(pid) in (d / "ready.json").read_text() for pid in serving)]
    return {"orphan_processes": [str(p) for p in procs if p not in serving or process_exited(p)],
            "orphan_dirs": dirs + [str(p) for p in serving if process_exited(p)]}


def run_chaos(seconds: float, backend_kills: int, instance_kills: int, seed: int, time_scale: float) -> dict[str, Any]:
    rng = random.Random(seed)
    home = Path(tempfile.mkdtemp(prefix="catkit-chaos-"))
    b = LocalBackend(home / "home", time_scale=time_scale, owns_home=True)
    started = time.monotonic()
    try:
        b.start()
        run = Run(b, seed)
        run.client("s3").create_bucket(Bucket=BUCKET)
        setup(run)
        threads = [threading.Thread(target=invoke_loop, args=(run, False, rng.random()), daemon=True),
                   threading.Thread(target=invoke_loop, args=(run, True, rng.random()), daemon=True),
                   threading.Thread(target=write_loop, args=(run, rng.random()), daemon=True),
                   threading.Thread(target=watch_loop, args=(run,), daemon=True)]
        for t in threads:
            t.start()
        chaos_loop(run, seconds, backend_kills, instance_kills, rng)
        run.stop.set()
        for t in threads:
            t.join(90)
        wait_in_service(run, 120)
        settle_deadline = time.monotonic() + 30
        while (found := verify(run))["orphan_processes"] or found["orphan_dirs"]:
            if time.monotonic() > settle_deadline:
                break
            time.sleep(0.2)
        c = run.counts
        return {
            "seed": seed, "seconds": round(time.monotonic() - started, 1),
            "kills_survived": {"backend": c["backend_kills"], "instance": c["instance_kills"]},
            "requests_sent": c["invoke_sent"] + c["write_sent"], "requests_failed": c["invoke_failed"] + c["write_failed"],
            "invocations": {"sent": c["invoke_sent"], "ok": c["invoke_ok"], "failed": c["invoke_failed"]},
            "writes": {"sent": c["write_sent"], "ok": c["write_ok"], "failed": c["write_failed"]},
            "max_autoscaled_instances": c["max_sme_instances"],
            "unreachable_while_down": c["unreachable_while_down"], "aws_errors": dict(run.aws_errors),
            "not_aws_shaped": run.not_aws_shaped,
            "acknowledged": {"s3_objects": len(run.objects), **{k: len(v) for k, v in run.acked.items()}},
            "acknowledged_but_lost": found["lost"], "orphan_processes": found["orphan_processes"],
            "orphan_dirs": found["orphan_dirs"],
        }
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)


def print_report(r: dict[str, Any]) -> None:
    k = r["kills_survived"]
    print(f"chaos (seed {r['seed']}, {r['seconds']} s): kills survived: backend {k['backend']}, instance {k['instance']}")
    print(f"requests sent {r['requests_sent']}, failed {r['requests_failed']} "
          f"(unreachable while the backend was down {r['unreachable_while_down']}; AWS errors {r['aws_errors']}; "
          f"not AWS-shaped {len(r['not_aws_shaped'])})")
    print(f"acknowledged: {r['acknowledged']}; the auto-scaled variant reached {r['max_autoscaled_instances']} instances")
    print(f"acknowledged but lost: {len(r['acknowledged_but_lost'])} {r['acknowledged_but_lost'][:10]}")
    print(f"orphans: processes {r['orphan_processes']}, directories {r['orphan_dirs']}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=300.0, help="real seconds of chaos (default 300)")
    p.add_argument("--backend-kills", type=int, default=10)
    p.add_argument("--instance-kills", type=int, default=25)
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--time-scale", type=float, default=600.0)
    p.add_argument("--json", help="write the report here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run_chaos(args.seconds, args.backend_kills, args.instance_kills, args.seed, args.time_scale)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    bad = report["acknowledged_but_lost"] or report["orphan_processes"] or report["orphan_dirs"] \
        or report["not_aws_shaped"] or report["max_autoscaled_instances"] > MAX_CAPACITY
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
