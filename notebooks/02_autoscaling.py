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
# # 02 · Autoscaling that follows the traffic
#
# A fixed fleet is either too small at the peak or too expensive the rest of the day. SageMaker
# endpoints scale through **Application Auto Scaling**: register the variant as a *scalable target*
# (min/max instances) and attach a **target-tracking policy** on `SageMakerVariantInvocationsPerInstance`
# — "keep about N invocations per instance per minute". Application Auto Scaling then creates two
# CloudWatch alarms and changes the variant's `DesiredInstanceCount`:
#
# * **AlarmHigh** — 3 consecutive 1-minute datapoints above the target → scale **out**, proportionally
#   (`ceil(instances × metric / target)`), then a *scale-out cooldown* (60 s in the seed policy);
# * **AlarmLow** — 15 consecutive minutes below ~90 % of the target → scale **in**, gradually,
#   with a *scale-in cooldown* (300 s).
#
# The pitfalls this notebook shows: new instances take minutes to provision (**cold starts on
# scale-out**), and a 1-minute metric needs 3 minutes to notice a spike — the **high-resolution**
# (10-second) metric notices it much sooner.
#
# **Local numbers.** On the local backend time runs `time_scale` times faster: at 120, one emulated
# minute lasts half a real second, so 15 minutes of scale-in pass in 7.5 s. A laptop can't send the
# seed's 1000 invocations per instance per minute at 120× speed (that is 4,000 real requests/s for
# two instances), so locally the target is scaled down with the load (`target_value` below); on AWS
# use the seed's 1000 and real traffic.

# %% tags=["parameters"]
backend = "local"
region = "us-east-1"
instance_type = "ml.m5.xlarge"
instance_count = 2
min_capacity = 2
max_capacity = 10
target_value = 20.0  # invocations per instance per minute (seed on AWS: 1000)
scale_out_cooldown = 60
scale_in_cooldown = 300
base_rps = 0.3  # emulated requests/s before and after the step (18/min for the fleet)
peak_rps = 1.6  # emulated requests/s during the step (96/min: 48/instance on 2, 19.2 on 5 instances)
step_at_s = 5 * 60  # emulated seconds
step_length_s = 10 * 60
duration_s = 45 * 60  # emulated seconds of load: scale-in comes ~31 min in, the rest is slack for a busy machine
high_res_target = 0.2  # concurrent requests per instance (~ the same load as target_value) for the comparison
time_scale = 120.0  # local only: emulated seconds per real second
teardown = True  # delete the endpoint at the end (False: keep it and play with the panel)
out_dir = "out/02_autoscaling"
run_id = "manual"
model_cache = "out/model-cache"

# %%
import pandas as pd

import catkit
from catkit import scaling
from catkit.deploy import delete_endpoint
from catkit.examples.cathat import make_image
from catkit.invoke import ImageSerializer
from catkit.notebook.context import deploy_cathat, start_notebook
from catkit.notebook.plots import new_axes, show_and_save
from catkit.whatif import load, shapes, simulate

session, out, results = start_notebook(out_dir, backend=backend, region=region, time_scale=time_scale)

endpoint_name = deploy_cathat(session, model_cache, run_id, "cat-hat-scaling",
                              instance_type=instance_type, instance_count=instance_count)
print(endpoint_name, "InService with", instance_count, "instances")

# %% [markdown]
# ## The scaling panel
#
# In JupyterLab the sliders set min/max instances, the target and both cooldowns (`panel.config`, a
# `catkit.ScalingConfig`); **Apply** sends it with `catkit.scaling.configure_scaling`
# (RegisterScalableTarget + PutScalingPolicy). The panel keeps its instance count live while it is
# on screen, and disables itself with a plain message when the endpoint is busy or deleted.
# Run All sets the same widgets from code and applies them, so the notebook also runs headless.

# %%
panel = catkit.ScalingPanel(session, endpoint_name)
panel.min_instances.value = min_capacity
panel.max_instances.value = max_capacity
panel.target_value.value = target_value
panel.scale_out_cooldown.value = scale_out_cooldown
panel.scale_in_cooldown.value = scale_in_cooldown
panel.display()
policy = panel.apply()

# %% [markdown]
# Target tracking created two CloudWatch alarms: **AlarmHigh** (3 of 3 minutes above the target) and
# **AlarmLow** (15 of 15 minutes below 90 % of it).

# %%
alarms = pd.DataFrame(session.cloudwatch.describe_alarms(AlarmNames=policy.alarms)["MetricAlarms"])
alarms[["AlarmName", "ComparisonOperator", "Threshold", "DatapointsToAlarm", "EvaluationPeriods", "Period",
        "StateValue"]]

# %% [markdown]
# ## A step in traffic, watched live
#
# `catkit.whatif.load` sends real, SigV4-signed InvokeEndpoint requests at a rate given in emulated time:
# a base load, a 10-minute step at 5× the base, then back to base. The **live monitor** samples the
# endpoint while the load runs: invocations per instance per minute (the metric the policy tracks),
# instances in service and desired, and each scaling activity as a dashed line. Watch the gap between
# *desired* and *in service*: new instances take minutes to start (cold starts on scale-out).

# %%
payload, content_type = ImageSerializer()(make_image(seed=11, hat=True))
shape = shapes.Constant(base_rps) + shapes.Spike(at_s=step_at_s, duration_s=step_length_s,
                                                extra_rps=peak_rps - base_rps)
with catkit.LiveMonitor(session, endpoint_name, target_value=target_value, interval=1.0) as monitor:
    run = load.run_load(session, endpoint_name, shape, duration_s=duration_s, payload=payload,
                        content_type=content_type)
summary = run.summary()
pd.DataFrame([summary])[["requests", "ok", "errors", "real_seconds", "p50_ms", "p99_ms"]]

# %% [markdown]
# ## What the autoscaler did
#
# Scaling activities (DescribeScalingActivities), with the minute of the load run each one started in,
# and instances vs invocations per instance from CloudWatch, with each activity marked.

# %%
activities = scaling.scaling_activities(session, endpoint_name)
load_start = pd.Timestamp(run.start_timestamp, unit="s", tz="UTC")
activities["minute_of_run"] = (activities["start_time"] - load_start).dt.total_seconds() / 60
activities[["minute_of_run", "status", "desired_capacity", "cause"]].round(1)

# %%
metrics = catkit.endpoint_metrics(session, endpoint_name, minutes=duration_s / 60 + 10)
show_and_save(catkit.plot_instances_vs_load(metrics, activities, initial_instances=instance_count,
                                            target_value=target_value,
                                            title=f"{endpoint_name}: instances vs invocations per instance"),
              out / "instances_vs_load.png")

# %% [markdown]
# ## 1-minute vs high-resolution metric
#
# `SageMakerVariantConcurrentRequestsPerModelHighResolution` is emitted every **10 seconds**, so
# its AlarmHigh (3 datapoints) fires after ~30 s instead of ~3 minutes. We replay the same step
# through `catkit.whatif.simulate`, which drives the *same* scaling engine as the local backend, once per
# metric, and compare when the first extra instance serves.

# %%
service = simulate.ServiceModel(max_rps=2.0, workers=1, source="illustrative: one worker, 0.5 s per request")
policies = {
    "1-minute InvocationsPerInstance": catkit.ScalingConfig(
        min_capacity=min_capacity, max_capacity=max_capacity, target_value=target_value),
    "10-second ConcurrentRequestsPerModel": catkit.ScalingConfig(
        min_capacity=min_capacity, max_capacity=max_capacity, target_value=high_res_target, metric="high_resolution"),
}
sims = {name: simulate.simulate(shape, config, service, duration_s=duration_s, initial_capacity=instance_count)
        for name, config in policies.items()}


def first_extra_instance_s(result) -> float | None:
    """Seconds after the step until more than the initial instances serve (None: never)."""
    above = (result.serving > instance_count).nonzero()[0]
    return float(above[0] - step_at_s) if len(above) else None


first_extra = {name: first_extra_instance_s(result) for name, result in sims.items()}
for name, seconds in first_extra.items():
    print(f"{name}: first extra instance serves {'never' if seconds is None else f'{seconds:.0f} s after the step'}")

fig, ax = new_axes(figsize=(9, 3.5))
for name, result in sims.items():
    ax.step([i / 60 for i in range(len(result.serving))], result.serving, where="post", label=name)
ax.axvspan(step_at_s / 60, (step_at_s + step_length_s) / 60, color="0.9", label="traffic step")
ax.set(xlabel="minutes", ylabel="instances serving", title="when the first extra instance serves")
ax.legend(fontsize=8)
show_and_save(fig, out / "one_minute_vs_high_resolution.png")

# %% [markdown]
# ## Publishing your own high-resolution metric
#
# Any application metric can drive scaling (a customized metric specification). Publish it at
# 1-second resolution (`StorageResolution=1`) so alarms can use 10-second periods.

# %%
publisher = catkit.MetricPublisher(session, "QueueDepth", namespace="CatHat/App",
                                   dimensions={"EndpointName": endpoint_name})
for depth in (3, 5, 8, 13, 21):
    publisher.put(depth)
sent = publisher.flush()
print("published", sent, "one-second datapoints to CatHat/App QueueDepth")

# %% [markdown]
# ## Tear down
#
# Deleting the endpoint also deregisters its scalable target (as on AWS); we remove the policy
# first so its alarms go too. The scaling panel above then says the endpoint is gone and disables
# itself. With `teardown = False` the endpoint stays, and the panel with it.

# %%
if teardown:
    scaling.remove_scaling(session, endpoint_name)
    deleted = delete_endpoint(session, endpoint_name, wait=True, poll=0.5)
    panel.refresh()
    print("deleted:", ", ".join(deleted))
else:
    deleted = []
    print(f"kept {endpoint_name} running: set teardown = True and run this cell to delete it")

# %% [markdown] tags=["run-record"]
# ---
# *Run record* — not part of the tutorial: the numbers `make demo` summarises and the notebook
# tests check, written to `out_dir/results.json`.

# %% tags=["run-record"]
done = activities[activities["status"] == "Successful"]
after_start_s = (done["start_time"] - load_start).dt.total_seconds()
outs = after_start_s[done["desired_capacity"] > instance_count]
ins = after_start_s[done["desired_capacity"] < done["desired_capacity"].cummax()]
scale_out_s = float(outs.iloc[0] - step_at_s) if len(outs) else None
results.record(
    alarms=len(policy.alarms),
    load={k: summary[k] for k in ("requests", "ok", "real_seconds", "p50_ms", "p99_ms")},
    max_instances=int(done["desired_capacity"].max()) if len(done) else instance_count,
    final_instances=int(monitor.final["desired"]),
    scale_out_after_step_s=scale_out_s,
    scale_in_after_step_s=float(ins.iloc[0] - step_at_s - step_length_s) if len(ins) else None,
    capacities=[int(c) for c in done["desired_capacity"]],
    sim_first_extra_instance_s={"1-minute": first_extra["1-minute InvocationsPerInstance"],
                                "high-resolution": first_extra["10-second ConcurrentRequestsPerModel"]},
    custom_metric_datapoints=sent,
    deleted=deleted,
    headline=(f"scaled {instance_count} -> {int(done['desired_capacity'].max())} -> {monitor.final['desired']}; "
              f"first scale-out {scale_out_s:.0f} s after the step" if scale_out_s is not None else "no scale-out"),
)
