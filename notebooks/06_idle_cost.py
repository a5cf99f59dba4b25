# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Idle cost: real-time, night schedule, asynchronous scale to zero, serverless
#
# A real-time endpoint bills every second each instance exists. When traffic comes in a few
# bursts a day, most of that money buys idle time. AWS offers four answers, each trading cost for
# latency in its own way:
#
# | option | billed for | first request after idle |
# |---|---|---|
# | real-time 24/7 | instances, always | fast |
# | real-time + night schedule | fewer instances at night | fast |
# | asynchronous, scale to zero | instances while there is work (MinCapacity 0) | waits for an instance to start (minutes) |
# | serverless | memory × request duration (GB-seconds) + data | a cold start (seconds) |
#
# This notebook serves **the same day of spiky traffic** all four ways: first simulated for the
# whole day (cost, p50/p99 latency, cold starts), then a short real run of each against the
# backend. A widget at the end lets you try your own traffic numbers.

# %% tags=["parameters"]
backend = "local"
region = "us-east-1"
instance_type = "ml.m5.xlarge"
instances = 2  # real-time fleet size (and the async endpoint's MaxCapacity)
peak_rps = 2.0  # the bursts' request rate
quiet_rps = 0.001  # between bursts: a request every ~17 minutes
memory_mb = 2048  # serverless memory (1024..6144 in 1 GB steps)
max_concurrency = 5  # serverless MaxConcurrency (1..200)
n_requests = 8  # requests per option in the short real run
time_scale = 120.0  # local only: at 120, one emulated hour lasts 30 real seconds
teardown = True  # the last section deletes everything this notebook created (False: keep it)
out_dir = "out/06_idle_cost"
run_id = "manual"
model_cache = "out/model-cache"  # trained cat-hat archive, shared by the notebooks

# %%
import warnings
from datetime import timedelta

import numpy as np
import pandas as pd

from catkit import cost, scaling
from catkit.deploy import HighAvailabilityWarning, delete_tagged_endpoints, describe_endpoint, list_endpoints
from catkit.endpoint_kinds import AsyncInference, Serverless
from catkit.examples.cathat import make_image
from catkit.invoke import ImageSerializer, invoke, invoke_async
from catkit.notebook.context import cathat_key, deploy_cathat, start_notebook
from catkit.notebook.plots import plot_idle_options, show_and_save
from catkit.progress import wait_on_clock
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate import compare_idle_options, example_spiky_day, idle_options_frame
from catkit.whatif.simulate.run import traffic_array

session, out, results = start_notebook(out_dir, backend=backend, region=region, time_scale=time_scale)
TAG = "catkit:run-id"

# %% [markdown]
# ## 1 · A day of spiky traffic, simulated four ways
#
# Four 20-minute bursts (08:00, 11:00, 14:00, 17:00) and almost nothing in between. The simulator
# runs each option on the same scaling engine and driver as the backend: the night schedule is a
# pair of scheduled actions, the asynchronous endpoint uses AWS's scale-to-zero pattern (target
# tracking on `ApproximateBacklogSizePerInstance` to go down to 0, a step policy on a
# `HasBacklogWithoutCapacity` alarm to come back), serverless starts workers on demand and releases
# them after idle. The service model says one instance answers in 100 ms at up to 10 requests/s.

# %%
service = ServiceModel(max_rps=10.0, workers=1, instance_type=instance_type, source="assumed for the demo")
traffic = example_spiky_day(peak_rps, quiet_rps)
rate = traffic_array(traffic, 86400)
options = compare_idle_options(rate, service, duration_s=86400, instances=instances, memory_mb=memory_mb,
                               max_concurrency=max_concurrency)
day = idle_options_frame(options)
day[["option", "cost_usd", "p50_ms", "p99_ms", "cold_starts", "requests", "throttled"]].round(3)

# %%
show_and_save(plot_idle_options(options, rate), out / "idle_day.png")

# %% [markdown]
# Serverless is cheapest for this traffic because it bills only the 100 ms of each request; the
# asynchronous endpoint pays for instances only around the bursts, but a request that arrives while
# it sits at zero waits for an instance to start (the p99). The night schedule saves what the
# night is worth, and real-time 24/7 pays for every idle second.
#
# ## 2 · A short real run of each
#
# The same model deployed four ways. Real-time latency is the client's wall-clock time; the
# asynchronous and serverless cold starts are measured on the service clock (`session.now()`, the
# emulated clock locally), where AWS measures them too.

# %%
serializer = ImageSerializer()
images = [make_image(seed=i, hat=i % 2 == 0) for i in range(n_requests)]
realtime = deploy_cathat(session, model_cache, run_id, "idle-rt", instance_type=instance_type,
                         instance_count=instances)
scaling.register_scalable_target(session, realtime, min_capacity=instances, max_capacity=instances)
with warnings.catch_warnings():  # one instance at night is the saving here; catkit warns it is not HA
    warnings.simplefilter("ignore", HighAvailabilityWarning)
    scaling.schedule_night_scaling(session, realtime, night_min=1, night_max=1, day_min=instances,
                                   day_max=instances)
rt_ms = [invoke(session, realtime, img, serializer=serializer).latency_ms for img in images]
print(f"real-time {realtime}: p50 {np.percentile(rt_ms, 50):.0f} ms, p99 {np.percentile(rt_ms, 99):.0f} ms "
      "(the night schedule changes capacity, not latency)")

# %%
bucket = session.bucket
asynchronous = deploy_cathat(
    session, model_cache, run_id, "idle-async", instance_type=instance_type, instance_count=1,
    async_inference=AsyncInference(f"s3://{bucket}/catkit/{run_id}/async-out", f"s3://{bucket}/catkit/{run_id}/async-fail",
                                   max_concurrent_per_instance=2),
)
scaling.configure_scale_to_zero(session, asynchronous, max_capacity=instances, backlog_per_instance=2,
                                scale_in_cooldown=60, wake_cooldown=60)
warm = [invoke_async(session, asynchronous, img, serializer=serializer, poll=0.1, progress=False) for img in images]
print(f"async, warm: {[r.value['label'] for r in warm][:4]} ... p50 {np.median([r.latency_s for r in warm]):.2f} s "
      "(queue + S3 round trip)")


# %%
def instance_count(name: str) -> int:
    return int(describe_endpoint(session, name)["ProductionVariants"][0]["CurrentInstanceCount"])


t0 = session.now()
while instance_count(asynchronous) > 0:  # no backlog: target tracking scales in to MinCapacity 0
    wait_on_clock(session, 60, progress=False)
print(f"async endpoint at 0 instances after {(session.now() - t0).total_seconds() / 60:.0f} idle minutes")
sent = session.now()
woken = invoke_async(session, asynchronous, images[0], serializer=serializer, poll=0.2)
async_cold_s = (session.now() - sent).total_seconds()
print(f"the request that found 0 instances: {woken.status}, answered {async_cold_s / 60:.1f} service minutes "
      f"later (alarm + instance start); the endpoint is back to {instance_count(asynchronous)} instance(s)")

# %%
serverless = deploy_cathat(session, model_cache, run_id, "idle-sls", instance_type=instance_type, instance_count=1,
                           serverless=Serverless(memory_mb=memory_mb, max_concurrency=max_concurrency))
sls_ms = [invoke(session, serverless, img, serializer=serializer).latency_ms for img in images]
end = session.now()
setup = session.cloudwatch.get_metric_statistics(
    Namespace="AWS/SageMaker", MetricName="ModelSetupTime", StartTime=end - timedelta(hours=1),
    EndTime=end + timedelta(minutes=1), Period=60, Statistics=["Maximum", "SampleCount"],
    Dimensions=[{"Name": "EndpointName", "Value": serverless}, {"Name": "VariantName", "Value": "AllTraffic"}],
)["Datapoints"]
cold_start_s = max((d["Maximum"] for d in setup), default=0.0) / 1e6
cold_starts = int(sum(d["SampleCount"] for d in setup))
print(f"serverless {serverless}: {cold_starts} cold start(s), ModelSetupTime {cold_start_s:.1f} s; "
      f"first call {sls_ms[0]:.0f} ms, then p50 {np.median(sls_ms[1:]):.0f} ms")
# Locally ModelSetupTime is the emulated container set-up (5 s) plus the worker's real start (process
# and model load) in real seconds; on AWS it is the time to launch new compute, often several seconds.

# %%
real = pd.DataFrame([
    {"option": "real-time 24/7 / night schedule", "p50_ms": np.percentile(rt_ms, 50),
     "p99_ms": np.percentile(rt_ms, 99), "cold_starts": 0, "cold_start_s": 0.0},
    {"option": "async, scale to zero", "p50_ms": 1000 * np.median([r.latency_s for r in warm]),
     "p99_ms": 1000 * np.percentile([r.latency_s for r in warm], 99), "cold_starts": 1, "cold_start_s": async_cold_s},
    {"option": "serverless", "p50_ms": np.percentile(sls_ms, 50), "p99_ms": np.percentile(sls_ms, 99),
     "cold_starts": cold_starts, "cold_start_s": cold_start_s},
])
real.round(2)

# %% [markdown]
# What the day would cost from these measurements: serverless bills GB-seconds of its requests
# plus the data (`cost.serverless_cost`), the asynchronous endpoint its instance time
# (`cost.async_cost`).

# %%
requests_per_day = int(rate.sum())
sls_day = cost.serverless_cost(requests_per_day, np.median(sls_ms[1:]) / 1000, memory_mb,
                               request_bytes=len(serializer(images[0])[0]), response_bytes=100)
async_hours = float(options[2].capacity.sum()) / 3600
print(f"serverless for {requests_per_day} requests: ${sls_day.total_usd:.4f} "
      f"({sls_day.gb_seconds:.0f} GB-s, {sls_day.gb_processed * 1024:.1f} MB processed); "
      f"async: {async_hours:.1f} instance-hours = ${cost.async_cost(instance_type, async_hours, session=session):.2f}")

# %% [markdown]
# ## 3 · Try your own numbers
#
# Move the sliders: the simulated day is re-run for your burst rate, quiet rate, fleet size and
# serverless memory.

# %%
import ipywidgets as widgets
from IPython.display import display


def try_numbers(peak: float = peak_rps, quiet: float = quiet_rps, fleet: int = instances, memory: int = memory_mb):
    opts = compare_idle_options(example_spiky_day(peak, quiet), service, duration_s=86400, instances=fleet,
                                memory_mb=memory, max_concurrency=max_concurrency)
    display(idle_options_frame(opts)[["option", "cost_usd", "p50_ms", "p99_ms", "cold_starts", "throttled"]].round(3))


panel = widgets.interactive(
    try_numbers,
    peak=widgets.FloatSlider(value=peak_rps, min=0.1, max=20, step=0.1, description="burst rps", continuous_update=False),
    quiet=widgets.FloatLogSlider(value=quiet_rps, base=10, min=-4, max=0, description="quiet rps", continuous_update=False),
    fleet=widgets.IntSlider(value=instances, min=1, max=10, description="instances", continuous_update=False),
    memory=widgets.SelectionSlider(options=[1024, 2048, 3072, 4096, 5120, 6144], value=memory_mb, description="MB"),
)
display(panel)

# %% [markdown]
# ## 4 · Tear down
#
# Delete the scaling registrations and every endpoint tagged with this run, then the uploaded
# archive and the asynchronous results. (`teardown = False` skips this.) Note: the local backend
# records the SNS notifications of asynchronous endpoints instead of delivering them.

# %%
if teardown:
    for name in (realtime, asynchronous):
        scaling.remove_scaling(session, name)
    deleted = delete_tagged_endpoints(session, TAG, run_id, wait=True, poll=0.5)
    listing = session.s3.list_objects_v2(Bucket=bucket, Prefix=f"catkit/{run_id}/async-")
    for obj in listing.get("Contents", []):
        session.s3.delete_object(Bucket=bucket, Key=obj["Key"])
    session.s3.delete_object(Bucket=bucket, Key=cathat_key(run_id))
else:
    deleted = []
left = list_endpoints(session, TAG, run_id)
print("deleted:", deleted, "| left:", [e["EndpointName"] for e in left])

# %% [markdown] tags=["run-record"]
# ---
# *Run record* — not part of the tutorial: the numbers `make demo` summarises and the notebook
# tests check, written to `out_dir/results.json`.

# %% tags=["run-record"]
sim = {row["option"]: {k: float(row[k]) for k in ("cost_usd", "p50_ms", "p99_ms", "cold_starts")}
       for row in day.to_dict("records")}
results.record(
    simulated_day=sim,
    realtime_p50_ms=float(np.percentile(rt_ms, 50)),
    async_labels=[r.value["label"] for r in warm],
    async_woken_status=woken.status,
    async_cold_s=async_cold_s,
    serverless_cold_starts=cold_starts,
    serverless_cold_start_s=cold_start_s,
    serverless_first_ms=float(sls_ms[0]),
    serverless_warm_p50_ms=float(np.median(sls_ms[1:])),
    deleted=deleted,
    left_after_teardown=[e["EndpointName"] for e in left],
    headline=(f"day: 24/7 ${sim['real-time 24/7']['cost_usd']:.2f}, night ${sim['real-time, night schedule']['cost_usd']:.2f}, "
              f"async ${sim['async, scale to zero']['cost_usd']:.2f}, serverless ${sim['serverless']['cost_usd']:.4f}; "
              f"serverless cold start {cold_start_s:.1f} s"),
)
