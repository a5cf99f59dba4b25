"""mme: prefix discovery, add/list/remove models in S3, invoke with TargetModel."""

from __future__ import annotations

import io

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from helpers_fakes import T0, describe_endpoint, describe_endpoint_config, describe_model

from catkit import mme


def _expect_prefix(stubs, mode="MultiModel", url="s3://bkt/mme/"):
    sm = stubs["sagemaker"]
    sm.add_response("describe_endpoint", describe_endpoint("ep1", config="cfg"), {"EndpointName": "ep1"})
    sm.add_response("describe_endpoint_config", describe_endpoint_config("cfg", "m"), {"EndpointConfigName": "cfg"})
    sm.add_response("describe_model", describe_model("m", url, mode=mode), {"ModelName": "m"})


def test_model_prefix_from_endpoint(session, stubs):
    _expect_prefix(stubs, url="s3://bkt/mme")
    assert mme.model_prefix(session, "ep1") == "s3://bkt/mme/"
    assert mme.model_prefix(session, "s3://x/y") == "s3://x/y/"


def test_single_model_endpoint_is_rejected(session, stubs):
    _expect_prefix(stubs, mode="SingleModel", url="s3://bkt/model.tar.gz")
    with pytest.raises(ValueError, match="not a multi-model endpoint"):
        mme.model_prefix(session, "ep1")


def test_add_model_uploads_or_copies(session, stubs, tmp_path):
    archive = tmp_path / "cat-v1.tar.gz"
    archive.write_bytes(b"archive")
    s3 = stubs["s3"]
    s3.add_response("put_object", {}, {"Bucket": "bkt", "Key": "mme/cat-v1.tar.gz", "Body": ANY, "ChecksumAlgorithm": ANY,
                                                "ContentType": "application/x-gzip"})
    assert mme.add_model(session, "s3://bkt/mme/", str(archive)) == "cat-v1.tar.gz"
    s3.add_response("copy_object", {}, {"Bucket": "bkt", "Key": "mme/cat-v2.tar.gz",
                                        "CopySource": {"Bucket": "src", "Key": "builds/model.tar.gz"}})
    assert mme.add_model(session, "s3://bkt/mme/", "s3://src/builds/model.tar.gz", name="cat-v2.tar.gz") == "cat-v2.tar.gz"
    stubs.verify()


@pytest.mark.parametrize("name", ["../escape.tar.gz", "/abs.tar.gz", "model.zip", "a/../../b.tar.gz"])
def test_bad_model_names_rejected(session, name):
    with pytest.raises(ValueError):
        mme.add_model(session, "s3://bkt/mme/", "s3://src/x.tar.gz", name=name)


def test_list_models_paginates_and_filters(session, stubs):
    s3 = stubs["s3"]

    def obj(key):
        return {"Key": key, "Size": 1, "LastModified": T0, "ETag": '"e"'}

    s3.add_response("list_objects_v2", {"Contents": [obj("mme/b.tar.gz"), obj("mme/notes.txt")], "IsTruncated": True,
                                        "NextContinuationToken": "t"}, {"Bucket": "bkt", "Prefix": "mme/"})
    s3.add_response("list_objects_v2", {"Contents": [obj("mme/sub/a.tar.gz")], "IsTruncated": False},
                    {"Bucket": "bkt", "Prefix": "mme/", "ContinuationToken": "t"})
    assert mme.list_models(session, "s3://bkt/mme/") == ["b.tar.gz", "sub/a.tar.gz"]
    stubs.verify()


def test_remove_model(session, stubs):
    s3 = stubs["s3"]
    s3.add_response("list_objects_v2", {"Contents": [{"Key": "mme/a.tar.gz"}]})
    s3.add_response("delete_object", {}, {"Bucket": "bkt", "Key": "mme/a.tar.gz"})
    mme.remove_model(session, "s3://bkt/mme/", "a.tar.gz")
    s3.add_response("list_objects_v2", {"Contents": []})
    s3.add_response("list_objects_v2", {"Contents": []})
    with pytest.raises(FileNotFoundError, match=r"no model 'zz\.tar\.gz'"):
        mme.remove_model(session, "s3://bkt/mme/", "zz.tar.gz")
    stubs.verify()


def test_invoke_model_sets_target_model(session, stubs):
    stubs["sagemaker-runtime"].add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(b'{"ok": true}'), 12), "ContentType": "application/json"},
        {"EndpointName": "ep1", "Body": ANY, "ContentType": "application/json", "Accept": "application/json",
         "TargetModel": "cat-v1.tar.gz"},
    )
    assert mme.invoke_model(session, "ep1", "cat-v1.tar.gz", {"x": 1}).value == {"ok": True}
    stubs.verify()


def test_deploy_multi_model_default_prefix(session, stubs):
    sm = stubs["sagemaker"]
    sm.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"},
                    {"ModelName": "mm", "PrimaryContainer": {"Image": "img", "Mode": "MultiModel",
                     "ModelDataUrl": "s3://test-bucket/catkit/mme/mm/"}, "ExecutionRoleArn": ANY, "Tags": ANY})
    sm.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/mm"})
    sm.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mm"})
    out = mme.deploy_multi_model(session, name="mm", image_uri="img", wait=False)
    assert out.multi_model and out.model_data == "s3://test-bucket/catkit/mme/mm/"
    stubs.verify()
