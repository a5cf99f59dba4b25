"""Object versions of versioned S3 buckets, on disk and back into moto.

Once a bucket has a versioning status (Enabled, or Suspended after it), every version of each key
moto keeps - objects and delete markers, with their version ids - is stored under
``s3/<bucket>/versions/<sha256(key)>/`` (:mod:`catkit.local.storage.s3_disk`), one file per
version named by its position and identity, so a write adds one file and a DeleteObject with a
VersionId removes one. :func:`persist_versions` brings the files in line with moto's list;
:func:`restore_versions` rebuilds the list in moto at start-up (same ids, order, bytes, metadata).
ASSUMPTION: a "null" version replaced while versioning is Suspended is stored as a new last version.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from catkit.local.storage.files import digest

__all__ = ["persist_versions", "restore_versions", "signature"]


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return None


def _identity(version: Any) -> str:
    marker = not hasattr(version, "value")
    return digest(f"{version.version_id}:{'marker' if marker else version.etag}")


def signature(versions: list[Any]) -> str:
    """What a key's versions look like (compared to tell whether they changed)."""
    return "|".join(_identity(v) for v in versions)


def persist_versions(disk: Any, bucket: str, key: str, versions: list[Any],
                     header_of: Callable[[Any], dict[str, Any]], data_of: Callable[[Any], Any]) -> None:
    """Make ``versions`` (moto's list for ``key``, oldest first) the stored versions of ``key``:
    files of versions gone are removed, new versions are written after the existing ones.
    ``header_of(version)`` is an object's file header; ``data_of(version)`` a context manager
    giving ``write_object`` arguments for its bytes."""
    have = disk.version_files(bucket, key)
    wanted = {_identity(v): v for v in versions}
    for ident, (_seq, path) in have.items():
        if ident not in wanted:
            disk.delete_version_file(path)
    seq = max((s for s, _ in have.values()), default=-1) + 1
    for ident, version in wanted.items():
        if ident in have:
            continue
        if not hasattr(version, "value"):  # a delete marker
            disk.write_version(bucket, key, seq, ident, {
                "bucket": bucket, "key": key, "delete_marker": True, "version_id": version.version_id,
                "last_modified": _iso(version.last_modified)})
        else:
            with data_of(version) as data:
                disk.write_version(bucket, key, seq, ident, {**header_of(version), "version_id": version.version_id},
                                   **data)
        seq += 1


def restore_versions(backend: Any, mbucket: Any, files: list[Path], read: Callable[[Path], tuple[dict[str, Any], bytes]],
                     restore_object: Callable[[Any, str, str, Mapping[str, Any], bytes], Any]) -> tuple[str, str] | None:
    """Rebuild one key's versions in moto from its stored files (oldest first); returns (key,
    signature) or None when nothing could be read."""
    from moto.s3.models import FakeDeleteMarker, FakeKey

    restored: list[Any] = []
    key = None
    saved_status = mbucket.versioning_status
    mbucket.versioning_status = "Enabled"  # each put appends a version; ids are set afterwards
    try:
        for path in files:
            header, body = read(path)
            key = header["key"]
            if header.get("delete_marker"):
                base = restored[-1] if restored and isinstance(restored[-1], FakeKey) else FakeKey(
                    key, b"", account_id=mbucket.account_id, region_name=mbucket.region_name)
                version: Any = FakeDeleteMarker(key=base)
                mbucket.keys[key] = version
                modified = header.get("last_modified")
                if modified:
                    version.last_modified = dt.datetime.fromisoformat(modified).replace(tzinfo=None)
            else:
                version = restore_object(backend, mbucket.name, key, header, body)
                if header.get("tags"):
                    backend.put_object_tagging(version, dict(header["tags"]))
                version._is_versioned = header.get("version_id") not in (None, "null")
            version._version_id = header.get("version_id")
            restored.append(version)
    finally:
        mbucket.versioning_status = saved_status
    if key is None:
        return None
    mbucket.keys.setlist(key, restored)
    return key, signature(restored)
