"""The gateway's access log: one line per request in ``CATKIT_HOME/logs/access.log``, buffered.

Writing each line through :mod:`logging` cost the event loop ~12 % of its CPU per InvokeEndpoint
(a LogRecord, two formats, a rollover check with two ``stat`` calls and a ``write`` + ``flush`` per
request; profiled with py-spy under ``benchmarks/gateway.py``). Here a request costs one string
append: lines are joined and written by the event loop at most :data:`FLUSH_INTERVAL_S` later (the
way nginx's ``access_log ... buffer= flush=`` works), at :func:`flush` and at exit. A crash loses
at most that last half second of access lines, never backend state. Rotation is the standard
library's (:class:`logging.handlers.RotatingFileHandler`: size cap, numbered backups), checked once
per write, not per line.

The ``catkit.local.access`` logger's level still switches it (``CATKIT_ACCESS_LOG=0`` sets it to
WARNING: no lines are built at all).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

__all__ = ["FLUSH_INTERVAL_S", "configure", "enabled", "flush", "write", "write_request"]

FLUSH_INTERVAL_S = 0.5
logger = logging.getLogger("catkit.local.access")
_MILLIS = tuple(f"{i:03d}" for i in range(1000))  # "000".."999": a lookup, not a format per line


class _Sink:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, delay=False)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.scheduled = False
        self._stamp_second = -1
        self._stamp = ""

    def stamp(self) -> str:
        """``2026-11-30 07:19:53,123`` (logging's default asctime), formatted once per second."""
        now = time.time()
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{_MILLIS[int((now - second) * 1000)]}"

    def write(self, line: str) -> None:
        with self.lock:
            self.lines.append(f"{self.stamp()} {line}\n")
            if self.scheduled:
                return
            self.scheduled = True
        try:
            asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)
        except RuntimeError:  # not on an event loop: write now
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.lines, self.scheduled = self.lines, [], False
        if not lines:
            return
        data = "".join(lines)
        h = self.handler
        with h.lock:  # type: ignore[union-attr]
            if h.stream is None:
                h.stream = h._open()
            if h.maxBytes > 0 and h.stream.tell() and h.stream.tell() + len(data) >= h.maxBytes:
                h.doRollover()
            h.stream.write(data)
            h.stream.flush()


_sink: _Sink | None = None


def configure(path: str | os.PathLike[str] | None, *, max_bytes: int = 20 * 1024 * 1024, backups: int = 3) -> None:
    """Write access lines to ``path`` (rotated at ``max_bytes``, ``backups`` files kept); None stops."""
    global _sink
    flush()
    _sink = _Sink(Path(path), max_bytes, backups) if path is not None else None
    if _sink is not None:
        logger.setLevel(logging.INFO)


def enabled() -> bool:
    """Whether a line would be written (a sink is configured and the logger's level allows INFO)."""
    return _sink is not None and logger.isEnabledFor(logging.INFO)


def write(line: str) -> None:
    """Queue one access line (the timestamp is added here)."""
    if _sink is not None:
        _sink.write(line)


_SECRET_QUERY_RE = re.compile(r"(X-Amz-Signature|X-Amz-Security-Token|X-Amz-Credential|Signature)=[^&]*", re.I)


def write_request(remote: str | None, method: str, path: str, service: str | None, operation: str | None,
                  status: int, started: float) -> None:
    """Queue the line of one gateway request (secrets in a presigned URL's query redacted), answered
    with ``status``, begun at ``time.perf_counter()`` ``started``."""
    if "=" in path:
        path = _SECRET_QUERY_RE.sub(r"\1=REDACTED", path)
    tenths = int((time.perf_counter() - started) * 10000 + 0.5)  # ms to one decimal, no float format
    write(f'{remote} "{method} {path}" {service or "-"} {operation or "-"} {status} {tenths // 10}.{tenths % 10}ms')


def flush() -> None:
    """Write what is queued now (the gateway calls it on stop; tests may call it)."""
    if _sink is not None:
        _sink.flush()


atexit.register(flush)
