"""S3 for the local backend: moto holds the live buckets, this module makes them durable.

moto keeps S3 in memory. Every mutating S3 request the gateway serves runs through
:meth:`LocalS3.apply`: one writer per bucket at a time, moto applies the request, and the affected
bucket/key state (or multipart upload step: start, each part, complete, abort) is copied from
moto's in-process backend to ``CATKIT_HOME/s3/`` (:mod:`catkit.local.storage.s3_disk`, atomic
replace; fsync policy ``CATKIT_S3_SYNC``, :mod:`catkit.local.storage.files`) *before* the answer
goes back, so an acknowledged write survives ``catkit local stop`` and kill -9. An upload id the
bucket does not have is S3's 404 NoSuchUpload. At start-up :meth:`LocalS3.replay` loads
everything back into moto, multipart uploads in progress under their own ids.

``backend.s3`` also serves the backend's own reads: async ``get_object``, ``head_object``,
``list_objects``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.storage.files import SyncPolicy, fsync_dir
from catkit.local.storage.replay import bucket_setting
from catkit.local.storage.replay import replay as replay_request
from catkit.local.storage.s3_disk import DiskS3, split_s3_target
from catkit.local.storage.s3_versions import persist_versions, restore_versions, signature

__all__ = ["NO_SUCH_UPLOAD", "DiskS3", "LocalS3", "multipart_op", "split_s3_target"]

log = logging.getLogger("catkit.local.storage.s3")

#: S3's message for an unknown upload id (NoSuchUpload, 404: S3 API reference, "Error responses").
NO_SUCH_UPLOAD = (
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or "
    "completed."
)
_UPLOAD_ID_RE = re.compile(rb"<UploadId>([^<]+)</UploadId>")


def _first(value: Any) -> str | None:
    return value[0] if isinstance(value, list) else value


def multipart_op(method: str, key: str | None, query: Mapping[str, Any]) -> str | None:
    """Which step of a multipart upload a request on ``key`` is: ``create``, ``part`` (UploadPart
    or UploadPartCopy), ``complete``, ``abort``, ``list`` (ListParts), or None."""
    if key is None:
        return None
    if method == "POST" and "uploads" in query:
        return "create"
    if "uploadId" not in query:
        return None
    return {"PUT": "part" if "partNumber" in query else None, "POST": "complete", "DELETE": "abort",
            "GET": "list"}.get(method)


@contextlib.contextmanager
def _key_bytes(obj: Any) -> Iterator[dict[str, Any]]:
    """A moto key's bytes as ``write_object`` arguments, under the key's lock: a view of them while
    moto holds them in memory (no copy), else its spooled file, read in chunks (a 5 GiB object is
    never copied whole)."""
    buffer = getattr(obj, "_value_buffer", None)
    if buffer is None:  # a moto without the spooled buffer: fall back to the public bytes
        yield {"body": obj.value}
        return
    with obj.lock:
        inner = getattr(buffer, "_file", None)
        if isinstance(inner, io.BytesIO):
            with inner.getbuffer() as view:
                yield {"body": view}
            return
        buffer.seek(0)
        yield {"stream": buffer}

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
        self.disk = DiskS3(root, SyncPolicy())
        self.account_id = account_id
        self.partition = partition
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._index: dict[str, dict[str, str]] = {}  # bucket -> key -> etag persisted
        self._settings: dict[str, dict[str, dict[str, Any]]] = {}  # bucket -> setting -> request

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

    def _bucket_lock(self, bucket: str) -> threading.RLock:
        with self._locks_guard:
            lock = self._locks.get(bucket)
            if lock is None:
                lock = self._locks[bucket] = threading.RLock()
            return lock

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
        if mbucket.versioning_status is not None:  # every version, under versions/ (s3_versions)
            versions = list(mbucket.keys.getlist(key) or [])
            self.disk.delete_object(bucket, key)
            if not versions:
                self.disk.delete_versions(bucket, key)
                self._index.get(bucket, {}).pop(key, None)
                return
            persist_versions(self.disk, bucket, key, versions, lambda v: self._header(bucket, key, v), _key_bytes)
            self._index.setdefault(bucket, {})[key] = signature(versions)
            return
        obj = self._latest_key(mbucket, key)
        if obj is None:
            self.disk.delete_object(bucket, key)
            self._index.get(bucket, {}).pop(key, None)
            return
        with _key_bytes(obj) as data:
            self.disk.write_object(bucket, key, self._header(bucket, key, obj), **data)
        self._index.setdefault(bucket, {})[key] = obj.etag

    def _header(self, bucket: str, key: str, obj: Any) -> dict[str, Any]:
        return {
            "bucket": bucket,
            "key": key,
            "etag": obj.etag,
            "last_modified": _iso(obj.last_modified),
            "metadata": dict(obj.metadata),
            "storage_class": obj.storage_class,
            "tags": self._tags_of(bucket, obj),
        }

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
             "account": getattr(mbucket, "account_id", None) or self.account_id,
             "settings": [[name, saved] for name, saved in self._settings.get(bucket, {}).items()]},
        )
        self._index.setdefault(bucket, {})

    def _persist_setting(self, bucket: str, name: str, method: str, saved: dict[str, Any] | None) -> None:
        """Keep the latest PUT of a bucket setting (a DELETE drops it) in ``bucket.json``."""
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            return
        settings = self._settings.setdefault(bucket, {})
        settings.pop(name, None)
        if method == "PUT" and saved is not None:
            settings[name] = saved
        self._write_bucket_doc(bucket, mbucket)

    def _persist_bucket(self, bucket: str) -> None:
        mbucket = self._moto_bucket(bucket)
        if mbucket is None:
            self.disk.delete_bucket(bucket)
            self._index.pop(bucket, None)
            self._settings.pop(bucket, None)
            return
        if bucket not in self._index:
            self._write_bucket_doc(bucket, mbucket)
        # Reconcile keys (DeleteObjects, form POST uploads, anything bucket-level that touched keys).
        versioned = mbucket.versioning_status is not None
        for _attempt in range(5):
            try:
                if versioned:
                    live = {name: signature(list(mbucket.keys.getlist(name) or []))
                            for name in list(dict.keys(mbucket.keys))}
                else:
                    live = {name: obj.etag for name, obj in list(mbucket.keys.items()) if hasattr(obj, "value")}
                break
            except RuntimeError:  # moto mutated the dict while we iterated; try again
                continue
        else:
            raise RuntimeError(f"could not snapshot bucket {bucket!r} for persistence")
        known = self._index.setdefault(bucket, {})
        for name in [k for k in known if k not in live]:
            self.disk.delete_object(bucket, name)
            if versioned:
                self.disk.delete_versions(bucket, name)
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

    def _persist_upload(self, op: str, bucket: str, key: str, upload_id: str, query: Mapping[str, Any],
                        payload: bytes) -> None:
        """A multipart upload's step, on disk: its start, each part, its end (complete/abort)."""
        mbucket = self._moto_bucket(bucket)
        if op == "create":
            match = _UPLOAD_ID_RE.search(payload)
            upload = mbucket.multiparts.get(match.group(1).decode()) if match and mbucket is not None else None
            if upload is not None:
                self.disk.write_upload(bucket, upload.id, {
                    "upload_id": upload.id, "key": key, "metadata": dict(upload.metadata or {}),
                    "storage": upload.storage, "tags": dict(upload.tags or {}),
                    "sse": upload.sse_encryption, "kms_key_id": upload.kms_key_id,
                })
        elif op == "part":
            upload = mbucket.multiparts.get(upload_id) if mbucket is not None else None
            part = upload.parts.get(int(_first(query.get("partNumber")) or 0)) if upload is not None else None
            if part is not None:
                with _key_bytes(part) as data:
                    self.disk.write_part(bucket, upload_id, part.name, data.get("body", data.get("stream")))
        elif op == "complete":
            self._persist_key(bucket, key)
            self.disk.delete_upload(bucket, upload_id)
        elif op == "abort":
            self.disk.delete_upload(bucket, upload_id)

    def apply(self, method: str, host: str, raw_path: str, query: Mapping[str, Any],
              call: Callable[[], tuple[int, Any, bytes]], saved: dict[str, Any] | None = None,
              ) -> tuple[int, Any, bytes]:
        """Run ``call()`` (the request, applied to moto; blocking) and, if it succeeded and may have
        changed S3, make the change durable before returning (one writer per bucket at a time, so
        the disk holds what moto acknowledged). OSError: moto was brought back to the disk's state.
        AwsError NoSuchUpload (404, as S3 answers) for an upload id the bucket does not have.
        ``saved`` is the request as kept for replay (:func:`catkit.local.storage.replay.saved_request`),
        needed for bucket settings."""
        bucket, key = split_s3_target(host, raw_path)
        op = multipart_op(method, key, query)
        upload_id = _first(query.get("uploadId")) or ""
        if bucket and key and op in ("part", "complete", "abort", "list"):
            mbucket = self._moto_bucket(bucket)
            if mbucket is not None and upload_id not in mbucket.multiparts:
                raise AwsError("NoSuchUpload", NO_SUCH_UPLOAD, 404)
        if not bucket or method in ("GET", "HEAD", "OPTIONS"):
            return call()
        with self._bucket_lock(bucket):
            status, headers, payload = call()
            if status >= 300:
                return status, headers, payload
            try:
                setting = bucket_setting(method, key, query)
                if op is not None and key is not None:
                    self._persist_upload(op, bucket, key, upload_id, query, payload)
                elif setting is not None:
                    self._persist_setting(bucket, setting, method, saved)
                else:
                    self._persist_bucket(bucket) if key is None else self._persist_key(bucket, key)
            except OSError:
                if op in (None, "complete"):
                    with contextlib.suppress(Exception):
                        self.revert(bucket, key)
                raise
            return status, headers, payload

    async def persist_after(
        self, method: str, host: str, raw_path: str, query: Mapping[str, Any], status: int
    ) -> None:
        """Make the effect of a request moto already answered durable (:meth:`apply` does this
        for the gateway; kept for callers that drive moto themselves; multipart steps are not
        covered here)."""
        bucket, key = split_s3_target(host, raw_path)
        if not bucket or status >= 300 or method in ("GET", "HEAD", "OPTIONS"):
            return
        if multipart_op(method, key, query) not in (None, "complete"):
            return
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
            path = self.disk.object_file(bucket, key)
            if path is not None:
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
            settings = self._settings[name] = {}
            for setting, saved in doc.get("settings") or []:
                settings[setting] = saved
                try:
                    replay_request("s3", saved, account, mbucket.region_name)
                except Exception:
                    log.exception("could not restore setting %s of bucket %s", setting, name)
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
                if mbucket.versioning_status is not None:  # written before versioning was turned on
                    obj._version_id, obj._is_versioned = "null", False
                if header.get("tags"):
                    backend.put_object_tagging(obj, dict(header["tags"]))
                self._index[name][key] = obj.etag
                n_objects += 1
            for files in self.disk.versions(bdir):
                try:
                    restored = restore_versions(backend, mbucket, files, self.disk.read_object, _restore_object)
                except (OSError, ValueError) as exc:
                    log.error("cannot read persisted versions %s: %s", files[0].parent, exc)
                    continue
                if restored is not None:
                    self._index[name][restored[0]] = restored[1]
                    n_objects += 1
            self._replay_uploads(backend, mbucket, bdir)
        return n_buckets, n_objects

    def _replay_uploads(self, backend: Any, mbucket: Any, bucket_dir: Path) -> None:
        """Multipart uploads in progress come back under their own ids with their parts, so a
        client can go on uploading parts and complete them after a restart."""
        from moto.utilities.utils import CaseInsensitiveDict

        for doc, parts in self.disk.uploads(bucket_dir):
            upload = backend.create_multipart_upload(
                mbucket.name, doc["key"], CaseInsensitiveDict(doc.get("metadata") or {}), doc.get("storage"),
                dict(doc.get("tags") or {}), None, doc.get("sse"), doc.get("kms_key_id"),
            )
            mbucket.multiparts.pop(upload.id, None)
            upload.id = doc["upload_id"]
            mbucket.multiparts[upload.id] = upload
            for number, path in parts:
                upload.set_part(number, path.read_bytes())

    def close(self) -> None:
        """Make every acknowledged write durable and stop the background flusher (on stop)."""
        self.disk.sync.close()

    def reset(self) -> None:
        """Forget every bucket: moto's in-memory state (all of moto: S3, IAM, STS) and the disk copy."""
        from moto.core.base_backend import BackendDict
        from moto.core.model_instances import reset_model_data

        with self._locks_guard:
            BackendDict.reset()  # what moto's own POST /moto-api/reset does
            reset_model_data()
            self._index.clear()
            self._settings.clear()
            for entry in list(self.disk.root.iterdir()):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            fsync_dir(self.disk.root)

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
