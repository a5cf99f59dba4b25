"""Calling moto's WSGI applications in-process from the aiohttp gateway.

Owns the translation between one aiohttp request and one WSGI call, as a WSGI server would make
it (werkzeug's ``WSGIRequestHandler.make_environ`` plus moto's ``MotoRequestHandler``, which keeps
underscores in ``x-amz-meta-*`` names): :func:`build_environ` turns the request (its body already
read, as bytes or a spooled file) into an environ, :func:`call_wsgi` runs the application (blocking:
the gateway calls it in a worker thread) and collects status, headers and body. Also
:func:`spool_body`, which reads a request body into memory up to a threshold and into a temporary
file beyond it, so a large single PUT is never held twice in memory by the gateway.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from aiohttp import web

from catkit.serving.http_limits import HttpLimits, buffered_body, limited_chunks

__all__ = ["Body", "BodyTooLarge", "build_environ", "call_wsgi", "spool_body"]

Body = bytes | IO[bytes]
IN_MEMORY_BODY = 8 * 1024 * 1024  # bodies above this are spooled to a temporary file


class BodyTooLarge(Exception):
    """A request body over the limit (``size`` is None when it was not announced)."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(size, limit)
        self.size = size
        self.limit = limit


def _latin1(text: str) -> str:
    """PEP 3333's "bytes as latin-1 str" form of a UTF-8 string (werkzeug's encoding dance)."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


async def spool_body(request: web.Request, limit: int, spool_dir: Path | None,
                     limits: HttpLimits | None = None) -> Body:
    """The request body: bytes up to :data:`IN_MEMORY_BODY`, else a temporary file in
    ``spool_dir`` (rewound; deleted when closed). BodyTooLarge beyond ``limit``; with ``limits``,
    :class:`catkit.serving.http_limits.BodyTimeout` when it arrives too slowly."""
    length = request.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(length, limit)
    body = buffered_body(request, limit, lambda size: BodyTooLarge(size, limit))
    if body is not None:
        return body
    chunks: list[bytes] = []
    spooled: IO[bytes] | None = None
    total = 0
    try:
        async for chunk in (limited_chunks(request, limits) if limits is not None else _chunks(request)):
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge(None, limit)
            if spooled is not None:
                spooled.write(chunk)
            elif total > IN_MEMORY_BODY and spool_dir is not None:
                spool_dir.mkdir(mode=0o700, exist_ok=True)
                spooled = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - handed to the caller
                for part in chunks:
                    spooled.write(part)
                spooled.write(chunk)
                chunks = []
            else:
                chunks.append(chunk)
    except BaseException:
        if spooled is not None:
            spooled.close()
        raise
    if spooled is None:
        return b"".join(chunks)
    spooled.seek(0)
    return spooled


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.readany():
        yield chunk


def build_environ(
    request: web.Request,
    body: Body,
    extra_headers: Iterable[tuple[str, str]] = (),
    drop: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The WSGI environ a server would build for ``request`` with ``body`` (headers in ``drop``,
    lower-case names, are left out; ``extra_headers`` are added)."""
    raw = request.raw_path
    path, _, query = raw.partition("?")
    if isinstance(body, bytes):
        stream: IO[bytes] = io.BytesIO(body)
        length = len(body)
    else:
        stream = body
        stream.seek(0, io.SEEK_END)
        length = stream.tell()
        stream.seek(0)
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    server_name, server_port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 80)
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": stream,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        # the stream is exactly the body (a server that terminates its input, PEP 3333 extension):
        # werkzeug reads it as is instead of through a LimitedStream (which copied a 1 MiB PUT ~4 times)
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "catkit",
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": _latin1(unquote(path)),
        "QUERY_STRING": _latin1(query),
        "REQUEST_URI": _latin1(raw),
        "RAW_URI": _latin1(raw),
        "REMOTE_ADDR": request.remote or "127.0.0.1",
        "REMOTE_PORT": 0,
        "SERVER_NAME": str(server_name),
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "CONTENT_LENGTH": str(length),
    }
    preserved: dict[str, str] = {}
    underscored: dict[str, list[str]] = {}
    dashed = {name.upper().replace("-", "_") for name in request.headers if "_" not in name}
    wanted = [(k, v) for k, v in request.headers.items() if k.lower() not in drop]
    for name, value in [*wanted, *extra_headers]:
        lower = name.lower()
        key = name.upper().replace("-", "_")
        value = value.replace("\r\n", "")
        if "_" in name:  # moto keeps x-amz-meta-* names with underscores; werkzeug drops the rest
            if lower.startswith("x-amz-meta-") and key not in dashed:
                preserved.setdefault(f"HTTP_{key}", name)
                underscored.setdefault(f"HTTP_{key}", []).append(value)
            continue
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key == "CONTENT_TYPE":
                environ[key] = value
            continue
        key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    for key, values in underscored.items():
        environ[key] = ",".join(values)
    environ["moto.preserved_header_names"] = preserved
    return environ


def call_wsgi(app: Callable[..., Iterable[bytes]], environ: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run ``app`` on ``environ`` (blocking); returns (status, headers, body)."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        answer["status"] = int(status.split(" ", 1)[0])
        answer["headers"] = headers
        return lambda data: None

    result = app(dict(environ), start_response)
    try:
        payload = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], payload
