"""The gateway's fast lane for InvokeEndpoint: answered from aiohttp's parsed message, no request objects.

aiohttp's low-level server turns each request into a Task, a ``BaseRequest``, a ``StreamWriter`` and
a ``Response`` whose headers are prepared and written through several coroutines: about a third of
the backend's CPU per InvokeEndpoint at one client (benchmarks/gateway.py). :class:`FastInvokeHandler`
is aiohttp's own connection handler (``RequestHandler``: the same C parser - llhttp -, keep-alive,
limits, shutdown and error answers) with one shortcut: when a read yields exactly one complete,
keep-alive HTTP/1.1 ``POST /endpoints/NAME/invocations`` that the gateway accepts as a SigV4
InvokeEndpoint it can serve (:meth:`FastGateway.fast_prepare`: not refused, scope and service found),
the gateway's own InvokeEndpoint code runs straight from the parsed message and the answer goes out
in one ``transport.write``, its bytes made by :func:`response_bytes` by aiohttp's rules for a
``web.Response`` (tests/local/gateway/test_fast_invoke.py compares the two byte for byte).
Everything else - other requests, pipelined or partial ones, ``Expect``, ``Connection: close``,
refused or oversized ones, parse errors - is handed to aiohttp unchanged, as if the shortcut were
not there. No HTTP is parsed here: aiohttp's parser does it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from catkit.local import identity

try:  # aiohttp's own writer rules (response_bytes); private names, so checked by fast_lane_available
    from aiohttp.helpers import must_be_empty_body, rfc822_formatted_time
    from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
    from aiohttp.http_writer import _serialize_headers
    from aiohttp.web_response import REASON_PHRASES
    _WRITER_NAMES = True
except ImportError:  # pragma: no cover - another aiohttp layout: the fast lane stays off
    _WRITER_NAMES = False

log = logging.getLogger("catkit.local.gateway")

#: The aiohttp releases the fast lane was written and tested against (tests/local/gateway/
#: test_fast_invoke.py compares its answers byte for byte with aiohttp's). It drives
#: ``RequestHandler``'s private state, which aiohttp reorganises between minor releases (3.10-3.13 name
#: the parser ``_request_parser``): with any other release the gateway serves every request through
#: aiohttp's public path alone, with the same answers and more CPU per InvokeEndpoint.
TESTED_AIOHTTP = ((3, 14), (3, 15))
#: The handler state the fast lane reads and writes (:meth:`FastInvokeHandler.data_received`,
#: :meth:`FastInvokeHandler._fast_done`).
_HANDLER_STATE = (
    "_parser", "_waiter", "_force_close", "_close", "_messages", "_payload_parser", "_upgraded",
    "_buffer_paused", "_request_count", "_manager", "_request_in_progress", "_handler_waiter", "_keepalive",
    "_keepalive_timeout", "_next_keepalive_close_time", "_keepalive_handle", "_process_keepalive",
    "_drain_helper", "_paused", "_loop", "force_close", "transport",
)


def fast_lane_available(version: str = aiohttp.__version__) -> bool:
    """Whether this aiohttp is one the fast lane knows: a tested release (:data:`TESTED_AIOHTTP`)
    whose ``RequestHandler`` has every piece of state the lane uses."""
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    low, high = TESTED_AIOHTTP
    return _WRITER_NAMES and low <= release < high and all(hasattr(RequestHandler, n) for n in _HANDLER_STATE)

_CREDENTIAL_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_INVOKE_PREFIX, _INVOKE_SUFFIX = "/endpoints/", "/invocations"
_HELD_MAX = 256 * 1024  # pipelined bytes held behind a fast request before reading pauses


def endpoint_name(raw_path: str) -> str:
    """``NAME`` of a ``/endpoints/NAME/invocations`` path :func:`invoke_scope` accepted."""
    return raw_path[len(_INVOKE_PREFIX):-len(_INVOKE_SUFFIX)]


def invoke_scope(raw_path: str, headers: Any, default_account: str) -> tuple[str, str] | None:
    """:func:`_invoke_scope` of a POST, from one look at the Authorization header instead of three."""
    if (not raw_path.startswith(_INVOKE_PREFIX) or not raw_path.endswith(_INVOKE_SUFFIX)
            or raw_path.count("/") != 3 or len(raw_path) <= len(_INVOKE_PREFIX) + len(_INVOKE_SUFFIX)):
        return None
    auth = headers.get("Authorization", "")
    # The credential scope is the same text on every request of a client (until the date changes):
    # (key, region) is kept by the header's first comma-separated part when the scope lies within
    # it (the leftmost match of the whole header is then that part's, as no match spans a comma).
    first = auth.partition(",")[0]
    found = _invoke_scopes.get(first)
    if found is None:
        match = _CREDENTIAL_SCOPE_RE.search(auth)
        if match is None or match.group(3).lower() != "sagemaker":
            return None
        found = match.group(1), match.group(2)
        if match.end() <= len(first):
            if len(_invoke_scopes) >= 1024:
                _invoke_scopes.clear()
            _invoke_scopes[first] = found
    return identity.account_for_key(found[0], default_account), found[1]


#: _invoke_scope's (access key, region) of SigV4 runtime requests by the Authorization header's
#: first comma-separated part (bounded).
_invoke_scopes: dict[str, tuple[str, str]] = {}


class FastGateway(Protocol):
    """What the fast lane needs of :class:`catkit.local.gateway.Gateway`."""

    def fast_prepare(self, raw_path: str, headers: Any, size: int) -> tuple[Any, tuple[str, str]] | None:
        """(service, (account, region)) of an InvokeEndpoint the gateway would serve, else None."""
        ...

    def fast_invoke(self, svc: Any, raw_path: str, headers: Any, scope: tuple[str, str], body: bytes,
                    remote: str) -> Awaitable[tuple[int, Mapping[str, str], bytes, str | None]]:
        """Serve it as the general path would (errors, metrics, access log): (status, headers, body,
        operation)."""
        ...

    @property
    def tracker(self) -> Any: ...


def response_bytes(status: int, headers: Mapping[str, str], body: bytes) -> bytes:
    """What aiohttp writes for ``web.Response(status=status, headers=headers, body=body)`` answering a
    keep-alive HTTP/1.1 POST (``Response._start`` and ``StreamResponse._prepare_headers``): the given
    headers in order, then Content-Length, a default Content-Type, Date and Server; ValueError for a
    header with a control character other than tab (as aiohttp's serializer). ``headers`` holds no
    Content-Length. The head is joined and checked as one string (aiohttp's serializer looks at each
    character in turn: ~1 % of the backend's instructions per InvokeEndpoint)."""
    if must_be_empty_body("POST", status):
        return _empty_response_bytes(status, headers)
    keys = tuple(headers)
    names = _header_names.get(keys)
    if names is None:
        if len(_header_names) >= 256:
            _header_names.clear()
        lower = {k.lower() for k in keys}
        names = _header_names[keys] = ("content-type" in lower, "date" in lower, "server" in lower)
    has_type, has_date, has_server = names
    lines = [*map(": ".join, headers.items()), f"Content-Length: {len(body)}"]
    if body and not has_type:
        lines.append("Content-Type: application/octet-stream")
    if not has_date:
        lines.append("Date: " + rfc822_formatted_time())
    if not has_server:
        lines.append(_SERVER_LINE)
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\r") != breaks or text.count("\n") != breaks or _FORBIDDEN_HEADER_CHARS.search(text):
        raise ValueError("Forbidden control character detected in headers. Potential header injection attack.")
    line = _status_lines.get(status)
    if line is None:
        line = _status_lines[status] = f"HTTP/1.1 {status} {REASON_PHRASES.get(status, '')}\r\n"
    return (line + text + "\r\n\r\n").encode("utf-8") + body


def _empty_response_bytes(status: int, headers: Mapping[str, str]) -> bytes:
    """:func:`response_bytes` of a status whose answer has no body (1xx/204/304): aiohttp drops the
    body, Content-Length and Transfer-Encoding."""
    out = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
    names = {k.lower() for k in out}
    if "date" not in names:
        out["Date"] = rfc822_formatted_time()
    if "server" not in names:
        out["Server"] = SERVER_SOFTWARE
    return _serialize_headers(f"HTTP/1.1 {status} {REASON_PHRASES.get(status, '')}", out)


#: What aiohttp's serializer refuses besides CR and LF (counted apart: the head's own line breaks).
_FORBIDDEN_HEADER_CHARS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
#: (has Content-Type, has Date, has Server) by the response's header names (bounded).
_header_names: dict[tuple[str, ...], tuple[bool, bool, bool]] = {}
_status_lines: dict[int, str] = {}  # status -> "HTTP/1.1 STATUS REASON\r\n"
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}" if _WRITER_NAMES else ""


class _Parsed:
    """Stands in for the parser while aiohttp's ``data_received`` takes what was parsed already."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def feed_data(self, data: bytes) -> Any:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


class FastInvokeHandler(RequestHandler):
    """aiohttp's connection handler with the InvokeEndpoint shortcut (see the module docstring)."""

    __slots__ = ("_fast_busy", "_gw", "_held", "_held_paused", "_held_size", "_remote")

    def __init__(self, manager: Any, gateway: FastGateway, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._gw = gateway
        self._fast_busy = False  # a fast request is being served: later bytes wait in ``_held``
        self._held: list[bytes] = []
        self._held_size = 0
        self._held_paused = False  # reading paused by this class (too much held)
        self._remote: str | None = None

    def data_received(self, data: bytes) -> None:
        if self._fast_busy:  # pipelined behind the request being served: parsed after its answer
            if not data:  # aiohttp's "parse what is buffered" (resume_reading): nothing is
                return
            self._held.append(data)
            self._held_size += len(data)
            if self._held_size > _HELD_MAX and not self._held_paused and self.transport is not None:
                self._held_paused = True
                self.transport.pause_reading()
            return
        parser, waiter = self._parser, self._waiter
        if (not data or parser is None or waiter is None or waiter.done() or self._force_close or self._close or self._messages
                or self._payload_parser is not None or self._upgraded or self._buffer_paused):
            super().data_received(data)  # not idle between requests: aiohttp's way
            return
        try:
            result = parser.feed_data(data)
        except HttpProcessingError as exc:
            self._replay(exc)
            return
        messages, upgraded, _tail = result
        if len(messages) != 1 or upgraded or not self._try_fast(*messages[0]):
            self._replay(result)

    def _replay(self, result: Any) -> None:
        """aiohttp's ``data_received`` for what the parser gave (or raised)."""
        parser = self._parser
        self._parser = _Parsed(result)  # type: ignore[assignment]
        try:
            super().data_received(b"")
        finally:
            if isinstance(self._parser, _Parsed):
                self._parser = parser

    def _try_fast(self, msg: Any, payload: Any) -> bool:
        path = msg.path
        if (msg.method != "POST" or not path.startswith(_INVOKE_PREFIX) or not path.endswith(_INVOKE_SUFFIX)
                or msg.version != HttpVersion11 or msg.should_close or msg.upgrade or not payload.is_eof()
                or "Expect" in msg.headers):
            return False
        found = self._gw.fast_prepare(path, msg.headers, getattr(payload, "total_bytes", 0))
        if found is None:
            return False
        self._fast_busy = self._request_in_progress = True  # first: reading resumes the parser (no need)
        body = payload.read_nowait(-1)
        if self._parser is not None:
            self._parser.message_consumed()
        self._request_count += 1
        self._manager.requests_count += 1  # type: ignore[union-attr]
        self._gw.tracker.enter(self)
        if self._remote is None:
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            self._remote = str(peer[0]) if isinstance(peer, list | tuple) else str(peer)
        # A Task, not a hand-driven coroutine: on Python >= 3.12 asyncio.wait_for (the multi-model load
        # wait) needs a current task.
        self._loop.create_task(self._serve_fast(found[0], path, msg.headers, found[1], body))
        return True

    async def _serve_fast(self, svc: Any, path: str, headers: Any, scope: tuple[str, str], body: bytes) -> None:
        try:
            status, out_headers, out_body, _ = await self._gw.fast_invoke(svc, path, headers, scope, body,
                                                                          self._remote or "")
            transport = self.transport
            if transport is not None:
                try:
                    data = response_bytes(status, out_headers, out_body)
                except ValueError:  # a header aiohttp cannot send: it logs and closes the connection too
                    log.exception("unsendable response header")
                    self.force_close()
                else:
                    transport.write(data)
                    if self._paused:  # a slow reader: wait as aiohttp's writer does
                        await self._drain_helper()
        except ConnectionError:
            self.force_close()
        except Exception:
            log.exception("fast InvokeEndpoint failed")
            self.force_close()
        finally:
            self._gw.tracker.leave(self)
            self._fast_done()

    def _fast_done(self) -> None:
        """What aiohttp's ``start()`` does after answering a request, then the held bytes."""
        self._fast_busy = self._request_in_progress = False
        if self._handler_waiter is not None:  # shutdown() waits for the request in progress
            self._handler_waiter.set_result(None)
        if self._force_close or self._close or self.transport is None:
            if self._waiter is not None:
                self._waiter.cancel()  # start() ends
            if self.transport is not None and not self._force_close:
                self.transport.close()
            return
        self._keepalive = True
        close_time = self._loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = self._loop.call_at(close_time, self._process_keepalive)
        if self._held:
            held, self._held, self._held_size = b"".join(self._held), [], 0
            if self._held_paused:
                self._held_paused = False
                self.transport.resume_reading()
            self.data_received(held)

    def _process_keepalive(self) -> None:
        if self._fast_busy:  # not idle: the keep-alive timer restarts when the request is answered
            self._keepalive_handle = None
            return
        super()._process_keepalive()


class FastServer(web.Server):
    """``web.Server`` whose connections are :class:`FastInvokeHandler` s of ``gateway``."""

    def __init__(self, handler: Any, *, gateway: FastGateway, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gateway = gateway

    def __call__(self) -> RequestHandler:
        return FastInvokeHandler(self, self._gateway, loop=self._loop, **self._kwargs)


__all__ = ["TESTED_AIOHTTP", "FastGateway", "FastInvokeHandler", "FastServer", "endpoint_name", "fast_lane_available",
           "invoke_scope", "response_bytes"]
