"""SageMaker Python SDK v2 on the local backend: serverless and asynchronous deploys and AsyncPredictor.

``Model.deploy(serverless_inference_config=ServerlessInferenceConfig(...))`` creates a serverless
variant; ``Model.deploy(async_inference_config=AsyncInferenceConfig())`` an asynchronous endpoint
(default output/failure paths in the session's default bucket) and returns an ``AsyncPredictor``,
whose ``predict`` uploads the input to S3, calls InvokeEndpointAsync and waits with S3's
``object_exists`` waiter for the output or the failure object. Runs in a fresh interpreter through
``catkit.use_local()``, unchanged SDK code as in a notebook.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from catkit.local.sdk import sdk_generation

pytestmark = [
    pytest.mark.sdk,
    pytest.mark.slow,
    pytest.mark.skipif(sdk_generation() != 2, reason="needs SageMaker Python SDK v2"),
]

SCRIPT = textwrap.dedent(
    """
    import json
    import catkit
    catkit.use_local()
    import boto3, sagemaker
    from sagemaker.async_inference import AsyncInferenceConfig, WaiterConfig
    from sagemaker.exceptions import AsyncInferenceModelError
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import IdentitySerializer
    from sagemaker.serverless import ServerlessInferenceConfig
    from catkit.testing import echo_archive

    session = sagemaker.Session()
    role = sagemaker.get_execution_role()
    bucket = session.default_bucket()
    boto3.client("s3").put_object(Bucket=bucket, Key="sdk/echo.tar.gz", Body=echo_archive())
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2-1"

    def model():
        return Model(image_uri=image, model_data=f"s3://{bucket}/sdk/echo.tar.gz", role=role,
                     predictor_cls=Predictor, sagemaker_session=session)

    model().deploy(serverless_inference_config=ServerlessInferenceConfig(memory_size_in_mb=2048, max_concurrency=2),
                   endpoint_name="sdk-sls", wait=False)
    predictor = model().deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-async",
                               async_inference_config=AsyncInferenceConfig(), wait=False)
    sm = boto3.client("sagemaker")
    for name in ("sdk-sls", "sdk-async"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    out = {"predictor": type(predictor).__name__}
    config = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName="sdk-sls")["EndpointConfigName"])
    out["serverless_config"] = config["ProductionVariants"][0]["ServerlessConfig"]
    out["serverless"] = Predictor("sdk-sls", session, serializer=IdentitySerializer("text/plain")).predict(b"hi sls").decode()
    fast = WaiterConfig(max_attempts=200, delay=0.2)
    predictor.serializer = IdentitySerializer("text/plain")
    out["async"] = predictor.predict(b"hi async", waiter_config=fast).decode()
    response = predictor.predict_async(data=b"later")
    out["async_later"] = response.get_result(fast).decode()
    out["output_path"] = response.output_path
    predictor.serializer = IdentitySerializer("application/x-fail")
    try:
        predictor.predict(b"bad", waiter_config=fast)
        out["failure"] = None
    except AsyncInferenceModelError as e:
        out["failure"] = str(e)
    for name in ("sdk-sls", "sdk-async"):
        sm.delete_endpoint(EndpointName=name)
    print(json.dumps(out))
    """
)


def test_serverless_and_async_deploys_and_async_predictor(run_script):
    proc = run_script(SCRIPT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["predictor"] == "AsyncPredictor"
    assert out["serverless_config"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert out["serverless"] == "hi sls"
    assert out["async"] == "hi async"
    assert out["async_later"] == "later"
    assert out["output_path"].startswith("s3://") and out["output_path"].endswith(".out")
    assert out["failure"] is not None and "boom: bad" in out["failure"]
