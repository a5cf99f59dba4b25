"""Multi-model endpoints, helper side: the S3 prefix, add/list/remove models, invoke one by name.

A multi-model endpoint serves every ``*.tar.gz`` under its model's ``ModelDataUrl`` prefix; the
caller picks one per request with ``TargetModel`` (the key relative to the prefix). Adding a model
is an S3 upload or copy — no endpoint update. Removing it from S3 stops new loads, but instances
that already loaded it may keep serving it until they evict it (as on AWS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from catkit.deploy import DeployedEndpoint, deploy
from catkit.invoke import Prediction, invoke
from catkit.s3_urls import is_s3_url, parse_s3_url, to_s3_uri
from catkit.session import Session


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or an https S3 URL, :mod:`catkit.s3_urls`) -> ``("bucket", "key")``."""
    return parse_s3_url(uri)


def _check_name(name: str) -> str:
    parts = Path(name).parts
    if not name or name.startswith("/") or ".." in parts or "\\" in name:
        raise ValueError(f"model name {name!r} must be a relative key without '..' (e.g. 'cat-v2.tar.gz')")
    if not name.endswith(".tar.gz"):
        raise ValueError(f"model name {name!r} must end with .tar.gz (SageMaker loads tar.gz archives)")
    return name


def model_prefix(session: Session, endpoint_or_prefix: str) -> str:
    """The endpoint's multi-model S3 prefix (``s3://bucket/path/``); an S3 prefix (any form) is
    returned in its ``s3://`` form."""
    if is_s3_url(endpoint_or_prefix):
        uri = to_s3_uri(endpoint_or_prefix)
        return uri if uri.endswith("/") else uri + "/"
    sm = session.sagemaker
    desc = sm.describe_endpoint(EndpointName=endpoint_or_prefix)
    config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    for variant in config["ProductionVariants"]:
        model = sm.describe_model(ModelName=variant["ModelName"])
        containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers", [])
        for container in containers:
            if container.get("Mode") == "MultiModel":
                url = to_s3_uri(container["ModelDataUrl"])  # AWS's examples use https URLs here
                return url if url.endswith("/") else url + "/"
    raise ValueError(
        f"Endpoint {endpoint_or_prefix} is not a multi-model endpoint (no container in MultiModel mode). "
        "Deploy one with catkit.mme.deploy_multi_model(...)."
    )


def deploy_multi_model(session: Session, prefix: str | None = None, **deploy_kwargs: Any) -> DeployedEndpoint:
    """Deploy a multi-model endpoint serving ``prefix`` (default ``s3://<bucket>/catkit/mme/<name>/``).

    ``deploy_kwargs`` go to :func:`catkit.deploy.deploy` (name, instance_type, instance_count...).
    """
    from catkit.deploy import unique_name

    name = deploy_kwargs.pop("name", None) or unique_name("catkit-mme")
    prefix = prefix or f"s3://{session.bucket}/catkit/mme/{name}/"
    if not prefix.endswith("/"):
        prefix += "/"
    return deploy(session, prefix, name=name, multi_model=True, **deploy_kwargs)


def add_model(session: Session, endpoint_or_prefix: str, source: str, name: str | None = None) -> str:
    """Put a model archive under the prefix; returns the ``TargetModel`` name to invoke it with.

    ``source`` is a local ``.tar.gz`` (uploaded) or an ``s3://`` object (copied). ``name``
    defaults to the source's file name.
    """
    prefix = model_prefix(session, endpoint_or_prefix)
    bucket, key_prefix = split_s3_uri(prefix)
    target = _check_name(name or source.rstrip("/").rsplit("/", 1)[-1])
    key = key_prefix + target
    if is_s3_url(source):
        src_bucket, src_key = split_s3_uri(source)
        session.s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": src_bucket, "Key": src_key})
    else:
        from catkit.build import upload_model

        upload_model(source, session.s3, bucket, key)
    return target


def list_models(session: Session, endpoint_or_prefix: str) -> list[str]:
    """``TargetModel`` names (``.tar.gz`` keys relative to the prefix), sorted; paginated ListObjectsV2."""
    prefix = model_prefix(session, endpoint_or_prefix)
    bucket, key_prefix = split_s3_uri(prefix)
    names = []
    for page in session.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(key_prefix) :]
            if rel.endswith(".tar.gz"):
                names.append(rel)
    return sorted(names)


def remove_model(session: Session, endpoint_or_prefix: str, name: str) -> None:
    """Delete ``name`` from the prefix (``FileNotFoundError`` if it is not there)."""
    prefix = model_prefix(session, endpoint_or_prefix)
    bucket, key_prefix = split_s3_uri(prefix)
    name = _check_name(name)
    if name not in list_models(session, prefix):
        raise FileNotFoundError(f"no model {name!r} under {prefix}; present: {list_models(session, prefix)}")
    session.s3.delete_object(Bucket=bucket, Key=key_prefix + name)


def invoke_model(session: Session, endpoint: str, target_model: str, data: Any, **invoke_kwargs: Any) -> Prediction:
    """Invoke one model of a multi-model endpoint (``TargetModel=target_model``)."""
    return invoke(session, endpoint, data, target_model=_check_name(target_model), **invoke_kwargs)
