"""Pure parts of catkit.local.storage.s3: addressing (bucket/key of a request) and the on-disk layout."""

from __future__ import annotations

import pytest

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
