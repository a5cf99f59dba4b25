"""Endpoints served as AWS's framework containers would serve them, chosen from the image URI.

Each case pins one behaviour of AWS's own serving code (see catkit/serving/frameworks.py for the
file each rule follows): the scikit-learn container's need for SAGEMAKER_PROGRAM and its missing
default model_fn, the toolkits' default Accept and CSV shapes, the XGBoost built-in algorithm on a
raw ``xgboost-model`` archive, frameworks that are not installed, pipelines (Serial and Direct) and
workers per instance type.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle

import numpy as np
import pytest

from catkit.local.errors import AwsError
from catkit.testing import model_archive, tar_gz

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
HF = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-inference:2.1.0-transformers4.37.0-cpu-py310"
CUSTOM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-algo:1"
SCRIPT_ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}

LINEAR = "import joblib, os\n\ndef model_fn(model_dir):\n    return joblib.load(os.path.join(model_dir, 'model.joblib'))\n"


def _linear_joblib() -> bytes:
    import joblib
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([0.0, 1.0, 2.0]))
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue()


async def _endpoint(h, name, image, url, env=None, instance_type="ml.m5.large"):
    container = {"Image": image, "ModelDataUrl": url, **({"Environment": env} if env else {})}
    await h.sm("CreateModel", ModelName=f"{name}-m", PrimaryContainer=container,
               ExecutionRoleArn="arn:aws:iam::123456789012:role/R")
    await h.sm("CreateEndpointConfig", EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": 1,
        "InstanceType": instance_type}])
    await h.sm("CreateEndpoint", EndpointName=name, EndpointConfigName=f"{name}-c")
    return await h.wait(name, ("InService", "Failed"))


def test_sklearn_container_rules(h):
    archive = model_archive(LINEAR, {"model.joblib": _linear_joblib()})
    url = h.backend.s3.put("models", "sk/model.tar.gz", archive)
    no_model_fn = h.backend.s3.put("models", "sk/bare.tar.gz", model_archive("X = 1\n", {"model.joblib": _linear_joblib()}))

    async def body(h):
        # No SAGEMAKER_PROGRAM: AWS's scikit-learn container imports nothing and fails; the reason says so.
        d = await _endpoint(h, "sk-noprog", SKLEARN, url)
        assert d["EndpointStatus"] == "Failed"
        assert "model failed to load" in d["FailureReason"] and "SAGEMAKER_PROGRAM" in d["FailureReason"]
        assert "CloudWatch group /aws/sagemaker/Endpoints/sk-noprog, stream AllTraffic/i-" in d["FailureReason"]
        # A script without model_fn: the container has no default loader (no silent model.joblib).
        d = await _endpoint(h, "sk-nofn", SKLEARN, no_model_fn, SCRIPT_ENV)
        assert d["EndpointStatus"] == "Failed" and "Please provide a model_fn implementation" in d["FailureReason"]
        d = await _endpoint(h, "sk", SKLEARN, url, SCRIPT_ENV)
        assert d["EndpointStatus"] == "InService", d
        # CSV with no Accept answers JSON (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT's default).
        out = await h.invoke("sk", b"1,0\n0,1", ContentType="text/csv")
        assert out["ContentType"] == "application/json"
        assert np.allclose(json.loads(out["Body"]), [1.0, 2.0])
        out = await h.invoke("sk", b"1,0\n0,1", ContentType="text/csv", Accept="text/csv")
        assert out["ContentType"] == "text/csv"
        assert np.allclose([float(x) for x in out["Body"].decode().split("\n") if x], [1.0, 2.0])  # one per line
        # One CSV row is 1-D in sagemaker-containers' decoder, so LinearRegression.predict refuses it.
        with pytest.raises(AwsError) as e:
            await h.invoke("sk", b"1,0", ContentType="text/csv")
        assert e.value.fields["OriginalStatusCode"] == 500 and "2D array" in e.value.fields["OriginalMessage"]
        # The default input_fn cannot read this type: 415 with the toolkit's JSON error; bad Accept: 406.
        with pytest.raises(AwsError) as e:
            await h.invoke("sk", b"x", ContentType="application/x-foo")
        assert e.value.fields["OriginalStatusCode"] == 415
        err = json.loads(e.value.fields["OriginalMessage"])
        assert err["error"] == "UnsupportedFormatError"
        assert err["error-message"].startswith("Content type application/x-foo is not supported by this framework.")
        with pytest.raises(AwsError) as e:
            await h.invoke("sk", b"[[1, 0]]", ContentType="application/json", Accept="application/json, text/csv")
        assert e.value.fields["OriginalStatusCode"] == 406
        dims = {"EndpointName": "sk", "VariantName": "AllTraffic"}
        assert h.backend.metrics.values("Invocation4XXErrors", **dims)[-2:] == [1.0, 1.0]

    h.run(body)


@pytest.mark.skipif(importlib.util.find_spec("xgboost") is None, reason="needs catkit[xgboost]")
def test_xgboost_algorithm_serves_a_raw_training_archive(h):
    import xgboost as xgb

    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]] * 5)
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=x[:, 0] * 3), num_boost_round=5)
    url = h.backend.s3.put("models", "xgb/model.tar.gz", tar_gz({"xgboost-model": pickle.dumps(booster)}))

    async def body(h):
        d = await _endpoint(h, "xgb", XGBOOST, url)
        assert d["EndpointStatus"] == "InService", d
        out = await h.invoke("xgb", b"1,0\n0,1", ContentType="text/csv")  # default Accept: text/csv
        assert out["ContentType"] == "text/csv"
        values = [float(v) for v in out["Body"].decode().split()]
        assert values[0] > values[1]
        out = await h.invoke("xgb", b"1,0", ContentType="text/csv", Accept="application/json")
        assert list(json.loads(out["Body"])) == ["predictions"] and "score" in json.loads(out["Body"])["predictions"][0]
        out = await h.invoke("xgb", b"1:1 2:0", ContentType="text/libsvm", Accept="text/csv")
        assert len(out["Body"].decode().split()) == 1
        with pytest.raises(AwsError) as e:
            await h.invoke("xgb", b"{}", ContentType="application/json")
        assert e.value.fields["OriginalStatusCode"] == 415
        assert "is not an accepted ContentType" in e.value.fields["OriginalMessage"]
        with pytest.raises(AwsError) as e:
            await h.invoke("xgb", b"1,0", ContentType="text/csv", Accept="image/png")
        assert e.value.fields["OriginalStatusCode"] == 406

    h.run(body)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is not None, reason="transformers is installed")
def test_missing_framework_fails_create_endpoint_at_once(h):
    url = h.backend.s3.put("models", "hf/model.tar.gz", tar_gz({"config.json": b"{}"}))

    async def body(h):
        d = await _endpoint(h, "hf", HF, url)
        assert d["EndpointStatus"] == "Failed"
        assert "transformers" in d["FailureReason"] and "catkit[huggingface]" in d["FailureReason"]
        assert h.manager.variant_instances("hf", "AllTraffic") == []

    h.run(body)


PRE = ("def model_fn(model_dir):\n    return 2\n\n"
       "def predict_fn(data, model):\n    return data * model\n")
POST = ("def model_fn(model_dir):\n    return 10\n\n"
        "def predict_fn(data, model):\n    if data.size and data.flat[0] < 0:\n        raise ValueError('negative')\n"
        "    return data + model\n")


def test_pipelines_serial_and_direct(h):
    pre = h.backend.s3.put("models", "p/pre.tar.gz", model_archive(PRE))
    post = h.backend.s3.put("models", "p/post.tar.gz", model_archive(POST))
    containers = [
        {"ContainerHostname": "pre", "Image": CUSTOM, "ModelDataUrl": pre,
         "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}},
        {"ContainerHostname": "post", "Image": CUSTOM, "ModelDataUrl": post},
    ]

    async def body(h):
        for mode in ("Serial", "Direct"):
            await h.sm("CreateModel", ModelName=f"{mode}-m", Containers=containers,
                       InferenceExecutionConfig={"Mode": mode}, ExecutionRoleArn="arn:aws:iam::123456789012:role/R")
            await h.sm("CreateEndpointConfig", EndpointConfigName=f"{mode}-c", ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": f"{mode}-m", "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large"}])
            await h.sm("CreateEndpoint", EndpointName=mode.lower(), EndpointConfigName=f"{mode}-c")
        assert (await h.wait("serial", ("InService", "Failed")))["EndpointStatus"] == "InService"
        assert (await h.wait("direct", ("InService", "Failed")))["EndpointStatus"] == "InService"
        d = await h.sm("DescribeEndpoint", EndpointName="serial")
        assert [i["SpecifiedImage"] for i in d["ProductionVariants"][0]["DeployedImages"]] == [CUSTOM, CUSTOM]
        # Serial: JSON -> pre (x2, answers CSV: its default Accept) -> post (+10, answers the caller's JSON).
        out = await h.invoke("serial", b"[1, 2, 3]", ContentType="application/json")
        assert out["ContentType"] == "application/json" and json.loads(out["Body"]) == [12.0, 14.0, 16.0]
        with pytest.raises(AwsError) as e:  # the failing container is named
            await h.invoke("serial", b"[-1]", ContentType="application/json")
        assert e.value.message.startswith("Received server error (500) from post with message")
        # Direct: only the named container runs.
        out = await h.invoke("direct", b"1,2", ContentType="text/csv", TargetContainerHostname="post")
        assert json.loads(out["Body"]) == [11.0, 12.0]
        for target, word in ((None, "Direct mode"), ("nope", "was not found")):
            with pytest.raises(AwsError) as e:
                await h.invoke("direct", b"1", ContentType="text/csv",
                               **({"TargetContainerHostname": target} if target else {}))
            assert e.value.code == "ValidationError" and word in e.value.message
        with pytest.raises(AwsError) as e:
            await h.invoke("serial", b"1", ContentType="text/csv", TargetContainerHostname="pre")
        assert e.value.code == "ValidationError"

    h.run(body)


def test_workers_follow_the_instance_type_and_the_environment(h):
    url = "s3://models/echo/model.tar.gz"

    async def body(h):
        assert (await _endpoint(h, "big", CUSTOM, url, instance_type="ml.g5.2xlarge"))["EndpointStatus"] == "InService"
        assert (await _endpoint(h, "few", CUSTOM, url, {"SAGEMAKER_MODEL_SERVER_WORKERS": "3"},
                                instance_type="ml.g5.2xlarge"))["EndpointStatus"] == "InService"
        for name, workers in (("big", 8), ("few", 3)):
            inst = h.manager.variant_instances(name, "AllTraffic")[0]
            assert f"--workers {workers}" in inst.log_path.read_text()
        d = await _endpoint(h, "bad", CUSTOM, url, {"SAGEMAKER_MODEL_SERVER_WORKERS": "many"})
        assert d["EndpointStatus"] == "Failed" and "SAGEMAKER_MODEL_SERVER_WORKERS" in d["FailureReason"]

    h.run(body)
