"""The SageMaker SDK v2's framework models deployed on the local backend, as a new user would.

``SKLearnModel``/``XGBoostModel`` upload the entry point as an S3 sourcedir.tar.gz
(``SAGEMAKER_SUBMIT_DIRECTORY=s3://...``), ``Model(entry_point=, source_dir=)`` repacks it into the
archive's ``code/`` (``PyTorchModel``, ``TensorFlowModel`` and ``HuggingFaceModel`` are in
test_framework_containers_e2e.py, run by ``make test-frameworks``); each user script changes the output visibly, so the test
fails if the container's defaults answer instead. ``deploy(wait=False)`` and a boto3 poll keep it
short (the SDK's own wait sleeps 30 s first: shared/sdk-facts.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_PROFILE")

SK_SCRIPT = """
import joblib, os
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
def predict_fn(data, model):
    return model.predict_proba(data)  # probabilities, not the default predict()
"""
XGB_SCRIPT = """
import os, xgboost as xgb
def model_fn(model_dir):
    b = xgb.Booster(); b.load_model(os.path.join(model_dir, "xgboost-model")); return b
def predict_fn(data, model):
    return model.predict(data) * 0 + 42.0
"""

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tarfile, time
    import numpy as np
    import catkit.local
    catkit.local.use_local()
    import boto3, joblib, sagemaker
    from sagemaker.model import Model
    from sagemaker.sklearn import SKLearnModel
    from sagemaker.xgboost import XGBoostModel
    from sklearn.linear_model import LogisticRegression

    work = sys.argv[1]
    session = sagemaker.Session()
    role = sagemaker.get_execution_role()
    bucket = session.default_bucket()

    def archive(name, files):
        path = os.path.join(work, name + ".tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            for f in files:
                tar.add(os.path.join(work, f), arcname=f)
        return session.upload_data(path, bucket=bucket, key_prefix="sdk/" + name)

    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    joblib.dump(LogisticRegression().fit(x, [0, 1, 1, 0]), os.path.join(work, "model.joblib"))
    deployed = {}
    sk = SKLearnModel(model_data=archive("sk", ["model.joblib"]), role=role, entry_point=os.path.join(work, "sk.py"),
                      framework_version="1.2-1", sagemaker_session=session)
    sk.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-sk", wait=False)
    deployed["sdk-sk"] = sk.env
    plain = Model(image_uri=sk.serving_image_uri(session.boto_region_name, "ml.m5.large"),
                  model_data=archive("plain", ["model.joblib"]), role=role, entry_point="sk.py",
                  source_dir=os.path.join(work, "src"), sagemaker_session=session)
    plain.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-plain", wait=False)
    if sys.argv[2] == "1":
        import xgboost as xgb
        b = xgb.train({}, xgb.DMatrix(x, label=[0, 1, 1, 0]), num_boost_round=2)
        b.save_model(os.path.join(work, "xgboost-model"))
        xm = XGBoostModel(model_data=archive("xgb", ["xgboost-model"]), role=role,
                          entry_point=os.path.join(work, "xgb.py"), framework_version="1.7-1", sagemaker_session=session)
        xm.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-xgb", wait=False)
    sm, rt = boto3.client("sagemaker"), boto3.client("sagemaker-runtime")
    names = ["sdk-sk", "sdk-plain"] + (["sdk-xgb"] if sys.argv[2] == "1" else [])
    out = {}
    deadline = time.monotonic() + 120
    for n in names:
        while True:
            d = sm.describe_endpoint(EndpointName=n)
            if d["EndpointStatus"] in ("InService", "Failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        env = sm.describe_model(ModelName=sm.describe_endpoint_config(
            EndpointConfigName=d["EndpointConfigName"])["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]
        out[n] = {"status": d["EndpointStatus"], "reason": d.get("FailureReason"),
                  "submit": env.get("Environment", {}).get("SAGEMAKER_SUBMIT_DIRECTORY")}
        if d["EndpointStatus"] == "InService":
            r = rt.invoke_endpoint(EndpointName=n, Body=b"1,1\\n0,0", ContentType="text/csv")
            out[n]["body"] = r["Body"].read().decode()
            out[n]["type"] = r["ContentType"]
        sm.delete_endpoint(EndpointName=n)
    print("RESULT " + json.dumps(out))
    """
)


def test_sdk_framework_models_run_the_users_entry_point(module_backend_factory, tmp_path) -> None:
    backend = module_backend_factory(time_scale=600)
    (tmp_path / "sk.py").write_text(SK_SCRIPT)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "sk.py").write_text(SK_SCRIPT.replace("predict_proba(data)", "predict_proba(data) * 10"))
    (tmp_path / "xgb.py").write_text(XGB_SCRIPT)
    has_xgb = importlib.util.find_spec("xgboost") is not None
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["CATKIT_HOME"] = str(backend.home)
    env["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), "1" if has_xgb else "0"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    sk = out["sdk-sk"]
    assert sk["status"] == "InService", sk
    assert sk["submit"].startswith("s3://") and sk["submit"].endswith("sourcedir.tar.gz")
    probs = json.loads(sk["body"])  # JSON: the default Accept; two probabilities per row from predict_fn
    assert sk["type"] == "application/json" and len(probs) == 2 and len(probs[0]) == 2
    plain = out["sdk-plain"]
    assert plain["status"] == "InService" and plain["submit"] == "/opt/ml/model/code", plain
    assert abs(sum(json.loads(plain["body"])[0]) - 10.0) < 1e-6  # the source_dir script (x10) ran
    if has_xgb:
        assert out["sdk-xgb"]["status"] == "InService", out["sdk-xgb"]
        assert json.loads(out["sdk-xgb"]["body"]) == [42.0, 42.0]
