"""Soak test of the local backend: diurnal traffic with spikes against an auto-scaled endpoint and a
multi-model endpoint, bounded in time and request count, loopback only.

Full run (issue 8, 10 minutes)::

    .venv/bin/python benchmarks/soak.py --seconds 600 --json soak.json

CI variant: ``--seconds 60`` (tests/reliability/test_soak_ci.py runs it with
``CATKIT_SOAK_SECONDS``, default 15 s under pytest). ``--seconds`` defaults to
``$CATKIT_SOAK_SECONDS`` or 600.

What it does, in its own temporary ``CATKIT_HOME`` (removed at the end):

- starts a backend at ``--time-scale`` (default 60: one emulated minute per real second);
- ``soak-as``: one ml.m5.large instance, registered with Application Auto Scaling (1..4) and a
  target-tracking policy on SageMakerVariantInvocationsPerInstance, short cooldowns;
- ``soak-mme``: a multi-model endpoint (one instance) whose prefix holds ``--models`` archives of
  4 MiB each, with ``CATKIT_MME_MEMORY_BUDGET_MB`` set so that only three fit: requests follow a
  Zipf popularity whose hot set rotates, so models are evicted and reloaded all the time;
- drives both with :func:`catkit.whatif.load.arun_load`: a cosine "day" (low -> high -> low) repeated
  every ``--cycle-seconds`` real seconds (default: a third of the run) plus a spike per cycle;
- samples instance counts every second (scale-out / scale-in cycles), memory (RSS) of the backend
  and of every instance after warm-up and at the end, and reads the MME eviction metrics.

Prints requests sent and failed (goal 0), p50/p99 latency per phase (night, ramp-up, peak, spike,
ramp-down) and per endpoint, scale-out/in counts, evictions, and memory start -> end (goal: no
growth beyond 10 %). ``--json`` writes the same report as JSON. Exit status 1 if a request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psutil
from botocore.config import Config
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.local import lifecycle
from catkit.testing import LocalBackend, deploy_endpoint, echo_archive, upload_model, wait_for_endpoint
from catkit.whatif import load

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "AKIASOAKSOAKSOAK", "aws_secret_access_key": "soak"}
AS, MME = "soak-as", "soak-mme"
PHASES = ("night", "ramp-up", "peak", "spike", "ramp-down")


def archive(weights_bytes: int, seed: int) -> bytes:
    """The echo model with ``weights_bytes`` of incompressible weights (its size on disk and in memory)."""
    return echo_archive({"weights.bin": random.Random(seed).randbytes(weights_bytes)})


def client(url: str, service: str) -> Any:
    return boto3.session.Session().client(
        service, endpoint_url=url, region_name=REGION,
        config=Config(retries={"max_attempts": 1}, read_timeout=120), **CREDS)


# ------------------------------------------------------------------------------- traffic
class SoakShape(load.Shape):
    """Real-time rates (requests per real second) expressed in emulated time for arun_load:
    ``low + (high - low) * (1 - cos)/2`` per cycle, plus a spike of ``spike`` rps for
    ``spike_s`` real seconds starting 60 % into each cycle (just after the peak)."""

    def __init__(self, low: float, high: float, spike: float, cycle_s: float, spike_s: float,
                 scale: float) -> None:
        self.low, self.high, self.spike = low, high, spike
        self.cycle_s, self.spike_s, self.scale = cycle_s, spike_s, scale

    def real_rate(self, t_real: np.ndarray) -> np.ndarray:
        x = np.mod(t_real, self.cycle_s) / self.cycle_s
        r = self.low + (self.high - self.low) * (1 - np.cos(2 * np.pi * x)) / 2
        in_spike = (x >= 0.6) & (x < 0.6 + self.spike_s / self.cycle_s)
        return r + np.where(in_spike, self.spike, 0.0)

    def _rate(self, t: np.ndarray) -> np.ndarray:  # t in emulated seconds; rate per emulated second
        return self.real_rate(t / self.scale) / self.scale

    def phase(self, t_real: np.ndarray) -> np.ndarray:
        x = np.mod(t_real, self.cycle_s) / self.cycle_s
        spike = (x >= 0.6) & (x < 0.6 + self.spike_s / self.cycle_s)
        out = np.where(x < 0.2, "night", np.where(x < 0.4, "ramp-up", np.where(x < 0.6, "peak", "ramp-down")))
        out = np.where(x >= 0.8, "night", out)
        return np.where(spike, "spike", out)


def zipf_sequence(models: list[str], n: int, seed: int = 7) -> list[str]:
    """``n`` TargetModel values: Zipf(1.2) popularity over a hot set that rotates every n/4 picks."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(models) + 1) ** 1.2
    weights /= weights.sum()
    picks = rng.choice(len(models), size=n, p=weights)
    rotation = (np.arange(n) * 4 // max(n, 1)) * 3
    return [models[(p + r) % len(models)] for p, r in zip(picks, rotation, strict=True)]


# ------------------------------------------------------------------------------- measurements
def rss_mib(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


def memory_snapshot(backend: LocalBackend) -> dict[str, Any]:
    snap: dict[str, Any] = {"backend_mib": rss_mib(backend.pid)}
    for ep in (AS, MME):
        values = [v for v in (rss_mib(p) for p in backend.instance_pids(ep)) if v is not None]
        snap[ep] = {"instances": len(values), "mean_mib": round(sum(values) / len(values), 1) if values else None,
                    "max_mib": round(max(values), 1) if values else None}
    return snap


class CountWatcher(threading.Thread):
    """Polls CurrentInstanceCount of the auto-scaled endpoint once a second."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.sm = client(url, "sagemaker")
        self.stop = threading.Event()
        self.samples: list[tuple[float, int, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                d = self.sm.describe_endpoint(EndpointName=AS)
                self.samples.append((time.monotonic(), d["ProductionVariants"][0]["CurrentInstanceCount"],
                                     d["EndpointStatus"]))
            self.stop.wait(1.0)

    def transitions(self) -> dict[str, Any]:
        ups = downs = 0
        counts = [c for _, c, _ in self.samples]
        for a, b in itertools.pairwise(counts):
            ups += b > a
            downs += b < a
        return {"scale_outs": ups, "scale_ins": downs, "min_instances": min(counts, default=None),
                "max_instances": max(counts, default=None),
                "statuses": sorted({s for _, _, s in self.samples})}


# ------------------------------------------------------------------------------- setup
def setup(backend: LocalBackend, n_models: int, target_value: float) -> list[str]:
    sm, aas = client(backend.url, "sagemaker"), client(backend.url, "application-autoscaling")
    as_url = upload_model(backend, "as/model.tar.gz", archive(1024, 0), bucket="soak")
    models = [f"m{i:02d}.tar.gz" for i in range(n_models)]
    for i, key in enumerate(models):
        upload_model(backend, f"mme/{key}", archive(4 * 2**20, i + 1), bucket="soak")
    for name, url_, mode in ((AS, as_url, "SingleModel"), (MME, "s3://soak/mme/", "MultiModel")):
        deploy_endpoint(sm, name, url_, mode=mode, wait=False)
    for name in (AS, MME):
        d = wait_for_endpoint(sm, name, ("InService", "Failed"), timeout=300)
        if d["EndpointStatus"] != "InService":
            raise RuntimeError(f"{name} failed: {d.get('FailureReason')}")
    rid = f"endpoint/{AS}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid,
                                 ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                                 MinCapacity=1, MaxCapacity=4)
    aas.put_scaling_policy(
        PolicyName="soak-tt", ServiceNamespace="sagemaker", ResourceId=rid,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target_value, "ScaleOutCooldown": 60, "ScaleInCooldown": 120,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    return models


def target(url: str, endpoint: str) -> load.Target:
    return load.Target(url, REGION, Credentials(CREDS["aws_access_key_id"], CREDS["aws_secret_access_key"]),
                       endpoint, local=True)


def phase_table(result: load.LoadResult, shape: SoakShape) -> dict[str, dict[str, Any]]:
    f = result.frame
    f = f.assign(phase=shape.phase(f["time"].to_numpy() / shape.scale))
    out = {}
    for phase in PHASES:
        g = f[f["phase"] == phase]
        ok = g.loc[g["status"] == 200, "latency_ms"]
        out[phase] = {"requests": len(g), "failed": int((g["status"] != 200).sum()),
                      "p50_ms": round(float(ok.quantile(0.5)), 2) if len(ok) else None,
                      "p99_ms": round(float(ok.quantile(0.99)), 2) if len(ok) else None}
    return out


def mme_metrics(url: str, start: float, end: float) -> dict[str, Any]:
    cw = client(url, "cloudwatch")
    dims = [{"Name": "EndpointName", "Value": MME}, {"Name": "VariantName", "Value": "AllTraffic"}]
    out = {}
    for name, stat in (("ModelUnloadingTime", "SampleCount"), ("ModelLoadingTime", "SampleCount"),
                       ("ModelCacheHit", "Average")):
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims,
                                          StartTime=start, EndTime=end, Period=60, Statistics=[stat])["Datapoints"]
        if stat == "SampleCount":
            out[name] = int(sum(p["SampleCount"] for p in points))
        else:
            vals = [p["Average"] for p in points]
            out[name] = round(sum(vals) / len(vals), 3) if vals else None
    return {"evictions": out["ModelUnloadingTime"], "loads": out["ModelLoadingTime"],
            "cache_hit_ratio": out["ModelCacheHit"]}


def growth(before: float | None, after: float | None) -> float | None:
    if not before or after is None:
        return None
    return round(100.0 * (after - before) / before, 1)


# ------------------------------------------------------------------------------- main
async def drive(url: str, args: argparse.Namespace, models: list[str]) -> tuple[Any, Any, SoakShape, SoakShape]:
    cycle = args.cycle_seconds or max(args.seconds / 3.0, 10.0)
    spike_s = min(10.0, cycle / 10)
    s = args.time_scale
    as_shape = SoakShape(args.rate * 0.25, args.rate, args.rate, cycle, spike_s, s)
    mme_shape = SoakShape(args.rate * 0.15, args.rate * 0.4, args.rate * 0.4, cycle, spike_s, s)
    budget = args.max_requests
    emulated = args.seconds * s
    expected_as = as_shape.expected_requests(emulated)
    share = expected_as / max(expected_as + mme_shape.expected_requests(emulated), 1.0)
    as_cap = max(1, int(budget * share))
    seq = zipf_sequence(models, 5000)
    common = {"duration_s": emulated, "time_scale": s, "progress": False, "max_in_flight": 128,
              "poisson": True, "content_type": "application/octet-stream", "payload": b"x" * 512}
    r_as, r_mme = await asyncio.gather(
        load.arun_load(target(url, AS), as_shape, max_requests=as_cap, seed=1, **common),
        load.arun_load(target(url, MME), mme_shape, max_requests=max(1, budget - as_cap), seed=2,
                       target_models=seq, **common),
    )
    return r_as, r_mme, as_shape, mme_shape


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = {"CATKIT_MME_MEMORY_BUDGET_MB": str(args.mme_budget_mb),
           "CATKIT_ACCESS_LOG": "0"}  # the access log would grow the disk, not the memory
    with LocalBackend(time_scale=args.time_scale, env=env) as backend:
        url = backend.start()
        print(f"backend {url} (home {backend.home}, time scale {args.time_scale:g}); deploying ...", flush=True)
        models = setup(backend, args.models, args.target_value)
        watcher = CountWatcher(url)
        # Warm-up: load every model once and settle, then take the start memory snapshot.
        rt = client(url, "sagemaker-runtime")
        for m in models:
            with contextlib.suppress(Exception):
                rt.invoke_endpoint(EndpointName=MME, Body=b"warm", ContentType="application/octet-stream",
                                   TargetModel=m)
        for _ in range(50):
            rt.invoke_endpoint(EndpointName=AS, Body=b"warm", ContentType="application/octet-stream")
        mem_start = memory_snapshot(backend)
        info = lifecycle.health(url, timeout=5) or {}
        t_start = float(info["now"])
        print(f"driving traffic for {args.seconds:g} s (max {args.max_requests} requests) ...", flush=True)
        watcher.start()
        started = time.monotonic()
        r_as, r_mme, as_shape, mme_shape = asyncio.run(drive(url, args, models))
        elapsed = time.monotonic() - started
        watcher.stop.set()
        watcher.join(5)
        mem_end = memory_snapshot(backend)
        info = lifecycle.health(url, timeout=5) or {}
        report = {
            "seconds": round(elapsed, 1),
            "time_scale": args.time_scale,
            "requests_sent": r_as.requests + r_mme.requests,
            "requests_failed": (r_as.requests - r_as.ok) + (r_mme.requests - r_mme.ok),
            "errors": {AS: r_as.summary()["errors"], MME: r_mme.summary()["errors"]},
            "endpoints": {
                AS: {**{k: r_as.summary()[k] for k in ("requests", "ok", "p50_ms", "p99_ms")},
                     "phases": phase_table(r_as, as_shape), "scaling": watcher.transitions()},
                MME: {**{k: r_mme.summary()[k] for k in ("requests", "ok", "p50_ms", "p99_ms")},
                      "phases": phase_table(r_mme, mme_shape), "models": len(models),
                      **mme_metrics(url, t_start, float(info["now"]) + 60)},
            },
            "memory_start": mem_start,
            "memory_end": mem_end,
            "memory_growth_pct": {
                "backend": growth(mem_start["backend_mib"], mem_end["backend_mib"]),
                f"{AS} mean instance": growth(mem_start[AS]["mean_mib"], mem_end[AS]["mean_mib"]),
                f"{MME} mean instance": growth(mem_start[MME]["mean_mib"], mem_end[MME]["mean_mib"]),
            },
        }
        for k in ("p50_ms", "p99_ms"):
            for ep in (AS, MME):
                v = report["endpoints"][ep][k]
                report["endpoints"][ep][k] = None if v is None or math.isnan(v) else round(v, 2)
        return report


def print_report(r: dict[str, Any]) -> None:
    print(f"\nsoak: {r['seconds']} s real at time scale {r['time_scale']:g}: "
          f"{r['requests_sent']} requests sent, {r['requests_failed']} failed {r['errors']}")
    for ep, e in r["endpoints"].items():
        print(f"\n{ep}: {e['requests']} requests, p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms")
        print(f"  {'phase':<10} {'requests':>8} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8}")
        for phase, p in e["phases"].items():
            print(f"  {phase:<10} {p['requests']:>8} {p['failed']:>6} {p['p50_ms']!s:>8} {p['p99_ms']!s:>8}")
        if "scaling" in e:
            print(f"  scaling: {e['scaling']}")
        if "evictions" in e:
            print(f"  models {e['models']}, loads {e['loads']}, evictions {e['evictions']}, "
                  f"cache hit ratio {e['cache_hit_ratio']}")
    print(f"\nmemory start: {r['memory_start']}")
    print(f"memory end:   {r['memory_end']}")
    flat = all(g is None or g <= 10.0 for g in r["memory_growth_pct"].values())
    print(f"memory growth %: {r['memory_growth_pct']} ({'flat' if flat else 'GREW more than 10 %'})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=float(os.environ.get("CATKIT_SOAK_SECONDS") or 600),
                   help="real seconds of traffic (default $CATKIT_SOAK_SECONDS or 600)")
    p.add_argument("--max-requests", type=int, default=200_000, help="upper bound on requests sent")
    p.add_argument("--time-scale", type=float, default=60.0, help="backend time scale (default 60)")
    p.add_argument("--rate", type=float, default=40.0,
                   help="peak real requests/s on the auto-scaled endpoint (spikes add as much again)")
    p.add_argument("--target-value", type=float, default=None,
                   help="InvocationsPerInstance target (default: scales 1 -> 3 instances at the peak)")
    p.add_argument("--models", type=int, default=8, help="models behind the multi-model endpoint")
    p.add_argument("--mme-budget-mb", type=float, default=14.0,
                   help="CATKIT_MME_MEMORY_BUDGET_MB (4 MiB models: 3 fit, the rest are evicted)")
    p.add_argument("--cycle-seconds", type=float, default=None, help="real seconds per traffic 'day'")
    p.add_argument("--json", help="also write the report here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seconds <= 0 or args.max_requests <= 0:
        raise SystemExit("--seconds and --max-requests must be > 0")
    if args.target_value is None:
        # Invocations per emulated minute per instance at the peak = rate * 60 / time_scale.
        args.target_value = round(args.rate * 60.0 / args.time_scale / 3.0, 3)
    report = run(args)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 1 if report["requests_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
