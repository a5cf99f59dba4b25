"""Backend assembly (components, background tasks, shutdown order), StateStore, backend.s3 reads."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import textwrap
import threading
import time

import boto3
import pytest

from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService, RequestContext
from catkit.local.storage.state import StateStore

CREDS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "dummy",
    "region_name": "us-east-1",
}


# -- StateStore ----------------------------------------------------------------------------------
def test_state_store_roundtrip_and_durability(tmp_path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    store.put("endpoint", "b", {"status": "InService", "n": 2})
    store.put("endpoint", "a", {"status": "Creating"})
    store.put("endpoint", "a", {"status": "InService"})
    store.put("model", "m", {"x": [1, 2]})
    assert store.get("endpoint", "a") == {"status": "InService"}
    assert store.get("endpoint", "zzz") is None
    assert store.list("endpoint") == [("a", {"status": "InService"}), ("b", {"status": "InService", "n": 2})]
    assert store.delete("model", "m") is True and store.delete("model", "m") is False
    assert store.list("model") == []
    # durable once put returns: a second connection (another process in real life) sees it
    other = StateStore(path)
    assert other.get("endpoint", "b") == {"status": "InService", "n": 2}
    assert other._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(TypeError, match="bytes"):
        store.put("endpoint", "c", {"blob": b"\x00"})
    store.close()
    other.close()


def test_state_store_is_thread_safe(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")

    def writer(i):
        for j in range(50):
            store.put("k", f"{i}-{j}", {"i": i, "j": j})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list("k")) == 200


# -- BaseService ---------------------------------------------------------------------------------
def test_base_service_dispatch():
    class Svc(BaseService):
        service_name = "demo"

        def create_endpoint(self, params, ctx):
            return {"EndpointArn": f"arn:{ctx.region}:{params['EndpointName']}"}

        async def describe_endpoint(self, params, ctx):
            return {"EndpointName": params["EndpointName"]}

    svc = Svc()
    ctx = RequestContext(region="eu-west-1")
    assert asyncio.run(svc.dispatch("CreateEndpoint", {"EndpointName": "e"}, ctx)) == {
        "EndpointArn": "arn:eu-west-1:e"
    }
    assert asyncio.run(svc.dispatch("DescribeEndpoint", {"EndpointName": "e"}, ctx)) == {"EndpointName": "e"}
    for bad in ("DeleteEndpoint", "Dispatch", "_private", ""):
        with pytest.raises(AwsError) as info:
            asyncio.run(svc.dispatch(bad, {}, ctx))
        assert info.value.code == "UnknownOperationException" and info.value.status == 400


# -- components ----------------------------------------------------------------------------------
COMPONENT = textwrap.dedent(
    """
    import asyncio
    EVENTS = []

    class Echo:
        async def dispatch(self, operation, params, ctx):
            return {}

    def install(backend):
        backend.add_service("echo", Echo())
        async def ticker():
            EVENTS.append("background started")
            await asyncio.sleep(3600)
        backend.add_background(ticker)
        async def first():
            EVENTS.append("shutdown first-registered")
        async def second():
            EVENTS.append("shutdown second-registered")
        backend.add_shutdown(first)
        backend.add_shutdown(second)
        backend.fake_component = True
    """
)


@pytest.fixture
def component_path(tmp_path, monkeypatch):
    pkg = tmp_path / "comps"
    pkg.mkdir()
    (pkg / "catkit_test_component_ok.py").write_text(COMPONENT)
    (pkg / "catkit_test_component_broken.py").write_text("import catkit_no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(pkg))
    yield
    for name in ("catkit_test_component_ok", "catkit_test_component_broken"):
        sys.modules.pop(name, None)


def test_components_install_in_order_missing_skipped(inproc_backend_factory, component_path):
    backend = inproc_backend_factory(
        components=("catkit_test_component_missing_xyz", "catkit_test_component_ok")
    )
    module = sys.modules["catkit_test_component_ok"]
    assert backend.installed_components == ["catkit_test_component_ok"]
    assert backend.fake_component is True
    assert "echo" in backend.services
    assert "echo" in backend.info()["services"]
    deadline = time.monotonic() + 10
    while not module.EVENTS and time.monotonic() < deadline:
        time.sleep(0.01)
    assert module.EVENTS == ["background started"]


def test_shutdown_hooks_run_in_reverse_and_background_cancelled(tmp_path, component_path):
    from catkit.local.backend import Backend

    async def scenario():
        backend = Backend(tmp_path / "h", components=("catkit_test_component_ok",))
        await backend.start()
        await asyncio.sleep(0.05)
        await backend.stop()
        return backend

    backend = asyncio.run(scenario())
    events = sys.modules["catkit_test_component_ok"].EVENTS
    assert events == ["background started", "shutdown second-registered", "shutdown first-registered"]
    assert all(t.done() for t in backend._tasks) or backend._tasks == []


def test_component_with_a_missing_dependency_fails_loudly(tmp_path, component_path):
    from catkit.local.backend import Backend

    async def scenario():
        backend = Backend(tmp_path / "h", components=("catkit_test_component_broken",))
        try:
            await backend.start()
        finally:
            await backend.stop()

    with pytest.raises(ModuleNotFoundError) as info:
        asyncio.run(scenario())
    assert info.value.name == "catkit_no_such_dependency_xyz"


# -- backend.s3 ----------------------------------------------------------------------------------
def test_backend_s3_reads(inproc_backend_factory):
    backend = inproc_backend_factory()
    s3 = boto3.client("s3", endpoint_url=backend.url, **CREDS)
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="mme/a.tar.gz", Body=b"aaa", ContentType="application/gzip")
    s3.put_object(Bucket="artifacts", Key="mme/b.tar.gz", Body=b"bbbb")
    s3.put_object(Bucket="artifacts", Key="other/c", Body=b"c")

    async def reads():
        body = await backend.s3.get_object("artifacts", "mme/a.tar.gz")
        head = await backend.s3.head_object("artifacts", "mme/b.tar.gz")
        missing = await backend.s3.head_object("artifacts", "nope")
        listing = await backend.s3.list_objects("artifacts", "mme/")
        with pytest.raises(AwsError) as no_key:
            await backend.s3.get_object("artifacts", "nope")
        with pytest.raises(AwsError) as no_bucket:
            await backend.s3.list_objects("no-such-bucket", "")
        return body, head, missing, listing, no_key.value, no_bucket.value

    body, head, missing, listing, no_key, no_bucket = asyncio.run(reads())
    assert body == b"aaa"
    assert head["ContentLength"] == 4 and head["ETag"].startswith('"') and head["LastModified"].tzinfo
    assert missing is None
    assert [o["Key"] for o in listing] == ["mme/a.tar.gz", "mme/b.tar.gz"]
    assert [o["Size"] for o in listing] == [3, 4]
    assert no_key.code == "NoSuchKey" and no_key.status == 404
    assert no_bucket.code == "NoSuchBucket"
