"""S3 for the local backend: moto holds the live buckets, this module makes them durable.

moto keeps S3 in memory. After moto acknowledges a mutating S3 request (PutObject, CopyObject,
CompleteMultipartUpload, DeleteObject(s), CreateBucket, DeleteBucket, ...) the gateway calls
:meth:`LocalS3.persist_after` *before* the response goes back to the client; it copies the
affected bucket/key state from moto's in-process backend to ``CATKIT_HOME/s3/`` (write temp,
fsync, rename, fsync dir), so an acknowledged write survives ``catkit local stop`` and kill -9.
At start-up :meth:`LocalS3.replay` loads everything back into moto.

On disk, names are hashed (``s3/<sha256(bucket)>/objects/<sha256(key)>.obj``), so no bucket or
key can address a path outside ``CATKIT_HOME/s3``. An object file is ``CATKITS3`` + 8-byte header
length + JSON header (bucket, key, etag, last-modified, metadata incl. Content-Type, tags) + the
bytes. Only the latest version of each key is kept; bucket-level configuration (versioning,
policies, bucket tags, lifecycle) is not persisted.

``backend.s3`` also serves the backend's own reads: async ``get_object``, ``head_object``,
``list_objects``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from catkit.local.errors import AwsError

log = logging.getLogger("catkit.local.storage.s3")

_MAGIC = b"CATKITS3"
_OBJ_SUFFIX = ".obj"
_VHOST_RE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])\.(s3[.\-]|localhost$)")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, chunks: list[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        os.fsync(fd)
    except BaseException:  # disk full etc.: leave no partial file behind
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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


class DiskS3:
    """The on-disk copy of S3 under one directory; names hashed, writes atomic and fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.root.chmod(0o700)

    def bucket_dir(self, bucket: str) -> Path:
        path = self.root / _digest(bucket)
        # Hashing already guarantees containment; keep the check as a guard against future edits.
        if path.parent != self.root:
            raise ValueError(f"bucket {bucket!r} maps outside {self.root}")
        return path

    def object_path(self, bucket: str, key: str) -> Path:
        return self.bucket_dir(bucket) / "objects" / (_digest(key) + _OBJ_SUFFIX)

    def write_bucket(self, bucket: str, doc: dict[str, Any]) -> None:
        bdir = self.bucket_dir(bucket)
        fresh = not bdir.exists()
        (bdir / "objects").mkdir(parents=True, exist_ok=True)
        _atomic_write(bdir / "bucket.json", [json.dumps(doc, sort_keys=True).encode()])
        if fresh:
            _fsync_dir(self.root)

    def delete_bucket(self, bucket: str) -> None:
        bdir = self.bucket_dir(bucket)
        if not bdir.exists():
            return
        # Rename first (atomic), then remove: a crash mid-removal leaves only a tombstone dir.
        grave = self.root / f".deleted-{bdir.name}-{os.getpid()}-{threading.get_ident()}"
        os.replace(bdir, grave)
        _fsync_dir(self.root)
        shutil.rmtree(grave, ignore_errors=True)

    def write_object(self, bucket: str, key: str, header: dict[str, Any], body: bytes) -> None:
        head = json.dumps(header, sort_keys=True).encode()
        path = self.object_path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, [_MAGIC, struct.pack(">Q", len(head)), head, body])

    def delete_object(self, bucket: str, key: str) -> None:
        path = self.object_path(bucket, key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    @staticmethod
    def read_object(path: Path) -> tuple[dict[str, Any], bytes]:
        data = path.read_bytes()
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 8:
            raise ValueError(f"{path} is not a catkit S3 object file")
        (hlen,) = struct.unpack(">Q", data[len(_MAGIC) : len(_MAGIC) + 8])
        start = len(_MAGIC) + 8
        header = json.loads(data[start : start + hlen])
        return header, data[start + hlen :]

    def buckets(self) -> Iterator[tuple[dict[str, Any], Path]]:
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith("."):
                if entry.name.startswith(".deleted-"):
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            meta = entry / "bucket.json"
            if meta.is_file():
                yield json.loads(meta.read_text()), entry

    @staticmethod
    def objects(bucket_dir: Path) -> Iterator[Path]:
        objdir = bucket_dir / "objects"
        if not objdir.is_dir():
            return
        for entry in sorted(objdir.iterdir()):
            if entry.name.endswith(_OBJ_SUFFIX) and not entry.name.startswith("."):
                yield entry
            elif entry.name.endswith(".tmp"):
                entry.unlink(missing_ok=True)  # an interrupted write; never acknowledged


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    return None


def _parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=None) if parsed.tzinfo is not None else parsed


def _restore_object(backend: Any, bucket: str, key: str, header: Mapping[str, Any], body: bytes) -> Any:
    """Put a persisted object (its disk ``header`` and ``body``) back into moto as it was
    acknowledged: storage class, metadata, ETag and last-modified time. Returns moto's key."""
    obj = backend.put_object(bucket, key, body, storage=header.get("storage_class"), disable_notification=True)
    obj.set_metadata(dict(header.get("metadata") or {}), replace=True)
    etag = (header.get("etag") or "").strip('"')
    if etag:
        obj._etag = etag
    modified = _parse_iso(header.get("last_modified"))
    if modified is not None:
        obj.last_modified = modified
    return obj


class LocalS3:
    """moto-backed S3 with write-through persistence; ``backend.s3``."""

    def __init__(self, root: Path, account_id: str = "123456789012", partition: str = "aws") -> None:
        self.disk = DiskS3(root)
        self.account_id = account_id
        self.partition = partition
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._index: dict[str, dict[str, str]] = {}  # bucket -> key -> etag persisted

    # -- moto access ---------------------------------------------------------------------------
    def _moto(self, account_id: str | None = None) -> Any:
        from moto.s3.models import s3_backends

        return s3_backends[account_id or self.account_id][self.partition]

    def _backend_for(self, bucket: str) -> Any:
        """moto's S3 backend of the account that owns ``bucket`` (bucket names are global, as on
        AWS; moto records each bucket's account), else the default account's."""
        from moto.s3.models import s3_backends

        owner = s3_backends.bucket_accounts.get(bucket)
        return s3_backends[owner[1]][owner[0]] if owner else self._moto()

    def _bucket_lock(self, bucket: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(bucket, threading.Lock())

    def _moto_bucket(self, bucket: str) -> Any | None:
        return self._backend_for(bucket).buckets.get(bucket)

    @staticmethod
    def _latest_key(mbucket: Any, key: str) -> Any | None:
        from moto.s3.models import FakeKey

        obj = mbucket.keys.get(key) if mbucket is not None else None
        return obj if isinstance(obj, FakeKey) else None

    # -- persistence ---------------------------------------------------------------------------
    def _persist_key(self, bucket: str, key: str) -> None:
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            self._persist_bucket(bucket)
            return
        if bucket not in self._index:
            self._write_bucket_doc(bucket, mbucket)
        obj = self._latest_key(mbucket, key)
        if obj is None:
            self.disk.delete_object(bucket, key)
            self._index.get(bucket, {}).pop(key, None)
            return
        body = obj.value  # FakeKey.value takes the key's own lock
        header = {
            "bucket": bucket,
            "key": key,
            "etag": obj.etag,
            "last_modified": _iso(obj.last_modified),
            "metadata": dict(obj.metadata),
            "storage_class": obj.storage_class,
            "tags": self._tags_of(bucket, obj),
        }
        self.disk.write_object(bucket, key, header, body)
        self._index.setdefault(bucket, {})[key] = obj.etag

    def _tags_of(self, bucket: str, obj: Any) -> dict[str, str]:
        try:
            tag_list = self._backend_for(bucket).get_object_tagging(obj).get("Tags", [])
        except Exception:  # tagging is best-effort metadata; never fail a write over it
            return {}
        return {t["Key"]: t["Value"] for t in tag_list}

    def _write_bucket_doc(self, bucket: str, mbucket: Any) -> None:
        self.disk.write_bucket(
            bucket,
            {"name": bucket, "region": mbucket.region_name, "created": _iso(mbucket.creation_date),
             "account": getattr(mbucket, "account_id", None) or self.account_id},
        )
        self._index.setdefault(bucket, {})

    def _persist_bucket(self, bucket: str) -> None:
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            self.disk.delete_bucket(bucket)
            self._index.pop(bucket, None)
            return
        if bucket not in self._index:
            self._write_bucket_doc(bucket, mbucket)
        # Reconcile keys (DeleteObjects, form POST uploads, anything bucket-level that touched keys).
        for _attempt in range(5):
            try:
                live = {name: obj.etag for name, obj in list(mbucket.keys.items()) if hasattr(obj, "value")}
                break
            except RuntimeError:  # moto mutated the dict while we iterated; try again
                continue
        else:
            raise RuntimeError(f"could not snapshot bucket {bucket!r} for persistence")
        known = self._index.setdefault(bucket, {})
        for name in [k for k in known if k not in live]:
            self.disk.delete_object(bucket, name)
            known.pop(name, None)
        for name, etag in live.items():
            if known.get(name) != etag:
                self._persist_key(bucket, name)

    def persist(self, bucket: str, key: str | None) -> None:
        """Copy moto's current state of ``bucket``/``key`` to disk (blocking; run in a thread)."""
        with self._bucket_lock(bucket):
            if key is None:
                self._persist_bucket(bucket)
            else:
                self._persist_key(bucket, key)

    async def persist_after(
        self, method: str, host: str, raw_path: str, query: Mapping[str, Any], status: int
    ) -> None:
        """Called by the gateway after moto answered a request, before the client sees the answer."""
        if method in ("GET", "HEAD", "OPTIONS") or status >= 300:
            return
        bucket, key = split_s3_target(host, raw_path)
        if not bucket:
            return
        if key is not None:
            if method == "PUT" and "uploadId" in query and "partNumber" in query:
                return  # UploadPart: parts are not objects until CompleteMultipartUpload
            if method == "POST" and "uploads" in query:
                return  # CreateMultipartUpload
            if method == "DELETE" and "uploadId" in query:
                return  # AbortMultipartUpload
        await asyncio.get_running_loop().run_in_executor(None, self.persist, bucket, key)

    def revert(self, bucket: str, key: str | None) -> None:
        """After a failed :meth:`persist`: make moto match the disk again for ``bucket``/``key``
        (the last acknowledged version comes back, or the unacknowledged object/bucket goes)."""
        with self._bucket_lock(bucket):
            backend = self._backend_for(bucket)
            mbucket = backend.buckets.get(bucket)
            on_disk = (self.disk.bucket_dir(bucket) / "bucket.json").is_file()
            if key is None:
                if mbucket is not None and not on_disk and not list(mbucket.keys):
                    with contextlib.suppress(Exception):
                        backend.delete_bucket(bucket)
                return
            if mbucket is None:
                return
            path = self.disk.object_path(bucket, key)
            if path.is_file():
                header, body = self.disk.read_object(path)
                _restore_object(backend, bucket, key, header, body)
            else:
                with contextlib.suppress(Exception):
                    backend.delete_object(bucket, key)

    async def revert_after(self, host: str, raw_path: str) -> None:
        """:meth:`revert` for the bucket/key a failed request addressed (gateway error path)."""
        bucket, key = split_s3_target(host, raw_path)
        if bucket:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.revert, bucket, key)
            except Exception:
                log.exception("could not revert S3 %s/%s after a failed write", bucket, key)

    # -- replay --------------------------------------------------------------------------------
    def replay(self) -> tuple[int, int]:
        """Load every persisted bucket and object into moto; returns (buckets, objects)."""
        from moto.s3.models import s3_backends

        n_buckets = n_objects = 0
        for doc, bdir in self.disk.buckets():
            name = doc["name"]
            if self.disk.bucket_dir(name) != bdir:
                log.warning("skipping %s: bucket.json names %r, which hashes elsewhere", bdir, name)
                continue
            account = str(doc.get("account") or self.account_id)
            backend = self._moto(account)
            if name not in backend.buckets:
                mbucket = backend.create_bucket(name, doc.get("region") or "us-east-1")
            else:
                mbucket = backend.buckets[name]
            s3_backends.bucket_accounts[name] = (self.partition, account)
            created = _parse_iso(doc.get("created"))
            if created is not None:
                mbucket.creation_date = created.replace(tzinfo=dt.UTC)
            self._index[name] = {}
            n_buckets += 1
            for path in self.disk.objects(bdir):
                try:
                    header, body = self.disk.read_object(path)
                except (OSError, ValueError) as exc:
                    log.error("cannot read persisted S3 object %s: %s", path, exc)
                    continue
                key = header["key"]
                obj = _restore_object(backend, name, key, header, body)
                if header.get("tags"):
                    backend.put_object_tagging(obj, dict(header["tags"]))
                self._index[name][key] = obj.etag
                n_objects += 1
        return n_buckets, n_objects

    def reset(self) -> None:
        """Forget every bucket: moto's in-memory state (all of moto: S3, IAM, STS) and the disk copy."""
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data

        with self._locks_guard:
            BackendDict.reset()  # what moto's own POST /moto-api/reset does
            reset_model_data()
            self._index.clear()
            for entry in list(self.disk.root.iterdir()):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            _fsync_dir(self.disk.root)

    # -- reads for other components ------------------------------------------------------------
    def _get(self, bucket: str, key: str) -> Any:
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            raise AwsError("NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404)
        obj = self._latest_key(mbucket, key)
        if obj is None:
            raise AwsError("NoSuchKey", f"The specified key does not exist: s3://{bucket}/{key}", 404)
        return obj

    def _read(self, bucket: str, key: str) -> bytes:
        return self._get(bucket, key).value

    async def get_object(self, bucket: str, key: str) -> bytes:
        """The object's bytes; AwsError NoSuchBucket/NoSuchKey (404) if missing."""
        return await asyncio.get_running_loop().run_in_executor(None, self._read, bucket, key)

    async def head_object(self, bucket: str, key: str) -> dict[str, Any] | None:
        """``{"ETag", "ContentLength", "LastModified", "ContentType", "Metadata"}`` or None."""
        try:
            obj = self._get(bucket, key)
        except AwsError:
            return None
        meta = dict(obj.metadata)
        return {
            "ETag": obj.etag,
            "ContentLength": obj.size,
            "LastModified": _aware(obj.last_modified),
            "ContentType": meta.get("Content-Type") or meta.get("content-type") or "binary/octet-stream",
            "Metadata": {
                k[len("x-amz-meta-") :]: v for k, v in meta.items() if k.lower().startswith("x-amz-meta-")
            },
        }

    def _put(self, bucket: str, key: str, body: bytes, content_type: str | None) -> None:
        with self._bucket_lock(bucket):
            if self._moto_bucket(bucket) is None:
                raise AwsError("NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404)
            obj = self._backend_for(bucket).put_object(bucket, key, body)
            if content_type:
                obj.set_metadata({"Content-Type": content_type})
            self._persist_key(bucket, key)

    async def put_object(self, bucket: str, key: str, body: bytes, content_type: str | None = None) -> None:
        """Write an object as the backend itself (asynchronous inference results), persisted like
        a client's PutObject; AwsError NoSuchBucket (404) if the bucket is missing."""
        await asyncio.get_running_loop().run_in_executor(None, self._put, bucket, key, body, content_type)

    async def list_objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """``[{"Key", "Size", "ETag", "LastModified"}]`` sorted by key; AwsError if no bucket."""
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            raise AwsError("NoSuchBucket", f"The specified bucket does not exist: {bucket}", 404)
        out = []
        for name, obj in sorted(list(mbucket.keys.items())):
            if name.startswith(prefix) and hasattr(obj, "value"):
                out.append(
                    {
                        "Key": name,
                        "Size": obj.size,
                        "ETag": obj.etag,
                        "LastModified": _aware(obj.last_modified),
                    }
                )
        return out

    def bucket_exists(self, bucket: str) -> bool:
        return self._moto_bucket(bucket) is not None


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
