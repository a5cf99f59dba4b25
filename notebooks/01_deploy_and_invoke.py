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
# # 01 · Deploy a cat-hat classifier and invoke it
#
# Does this cat wear a tiny hat? We train a small image classifier, package it the way SageMaker
# expects (`model.tar.gz` with the model at the root and `code/inference.py`), deploy it behind a
# **real-time endpoint on two `ml.m5.xlarge` instances**, and ask it about a few cats.
#
# The same cells run against AWS (`backend="aws"`) or against catkit's embedded local backend
# (`backend="local"`, the default): a gateway on 127.0.0.1 that speaks the SageMaker, S3 and
# CloudWatch wire protocols and runs each endpoint instance as a real model-server process. Only
# the endpoint URL differs; every call below is a plain boto3 call.
#
# **Why two instances?** SageMaker spreads the instances of a variant across Availability Zones.
# With one instance, an instance failure or an AZ outage takes your endpoint down; with two, the
# other instance keeps serving while SageMaker replaces the broken one.

# %% tags=["parameters"]
backend = "local"  # "local" (embedded backend) or "aws" (your account; costs money)
region = "us-east-1"
instance_type = "ml.m5.xlarge"
instance_count = 2
time_scale = 120.0  # local only: emulated seconds per real second (provisioning takes minutes on AWS)
n_images = 24  # how many generated cat pictures to classify
teardown = True  # delete the endpoint at the end (False: keep it running to explore, then delete it yourself)
out_dir = "out/01_deploy_and_invoke"
run_id = "manual"  # tag on everything this notebook creates, used to clean up
model_cache = "out/model-cache"  # trained cat-hat model + archive, shared by the notebooks

# %%
import json
import warnings
from pathlib import Path

import catkit
from catkit.deploy import delete_endpoint
from catkit.examples.cathat import build_cathat_archive, make_image
from catkit.invoke import invoke, invoke_batch, predictions_frame, serialize
from catkit.notebook.context import delete_at_exit, run_name, start_notebook
from catkit.notebook.plots import show_and_save

session, out, results = start_notebook(out_dir, backend=backend, region=region, time_scale=time_scale)
session

# %% [markdown]
# ## Build the model archive
#
# `build_cathat_archive` generates a deterministic synthetic data set (cat faces with random
# pose, fur and background; half of them wear a top hat, party cone, beanie…), trains a
# scikit-learn classifier on 2 CPU cores, and packs `model.tar.gz`:
#
# ```
# model.joblib  metadata.json        <- model files at the archive root
# code/inference.py                  <- model_fn / input_fn / predict_fn / output_fn
# ```

# %%
archive = build_cathat_archive(Path(model_cache), progress=True)  # trains once, then reuses the cached model
metadata = json.loads((Path(model_cache) / "cathat-v0" / "metadata.json").read_text())
print(f"archive: {archive} ({archive.stat().st_size / 1024:.0f} KiB)")
print(f"held-out accuracy: {metadata['accuracy']:.1%} on {metadata['n_test']} generated images "
      f"({metadata['model']}, trained on {metadata['n_train']})")

# %% [markdown]
# ## Upload and deploy
#
# `catkit.build.upload_model` puts the archive into the session's default bucket
# (`sagemaker-{region}-{account}`, created like the SageMaker SDK does). The **deploy panel** then
# makes the three SageMaker resources — model, endpoint configuration, endpoint — and waits for
# `InService`, showing the endpoint's status on a bar. Everything is tagged with this run's id so
# that clean-up can find it.
#
# In JupyterLab, pick another instance type or count and press **Deploy**: the panel shows the
# on-demand price, and warns when you go below two instances. Running the cell again reuses the
# endpoint (resized to the chosen count) instead of failing.

# %%
model_data = catkit.build.upload_model(archive, session.s3, session.bucket, f"catkit/{run_id}/cathat/model.tar.gz")
endpoint_name = run_name("cat-hat", run_id)
delete_at_exit(session, endpoint_name)  # even if a later cell fails (the runner sweeps the run tag too)

deployer = catkit.DeployPanel(session, model_data, endpoint_name, instance_type=instance_type,
                              instance_count=instance_count, poll=0.5,
                              tags={"catkit:run-id": run_id, "catkit:notebook": "01_deploy_and_invoke"})
deployer.display()
endpoint = deployer.deploy()  # what the Deploy button does
print(f"{endpoint_name}: {endpoint.status} with {endpoint.current} × {deployer.instance_type.value}")

# %% [markdown]
# ## Ask the endpoint about two cats
#
# The handler accepts `image/png` / `image/jpeg` bytes (or JSON with base64 images) and answers
# `{"label": "hat", "confidence": 0.987}`. `invoke` takes a PIL image as it is.

# %%
def headline(value: dict) -> str:
    label = "Hat" if value["label"] == "hat" else "No hat"
    return f"{label}: {value['confidence']:.1%} confidence"


hat_cat, plain_cat = make_image(seed=7, hat=True), make_image(seed=8, hat=False)
first, second = invoke(session, endpoint_name, hat_cat), invoke(session, endpoint_name, plain_cat)
fig = catkit.plot_images(
    [hat_cat, plain_cat],
    [f"{headline(p.value)}\n({p.latency_ms:.0f} ms, {p.variant})" for p in (first, second)],
    title="What the endpoint says",
)
show_and_save(fig, out / "cats.png")

# %% [markdown]
# ## A batch of cats, and how long each call took
#
# `invoke_batch` sends one request per image (real-time endpoints take one payload per call) and
# keeps each call's latency, so we can check the classifier and the endpoint at once.

# %%
images = [make_image(seed=1000 + i, hat=i % 2 == 0) for i in range(n_images)]
batch = invoke_batch(session, endpoint_name, images)
frame = predictions_frame(batch).assign(
    label=[p.value["label"] if p.ok else None for p in batch],
    truth=["hat" if i % 2 == 0 else "no_hat" for i in range(n_images)],
)
accuracy = float((frame["label"] == frame["truth"]).mean())
print(f"{accuracy:.0%} of {n_images} generated cats classified correctly")
frame[["label", "truth", "latency_ms", "variant"]].head(8)

# %%
show_and_save(catkit.plot_prediction_latency(batch, title=f"{endpoint_name}: latency per request"),
              out / "latency.png")

# %% [markdown]
# ## The high-availability guardrail
#
# Deploying a single instance works, but catkit warns you (the deploy panel above shows the same
# warning as soon as its slider goes below 2): a one-instance endpoint has no redundancy. Here we
# only ask for the warning; nothing is deployed.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    catkit.deploy.warn_if_not_highly_available(1)
print(caught[0].message if caught else "no warning")

# %% [markdown]
# ## The same deployment with the SageMaker Python SDK: v2 (the seed's code) beside v3
#
# catkit's helpers call boto3 directly, so they work with either SDK generation, or with none.
# Code written for the SDK runs unchanged as well: install the generation it was written for
# beside catkit - `pip install "catkit[sdk2]"` for v2's `Model` / `Predictor` (the seed's code), or
# `"catkit[sdk3]"` for v3 (what SageMaker Studio ships): the `sagemaker.core` resources, which map
# one-to-one onto the API, and `ModelBuilder`. Against the local backend, `catkit.use_local()` points
# either generation at it (on AWS it is not needed). Below, the v2 code and its v3 equivalent; the
# cell runs the one whose SDK is installed, and says so when none is. Note that v2's `deploy()`
# returns `None` unless `predictor_cls` is set, and waits 30 s before its first status check.

# %%
from catkit.local.sdk import sdk_generation
from catkit.serving.containers import script_environment


def deploy_with_sdk_v2(name: str, image_uri: str, body: bytes) -> dict:
    from sagemaker import get_execution_role
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor

    model = Model(model_data=model_data, image_uri=image_uri, role=get_execution_role(), predictor_cls=Predictor,
                  env=script_environment(image_uri))  # the container imports code/inference.py when told to
    predictor = model.deploy(initial_instance_count=1, instance_type=instance_type, endpoint_name=name, wait=True)
    answer = predictor.predict(body, initial_args={"ContentType": "image/png"})
    predictor.delete_endpoint()
    model.delete_model()
    return json.loads(answer)


def deploy_with_sdk_v3(name: str, image_uri: str, body: bytes) -> dict:
    from sagemaker.core.helper.session_helper import get_execution_role
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

    model = Model.create(model_name=name, execution_role_arn=get_execution_role(),
                         primary_container=ContainerDefinition(image=image_uri, model_data_url=model_data,
                                                               environment=script_environment(image_uri)))
    config = EndpointConfig.create(endpoint_config_name=name, production_variants=[ProductionVariant(
        variant_name="AllTraffic", model_name=name, initial_instance_count=1, instance_type=instance_type)])
    endpoint = Endpoint.create(endpoint_name=name, endpoint_config_name=name)
    endpoint.wait_for_status("InService")
    answer = endpoint.invoke(body=body, content_type="image/png", accept="application/json")
    endpoint.delete()
    config.delete()
    model.delete()
    return json.loads(answer.body.read())


sdk = sdk_generation()
results["sdk"] = sdk
if sdk in (2, 3):
    if backend == "local":
        catkit.use_local(time_scale=time_scale)  # the backend this notebook already uses
    sdk_endpoint = run_name(f"cat-hat-sdk{sdk}", run_id)
    deploy_with_sdk = deploy_with_sdk_v2 if sdk == 2 else deploy_with_sdk_v3
    value = deploy_with_sdk(sdk_endpoint, catkit.deploy.default_image_uri(region), serialize(hat_cat)[0])
    print(f"SageMaker Python SDK v{sdk}: {headline(value)} (hat cat), endpoint {sdk_endpoint} deleted")
    results["sdk_prediction"] = value
else:
    print('No SageMaker Python SDK here: pip install "catkit[sdk2]" (v2) or "catkit[sdk3]" (v3) to run this cell.')

# %% [markdown]
# ## Tear down
#
# An idle endpoint bills every second it exists. With `teardown = True` (the default) this deletes
# what the notebook created: endpoint, endpoint configuration and model. Set it to `False` to keep
# the endpoint for your own experiments — and delete it yourself when you are done.

# %%
if teardown:
    deleted = delete_endpoint(session, endpoint_name, wait=True, poll=0.5)
    print("deleted:", ", ".join(deleted))
else:
    deleted = []
    print(f"kept {endpoint_name} running: delete_endpoint(session, endpoint_name) removes it")

# %% [markdown] tags=["run-record"]
# ---
# *Run record* — not part of the tutorial: the numbers `make demo` summarises and the notebook
# tests check, written to `out_dir/results.json`.

# %% tags=["run-record"]
results.record(
    archive_bytes=archive.stat().st_size, train_accuracy=metadata["accuracy"],
    endpoint_status=endpoint.status, instances=endpoint.current,
    hat_line=headline(first.value), plain_line=headline(second.value),
    headline=f"{headline(first.value)} (hat cat) | {headline(second.value)} (plain cat)",
    hat_prediction=first.value, plain_prediction=second.value,
    batch_accuracy=accuracy, batch_latency_ms_p50=float(frame["latency_ms"].median()),
    ha_warning=bool(caught), deleted=deleted,
)
