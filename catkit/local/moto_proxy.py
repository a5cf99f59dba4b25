"""moto embedded in the gateway: S3, STS and IAM served in-process, with no port of their own.

Owns what the gateway does for the services moto emulates (:data:`MOTO_SERVICES`):

- checks S3 makes and moto does not (:func:`s3_precheck`: bucket names, malformed XML bodies);
- STS GetCallerIdentity answered as the SageMaker execution role, and IAM SimulatePrincipalPolicy
  for that role (``catkit.local.identity``);
- calling moto's Flask application of the service in a worker thread with the environ a WSGI
  server would build (:class:`MotoProxy`, :mod:`catkit.local.wsgi_bridge`), without hop-by-hop
  headers, naming the request's account (``x-moto-account-id``, from its access key:
  :func:`catkit.local.identity.account_for`); moto's own failures become AWS-shaped 500s, the
  details go to the log. Every such request has passed the gateway's Host/Origin guard and body
  limits and is in its access log: there is no other way in (issue 14);
- making mutating S3 requests durable (:meth:`catkit.local.storage.s3.LocalS3.apply`: one writer
  per bucket, persisted before the client gets the answer, undone when the disk refuses);
- the XML error envelopes of S3 and the query protocols (:func:`xml_error`).

Logs under ``catkit.local.gateway``: this is the gateway's forwarding half.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from catkit.local import identity
from catkit.local.errors import AwsError
from catkit.local.storage.replay import bucket_setting, is_iam_write, saved_request
from catkit.local.storage.s3 import split_s3_target
from catkit.local.wsgi_bridge import Body, build_environ, call_wsgi

if TYPE_CHECKING:
    from catkit.local.storage.s3 import LocalS3

__all__ = ["MOTO_SERVICES", "MotoHost", "MotoProxy", "s3_precheck", "s3_xml_body", "valid_bucket_name", "xml_error"]

log = logging.getLogger("catkit.local.gateway")

MOTO_SERVICES = frozenset({"s3", "sts", "iam"})
_WORKERS = 8  # moto calls in flight at once (moto is thread-safe enough for its own threaded server)
_APPS_LOCK = threading.Lock()

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        "date",
        "server",
        "x-moto-account-id",  # the account comes from the access key, not from this header
    }
)

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# S3 sub-resources whose PUT/POST body is an XML document.
_S3_XML_SUBRESOURCES = frozenset(
    {
        "tagging", "lifecycle", "cors", "versioning", "acl", "notification", "website", "logging",
        "encryption", "replication", "ownershipControls", "publicAccessBlock", "object-lock",
        "accelerate", "requestPayment", "intelligent-tiering", "analytics", "inventory", "metrics",
        "retention", "legal-hold", "delete", "uploadId", "restore",
    }
)
# ... of which these must have one (an empty body is MalformedXML on S3).
_S3_XML_REQUIRED = frozenset(
    {
        "tagging", "lifecycle", "cors", "versioning", "notification", "website", "logging", "encryption",
        "replication", "ownershipControls", "publicAccessBlock", "accelerate", "requestPayment", "delete",
    }
)
_MALFORMED_XML = (
    "The XML you provided was not well-formed or did not validate against our published schema"
)


def valid_bucket_name(name: str) -> bool:
    """S3's rules for new general purpose buckets (3-63 of a-z 0-9 . -, letter/digit at both ends,
    no '..', not an IPv4 address, no reserved prefix/suffix)."""
    return bool(
        _BUCKET_RE.match(name)
        and ".." not in name
        and not _IPV4_RE.match(name)
        and not name.startswith(("xn--", "sthree-"))
        and not name.endswith(("-s3alias", "--ol-s3"))
    )


def _blank(body: bytes) -> bool:
    """Empty or only whitespace, without copying a large body (``body.strip()`` copies a 1 MiB
    upload that happens to start or end with a whitespace byte)."""
    return not body or (body[:1].isspace() and body[-1:].isspace() and not body.strip())


def s3_xml_body(method: str, host: str, raw_path: str, query: dict[str, Any], body: bytes) -> bool:
    """True if this S3 request carries an XML document (configuration, Delete, CompleteMultipartUpload)."""
    if method not in ("PUT", "POST") or _blank(body):
        return False
    bucket, key = split_s3_target(host, raw_path)
    return bool(
        (method == "PUT" and bucket and key is None and not query)  # CreateBucketConfiguration
        or (any(q in query for q in _S3_XML_SUBRESOURCES) and not (method == "PUT" and "partNumber" in query))
    )


def s3_precheck(method: str, host: str, raw_path: str, query: dict[str, Any], body: bytes) -> AwsError | None:
    """What S3 refuses before looking at anything else, and moto does not: invalid names in
    CreateBucket (InvalidBucketName) and XML bodies that do not parse (MalformedXML)."""
    bucket, key = split_s3_target(host, raw_path)
    if method == "PUT" and bucket and key is None and not query and not valid_bucket_name(bucket):
        return AwsError("InvalidBucketName", "The specified bucket is not valid.", 400)
    if method in ("PUT", "POST") and bucket and _blank(body) and (
        ((key is None or "tagging" in query) and any(q in query for q in _S3_XML_REQUIRED))
        or (method == "POST" and key is not None and "uploadId" in query)  # CompleteMultipartUpload
    ):
        return AwsError("MalformedXML", _MALFORMED_XML, 400)
    if s3_xml_body(method, host, raw_path, query, body):
        head = body[:4096].lower()
        if b"<!doctype" in head or b"<!entity" in head:
            return AwsError("MalformedXML", _MALFORMED_XML, 400)
        try:
            ET.fromstring(body)
        except (ET.ParseError, ValueError):
            return AwsError("MalformedXML", _MALFORMED_XML, 400)
    return None


def xml_error(code: str, message: str, status: int, request_id: str, *, query_style: bool) -> web.Response:
    """An AWS XML error: S3's ``<Error>`` document, or with ``query_style`` the ``ErrorResponse``
    envelope of STS/IAM (and every query-protocol service)."""
    if query_style:  # STS/IAM: ErrorResponse envelope
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"</Error><RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
        )
    else:  # S3
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId></Error>"
        )
    return web.Response(
        status=status,
        body=body.encode(),
        headers={
            "Content-Type": "application/xml",
            "x-amz-request-id": request_id,
            "x-amzn-RequestId": request_id,
        },
    )


class MotoHost(Protocol):
    """What the proxy uses of the backend: its account (STS answers) and its S3 store (durability)."""

    @property
    def account_id(self) -> str: ...
    @property
    def s3(self) -> LocalS3: ...


class MotoProxy:
    """Serves S3/STS/IAM requests for ``host``'s backend by calling moto's Flask applications
    in-process (in worker threads), with no listening socket of its own. ``moto_url`` is accepted
    for compatibility and ignored (moto used to run as a server on its own loopback port)."""

    def __init__(self, host: MotoHost, moto_url: str | None = None) -> None:
        self.host = host
        self.moto_url = None
        self._apps: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._iam_lock = threading.Lock()

    def open(self) -> None:
        """Build moto's applications and the worker threads (call before the first request)."""
        self._apps = moto_apps()
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="catkit-moto")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)

    def _call(self, service: str, environ: dict[str, Any], request_id: str) -> tuple[int, Any, bytes]:
        """One call of moto's application (blocking); its own crashes become a bare 500."""
        try:
            return call_wsgi(self._apps[service], environ)
        except Exception:
            log.error("moto failed on %s %s [%s]:\n%s", environ.get("REQUEST_METHOD"), environ.get("RAW_URI"),
                      request_id, traceback.format_exc())
            return 500, [], b""

    def _journaled(self, call: Callable[[], tuple[int, Any, bytes]], saved: dict[str, Any], account: str,
                   region: str) -> tuple[int, Any, bytes]:
        """An IAM change: applied, then kept for replay before the client is answered."""
        with self._iam_lock:  # the journal's order is the order moto applied them in
            status, headers, payload = call()
            journal = getattr(self.host, "iam_journal", None)
            if status < 300 and journal is not None:
                journal.record(saved, account, region)
        return status, headers, payload

    async def forward(
        self,
        request: web.Request,
        service: str,
        raw_path: str,
        query: dict[str, Any],
        body: Body,
        request_id: str,
    ) -> web.Response:
        """The answer to ``request`` (its ``body`` already read: bytes, or a spooled file for a
        large S3 upload) for ``service`` (s3, sts or iam)."""
        try:
            return await self._forward(request, service, raw_path, query, body, request_id)
        finally:
            if not isinstance(body, bytes):
                body.close()

    async def _forward(
        self, request: web.Request, service: str, raw_path: str, query: dict[str, Any], body: Body, request_id: str,
    ) -> web.Response:
        if raw_path.startswith("/moto-api"):
            return xml_error(
                "AccessDenied",
                "moto's management API (/moto-api...) is not exposed by the catkit gateway; "
                "path-style bucket names starting with 'moto-api' are therefore not supported locally.",
                403,
                request_id,
                query_style=service != "s3",
            )
        small = body if isinstance(body, bytes) else None  # spooled bodies are uploads, never XML
        account = identity.account_for(request.headers, query, self.host.account_id)
        identity.ensure_account(account)
        answer = None
        if service == "sts" and small is not None:
            answer = identity.answer_get_caller_identity(
                request.method, request.headers, query, small, account, request_id
            )
        elif service == "iam" and small is not None:  # SDK v3 simulates the role's policy; moto lacks it
            answer = identity.answer_simulate_principal_policy(request.method, query, small, account, request_id)
        if answer is not None:
            status, headers, payload = answer
            return web.Response(status=status, headers=headers, body=payload)
        host_header = request.headers.get("Host", "")
        if service == "s3" and small is not None:
            refusal = s3_precheck(request.method, host_header, raw_path, query, small)
            if refusal is not None:
                return xml_error(refusal.code, refusal.message, refusal.status, request_id, query_style=False)
        assert self._pool is not None, "MotoProxy.open() was not called"
        environ = build_environ(request, body, [("x-moto-account-id", account)], drop=_HOP_BY_HOP)
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, service, environ, request_id)
        try:
            if service == "s3":
                bucket, key = split_s3_target(host_header, raw_path)
                saved = None
                if small is not None and bucket and bucket_setting(request.method, key, query):
                    saved = saved_request(request.method, f"/{quote(bucket)}", request.query_string,
                                          request.headers.items(), small)
                status, out_headers, payload = await loop.run_in_executor(
                    self._pool, self.host.s3.apply, request.method, host_header, raw_path, query, call, saved)
            elif service == "iam" and small is not None and is_iam_write(request.method, query, small):
                saved = saved_request(request.method, raw_path, request.query_string, request.headers.items(), small)
                status, out_headers, payload = await loop.run_in_executor(
                    self._pool, self._journaled, call, saved, account, "us-east-1")  # IAM is global
            else:
                status, out_headers, payload = await loop.run_in_executor(self._pool, call)
        except AwsError as err:  # what S3 refuses before moto sees it (NoSuchUpload)
            return xml_error(err.code, err.message, err.status, request_id, query_style=False)
        except OSError as exc:  # disk full, CATKIT_HOME unwritable: moto was reverted, never acknowledge
            log.error("could not persist S3 %s %s: %s", request.method, raw_path, exc)
            return xml_error(
                "InternalError",
                f"We encountered an internal error. Please try again. (catkit: the local backend could not "
                f"write S3 data under {self.host.s3.disk.root}: {exc.strerror or exc}. The request was not "
                "applied; free disk space or fix the directory's permissions, then retry.)",
                500,
                request_id,
                query_style=False,
            )
        if (
            service == "s3"
            and small is not None
            and (status >= 500 or (status >= 400 and b"<Error" not in payload))
            and s3_xml_body(request.method, host_header, raw_path, query, small)
        ):  # well-formed XML that moto cannot read (it crashes or answers bare 404s): S3's schema refuses it
            log.info("moto answered %s %s with %s; reporting MalformedXML", request.method, raw_path, status)
            return xml_error("MalformedXML", _MALFORMED_XML, 400, request_id, query_style=False)
        if status >= 500:  # moto itself failed: answer like AWS, keep the details in the log
            log.error("moto answered %s %s with %s: %s", request.method, raw_path, status, payload[:2000])
            return xml_error(
                "InternalError" if service == "s3" else "InternalFailure",
                "We encountered an internal error. Please try again. (catkit: the embedded "
                f"{service.upper()} emulator failed on this request; see logs/backend.log, request id {request_id}.)",
                500,
                request_id,
                query_style=service != "s3",
            )
        head = request.method == "HEAD"
        response = web.Response(status=status, body=None if head else payload)
        length = None
        for key, value in out_headers:
            lower = key.lower()
            if lower == "content-length":
                length = value
            elif lower not in _HOP_BY_HOP:
                response.headers.add(key, value)
        if head and length is not None:
            response.headers["Content-Length"] = length
        return response


def moto_apps() -> dict[str, Any]:
    """moto's Flask application of each of :data:`MOTO_SERVICES`, without flask-cors's global CORS
    (which echoes any ``Origin``): S3 answers CORS from each bucket's own configuration, as AWS does."""
    from moto.moto_server import werkzeug_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with _APPS_LOCK:
        saved = werkzeug_app.DISABLE_GLOBAL_CORS
        werkzeug_app.DISABLE_GLOBAL_CORS = True
        try:
            return {name: werkzeug_app.create_backend_app(name) for name in sorted(MOTO_SERVICES)}
        finally:
            werkzeug_app.DISABLE_GLOBAL_CORS = saved
