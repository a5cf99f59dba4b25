"""Endpoint kinds beside real-time instances: serverless variants and asynchronous inference.

:class:`Serverless` and :class:`AsyncInference` describe the two answers AWS gives to idle cost
besides deleting or scheduling an endpoint; :func:`production_variant` and
:meth:`AsyncInference.to_config` turn them into the CreateEndpointConfig members that
:func:`catkit.deploy.deploy` sends. The limits are AWS's, checked here so a mistake fails before
any resource is created:

* ServerlessConfig: ``MemorySizeInMB`` 1024..6144 in 1 GB steps, ``MaxConcurrency`` 1..200,
  ``ProvisionedConcurrency`` 1..200 and at most ``MaxConcurrency``; a serverless variant has no
  InstanceType / InitialInstanceCount
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html);
  payloads up to 4 MB and 60 s per invocation
  (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html);
* AsyncInferenceConfig: ``MaxConcurrentInvocationsPerInstance`` 1..1000 (botocore's model),
  payloads up to 1 GB, processing up to one hour
  (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_CONCURRENCY = 200
SERVERLESS_MAX_PAYLOAD = 4 * 1024 * 1024  # request and response (serverless-endpoints-invoke.html)
SERVERLESS_TIMEOUT_S = 60.0
ASYNC_MAX_PAYLOAD = 1024**3  # 1 GB
ASYNC_MAX_PROCESSING_S = 3600.0  # one hour
ASYNC_MAX_CONCURRENT_PER_INSTANCE = 1000


def check_serverless(memory_mb: int, max_concurrency: int, provisioned: int | None = None) -> None:
    """Raise ValueError naming AWS's limit when a ServerlessConfig would be refused."""
    if memory_mb not in MEMORY_SIZES_MB:
        raise ValueError(f"MemorySizeInMB must be one of {MEMORY_SIZES_MB} (1 GB steps), got {memory_mb}")
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"MaxConcurrency must be 1..{MAX_CONCURRENCY}, got {max_concurrency}")
    if provisioned is not None and not 1 <= provisioned <= max_concurrency:
        raise ValueError(f"ProvisionedConcurrency must be 1..MaxConcurrency ({max_concurrency}), got {provisioned}")


@dataclass(frozen=True)
class Serverless:
    """A serverless variant: memory per worker, concurrency cap, optional provisioned (warm) workers."""

    memory_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def __post_init__(self) -> None:
        check_serverless(self.memory_mb, self.max_concurrency, self.provisioned_concurrency)

    def to_config(self) -> dict[str, Any]:
        """The ProductionVariant ``ServerlessConfig``."""
        cfg: dict[str, Any] = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency:
            cfg["ProvisionedConcurrency"] = self.provisioned_concurrency
        return cfg


@dataclass(frozen=True)
class AsyncInference:
    """Asynchronous inference: results under ``output_path`` (failures under ``failure_path``),
    ``max_concurrent_per_instance`` requests per instance, optional SNS topics."""

    output_path: str
    failure_path: str | None = None
    max_concurrent_per_instance: int | None = None
    success_topic: str | None = None
    error_topic: str | None = None

    def __post_init__(self) -> None:
        n = self.max_concurrent_per_instance
        if n is not None and not 1 <= n <= ASYNC_MAX_CONCURRENT_PER_INSTANCE:
            raise ValueError(f"MaxConcurrentInvocationsPerInstance must be 1..{ASYNC_MAX_CONCURRENT_PER_INSTANCE}")
        for url in (self.output_path, self.failure_path):
            if url is not None and not url.startswith(("s3://", "https://")):
                raise ValueError(f"{url!r} is not an S3 URL (s3://bucket/prefix)")

    def to_config(self) -> dict[str, Any]:
        """The endpoint configuration's ``AsyncInferenceConfig``."""
        out: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.failure_path:
            out["S3FailurePath"] = self.failure_path
        topics = {"SuccessTopic": self.success_topic, "ErrorTopic": self.error_topic}
        if any(topics.values()):
            out["NotificationConfig"] = {k: v for k, v in topics.items() if v}
        cfg: dict[str, Any] = {"OutputConfig": out}
        if self.max_concurrent_per_instance:
            cfg["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.max_concurrent_per_instance}
        return cfg


def production_variant(variant_name: str, model_name: str, instance_type: str, instance_count: int,
                       serverless: Serverless | None = None) -> dict[str, Any]:
    """A CreateEndpointConfig ProductionVariant: instance-based, or serverless (no instance fields)."""
    pv: dict[str, Any] = {"VariantName": variant_name, "ModelName": model_name, "InitialVariantWeight": 1.0}
    if serverless is not None:
        pv["ServerlessConfig"] = serverless.to_config()
    else:
        pv["InitialInstanceCount"] = instance_count
        pv["InstanceType"] = instance_type
    return pv


__all__ = [
    "ASYNC_MAX_CONCURRENT_PER_INSTANCE",
    "ASYNC_MAX_PAYLOAD",
    "ASYNC_MAX_PROCESSING_S",
    "MAX_CONCURRENCY",
    "MEMORY_SIZES_MB",
    "SERVERLESS_MAX_PAYLOAD",
    "SERVERLESS_TIMEOUT_S",
    "AsyncInference",
    "Serverless",
    "check_serverless",
    "production_variant",
]
