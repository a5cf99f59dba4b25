"""Multipart uploads survive a backend restart and go on where they were (issue 14 §3), and unknown
upload ids get S3's 404 NoSuchUpload on every multipart operation."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(components=())


def _error(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_unknown_upload_ids_are_no_such_upload(backend):
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="mpu-unknown")
    s3.put_object(Bucket="mpu-unknown", Key="src", Body=b"s" * 10)
    args = {"Bucket": "mpu-unknown", "Key": "k", "UploadId": "no-such-upload-id"}
    calls = {
        "UploadPart": lambda: s3.upload_part(PartNumber=1, Body=b"x", **args),
        "UploadPartCopy": lambda: s3.upload_part_copy(PartNumber=1, CopySource="mpu-unknown/src", **args),
        "CompleteMultipartUpload": lambda: s3.complete_multipart_upload(
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"abc"'}]}, **args),
        "AbortMultipartUpload": lambda: s3.abort_multipart_upload(**args),
        "ListParts": lambda: s3.list_parts(**args),
    }
    for name, call in calls.items():
        assert _error(call) == ("NoSuchUpload", 404), name
    # a completed upload's id is gone too
    up = s3.create_multipart_upload(Bucket="mpu-unknown", Key="done")["UploadId"]
    etag = s3.upload_part(Bucket="mpu-unknown", Key="done", UploadId=up, PartNumber=1, Body=b"only")["ETag"]
    s3.complete_multipart_upload(Bucket="mpu-unknown", Key="done", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert _error(lambda: s3.upload_part(Bucket="mpu-unknown", Key="done", UploadId=up, PartNumber=2,
                                         Body=b"late")) == ("NoSuchUpload", 404)
    # an unknown bucket stays NoSuchBucket
    assert _error(lambda: s3.list_parts(Bucket="mpu-nobucket", Key="k", UploadId="x"))[0] == "NoSuchBucket"


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_multipart_uploads_resume_after_a_restart(local_backend_factory, how):
    backend = local_backend_factory(components=())
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="mpu-resume")
    up = s3.create_multipart_upload(Bucket="mpu-resume", Key="model.tar.gz", ContentType="application/gzip",
                                    Metadata={"stage": "prod"})["UploadId"]
    p1, p2 = os.urandom(5 * MIB), os.urandom(MIB // 2)
    e1 = s3.upload_part(Bucket="mpu-resume", Key="model.tar.gz", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    dropped = s3.create_multipart_upload(Bucket="mpu-resume", Key="dropped")["UploadId"]
    s3.upload_part(Bucket="mpu-resume", Key="dropped", UploadId=dropped, PartNumber=1, Body=b"d")
    backend.restart(kill=how == "kill_9")
    s3 = backend.client("s3")
    listed = {u["UploadId"]: u["Key"] for u in s3.list_multipart_uploads(Bucket="mpu-resume").get("Uploads", [])}
    assert listed == {up: "model.tar.gz", dropped: "dropped"}
    parts = s3.list_parts(Bucket="mpu-resume", Key="model.tar.gz", UploadId=up)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, e1, len(p1))]
    e2 = s3.upload_part(Bucket="mpu-resume", Key="model.tar.gz", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    done = s3.complete_multipart_upload(
        Bucket="mpu-resume", Key="model.tar.gz", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert done["ETag"].endswith('-2"')
    s3.abort_multipart_upload(Bucket="mpu-resume", Key="dropped", UploadId=dropped)
    backend.restart()  # neither the completed nor the aborted upload comes back
    s3 = backend.client("s3")
    assert s3.list_multipart_uploads(Bucket="mpu-resume").get("Uploads", []) == []
    got = s3.get_object(Bucket="mpu-resume", Key="model.tar.gz")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(p1 + p2).digest()
    assert got["ETag"] == done["ETag"]
    assert got["ContentType"] == "application/gzip" and got["Metadata"] == {"stage": "prod"}
    assert _error(lambda: s3.head_object(Bucket="mpu-resume", Key="dropped"))[1] == 404
