"""Fixtures for SageMaker control-plane / endpoint-manager tests.

``fake_backend`` is a minimal stand-in for ``catkit.local.backend.Backend`` on
:class:`catkit.testing.fake_backend.FakeBackendBase` (real StateStore in a temp CATKIT_HOME), with
an in-memory async S3, a recording metric sink and a fast clock, so the endpoint manager runs real
``catkit.serving.server`` processes without the gateway. Its S3 holds the echo model
(:func:`catkit.testing.echo_archive`: behaviour chosen by the request's Content-Type - echo, slow,
fail, pid, env, unsupported) at ``s3://models/echo/model.tar.gz``; ``archive_bytes`` is that
builder, for variants (``archive_bytes({"hang": b"1"})``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from catkit.autoscaling.driver import ScalingDriver
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.clock import Clock
from catkit.local.scheduler import Scheduler
from catkit.testing import echo_archive
from catkit.testing.fake_backend import FakeBackendBase


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.objects[(bucket, key)] = data
        return f"s3://{bucket}/{key}"

    async def head_object(self, bucket: str, key: str) -> dict[str, Any] | None:
        data = self.objects.get((bucket, key))
        return None if data is None else {"ContentLength": len(data), "ETag": '"x"'}

    async def get_object(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)]


class RecordingMetrics:
    def __init__(self) -> None:
        self.records: list[tuple] = []

    def record(self, namespace, name, dimensions, value, timestamp, unit="None", storage_resolution=60):
        self.records.append((namespace, name, dict(dimensions), value, timestamp, unit, storage_resolution))

    def record_many(self, namespace, dimensions, items, timestamp):
        for name, value, unit in items:
            self.record(namespace, name, dimensions, value, timestamp, unit)

    def batch(self, namespace, dimensions, metrics):
        recording = self

        class Batch:
            def add(self, timestamp, values):
                items = [(name, value, unit) for (name, unit), value in zip(metrics, values, strict=True)]
                recording.record_many(namespace, dimensions, items, timestamp)

        return Batch()

    def values(self, name: str, **dims: str) -> list[float]:
        return [r[3] for r in self.records if r[1] == name and all(r[2].get(k) == v for k, v in dims.items())]


class FakeBackend(FakeBackendBase):
    def __init__(self, home: Path, time_scale: float = 2000.0) -> None:
        super().__init__(home)
        self.clock = Clock(time_scale)
        self.s3 = FakeS3()
        self.metrics = RecordingMetrics()
        self.instance_options = {"startup_health_real_floor": 30.0, "drain_timeout_real": 30.0}
        # The core parts the sagemaker component plugs into (no alarms, no engine targets here).
        self.scheduler = Scheduler(self.clock)
        self.driver = ScalingDriver(Engine(), MetricStore())
        self.endpoints = None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "catkit-home"
    h.mkdir()
    monkeypatch.setenv("CATKIT_HOME", str(h))
    return h


@pytest.fixture
def fake_backend(home: Path) -> FakeBackend:
    b = FakeBackend(home)
    b.s3.put("models", "echo/model.tar.gz", echo_archive())
    yield b
    b.state.close()


class Ctx:
    region = "us-east-1"
    account_id = "123456789012"
    request_id = "test"


class Harness:
    """Runs one async test body against an installed EndpointManager, always shutting it down."""

    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.ctx = Ctx()
        self.manager = None

    def run(self, body, *, background: bool = False, **manager_kwargs) -> None:
        """Install the sagemaker component; with ``background`` also resume the persisted endpoints and
        run the backend's scheduler (health checks, per-minute sampling); then run ``body``."""
        from catkit.local import components

        async def main() -> None:
            self.backend.scheduler = Scheduler(self.backend.clock)  # a fresh backend process each run
            components.install_sagemaker(self.backend, instance_options=self.backend.instance_options)
            self.manager = self.backend.endpoints
            for k, v in manager_kwargs.items():
                setattr(self.manager, k, v)
            tasks = []
            if background:
                tasks = [asyncio.ensure_future(f()) for f in self.backend.backgrounds]
                tasks.append(asyncio.ensure_future(self.backend.scheduler.run()))
            self.backend.backgrounds.clear()
            try:
                await body(self)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.manager.shutdown()

        asyncio.run(main())

    async def sm(self, op: str, **params: Any) -> dict:
        return await self.backend.services["sagemaker"].dispatch(op, params, self.ctx)

    async def invoke(self, name: str, body: bytes = b"hi", **params: Any) -> dict:
        params.setdefault("ContentType", "text/plain")
        return await self.backend.services["sagemaker-runtime"].dispatch(
            "InvokeEndpoint", {"EndpointName": name, "Body": body, **params}, self.ctx
        )

    async def model(self, name: str, url: str = "s3://models/echo/model.tar.gz", env: dict | None = None) -> None:
        container = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/echo:1", "ModelDataUrl": url}
        if env:
            container["Environment"] = env
        await self.sm("CreateModel", ModelName=name, PrimaryContainer=container,
                      ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerExecutionRole")

    async def config(self, name: str, variants: list[tuple]) -> None:
        pvs = []
        for v in variants:
            vname, model, count = v[0], v[1], v[2]
            weight = v[3] if len(v) > 3 else 1.0
            pvs.append({"VariantName": vname, "ModelName": model, "InitialInstanceCount": count,
                        "InstanceType": "ml.m5.large", "InitialVariantWeight": weight})
        await self.sm("CreateEndpointConfig", EndpointConfigName=name, ProductionVariants=pvs)

    async def versions(self, endpoint: str, versions: tuple[str, ...]) -> None:
        """A model per version (``MODEL_VERSION`` set to it in its environment) with config
        ``<version>-config``; ``endpoint`` InService on the first version's config."""
        for version in versions:
            await self.model(version, env={"MODEL_VERSION": version})
            await self.config(f"{version}-config", [("AllTraffic", version, 1)])
        await self.sm("CreateEndpoint", EndpointName=endpoint, EndpointConfigName=f"{versions[0]}-config")
        await self.wait(endpoint, ("InService",))

    async def deploy(self, name: str, count: int = 1, variants: list[tuple] | None = None,
                     url: str = "s3://models/echo/model.tar.gz") -> dict:
        """Model ``<name>-model`` (of ``url``) unless ``variants`` name models, config ``<name>-config``,
        endpoint ``name``; returns DescribeEndpoint once InService or Failed."""
        if variants is None:
            await self.model(f"{name}-model", url=url)
            variants = [("AllTraffic", f"{name}-model", count)]
        await self.config(f"{name}-config", variants)
        await self.sm("CreateEndpoint", EndpointName=name, EndpointConfigName=f"{name}-config")
        return await self.wait(name, ("InService", "Failed"))

    async def wait(self, name: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            d = await self.sm("DescribeEndpoint", EndpointName=name)
            if d["EndpointStatus"] in statuses:
                return d
            if loop.time() > end:
                raise AssertionError(f"endpoint {name} stuck in {d['EndpointStatus']}: {d}")
            await asyncio.sleep(0.05)

    async def wait_gone(self, name: str, timeout: float = 60.0) -> None:
        from catkit.local.errors import AwsError

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                await self.sm("DescribeEndpoint", EndpointName=name)
            except AwsError:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"endpoint {name} was not deleted")


@pytest.fixture
def h(fake_backend: FakeBackend) -> Harness:
    return Harness(fake_backend)


@pytest.fixture
def archive_bytes():
    return echo_archive
