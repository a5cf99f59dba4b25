"""A sample test file using catkit's pytest plugin the way a user's suite would (see the README):
one backend for the session, reset before every test that asks for ``catkit_local`` or
``catkit_clients``, unchanged boto3 code, and the SageMaker SDK."""

from __future__ import annotations

import datetime as dt

import boto3

from catkit.testing.endpoints import deploy_endpoint, upload_model


def test_deploy_and_invoke(catkit_clients):
    url = upload_model(catkit_clients.backend, bucket="plugin-models")
    d = deploy_endpoint(catkit_clients.sagemaker, "plugin-echo", url)
    assert d["EndpointStatus"] == "InService"
    out = catkit_clients.runtime.invoke_endpoint(EndpointName="plugin-echo", Body=b"meow", ContentType="text/plain")
    assert out["Body"].read() == b"meow"


def test_each_test_starts_from_an_empty_backend(catkit_clients):
    # the previous test's endpoint, model and bucket are gone
    assert catkit_clients.sagemaker.list_endpoints()["Endpoints"] == []
    assert catkit_clients.sagemaker.list_models()["Models"] == []
    assert catkit_clients.s3.list_buckets()["Buckets"] == []


def test_unchanged_boto3_code_reaches_the_backend(catkit_local):
    s3 = boto3.client("s3")  # no endpoint_url: AWS_ENDPOINT_URL points at the session's backend
    s3.create_bucket(Bucket="plain-boto3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["plain-boto3"]
    cw = boto3.client("cloudwatch")
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Hits", "Value": 3.0}])
    now = dt.datetime.now(dt.UTC)
    stats = cw.get_metric_statistics(Namespace="App", MetricName="Hits", StartTime=now - dt.timedelta(minutes=10),
                                     EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=["Sum"])
    assert [p["Sum"] for p in stats["Datapoints"]] == [3.0]


def test_catkit_session_reuses_the_backend(catkit_local):
    import catkit

    session = catkit.Session(backend="local")
    assert session.endpoint_url == catkit_local.url
    assert session.sagemaker.list_endpoints()["Endpoints"] == []


def test_sagemaker_sdk_session(catkit_sagemaker_session):
    assert catkit_sagemaker_session.account_id() == "123456789012"
    bucket = catkit_sagemaker_session.default_bucket()
    assert bucket == "sagemaker-us-east-1-123456789012"
    assert catkit_sagemaker_session.sagemaker_client.list_models()["Models"] == []
