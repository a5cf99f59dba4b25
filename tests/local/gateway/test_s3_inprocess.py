"""S3/STS/IAM are served in-process behind the gateway (issue 14 §1): one listening port, every S3
request through the gateway's guard, every kind of acknowledged S3 write on disk before the answer."""

from __future__ import annotations

import hashlib
import os

import psutil
import pytest
import requests
from botocore.exceptions import ClientError

AUTH = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0",
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
}


def _listening_ports(pid: int) -> set[int]:
    proc = psutil.Process(pid)
    conns = proc.net_connections if hasattr(proc, "net_connections") else proc.connections  # psutil < 6
    return {c.laddr.port for c in conns(kind="inet") if c.status == psutil.CONN_LISTEN}


def test_the_backend_listens_on_exactly_one_port_and_serves_s3_sts_iam_there(local_backend_factory):
    backend = local_backend_factory(components=())
    port = int(backend.url.rsplit(":", 1)[1])
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="one-port")  # moto's apps are built and used by now
    backend.client("sts").get_caller_identity()
    backend.client("iam").list_roles()
    assert _listening_ports(backend.pid) == {port}


def test_s3_from_a_web_page_is_refused_and_no_origin_is_echoed(local_backend_factory):
    backend = local_backend_factory(components=())
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="guarded")
    url = f"{backend.url}/guarded/csrf.txt"
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Host": "rebind.evil.example"}):
        resp = requests.put(url, data=b"pwned", headers=headers, timeout=10)
        assert resp.status_code == 403 and b"AccessDenied" in resp.content, (headers, resp.status_code)
        assert "Access-Control-Allow-Origin" not in resp.headers
    with pytest.raises(ClientError):
        s3.head_object(Bucket="guarded", Key="csrf.txt")
    for path in ("/moto-api/reset", "/moto-api/data.json"):
        assert requests.post(backend.url + path, headers={"Origin": "https://evil.example"}, timeout=10).status_code == 403
    assert s3.list_buckets()["Buckets"]  # the refused reset did nothing
    # A local page (a notebook front end) gets through the guard, but S3 answers CORS only from the
    # bucket's own configuration, as AWS does: no blanket Access-Control-Allow-Origin echo.
    resp = requests.get(f"{backend.url}/guarded", headers={"Origin": "http://localhost:8888", **AUTH}, timeout=10)
    assert resp.status_code == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_every_kind_of_s3_write_is_on_disk_before_the_answer(local_backend_factory, how):
    backend = local_backend_factory(components=())
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="kinds")
    s3.create_bucket(Bucket="kinds-doomed")
    presigned = s3.generate_presigned_url("put_object", Params={"Bucket": "kinds", "Key": "presigned.bin"})
    assert requests.put(presigned, data=b"via presigned url", timeout=10).status_code == 200
    post = s3.generate_presigned_post("kinds", "form.txt")
    resp = requests.post(post["url"], data=post["fields"], files={"file": ("form.txt", b"via form post")}, timeout=10)
    assert resp.status_code in (200, 204), resp.text
    resp = requests.put(backend.url + "/vhost.txt", data=b"via virtual host",
                        headers={**AUTH, "Host": "kinds.s3.amazonaws.com"}, timeout=10)
    assert resp.status_code == 200
    s3.put_object(Bucket="kinds", Key="meta_data.txt", Body=b"m", Metadata={"under_score": "kept"})
    big = os.urandom(9 * 1024 * 1024)  # above the gateway's in-memory threshold: spooled, then persisted
    s3.put_object(Bucket="kinds", Key="big.bin", Body=big)
    s3.put_object(Bucket="kinds", Key="a", Body=b"a")
    s3.put_object(Bucket="kinds", Key="b", Body=b"b")
    s3.delete_objects(Bucket="kinds", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    s3.put_object(Bucket="kinds-doomed", Key="x", Body=b"x")
    s3.delete_object(Bucket="kinds-doomed", Key="x")
    s3.delete_bucket(Bucket="kinds-doomed")
    backend.restart(kill=how == "kill_9")
    s3 = backend.client("s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kinds"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="kinds")["Contents"])
    assert keys == ["big.bin", "form.txt", "meta_data.txt", "presigned.bin", "vhost.txt"]
    assert s3.get_object(Bucket="kinds", Key="presigned.bin")["Body"].read() == b"via presigned url"
    assert s3.get_object(Bucket="kinds", Key="form.txt")["Body"].read() == b"via form post"
    assert s3.get_object(Bucket="kinds", Key="vhost.txt")["Body"].read() == b"via virtual host"
    assert s3.head_object(Bucket="kinds", Key="meta_data.txt")["Metadata"] == {"under_score": "kept"}
    got = s3.get_object(Bucket="kinds", Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    assert not list((backend.home / "s3" / ".incoming").glob("*"))  # spooled bodies are gone
