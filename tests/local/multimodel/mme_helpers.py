"""Helpers for the multi-model endpoint tests: boto3 deploy helpers, a look into the instances' model
servers, metric sums. The ``mme`` fixture (conftest.py) starts the backend; the test models are
:func:`catkit.testing.multi_model_archive`.

Budgets for the backend of this folder (environment of the backend process): memory 30 MiB per
instance (test models hold 8 MiB of ballast, so three fit and a fourth evicts one), disk 2 MiB
(the ``blob_kb`` models fill it), requests wait at most 4 s for a load (ModelNotReadyException).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

from botocore.exceptions import ClientError

from catkit.local.fleet.model_cache import opaque_model_id
from catkit.testing import LocalBackend, wait_until

BUCKET = "mme-tests"
MEMORY_BUDGET_MB = 30
DISK_BUDGET_MB = 2
LOAD_WAIT_SECONDS = 3
TIME_SCALE = 600

class Mme:
    """Helpers around one backend: deploy endpoints, put models, invoke, read metrics."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.sm = backend.client("sagemaker")
        self.rt = backend.client("sagemaker-runtime")
        self.s3 = backend.client("s3")
        self.cw = backend.client("cloudwatch")
        try:
            self.s3.create_bucket(Bucket=BUCKET)
        except ClientError as e:  # a restarted backend keeps its buckets
            if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def put(self, endpoint: str, target: str, data: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=f"{endpoint}/{target}", Body=data)

    def deploy(self, name: str, *, instances: int = 1, multi_model: bool = True,
               cache: str | None = None, model_data: str | None = None) -> None:
        container: dict[str, Any] = {"Image": "local/mme:1"}
        if multi_model:
            container.update(Mode="MultiModel", ModelDataUrl=f"s3://{BUCKET}/{name}/")
            if cache:
                container["MultiModelConfig"] = {"ModelCacheSetting": cache}
        else:
            container["ModelDataUrl"] = model_data
        self.sm.create_model(ModelName=name, PrimaryContainer=container,
                             ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole")
        self.sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": instances}])
        self.sm.create_endpoint(EndpointName=name, EndpointConfigName=name)

        def in_service() -> bool:
            d = self.sm.describe_endpoint(EndpointName=name)
            assert d["EndpointStatus"] in ("Creating", "InService"), d
            return d["EndpointStatus"] == "InService"

        wait_until(in_service, 60, 0.1, what=f"endpoint {name} to be InService")

    def invoke(self, endpoint: str, target: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": json.dumps(body or {}),
                                  "ContentType": "application/json"}
        if target is not None:
            kwargs["TargetModel"] = target
        return json.loads(self.rt.invoke_endpoint(**kwargs)["Body"].read())

    def loaded(self, endpoint: str) -> list[set[str]]:
        """Per instance, the container's loaded model names (opaque ids)."""
        out = []
        for url, headers in self.backend.instance_clients(endpoint):
            request = urllib.request.Request(f"{url}/models?limit=1000", headers=headers)
            with urllib.request.urlopen(request, timeout=5) as resp:
                out.append({m["modelName"] for m in json.loads(resp.read())["models"]})
        return out

    def stats(self, endpoint: str, metric: str, namespace: str = "AWS/SageMaker") -> dict[str, float]:
        """Sum/SampleCount/Maximum of ``metric`` over all time for the endpoint's variant."""
        now = dt.datetime.now(dt.UTC)
        points = self.cw.get_metric_statistics(
            Namespace=namespace, MetricName=metric,
            Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
            StartTime=now - dt.timedelta(days=2), EndTime=now + dt.timedelta(days=60), Period=86400,
            Statistics=["Sum", "SampleCount", "Maximum"],
        )["Datapoints"]
        return {
            "Sum": sum(p["Sum"] for p in points),
            "SampleCount": sum(p["SampleCount"] for p in points),
            "Maximum": max((p["Maximum"] for p in points), default=0.0),
        }


def mid(target: str) -> str:
    return opaque_model_id(target)
