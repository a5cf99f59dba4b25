"""The AWS names catkit speaks in: CloudWatch namespaces, the scalable dimension, resource ids.

One place for the strings SageMaker, CloudWatch and Application Auto Scaling use, so the helpers,
the scaling engine, the simulator and the local backend cannot drift apart. No imports, no I/O.
"""

from __future__ import annotations

#: CloudWatch namespace of SageMaker's invocation metrics (Invocations, ModelLatency, ...).
SAGEMAKER_METRICS = "AWS/SageMaker"
#: CloudWatch namespace of per-instance metrics (CPUUtilization, MemoryUtilization, DiskUtilization).
ENDPOINT_INSTANCE_METRICS = "/aws/sagemaker/Endpoints"
#: Application Auto Scaling's ServiceNamespace for SageMaker.
AAS_SAGEMAKER = "sagemaker"
#: The scalable dimension of an instance-based production variant.
VARIANT_INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
#: The scalable dimension of a serverless variant's provisioned concurrency.
VARIANT_PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"
#: The scalable dimension of an inference component.
INFERENCE_COMPONENT_COPY_COUNT = "sagemaker:inference-component:DesiredCopyCount"
#: The variant name SageMaker's tools use when there is one variant.
DEFAULT_VARIANT = "AllTraffic"


def variant_resource_id(endpoint: str, variant: str = DEFAULT_VARIANT) -> str:
    """Application Auto Scaling's ResourceId of a production variant."""
    return f"endpoint/{endpoint}/variant/{variant}"


def parse_variant_resource_id(resource_id: str) -> tuple[str, str] | None:
    """``endpoint/E/variant/V`` -> ``(E, V)``; None for anything else."""
    parts = resource_id.split("/")
    if len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant" and parts[1] and parts[3]:
        return parts[1], parts[3]
    return None


def variant_dimensions(endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, str]:
    """CloudWatch dimensions of a production variant's metrics."""
    return {"EndpointName": endpoint, "VariantName": variant}


def scalable_target_key(endpoint: str, variant: str = DEFAULT_VARIANT) -> dict[str, str]:
    """ServiceNamespace / ResourceId / ScalableDimension of a variant, as Application Auto Scaling
    request arguments."""
    return {
        "ServiceNamespace": AAS_SAGEMAKER,
        "ResourceId": variant_resource_id(endpoint, variant),
        "ScalableDimension": VARIANT_INSTANCE_COUNT,
    }
