"""Keep-alive HTTP forwarding from the gateway to instance processes (the InvokeEndpoint hot path).

aiohttp's ClientSession costs ~200-300 us of CPU per request on this path; this protocol-level
client does the same job (one request at a time per pooled keep-alive connection, Content-Length
or chunked responses) in ~80-120 us, which is most of the gateway's added latency budget
(benchmarks/gateway.py). It only ever talks to catkit's own model servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
import urllib.parse
from collections.abc import Mapping

from catkit.serving.unix_socket import socket_address


class ForwardProtocolError(ConnectionError):
    """The instance sent something that is not a valid HTTP/1.1 response."""


_MAX_HEAD = 64 * 1024


class _Conn(asyncio.Protocol):
    """One keep-alive connection to an instance; one outstanding request at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()  # created by loop.create_connection: its loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.closed = False
        self.last_used = 0.0
        self.deadline = 0.0  # loop time the outstanding request times out at
        self.timer: asyncio.TimerHandle | None = None  # armed at or before ``deadline`` (see arm)
        self.timer_at = 0.0  # the deadline the timer was armed for
        self._reset()

    def arm(self, timeout: float) -> None:
        """Time the request just sent out ``timeout`` seconds from now (TimeoutError on its waiter).
        One timer per connection, re-armed lazily: a timer armed for an earlier request that fires
        while a later one is outstanding moves on to the later one's deadline (:meth:`_due`), so
        back-to-back requests cost no timer each (``call_at`` + ``cancel`` per request was ~2 % of
        the gateway's CPU per InvokeEndpoint); a request due sooner than the timer re-arms it."""
        deadline = self.deadline = self.loop.time() + timeout
        if self.timer is None or self.timer_at > deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._due)

    def _due(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # no request outstanding: the next one arms a timer of its own
        if self.deadline <= self.timer_at:  # the outstanding request's own deadline
            waiter.set_exception(TimeoutError())
        else:
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._due)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] | None = None
        self.need = -1  # body bytes expected; -1 = until EOF
        self.chunked = False
        self.close_after = False
        self.chunk_state = "size"
        self.chunk_left = 0
        self.chunks: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing was asked: a broken peer
            self.buf += data
            self._abort(ForwardProtocolError("unsolicited data from the instance"))
            return
        try:
            if self.headers is None and not self.buf:
                # The usual case: a whole small response in one read. Its head is parsed from
                # ``data`` itself and the body sliced from it, with no copies through ``buf``.
                end = data.find(b"\r\n\r\n")
                if end >= 0:
                    self._head(data[:end].decode("latin-1"))
                    if not self.chunked and self.need == len(data) - end - 4:
                        self._finish(data[end + 4:])
                        return
                    data = data[end + 4:]
            self.buf += data
            self._parse()
        except (ValueError, IndexError) as e:
            self._abort(ForwardProtocolError(f"malformed HTTP response from the instance: {e}"))

    def eof_received(self) -> bool:
        self._eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof(exc)

    # parsing
    def _parse(self) -> None:
        if self.headers is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    raise ValueError("response head larger than 64 KiB")
                return
            head = self.buf[:end].decode("latin-1")
            del self.buf[: end + 4]
            self._head(head)
        if self.chunked:
            body = self._parse_chunked()
            if body is not None:
                self._finish(body)
        elif self.need >= 0 and len(self.buf) >= self.need:
            body = bytes(self.buf[: self.need])
            del self.buf[: self.need]
            self._finish(body)

    def _head(self, head: str) -> None:
        """Take in the response head (status line and header lines, without the blank line). An
        instance answers a stream of requests with the same heads (but for Date, once a second):
        what a head says is kept by its text (bounded), and each response gets its own headers dict."""
        known = _heads.get(head)
        if known is None:
            known = _read_head(head)
            if len(_heads) >= 256:
                _heads.clear()
            _heads[head] = known
        self.status, headers, self.chunked, self.need, self.close_after = known
        self.headers = headers.copy()

    def _parse_chunked(self) -> bytes | None:
        while True:
            if self.chunk_state == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return None
                size = int(bytes(self.buf[:i]).split(b";", 1)[0].strip(), 16)
                del self.buf[: i + 2]
                if size == 0:
                    self.chunk_state = "trailer"
                else:
                    self.chunk_state, self.chunk_left = "data", size
            elif self.chunk_state == "data":
                if len(self.buf) < self.chunk_left + 2:
                    return None
                self.chunks.append(bytes(self.buf[: self.chunk_left]))
                del self.buf[: self.chunk_left + 2]
                self.chunk_state = "size"
            else:  # trailer section: lines until an empty one
                i = self.buf.find(b"\r\n")
                if i < 0:
                    return None
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                if not line:
                    return b"".join(self.chunks)

    def _finish(self, body: bytes) -> None:
        waiter, status, headers = self.waiter, self.status, self.headers or {}
        self.waiter = None
        close = self.close_after
        self._reset()
        self.close_after = close
        if waiter is not None and not waiter.done():
            waiter.set_result((status, headers, body))

    def _eof(self, exc: Exception | None = None) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers is not None and not self.chunked and self.need < 0:
            self.close_after = True
            self._finish(bytes(self.buf))  # body delimited by the end of the connection
            return
        self.waiter = None
        waiter.set_exception(
            ConnectionResetError(f"the instance closed the connection{f' ({exc})' if exc else ''}")
        )

    def _abort(self, err: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(err)
        if self.transport is not None:
            self.transport.abort()


def _read_head(head: str) -> tuple[int, dict[str, str], bool, int, bool]:
    """(status, headers with lower-case names, chunked, body bytes expected (-1: until EOF), close
    after) of a response head; ValueError or IndexError when it is malformed."""
    lines = head.split("\r\n")
    version, code = lines[0].split(" ", 2)[:2]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    status = int(code)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    need = -1
    if not chunked:
        length = headers.get("content-length")
        need = int(length) if length is not None else -1
        if status in (204, 304) or status < 200:
            need = 0
    close_after = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
    return status, headers, chunked, need, close_after


#: :func:`_read_head` of the heads seen lately, by their text (bounded).
_heads: dict[str, tuple[int, dict[str, str], bool, int, bool]] = {}


class KeepAlivePool:
    """Pooled keep-alive HTTP/1.1 POSTs to instance processes (loopback only)."""

    #: Idle connections older than this are closed rather than reused (the model server's own
    #: keep-alive timeout is longer, so a reused connection is not closed under our feet).
    idle_seconds = 15.0

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = {}

    async def post(self, host: str, port: int, path: str, headers: Mapping[str, str], body: bytes,
                   timeout: float, unix: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """POST ``body``; returns (status, headers with lower-case names, body). Raises TimeoutError
        after ``timeout`` real seconds, ConnectionError if the instance drops the connection, and
        ValueError for header values that cannot be sent (CR/LF/NUL or non-Latin-1). ``unix``: the
        instance's Unix socket (:func:`catkit.serving.unix_socket.socket_address`), used instead of
        TCP to ``host:port`` when given (the kernel's loopback TCP path costs the backend ~6 us more
        per request); the Host header still names ``host:port``."""
        fields = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
        if fields.count("\r") != len(headers) or fields.count("\n") != len(headers) or "\x00" in fields:
            bad = next(k for k, v in headers.items() if "\r" in v or "\n" in v or "\x00" in v or "\r" in k or "\n" in k)
            raise ValueError(f"header {bad} contains a line break or NUL")
        key = (host, port)
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n{fields}\r\n".encode("latin-1")
        # Time is monotonic() (not loop.time()) and the loop is the connection's own: no
        # get_running_loop() - a getpid() system call each - on a reused connection.
        conn = self._take(key, time.monotonic())
        reused = conn is not None
        while True:
            if conn is None:
                conn = await _connect(host, port, unix)
            loop = conn.loop
            fut: asyncio.Future[tuple[int, dict[str, str], bytes]] = loop.create_future()
            conn.waiter = fut
            assert conn.transport is not None
            if len(body) < 65536:
                conn.transport.write(head + body)
            else:
                conn.transport.writelines((head, body))
            conn.arm(timeout)
            try:
                result = await fut
            except ConnectionResetError:
                conn.waiter = None
                conn.disarm()
                if conn.transport is not None:
                    conn.transport.abort()
                if reused and conn.headers is None:  # a stale keep-alive connection: retry once afresh
                    conn, reused = None, False
                    continue
                raise
            except BaseException:  # timeout, cancellation, protocol error: the connection is unusable
                conn.waiter = None
                conn.disarm()
                if conn.transport is not None:
                    conn.transport.abort()
                raise
            if conn.close_after or conn.closed or conn.buf or conn.transport.is_closing():
                conn.disarm()
                conn.transport.close()
            else:
                conn.last_used = time.monotonic()
                self._idle.setdefault(key, []).append(conn)
            return result

    def _take(self, key: tuple[str, int], now: float) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.last_used > self.idle_seconds:
                conn.disarm()
                conn.transport.close()
                continue
            return conn
        return None

    def forget(self, host: str, port: int) -> None:
        """Close the idle connections to one instance (it is being stopped)."""
        for conn in self._idle.pop((host, port), []):
            conn.disarm()
            if conn.transport is not None:
                conn.transport.close()

    def close(self) -> None:
        for key in list(self._idle):
            self.forget(*key)


async def _connect(host: str, port: int, unix: str | None) -> _Conn:
    loop = asyncio.get_running_loop()
    if unix is None:
        return (await loop.create_connection(_Conn, host, port))[1]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:  # connected here: libuv's own connect cannot reach an abstract (Linux) socket name
        sock.setblocking(False)
        await loop.sock_connect(sock, socket_address(unix))
        return (await loop.create_unix_connection(_Conn, sock=sock))[1]
    except BaseException:
        sock.close()
        raise


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[str, int, str]:
    """``http://127.0.0.1:PORT/path`` -> (host, port, path) for :meth:`KeepAlivePool.post`."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80), parts.path or "/"


__all__ = ["ForwardProtocolError", "KeepAlivePool", "split_url"]
