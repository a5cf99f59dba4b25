"""Helpers for the multi-model endpoint tests: model archive builders, boto3 deploy helpers, a look
into the instances' model servers, metric sums. The ``mme`` fixture (conftest.py) starts the backend.

Budgets for the backend of this folder (environment of the backend process): memory 30 MiB per
instance (test models hold 8 MiB of ballast, so three fit and a fourth evicts one), disk 2 MiB
(the ``blob_kb`` models fill it), requests wait at most 4 s for a load (ModelNotReadyException).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from catkit.local.fleet.model_cache import opaque_model_id

BUCKET = "mme-tests"
MEMORY_BUDGET_MB = 30
DISK_BUDGET_MB = 2
LOAD_WAIT_SECONDS = 3
TIME_SCALE = 600

INFERENCE = b'''
import json
import os
import time


def model_fn(model_dir):
    with open(os.path.join(model_dir, "info.json")) as f:
        info = json.load(f)
    if info.get("load_sleep"):
        time.sleep(info["load_sleep"])
    if info.get("fail"):
        raise RuntimeError("broken model " + info["name"])
    ballast = bytearray(b"\\x01") * (info.get("mb", 0) * 1024 * 1024)  # resident memory
    return {"name": info["name"], "version": info.get("version", 1), "ballast": ballast}


def transform_fn(model, body, content_type, accept):
    req = json.loads(body or b"{}")
    if req.get("sleep"):
        time.sleep(req["sleep"])
    return json.dumps({"model": model["name"], "version": model["version"]}), "application/json"
'''


def model_archive(name: str, *, mb: int = 8, version: int = 1, fail: bool = False, load_sleep: float = 0,
                  blob_kb: int = 0, extra: dict[str, bytes] | None = None) -> bytes:
    """A model.tar.gz whose model_fn holds ``mb`` MiB and answers {"model": name, "version": v}."""
    info = {"name": name, "mb": mb, "version": version, "fail": fail, "load_sleep": load_sleep}
    members = {"code/inference.py": INFERENCE, "info.json": json.dumps(info).encode()}
    if blob_kb:
        members["blob.bin"] = os.urandom(blob_kb * 1024)  # incompressible: takes real disk
    members.update(extra or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for arcname, data in members.items():
            info_ = tarfile.TarInfo(arcname)
            info_.size = len(data)
            tar.addfile(info_, io.BytesIO(data))
    return buf.getvalue()


class Mme:
    """Helpers around one backend: deploy endpoints, put models, invoke, read metrics."""

    def __init__(self, backend: Any) -> None:
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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = self.sm.describe_endpoint(EndpointName=name)["EndpointStatus"]
            if status == "InService":
                return
            assert status == "Creating", self.sm.describe_endpoint(EndpointName=name)
            time.sleep(0.1)
        raise AssertionError(f"endpoint {name} not InService after 60 s")

    def invoke(self, endpoint: str, target: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": json.dumps(body or {}),
                                  "ContentType": "application/json"}
        if target is not None:
            kwargs["TargetModel"] = target
        return json.loads(self.rt.invoke_endpoint(**kwargs)["Body"].read())

    def instance_urls(self, endpoint: str) -> list[str]:
        root = Path(self.backend.home) / "instances" / endpoint
        urls = []
        for ready in sorted(root.glob("i-*/ready.json")):
            urls.append(f"http://127.0.0.1:{json.loads(ready.read_text())['port']}")
        return urls

    def loaded(self, endpoint: str) -> list[set[str]]:
        """Per instance, the container's loaded model names (opaque ids)."""
        out = []
        for url in self.instance_urls(endpoint):
            with urllib.request.urlopen(f"{url}/models?limit=1000", timeout=5) as resp:
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
