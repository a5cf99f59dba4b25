"""The load generator against a tiny in-process endpoint: bounded, signed like boto3, results frame."""

from __future__ import annotations

import re

import pytest
from botocore.credentials import Credentials

from catkit.whatif import load

CREDS = Credentials("AKIDEXAMPLE", "secret")


def _target(url: str, creds=CREDS) -> load.Target:
    return load.Target(url, "eu-west-1", creds, "my-endpoint", local=True)


def test_requests_are_bounded_by_max_requests(fake_endpoint):
    ep = fake_endpoint()
    res = load.run_load(_target(ep.url), None, load.Constant(200), duration_s=60, max_requests=25,
                        time_scale=1, progress=False)
    assert res.requests == 25 == len(ep.requests) and res.ok == 25
    assert res.planned == 25


def test_requests_are_bounded_by_duration_and_time_scale(fake_endpoint):
    ep = fake_endpoint()
    # 60 emulated seconds at 2 req/s, replayed at time scale 60: 120 requests in about one second.
    res = load.run_load(_target(ep.url), None, load.Constant(2), duration_s=60, time_scale=60, progress=False)
    f = res.frame
    assert res.requests == 120 == len(ep.requests)
    assert res.time_scale == 60
    assert f["time"].between(0, 60).all()
    assert (f["timestamp"] - res.start_timestamp - f["time"]).abs().max() < 1e-6


def test_requests_are_sigv4_signed_like_boto3(fake_endpoint):
    ep = fake_endpoint()
    load.run_load(_target(ep.url), None, 5.0, duration_s=1, time_scale=1, progress=False,
                  payload=b'{"x": 1}', content_type="application/json", accept="application/json")
    h = ep.requests[0]["headers"]
    assert re.match(
        r"^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\d{8}/eu-west-1/sagemaker/aws4_request, "
        r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$",
        h["Authorization"],
    ), h["Authorization"]
    assert "X-Amz-Date" in h and h["Content-Type"] == "application/json" and h["Accept"] == "application/json"
    assert ep.requests[0]["body"] == b'{"x": 1}' and ep.requests[0]["name"] == "my-endpoint"


def test_signature_matches_botocore_for_the_same_request(fake_endpoint):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    ep = fake_endpoint()
    load.run_load(_target(ep.url), None, 3.0, duration_s=1, time_scale=1, progress=False, payload=b"abc",
                  content_type="text/csv")
    h = ep.requests[0]["headers"]
    req = AWSRequest(method="POST", url=f"{ep.url}/endpoints/my-endpoint/invocations", data=b"abc",
                     headers={"Content-Type": "text/csv", "X-Amz-Date": h["X-Amz-Date"]})
    auth = SigV4Auth(CREDS, "sagemaker", "eu-west-1")
    req.context["timestamp"] = h["X-Amz-Date"]
    canonical = auth.canonical_request(req)
    signature = auth.signature(auth.string_to_sign(req, canonical), req)
    assert h["Authorization"].endswith(signature)


def test_frame_columns_variant_and_payload_cycling(fake_endpoint):
    ep = fake_endpoint()
    res = load.run_load(_target(ep.url), None, 10.0, duration_s=1, time_scale=1, progress=False,
                        payload=[b"a", b"b", b"c"])
    f = res.frame
    assert list(f.columns) == ["time", "timestamp", "sent_delay_ms", "latency_ms", "status", "error", "variant",
                               "target_model", "cold"]
    assert set(f["variant"]) == {"AllTraffic"} and (f["status"] == 200).all() and (f["error"] == "").all()
    assert (f["latency_ms"] > 0).all()
    assert [r["body"] for r in ep.requests[:4]] == [b"a", b"b", b"c", b"a"]
    s = res.summary()
    assert s["requests"] == 10 and s["ok"] == 10 and s["p50_ms"] <= s["p99_ms"]


def test_errors_carry_the_aws_error_code(fake_endpoint):
    ep = fake_endpoint(status=424)
    res = load.run_load(_target(ep.url), None, 5.0, duration_s=1, time_scale=1, progress=False)
    assert (res.frame["status"] == 424).all() and set(res.frame["error"]) == {"ModelError"}
    assert res.summary()["errors"] == {"ModelError": 5} and res.ok == 0


def test_connection_errors_are_recorded_not_raised():
    res = load.run_load(_target("http://127.0.0.1:9"), None, 5.0, duration_s=1, time_scale=1, progress=False,
                        timeout_s=2)
    assert res.requests == 5 and (res.frame["status"] == 0).all()
    assert (res.frame["error"] != "").all()


def test_multi_model_target_models_and_cold_marks(fake_endpoint):
    ep = fake_endpoint()
    res = load.run_load(_target(ep.url), None, 6.0, duration_s=1, time_scale=1, progress=False,
                        target_models=["a.tar.gz", "b.tar.gz"])
    assert [r["headers"]["X-Amzn-SageMaker-Target-Model"] for r in ep.requests[:3]] == [
        "a.tar.gz", "b.tar.gz", "a.tar.gz"]
    assert res.frame["cold"].tolist() == [True, True, False, False, False, False]


def test_time_scale_auto_reads_the_local_gateway(fake_endpoint):
    ep = fake_endpoint(info={"time_scale": 120, "now": 1_800_000_000.0})
    res = load.run_load(_target(ep.url), None, 1.0, duration_s=240, progress=False)
    assert res.time_scale == 120 and res.requests == 240
    assert res.start_timestamp >= 1_800_000_000.0


def test_open_loop_waits_when_max_in_flight_is_reached(fake_endpoint):
    ep = fake_endpoint(workers=1, service_s=0.05)
    res = load.run_load(_target(ep.url), None, 100.0, duration_s=0.2, time_scale=1, progress=False,
                        max_in_flight=2)
    assert res.requests == 20
    assert res.frame["sent_delay_ms"].max() > 0  # late sends are visible, not hidden


def test_session_target_uses_runtime_client_and_credentials():
    class FakeMeta:
        endpoint_url = "https://runtime.sagemaker.eu-west-1.amazonaws.com"
        region_name = "eu-west-1"

    class FakeBoto:
        def get_credentials(self):
            return CREDS

    class FakeSession:
        runtime = type("C", (), {"meta": FakeMeta()})()
        boto_session = FakeBoto()

    t = load.target_for(FakeSession(), "ep/1")
    assert t.invoke_url == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/ep%2F1/invocations"
    assert t.region == "eu-west-1" and t.local is False


def test_bad_arguments():
    with pytest.raises(ValueError, match="endpoint_name"):
        load.run_load(object(), None, 1.0, duration_s=1)
    with pytest.raises(ValueError, match="duration_s"):
        load.arrival_times(load.Constant(1), 0)


def test_run_load_works_inside_a_running_event_loop(fake_endpoint):
    # Jupyter runs cells inside an event loop; run_load then uses a helper thread.
    import asyncio

    ep = fake_endpoint()

    async def cell():
        return load.run_load(_target(ep.url), None, 10.0, duration_s=1, time_scale=1, progress=False)

    res = asyncio.run(cell())
    assert res.requests == 10 == res.ok


def test_empty_plan_gives_an_empty_frame(fake_endpoint):
    ep = fake_endpoint()
    res = load.run_load(_target(ep.url), None, 0.0, duration_s=5, time_scale=1, progress=False)
    assert res.requests == 0 and ep.requests == []
    assert res.summary()["requests"] == 0


def test_timeline_buckets_requests(fake_endpoint):
    ep = fake_endpoint()
    res = load.run_load(_target(ep.url), None, load.Step(1, 3, at_s=60), duration_s=120, time_scale=60,
                        progress=False)
    tl = res.timeline(60)
    assert tl["requests"].tolist() == [60, 180] and tl["rate"].tolist() == [1, 3]
    assert (tl["errors"] == 0).all()
