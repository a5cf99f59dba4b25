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
# # 04 · What does it cost, what sits idle, and how to tear it all down
#
# A real-time endpoint bills **every second each instance exists**, whether or not anyone calls
# it. The two usual leaks are forgotten development endpoints and full capacity at night. This
# notebook deploys a busy "prod" endpoint and an idle "dev" endpoint, then:
#
# 1. prices instance types (the AWS Pricing API on AWS, a bundled table locally),
# 2. computes what each endpoint has cost so far and would cost per month,
# 3. finds the idle endpoint from its CloudWatch `Invocations`,
# 4. adds a night/weekend schedule and estimates the savings,
# 5. deletes everything it created (with `teardown = True`, the default), and checks nothing is left.

# %% tags=["parameters"]
backend = "local"
region = "us-east-1"
instance_type = "ml.m5.xlarge"
instance_count = 2
time_scale = 120.0  # local only: at 120, one emulated hour lasts 30 real seconds
idle_hours = 0.1  # idle means no invocations during this many emulated hours
n_requests = 30  # traffic sent to the prod endpoint
teardown = True  # section 5 deletes everything this notebook created (False: keep it)
out_dir = "out/04_cost_and_teardown"
run_id = "manual"
model_cache = "out/model-cache"  # trained cat-hat archive, shared by the notebooks

# %%
import pandas as pd

import catkit
from catkit import cost
from catkit.deploy import delete_tagged_endpoints, list_endpoints
from catkit.examples.cathat import make_image
from catkit.instance_types import INSTANCE_TYPES, PRICE_DATE, PRICE_SOURCE
from catkit.invoke import ImageSerializer
from catkit.notebook.context import cathat_key, deploy_cathat, start_notebook
from catkit.notebook.plots import show_and_save
from catkit.whatif import load

session, out, results = start_notebook(out_dir, backend=backend, region=region, time_scale=time_scale)
TAG = "catkit:run-id"

# %% [markdown]
# ## 1 · Prices
#
# On AWS, `price_per_hour` asks the Price List API (`pricing` client, `GetProducts` for
# `ML Instance` / `Hosting`); without it (or on the local backend) it falls back to the bundled
# table and says so.

# %%
common = ["ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge", "ml.g5.xlarge"]
quotes = [cost.price_per_hour(session, t) for t in common]
prices = pd.DataFrame(
    {
        "instance_type": [q.instance_type for q in quotes],
        "vcpu": [INSTANCE_TYPES[q.instance_type].vcpu for q in quotes],
        "memory_gib": [INSTANCE_TYPES[q.instance_type].memory_gib for q in quotes],
        "usd_per_hour": [q.usd_per_hour for q in quotes],
        "usd_per_month_2x": [cost.monthly_cost(q.instance_type, 2, session=session) for q in quotes],
    }
)
print(f"source: {quotes[0].source}" + (f" ({quotes[0].note})" if getattr(quotes[0], "note", None) else ""))
print(f"bundled table: {PRICE_SOURCE}, {PRICE_DATE}")
prices

# %% [markdown]
# ## 2 · A busy endpoint and a forgotten one

# %%
prod = deploy_cathat(session, model_cache, run_id, "cat-hat-prod", instance_type=instance_type,
                     instance_count=instance_count, tags={"catkit:purpose": "prod"})
dev = deploy_cathat(session, model_cache, run_id, "cat-hat-dev", instance_type=instance_type,
                    instance_count=instance_count, tags={"catkit:purpose": "dev"})
print("deployed:", prod, dev)

# %% [markdown]
# Only "prod" gets traffic: `catkit.whatif.load` sends `n_requests` evenly over `idle_hours` of
# (emulated) time, so that CloudWatch has a full window to judge.

# %%
payload, content_type = ImageSerializer()(make_image(seed=3, hat=True))
window_s = idle_hours * 3600
run = load.run_load(session, prod, n_requests / window_s, duration_s=window_s, payload=payload,
                    content_type=content_type)
print(f"sent {run.requests} requests to {prod} ({run.ok} ok) over {run.real_seconds:.0f} s real time")

# %% [markdown]
# ## 3 · Cost so far, cost per month, and the idle one

# %%
costs = {name: cost.endpoint_cost(session, name) for name in (prod, dev)}
pd.DataFrame([{"endpoint": name, "usd_so_far": c.usd, "usd_per_month": c.usd_per_month} for name, c in costs.items()])

# %%
idle = cost.find_idle_endpoints(session, hours=idle_hours)
idle[["endpoint", "instances", "invocations", "usd_per_month"]]

# %%
show_and_save(catkit.plot_cost(costs[prod], title=f"{prod}: cost so far"), out / "cost.png")

# %% [markdown]
# ## 4 · Scale down at night and over weekends
#
# A scheduled action changes the scalable target's min/max at a time (cron with a time zone);
# target tracking keeps working inside the new bounds. Keeping **2** instances at night keeps
# high availability; dropping to 1 saves more but warns (and a single instance is a single point
# of failure).

# %%
catkit.scaling.register_scalable_target(session, prod, min_capacity=2, max_capacity=10)
catkit.scaling.schedule_night_scaling(session, prod, night_min=2, night_max=2, day_min=2, day_max=10,
                                      timezone="Europe/Berlin")
pd.DataFrame(catkit.scaling.describe_scheduled_actions(session, prod))[
    ["ScheduledActionName", "Schedule", "Timezone", "ScalableTargetAction"]]

# %%
peak, night = 4, 2  # a fleet that runs 4 instances by day, 2 at night
savings = cost.night_schedule_savings(instance_type, peak, night, session=session)
print(f"{peak} by day, {night} at night: ${savings.usd_per_month_scheduled:.2f}/month instead of "
      f"${savings.usd_per_month_always_on:.2f} — saves ${savings.usd_saved_per_month:.2f} ({savings.fraction_saved:.0%})")
show_and_save(catkit.plot_schedule_savings(savings), out / "night_savings.png")

# %% [markdown]
# ## 5 · Tear everything down
#
# `delete_tagged_endpoints` finds every endpoint carrying this run's tag and deletes it with its
# endpoint config and model (and the scaling registration goes with the endpoint). Then we remove
# the uploaded archive and check that nothing tagged is left. (`teardown = False` skips this.)

# %%
if teardown:
    catkit.scaling.remove_scaling(session, prod)
    deleted = delete_tagged_endpoints(session, TAG, run_id, wait=True, poll=0.5)
    session.s3.delete_object(Bucket=session.bucket, Key=cathat_key(run_id))  # the uploaded archive
else:
    deleted = []
left = list_endpoints(session, TAG, run_id)
print("deleted:", deleted, "| left:", [e["EndpointName"] for e in left])

# %% [markdown] tags=["run-record"]
# ---
# *Run record* — not part of the tutorial: the numbers `make demo` summarises and the notebook
# tests check, written to `out_dir/results.json`.

# %% tags=["run-record"]
idle_names = list(idle["endpoint"]) if len(idle) else []
results.record(
    idle_endpoints=idle_names,
    cost_so_far={k: v.usd for k, v in costs.items()},
    usd_per_month={k: v.usd_per_month for k, v in costs.items()},
    night_savings_usd_per_month=savings.usd_saved_per_month,
    night_savings_fraction=savings.fraction_saved,
    deleted=deleted,
    left_after_teardown=[e["EndpointName"] for e in left],
    headline=(f"idle: {', '.join(idle_names) or 'none'}; night schedule saves "
              f"{savings.fraction_saved:.0%}; {len(deleted)} endpoints deleted"),
)
