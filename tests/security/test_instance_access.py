"""Instances answer only the gateway (issue 14 finding 2): a direct call to an instance port - an
invocation with a foreign Origin/Host, or the multi-model API's DELETE /models/<name> - is refused,
while the gateway's invocations, health checks and model loads keep working."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from catkit.local.fleet.model_cache import opaque_model_id
from catkit.testing import LocalBackend, deploy_endpoint, multi_model_archive, upload_model
from catkit.testing.endpoints import ROLE


def _call(url: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    b = LocalBackend(tmp_path_factory.mktemp("side") / "home", time_scale=600)
    try:
        b.start()
        yield b
    finally:
        b.close()


def test_direct_invocation_of_an_instance_port_is_refused(backend):
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    assert deploy_endpoint(sm, "door", upload_model(backend))["EndpointStatus"] == "InService"
    ((url, token),) = backend.instance_clients("door")
    foreign = {"Origin": "http://evil.example", "Host": "evil.example", "Content-Type": "text/plain"}
    status, body = _call(f"{url}/invocations", "POST", b"hi", foreign)
    assert status == 403 and b"gateway" in body
    assert _call(f"{url}/invocations", "POST", b"hi", {**foreign, **{k: "wrong" for k in token}})[0] == 403
    assert _call(f"{url}/ping")[0] == 403
    # The instance's own token opens it (what the gateway sends), and the gateway still works.
    assert _call(f"{url}/invocations", "POST", b"hi", {"Content-Type": "text/plain", **token}) == (200, b"hi")
    out = rt.invoke_endpoint(EndpointName="door", Body=b"via gateway", ContentType="text/plain")
    assert out["Body"].read() == b"via gateway"
    assert sm.describe_endpoint(EndpointName="door")["EndpointStatus"] == "InService"


def test_multi_model_api_is_reachable_only_through_the_gateway(backend):
    sm, rt, s3 = (backend.client(s) for s in ("sagemaker", "sagemaker-runtime", "s3"))
    s3.create_bucket(Bucket="mme-door")
    s3.put_object(Bucket="mme-door", Key="m/a.tar.gz", Body=multi_model_archive("a", mb=1))
    sm.create_model(ModelName="mme-door", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "local/mme:1", "Mode": "MultiModel", "ModelDataUrl": "s3://mme-door/m/"})
    sm.create_endpoint_config(EndpointConfigName="mme-door", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "mme-door", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="mme-door", EndpointConfigName="mme-door")
    from catkit.testing import wait_for_endpoint

    assert wait_for_endpoint(sm, "mme-door", ("InService", "Failed"))["EndpointStatus"] == "InService"

    def invoke() -> dict:
        out = rt.invoke_endpoint(EndpointName="mme-door", TargetModel="a.tar.gz", Body=b"{}",
                                 ContentType="application/json")
        return json.loads(out["Body"].read())

    assert invoke()["model"] == "a"
    ((url, token),) = backend.instance_clients("mme-door")
    model_id = opaque_model_id("a.tar.gz")
    for method, path, body in (("DELETE", f"/models/{model_id}", None), ("GET", "/models", None),
                               ("POST", "/models", json.dumps({"model_name": "x", "url": "/"}).encode()),
                               ("POST", f"/models/{model_id}/invoke", b"{}")):
        status, text = _call(url + path, method, body, {"Content-Type": "application/json"})
        assert status == 403, (method, path, status, text)
    # Still loaded in the container, and the backend agrees: the next call is served (not 424).
    status, text = _call(f"{url}/models", headers=token)
    assert status == 200 and model_id in {m["modelName"] for m in json.loads(text)["models"]}
    assert invoke()["model"] == "a"
