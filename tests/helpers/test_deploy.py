"""deploy helpers against stubbed SageMaker (request/response shapes checked by botocore)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from botocore.stub import ANY
from helpers_fakes import (
    describe_endpoint,
    describe_endpoint_config,
    describe_model,
    endpoint_arn,
    not_found_error,
)

from catkit import deploy as d

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def _expect_create(stubs, name, *, count=2, mode="SingleModel", url="s3://b/model.tar.gz", itype="ml.m5.xlarge"):
    sm = stubs["sagemaker"]
    sm.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{name}"},
        {
            "ModelName": name,
            "PrimaryContainer": {"Image": "img:1", "ModelDataUrl": url, "Mode": mode},
            "ExecutionRoleArn": ROLE,
            "Tags": [
                {"Key": "catkit:created-by", "Value": "catkit"},
                {"Key": "catkit:purpose", "Value": "dev"},
                {"Key": "team", "Value": "cats"},
            ],
        },
    )
    sm.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name}"},
        {
            "EndpointConfigName": name,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InitialInstanceCount": count,
                    "InstanceType": itype,
                    "InitialVariantWeight": 1.0,
                }
            ],
            "Tags": ANY,
        },
    )
    sm.add_response(
        "create_endpoint",
        {"EndpointArn": endpoint_arn(name)},
        {"EndpointName": name, "EndpointConfigName": name, "Tags": ANY},
    )


def test_deploy_creates_model_config_endpoint_and_waits(session, stubs, no_sleep):
    _expect_create(stubs, "ep1")
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Creating"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Creating"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "InService"), {"EndpointName": "ep1"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 2 instances: no HA warning
        out = d.deploy(session, "s3://b/model.tar.gz", name="ep1", image_uri="img:1",
                       tags={"team": "cats"}, progress=False)
    stubs.verify()
    assert out.status == "InService"
    assert out.instance_count == 2 and out.instance_type == "ml.m5.xlarge"
    assert out.tags == {"catkit:created-by": "catkit", "catkit:purpose": "dev", "team": "cats"}
    assert no_sleep == [0.5, 1.0]  # backoff between the three polls


def test_deploy_single_instance_warns_about_high_availability(session, stubs):
    _expect_create(stubs, "ep1", count=1)
    with pytest.warns(d.HighAvailabilityWarning, match="Availability Zones"):
        d.deploy(session, "s3://b/model.tar.gz", name="ep1", image_uri="img:1", instance_count=1,
                 tags={"team": "cats"}, wait=False)
    stubs.verify()


def test_deploy_multi_model_needs_prefix(session):
    with pytest.raises(ValueError, match="ending in '/'"):
        d.deploy(session, "s3://b/models/m.tar.gz", name="x", image_uri="img:1", multi_model=True, wait=False)


def test_deploy_multi_model_sets_mode(session, stubs):
    _expect_create(stubs, "mme", mode="MultiModel", url="s3://b/models/")
    d.deploy(session, "s3://b/models/", name="mme", image_uri="img:1", multi_model=True,
             tags={"team": "cats"}, wait=False)
    stubs.verify()


def test_deploy_rejects_missing_local_file(session):
    with pytest.raises(ValueError, match="pack_model"):
        d.deploy(session, "/nonexistent/model.tar.gz", name="x", image_uri="img:1", wait=False)


def test_deploy_uploads_local_archive(session, stubs, tmp_path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"not really a tarball")
    stubs["s3"].add_response("put_object", {}, {"Bucket": "test-bucket", "Key": "catkit/models/ep1/model.tar.gz",
                                                "Body": ANY, "ChecksumAlgorithm": ANY,
                                                "ContentType": "application/x-gzip"})
    _expect_create(stubs, "ep1", url="s3://test-bucket/catkit/models/ep1/model.tar.gz")
    out = d.deploy(session, str(archive), name="ep1", image_uri="img:1", tags={"team": "cats"}, wait=False)
    assert out.model_data == "s3://test-bucket/catkit/models/ep1/model.tar.gz"
    stubs.verify()


def test_wait_failure_raises_with_failure_reason(session, stubs, no_sleep):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Creating"), {"EndpointName": "ep1"})
    sm.add_response(
        "describe_endpoint",
        describe_endpoint("ep1", "Failed", failure="The primary container for production variant AllTraffic "
                          "did not pass the ping health check."),
        {"EndpointName": "ep1"},
    )
    with pytest.raises(d.EndpointFailedError, match="did not pass the ping health check") as info:
        d.wait_for_endpoint(session, "ep1", progress=False)
    assert info.value.status == "Failed"
    stubs.verify()


def test_wait_timeout_names_last_status(session, stubs, no_sleep):
    sm = stubs["sagemaker"]
    for _ in range(4):
        sm.add_response("describe_endpoint", describe_endpoint("ep1", "Creating"), {"EndpointName": "ep1"})
    with pytest.raises(d.EndpointWaitTimeout, match="still Creating"):
        d.wait_for_endpoint(session, "ep1", timeout=10, poll=4, progress=False)
    assert sum(no_sleep) == pytest.approx(10)  # last sleep shortened to the deadline
    stubs.verify()


def test_describe_missing_endpoint_is_clear(session, stubs):
    stubs["sagemaker"].add_client_error("describe_endpoint", **not_found_error("nope"))
    with pytest.raises(d.EndpointNotFoundError, match="No endpoint named 'nope'"):
        d.describe_endpoint(session, "nope")


def test_set_instance_count(session, stubs, no_sleep):
    sm = stubs["sagemaker"]
    sm.add_response(
        "update_endpoint_weights_and_capacities",
        {"EndpointArn": endpoint_arn("ep1")},
        {"EndpointName": "ep1", "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 4}]},
    )
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Updating", current=2, desired=4), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "InService", current=4, desired=4), {"EndpointName": "ep1"})
    desc = d.set_instance_count(session, "ep1", 4, progress=False)
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 4
    stubs.verify()


def test_set_instance_count_one_warns_and_zero_rejected(session, stubs):
    stubs["sagemaker"].add_response("update_endpoint_weights_and_capacities", {"EndpointArn": endpoint_arn("ep1")})
    stubs["sagemaker"].add_response("describe_endpoint", describe_endpoint("ep1", "Updating"))
    with pytest.warns(d.HighAvailabilityWarning):
        d.set_instance_count(session, "ep1", 1, wait=False)
    with pytest.raises(ValueError, match=">= 1"):
        d.set_instance_count(session, "ep1", 0)


def test_update_model_blue_green(session, stubs, no_sleep, monkeypatch):
    monkeypatch.setattr(d, "unique_name", lambda prefix: f"{prefix}-v2")
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", current=3, config="ep1"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1", count=2),
                    {"EndpointConfigName": "ep1"})
    sm.add_response("describe_model", describe_model("ep1", "s3://b/v1.tar.gz"), {"ModelName": "ep1"})
    sm.add_response("list_tags", {"Tags": [{"Key": "catkit:purpose", "Value": "demo"}]}, {"ResourceArn": ANY})
    sm.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/ep1-v2"},
        {
            "ModelName": "ep1-v2",
            "PrimaryContainer": {"Image": "img:1", "Mode": "SingleModel", "ModelDataUrl": "s3://b/v2.tar.gz"},
            "ExecutionRoleArn": ROLE,
            "Tags": [{"Key": "catkit:purpose", "Value": "demo"}],
        },
    )
    sm.add_response("list_tags", {"Tags": []}, {"ResourceArn": ANY})
    sm.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/ep1-v2"},
        {
            "EndpointConfigName": "ep1-v2",
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "ModelName": "ep1-v2", "InitialInstanceCount": 3,
                 "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 1.0}
            ],
            "Tags": ANY,
        },
    )
    sm.add_response("update_endpoint", {"EndpointArn": endpoint_arn("ep1")},
                    {"EndpointName": "ep1", "EndpointConfigName": "ep1-v2", "RetainAllVariantProperties": True})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Updating"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "InService", config="ep1-v2"), {"EndpointName": "ep1"})
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "ep1"})
    sm.add_response("delete_model", {}, {"ModelName": "ep1"})
    assert d.update_model(session, "ep1", "s3://b/v2.tar.gz", delete_old=True, progress=False) == "ep1-v2"
    stubs.verify()


def test_update_model_requires_in_service(session, stubs):
    stubs["sagemaker"].add_response("describe_endpoint", describe_endpoint("ep1", "Updating"))
    with pytest.raises(RuntimeError, match="needs it InService"):
        d.update_model(session, "ep1", "s3://b/v2.tar.gz")


def test_delete_endpoint_deletes_config_and_models(session, stubs):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", config="cfg1"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint_config", describe_endpoint_config("cfg1", "m1"), {"EndpointConfigName": "cfg1"})
    sm.add_response("delete_endpoint", {}, {"EndpointName": "ep1"})
    sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": "cfg1"})
    sm.add_response("delete_model", {}, {"ModelName": "m1"})
    assert d.delete_endpoint(session, "ep1") == ["endpoint:ep1", "endpoint-config:cfg1", "model:m1"]
    stubs.verify()


def test_delete_endpoint_keep_config_and_wait_until_gone(session, stubs, no_sleep):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", config="cfg1"), {"EndpointName": "ep1"})
    sm.add_response("delete_endpoint", {}, {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "Deleting"), {"EndpointName": "ep1"})
    sm.add_client_error("describe_endpoint", **not_found_error("ep1"))
    assert d.delete_endpoint(session, "ep1", delete_config=False, delete_model=False, wait=True) == ["endpoint:ep1"]
    stubs.verify()


def test_delete_tagged_endpoints_paginates_and_filters(session, stubs):
    sm = stubs["sagemaker"]

    def summary(name):
        return {"EndpointName": name, "EndpointArn": endpoint_arn(name), "CreationTime": describe_endpoint(name)["CreationTime"],
                "LastModifiedTime": describe_endpoint(name)["CreationTime"], "EndpointStatus": "InService"}

    sm.add_response("list_endpoints", {"Endpoints": [summary("a"), summary("b")], "NextToken": "t1"}, {})
    sm.add_response("list_tags", {"Tags": [{"Key": "catkit:purpose", "Value": "dev"}]}, {"ResourceArn": endpoint_arn("a")})
    sm.add_response("list_tags", {"Tags": [{"Key": "catkit:purpose", "Value": "prod"}]}, {"ResourceArn": endpoint_arn("b")})
    sm.add_response("list_endpoints", {"Endpoints": [summary("c")]}, {"NextToken": "t1"})
    sm.add_response("list_tags", {"Tags": [{"Key": "other", "Value": "x"}], "NextToken": "n"}, {"ResourceArn": endpoint_arn("c")})
    sm.add_response("list_tags", {"Tags": [{"Key": "catkit:purpose", "Value": "dev"}]},
                    {"ResourceArn": endpoint_arn("c"), "NextToken": "n"})
    for name in ("a", "c"):
        sm.add_response("describe_endpoint", describe_endpoint(name), {"EndpointName": name})
        sm.add_response("describe_endpoint_config", describe_endpoint_config(name, name), {"EndpointConfigName": name})
        sm.add_response("delete_endpoint", {}, {"EndpointName": name})
        sm.add_response("delete_endpoint_config", {}, {"EndpointConfigName": name})
        sm.add_response("delete_model", {}, {"ModelName": name})
    assert d.delete_tagged_endpoints(session, "catkit:purpose", "dev") == ["a", "c"]
    stubs.verify()


def test_default_image_uri_matches_the_sdk_table():
    assert d.default_image_uri("us-east-1") == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert d.default_image_uri("cn-north-1").endswith(".dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.2-1-cpu-py3")
    with pytest.raises(ValueError, match="pass image_uri"):
        d.default_image_uri("xx-nowhere-1")


def test_default_image_uri_without_an_sdk_reads_catkits_copy(monkeypatch):
    """The core install has no SageMaker SDK: catkit's copy of the table answers the same."""
    with_sdk = d.default_image_uri("eu-west-1")
    bundled = Path(d.__file__).with_name("sklearn_images.json")
    monkeypatch.setattr(d, "_sklearn_image_tables", lambda: [bundled])
    assert d.default_image_uri("eu-west-1") == with_sdk
    assert d.default_image_uri("us-east-1").startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")
    monkeypatch.setattr(d, "_sklearn_image_tables", lambda: [bundled.with_name("missing.json")])
    with pytest.raises(RuntimeError, match="image_uri"):
        d.default_image_uri("us-east-1")


def test_failed_deploy_leaves_no_orphans(session, stubs):
    sm = stubs["sagemaker"]
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/ep1"})
    sm.add_client_error("create_endpoint_config", "ResourceLimitExceeded", "too many configs", 400)
    sm.add_response("delete_model", {}, {"ModelName": "ep1"})
    with pytest.raises(Exception, match="ResourceLimitExceeded"):
        d.deploy(session, "s3://b/model.tar.gz", name="ep1", image_uri="img:1", wait=False)
    stubs.verify()


def test_update_model_detects_rollback(session, stubs, no_sleep, monkeypatch):
    monkeypatch.setattr(d, "unique_name", lambda prefix: f"{prefix}-v2")
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", config="ep1"))
    sm.add_response("describe_endpoint_config", describe_endpoint_config("ep1", "ep1"))
    sm.add_response("describe_model", describe_model("ep1", "s3://b/v1.tar.gz"))
    sm.add_response("list_tags", {"Tags": []})
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/ep1-v2"})
    sm.add_response("list_tags", {"Tags": []})
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/ep1-v2"})
    sm.add_response("update_endpoint", {"EndpointArn": endpoint_arn("ep1")})
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "RollingBack"))
    sm.add_response("describe_endpoint", describe_endpoint("ep1", "InService", config="ep1",
                                                           failure="ping health check failed for the new fleet"))
    with pytest.raises(d.EndpointFailedError, match=r"rolled back to ep1.*ping health check failed"):
        d.update_model(session, "ep1", "s3://b/v2.tar.gz", progress=False)
    stubs.verify()
