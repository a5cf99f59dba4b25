"""Acknowledged S3 writes survive a graceful restart and a kill -9; the emulated clock never goes back."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from catkit.local import lifecycle


def _fill(s3):
    s3.create_bucket(Bucket="durable")
    s3.create_bucket(Bucket="doomed")
    s3.put_object(
        Bucket="durable",
        Key="model/model.tar.gz",
        Body=b"\x1f\x8b" + b"m" * 100,
        ContentType="application/gzip",
        Metadata={"stage": "prod"},
    )
    s3.put_object_tagging(
        Bucket="durable", Key="model/model.tar.gz", Tagging={"TagSet": [{"Key": "team", "Value": "cats"}]}
    )
    s3.put_object(Bucket="durable", Key="gone.txt", Body=b"bye")
    s3.put_object(Bucket="durable", Key="../escape", Body=b"still inside")
    s3.copy_object(Bucket="durable", Key="copy.tar.gz", CopySource="durable/model/model.tar.gz")
    up = s3.create_multipart_upload(Bucket="durable", Key="parts.bin")
    p1, p2 = os.urandom(5 * 1024 * 1024), b"end"
    e1 = s3.upload_part(Bucket="durable", Key="parts.bin", UploadId=up["UploadId"], PartNumber=1, Body=p1)[
        "ETag"
    ]
    e2 = s3.upload_part(Bucket="durable", Key="parts.bin", UploadId=up["UploadId"], PartNumber=2, Body=p2)[
        "ETag"
    ]
    s3.complete_multipart_upload(
        Bucket="durable",
        Key="parts.bin",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    s3.delete_object(Bucket="durable", Key="gone.txt")
    s3.put_object(Bucket="doomed", Key="x", Body=b"x")
    s3.delete_objects(Bucket="doomed", Delete={"Objects": [{"Key": "x"}]})
    s3.delete_bucket(Bucket="doomed")
    return {"parts.bin": p1 + p2}


def _snapshot(s3):
    out = {}
    for obj in s3.list_objects_v2(Bucket="durable").get("Contents", []):
        got = s3.get_object(Bucket="durable", Key=obj["Key"])
        out[obj["Key"]] = (got["Body"].read(), got["ETag"], got["ContentType"], got["Metadata"])
    return out


def _check(s3, before, expected_parts):
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["durable"]
    after = _snapshot(s3)
    assert after == before
    assert set(after) == {"model/model.tar.gz", "../escape", "copy.tar.gz", "parts.bin"}
    assert after["model/model.tar.gz"][2:] == ("application/gzip", {"stage": "prod"})
    tags = s3.get_object_tagging(Bucket="durable", Key="model/model.tar.gz")["TagSet"]
    assert tags == [{"Key": "team", "Value": "cats"}]
    assert after["parts.bin"][0] == expected_parts["parts.bin"]
    assert after["parts.bin"][1].endswith('-2"')
    with pytest.raises(ClientError):
        s3.head_object(Bucket="durable", Key="gone.txt")


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_s3_objects_and_emulated_clock_survive(local_backend_factory, how):
    backend = local_backend_factory(time_scale=1000.0, components=())
    s3 = backend.client("s3")
    expected = _fill(s3)
    before = _snapshot(s3)
    seen = backend.info()["now"]
    if how == "kill_9":
        backend.kill()  # returns once the lock is free: the crash is detected, backend.json is stale
        assert lifecycle.status(backend.home) is None
        assert not (backend.home / "backend.json").exists()
    else:
        backend.stop()
    old_url = backend.url
    backend.start()
    assert backend.url == old_url  # the home's previous port is reused when free
    _check(backend.client("s3"), before, expected)
    info = backend.info()
    assert info["now"] >= seen  # emulated time never goes back, even after kill -9
    assert info["time_scale"] == 1000.0
    if how == "kill_9":  # and once more, after a start that replayed everything
        backend.restart()
        _check(backend.client("s3"), before, expected)
        assert backend.info()["now"] >= info["now"]
