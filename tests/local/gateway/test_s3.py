"""S3 through the gateway (moto behind it): the common operations, both addressing styles,
both ways of pointing boto3 at the backend, and durability across stop/start and kill -9."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from catkit.testing import wait_until

AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
}


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(components=())


@pytest.fixture
def s3(backend):
    return backend.client("s3")


def _keys(s3, bucket, prefix=""):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_endpoint_url_argument_and_env_var_both_work(backend, monkeypatch):
    explicit = backend.client("s3")
    explicit.create_bucket(Bucket="via-arg")
    monkeypatch.setenv("AWS_ENDPOINT_URL", backend.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    implicit = boto3.client("s3")
    assert implicit.meta.endpoint_url == backend.url
    implicit.put_object(Bucket="via-arg", Key="k", Body=b"env")
    assert explicit.get_object(Bucket="via-arg", Key="k")["Body"].read() == b"env"
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_put_get_head_list_copy_delete(s3):
    s3.create_bucket(Bucket="ops")
    s3.put_object(
        Bucket="ops",
        Key="models/a.tar.gz",
        Body=b"A" * 10,
        ContentType="application/x-tar",
        Metadata={"owner": "cat"},
    )
    head = s3.head_object(Bucket="ops", Key="models/a.tar.gz")
    assert head["ContentLength"] == 10
    assert head["ContentType"] == "application/x-tar"
    assert head["Metadata"] == {"owner": "cat"}
    assert head["ETag"] == f'"{hashlib.md5(b"A" * 10).hexdigest()}"'
    s3.copy_object(
        Bucket="ops", Key="models/b.tar.gz", CopySource={"Bucket": "ops", "Key": "models/a.tar.gz"}
    )
    assert s3.get_object(Bucket="ops", Key="models/b.tar.gz")["Body"].read() == b"A" * 10
    assert _keys(s3, "ops", "models/") == ["models/a.tar.gz", "models/b.tar.gz"]
    s3.delete_object(Bucket="ops", Key="models/a.tar.gz")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="ops", Key="models/a.tar.gz")
    assert info.value.response["Error"]["Code"] == "NoSuchKey"
    s3.delete_objects(Bucket="ops", Delete={"Objects": [{"Key": "models/b.tar.gz"}]})
    assert _keys(s3, "ops") == []
    s3.delete_bucket(Bucket="ops")
    assert "ops" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_multipart_upload(s3):
    s3.create_bucket(Bucket="multi")
    part1, part2 = os.urandom(5 * 1024 * 1024), b"tail"
    upload = s3.create_multipart_upload(Bucket="multi", Key="big.bin", ContentType="application/octet-stream")
    uid = upload["UploadId"]
    e1 = s3.upload_part(Bucket="multi", Key="big.bin", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket="multi", Key="big.bin", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    s3.complete_multipart_upload(
        Bucket="multi",
        Key="big.bin",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    obj = s3.get_object(Bucket="multi", Key="big.bin")
    assert obj["Body"].read() == part1 + part2
    assert obj["ETag"].endswith('-2"')


def test_virtual_host_style(backend, s3):
    assert (
        requests.put(
            backend.url + "/", headers={**AUTH, "Host": "vhost-bucket.s3.amazonaws.com"}, timeout=10
        ).status_code
        == 200
    )
    resp = requests.put(
        backend.url + "/dir/k.txt",
        data=b"virtual",
        headers={**AUTH, "Host": "vhost-bucket.s3.amazonaws.com"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert s3.get_object(Bucket="vhost-bucket", Key="dir/k.txt")["Body"].read() == b"virtual"


def test_hostile_keys_stay_inside_the_s3_directory(backend, s3):
    s3.create_bucket(Bucket="hostile")
    keys = ["../../../../outside.txt", "/abs/path", "a/../../b", "..", "%2e%2e/x", "ключ/с/юникодом"]
    for key in keys:
        s3.put_object(Bucket="hostile", Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket="hostile", Key=key)["Body"].read() == key.encode()
    s3_root = backend.home / "s3"
    for path in backend.home.rglob("*"):
        if path.is_file() and not path.is_relative_to(s3_root):
            assert path.relative_to(backend.home).as_posix() in {
                "state.sqlite",
                "state.sqlite-wal",
                "state.sqlite-shm",
                "backend.json",
                "backend.lock",
                "logs/backend.log",
                "logs/access.log",
                "last_port",
                "metrics.bin",  # CloudWatch's metric data, saved every few seconds
            }, path
    assert not (backend.home.parent / "outside.txt").exists()


def test_oversize_s3_put_is_rejected(backend):
    # A Content-Length above the cap is refused before the body is read.
    import http.client
    from urllib.parse import urlsplit

    from catkit.local.gateway import S3_MAX_BODY

    parts = urlsplit(backend.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("PUT", "/any-bucket/k")
        for name, value in AUTH.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(S3_MAX_BODY + 1))
        conn.endheaders()
        conn.send(b"x" * 1024)
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    assert resp.status == 400
    assert "<Code>EntityTooLarge</Code>" in body


def test_upload_file_and_download_file_with_s3transfer(backend, s3, tmp_path):
    """s3transfer: threaded multipart upload above its 8 MB threshold, streaming download."""
    from boto3.s3.transfer import TransferConfig

    src = tmp_path / "model.tar.gz"
    src.write_bytes(os.urandom(9 * 1024 * 1024))
    s3.create_bucket(Bucket="transfer")
    config = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(src), "transfer", "artifacts/model.tar.gz", Config=config)
    dst = tmp_path / "back.tar.gz"
    s3.download_file("transfer", "artifacts/model.tar.gz", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert s3.head_object(Bucket="transfer", Key="artifacts/model.tar.gz")["ETag"].endswith('-2"')


@pytest.mark.parametrize("signature_version", ["s3", "s3v4"])  # boto3's default presign is SigV2 query auth
def test_presigned_urls_work_and_signatures_stay_out_of_the_access_log(backend, signature_version):
    from urllib.parse import parse_qs, urlsplit

    from botocore.config import Config

    s3 = backend.client("s3", config=Config(signature_version=signature_version))
    bucket = f"presigned-{signature_version}"
    s3.create_bucket(Bucket=bucket)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p.txt"})
    assert requests.put(put_url, data=b"presigned body", timeout=10).status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p.txt"})
    resp = requests.get(get_url, timeout=10)
    assert resp.status_code == 200 and resp.content == b"presigned body"
    query = parse_qs(urlsplit(get_url).query)
    signature = (query.get("X-Amz-Signature") or query.get("Signature"))[0]
    access = backend.home / "logs" / "access.log"  # written at most half a second after the request
    wait_until(lambda: f"/{bucket}/p.txt" in access.read_text(), timeout=10, what="the access log line")
    log = access.read_text()
    assert f"/{bucket}/p.txt" in log
    assert signature not in log and "Signature=REDACTED" in log


def test_content_encoded_bodies_pass_through_byte_for_byte(s3):
    import gzip

    s3.create_bucket(Bucket="gzipped")
    body = gzip.compress(b"cat with hat " * 200)
    s3.put_object(Bucket="gzipped", Key="data.json.gz", Body=body, ContentEncoding="gzip")
    got = s3.get_object(Bucket="gzipped", Key="data.json.gz")
    assert got["ContentEncoding"] == "gzip"
    assert got["Body"].read() == body
