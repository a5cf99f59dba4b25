"""The on-disk copy of the local backend's S3 under ``CATKIT_HOME/s3`` (:class:`DiskS3`).

Names are hashed, so no bucket, key or upload id can address a path outside the directory::

    s3/<sha256(bucket)>/bucket.json                      name, region, created, account, settings
    s3/<sha256(bucket)>/objects/<sha256(key)>.<gen>.obj   the latest version of a key
    s3/<sha256(bucket)>/versions/<sha256(key)>/<n>.obj    older versions (versioned buckets)
    s3/<sha256(bucket)>/uploads/<sha256(id)>/upload.json  a multipart upload in progress ...
    s3/<sha256(bucket)>/uploads/<sha256(id)>/<n>.part     ... and its parts

An object file is ``CATKITS3`` + 8-byte header length + JSON header (bucket, key, etag,
last-modified, metadata, tags, version) + the bytes. Every write replaces its file atomically
(:class:`catkit.local.storage.files.SyncPolicy`); deleting a bucket renames it to a tombstone first.
Also :func:`split_s3_target`, the (bucket, key) an S3 request addresses.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from catkit.local.storage.files import SyncPolicy, digest

__all__ = ["DiskS3", "split_s3_target"]

_MAGIC = b"CATKITS3"
_OBJ_SUFFIX = ".obj"
_PART_SUFFIX = ".part"
_VHOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])\.(s3[.\-]|localhost$)")


def split_s3_target(host: str, raw_path: str) -> tuple[str | None, str | None]:
    """(bucket, key) addressed by an S3 request, path-style or virtual-host style.

    ``raw_path`` is the percent-encoded path without the query string.
    """
    hostname = (host or "").rsplit(":", 1)[0].lower() if not (host or "").startswith("[") else ""
    match = _VHOST_RE.match(hostname)
    if match:
        key = unquote(raw_path[1:]) if raw_path.startswith("/") else unquote(raw_path)
        return match.group("bucket"), (key or None)
    parts = raw_path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0]) if parts and parts[0] else None
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    return bucket, key


def _generation(file_name: str) -> tuple[str, int]:
    """(key digest, generation) of an object file name: ``<digest>.<generation>.obj``, or the
    older ``<digest>.obj`` (generation 0)."""
    stem = file_name[: -len(_OBJ_SUFFIX)]
    name, _, gen = stem.partition(".")
    return name, int(gen) if gen.isdigit() else 0


def _sweep_tmp(directory: Path) -> None:
    for entry in directory.glob(".*.tmp"):
        entry.unlink(missing_ok=True)  # an interrupted write; never acknowledged


class DiskS3:
    """The on-disk copy of S3 under one directory; names hashed, writes atomic (``sync`` decides
    when they are fsynced: ``CATKIT_S3_SYNC``)."""

    def __init__(self, root: Path, sync: SyncPolicy | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.root.chmod(0o700)
        self.sync = sync if sync is not None else SyncPolicy()
        self._current: dict[tuple[Path, str], Path] = {}  # (objects dir, key digest) -> latest file
        self._gen_lock = threading.Lock()
        self._last_gen = 0

    # -- paths ---------------------------------------------------------------------------------
    def bucket_dir(self, bucket: str) -> Path:
        path = self.root / digest(bucket)
        # Hashing already guarantees containment; keep the check as a guard against future edits.
        if path.parent != self.root:
            raise ValueError(f"bucket {bucket!r} maps outside {self.root}")
        return path

    def versions_dir(self, bucket: str, key: str) -> Path:
        return self.bucket_dir(bucket) / "versions" / digest(key)

    def upload_dir(self, bucket: str, upload_id: str) -> Path:
        return self.bucket_dir(bucket) / "uploads" / digest(upload_id)

    def _mkdir(self, path: Path) -> None:
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.sync.changed(path.parent)

    # -- buckets -------------------------------------------------------------------------------
    def write_bucket(self, bucket: str, doc: dict[str, Any]) -> None:
        bdir = self.bucket_dir(bucket)
        fresh = not bdir.exists()
        (bdir / "objects").mkdir(parents=True, exist_ok=True)
        self.sync.write(bdir / "bucket.json", [json.dumps(doc, sort_keys=True).encode()])
        if fresh:
            self.sync.changed(self.root)

    @staticmethod
    def read_bucket(bucket_dir: Path) -> dict[str, Any]:
        return dict(json.loads((bucket_dir / "bucket.json").read_text()))

    def delete_bucket(self, bucket: str) -> None:
        self._remove_dir(self.bucket_dir(bucket))

    def buckets(self) -> Iterator[tuple[dict[str, Any], Path]]:
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if entry.name.startswith(".deleted-"):
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            if (entry / "bucket.json").is_file():
                yield self.read_bucket(entry), entry

    # -- objects -------------------------------------------------------------------------------
    def write_object(self, bucket: str, key: str, header: dict[str, Any], body: bytes | memoryview = b"",
                     stream: IO[bytes] | None = None, *, path: Path | None = None) -> None:
        """Write one object file (``body``, or the rest of ``stream``) at ``path``, or by default
        as the key's latest version: a new generation file, then the previous one is removed
        (renaming over a large file makes ext4 write it out first; a crash in between leaves
        both, and replay keeps the newest)."""
        head = json.dumps(header, sort_keys=True).encode()
        chunks = [_MAGIC, struct.pack(">Q", len(head)), head, body]
        if path is not None:
            self._mkdir(path.parent)
            self.sync.write(path, chunks, stream)
            return
        objdir, name = self.bucket_dir(bucket) / "objects", digest(key)
        self._mkdir(objdir)
        with self._gen_lock:
            self._last_gen = max(time.time_ns(), self._last_gen + 1)
            fresh = objdir / f"{name}.{self._last_gen:020d}{_OBJ_SUFFIX}"
        self.sync.write(fresh, chunks, stream)
        previous = self._current.get((objdir, name)) or objdir / f"{name}{_OBJ_SUFFIX}"
        self._current[(objdir, name)] = fresh
        if previous != fresh:
            previous.unlink(missing_ok=True)

    def object_file(self, bucket: str, key: str) -> Path | None:
        """The file holding ``key``'s latest version, if any."""
        objdir, name = self.bucket_dir(bucket) / "objects", digest(key)
        known = self._current.get((objdir, name))
        if known is not None and known.exists():
            return known
        found = self._generations(objdir, name)
        return found[-1] if found else None

    @staticmethod
    def _generations(objdir: Path, name: str) -> list[Path]:
        """Every file of one key in ``objdir``, oldest first (a directory scan: used when the
        key's file is not known from a write or from replay)."""
        if not objdir.is_dir():
            return []
        found = [p for p in objdir.glob(f"{name}*{_OBJ_SUFFIX}") if _generation(p.name)[0] == name]
        return sorted(found, key=lambda p: _generation(p.name)[1])

    def delete_object(self, bucket: str, key: str) -> None:
        objdir, name = self.bucket_dir(bucket) / "objects", digest(key)
        known = self._current.pop((objdir, name), None)
        doomed = [known] if known is not None else self._generations(objdir, name)
        gone = False
        for path in doomed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                gone = True
        if gone:
            self.sync.changed(objdir)

    @staticmethod
    def read_object(path: Path) -> tuple[dict[str, Any], bytes]:
        data = path.read_bytes()
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
            raise ValueError(f"{path} is not a catkit S3 object file")
        (hlen,) = struct.unpack(">Q", data[len(_MAGIC) : len(_MAGIC) + 8])
        start = len(_MAGIC) + 8
        header = json.loads(data[start : start + hlen])
        return header, data[start + hlen :]

    def objects(self, bucket_dir: Path) -> Iterator[Path]:
        """The latest-version file of every key in a bucket (older generations a crash left
        behind are removed; interrupted writes swept)."""
        objdir = bucket_dir / "objects"
        if not objdir.is_dir():
            return
        _sweep_tmp(objdir)
        newest: dict[str, tuple[int, Path]] = {}
        for entry in objdir.iterdir():
            if not entry.name.endswith(_OBJ_SUFFIX) or entry.name.startswith("."):
                continue
            name, gen = _generation(entry.name)
            kept = newest.get(name)
            if kept is None or gen > kept[0]:
                if kept is not None:
                    kept[1].unlink(missing_ok=True)
                newest[name] = (gen, entry)
            else:
                entry.unlink(missing_ok=True)
        for name, (_gen, path) in sorted(newest.items()):
            self._current[(objdir, name)] = path
            yield path

    # -- versions (versioned buckets) ----------------------------------------------------------
    def version_files(self, bucket: str, key: str) -> dict[str, tuple[int, Path]]:
        """The stored versions of ``key``: identity -> (position, file)."""
        vdir = self.versions_dir(bucket, key)
        if not vdir.is_dir():
            return {}
        _sweep_tmp(vdir)
        out = {}
        for path in vdir.iterdir():
            if path.name.endswith(_OBJ_SUFFIX) and not path.name.startswith("."):
                seq, _, ident = path.name[: -len(_OBJ_SUFFIX)].partition("-")
                out[ident] = (int(seq), path)
        return out

    def write_version(self, bucket: str, key: str, seq: int, ident: str, header: dict[str, Any],
                      body: bytes | memoryview = b"", stream: IO[bytes] | None = None) -> None:
        """Store one version of ``key`` at position ``seq`` (``ident``: a hex digest naming it)."""
        path = self.versions_dir(bucket, key) / f"{seq:09d}-{ident}{_OBJ_SUFFIX}"
        self.write_object(bucket, key, header, body, stream, path=path)

    def delete_version_file(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            self.sync.changed(path.parent)

    def delete_versions(self, bucket: str, key: str) -> None:
        self._remove_dir(self.versions_dir(bucket, key))

    def _remove_dir(self, path: Path) -> None:
        """Rename to a tombstone first (atomic), then remove: a crash mid-removal leaves only the
        tombstone, which the next scan deletes."""
        if not path.exists():
            return
        grave = path.with_name(f".deleted-{path.name}-{os.getpid()}-{threading.get_ident()}")
        os.replace(path, grave)
        self.sync.changed(path.parent)
        shutil.rmtree(grave, ignore_errors=True)

    @staticmethod
    def _entries(root: Path) -> Iterator[Path]:
        """The subdirectories of ``root`` in name order; tombstones and staging leftovers removed."""
        if not root.is_dir():
            return
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)
                continue
            yield entry

    def versions(self, bucket_dir: Path) -> Iterator[list[Path]]:
        """The stored versions of each key of a bucket, oldest first."""
        for entry in self._entries(bucket_dir / "versions"):
            _sweep_tmp(entry)
            files = sorted(p for p in entry.iterdir() if p.name.endswith(_OBJ_SUFFIX) and not p.name.startswith("."))
            if files:
                yield files

    # -- multipart uploads ---------------------------------------------------------------------
    def write_upload(self, bucket: str, upload_id: str, doc: dict[str, Any]) -> None:
        udir = self.upload_dir(bucket, upload_id)
        self._mkdir(udir)
        self.sync.write(udir / "upload.json", [json.dumps(doc, sort_keys=True).encode()])

    def write_part(self, bucket: str, upload_id: str, number: int, data: IO[bytes] | bytes | memoryview) -> None:
        udir = self.upload_dir(bucket, upload_id)
        if not (udir / "upload.json").is_file():
            raise FileNotFoundError(f"multipart upload {upload_id} of bucket {bucket} is not on disk")
        path = udir / f"{int(number):05d}{_PART_SUFFIX}"
        if isinstance(data, bytes | memoryview):
            self.sync.write(path, [data])
        else:
            self.sync.write(path, stream=data)

    def delete_upload(self, bucket: str, upload_id: str) -> None:
        self._remove_dir(self.upload_dir(bucket, upload_id))

    def uploads(self, bucket_dir: Path) -> Iterator[tuple[dict[str, Any], list[tuple[int, Path]]]]:
        """Each multipart upload in progress: its document and its (part number, file) pairs."""
        for entry in self._entries(bucket_dir / "uploads"):
            meta = entry / "upload.json"
            if not meta.is_file():
                continue
            _sweep_tmp(entry)
            parts = sorted((int(p.name[: -len(_PART_SUFFIX)]), p) for p in entry.iterdir()
                           if p.name.endswith(_PART_SUFFIX) and not p.name.startswith("."))
            yield json.loads(meta.read_text()), parts
