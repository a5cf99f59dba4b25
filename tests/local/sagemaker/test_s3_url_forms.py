"""ModelDataUrl and multi-model prefixes in every S3 URL form serve from the local S3."""

from __future__ import annotations

import pytest

from catkit.testing.archives import multi_model_archive
from catkit.testing.endpoints import create_model, upload_model, wait_for_endpoint


@pytest.fixture(scope="module")
def backend(module_backend_factory):
    return module_backend_factory(time_scale=1000)


def _deploy(sm, name, url, mode=None):
    create_model(sm, f"{name}-m", url, mode=mode)
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")


FORMS = {
    "s3": "s3://url-forms/{key}",
    "path-global": "https://s3.amazonaws.com/url-forms/{key}",
    "path-dash-region": "https://s3-us-west-2.amazonaws.com/url-forms/{key}",
    "path-dot-region": "https://s3.us-west-2.amazonaws.com/url-forms/{key}",
    "vhost-global": "https://url-forms.s3.amazonaws.com/{key}",
    "vhost-region": "https://url-forms.s3.us-west-2.amazonaws.com/{key}",
}


def test_model_data_url_in_every_form_serves(backend):
    upload_model(backend, key="echo/model.tar.gz", bucket="url-forms")
    sm, rt = backend.client("sagemaker"), backend.client("sagemaker-runtime")
    for form, template in FORMS.items():
        _deploy(sm, f"form-{form}", template.format(key="echo/model.tar.gz"))
    for form in FORMS:
        d = wait_for_endpoint(sm, f"form-{form}", ("InService", "Failed"))
        assert d["EndpointStatus"] == "InService", (form, d.get("FailureReason"))
        body = rt.invoke_endpoint(EndpointName=f"form-{form}", Body=b"hat", ContentType="text/plain")["Body"]
        assert body.read() == b"hat"
        sm.delete_endpoint(EndpointName=f"form-{form}")


@pytest.mark.parametrize("form", ["path-dash-region", "vhost-region"])
def test_multi_model_prefix_in_https_form_serves(backend, form):
    s3 = backend.client("s3")
    upload_model(backend, key="mme/a.tar.gz", bucket="url-forms", data=multi_model_archive("a", mb=1))
    name = f"mme-{form}"
    _deploy(backend.client("sagemaker"), name, FORMS[form].format(key="mme/"), mode="MultiModel")
    assert s3.head_object(Bucket="url-forms", Key="mme/a.tar.gz")
    d = wait_for_endpoint(backend.client("sagemaker"), name, ("InService", "Failed"))
    assert d["EndpointStatus"] == "InService", d.get("FailureReason")
    out = backend.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, TargetModel="a.tar.gz", Body=b"{}", ContentType="application/json")
    assert out["Body"].read()


def test_a_url_that_is_not_s3_is_refused(backend):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="is not an S3 URL"):
        create_model(backend.client("sagemaker"), "not-s3", "https://example.com/b/model.tar.gz")
