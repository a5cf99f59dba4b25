"""Requests that changed moto's state, kept so that a restart applies them again.

moto keeps S3 bucket settings and IAM in memory. Rather than copying each of moto's many internal
structures, the local backend keeps the *requests* that set them and replays them through moto's
own application at start-up (:func:`replay`), so whatever moto does with a request is restored:

- S3 bucket settings (:func:`bucket_setting`): versioning, policy, tagging, CORS, lifecycle,
  encryption, public access block, ownership controls, ACL, website, logging, notification,
  accelerate, request payment, object lock, replication and the id'd analytics, inventory,
  metrics and intelligent-tiering configurations. The latest PUT of each is kept in the
  bucket's ``bucket.json`` (:mod:`catkit.local.storage.s3`); a DELETE drops it.
- IAM (:class:`IamJournal`): every IAM request that changes something (roles, their trust and
  inline policies, attached policies, managed policies, users, groups, instance profiles...), in
  order, in the state store (kind ``iam-journal``), durable before the client is answered.
  ASSUMPTION: ids moto generates (RoleId, access keys of CreateAccessKey) are new after a
  restart; names and ARNs are the same.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("catkit.local.storage.s3")

__all__ = ["BUCKET_SETTINGS", "IamJournal", "bucket_setting", "is_iam_write", "replay", "saved_request"]

#: Bucket sub-resources whose PUT/DELETE changes a setting moto keeps per bucket.
BUCKET_SETTINGS = frozenset({
    "versioning", "policy", "tagging", "cors", "lifecycle", "encryption", "publicAccessBlock",
    "ownershipControls", "acl", "website", "logging", "notification", "accelerate", "requestPayment",
    "object-lock", "replication", "intelligent-tiering", "analytics", "inventory", "metrics",
})
_WITH_ID = frozenset({"intelligent-tiering", "analytics", "inventory", "metrics"})
_KEPT_HEADERS = ("content-type", "content-md5")
_IAM_READS = ("Get", "List", "Simulate", "Generate")
_APPS: dict[str, Any] = {}
_APPS_LOCK = threading.Lock()


def bucket_setting(method: str, key: str | None, query: Mapping[str, Any]) -> str | None:
    """The name of the bucket setting a request changes (``cors``, ``metrics:<id>``...), or None."""
    if key is not None or method not in ("PUT", "DELETE"):
        return None
    for name in BUCKET_SETTINGS:
        if name in query:
            ident = query.get("id")
            ident = ident[0] if isinstance(ident, list) else ident
            return f"{name}:{ident}" if name in _WITH_ID and ident else name
    return None


def saved_request(method: str, path: str, query_string: str, headers: Iterable[tuple[str, str]],
                  body: bytes) -> dict[str, Any]:
    """A request as kept for replay: path-style, only the headers moto reads for settings."""
    kept = [(k, v) for k, v in headers if k.lower() in _KEPT_HEADERS or (k.lower().startswith("x-amz-")
            and k.lower() not in ("x-amz-date", "x-amz-security-token"))]
    return {"method": method, "path": path, "query": query_string, "headers": kept,
            "body": base64.b64encode(body).decode()}


def _app(service: str) -> Any:
    with _APPS_LOCK:
        app = _APPS.get(service)
        if app is None:
            from moto.moto_server import werkzeug_app

            app = _APPS[service] = werkzeug_app.create_backend_app(service)
        return app


def replay(service: str, saved: Mapping[str, Any], account: str, region: str) -> int:
    """Apply a saved request to moto again (blocking); returns moto's status."""
    from werkzeug.test import EnvironBuilder

    from catkit.local.wsgi_bridge import call_wsgi

    headers = [*saved.get("headers", []), ("x-moto-account-id", account), ("Host", "localhost"),
               ("Authorization", f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{region}/"
                                 f"{service}/aws4_request, SignedHeaders=host, Signature=0")]
    builder = EnvironBuilder(path=saved["path"], method=saved["method"], query_string=saved.get("query") or None,
                             headers=headers, data=base64.b64decode(saved.get("body") or ""))
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    status, _headers, payload = call_wsgi(_app(service), environ)
    if status >= 300:
        log.warning("replaying %s %s %s?%s answered %s: %s", service, saved["method"], saved["path"],
                    saved.get("query"), status, payload[:300])
    return status


def is_iam_write(method: str, query: Mapping[str, Any], body: bytes) -> bool:
    """True for an IAM request that changes something (its Action is not Get*/List*/...)."""
    action = query.get("Action")
    if action is None and body:
        action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or [None])[0]
    action = action[0] if isinstance(action, list) else action
    return bool(action) and not str(action).startswith(_IAM_READS)


class IamJournal:
    """IAM's changing requests in order, in the state store; :meth:`replay` at start-up."""

    KIND = "iam-journal"

    def __init__(self, state: Any) -> None:
        self.state = state
        self._lock = threading.Lock()
        rows = state.list(self.KIND) if state is not None else []
        self._next = int(rows[-1][0]) + 1 if rows else 0

    def record(self, saved: dict[str, Any], account: str, region: str) -> None:
        """Keep one IAM request (durable once this returns)."""
        with self._lock:
            seq, self._next = self._next, self._next + 1
            self.state.put(self.KIND, f"{seq:012d}", {**saved, "account": account, "region": region})

    def replay(self) -> int:
        """Apply every kept IAM request again, in order; returns how many."""
        rows = self.state.list(self.KIND) if self.state is not None else []
        for _seq, doc in rows:
            try:
                replay("iam", doc, str(doc.get("account")), str(doc.get("region") or "us-east-1"))
            except Exception:
                log.exception("could not replay IAM request %s", doc.get("body", "")[:200])
        return len(rows)
