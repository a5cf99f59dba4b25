"""Security properties of the local backend (issue 8 §4): loopback only, owner-only state, nothing
written outside CATKIT_HOME, model code only from the uploaded archive."""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
import time
import uuid
from pathlib import Path

import botocore.exceptions
import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))  # rel_support (importlib mode)

from rel_support import files_outside, signed

from catkit.local import lifecycle
from catkit.local.backend import Backend
from catkit.local.gateway import NonLoopbackHostError
from catkit.serving.server import NonLoopbackHost, ServerConfig
from catkit.testing import (
    LocalBackend,
    create_model,
    deploy_endpoint,
    tar_gz,
    upload_model,
    wait_for_endpoint,
)

MARKER = f"catkit-sec-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    root = tmp_path_factory.mktemp("sec")
    b = LocalBackend(root / "home", time_scale=600)
    try:
        b.start()
        b.root = root
        b.t0 = time.time()
        url = upload_model(b)
        assert deploy_endpoint(b.client("sagemaker"), "sec", url)["EndpointStatus"] == "InService"
        yield b
    finally:
        b.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_non_loopback_binds_are_refused_everywhere(tmp_path, host):
    with pytest.raises(NonLoopbackHostError):
        lifecycle.start(tmp_path / "h", None, 600, host=host)
    with pytest.raises(NonLoopbackHostError):
        Backend(tmp_path / "h2", host=host)
    with pytest.raises(NonLoopbackHost):
        ServerConfig(model=None, host=host)
    assert not (tmp_path / "h" / "backend.json").exists()


def test_every_listening_socket_is_loopback(started):
    pids = [started.pid, *started.instance_pids("sec")]
    listening = []
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                listening.append((pid, conn.laddr.ip, conn.laddr.port))
    ports = {port for _, _, port in listening}
    assert int(started.url.rsplit(":", 1)[1]) in ports  # the gateway itself is among them
    assert len({pid for pid, _, _ in listening}) == len(pids)  # and every instance listens
    assert all(ip in ("127.0.0.1", "::1") or ip.startswith("127.") for _, ip, _ in listening), listening


def test_state_is_owner_only(started):
    s3 = started.client("s3")
    s3.put_object(Bucket="models", Key="secret.txt", Body=b"s3cr3t")
    home = started.home
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    state = ["state.sqlite", "backend.json", "backend.lock", "last_port"]
    for name in state:
        assert stat.S_IMODE((home / name).stat().st_mode) & 0o077 == 0, name
    for sub in ("s3", "logs"):
        for path in [home / sub, *(home / sub).rglob("*")]:
            assert stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0, path
    for path in (home / "instances").rglob("*"):  # instance dirs; extracted model files sit inside them
        if path.is_dir() and path.parent.parent.parent == home:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_no_request_writes_outside_catkit_home(started):
    url = started.url
    evil = [
        f"/models/..%2F..%2F..%2F..%2F..%2Ftmp%2F{MARKER}",
        f"/models/../../../../tmp/{MARKER}-plain",
        f"/models/%2Ftmp%2F{MARKER}-abs",
        f"/models/{'..%5C' * 6}{MARKER}-backslash",
    ]
    for path in evil:
        status, _, _ = signed(url, "s3", method="PUT", path=path, body=b"pwned")
        assert status in (200, 400, 404), (path, status)
    for name in (f"../../{MARKER}", f"/tmp/{MARKER}", f"..%2F{MARKER}"):
        status, _, _ = signed(url, "sagemaker-runtime", path=f"/endpoints/{name}/invocations", body=b"x")
        assert 400 <= status < 500
    sm = started.client("sagemaker")
    with pytest.raises(botocore.exceptions.ClientError):
        create_model(sm, "file-url", f"file:///tmp/{MARKER}")
    assert not list(Path("/tmp").glob(f"{MARKER}*"))
    assert files_outside(started.root, started.t0, exclude=[started.home]) == []


def test_model_code_only_runs_from_the_uploaded_archive(started, tmp_path):
    """Container environment cannot point the server at code elsewhere (PYTHONPATH, PYTHONSTARTUP,
    LD_PRELOAD, OPENSSL_CONF, GCONV_PATH are refused at CreateModel; a SAGEMAKER_SUBMIT_DIRECTORY on
    this machine fails the endpoint): only code from the archive (or an s3:// sourcedir.tar.gz) runs."""
    evil = tmp_path / "evil"
    evil.mkdir()
    payload = f"open({str(tmp_path / MARKER)!r}, 'w').write('ran')\n"
    for name in ("sitecustomize.py", "usercustomize.py", "inference.py", "startup.py", "evil.py"):
        (evil / name).write_text(payload + "def transform_fn(*a):\n    return b'evil', 'text/plain'\n")
    sm, rt = started.client("sagemaker"), started.client("sagemaker-runtime")
    env = {"PYTHONPATH": str(evil), "PYTHONSTARTUP": str(evil / "startup.py"), "PYTHONUSERBASE": str(evil),
           "LD_PRELOAD": str(evil / "evil.so")}
    create_model(sm, "local-m", "s3://models/echo/model.tar.gz",
                 env={"SAGEMAKER_SUBMIT_DIRECTORY": str(evil), "SAGEMAKER_PROGRAM": "evil.py"})
    sm.create_endpoint_config(EndpointConfigName="local-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "local-m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="local", EndpointConfigName="local-c")
    failed = wait_for_endpoint(sm, "local", ("InService", "Failed"))
    assert failed["EndpointStatus"] == "Failed" and "SAGEMAKER_SUBMIT_DIRECTORY" in failed["FailureReason"]
    # Loader/runtime hooks are refused at CreateModel (issue 14 finding 6: OPENSSL_CONF made the
    # model server load a shared library from the host); the model is not stored.
    for name, value in {**env, "OPENSSL_CONF": str(evil / "openssl.cnf"), "GCONV_PATH": str(evil)}.items():
        with pytest.raises(botocore.exceptions.ClientError) as err:
            create_model(sm, "envy-m", "s3://models/echo/model.tar.gz", env={name: value})
        error = err.value.response["Error"]
        assert error["Code"] == "ValidationException" and name in error["Message"], error
    with pytest.raises(botocore.exceptions.ClientError):
        sm.describe_model(ModelName="envy-m")
    create_model(sm, "envy-m", "s3://models/echo/model.tar.gz", env={"GREETING": "meow", "PYTHONUNBUFFERED": "1"})
    sm.create_endpoint_config(EndpointConfigName="envy-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "envy-m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="envy", EndpointConfigName="envy-c")
    assert wait_for_endpoint(sm, "envy", ("InService", "Failed"))["EndpointStatus"] == "InService"
    body = rt.invoke_endpoint(EndpointName="envy", Body=b"mine", ContentType="text/plain")["Body"].read()
    assert body == b"mine"  # the archive's echo handler, not the evil one
    assert not (tmp_path / MARKER).exists()
    # An archive whose handler is a symlink to code outside it is refused.
    link_archive = tar_gz({"weights.bin": b"w"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(link_archive), mode="r:gz") as src, \
            tarfile.open(fileobj=buf, mode="w:gz") as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m))
        info = tarfile.TarInfo("code/inference.py")
        info.type = tarfile.SYMTYPE
        info.linkname = str(evil / "inference.py")
        out.addfile(info)
    url = upload_model(started, "evil/link.tar.gz", buf.getvalue())
    d = deploy_endpoint(sm, "linky", url)
    assert d["EndpointStatus"] == "Failed" and "code/inference.py" in d["FailureReason"]
    assert not (tmp_path / MARKER).exists()
    assert os.listdir(evil)  # untouched
    sm.delete_endpoint(EndpointName="envy")
    sm.delete_endpoint(EndpointName="linky")
    sm.delete_endpoint(EndpointName="local")


def test_moto_management_api_is_not_reachable(started):
    # moto's dashboard and state dump stay closed; its reset route is catkit's reset (issue 13) and,
    # like every gateway route, refuses web pages and foreign hosts: state survives those attempts
    for path in ("/moto-api/data.json", "/moto-api/"):
        status, _, body = signed(started.url, "s3", method="GET", path=path)
        assert status == 403, (path, status, body[:200])
    for path in ("/moto-api/reset", "/_catkit/reset"):
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Host": "rebind.evil.example"}):
            status, _, body = signed(started.url, "none", method="POST", path=path, headers=headers, sign=False)
            assert status == 403 and b"AccessDeniedException" in body, (path, headers, status, body[:200])
    assert started.client("s3").head_object(Bucket="models", Key="echo/model.tar.gz")["ContentLength"] > 0
    assert started.client("sagemaker").describe_endpoint(EndpointName="sec")["EndpointStatus"] == "InService"


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": "https://evil.example"}, False),  # a web page posting to 127.0.0.1 (CSRF)
        ({"Origin": "null"}, False),  # sandboxed iframe / file:// page
        ({"Host": "rebind.evil.example:1234"}, False),  # DNS rebinding
        ({"Host": "127.0.0.1.nip.io"}, False),
        ({"Origin": "http://localhost:8888"}, True),  # a local notebook front end
        ({"Origin": "http://127.0.0.1:8888", "Host": "localhost"}, True),
        ({"Host": "models.s3.amazonaws.com"}, True),  # virtual-hosted S3 via a custom resolver
        ({}, True),
    ],
)
def test_requests_from_web_pages_and_foreign_hosts_are_refused(started, headers, allowed):
    status, _, body = signed(started.url, "sagemaker-runtime", path="/endpoints/sec/invocations", body=b"csrf",
                             headers={"Content-Type": "text/plain", **headers}, sign=False)
    if allowed:
        assert status == 200 and body == b"csrf", (status, body[:300])
    else:
        assert status == 403 and b"AccessDeniedException" in body, (status, body[:300])
    status, _, _ = signed(started.url, "none", method="GET", path="/_catkit/info", headers=headers, sign=False)
    assert status == (200 if allowed else 403)
