"""Shared helpers for the reliability, bad-input and security suites (issue 8).

Everything here talks to a *real* local backend process over HTTP on 127.0.0.1 (the same code path
as ``catkit local start``), in a temporary ``CATKIT_HOME``; the backend handle
(:class:`catkit.testing.LocalBackend`), the echo model (:func:`catkit.testing.echo_archive`),
deploying it (:mod:`catkit.testing.endpoints`) and polling (:func:`catkit.testing.wait_until`)
come from :mod:`catkit.testing`. This module adds:

- :func:`signed` - send arbitrary bytes, SigV4-signed by botocore for a service, and get the raw
  HTTP answer (status, headers, body), for bad-input tables and fuzzing;
- :func:`error_code` - the AWS error code of such an answer, whatever the protocol;
- :func:`files_outside` - files written outside given folders since a time (security checks).

Other suites import it after putting this directory on ``sys.path`` (pytest runs with
``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from catkit.testing.backend import DUMMY_CREDENTIALS as CREDS
from catkit.testing.backend import REGION

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


def raw_connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A plain TCP connection to 127.0.0.1:``port`` (for slow-client tests)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (each recv waits up to the
    socket's timeout)."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk
