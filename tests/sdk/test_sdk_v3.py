"""SageMaker Python SDK v3 against the local backend through ``catkit.use_local()``, unchanged.

What AWS's own v3 examples do (``v3-examples/inference-examples`` of aws/sagemaker-python-sdk, see
``shared/sdk-facts.md``): the ``sagemaker.core`` resources ``Model.create`` ->
``EndpointConfig.create`` -> ``Endpoint.create`` -> ``wait_for_status("InService")`` ->
``invoke`` -> ``delete``, with ``get_execution_role`` and ``Session().default_bucket()`` from
``sagemaker.core.helper.session_helper``; and ``ModelBuilder`` deploying a model archive already in
S3 with a given image (its pass-through build). Each runs in a fresh interpreter, as a notebook
would, and checks that no SDK telemetry request left the machine.
"""

from __future__ import annotations

import json
import os
import textwrap
from importlib import metadata

import pytest

from catkit.local.sdk import sdk_generation

pytestmark = [
    pytest.mark.sdk,
    pytest.mark.skipif(sdk_generation() != 3, reason="needs SageMaker Python SDK v3 (CI: `make test-sdk3`)"),
]

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "sagemaker-us-east-1-123456789012"

# Records every plain-HTTP request (the SDK's telemetry uses requests.get) and refuses it.
PRELUDE = textwrap.dedent(
    """
    import json, sys
    import requests
    sent = []
    def _refuse(url, *args, **kwargs):
        sent.append(url)
        raise requests.exceptions.ConnectionError("no network in tests")
    requests.get = _refuse
    import catkit
    url = catkit.use_local()
    assert "sagemaker" not in sys.modules   # use_local does not import the SDK
    import boto3
    from catkit.testing import echo_archive, wait_until

    def endpoints_left():  # DeleteEndpoint returns at once; the endpoint is Deleting, then gone
        sm = boto3.client("sagemaker")
        wait_until(lambda: not sm.list_endpoints()["Endpoints"], timeout=60, interval=0.2,
                   what="the endpoint to go after DeleteEndpoint")
        return len(sm.list_endpoints()["Endpoints"])
    """
)

RESOURCE_FLOW = PRELUDE + textwrap.dedent(
    """
    from sagemaker.core.helper.session_helper import Session, get_execution_role
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

    session = Session()
    role = get_execution_role()
    bucket = session.default_bucket()
    boto3.client("s3").put_object(Bucket=bucket, Key="v3/model.tar.gz", Body=echo_archive())
    model = Model.create(
        model_name="v3-model",
        primary_container=ContainerDefinition(image="local/echo:1", model_data_url=f"s3://{bucket}/v3/model.tar.gz",
                                              environment={"LOG_LEVEL": "info"}),
        execution_role_arn=role,
    )
    config = EndpointConfig.create(
        endpoint_config_name="v3-config",
        production_variants=[ProductionVariant(variant_name="AllTraffic", model_name="v3-model",
                                               initial_instance_count=1, instance_type="ml.m5.large")],
    )
    endpoint = Endpoint.create(endpoint_name="v3-endpoint", endpoint_config_name="v3-config")
    endpoint.wait_for_status("InService")
    answer = endpoint.invoke(body=b'{"cat": "hat"}', content_type="application/json", accept="application/json")
    out = {"url": url, "role": role, "bucket": bucket, "model_arn": model.model_arn,
           "status": endpoint.endpoint_status, "body": answer.body.read().decode(),
           "variant": answer.invoked_production_variant}
    endpoint.delete()
    config.delete()
    model.delete()
    sm = boto3.client("sagemaker")
    out["left"] = [endpoints_left(), len(sm.list_endpoint_configs()["EndpointConfigs"]), len(sm.list_models()["Models"])]
    out["sent"] = sent
    print("RESULT " + json.dumps(out))
    """
)

MODEL_BUILDER = PRELUDE + textwrap.dedent(
    """
    from sagemaker.core.helper.session_helper import Session, get_execution_role
    from sagemaker.serve.model_builder import ModelBuilder

    session = Session()
    bucket = session.default_bucket()
    boto3.client("s3").put_object(Bucket=bucket, Key="mb/model.tar.gz", Body=echo_archive())
    builder = ModelBuilder(
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/my-custom-algo:latest",
        s3_model_data_url=f"s3://{bucket}/mb/model.tar.gz",
        role_arn=get_execution_role(),
        instance_type="ml.m5.large",
        sagemaker_session=session,
    )
    model = builder.build(model_name="mb-model")
    endpoint = builder.deploy(endpoint_name="mb-endpoint", initial_instance_count=1)
    answer = endpoint.invoke(body=b'{"hat": true}', content_type="application/json", accept="application/json")
    out = {"model": model.model_name, "status": endpoint.endpoint_status, "body": answer.body.read().decode()}
    endpoint.delete()
    out["endpoints_left"] = endpoints_left()
    out["sent"] = sent
    print("RESULT " + json.dumps(out))
    """
)


def _result(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.split("RESULT ", 1)[1])


@pytest.mark.slow
def test_resource_flow_deploys_invokes_and_deletes(run_script, sdk_backend) -> None:
    out = _result(run_script(RESOURCE_FLOW))
    assert out["url"] == sdk_backend.url
    assert out["role"] == ROLE
    assert out["bucket"] == BUCKET
    assert out["model_arn"] == "arn:aws:sagemaker:us-east-1:123456789012:model/v3-model"
    assert out["status"] == "InService"
    assert json.loads(out["body"]) == {"cat": "hat"}  # the echo model
    assert out["variant"] == "AllTraffic"
    assert out["left"] == [0, 0, 0]
    assert out["sent"] == []  # telemetry stayed on the machine


@pytest.mark.slow
def test_model_builder_deploys_a_model_archive(run_script) -> None:
    # ModelBuilder.deploy polls every 30 s (EP_LOGGER_POLL) and streams the endpoint's CloudWatch
    # Logs meanwhile: one poll, ~30 s, even though the endpoint is ready in a second.
    out = _result(run_script(MODEL_BUILDER, timeout=240))
    assert out["model"] == "mb-model"
    assert out["status"] == "InService"
    assert json.loads(out["body"]) == {"hat": True}
    assert out["endpoints_left"] == 0
    assert out["sent"] == []


ALREADY_IMPORTED = textwrap.dedent(
    """
    import json
    import sagemaker.core.common_utils as cu
    import sagemaker.core.helper.session_helper as sh
    import sagemaker.core.telemetry.telemetry_logging as tl
    from catkit.local import sdk
    before = (sh.sts_regional_endpoint("us-east-1"), cu.sts_regional_endpoint("us-east-1"))
    url = sdk.use_local()
    after = (sh.sts_regional_endpoint("us-east-1"), cu.sts_regional_endpoint("us-east-1"))
    role = sh.get_execution_role()
    silent = tl._requests_helper("https://example.invalid/telemetry", timeout=1) is None
    sdk.unpatch_sagemaker_sdk()
    restored = (sh.sts_regional_endpoint("us-east-1"), tl._requests_helper.__module__)
    print("RESULT " + json.dumps({"url": url, "before": before, "after": after, "role": role,
                                  "silent": silent, "restored": restored}))
    """
)


def test_sdk_imported_before_use_local_is_patched_and_unpatched(run_script) -> None:
    out = _result(run_script(ALREADY_IMPORTED))
    assert out["before"] == ["https://sts.us-east-1.amazonaws.com"] * 2
    assert out["after"] == [out["url"]] * 2
    assert out["role"] == ROLE
    assert out["silent"] is True
    assert out["restored"] == ["https://sts.us-east-1.amazonaws.com", "sagemaker.core.telemetry.telemetry_logging"]


@pytest.mark.skipif(os.environ.get("CATKIT_SDK_PREINSTALLED") != "3",
                    reason="only in the environment where SDK v3 was installed before catkit (make test-sdk3)")
def test_installing_catkit_kept_the_preinstalled_sdk_v3() -> None:
    """`make test-sdk3` installs sagemaker>=3 first, then catkit (no SDK extra), as in a Studio kernel."""
    assert int(metadata.version("sagemaker").split(".")[0]) == 3
    assert int(metadata.version("sagemaker-core").split(".")[0]) >= 2
    assert not [r for r in metadata.requires("catkit") or [] if r.startswith("sagemaker") and "extra ==" not in r]

