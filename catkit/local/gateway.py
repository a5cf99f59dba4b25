"""The local backend's front door: one aiohttp server on loopback for every AWS service.

Each request is routed by service (SigV4 credential scope, then X-Amz-Target, then path, via
``catkit.local.protocols.detect_service``):

- services registered with ``backend.add_service`` (sagemaker, sagemaker-runtime, cloudwatch,
  application-autoscaling): decoded by the service's codec, dispatched to
  ``service.dispatch(operation, params, ctx)``, encoded back; an ``AwsError`` becomes the
  protocol's error, anything else an ``InternalFailure`` 500 carrying the request id (the
  traceback goes to the log, never to the client);
- ``s3``, ``sts``, ``iam``: forwarded verbatim (method, path, query, headers, body) to the embedded
  moto server; mutating S3 requests are made durable (``catkit.local.storage.s3``) before the client gets
  the answer; STS GetCallerIdentity is answered as the SageMaker execution role
  (``catkit.local.identity``);
- anything else: a clean ``UnknownServiceException`` naming what is emulated.

Request bodies are capped (control plane 10 MB, runtime 6 MB, S3 1 GiB) with AWS-shaped errors.
``/_catkit/health`` and ``/_catkit/info`` are catkit's own JSON endpoints for lifecycle checks.
Every request is written to the ``catkit.local.access`` log. Requests a browser sends on a user's
behalf (a cross-site ``Origin``, a non-local ``Host`` as in DNS rebinding) get 403: see
:func:`foreign_request`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import sqlite3
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from catkit.local import identity
from catkit.local.errors import AwsError
from catkit.local.services.base import RequestContext

if TYPE_CHECKING:
    from catkit.local.storage.s3 import LocalS3

log = logging.getLogger("catkit.local.gateway")
access_log = logging.getLogger("catkit.local.access")

MB = 1024 * 1024
CONTROL_PLANE_MAX_BODY = 10 * MB
RUNTIME_MAX_BODY = 6 * MB
S3_MAX_BODY = 1024 * MB
MOTO_SERVICES = frozenset({"s3", "sts", "iam"})
SHUTDOWN_GRACE_S = 10.0  # in-flight requests get this long to finish on stop
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
        "x-moto-account-id",  # the account is the backend's, not the caller's choice
    }
)
_REGION_RE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/,\s]+)/")
_PRESIGNED_REGION_RE = re.compile(r"^[^/]*/\d{8}/([^/]+)/")
_SECRET_QUERY_RE = re.compile(
    r"(X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature)=[^&]*", re.I
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


def s3_xml_body(method: str, host: str, raw_path: str, query: dict[str, Any], body: bytes) -> bool:
    """True if this S3 request carries an XML document (configuration, Delete, CompleteMultipartUpload)."""
    from catkit.local.storage.s3 import split_s3_target

    if not body.strip() or method not in ("PUT", "POST"):
        return False
    bucket, key = split_s3_target(host, raw_path)
    return bool(
        (method == "PUT" and bucket and key is None and not query)  # CreateBucketConfiguration
        or (any(q in query for q in _S3_XML_SUBRESOURCES) and not (method == "PUT" and "partNumber" in query))
    )


def s3_precheck(method: str, host: str, raw_path: str, query: dict[str, Any], body: bytes) -> AwsError | None:
    """What S3 refuses before looking at anything else, and moto does not: invalid names in
    CreateBucket (InvalidBucketName) and XML bodies that do not parse (MalformedXML)."""
    from catkit.local.storage.s3 import split_s3_target

    bucket, key = split_s3_target(host, raw_path)
    if method == "PUT" and bucket and key is None and not query and not valid_bucket_name(bucket):
        return AwsError("InvalidBucketName", "The specified bucket is not valid.", 400)
    if method in ("PUT", "POST") and bucket and not body.strip() and (
        ((key is None or "tagging" in query) and any(q in query for q in _S3_XML_REQUIRED))
        or (method == "POST" and key is not None and "uploadId" in query)  # CompleteMultipartUpload
    ):
        return AwsError("MalformedXML", _MALFORMED_XML, 400)
    if s3_xml_body(method, host, raw_path, query, body):
        import xml.etree.ElementTree as ET

        head = body[:4096].lower()
        if b"<!doctype" in head or b"<!entity" in head:
            return AwsError("MalformedXML", _MALFORMED_XML, 400)
        try:
            ET.fromstring(body)
        except (ET.ParseError, ValueError):
            return AwsError("MalformedXML", _MALFORMED_XML, 400)
    return None


class NonLoopbackHostError(ValueError):
    """Raised when asked to bind anything but a loopback address."""


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address (127.0.0.0/8, ::1, localhost), else raise."""
    candidate = host.strip("[]")
    if candidate == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        raise NonLoopbackHostError(
            f"Refusing to bind the catkit local backend to {host!r}: not an IP address. "
            "It only listens on loopback (127.0.0.1, another 127.x.y.z, or ::1)."
        ) from None
    if not address.is_loopback:
        raise NonLoopbackHostError(
            f"Refusing to bind the catkit local backend to {host!r}: it is not a loopback address. "
            "The backend accepts any credentials, so it only listens on 127.0.0.0/8 or ::1."
        )
    return candidate


def _protocols() -> Any:
    import catkit.local.protocols as protocols

    missing = [n for n in ("detect_service", "codec_for", "RawRequest") if not hasattr(protocols, n)]
    if missing:  # the package may expose them from submodules only
        from catkit.local.protocols import detect, raw

        for name, mod in (("detect_service", detect), ("RawRequest", raw), ("RawResponse", raw)):
            if not hasattr(protocols, name):
                setattr(protocols, name, getattr(mod, name))
    return protocols


def _query_dict(request: web.Request) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in request.query.items():
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def _region_of(headers: Any, query: dict[str, Any], default: str) -> str:
    match = _REGION_RE.search(headers.get("Authorization", "") or "")
    if match:
        return match.group(1)
    cred = query.get("X-Amz-Credential")
    if isinstance(cred, str):
        match = _PRESIGNED_REGION_RE.match(cred)
        if match:
            return match.group(1)
    return default


_SCOPE_SERVICE_RE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


def _is_sigv2_s3(request: web.Request) -> bool:
    """S3 is the only service still signed with SigV2: boto3's default presigned S3 URLs
    (``AWSAccessKeyId``/``Signature``/``Expires`` query) and ``Authorization: AWS AKID:sig``."""
    query = request.query
    if "AWSAccessKeyId" in query and "Signature" in query:
        return True
    return request.headers.get("Authorization", "").startswith("AWS ")


class BodyTooLarge(Exception):
    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit


async def _read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(length, limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(None, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _limit_for(service: str | None) -> int:
    if service == "s3":
        return S3_MAX_BODY
    if service == "sagemaker-runtime":
        return RUNTIME_MAX_BODY
    return CONTROL_PLANE_MAX_BODY


def _xml_error(code: str, message: str, status: int, request_id: str, *, query_style: bool) -> web.Response:
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


def _generic_error(request: web.Request, err: AwsError, request_id: str) -> web.Response:
    """An error for a request whose protocol we don't know: guess it from the request's shape."""
    ctype = request.headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in ctype or "Action" in request.query:
        return _xml_error(err.code, err.message, err.status, request_id, query_style=True)
    if "X-Amz-Target" in request.headers or "json" in ctype or "cbor" in ctype:
        body = json.dumps({"__type": err.code, "message": err.message}).encode()
        return web.Response(
            status=err.status,
            body=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "x-amzn-ErrorType": err.code,
                "x-amzn-RequestId": request_id,
            },
        )
    return _xml_error(err.code, err.message, err.status, request_id, query_style=False)


def _is_local_name(host: str) -> bool:
    """A Host/Origin host name that only ever means this machine (or AWS's own S3 names, which no
    attacker can point at 127.0.0.1): loopback IPs, ``localhost`` and ``*.localhost``."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def foreign_request(headers: Any) -> str | None:
    """Why a request must be refused as coming from a web page rather than an SDK, or None.

    The backend runs model code for whoever reaches it, so besides binding loopback only it
    refuses what browsers send on a user's behalf: a cross-site ``Origin`` (a page posting to
    127.0.0.1) and a ``Host`` that is not a local name (DNS rebinding). AWS SDKs send neither; a
    virtual-hosted S3 name under amazonaws.com is fine (nobody else controls that DNS).
    """
    origin = headers.get("Origin")
    if origin and origin != "null":
        netloc = origin.split("://", 1)[-1].split("/", 1)[0]
        if not _is_local_name(netloc):
            return f"Origin {origin!r} is not this machine"
    elif origin == "null":
        return "a sandboxed or file:// page (Origin: null)"
    host = headers.get("Host")
    if host and not _is_local_name(host):
        name = host.rsplit(":", 1)[0].lower().rstrip(".")
        if not (name.endswith(".amazonaws.com") or name.endswith(".amazonaws.com.cn")):
            return f"Host {host!r} is not a loopback name"
    return None


@web.middleware
async def _loopback_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    why = foreign_request(request.headers)
    if why is None:
        return await handler(request)
    request_id = str(uuid.uuid4())
    log.warning("refused %s %s: %s", request.method, request.path, why)
    err = AwsError(
        "AccessDeniedException",
        f"The catkit local backend only answers AWS SDKs on this machine; refused because {why}. "
        "It runs model code for anyone who reaches it, so it does not accept requests from web pages "
        "or other hosts.",
        403,
    )
    return _generic_error(request, err, request_id)


class GatewayHost(Protocol):
    """What the gateway uses of the backend that owns it (:class:`catkit.local.backend.Backend`
    is one): the registered services, where requests run, the S3 store to make durable, and
    ``info()`` for ``/_catkit/info``."""

    @property
    def services(self) -> Mapping[str, Any]: ...
    @property
    def region(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def home(self) -> Path: ...
    @property
    def s3(self) -> LocalS3: ...
    def info(self) -> dict[str, Any]: ...


class Gateway:
    """The aiohttp application and server of one backend (handed in as a :class:`GatewayHost`)."""

    def __init__(self, backend: GatewayHost, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        self.host = check_loopback(host)
        self.port = port
        self.moto_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._protocols: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, moto_url: str) -> str:
        """Listen; returns the base URL (``http://127.0.0.1:PORT``)."""
        self.moto_url = moto_url.rstrip("/")
        try:
            self._protocols = _protocols()
        except ImportError as exc:
            log.warning("protocol codecs unavailable (%s); only s3/sts/iam will be served", exc)
            self._protocols = None
        self._client = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=64, force_close=False),
        )
        app = web.Application(client_max_size=S3_MAX_BODY + MB, middlewares=[_loopback_guard])
        app.router.add_route("*", "/_catkit/health", self._health)
        app.router.add_route("*", "/_catkit/info", self._info)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE_S,
            auto_decompress=False,  # bodies go through byte-for-byte (S3 gzip objects, codecs gunzip)
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests briefly, close the port and client."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- catkit namespace --------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self.backend.info())

    # -- main handler ------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        service: str | None = None
        operation: str | None = None
        response: web.StreamResponse
        try:
            response, service, operation = await self._route(request, request_id)
        except Exception:  # last resort: never leak a stack trace
            log.error(
                "request %s %s failed [%s]:\n%s",
                request.method,
                request.path,
                request_id,
                traceback.format_exc(),
            )
            response = _generic_error(
                request,
                AwsError(
                    "InternalFailure", f"The request processing has failed (request id {request_id}).", 500
                ),
                request_id,
            )
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s "%s %s" %s %s %s %.1fms',
                request.remote,
                request.method,
                _SECRET_QUERY_RE.sub(r"\1=REDACTED", request.raw_path),
                service or "-",
                operation or "-",
                response.status,
                (time.perf_counter() - started) * 1000,
            )
        return response

    async def _route(
        self, request: web.Request, request_id: str
    ) -> tuple[web.StreamResponse, str | None, str | None]:
        query = _query_dict(request)
        raw_path = request.raw_path.split("?", 1)[0]
        raw = (
            self._protocols.RawRequest(request.method, raw_path, query, request.headers, b"")
            if self._protocols is not None
            else None
        )
        service = self._detect(request, raw)
        limit = _limit_for(service)
        try:
            body = await _read_body(request, limit)
        except BodyTooLarge as exc:
            return self._too_large(request, service, exc, request_id), service, None

        if service in MOTO_SERVICES:
            return (
                await self._forward_to_moto(request, service, raw_path, query, body, request_id),
                service,
                None,
            )

        svc = self.backend.services.get(service) if service else None
        if svc is None or self._protocols is None:
            known = sorted({*self.backend.services, *MOTO_SERVICES})
            what = (
                f"service {service!r}"
                if service
                else "this request (no SigV4 credential scope, X-Amz-Target or known path)"
            )
            err = AwsError(
                "UnknownServiceException",
                f"The catkit local backend does not serve {what}. It serves: {', '.join(known)}.",
                400,
            )
            return _generic_error(request, err, request_id), service, None
        raw.body = body
        return await self._dispatch(request, service, svc, raw, query, body, request_id)

    def _detect(self, request: web.Request, raw: Any) -> str | None:
        service = None
        if raw is not None:
            service = self._protocols.detect_service(raw)
        else:
            match = _SCOPE_SERVICE_RE.search(request.headers.get("Authorization", ""))
            service = match.group(1) if match else None
        if service is None and _is_sigv2_s3(request):
            service = "s3"
        return service

    def _too_large(
        self, request: web.Request, service: str | None, exc: BodyTooLarge, request_id: str
    ) -> web.Response:
        size = f"{exc.size} bytes" if exc.size is not None else "more than the limit"
        limit_mb = exc.limit / MB
        if service == "s3":
            return _xml_error(
                "EntityTooLarge",
                f"Your proposed upload ({size}) exceeds the maximum allowed size of {limit_mb:.0f} MB per "
                "request in the catkit local backend. Use a multipart upload for large objects.",
                400,
                request_id,
                query_style=False,
            )
        err = AwsError(
            "RequestEntityTooLarge" if service != "sagemaker-runtime" else "ValidationError",
            f"Request body ({size}) exceeds the {limit_mb:.0f} MB limit"
            + (" for InvokeEndpoint payloads." if service == "sagemaker-runtime" else " for this API."),
            413,
        )
        return self._error_response(request, service, None, err, request_id)

    def _error_response(
        self, request: web.Request, service: str | None, operation: str | None, err: AwsError, request_id: str
    ) -> web.Response:
        if service in MOTO_SERVICES:
            return _xml_error(err.code, err.message, err.status, request_id, query_style=service != "s3")
        if self._protocols is not None and service in self.backend.services:
            try:
                raw = self._protocols.RawRequest(
                    request.method, request.raw_path.split("?", 1)[0], {}, request.headers, b""
                )
                codec = self._protocols.codec_for(service, raw)
                return self._to_web(codec.serialize_error(operation, err, request_id=request_id), request_id)
            except Exception:
                log.exception("serializing an error for %s failed", service)
        return _generic_error(request, err, request_id)

    @staticmethod
    def _to_web(raw_response: Any, request_id: str) -> web.Response:
        headers = dict(raw_response.headers)
        lowered = {k.lower() for k in headers}
        if "x-amzn-requestid" not in lowered:
            headers["x-amzn-RequestId"] = request_id
        headers.pop("Content-Length", None)
        headers.pop("content-length", None)
        return web.Response(status=raw_response.status, headers=headers, body=raw_response.body)

    async def _dispatch(
        self,
        request: web.Request,
        service: str,
        svc: Any,
        raw: Any,
        query: dict[str, Any],
        body: bytes,
        request_id: str,
    ) -> tuple[web.StreamResponse, str | None, str | None]:
        operation: str | None = None
        try:
            codec = self._protocols.codec_for(service, raw)
        except AwsError as err:
            return _generic_error(request, err, request_id), service, None
        try:
            operation, params = codec.parse_request(raw)
            ctx = RequestContext(
                region=_region_of(request.headers, query, self.backend.region),
                account_id=self.backend.account_id,
                request_id=request_id,
                service=service,
                headers=raw.headers,
            )
            result = await svc.dispatch(operation, params, ctx)
            raw_response = codec.serialize_response(operation, result, request_id=request_id)
        except AwsError as err:
            raw_response = codec.serialize_error(operation, err, request_id=request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("%s %s failed [%s]:\n%s", service, operation or "?", request_id, traceback.format_exc())
            if isinstance(exc, OSError | sqlite3.Error):  # disk full, CATKIT_HOME unwritable
                detail = (
                    f" The local backend could not write its state under {self.backend.home}: {exc}. "
                    "The request was not applied; free disk space or fix the directory's permissions, then retry."
                )
            else:
                detail = ""
            err = AwsError(
                "InternalFailure",
                f"The request processing has failed because of an unknown error, exception or failure "
                f"(request id {request_id}).{detail}",
                500,
            )
            raw_response = codec.serialize_error(operation, err, request_id=request_id)
        return self._to_web(raw_response, request_id), service, operation

    # -- moto --------------------------------------------------------------------------------
    async def _forward_to_moto(
        self,
        request: web.Request,
        service: str,
        raw_path: str,
        query: dict[str, Any],
        body: bytes,
        request_id: str,
    ) -> web.Response:
        if raw_path.startswith("/moto-api"):
            return _xml_error(
                "AccessDenied",
                "moto's management API (/moto-api...) is not exposed by the catkit gateway; "
                "path-style bucket names starting with 'moto-api' are therefore not supported locally.",
                403,
                request_id,
                query_style=service != "s3",
            )
        if service == "sts":
            answer = identity.answer_get_caller_identity(
                request.method, request.headers, query, body, self.backend.account_id, request_id
            )
            if answer is not None:
                status, headers, payload = answer
                return web.Response(status=status, headers=headers, body=payload)
        if service == "s3":
            refusal = s3_precheck(request.method, request.headers.get("Host", ""), raw_path, query, body)
            if refusal is not None:
                return _xml_error(refusal.code, refusal.message, refusal.status, request_id, query_style=False)
        assert self._client is not None and self.moto_url is not None
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        url = self.moto_url + request.raw_path
        async with self._client.request(
            request.method,
            aiohttp.client.URL(url, encoded=True),
            headers=headers,
            data=body if body or request.method in ("PUT", "POST") else None,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent", "Accept"),
        ) as upstream:
            payload = await upstream.read()
            out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP]
            status = upstream.status
            upstream_length = upstream.headers.get("Content-Length")
        if (
            service == "s3"
            and (status >= 500 or (status >= 400 and b"<Error" not in payload))
            and s3_xml_body(request.method, request.headers.get("Host", ""), raw_path, query, body)
        ):  # well-formed XML that moto cannot read (it crashes or answers bare 404s): S3's schema refuses it
            log.info("moto answered %s %s with %s; reporting MalformedXML", request.method, raw_path, status)
            return _xml_error("MalformedXML", _MALFORMED_XML, 400, request_id, query_style=False)
        if status >= 500:  # moto itself failed: answer like AWS, keep the details in the log
            log.error("moto answered %s %s with %s: %s", request.method, raw_path, status, payload[:2000])
            return _xml_error(
                "InternalError" if service == "s3" else "InternalFailure",
                "We encountered an internal error. Please try again. (catkit: the embedded "
                f"{service.upper()} emulator failed on this request; see logs/backend.log, request id {request_id}.)",
                500,
                request_id,
                query_style=service != "s3",
            )
        if service == "s3":
            try:
                await self.backend.s3.persist_after(
                    request.method, request.headers.get("Host", ""), raw_path, query, status
                )
            except OSError as exc:  # disk full, CATKIT_HOME unwritable: undo, never acknowledge
                log.error("could not persist S3 %s %s: %s", request.method, raw_path, exc)
                await self.backend.s3.revert_after(request.headers.get("Host", ""), raw_path)
                return _xml_error(
                    "InternalError",
                    f"We encountered an internal error. Please try again. (catkit: the local backend could not "
                    f"write S3 data under {self.backend.s3.disk.root}: {exc.strerror or exc}. The request was not "
                    "applied; free disk space or fix the directory's permissions, then retry.)",
                    500,
                    request_id,
                    query_style=False,
                )
        response = web.Response(status=status, body=payload if request.method != "HEAD" else None)
        for key, value in out_headers:
            response.headers.add(key, value)
        if request.method == "HEAD" and upstream_length is not None:
            response.headers["Content-Length"] = upstream_length
        return response
