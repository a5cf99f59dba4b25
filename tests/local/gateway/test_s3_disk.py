"""Pure parts of catkit.local.storage.s3: addressing (bucket/key of a request) and the on-disk layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from catkit.local.storage import files
from catkit.local.storage.s3 import DiskS3, split_s3_target


@pytest.mark.parametrize(
    ("host", "raw_path", "expected"),
    [
        ("127.0.0.1:4566", "/bkt", ("bkt", None)),
        ("127.0.0.1:4566", "/bkt/", ("bkt", None)),
        ("127.0.0.1:4566", "/bkt/a/b.txt", ("bkt", "a/b.txt")),
        ("127.0.0.1:4566", "/bkt/a%20b/%E2%9C%93", ("bkt", "a b/✓")),
        ("127.0.0.1:4566", "/bkt/..%2F..%2Fx", ("bkt", "../../x")),
        ("localhost:4566", "/bkt/k", ("bkt", "k")),
        ("[::1]:4566", "/bkt/k", ("bkt", "k")),
        ("127.0.0.1:4566", "/", (None, None)),
        ("my-bucket.s3.amazonaws.com", "/k/x", ("my-bucket", "k/x")),
        ("my.bucket.s3.us-east-1.amazonaws.com", "/", ("my.bucket", None)),
        ("my-bucket.s3-us-west-2.amazonaws.com", "/k", ("my-bucket", "k")),
        ("my-bucket.localhost:4566", "/k", ("my-bucket", "k")),
        ("s3.amazonaws.com", "/bkt/k", ("bkt", "k")),
    ],
)
def test_split_s3_target(host, raw_path, expected):
    assert split_s3_target(host, raw_path) == expected


def test_disk_layout_hashes_names_and_roundtrips(tmp_path):
    disk = DiskS3(tmp_path / "s3")
    disk.write_bucket("../../etc", {"name": "../../etc", "region": "us-east-1", "created": None})
    disk.write_object("../../etc", "../../../passwd", {"key": "../../../passwd", "etag": '"x"'}, b"\x00body")
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.parts[0] == "s3" and ".." not in p.parts for p in files)
    assert len(files) == 2
    ((doc, bdir),) = list(disk.buckets())
    assert doc["name"] == "../../etc"
    (obj,) = list(disk.objects(bdir))
    header, body = disk.read_object(obj)
    assert header["key"] == "../../../passwd" and body == b"\x00body"
    disk.delete_object("../../etc", "../../../passwd")
    assert list(disk.objects(bdir)) == []
    disk.delete_bucket("../../etc")
    assert list(disk.buckets()) == []


def test_interrupted_writes_are_ignored(tmp_path):
    disk = DiskS3(tmp_path / "s3")
    disk.write_bucket("b", {"name": "b"})
    disk.write_object("b", "k", {"key": "k"}, b"v")
    bdir = disk.bucket_dir("b")
    (bdir / "objects" / ".half-written.obj.123.tmp").write_bytes(b"CATKITS3 partial")
    (tmp_path / "s3" / ".deleted-abc").mkdir()
    assert [p.name.endswith(".obj") for p in disk.objects(bdir)] == [True]
    assert not (bdir / "objects" / ".half-written.obj.123.tmp").exists()
    assert [d["name"] for d, _ in disk.buckets()] == ["b"]
    assert not (tmp_path / "s3" / ".deleted-abc").exists()


def test_a_key_is_rewritten_as_a_new_generation_and_replay_keeps_the_newest(tmp_path):
    disk = DiskS3(tmp_path / "s3")
    disk.write_bucket("b", {"name": "b"})
    disk.write_object("b", "k", {"key": "k", "v": 1}, b"one")
    disk.write_object("b", "k", {"key": "k", "v": 2}, b"two")
    objdir = disk.bucket_dir("b") / "objects"
    (latest,) = list(objdir.glob("*.obj"))  # the previous generation is gone once the new one is in place
    # A crash between writing a generation and removing the previous one leaves both, and a home
    # from before generations has plain <digest>.obj files: replay keeps only the newest.
    stale_new_name = latest.name.split(".")[0] + ".00000000000000000001.obj"
    (objdir / stale_new_name).write_bytes(latest.read_bytes().replace(b"two", b"old"))
    (objdir / (latest.name.split(".")[0] + ".obj")).write_bytes(latest.read_bytes().replace(b"two", b"leg"))
    fresh = DiskS3(tmp_path / "s3")
    ((_, bdir),) = list(fresh.buckets())
    (kept,) = list(fresh.objects(bdir))
    assert fresh.read_object(kept) == ({"key": "k", "v": 2}, b"two")
    assert list(objdir.glob("*.obj")) == [kept]
    fresh.write_object("b", "k", {"key": "k", "v": 3}, b"three")  # replaces what replay found
    (again,) = list(objdir.glob("*.obj"))
    assert fresh.read_object(again)[1] == b"three" and fresh.object_file("b", "k") == again
    fresh.delete_object("b", "k")
    assert list(objdir.glob("*.obj")) == [] and fresh.object_file("b", "k") is None


@pytest.mark.parametrize("mode", ["always", "background"])
def test_sync_policies_make_every_write_durable(tmp_path, monkeypatch, mode):
    synced: list[Path] = []
    monkeypatch.setattr(files, "_fsync", synced.append)
    policy = files.SyncPolicy(mode)
    target = tmp_path / "obj"
    policy.write(target, [b"data"])
    if mode == "always":  # before write() returns: the file, then its directory
        assert synced == [target, tmp_path]
    policy.close()  # a graceful stop flushes whatever the background thread has not yet
    assert target in synced and tmp_path in synced
    assert target.read_bytes() == b"data"
    with pytest.raises(ValueError, match="CATKIT_S3_SYNC"):
        files.SyncPolicy("sometimes")
