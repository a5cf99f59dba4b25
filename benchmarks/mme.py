"""Multi-model endpoint benchmark: warm latency vs single-model, cold-load split, Zipf traffic.

Run: ``.venv/bin/python benchmarks/mme.py [--warm 400] [--cold 10] [--models 50] [--requests 1500]
[--model-mb 4] [--budget-mb 60] [--concurrency 4]``

Starts the local backend in this process (a thread with its own event loop, temp CATKIT_HOME,
loopback only, time scale 100) so the per-load timings of :class:`catkit.local.fleet.multimodel.
MultiModelManager` can be read; instances are real model-server processes. Requests are real
boto3 InvokeEndpoint calls through the gateway.

1. Warm path: the same small model on a single-model endpoint and as a TargetModel of a
   multi-model endpoint, invoked alternately (sequential, then ``--concurrency`` threads);
   p50/p99 and the MME/single ratio (goal: p50 ratio <= 1.1).
2. Cold loads: ``--cold`` fresh models, first call each: end-to-end cold latency and its split into
   S3 download, unpack and container load (``POST /models``).
3. Zipf: ``--models`` models of ``--model-mb`` MiB each (total well over the ``--budget-mb``
   memory budget of the one instance), ``--requests`` requests with Zipf(s=1.1) popularity at
   ``--concurrency``: cache-hit ratio (ModelCacheHit Average from CloudWatch), p50/p99 overall and
   for hits vs misses, loads and unloads.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.testing import multi_model_archive

BUCKET = "mme-bench"


class ThreadBackend:
    """A catkit local Backend running on an event loop in a background thread."""

    def __init__(self, home: Path, time_scale: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="catkit-backend", daemon=True)
        self.thread.start()

        async def make() -> Any:
            from catkit.local.backend import Backend

            backend = Backend(home, time_scale=time_scale)
            await backend.start()
            return backend

        self.backend = self.run(make())
        self.url: str = self.backend.url

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        try:
            self.run(self.backend.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def client(url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIABENCH",
                        aws_secret_access_key="bench",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=64))


def deploy(sm: Any, name: str, container: dict[str, Any]) -> None:
    sm.create_model(ModelName=name, PrimaryContainer={"Image": "local/bench:1", **container},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def timed_invoke(rt: Any, endpoint: str, target: str | None) -> float:
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": b"{}", "ContentType": "application/json"}
    if target:
        kwargs["TargetModel"] = target
    t0 = time.perf_counter()
    rt.invoke_endpoint(**kwargs)["Body"].read()
    return (time.perf_counter() - t0) * 1000.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def warm_path(url: str, n: int, concurrency: int) -> None:
    rt = client(url, "sagemaker-runtime")
    for _ in range(20):
        timed_invoke(rt, "bench-single", None)
        timed_invoke(rt, "bench-mme", "m.tar.gz")
    print("\n1. warm invoke latency, same model (ms)")
    print(f"   {'mode':<24}{'single p50':>11}{'MME p50':>9}{'ratio':>7}{'single p99':>12}{'MME p99':>9}{'ratio':>7}")
    for conc in (1, concurrency):
        single: list[float] = []
        multi: list[float] = []

        def worker(k: int, single: list[float] = single, multi: list[float] = multi, conc: int = conc) -> None:
            c = client(url, "sagemaker-runtime")
            for i in range(n // conc):
                if (i + k) % 2:
                    single.append(timed_invoke(c, "bench-single", None))
                    multi.append(timed_invoke(c, "bench-mme", "m.tar.gz"))
                else:
                    multi.append(timed_invoke(c, "bench-mme", "m.tar.gz"))
                    single.append(timed_invoke(c, "bench-single", None))

        with concurrent.futures.ThreadPoolExecutor(conc) as pool:
            list(pool.map(worker, range(conc)))
        s50, m50, s99, m99 = pct(single, 50), pct(multi, 50), pct(single, 99), pct(multi, 99)
        print(f"   {f'concurrency {conc}':<24}{s50:>11.2f}{m50:>9.2f}{m50 / s50:>7.2f}"
              f"{s99:>12.2f}{m99:>9.2f}{m99 / s99:>7.2f}")
    print("   goal: MME/single p50 ratio <= 1.10")


def cold_loads(tb: ThreadBackend, url: str, s3: Any, count: int, mb: int) -> None:
    rt = client(url, "sagemaker-runtime")
    for k in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"mme/cold-{k}.tar.gz", Body=multi_model_archive(f"cold-{k}", mb=mb))
    manager = tb.backend.endpoints.multimodel
    before = len(manager.loads)
    e2e = [timed_invoke(rt, "bench-mme", f"cold-{k}.tar.gz") for k in range(count)]
    warm = [timed_invoke(rt, "bench-mme", f"cold-{k}.tar.gz") for k in range(count)]
    recs = list(manager.loads)[before:]
    ms = lambda xs: statistics.median(xs) * 1000.0  # noqa: E731
    print(f"\n2. cold load, {count} models of {mb} MiB (median ms)")
    print(f"   first call end to end {statistics.median(e2e):8.2f}   second call {statistics.median(warm):6.2f}"
          f"   ratio {statistics.median(e2e) / statistics.median(warm):5.1f}x")
    print(f"   download (S3) {ms([r.download_s for r in recs]):8.2f}   unpack {ms([r.unpack_s for r in recs]):7.2f}"
          f"   load (POST /models) {ms([r.load_s for r in recs]):7.2f}   total {ms([r.total_s for r in recs]):7.2f}")


def zipf_traffic(tb: ThreadBackend, url: str, s3: Any, models: int, requests: int, mb: int, budget_mb: float,
                 concurrency: int) -> None:
    for k in range(models):
        s3.put_object(Bucket=BUCKET, Key=f"zipf/z{k:02d}.tar.gz", Body=multi_model_archive(f"z{k}", mb=mb))
    rng = random.Random(7)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(models)]
    targets = rng.choices([f"z{k:02d}.tar.gz" for k in range(models)], weights=weights, k=requests)
    manager = tb.backend.endpoints.multimodel
    loads_before = len(manager.loads)
    latencies: list[tuple[float, str]] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        c = client(url, "sagemaker-runtime")
        for t in targets[k::concurrency]:
            ms = timed_invoke(c, "bench-zipf", t)
            with lock:
                latencies.append((ms, t))

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    wall = time.perf_counter() - t0
    cw = client(url, "cloudwatch")
    now = dt.datetime.now(dt.UTC)

    def stat(name: str, statistic: str) -> float:
        points = cw.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=name, StartTime=now - dt.timedelta(days=2),
            EndTime=now + dt.timedelta(days=60), Period=86400, Statistics=[statistic],
            Dimensions=[{"Name": "EndpointName", "Value": "bench-zipf"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        )["Datapoints"]
        return sum(p[statistic] for p in points)

    hits, samples = stat("ModelCacheHit", "Sum"), stat("ModelCacheHit", "SampleCount")
    loads = len(manager.loads) - loads_before
    unloads = stat("ModelUnloadingTime", "SampleCount")
    all_ms = [m for m, _ in latencies]
    cold_cut = sorted(all_ms)[int(len(all_ms) * (1 - (samples - hits) / samples))] if samples > hits else None
    print(f"\n3. Zipf(s=1.1) over {models} models x {mb} MiB = {models * mb} MiB vs one instance's "
          f"{budget_mb:g} MiB budget, {requests} requests at concurrency {concurrency}")
    print(f"   hit ratio {hits / samples:.3f} ({int(hits)}/{int(samples)})   loads {loads}   unloads {int(unloads)}"
          f"   throughput {len(all_ms) / wall:.0f} inv/s")
    load_ms = stat("ModelLoadingTime", "Sum") / max(1.0, stat("ModelLoadingTime", "SampleCount")) / 1000
    unload_ms = stat("ModelUnloadingTime", "Sum") / max(1.0, unloads) / 1000
    wait_ms = stat("ModelLoadingWaitTime", "Sum") / max(1.0, stat("ModelLoadingWaitTime", "SampleCount")) / 1000
    print(f"   mean ms: load (POST /models) {load_ms:.2f}  unload (DELETE /models) {unload_ms:.2f}"
          f"  a miss's wait for its model {wait_ms:.2f}")
    print(f"   latency ms: p50 {pct(all_ms, 50):.2f}  p90 {pct(all_ms, 90):.2f}  p99 {pct(all_ms, 99):.2f}"
          f"  max {max(all_ms):.2f}" + (f"  (slowest {int(samples - hits)} ~ misses, >= {cold_cut:.2f})"
                                         if cold_cut else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warm", type=int, default=400, help="warm requests per endpoint (default 400)")
    ap.add_argument("--cold", type=int, default=10, help="fresh models for the cold split (default 10)")
    ap.add_argument("--models", type=int, default=50, help="models in the Zipf run (default 50)")
    ap.add_argument("--requests", type=int, default=1500, help="requests in the Zipf run (default 1500)")
    ap.add_argument("--model-mb", type=int, default=4, help="memory each model holds, MiB (default 4)")
    ap.add_argument("--budget-mb", type=float, default=60, help="instance model memory budget, MiB (default 60)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="catkit-bench-mme-"))
    os.environ["CATKIT_HOME"] = str(home)
    os.environ["CATKIT_MME_MEMORY_BUDGET_MB"] = str(args.budget_mb)  # read by the in-process backend
    tb = None
    try:
        tb = ThreadBackend(home, time_scale=100)
        url = tb.url
        s3, sm = client(url, "s3"), client(url, "sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        small = multi_model_archive("m", mb=0)
        s3.put_object(Bucket=BUCKET, Key="single/model.tar.gz", Body=small)
        s3.put_object(Bucket=BUCKET, Key="mme/m.tar.gz", Body=small)
        deploy(sm, "bench-single", {"ModelDataUrl": f"s3://{BUCKET}/single/model.tar.gz"})
        deploy(sm, "bench-mme", {"Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/mme/"})
        deploy(sm, "bench-zipf", {"Mode": "MultiModel", "ModelDataUrl": f"s3://{BUCKET}/zipf/"})
        print(f"catkit MME benchmark (cpus={os.cpu_count()}, load average {os.getloadavg()[0]:.2f})")
        warm_path(url, args.warm, args.concurrency)
        cold_loads(tb, url, s3, args.cold, args.model_mb)
        zipf_traffic(tb, url, s3, args.models, args.requests, args.model_mb, args.budget_mb, args.concurrency)
    finally:
        if tb is not None:
            tb.close()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
