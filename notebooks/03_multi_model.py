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
# # 03 · Many cat-hat models behind one endpoint
#
# One endpoint per model gets expensive fast when you have a model per customer, per region or
# per cat breed. A **multi-model endpoint** (MME) serves every `model.tar.gz` under one S3 prefix:
#
# * `CreateModel` with `Mode="MultiModel"` and `ModelDataUrl="s3://bucket/prefix/"`;
# * `InvokeEndpoint(..., TargetModel="cat-v3.tar.gz")` picks the model (a path under the prefix);
# * on its **first** call an instance downloads the archive, unpacks it and loads it — a **cold
#   start**; later calls are warm; requests for a model go to the instances that already hold it;
# * when an instance's memory or disk is full, the **least recently used** models are unloaded /
#   deleted to make room — so a model that was evicted is cold again.
#
# Adding a model is just copying an archive under the prefix: the endpoint is not touched.

# %% tags=["parameters"]
backend = "local"
region = "us-east-1"
instance_type = "ml.m5.xlarge"
instance_count = 1  # one instance keeps the cache easy to watch; use 2+ in production
n_variants = 6  # cat-hat variants (each trained with its own seed and settings)
disk_budget_mb = 0.25  # local only: emulate a small model volume (~2 cat-hat models per instance)
time_scale = 120.0  # local only: emulated seconds per real second
teardown = True  # delete the endpoint and the models at the end
out_dir = "out/03_multi_model"
run_id = "manual"
model_cache = "out/model-cache"

# %%
import warnings
from pathlib import Path

import pandas as pd

import catkit
from catkit import mme
from catkit.deploy import HighAvailabilityWarning, delete_endpoint
from catkit.examples.cathat import build_cathat_archives, make_image
from catkit.invoke import ImageSerializer
from catkit.notebook.context import delete_at_exit, endpoint_exists, run_name, start_notebook
from catkit.notebook.plots import new_axes, show_and_save

session, out, results = start_notebook(out_dir, backend=backend, region=region, time_scale=time_scale)
archives = build_cathat_archives(Path(model_cache), range(n_variants), progress=True)
print(f"{len(archives)} archives, {sum(a.stat().st_size for a in archives) / 1024:.0f} KiB in total")

# %% [markdown]
# ## Deploy one endpoint for all of them
#
# One instance makes the per-instance model cache easy to watch (catkit warns: production
# endpoints want 2+ instances for availability). The local backend reads
# `CATKIT_MME_DISK_BUDGET_MB` from the model's container environment to emulate a small instance
# volume (AWS ignores the variable; real instances have GBs of disk, and you would see eviction
# with real-sized models).

# %%
endpoint_name = run_name("cat-hat-mme", run_id)
prefix = f"s3://{session.bucket}/catkit/{run_id}/mme/"
delete_at_exit(session, endpoint_name)
if not endpoint_exists(session, endpoint_name):  # running the cell again reuses the endpoint
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", HighAvailabilityWarning)
        mme.deploy_multi_model(
            session, prefix, name=endpoint_name, instance_type=instance_type, instance_count=instance_count,
            environment={"CATKIT_MME_DISK_BUDGET_MB": str(disk_budget_mb)},
            tags={"catkit:run-id": run_id}, poll=0.5,
        )
targets = [mme.add_model(session, prefix, str(a), name=f"cat-v{i}.tar.gz") for i, a in enumerate(archives)]
print("models under the prefix:", mme.list_models(session, prefix))

# %% [markdown]
# ## Cold, then warm
#
# Each model is called twice in a row: the first call pays download + unpack + load.

# %%
payload, content_type = ImageSerializer()(make_image(seed=21, hat=True))
rows = []
for target in targets[:4]:
    for attempt in ("first call", "second call"):
        p = mme.invoke_model(session, endpoint_name, target, payload)
        rows.append({"model": target, "call": attempt, "latency_ms": p.latency_ms, "label": p.value["label"]})
calls = pd.DataFrame(rows)
calls.pivot(index="model", columns="call", values="latency_ms").round(1)

# %%
fig, ax = new_axes(figsize=(7, 3.5))
calls.pivot(index="model", columns="call", values="latency_ms").plot.bar(ax=ax, rot=0)
ax.set_yscale("log")  # cold calls are 10-100x slower than warm ones
ax.set(ylabel="latency (ms, log scale)", title="multi-model endpoint: cold first call vs warm second call")
show_and_save(fig, out / "cold_vs_warm.png")

# %% [markdown]
# CloudWatch tells the same story: `ModelCacheHit` (1 = warm, 0 = cold; its average is the hit
# ratio) and `ModelLoadingWaitTime` (how long the cold requests waited for their model).

# %%
def cache_totals() -> tuple[float, float]:
    """(warm requests, all requests) so far, from CloudWatch ModelCacheHit (Sum, SampleCount)."""
    f = catkit.endpoint_metrics(session, endpoint_name, minutes=60, metrics=[
        ("AWS/SageMaker", "ModelCacheHit", "Sum"), ("AWS/SageMaker", "ModelCacheHit", "SampleCount")])
    return float(f[f.stat == "Sum"]["value"].sum()), float(f[f.stat == "SampleCount"]["value"].sum())


hits, count = cache_totals()
print(f"ModelCacheHit: {hits:.0f} warm of {count:.0f} requests")
waits = catkit.endpoint_metrics(session, endpoint_name, minutes=60, metrics=[
    ("AWS/SageMaker", name, "Average") for name in ("ModelLoadingWaitTime", "ModelDownloadingTime", "ModelLoadingTime")])
(waits.groupby("metric")["value"].mean() / 1000).round(1).rename("average ms").to_frame()

# %% [markdown]
# ## Eviction: least recently used goes first
#
# Now every variant in turn. The emulated volume holds only a couple of unpacked models per
# instance, so calling all of them pushes the oldest out: `cat-v0` (the least recently used) is
# cold again, while the model we called last is still warm. `ModelCacheHit` tells which was which.

# %%
for target in targets:
    mme.invoke_model(session, endpoint_name, target, payload)
before = cache_totals()
again_first = mme.invoke_model(session, endpoint_name, targets[0], payload)
middle = cache_totals()
again_last = mme.invoke_model(session, endpoint_name, targets[-1], payload)
after = cache_totals()
first_warm, last_warm = bool(middle[0] - before[0]), bool(after[0] - middle[0])
misses_in_sweep = (before[1] - before[0]) - (count - hits)
print(f"{targets[0]} after the sweep: {again_first.latency_ms:.1f} ms, {'warm' if first_warm else 'cold (evicted)'}")
print(f"{targets[-1]} after the sweep: {again_last.latency_ms:.1f} ms, {'warm' if last_warm else 'cold'}")
print(f"cold loads during the sweep: {misses_in_sweep:.0f} of {len(targets)}")

# %% [markdown]
# ## The seed's workflow: copy an archive under the prefix
#
# A new model is servable as soon as its archive is under the prefix — no endpoint update.

# %%
bucket, key_prefix = prefix[len("s3://"):].split("/", 1)
staged = catkit.build.upload_model(archives[0], session.s3, session.bucket, f"catkit/{run_id}/staging/cat-new.tar.gz")
src_bucket, src_key = staged[len("s3://"):].split("/", 1)
session.s3.copy_object(Bucket=bucket, Key=key_prefix + "cat-new.tar.gz", CopySource={"Bucket": src_bucket, "Key": src_key})
new = mme.invoke_model(session, endpoint_name, "cat-new.tar.gz", payload)
print("cat-new.tar.gz ->", new.value)

# %% [markdown]
# ## Tear down
#
# With `teardown = True`: the endpoint (with its config and model), the archives under the prefix
# and the staged copy.

# %%
if teardown:
    deleted = delete_endpoint(session, endpoint_name, wait=True, poll=0.5)
    for target in [*targets, "cat-new.tar.gz"]:
        mme.remove_model(session, prefix, target)
    session.s3.delete_object(Bucket=src_bucket, Key=src_key)
    print("deleted:", ", ".join(deleted), f"and {len(targets) + 1} archives")
else:
    deleted = []
    print(f"kept {endpoint_name} and the archives under {prefix}")

# %% [markdown] tags=["run-record"]
# ---
# *Run record* — not part of the tutorial: the numbers `make demo` summarises and the notebook
# tests check, written to `out_dir/results.json`.

# %% tags=["run-record"]
medians = calls.groupby("call")["latency_ms"].median()
results.record(
    cold_ms_median=float(medians["first call"]), warm_ms_median=float(medians["second call"]),
    labels=sorted(set(calls["label"])), cache_hits=hits, cache_requests=count,
    first_after_sweep_warm=first_warm, last_after_sweep_warm=last_warm, misses_in_sweep=misses_in_sweep,
    new_model_label=new.value["label"], deleted=deleted,
    headline=(f"{n_variants} models on one endpoint: cold {medians['first call']:.0f} ms vs warm "
              f"{medians['second call']:.0f} ms (median); {targets[0]} "
              f"{'stayed loaded' if first_warm else 'was evicted (LRU)'}"),
)
