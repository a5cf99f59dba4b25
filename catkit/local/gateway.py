"""The local backend's front door: one aiohttp server on loopback for every AWS service.

Each request is routed by service (SigV4 credential scope, then X-Amz-Target, then path, via
``catkit.local.protocols.detect_service``) and scoped by account and region (the access key, see
:func:`catkit.local.identity.account_for`, and the credential scope's region):

- services registered with ``backend.add_service`` (sagemaker, sagemaker-runtime, cloudwatch,
  application-autoscaling): decoded by the service's codec, dispatched to
  ``service.dispatch(operation, params, ctx)``, encoded back; an ``AwsError`` becomes the
  protocol's error, anything else an ``InternalFailure`` 500 carrying the request id (the
  traceback goes to the log, never to the client);
- ``s3``, ``sts``, ``iam``: handed to :class:`catkit.local.moto_proxy.MotoProxy`, which serves
  them in-process with moto's applications (nothing else listens), makes mutating S3 requests
  durable before the client gets the answer and answers STS GetCallerIdentity as the SageMaker
  execution role;
- anything else: a clean ``UnknownServiceException`` naming what is emulated.

Request bodies are capped (control plane 10 MB, runtime 6 MB, S3 5 GiB as S3's single PUT; S3
bodies above 8 MB are spooled to a temporary file under ``s3/.incoming``) with AWS-shaped errors.
``/_catkit/health`` and ``/_catkit/info`` are catkit's own JSON endpoints for lifecycle checks;
``POST /_catkit/reset`` (also answered at moto's ``POST /moto-api/reset``, so suites written for
moto's server mode can point here) forgets all state (:meth:`GatewayHost.reset`).
Every request is written to the ``catkit.local.access`` log. Requests a browser sends on a user's
behalf (a cross-site ``Origin``, a non-local ``Host`` as in DNS rebinding) get 403, and the server
binds loopback only: the rules are :mod:`catkit.local.request_guard`. This module owns the aiohttp
application, routing, body limits, dispatch to the services and their error shapes. It never
imports the backend: the backend is handed in as a :class:`GatewayHost`. A lone, complete signed
InvokeEndpoint skips aiohttp's request objects (:mod:`catkit.local.fast_invoke`, same answers).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import sqlite3
import time
import traceback
import uuid
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from catkit.local import access_log, fast_invoke, identity
from catkit.local.errors import AwsError
from catkit.local.fast_invoke import FastServer, invoke_scope
from catkit.local.moto_proxy import (
    MOTO_SERVICES,
    MotoHost,
    MotoProxy,
    s3_precheck,
    s3_xml_body,
    valid_bucket_name,
    xml_error,
)
from catkit.local.request_guard import NonLoopbackHostError, check_loopback, foreign_request
from catkit.local.services.base import RequestContext
from catkit.local.wsgi_bridge import BodyTooLarge, spool_body
from catkit.serving.http_limits import BodyTimeout, HttpLimits, LimitedSite, Tracker, read_limited, ready_body

__all__ = [
    "CONTROL_PLANE_MAX_BODY",
    "MOTO_SERVICES",
    "RUNTIME_MAX_BODY",
    "S3_MAX_BODY",
    "Gateway",
    "GatewayHost",
    "NonLoopbackHostError",
    "check_loopback",
    "foreign_request",
    "s3_precheck",
    "s3_xml_body",
    "valid_bucket_name",
]

log = logging.getLogger("catkit.local.gateway")

MB = 1024 * 1024
CONTROL_PLANE_MAX_BODY = 10 * MB
RUNTIME_MAX_BODY = 6 * MB
S3_MAX_BODY = 5 * 1024 * MB  # S3's single-PUT limit is 5 GB (bodies above 8 MB are spooled to disk)
SHUTDOWN_GRACE_S = 10.0  # in-flight requests get this long to finish on stop
_REGION_RE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/,\s]+)/")
_PRESIGNED_REGION_RE = re.compile(r"^[^/]*/\d{8}/([^/]+)/")


_REQUEST_ID_PREFIX = uuid.uuid4().hex[:20]
#: The id's first four groups: the prefix (the counter fills the last group alone).
_REQUEST_ID_HEAD = "-".join((_REQUEST_ID_PREFIX[:8], _REQUEST_ID_PREFIX[8:12], _REQUEST_ID_PREFIX[12:16],
                             _REQUEST_ID_PREFIX[16:20], ""))
_request_numbers = itertools.count()


def new_request_id() -> str:
    """A request id shaped like AWS's (a UUID): a random per-process prefix and a counter (uuid4()
    per request showed up in the gateway's profile)."""
    return f"{_REQUEST_ID_HEAD}{next(_request_numbers) & 0xFFFFFFFFFFFF:012x}"


def _protocols() -> Any:
    import catkit.local.protocols as protocols

    missing = [n for n in ("detect_service", "codec_for", "RawRequest") if not hasattr(protocols, n)]
    if missing:  # the package may expose them from submodules only
        from catkit.local.protocols import detect, raw

        for name, mod in (("detect_service", detect), ("RawRequest", raw), ("RawResponse", raw)):
            if not hasattr(protocols, name):
                setattr(protocols, name, getattr(mod, name))
    return protocols


def _query_dict(request: web.BaseRequest) -> dict[str, str | list[str]]:
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




def _invoke_scope(request: web.BaseRequest, raw_path: str, default_account: str) -> tuple[str, str] | None:
    """(account, region) of a SigV4-signed ``POST /endpoints/NAME/invocations`` (InvokeEndpoint, the
    hot path), else None: what detect_service, _region_of and identity.account_for find."""
    if request.method != "POST":
        return None
    return invoke_scope(raw_path, request.headers, default_account)


_SCOPE_SERVICE_RE = re.compile(r"Credential=[^/,\s]*/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")


def _is_sigv2_s3(request: web.BaseRequest) -> bool:
    """S3 is the only service still signed with SigV2: boto3's default presigned S3 URLs
    (``AWSAccessKeyId``/``Signature``/``Expires`` query) and ``Authorization: AWS AKID:sig``."""
    query = request.query
    if "AWSAccessKeyId" in query and "Signature" in query:
        return True
    return request.headers.get("Authorization", "").startswith("AWS ")


def _is_s3_form_post(request: web.BaseRequest) -> bool:
    """A browser-style S3 upload (boto3's ``generate_presigned_post``): its credential travels in
    the multipart form, and no other AWS API takes multipart/form-data."""
    return request.method == "POST" and request.content_type == "multipart/form-data"


def _limit_for(service: str | None) -> int:
    if service == "s3":
        return S3_MAX_BODY
    if service == "sagemaker-runtime":
        return RUNTIME_MAX_BODY
    return CONTROL_PLANE_MAX_BODY


def _generic_error(request: web.BaseRequest, err: AwsError, request_id: str) -> web.Response:
    """An error for a request whose protocol we don't know: guess it from the request's shape."""
    return _shaped_error(request.headers, request.query, err, request_id)


def _shaped_error(headers: Any, query: Mapping[str, Any], err: AwsError, request_id: str) -> web.Response:
    ctype = headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in ctype or "Action" in query:
        return xml_error(err.code, err.message, err.status, request_id, query_style=True)
    if "X-Amz-Target" in headers or "json" in ctype or "cbor" in ctype:
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
    return xml_error(err.code, err.message, err.status, request_id, query_style=False)


def _refuse_foreign(request: web.BaseRequest, why: str) -> web.Response:
    request_id = new_request_id()
    log.warning("refused %s %s: %s", request.method, request.path, why)
    err = AwsError(
        "AccessDeniedException",
        f"The catkit local backend only answers AWS SDKs on this machine; refused because {why}. "
        "It runs model code for anyone who reaches it, so it does not accept requests from web pages "
        "or other hosts.",
        403,
    )
    return _generic_error(request, err, request_id)


class GatewayHost(MotoHost, Protocol):
    """What the gateway uses of the backend that owns it (:class:`catkit.local.backend.Backend`
    is one): the registered services, where requests run, ``info()`` for ``/_catkit/info``, and
    what the moto proxy needs (the account, the S3 store to make durable)."""

    @property
    def services(self) -> Mapping[str, Any]: ...
    @property
    def region(self) -> str: ...
    @property
    def home(self) -> Path: ...
    def info(self) -> dict[str, Any]: ...
    def scope_services(self, account_id: str, region: str) -> Mapping[str, Any]:
        """The services of one (account, region); AwsError if it cannot be served."""
        ...
    async def reset(self) -> dict[str, Any]: ...


class Gateway:
    """The aiohttp application and server of one backend (handed in as a :class:`GatewayHost`)."""

    def __init__(self, backend: GatewayHost, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        self.host = check_loopback(host)
        self.port = port
        self.moto_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._site: LimitedSite | None = None
        self._limits = HttpLimits()
        self._tracker = Tracker()
        self._catkit_paths = {"/_catkit/health": self._health, "/_catkit/info": self._info,
                              "/_catkit/reset": self._reset, "/moto-api/reset": self._reset}
        self._moto: MotoProxy | None = None
        self._protocols: Any = None
        self._invoke_route: Any = None  # InvokeEndpoint resolved ahead of time (_invoke)
        self.fast_lane = True  # InvokeEndpoint from aiohttp's parsed message (fast_invoke); False: general path

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, moto_url: str | None = None) -> str:
        """Listen; returns the base URL (``http://127.0.0.1:PORT``). S3/STS/IAM are served
        in-process (``moto_url`` is ignored: moto no longer listens on a port of its own)."""
        self._moto = MotoProxy(self.backend)
        try:
            self._protocols = _protocols()
            self._invoke_route = self._protocols.codec_for("sagemaker-runtime").known_route("InvokeEndpoint")
        except ImportError as exc:
            log.warning("protocol codecs unavailable (%s); only s3/sts/iam will be served", exc)
            self._protocols = None
        await asyncio.get_running_loop().run_in_executor(None, self._moto.open)
        self._limits, self._tracker = HttpLimits.from_env(), Tracker()  # slow clients, connection cap
        # aiohttp's low-level server with one handler (:meth:`_serve`): no router, middlewares or
        # Application per request; InvokeEndpoint through the fast lane where this aiohttp has it.
        kwargs: dict[str, Any] = {"access_log": None, "auto_decompress": False, **self._limits.runner_kwargs()}
        server = FastServer(self._serve, gateway=self, **kwargs) if fast_invoke.fast_lane_available() else web.Server(self._serve, **kwargs)
        # auto_decompress off: bodies go through byte-for-byte (S3 gzip objects; codecs gunzip)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        self._site = LimitedSite(self._runner, self.host, self.port, self._limits, self._tracker, reuse_address=True)
        await self._site.start()
        self.port = self._site.bound_port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests briefly, close the port and client."""
        if self._runner is not None:
            if self._site is not None:
                self._site.close_idle()  # no waiting for idle keep-alive or lingering (refused-body) connections
            await self._runner.cleanup()
            self._runner = None
        if self._moto is not None:
            await self._moto.close()
            self._moto = None
        access_log.flush()

    # -- catkit namespace --------------------------------------------------------------------
    async def _health(self, request: web.BaseRequest) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def _info(self, request: web.BaseRequest) -> web.Response:
        return web.json_response(self.backend.info())

    async def _reset(self, request: web.BaseRequest) -> web.Response:
        """``POST``: forget all state (answers ``{"status": "ok", ...}`` like moto's reset)."""
        if request.method != "POST":
            return web.json_response({"Error": "Need to POST to reset"}, status=400)  # moto's answer
        await request.read()
        answer = await self.backend.reset()
        if access_log.enabled():
            access_log.write(f'{request.remote} "POST {request.path}" reset 200')
        return web.json_response(answer)

    # -- main handler ------------------------------------------------------------------------
    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        """Every request: counted for the connection cap (:class:`Tracker`), refused with 403 when
        a browser sent it (:mod:`catkit.local.request_guard`), then catkit's own paths or an AWS API
        (:meth:`_route`; written to the access log)."""
        proto = request.protocol
        self._tracker.enter(proto)
        try:
            why = foreign_request(request.headers)
            if why is not None:
                return _refuse_foreign(request, why)
            if request.raw_path.startswith(("/_catkit/", "/moto-api/")):
                own = self._catkit_paths.get(request.path)
                if own is not None:
                    return await own(request)
            started = time.perf_counter()
            request_id = new_request_id()
            try:
                response, service, operation = await self._route(request, request_id)
            except Exception:  # last resort: never leak a stack trace
                response, service, operation = self._last_resort(request.headers, request.query, request.method,
                                                                       request.path, request_id), None, None
            if access_log.enabled():
                access_log.write_request(request.remote, request.method, request.raw_path, service, operation,
                                         response.status, started)
            return response
        finally:
            self._tracker.leave(proto)

    @property  # -- the fast lane (catkit.local.fast_invoke)
    def tracker(self) -> Tracker:
        return self._tracker

    def fast_prepare(self, raw_path: str, headers: Any, size: int) -> tuple[Any, tuple[str, str]] | None:
        """(service, (account, region)) when the general path would hand this complete ``POST`` of
        ``size`` body bytes to :meth:`_invoke_raw` (not refused, no query, scope and service found), else None."""
        if not self.fast_lane or self._invoke_route is None or "?" in raw_path or size > RUNTIME_MAX_BODY:
            return None
        if foreign_request(headers) is not None:
            return None
        scope = invoke_scope(raw_path, headers, self.backend.account_id)
        if scope is None or "sagemaker-runtime" not in self.backend.services:
            return None
        try:
            svc = self.backend.scope_services(*scope).get("sagemaker-runtime")
        except AwsError:
            return None
        return None if svc is None else (svc, scope)

    def fast_invoke(self, svc: Any, raw_path: str, headers: Any, scope: tuple[str, str], body: bytes,
                    remote: str) -> Awaitable[tuple[int, Mapping[str, str], bytes, str | None]]:
        """What :meth:`_serve` answers a request :meth:`fast_prepare` accepted: (status, headers, body,
        operation), access-logged; :meth:`_invoke_raw`'s coroutine itself (one coroutine frame less)."""
        return self._invoke_raw(svc, raw_path, headers, scope, body, new_request_id(), remote)

    @staticmethod
    def _last_resort(headers: Any, query: Mapping[str, Any], method: str, path: str, request_id: str) -> web.Response:
        log.error("request %s %s failed [%s]:\n%s", method, path, request_id, traceback.format_exc())
        err = AwsError("InternalFailure", f"The request processing has failed (request id {request_id}).", 500)
        return _shaped_error(headers, query, err, request_id)

    async def _route(
        self, request: web.BaseRequest, request_id: str
    ) -> tuple[web.StreamResponse, str | None, str | None]:
        raw_path, has_query, _ = request.raw_path.partition("?")
        query = _query_dict(request) if has_query else {}
        scope = (None if has_query or self._invoke_route is None
                 else _invoke_scope(request, raw_path, self.backend.account_id))
        raw = (  # InvokeEndpoint (scope found) needs no copy of the request: see _invoke_raw
            self._protocols.RawRequest(request.method, raw_path, query, request.headers, b"")
            if self._protocols is not None and scope is None
            else None
        )
        service = "sagemaker-runtime" if scope is not None else self._detect(request, raw)
        limit = _limit_for(service)
        try:
            if service in MOTO_SERVICES:  # large S3 uploads are spooled to disk, not held in memory
                spooled = await spool_body(request, limit, self.backend.home / "s3" / ".incoming", self._limits)
                assert self._moto is not None, "Gateway.start() was not called"
                return (await self._moto.forward(request, service, raw_path, query, spooled, request_id),
                        service, None)
            def too_large(size: int | None) -> BodyTooLarge:
                return BodyTooLarge(size, limit)

            body = ready_body(request, limit, too_large)  # all arrived (a small request): no coroutine
            if body is None:
                body = await read_limited(request, self._limits, limit, too_large)
        except BodyTooLarge as exc:
            return self._too_large(request, service, exc, request_id), service, None
        except BodyTimeout:  # a trickled body (catkit.serving.http_limits): answered, connection closed
            return self._body_timeout(request, service, request_id), service, None

        if service and service in self.backend.services and self._protocols is not None:
            if scope is not None:
                account, region = scope
            else:
                region = _region_of(request.headers, query, self.backend.region)
                account = identity.account_for(request.headers, query, self.backend.account_id)
            try:
                svc = self.backend.scope_services(account, region).get(service)
            except AwsError as err:
                return self._scope_error(request, service, raw, err, request_id), service, None
        else:
            svc = None
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
        if scope is not None:
            status, out_headers, out_body, operation = await self._invoke_raw(svc, raw_path, request.headers, scope,
                                                                              body, request_id)
            return web.Response(status=status, headers=out_headers, body=out_body), service, operation
        raw.body = body
        return await self._dispatch(request, service, svc, raw, (account, region), body, request_id)

    def _scope_error(self, request: web.BaseRequest, service: str, raw: Any, err: AwsError,
                     request_id: str) -> web.Response:
        try:
            codec = self._protocols.codec_for(service, raw)
            return self._to_web(codec.serialize_error(None, err, request_id=request_id), request_id)
        except Exception:
            return _generic_error(request, err, request_id)

    def _detect(self, request: web.BaseRequest, raw: Any) -> str | None:
        service = None
        if raw is not None:
            service = self._protocols.detect_service(raw)
        else:
            match = _SCOPE_SERVICE_RE.search(request.headers.get("Authorization", ""))
            service = match.group(1) if match else None
        if service is None and (_is_sigv2_s3(request) or _is_s3_form_post(request)):
            service = "s3"
        return service

    def _too_large(
        self, request: web.BaseRequest, service: str | None, exc: BodyTooLarge, request_id: str
    ) -> web.Response:
        size = f"{exc.size} bytes" if exc.size is not None else "more than the limit"
        limit_mb = exc.limit / MB
        if service == "s3":
            return xml_error(
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

    def _body_timeout(self, request: web.BaseRequest, service: str | None, request_id: str) -> web.Response:
        # S3's RequestTimeout (400) text; other services: 408 with the same code (ASSUMPTION: AWS's
        # front ends close such connections; no documented error shape for them).
        err = AwsError("RequestTimeout", "Your socket connection to the server was not read from or written to "
                       "within the timeout period. Idle connections will be closed.", 400 if service == "s3" else 408)
        response = self._error_response(request, service, None, err, request_id)
        response.force_close()
        return response

    def _error_response(
        self, request: web.BaseRequest, service: str | None, operation: str | None, err: AwsError, request_id: str
    ) -> web.Response:
        if service in MOTO_SERVICES:
            return xml_error(err.code, err.message, err.status, request_id, query_style=service != "s3")
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
        return web.Response(status=raw_response.status, headers=Gateway._web_headers(raw_response, request_id),
                            body=raw_response.body)

    @staticmethod
    def _web_headers(raw_response: Any, request_id: str) -> dict[str, str]:
        headers = raw_response.headers  # the codec's own new dict: adjusted in place
        if "x-amzn-RequestId" not in headers and not any(k.lower() == "x-amzn-requestid" for k in headers):
            headers["x-amzn-RequestId"] = request_id
        if "Content-Length" in headers or "content-length" in headers:
            headers.pop("Content-Length", None)
            headers.pop("content-length", None)
        return headers

    async def _invoke_raw(self, svc: Any, raw_path: str, headers: Any, scope: tuple[str, str], body: bytes,
                          request_id: str, remote: str | None = None) -> tuple[int, Any, bytes, str | None]:
        """InvokeEndpoint, the hot path: the codec's pre-resolved route (no service detection, route
        matching or copy of the request), the service's method called directly; the same params,
        validation, errors and response bytes as :meth:`_dispatch` gives: (status, headers as :meth:`_to_web`
        leaves them, body, operation); with ``remote`` (fast lane) also _serve's last resort and access log."""
        started = time.perf_counter()
        route = self._invoke_route
        operation = route.name
        try:
            lookup = getattr(svc, "operation_method", None)  # a BaseService; else dispatch() alone
            method = lookup(operation) if lookup is not None else None
            try:
                params = route.parse((fast_invoke.endpoint_name(raw_path),), headers, body)
                ctx = RequestContext(region=scope[1], account_id=scope[0], request_id=request_id,
                                     service="sagemaker-runtime", headers=headers)
                result = method(params, ctx) if method is not None else svc.dispatch(operation, params, ctx)
                if result is not None and not isinstance(result, dict):  # as BaseService.dispatch: sync or async
                    result = await result
                raw_response = route.serialize(result, request_id)
                answer = raw_response.status, raw_response.headers, raw_response.body, operation  # as _to_web's
            except AwsError as err:
                raw_response = route.codec.serialize_error(operation, err, request_id=request_id)
                answer = raw_response.status, self._web_headers(raw_response, request_id), raw_response.body, operation
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raw_response = self._internal_failure(route.codec, "sagemaker-runtime", operation, exc, request_id)
                answer = raw_response.status, self._web_headers(raw_response, request_id), raw_response.body, operation
        except Exception:
            if remote is None:  # the general path: _serve's own last resort
                raise
            response = self._last_resort(headers, {}, "POST", raw_path, request_id)
            answer = response.status, response.headers, response.body, None  # type: ignore[assignment]
        if remote is not None and access_log.enabled():
            status, operation = answer[0], answer[3]
            access_log.write_request(remote, "POST", raw_path, operation and "sagemaker-runtime", operation, status, started)
        return answer

    def _internal_failure(self, codec: Any, service: str, operation: str | None, exc: Exception,
                          request_id: str) -> Any:
        """InternalFailure (500) for an unexpected exception: the traceback goes to the log only."""
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
        return codec.serialize_error(operation, err, request_id=request_id)

    async def _dispatch(
        self,
        request: web.BaseRequest,
        service: str,
        svc: Any,
        raw: Any,
        scope: tuple[str, str],
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
                region=scope[1],
                account_id=scope[0],
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
            raw_response = self._internal_failure(codec, service, operation, exc, request_id)
        return self._to_web(raw_response, request_id), service, operation
