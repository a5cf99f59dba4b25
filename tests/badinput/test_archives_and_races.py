"""Malicious model archives through real deploys, and concurrent create/delete of the same resource.

Archives are uploaded to the backend's S3 and deployed like any model: a single-model endpoint
must end ``Failed`` with a FailureReason naming the offending member, a multi-model endpoint must
answer the invocation with an AWS error and keep serving its other models; in every case nothing
is written outside ``CATKIT_HOME`` and the backend keeps serving.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions
import pytest

from catkit.testing import (
    LocalBackend,
    create_model,
    deploy_endpoint,
    echo_archive,
    upload_model,
    wait_for_endpoint,
)


def _tar(build: Callable[[tarfile.TarFile], None], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar, \
            tarfile.open(fileobj=io.BytesIO(echo_archive()), mode="r:gz") as good:
        for member in good.getmembers():
            tar.addfile(member, good.extractfile(member))
        build(tar)
    return buf.getvalue()


def _file(tar: tarfile.TarFile, name: str, data: bytes = b"pwned") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _special(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def _declared_bomb(tar: tarfile.TarFile) -> None:
    """A member whose header declares 64 GiB (bigger than any instance volume) - no data follows."""
    info = tarfile.TarInfo("weights-bomb.bin")
    info.size = 64 * 1024**3
    tar.fileobj.write(info.tobuf())


MARKER = f"catkit-evil-{uuid.uuid4().hex}"
OUTSIDE = Path("/tmp") / MARKER

# (id, archive builder, fragment the FailureReason must contain)
MALICIOUS: list[tuple[str, Callable[[], bytes], str]] = [
    ("dotdot traversal", lambda: _tar(lambda t: _file(t, f"../../../../../../../../tmp/{MARKER}")), MARKER),
    ("absolute path", lambda: _tar(lambda t: _file(t, str(OUTSIDE))), MARKER),
    ("symlink out", lambda: _tar(lambda t: _special(t, "code/escape", tarfile.SYMTYPE, "/tmp")), "code/escape"),
    ("write through symlink", lambda: _tar(lambda t: (_special(t, "out", tarfile.SYMTYPE, "/tmp"),
                                                      _file(t, f"out/{MARKER}"))), "out"),
    ("hardlink out", lambda: _tar(lambda t: _special(t, "passwd", tarfile.LNKTYPE, "/etc/passwd")), "passwd"),
    ("char device", lambda: _tar(lambda t: _special(t, "null", tarfile.CHRTYPE)), "null"),
    ("fifo", lambda: _tar(lambda t: _special(t, "pipe", tarfile.FIFOTYPE)), "pipe"),
    ("declared-size bomb", lambda: _tar(_declared_bomb, mode="w"), "weights-bomb.bin"),
    ("not a tar", lambda: b"\x1f\x8b" + b"garbage" * 100, "model"),
]


@pytest.fixture(scope="module")
def backend():
    b = LocalBackend(time_scale=600, env={"CATKIT_MME_DISK_BUDGET_MB": "20"})
    try:
        b.start()
        upload_model(b)
        upload_model(b, "mme/good.tar.gz", echo_archive())
        yield b
    finally:
        b.close()


@pytest.mark.parametrize(("build", "fragment"), [pytest.param(b, f, id=i) for i, b, f in MALICIOUS])
def test_malicious_archive_fails_the_endpoint_and_writes_nothing_outside(backend, build, fragment, request):
    name = "bad-" + request.node.callspec.id.replace(" ", "-").replace("_", "-")[:40]
    url = upload_model(backend, f"evil/{name}.tar.gz", build())
    sm = backend.client("sagemaker")
    d = deploy_endpoint(sm, name, url)
    assert d["EndpointStatus"] == "Failed"
    assert fragment in d["FailureReason"], d["FailureReason"]
    assert not OUTSIDE.exists()
    assert not list(Path("/tmp").glob(f"{MARKER}*"))
    rt = backend.client("sagemaker-runtime")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        rt.invoke_endpoint(EndpointName=name, Body=b"x", ContentType="text/plain")
    assert e.value.response["Error"]["Code"] == "ValidationError"
    sm.delete_endpoint(EndpointName=name)
    assert backend.healthy()


def test_malicious_archives_on_a_multi_model_endpoint(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert deploy_endpoint(sm, "mme", "s3://models/mme/", mode="MultiModel")["EndpointStatus"] == "InService"
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as tar:  # 64 MiB of zeros: ~64 KiB compressed
        info = tarfile.TarInfo("zeros.bin")
        info.size = 64 * 1024**2
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    archives = {f"{i}.tar.gz": build() for i, (_, build, _) in enumerate(MALICIOUS)}
    archives["real-bomb.tar.gz"] = bomb.getvalue()
    for key, data in archives.items():
        upload_model(backend, f"mme/{key}", data)
    for key in archives:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            rt.invoke_endpoint(EndpointName="mme", Body=b"x", ContentType="text/plain", TargetModel=key)
        code = e.value.response["Error"]["Code"]
        status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert (code, status) in {("ModelError", 424), ("ValidationError", 400)}, (key, code, status)
    assert not OUTSIDE.exists() and not list(Path("/tmp").glob(f"{MARKER}*"))
    ok = rt.invoke_endpoint(EndpointName="mme", Body=b"fine", ContentType="text/plain", TargetModel="good.tar.gz")
    assert ok["Body"].read() == b"fine"
    sm.delete_endpoint(EndpointName="mme")


def _race(n: int, fn: Callable[[int], object]) -> list[tuple[str, object]]:
    barrier = threading.Barrier(n)

    def one(i: int) -> tuple[str, object]:
        barrier.wait()
        try:
            return "ok", fn(i)
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_creates_of_one_name_succeed_exactly_once(backend):
    sm = backend.client("sagemaker")
    url = "s3://models/echo/model.tar.gz"
    results = _race(16, lambda i: create_model(sm, "racy-model", url))
    assert [r for r in results if r[0] == "ok"] and len([r for r in results if r[0] == "ok"]) == 1, results
    assert all(r == ("ValidationException", 400) for r in results if r[0] != "ok"), results
    pv = [{"VariantName": "AllTraffic", "ModelName": "racy-model", "InitialInstanceCount": 1,
           "InstanceType": "ml.m5.large"}]
    results = _race(16, lambda i: sm.create_endpoint_config(EndpointConfigName="racy-c", ProductionVariants=pv))
    assert len([r for r in results if r[0] == "ok"]) == 1, results
    results = _race(16, lambda i: sm.create_endpoint(EndpointName="racy", EndpointConfigName="racy-c"))
    assert len([r for r in results if r[0] == "ok"]) == 1, results
    assert all(r == ("ValidationException", 400) for r in results if r[0] != "ok"), results
    assert wait_for_endpoint(sm, "racy", ("InService",))["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    # Concurrent deletes: the endpoint goes away once; no 5xx, no leftover.
    results = _race(16, lambda i: sm.delete_endpoint(EndpointName="racy"))
    assert any(r[0] == "ok" for r in results) and all(r[0] in ("ok", "ValidationException") for r in results)
    deadline = time.monotonic() + 60
    while any(e["EndpointName"] == "racy" for e in sm.list_endpoints()["Endpoints"]):
        assert time.monotonic() < deadline, "racy endpoint was never deleted"
        time.sleep(0.1)
    assert not (backend.home / "instances" / "racy").exists()


def test_interleaved_create_and_delete_leave_a_consistent_model_table(backend):
    sm = backend.client("sagemaker")
    url = "s3://models/echo/model.tar.gz"

    def churn(i: int) -> str:
        if i % 2:
            create_model(sm, "churn", url)
            return "created"
        sm.delete_model(ModelName="churn")
        return "deleted"

    for _ in range(5):
        results = _race(12, churn)
        assert all(r[0] in ("ok", "ValidationException") for r in results), results
        listed = [m["ModelName"] for m in sm.list_models(NameContains="churn")["Models"]]
        try:
            sm.describe_model(ModelName="churn")
            present = True
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "ValidationException"
            present = False
        assert listed == (["churn"] if present else [])
    assert backend.healthy()
