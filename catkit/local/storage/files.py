"""Crash-safe files for the local backend's S3 copy: atomic replacement, and when bytes reach the disk.

Every write goes to a temporary file in the target's directory that is then renamed over the
target (:meth:`SyncPolicy.write`), so a reader or a restart never sees a partial file; a crash
leaves at most a ``.*.tmp`` file, which replay ignores and sweeps. By the time a write returns its
bytes are in the kernel, so they survive a crash or ``kill -9`` of the backend process.

How soon they also survive a crash of the machine (power loss, kernel panic) is ``CATKIT_S3_SYNC``:

- ``always``: fsync the file and its directory before the write returns, i.e. before S3 answers
  the client. Each fsync is a device flush (2.5-6 ms on a 2-core VM disk), which makes a 1 KiB
  PutObject about 3x slower than moto's own (in-memory) server;
- ``background`` (the default): a flusher thread fsyncs every written file and directory within
  :data:`FLUSH_INTERVAL_S`; a graceful stop (and :meth:`SyncPolicy.flush`) syncs everything
  before returning. Acknowledged writes survive any crash of the backend; a crash of the whole
  machine can lose at most the last second of writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

__all__ = ["FLUSH_INTERVAL_S", "SyncPolicy", "digest", "fsync_dir"]

log = logging.getLogger("catkit.local.storage.s3")

FLUSH_INTERVAL_S = 0.5
_COPY_CHUNK = 4 * 1024 * 1024


def digest(name: str) -> str:
    """The file name a bucket, key or upload id is stored under (no name can address a path)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone since (deleted, renamed): nothing left to make durable
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory (its entries: renames, creations, deletions)."""
    _fsync(path)


class SyncPolicy:
    """Atomic writes under one of the ``CATKIT_S3_SYNC`` policies (``mode``: ``always`` or
    ``background``; default from the environment)."""

    def __init__(self, mode: str | None = None) -> None:
        mode = (mode or os.environ.get("CATKIT_S3_SYNC") or "background").strip().lower()
        if mode not in ("always", "background"):
            raise ValueError(f"CATKIT_S3_SYNC must be 'always' or 'background', not {mode!r}")
        self.mode = mode
        self._pending: set[Path] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- writes ----------------------------------------------------------------------------------
    def write(self, path: Path, chunks: Iterable[bytes | memoryview] = (), stream: IO[bytes] | None = None) -> None:
        """Replace ``path`` atomically with ``chunks`` followed by what is left of ``stream``."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            for chunk in chunks:
                _write_all(fd, chunk)
            while stream is not None:
                block = stream.read(_COPY_CHUNK)
                if not block:
                    break
                _write_all(fd, block)
            if self.mode == "always":
                os.fsync(fd)
        except BaseException:  # disk full etc.: leave no partial file behind
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        self.changed(path, path.parent)

    def changed(self, *paths: Path) -> None:
        """``paths`` (files or directories) were written, created or had entries removed: make
        them durable now (``always``) or within :data:`FLUSH_INTERVAL_S` (``background``)."""
        if self.mode == "always" or self._closed:
            for path in paths:
                _fsync(path)
            return
        with self._cond:
            self._pending.update(paths)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="catkit-s3-sync", daemon=True)
                self._thread.start()

    # -- background flushing ---------------------------------------------------------------------
    def flush(self) -> None:
        """fsync everything written so far (blocking)."""
        with self._cond:
            pending, self._pending = self._pending, set()
        for path in sorted(pending, key=lambda p: len(p.parts), reverse=True):  # files before their dirs
            _fsync(path)

    def close(self) -> None:
        """Flush and stop the flusher thread (a later write restarts nothing: it syncs inline)."""
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join(30)
        self.flush()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(FLUSH_INTERVAL_S)
                if self._closed:
                    return
            try:
                self.flush()
            except Exception:  # never let the flusher die; the next round retries what is left
                log.exception("background fsync of S3 data failed")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
