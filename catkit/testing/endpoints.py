"""Deploying test models on a backend with plain boto3 calls, the way users' code does.

Owns the steps tests and benchmarks repeat to get an endpoint serving: :func:`upload_model` (an
archive into a bucket), :func:`create_model`, :func:`deploy_endpoint` (CreateModel ``<name>-m`` +
CreateEndpointConfig ``<name>-c`` + CreateEndpoint ``<name>``, waiting unless told not to) and
:func:`wait_for_endpoint` (poll DescribeEndpoint until a status). They take a boto3 ``sagemaker``
client, so they work against a :class:`~catkit.testing.backend.LocalBackend` and AWS alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from catkit.serving.containers import script_environment
from catkit.testing.archives import echo_archive
from catkit.testing.backend import ACCOUNT_ID, LocalBackend

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerExecutionRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def upload_model(backend: LocalBackend, key: str = "echo/model.tar.gz", data: bytes | None = None,
                 bucket: str = "models") -> str:
    """Put ``data`` (the echo model by default) at ``s3://bucket/key``, creating the bucket if
    needed; returns the S3 URL."""
    s3 = backend.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=echo_archive() if data is None else data)
    return f"s3://{bucket}/{key}"


def create_model(sm: Any, name: str, url: str, *, mode: str | None = None,
                 env: Mapping[str, str] | None = None, image: str = IMAGE) -> None:
    """CreateModel ``name`` serving ``url`` (``mode="MultiModel"`` for a prefix). A single-model
    framework image gets the script environment the SageMaker SDK would set
    (:func:`catkit.serving.containers.script_environment`); ``env`` adds to it."""
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": url}
    if mode:
        container["Mode"] = mode
    environment = {} if mode == "MultiModel" else script_environment(image)
    environment.update(env or {})
    if environment:
        container["Environment"] = environment
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)


def deploy_endpoint(sm: Any, name: str, url: str, *, count: int = 1, instance_type: str = "ml.m5.large",
                    mode: str | None = None, tags: Mapping[str, str] | None = None, wait: bool = True,
                    timeout: float = 90.0) -> dict[str, Any] | None:
    """CreateModel + CreateEndpointConfig + CreateEndpoint named ``name`` (-m/-c suffixes); with
    ``wait``, returns DescribeEndpoint once InService or Failed."""
    create_model(sm, f"{name}-m", url, mode=mode)
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": count,
        "InstanceType": instance_type}])
    extra = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c", **extra)
    if not wait:
        return None
    return wait_for_endpoint(sm, name, ("InService", "Failed"), timeout=timeout)


def wait_for_endpoint(sm: Any, name: str, statuses: Iterable[str] = ("InService",),
                      timeout: float = 90.0) -> dict[str, Any]:
    """Poll DescribeEndpoint until its status is one of ``statuses``; AssertionError after ``timeout`` s."""
    wanted = tuple(statuses)
    deadline = time.monotonic() + timeout
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] in wanted:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {name} stuck in {d['EndpointStatus']} (wanted {wanted}): {d}")
        time.sleep(0.1)
