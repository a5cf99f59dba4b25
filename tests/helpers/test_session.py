"""Session: backend choice, clients, role/account/bucket discovery (STS/IAM/S3 stubbed)."""

from __future__ import annotations

import json
import time

import boto3
import pytest

import catkit.local
from catkit.session import Session, SessionError

ACCOUNT = "123456789012"


def _boto(region="us-east-1", creds=True):
    if creds:
        return boto3.Session(aws_access_key_id="AKID", aws_secret_access_key="s", region_name=region)
    return boto3.Session(region_name=region)


@pytest.fixture
def fake_local(monkeypatch):
    calls = []

    def ensure_running(home=None, port=None, time_scale=None):
        calls.append({"home": home, "port": port, "time_scale": time_scale})
        return "http://127.0.0.1:45999"

    monkeypatch.setattr(catkit.local, "ensure_running", ensure_running, raising=False)
    return calls


def test_auto_without_credentials_uses_local_backend(fake_local, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    s = Session(backend="auto", time_scale=60, home="/tmp/x", boto_session=boto3.Session())
    assert s.backend == "local"
    assert fake_local == [{"home": "/tmp/x", "port": None, "time_scale": 60}]
    assert s.endpoint_url == "http://127.0.0.1:45999"
    assert s.region == "us-east-1"
    assert s.sagemaker.meta.endpoint_url == "http://127.0.0.1:45999"
    assert s.runtime.meta.endpoint_url == "http://127.0.0.1:45999"
    assert s.sagemaker.meta.region_name == "us-east-1"
    creds = s.sagemaker._request_signer._credentials
    assert creds.access_key  # dummy credentials were supplied
    assert s.pricing is None  # no Pricing API locally: cost falls back to the bundled table
    assert s.client("sagemaker") is s.sagemaker  # cached


def test_auto_with_credentials_uses_aws(fake_local):
    s = Session(boto_session=_boto("eu-west-1"))
    assert s.backend == "aws" and s.endpoint_url is None and fake_local == []
    assert s.region == "eu-west-1"
    assert "eu-west-1" in s.sagemaker.meta.endpoint_url
    # Pricing API only exists in a few regions; eu-west-1 uses us-east-1's.
    assert s.pricing.meta.region_name == "us-east-1"


def test_aws_without_region_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(SessionError, match="No AWS region"):
        Session(backend="aws", boto_session=boto3.Session(aws_access_key_id="a", aws_secret_access_key="b"))


def test_bad_backend_name():
    with pytest.raises(SessionError, match="backend must be"):
        Session(backend="cloud")


def _stub(session, service):
    from botocore.stub import Stubber

    stubber = Stubber(session.client(service))
    stubber.activate()
    return stubber


def test_role_from_assumed_role_uses_iam_path():
    s = Session(backend="aws", boto_session=_boto())
    sts = _stub(s, "sts")
    sts.add_response("get_caller_identity", {"UserId": "AROA:me", "Account": ACCOUNT,
                                             "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/SMRole/SageMaker"})
    iam = _stub(s, "iam")
    iam.add_response("get_role", {"Role": {"Path": "/service-role/", "RoleName": "SMRole", "RoleId": "AROAEXAMPLEID12345",
                                           "Arn": f"arn:aws:iam::{ACCOUNT}:role/service-role/SMRole",
                                           "CreateDate": "2024-01-01T00:00:00Z"}},
                     {"RoleName": "SMRole"})
    assert s.role == f"arn:aws:iam::{ACCOUNT}:role/service-role/SMRole"
    assert s.account_id == ACCOUNT
    sts.assert_no_pending_responses()


def test_role_from_assumed_role_without_iam_access():
    s = Session(backend="aws", boto_session=_boto())
    _stub(s, "sts").add_response("get_caller_identity", {"UserId": "x", "Account": ACCOUNT,
                                                         "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/SMRole/sess"})
    _stub(s, "iam").add_client_error("get_role", "AccessDenied", "no", 403)
    assert s.role == f"arn:aws:iam::{ACCOUNT}:role/SMRole"


def test_user_identity_is_not_a_role_on_aws():
    s = Session(backend="aws", boto_session=_boto())
    _stub(s, "sts").add_response("get_caller_identity", {"UserId": "x", "Account": ACCOUNT,
                                                         "Arn": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    with pytest.raises(SessionError, match="not an IAM role"):
        _ = s.role


def test_role_override_skips_discovery():
    s = Session(backend="aws", boto_session=_boto(), role="arn:aws:iam::1:role/x")
    assert s.role == "arn:aws:iam::1:role/x"


def test_default_bucket_created_with_location_constraint():
    s = Session(backend="aws", boto_session=_boto("eu-west-1"))
    s._account_id = ACCOUNT
    s3 = _stub(s, "s3")
    name = f"sagemaker-eu-west-1-{ACCOUNT}"
    s3.add_client_error("head_bucket", "404", "Not Found", 404,
                        expected_params={"Bucket": name, "ExpectedBucketOwner": ACCOUNT})
    s3.add_response("create_bucket", {"Location": f"/{name}"},
                    {"Bucket": name, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}})
    assert s.bucket == name
    assert s.bucket == name  # cached: no second HeadBucket
    s3.assert_no_pending_responses()


def test_default_bucket_owned_by_someone_else():
    s = Session(backend="aws", boto_session=_boto())
    s._account_id = ACCOUNT
    _stub(s, "s3").add_client_error("head_bucket", "403", "Forbidden", 403)
    with pytest.raises(SessionError, match="not usable"):
        _ = s.bucket


def test_local_now_follows_emulated_clock(fake_local, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    started = time.time() - 10.0
    (home / "backend.json").write_text(json.dumps({"pid": 1, "port": 1, "url": "x", "time_scale": 60.0,
                                                   "started": started}))
    s = Session(backend="local", home=str(home), boto_session=_boto())
    ahead = (s.now().timestamp() - time.time())
    assert ahead > 9 * 59  # 10 real seconds at 60x = ~600 emulated seconds ahead


def test_local_now_asks_the_gateway(monkeypatch):
    import http.server
    import threading

    class Info(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"now": 2_000_000_000.5}).encode() if self.path == "/_catkit/info" else b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Info)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setattr(catkit.local, "ensure_running", lambda **_kw: url, raising=False)
        s = Session(backend="local", boto_session=_boto())
        assert s.now().timestamp() == 2_000_000_000.5
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_auto_follows_use_local_endpoint_env(fake_local, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:45999")
    s = Session(boto_session=_boto())  # credentials resolve, but the env points at the local gateway
    assert s.backend == "local" and s.endpoint_url == "http://127.0.0.1:45999"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://vpce-123.sagemaker.us-east-1.vpce.amazonaws.com")
    assert Session(boto_session=_boto()).backend == "aws"


def test_role_from_studio_metadata(tmp_path, monkeypatch):
    import catkit.session as session_mod

    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"DomainId": "d-abc123", "UserProfileName": "alice", "ResourceName": "app"}))
    monkeypatch.setattr(session_mod, "NOTEBOOK_METADATA_FILE", str(meta))
    s = Session(backend="aws", boto_session=_boto())
    sm = _stub(s, "sagemaker")
    sm.add_response("describe_user_profile", {"DomainId": "d-abc123", "UserProfileName": "alice", "UserSettings": {}},
                    {"DomainId": "d-abc123", "UserProfileName": "alice"})
    sm.add_response("describe_domain", {"DomainId": "d-abc123", "DefaultUserSettings": {
        "ExecutionRole": f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole-1"}},
        {"DomainId": "d-abc123"})
    assert s.role == f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole-1"
    sm.assert_no_pending_responses()


def test_role_from_notebook_instance_metadata(tmp_path, monkeypatch):
    import catkit.session as session_mod

    meta = tmp_path / "resource-metadata.json"
    meta.write_text(json.dumps({"ResourceName": "my-notebook"}))
    monkeypatch.setattr(session_mod, "NOTEBOOK_METADATA_FILE", str(meta))
    s = Session(backend="aws", boto_session=_boto())
    _stub(s, "sagemaker").add_response(
        "describe_notebook_instance", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/nb-role"},
        {"NotebookInstanceName": "my-notebook"})
    assert s.role == f"arn:aws:iam::{ACCOUNT}:role/nb-role"


def test_console_role_without_iam_access_gets_service_role_path():
    s = Session(backend="aws", boto_session=_boto())
    _stub(s, "sts").add_response("get_caller_identity", {
        "UserId": "x", "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AmazonSageMaker-ExecutionRole-2024/SageMaker"})
    _stub(s, "iam").add_client_error("get_role", "AccessDenied", "no", 403)
    assert s.role == f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole-2024"
