"""Canned AWS responses (botocore-valid) shared by the helper tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def endpoint_arn(name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{name.lower()}"


def describe_endpoint(
    name: str,
    status: str = "InService",
    *,
    config: str | None = None,
    current: int = 2,
    desired: int = 2,
    variant: str = "AllTraffic",
    failure: str | None = None,
    created: datetime = T0,
) -> dict[str, Any]:
    resp: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": endpoint_arn(name),
        "EndpointConfigName": config or name,
        "EndpointStatus": status,
        "CreationTime": created,
        "LastModifiedTime": created,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
                "CurrentInstanceCount": current,
                "DesiredInstanceCount": desired,
            }
        ],
    }
    if failure:
        resp["FailureReason"] = failure
    return resp


def describe_endpoint_config(name: str, model: str, *, count: int = 2, itype: str = "ml.m5.xlarge") -> dict:
    return {
        "EndpointConfigName": name,
        "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/{name.lower()}",
        "CreationTime": T0,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": count,
                "InstanceType": itype,
                "InitialVariantWeight": 1.0,
            }
        ],
    }


def describe_model(name: str, url: str, *, mode: str = "SingleModel") -> dict:
    return {
        "ModelName": name,
        "ModelArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/{name.lower()}",
        "CreationTime": T0,
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole",
        "PrimaryContainer": {"Image": "img:1", "ModelDataUrl": url, "Mode": mode},
    }


def not_found_error(name: str) -> dict:
    return {
        "service_error_code": "ValidationException",
        "service_message": f'Could not find endpoint "{endpoint_arn(name)}".',
        "http_status_code": 400,
    }
