"""The embedded moto server behind the gateway: S3, STS and IAM requests forwarded verbatim.

Owns what the gateway does for the services moto emulates (:data:`MOTO_SERVICES`):

- checks S3 makes and moto does not (:func:`s3_precheck`: bucket names, malformed XML bodies);
- STS GetCallerIdentity answered as the SageMaker execution role, and IAM SimulatePrincipalPolicy
  for that role (``catkit.local.identity``);
- forwarding (method, path, query, headers, body) to moto, without hop-by-hop headers
  (:class:`MotoProxy`), naming the request's account (``x-moto-account-id``, from its access key:
  :func:`catkit.local.identity.account_for`); moto's own failures become AWS-shaped 500s, the
  details go to the log;
- making mutating S3 requests durable (``catkit.local.storage.s3``) before the client gets the
  answer, undoing them when the disk refuses;
- the XML error envelopes of S3 and the query protocols (:func:`xml_error`).

Logs under ``catkit.local.gateway``: this is the gateway's forwarding half.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any, Protocol
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from catkit.local import identity
from catkit.local.errors import AwsError
from catkit.local.storage.s3 import split_s3_target

if TYPE_CHECKING:
    from catkit.local.storage.s3 import LocalS3

__all__ = ["MOTO_SERVICES", "MotoHost", "MotoProxy", "s3_precheck", "s3_xml_body", "valid_bucket_name", "xml_error"]

log = logging.getLogger("catkit.local.gateway")

MOTO_SERVICES = frozenset({"s3", "sts", "iam"})

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


def s3_xml_body(method: str, host: str, raw_path: str, query: dict[str, Any], body: bytes) -> bool:
    """True if this S3 request carries an XML document (configuration, Delete, CompleteMultipartUpload)."""
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
    bucket, key = split_s3_target(host, raw_path)
    if method == "PUT" and bucket and key is None and not query and not valid_bucket_name(bucket):
        return AwsError("InvalidBucketName", "The specified bucket is not valid.", 400)
    if method in ("PUT", "POST") and bucket and not body.strip() and (
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
    """Forwards S3/STS/IAM requests to the moto server at ``moto_url`` for ``host``'s backend."""

    def __init__(self, host: MotoHost, moto_url: str) -> None:
        self.host = host
        self.moto_url = moto_url.rstrip("/")
        self._client: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Create the HTTP client (call inside the running event loop)."""
        self._client = aiohttp.ClientSession(
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=64, force_close=False),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def forward(
        self,
        request: web.Request,
        service: str,
        raw_path: str,
        query: dict[str, Any],
        body: bytes,
        request_id: str,
    ) -> web.Response:
        """The answer to ``request`` (its ``body`` already read) for ``service`` (s3, sts or iam)."""
        if raw_path.startswith("/moto-api"):
            return xml_error(
                "AccessDenied",
                "moto's management API (/moto-api...) is not exposed by the catkit gateway; "
                "path-style bucket names starting with 'moto-api' are therefore not supported locally.",
                403,
                request_id,
                query_style=service != "s3",
            )
        account = identity.account_for(request.headers, query, self.host.account_id)
        identity.ensure_account(account)
        answer = None
        if service == "sts":
            answer = identity.answer_get_caller_identity(
                request.method, request.headers, query, body, account, request_id
            )
        elif service == "iam":  # SDK v3 simulates the role's policy; moto lacks the operation
            answer = identity.answer_simulate_principal_policy(
                request.method, query, body, account, request_id
            )
        if answer is not None:
            status, headers, payload = answer
            return web.Response(status=status, headers=headers, body=payload)
        if service == "s3":
            refusal = s3_precheck(request.method, request.headers.get("Host", ""), raw_path, query, body)
            if refusal is not None:
                return xml_error(refusal.code, refusal.message, refusal.status, request_id, query_style=False)
        assert self._client is not None, "MotoProxy.open() was not called"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers.append(("x-moto-account-id", account))
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
        if service == "s3":
            try:
                await self.host.s3.persist_after(
                    request.method, request.headers.get("Host", ""), raw_path, query, status
                )
            except OSError as exc:  # disk full, CATKIT_HOME unwritable: undo, never acknowledge
                log.error("could not persist S3 %s %s: %s", request.method, raw_path, exc)
                await self.host.s3.revert_after(request.headers.get("Host", ""), raw_path)
                return xml_error(
                    "InternalError",
                    f"We encountered an internal error. Please try again. (catkit: the local backend could not "
                    f"write S3 data under {self.host.s3.disk.root}: {exc.strerror or exc}. The request was not "
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
