"""Shared helpers for the reliability, bad-input and security suites (issue 8).

Everything here talks to a *real* local backend process over HTTP on 127.0.0.1 (the same code path
as ``catkit local start``), in a temporary ``CATKIT_HOME``:

- :class:`BackendProc` - start / stop / kill -9 / restart one backend, boto3 clients aimed at it;
- :func:`model_archive` - a model.tar.gz whose ``code/inference.py`` behaves according to the
  request's Content-Type (echo, sleep, hang, fail, pid, leak memory);
- :func:`deploy` / :func:`wait_status` - CreateModel/EndpointConfig/Endpoint and polling;
- :func:`signed` - send arbitrary bytes, SigV4-signed by botocore for a service, and get the raw
  HTTP answer (status, headers, body), for bad-input tables and fuzzing.

Other suites import it after putting this directory on ``sys.path`` (pytest runs with
``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from catkit.local import lifecycle

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecutionRole"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
CREDS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "dummy-secret"}

INFERENCE = '''
import os
import time

_HOARD = []


def model_fn(model_dir):
    return {"dir": model_dir}


def transform_fn(model, body, content_type, accept):
    if content_type == "application/x-sleep":
        time.sleep(float(body))
        return body, "text/plain"
    if content_type == "application/x-hang":
        time.sleep(3600)
        return b"", "text/plain"
    if content_type == "application/x-fail":
        raise RuntimeError("boom: " + body.decode("utf-8", "replace"))
    if content_type == "application/x-pid":
        return str(os.getpid()).encode(), "text/plain"
    if content_type == "application/x-leak":
        block = bytearray(int(float(body) * 1024 * 1024))
        for i in range(0, len(block), 4096):
            block[i] = 1  # touch every page so it counts in RSS
        _HOARD.append(block)
        return str(len(_HOARD)).encode(), "text/plain"
    return body, accept or content_type or "application/octet-stream"
'''


def tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar of regular files (name -> bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def model_archive(extra: Mapping[str, bytes] | None = None) -> bytes:
    """The behaviour-by-content-type model (see ``INFERENCE``) as model.tar.gz bytes."""
    return tar_gz({"code/inference.py": INFERENCE.encode(), "weights.bin": b"\x00" * 16, **(extra or {})})


class BackendProc:
    """One backend process in its own ``CATKIT_HOME``; the caller must :meth:`close` it."""

    def __init__(self, home: Path | None = None, *, time_scale: float = 600.0,
                 env: Mapping[str, str] | None = None) -> None:
        self.owns_home = home is None
        self.home = Path(home) if home is not None else Path(tempfile.mkdtemp(prefix="catkit-rel-"))
        self.time_scale = time_scale
        self.env = dict(env or {})
        self.url = ""
        self.pid = 0

    def start(self) -> str:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            self.url = lifecycle.start(self.home, None, self.time_scale)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.pid = int((lifecycle.read_state(self.home) or {}).get("pid") or 0)
        return self.url

    def stop(self) -> None:
        lifecycle.stop(self.home, timeout=20)

    def kill(self) -> None:
        """SIGKILL the backend (a crash) and wait until its lock is free."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(self.pid, os.WNOHANG)
            if lifecycle.status(self.home) is None:
                return
            time.sleep(0.02)
        raise AssertionError(f"backend pid {self.pid} still holds its lock after SIGKILL")

    def client(self, service: str, **overrides: Any) -> Any:
        cfg = overrides.pop("config", None) or Config(
            retries={"max_attempts": 1, "mode": "standard"}, read_timeout=90, max_pool_connections=64
        )
        # A session per client: boto3's default session is not thread-safe to create clients from.
        return boto3.session.Session().client(service, endpoint_url=self.url, region_name=REGION, config=cfg,
                                              **{**CREDS, **overrides})

    def info(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_catkit/info", timeout=5) as resp:
            return json.loads(resp.read())

    def healthy(self) -> bool:
        return lifecycle.health(self.url, timeout=5) is not None

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.stop()
        finally:
            if self.owns_home:
                shutil.rmtree(self.home, ignore_errors=True)


def upload_model(backend: BackendProc, key: str = "echo/model.tar.gz", data: bytes | None = None,
                 bucket: str = "models") -> str:
    s3 = backend.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=model_archive() if data is None else data)
    return f"s3://{bucket}/{key}"


def create_model(sm: Any, name: str, url: str, *, mode: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
    container: dict[str, Any] = {"Image": IMAGE, "ModelDataUrl": url}
    if mode:
        container["Mode"] = mode
    if env:
        container["Environment"] = dict(env)
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)


def deploy(sm: Any, name: str, url: str, *, count: int = 1, instance_type: str = "ml.m5.large",
           mode: str | None = None, wait: bool = True, timeout: float = 90.0) -> dict[str, Any] | None:
    """CreateModel + CreateEndpointConfig + CreateEndpoint named ``name`` (-m/-c suffixes)."""
    create_model(sm, f"{name}-m", url, mode=mode)
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": count,
        "InstanceType": instance_type}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    if not wait:
        return None
    return wait_status(sm, name, ("InService", "Failed"), timeout=timeout)


def wait_status(sm: Any, name: str, statuses: Iterable[str], timeout: float = 90.0) -> dict[str, Any]:
    wanted = tuple(statuses)
    deadline = time.monotonic() + timeout
    while True:
        d = sm.describe_endpoint(EndpointName=name)
        if d["EndpointStatus"] in wanted:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {name} stuck in {d['EndpointStatus']} (wanted {wanted}): {d}")
        time.sleep(0.1)


def wait_until(pred: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def instance_pids(home: Path, endpoint: str) -> list[int]:
    """PIDs of the endpoint's live model-server processes (from their ready files)."""
    pids = []
    for ready in sorted((home / "instances" / endpoint).glob("*/ready.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            pids.append(int(json.loads(ready.read_text())["pid"]))
    return pids


# ---------------------------------------------------------------- raw signed requests
_SIGNING = {
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "application-autoscaling": "application-autoscaling",
    "cloudwatch": "monitoring",
    "s3": "s3",
    "sts": "sts",
}


def signed(url: str, service: str, method: str = "POST", path: str = "/", body: bytes = b"",
           headers: Mapping[str, str] | None = None, *, sign: bool = True,
           timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
    """Send one request to the gateway, SigV4-signed for ``service`` unless ``sign`` is False.

    ``path`` is sent as given (already percent-encoded). Returns (status, headers, body).
    """
    parts = urlsplit(url)
    hdrs = dict(headers or {})
    if sign:
        req = AWSRequest(method=method, url=f"{url}{path}", data=body, headers=hdrs)
        if service == "s3":
            req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        SigV4Auth(Credentials(CREDS["aws_access_key_id"], CREDS["aws_secret_access_key"]),
                  _SIGNING.get(service, service), REGION).add_auth(req)
        hdrs = dict(req.headers.items())
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True,
                        skip_host=any(k.lower() == "host" for k in hdrs))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if "Content-Length" not in hdrs:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def error_code(status: int, headers: Mapping[str, str], body: bytes) -> str | None:
    """The AWS error code of a raw answer, whatever the protocol (JSON, rest-json, CBOR, XML)."""
    if headers.get("x-amzn-errortype"):
        return headers["x-amzn-errortype"].split(":", 1)[0]
    ctype = headers.get("content-type", "")
    if "cbor" in ctype:
        import cbor2

        with contextlib.suppress(Exception):
            doc = cbor2.loads(body)
            return str(doc.get("__type", "")).rsplit("#", 1)[-1] or None
    if body.startswith(b"{"):
        with contextlib.suppress(Exception):
            doc = json.loads(body)
            code = doc.get("__type") or doc.get("code") or doc.get("Code")
            return str(code).rsplit("#", 1)[-1] if code else None
    if b"<Code>" in body:
        return body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()
    return None


def files_outside(root: Path, since: float, exclude: Iterable[Path] = ()) -> list[Path]:
    """Regular files under ``root`` modified after ``since`` and not inside any of ``exclude``."""
    skip = [Path(p).resolve() for p in exclude]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath).resolve()
        if any(d == s or d.is_relative_to(s) for s in skip):
            dirnames[:] = []
            continue
        for f in filenames:
            p = d / f
            with contextlib.suppress(OSError):
                if p.lstat().st_mtime >= since:
                    found.append(p)
    return found
