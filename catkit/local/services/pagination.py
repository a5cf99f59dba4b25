"""NextToken values of the local AWS services: an opaque position bound to the request that made it.

One codec for every service: a token is URL-safe base64 of ``{"o": position, "f": fingerprint}``,
where the position is any JSON value (an offset, ``[result, point]``, an activity id) and the
fingerprint identifies the request's parameters (:func:`request_fingerprint`), so a token is
refused when replayed against a different request. Each service keeps its own AWS error for a bad
token: it passes ``invalid``, a function returning the exception to raise. No catkit imports.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def request_fingerprint(*parts: Any) -> str:
    """A short stable digest of request parameters (JSON-encoded; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_next_token(response: dict[str, Any], token: str | None) -> dict[str, Any]:
    """A List*/Describe* ``response`` with ``NextToken`` added when there is a next page."""
    if token:
        response["NextToken"] = token
    return response


def encode_token(position: Any, fingerprint: str = "") -> str:
    """The NextToken for ``position`` (a JSON value) in the listing identified by ``fingerprint``."""
    raw = json.dumps({"o": position, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str, fingerprint: str, invalid: Callable[[], Exception]) -> Any:
    """The position in ``token``; raises ``invalid()`` if the token is malformed or was issued for
    another fingerprint."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        if doc["f"] != fingerprint:
            raise ValueError("token from another request")
        return doc["o"]
    except Exception:
        raise invalid() from None


def decode_offset(token: str, fingerprint: str, invalid: Callable[[], Exception]) -> int:
    """:func:`decode_token` for an offset: a non-negative integer, else ``invalid()``."""
    offset = decode_token(token, fingerprint, invalid)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise invalid()
    return offset


def offset_page(
    items: Sequence[T],
    token: str | None,
    size: int,
    fingerprint: str,
    invalid: Callable[[], Exception],
) -> tuple[list[T], str | None]:
    """One page of ``items`` from the offset in ``token`` (the start when None), and the NextToken
    of the following page (None on the last page)."""
    start = decode_offset(token, fingerprint, invalid) if token else 0
    page = list(items[start : start + size])
    more = start + size < len(items)
    return page, (encode_token(start + size, fingerprint) if more else None)
