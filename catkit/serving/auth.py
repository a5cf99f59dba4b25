"""Who may talk to a model server: the per-instance token the local backend's gateway sends.

The local backend starts every instance's model server with ``--auth-token-file FILE`` (a fresh
random token per instance, in a 0600 file in the instance's directory). The server then answers a
request only when its :data:`TOKEN_HEADER` carries that token (compared in constant time); anything
else - a direct ``POST /invocations`` to the instance port, ``DELETE /models/<name>`` on a
multi-model instance, a web page's request - gets 403. The gateway sends the token on every call it
makes (invocations, ``/ping`` health checks, the multi-model load/unload API), so an instance is
reachable only through the gateway's guard, metrics and bookkeeping.

``catkit serve`` (a model server the user starts by hand) has no token unless given one.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

TOKEN_HEADER = "X-Catkit-Instance-Token"
TOKEN_FILE_OPTION = "--auth-token-file"

_REFUSED = (
    "Forbidden: this model server belongs to a catkit local endpoint and answers only the catkit "
    f"gateway (missing or wrong {TOKEN_HEADER}). Call the endpoint through the gateway: "
    "sagemaker-runtime InvokeEndpoint."
)


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path`` readable by the owner only (created 0600, never group/world)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The token in ``path``; ValueError if it is missing or empty."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{TOKEN_FILE_OPTION} {path}: cannot read it ({exc.strerror})") from None
    if not token:
        raise ValueError(f"{TOKEN_FILE_OPTION} {path} is empty")
    return token


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the header value with the expected token."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", errors="replace"))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_middleware(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware answering 403 to any request without the right token."""

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not token_matches(token, request.headers.get(TOKEN_HEADER)):
            response = web.Response(status=403, body=_REFUSED.encode("utf-8"),
                                    headers={"Content-Type": "text/plain; charset=utf-8"})
            response.force_close()  # never read (or wait for) the body of a refused request
            return response
        return await handler(request)

    return check_token


__all__ = ["TOKEN_FILE_OPTION", "TOKEN_HEADER", "new_token", "read_token_file", "token_matches",
           "token_middleware", "write_token_file"]
