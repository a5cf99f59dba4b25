"""STS/IAM identity and the SageMaker Python SDK (v2) against the local backend via use_local().

The tests that import the SDK are marked ``sdk`` and need v2 (``catkit[sdk2]``, the main CI
environment); ``tests/sdk`` has the v3 ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from catkit.local import sdk

needs_sdk_v2 = pytest.mark.skipif(sdk.sdk_generation() != 2, reason="needs SageMaker Python SDK v2 (catkit[sdk2])")
ENV_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_EC2_METADATA_DISABLED",
    "SAGEMAKER_SUPPRESS_V2_WARNING",
    "NO_PROXY",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


@pytest.fixture(scope="module")
def identity_backend(module_backend_factory):
    return module_backend_factory(components=())


@pytest.fixture
def clean_env(identity_backend, monkeypatch):
    """No AWS settings in the environment; CATKIT_HOME = the module's running backend."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CATKIT_HOME", str(identity_backend.home))
    yield identity_backend
    sdk.unpatch_sagemaker_sdk()


def test_sts_caller_identity_is_the_execution_role(identity_backend):
    ident = identity_backend.client("sts").get_caller_identity()
    assert ident["Arn"] == "arn:aws:sts::123456789012:assumed-role/SageMakerExecutionRole/catkit"
    assert ident["Account"] == "123456789012"
    assert ident["UserId"].endswith(":catkit")
    role = identity_backend.client("iam").get_role(RoleName="SageMakerExecutionRole")["Role"]
    assert role["Arn"] == EXECUTION_ROLE
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_assume_role_passes_through_to_moto(identity_backend):
    creds = identity_backend.client("sts").assume_role(RoleArn=EXECUTION_ROLE, RoleSessionName="other")[
        "Credentials"
    ]
    assumed = identity_backend.client(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert assumed.get_caller_identity()["Arn"].endswith(":assumed-role/SageMakerExecutionRole/other")


def test_use_local_sets_environment_without_clobbering(clean_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAMINE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    url = sdk.use_local()
    assert url == clean_env.url  # reuses the running backend of CATKIT_HOME
    assert os.environ["AWS_ENDPOINT_URL"] == url
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAMINE"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == "mine"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.environ["AWS_REGION"] == "eu-west-1"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] == "1"


def test_use_local_sets_dummy_credentials_and_region(clean_env):
    sdk.use_local()
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_SECRET_ACCESS_KEY"]
    assert os.environ["AWS_DEFAULT_REGION"] == os.environ["AWS_REGION"] == "us-east-1"
    import boto3

    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


@pytest.mark.sdk
@needs_sdk_v2
def test_sagemaker_sdk_already_imported_is_patched(clean_env, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    import sagemaker  # imported before use_local
    import sagemaker.session
    import sagemaker.telemetry.telemetry_logging as telemetry
    import sagemaker.utils

    url = sdk.use_local()
    assert sagemaker.utils.sts_regional_endpoint("us-east-1") == url
    assert sagemaker.session.sts_regional_endpoint("us-east-1") == url
    assert sagemaker.get_execution_role() == EXECUTION_ROLE
    assert telemetry._requests_helper("https://example.invalid/telemetry", 1) is None  # sends nothing
    sdk.unpatch_sagemaker_sdk()
    assert sagemaker.session.sts_regional_endpoint("us-east-1") == "https://sts.us-east-1.amazonaws.com"
    assert telemetry._requests_helper.__module__ == "sagemaker.telemetry.telemetry_logging"


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import catkit.local
    url = catkit.local.use_local()
    assert "sagemaker" not in sys.modules
    import boto3
    import sagemaker
    session = sagemaker.Session()
    out = {
        "url": url,
        "role": sagemaker.get_execution_role(),
        "account": session.account_id(),
        "bucket": session.default_bucket(),
        "buckets": [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]],
    }
    print(json.dumps(out))
    """
)


@pytest.mark.slow
@pytest.mark.sdk
@needs_sdk_v2
def test_sagemaker_sdk_imported_after_use_local_verbatim(clean_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["url"] == clean_env.url
    assert out["role"] == EXECUTION_ROLE
    assert out["account"] == "123456789012"
    assert out["bucket"] == "sagemaker-us-east-1-123456789012"
    assert out["bucket"] in out["buckets"]


def test_use_local_works_behind_a_proxy_setting(clean_env, monkeypatch):
    dead_proxy = "http://127.0.0.1:9"  # nothing listens there: any proxied call would fail
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.setenv("NO_PROXY", "internal.example.com")
    url = sdk.use_local()
    assert os.environ["NO_PROXY"].split(",")[0] == "internal.example.com"
    assert "127.0.0.1" in os.environ["NO_PROXY"] and "127.0.0.1" in os.environ["no_proxy"]
    import boto3

    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"
    from catkit.local import lifecycle

    assert lifecycle.health(url) is not None


def test_simulate_principal_policy_allows_everything_for_the_execution_role(identity_backend):
    """SDK v3's ModelBuilder simulates the role's policy before CreateModel; locally all is allowed."""
    iam = identity_backend.client("iam")
    out = iam.simulate_principal_policy(PolicySourceArn=EXECUTION_ROLE,
                                        ActionNames=["sagemaker:CreateModel", "s3:GetObject"])
    assert out["IsTruncated"] is False
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        ("sagemaker:CreateModel", "*", "allowed"),
        ("s3:GetObject", "*", "allowed"),
    ]
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=EXECUTION_ROLE, ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"],
    )
    results = [r for page in pages for r in page["EvaluationResults"]]
    assert [r["EvalResourceName"] for r in results] == ["arn:aws:s3:::a/*", "arn:aws:s3:::b/*"]


def test_simulate_principal_policy_of_another_principal_is_not_answered_as_allowed(identity_backend):
    iam = identity_backend.client("iam")
    with pytest.raises(iam.exceptions.ClientError) as err:
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:iam::123456789012:role/Other",
                                      ActionNames=["s3:GetObject"])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 400
