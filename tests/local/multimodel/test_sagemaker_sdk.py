"""The SageMaker Python SDK's MultiDataModel and the seed's "copy a model.tar.gz under the prefix"
workflow, unchanged, against the local backend (``catkit.local.use_local()`` in a subprocess).

``MultiDataModel.deploy`` sleeps 30 s before its first DescribeEndpoint poll (sdk-facts), so this is
the one slow SDK test of the area.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from catkit.local.sdk import sdk_generation
from catkit.testing import multi_model_archive

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sdk,
    pytest.mark.skipif(sdk_generation() != 2, reason="v2's MultiDataModel/Predictor (catkit[sdk2]); v3 has none"),
]

ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_PROFILE")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import catkit.local
    catkit.local.use_local()

    import boto3
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.multidatamodel import MultiDataModel
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    session = sagemaker.Session()
    prefix = f"s3://{session.default_bucket()}/mme-sdk/models/"
    mdm = MultiDataModel(name="sdk-mme", model_data_prefix=prefix, image_uri="local/mme:1",
                         role=sagemaker.get_execution_role(), sagemaker_session=session,
                         predictor_cls=Predictor)
    predictor = mdm.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    predictor.serializer, predictor.deserializer = JSONSerializer(), JSONDeserializer()

    mdm.add_model(sys.argv[1], "cat-a.tar.gz")                   # local file -> PutObject
    mdm.add_model(prefix + "cat-a.tar.gz", "copies/cat-b.tar.gz")  # S3 -> CopyObject
    # The seed's workflow: copy another archive under the prefix with plain boto3.
    bucket, key = prefix[5:].split("/", 1)
    boto3.client("s3").upload_file(sys.argv[2], bucket, key + "seed/cat-c.tar.gz")

    out = {
        "models": sorted(mdm.list_models()),
        "a": predictor.predict({"x": 1}, target_model="cat-a.tar.gz"),
        "b": predictor.predict({"x": 1}, target_model="copies/cat-b.tar.gz"),
        "c": predictor.predict({"x": 1}, target_model="seed/cat-c.tar.gz"),
    }
    predictor.delete_endpoint()
    print()
    print("RESULT " + json.dumps(out))
    """
)


def test_multidatamodel_deploy_add_list_predict(module_backend_factory, tmp_path) -> None:
    backend = module_backend_factory(time_scale=600)
    (tmp_path / "a.tar.gz").write_bytes(multi_model_archive("cat-a", mb=1))
    (tmp_path / "c.tar.gz").write_bytes(multi_model_archive("cat-c", mb=1))
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["CATKIT_HOME"] = str(backend.home)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "a.tar.gz"), str(tmp_path / "c.tar.gz")],
        env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])  # deploy prints progress marks first
    assert out["models"] == ["cat-a.tar.gz", "copies/cat-b.tar.gz", "seed/cat-c.tar.gz"]
    assert out["a"] == {"model": "cat-a", "version": 1}
    assert out["b"] == {"model": "cat-a", "version": 1}
    assert out["c"] == {"model": "cat-c", "version": 1}
