"""STS/IAM identity and the SageMaker Python SDK (v2) against the local backend via use_local()."""

from __future__ import annotations

import os

import pytest

from catkit.local import lifecycle, sdk

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
)


@pytest.fixture(scope="module")
def identity_backend(module_backend_factory):
    return module_backend_factory(components=())


def test_sts_caller_identity_is_the_execution_role(identity_backend):
    ident = identity_backend.client("sts").get_caller_identity()
    assert ident["Arn"] == "arn:aws:sts::123456789012:assumed-role/SageMakerExecutionRole/catkit"
    assert ident["Account"] == "123456789012"
    assert ident["UserId"].endswith(":catkit")
    role = identity_backend.client("iam").get_role(RoleName="SageMakerExecutionRole")["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}


def test_assume_role_passes_through_to_moto(identity_backend):
    creds = identity_backend.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole", RoleSessionName="other"
    )["Credentials"]
    assumed = identity_backend.client(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert assumed.get_caller_identity()["Arn"].endswith(":assumed-role/SageMakerExecutionRole/other")


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CATKIT_HOME", str(home))
    monkeypatch.setenv("CATKIT_LOCAL_COMPONENTS", "")
    yield home
    sdk.unpatch_sagemaker_sdk()
    lifecycle.stop(home, timeout=10)


def test_use_local_sets_environment_without_clobbering(clean_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAMINE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    url = sdk.use_local()
    assert url.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ENDPOINT_URL"] == url
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAMINE"
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.environ["AWS_REGION"] == "eu-west-1"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert sdk.use_local() == url  # idempotent


def test_sagemaker_sdk_execution_role_and_default_bucket(clean_env):
    url = sdk.use_local()
    assert os.environ["AWS_ACCESS_KEY_ID"] and os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
    import boto3
    import sagemaker
    import sagemaker.session
    import sagemaker.utils

    assert sagemaker.utils.sts_regional_endpoint("us-east-1") == url
    assert sagemaker.session.sts_regional_endpoint("us-east-1") == url
    assert sagemaker.get_execution_role() == "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
    session = sagemaker.Session()
    assert session.account_id() == "123456789012"
    bucket = session.default_bucket()
    assert bucket == "sagemaker-us-east-1-123456789012"
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert bucket in names
    sdk.unpatch_sagemaker_sdk()
    assert sagemaker.utils.sts_regional_endpoint("us-east-1") == "https://sts.us-east-1.amazonaws.com"
