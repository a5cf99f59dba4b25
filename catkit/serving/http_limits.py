"""Limits on HTTP clients of catkit's aiohttp servers (the local gateway and the model server).

A slow or idle client must not hold a connection for minutes, and many of them must not exhaust
file descriptors. :class:`HttpLimits` holds the numbers and :class:`LimitedSite` applies them:

- **header timeout**: a connection must deliver a complete request head within ``header_timeout``
  seconds of connecting (our timer) and of its previous response (aiohttp's ``keepalive_timeout``,
  which closes a connection whose next request head has not arrived by then), else it is closed;
- **body timeout**: :func:`read_limited` reads a body in at most ``body_timeout`` seconds plus one
  second per ``min_body_rate`` bytes received, so a trickled body ends with :class:`BodyTimeout`;
- **connection cap**: beyond ``max_connections`` open connections a new one is answered
  ``503 Service Unavailable`` and closed;
- **stop**: :meth:`LimitedSite.close_idle` closes every connection with no request being handled,
  so stopping does not wait for aiohttp's lingering read of a refused body (after a 413 it reads
  the rest of the body for up to ``lingering_time``) or for idle keep-alive connections.

Environment (read by :meth:`HttpLimits.from_env`): ``CATKIT_HTTP_HEADER_TIMEOUT_SECONDS``,
``CATKIT_HTTP_BODY_TIMEOUT_SECONDS``, ``CATKIT_HTTP_MAX_CONNECTIONS``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from catkit.serving.unix_socket import bind_unix

_ENV = {
    "header_timeout": "CATKIT_HTTP_HEADER_TIMEOUT_SECONDS",
    "body_timeout": "CATKIT_HTTP_BODY_TIMEOUT_SECONDS",
    "max_connections": "CATKIT_HTTP_MAX_CONNECTIONS",
}
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
         b"Content-Length: 46\r\n\r\nToo many open connections; retry in a moment.\n")


class BodyTimeout(Exception):
    """The client did not send its request body in time."""


@dataclass(frozen=True)
class HttpLimits:
    """Timeouts (seconds) and the connection cap of one server; see the module docstring."""

    header_timeout: float = 20.0
    body_timeout: float = 30.0
    min_body_rate: float = 256 * 1024  # bytes/s a body may additionally take time for
    max_connections: int = 512
    lingering_time: float = 2.0  # aiohttp reads a refused body's rest this long, so the client sees the answer

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **defaults: Any) -> HttpLimits:
        """``defaults`` over the class defaults, then the ``CATKIT_HTTP_*`` variables."""
        env = os.environ if environ is None else environ
        limits = replace(cls(), **defaults)
        for attr, var in _ENV.items():
            raw = env.get(var)
            if not raw:
                continue
            try:
                value = int(raw) if attr == "max_connections" else float(raw)
            except ValueError:
                raise ValueError(f"{var} must be a number, got {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{var} must be > 0, got {raw!r}")
            limits = replace(limits, **{attr: value})
        return limits

    def runner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``web.AppRunner`` (passed on to each connection's handler)."""
        return {"keepalive_timeout": self.header_timeout, "lingering_time": self.lingering_time}


class _Busy(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(_BUSY)  # type: ignore[attr-defined]
        transport.close()


class Tracker:
    """Which connections have a request being handled: add :meth:`middleware` to the application
    (created before the runner) and hand the tracker to :class:`LimitedSite`."""

    def __init__(self) -> None:
        self.in_flight: dict[RequestHandler, int] = {}
        self.started: set[RequestHandler] = set()  # connections that delivered a first request head
        self.served: set[RequestHandler] = set()  # answered at least once (pruned with the site's list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        proto = request.protocol
        self.enter(proto)
        try:
            return await handler(request)
        finally:
            self.leave(proto)

    def enter(self, proto: RequestHandler) -> None:
        """A request head arrived on ``proto`` (a server without middlewares calls this and
        :meth:`leave` around each request itself)."""
        self.started.add(proto)
        self.in_flight[proto] = self.in_flight.get(proto, 0) + 1

    def leave(self, proto: RequestHandler) -> None:
        """The request on ``proto`` has been answered (or failed)."""
        self.served.add(proto)
        left = self.in_flight.get(proto, 1) - 1
        if left > 0:
            self.in_flight[proto] = left
        else:
            self.in_flight.pop(proto, None)


class LimitedSite(web.TCPSite):
    """A ``web.TCPSite`` applying :class:`HttpLimits` (the runner should get ``runner_kwargs()``,
    the application ``tracker.middleware``); with ``unix`` it listens on that Unix socket instead
    (:mod:`catkit.serving.unix_socket`; ``host``/``port`` then only name it)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limits: HttpLimits, tracker: Tracker,
                 unix: str | None = None, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.unix = unix
        self.limits = limits
        self.tracker = tracker
        self.refused = 0
        self._open: dict[RequestHandler, float] = {}  # connections (loop time accepted), pruned lazily

    def _factory(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        if len(self._open) >= self.limits.max_connections:  # forget the closed ones (transport gone);
            # one just accepted has no transport for a loop tick yet: counted for a second
            self._open = {h: t for h, t in self._open.items() if h.transport is not None or now - t < 1.0}
            self.tracker.served.intersection_update(self._open)
            # at the cap, idle keep-alive connections make room (oldest first), as nginx does; only
            # connections busy with a request, or not yet past their first head, refuse a newcomer
            idle = [h for h in self._open if h in self.tracker.served and h not in self.tracker.in_flight]
            for h in idle[: len(self._open) - self.limits.max_connections + 1]:
                h.close()
                del self._open[h]
            if len(self._open) >= self.limits.max_connections:
                self.refused += 1
                return _Busy()
        handler = server()
        self._open[handler] = now
        loop.call_later(self.limits.header_timeout, self._head_deadline, handler)
        return handler

    def _head_deadline(self, handler: RequestHandler) -> None:
        if handler not in self.tracker.started and handler.transport is not None:
            handler.force_close()  # no complete request head in time (idle or trickled)
        self.tracker.started.discard(handler)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        loop = asyncio.get_running_loop()
        if self.unix is not None:
            self._server = await loop.create_unix_server(self._factory, sock=bind_unix(self.unix, self._backlog))
            return
        self._server = await loop.create_server(
            self._factory, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )

    @property
    def bound_port(self) -> int:
        """The port it listens on (after :meth:`start`)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def close_idle(self) -> int:
        """Close every connection with no request being handled; returns how many."""
        server = self._runner.server
        closed = 0
        for conn in server.connections if server is not None else []:
            if conn not in self.tracker.in_flight:
                conn.force_close()
                closed += 1
        return closed


async def limited_chunks(request: web.Request, limits: HttpLimits) -> AsyncIterator[bytes]:
    """The request body's chunks as they arrive; :class:`BodyTimeout` when it arrives slower than
    ``limits`` allow (``body_timeout`` plus one second per ``min_body_rate`` bytes so far)."""
    started = time.monotonic()
    total = 0
    while True:
        allowed = limits.body_timeout + total / limits.min_body_rate - (time.monotonic() - started)
        if allowed <= 0:
            raise BodyTimeout()
        try:
            chunk = await asyncio.wait_for(request.content.readany(), allowed)
        except TimeoutError:
            raise BodyTimeout() from None
        if not chunk:
            return
        total += len(chunk)
        yield chunk


def buffered_body(request: web.BaseRequest, max_bytes: int, too_large: Callable[[int | None], Exception],
                  ) -> bytes | None:
    """The request body if all of it has arrived already (a small request; one join, no timeout
    task), else None; ``too_large(None)`` past ``max_bytes``."""
    content = request.content
    if not content.is_eof():
        return None
    body = content.read_nowait()
    if len(body) > max_bytes:
        raise too_large(None)
    return body


def ready_body(request: web.BaseRequest, max_bytes: int, too_large: Callable[[int | None], Exception],
               ) -> bytes | None:
    """:func:`read_limited`'s answer when it needs no waiting (the whole body has arrived, or its
    declared length is refused), else None."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise too_large(length)
    return buffered_body(request, max_bytes, too_large)


async def read_limited(request: web.Request, limits: HttpLimits, max_bytes: int,
                       too_large: Callable[[int | None], Exception]) -> bytes:
    """The request body, refused with ``too_large(size or None)`` past ``max_bytes`` and with
    :class:`BodyTimeout` when it arrives slower than ``limits`` allow."""
    body = ready_body(request, max_bytes, too_large)
    if body is not None:
        return body
    chunks: list[bytes] = []
    total = 0
    async for chunk in limited_chunks(request, limits):
        total += len(chunk)
        if total > max_bytes:
            raise too_large(None)
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["BodyTimeout", "HttpLimits", "LimitedSite", "Tracker", "buffered_body", "limited_chunks", "read_limited",
           "ready_body"]
