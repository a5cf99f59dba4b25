"""Bucket settings and IAM survive a backend restart (issue 14 §9): what a user set on a bucket
(versioning, policy, tags, CORS, lifecycle, encryption, ...) and IAM roles with their policies."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Read", "Effect": "Allow", "Principal": "*",
                                                  "Action": "s3:GetObject", "Resource": "arn:aws:s3:::settings/*"}]}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
INLINE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _settings(s3):
    return {
        "versioning": s3.get_bucket_versioning(Bucket="settings").get("Status"),
        "policy": json.loads(s3.get_bucket_policy(Bucket="settings")["Policy"]),
        "tags": s3.get_bucket_tagging(Bucket="settings")["TagSet"],
        "cors": s3.get_bucket_cors(Bucket="settings")["CORSRules"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket="settings")["Rules"],
        "encryption": s3.get_bucket_encryption(Bucket="settings")["ServerSideEncryptionConfiguration"],
        "public": s3.get_public_access_block(Bucket="settings")["PublicAccessBlockConfiguration"],
    }


def _iam(iam):
    role = iam.get_role(RoleName="my-training-role")["Role"]
    return {
        "arn": role["Arn"], "path": role["Path"], "trust": role["AssumeRolePolicyDocument"],
        "description": role.get("Description"), "tags": iam.list_role_tags(RoleName="my-training-role")["Tags"],
        "inline": iam.get_role_policy(RoleName="my-training-role", PolicyName="inline")["PolicyDocument"],
        "attached": [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="my-training-role")[
            "AttachedPolicies"]],
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
    }


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_bucket_settings_and_iam_roles_survive_a_restart(local_backend_factory, how):
    backend = local_backend_factory(components=())
    s3, iam = backend.client("s3"), backend.client("iam")
    s3.create_bucket(Bucket="settings")
    s3.put_bucket_versioning(Bucket="settings", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket="settings", Policy=json.dumps(POLICY))
    s3.put_bucket_tagging(Bucket="settings", Tagging={"TagSet": [{"Key": "team", "Value": "cats"}]})
    s3.put_bucket_cors(Bucket="settings", CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["http://localhost:8888"]}]})
    s3.put_bucket_lifecycle_configuration(Bucket="settings", LifecycleConfiguration={"Rules": [
        {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 7}}]})
    s3.put_bucket_encryption(Bucket="settings", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket="settings", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.put_bucket_website(Bucket="settings", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    s3.delete_bucket_website(Bucket="settings")  # a DELETE drops the setting again
    iam.create_role(RoleName="my-training-role", Path="/ml/", AssumeRolePolicyDocument=json.dumps(TRUST),
                    Description="trains cats", Tags=[{"Key": "team", "Value": "cats"}])
    iam.put_role_policy(RoleName="my-training-role", PolicyName="inline", PolicyDocument=json.dumps(INLINE))
    arn = iam.create_policy(PolicyName="read-models", PolicyDocument=json.dumps(INLINE))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="my-training-role", PolicyArn=arn)
    iam.create_role(RoleName="short-lived", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.delete_role(RoleName="short-lived")
    before, iam_before = _settings(s3), _iam(iam)
    assert "short-lived" not in iam_before["roles"] and "SageMakerExecutionRole" in iam_before["roles"]
    backend.restart(kill=how == "kill_9")
    s3, iam = backend.client("s3"), backend.client("iam")
    assert _settings(s3) == before
    with pytest.raises(ClientError, match="NoSuchWebsiteConfiguration"):
        s3.get_bucket_website(Bucket="settings")
    assert _iam(iam) == iam_before
    backend.restart()  # and again: replay does not pile up (the execution role exists once)
    assert _iam(backend.client("iam")) == iam_before


def _versions(s3):
    got = s3.list_object_versions(Bucket="versioned")
    objects = sorted((v["Key"], v["VersionId"], v["ETag"], v["Size"], v["IsLatest"]) for v in got.get("Versions", []))
    markers = sorted((m["Key"], m["VersionId"], m["IsLatest"]) for m in got.get("DeleteMarkers", []))
    return objects, markers


@pytest.mark.parametrize("how", ["stop_start", "kill_9"])
def test_object_versions_survive_a_restart(local_backend_factory, how):
    backend = local_backend_factory(components=())
    s3 = backend.client("s3")
    s3.create_bucket(Bucket="versioned")
    s3.put_object(Bucket="versioned", Key="before", Body=b"null version")  # before versioning: the "null" version
    s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="versioned", Key="before", Body=b"after versioning")
    ids = [s3.put_object(Bucket="versioned", Key="model.tar.gz", Body=f"v{i}".encode(),
                         Metadata={"n": str(i)})["VersionId"] for i in range(3)]
    s3.delete_object(Bucket="versioned", Key="model.tar.gz", VersionId=ids[1])  # one version gone for good
    s3.put_object(Bucket="versioned", Key="deleted", Body=b"x")
    s3.delete_object(Bucket="versioned", Key="deleted")  # a delete marker on top
    s3.put_object(Bucket="versioned", Key="bulk", Body=b"y")
    s3.delete_objects(Bucket="versioned", Delete={"Objects": [{"Key": "bulk"}]})
    before = _versions(s3)
    assert len(before[0]) == 6 and len(before[1]) == 2
    backend.restart(kill=how == "kill_9")
    s3 = backend.client("s3")
    assert _versions(s3) == before
    assert s3.get_bucket_versioning(Bucket="versioned")["Status"] == "Enabled"
    got = s3.get_object(Bucket="versioned", Key="model.tar.gz", VersionId=ids[0])
    assert got["Body"].read() == b"v0" and got["Metadata"] == {"n": "0"}
    assert s3.get_object(Bucket="versioned", Key="model.tar.gz")["Body"].read() == b"v2"
    assert s3.get_object(Bucket="versioned", Key="before", VersionId="null")["Body"].read() == b"null version"
    with pytest.raises(ClientError):
        s3.get_object(Bucket="versioned", Key="deleted")
    # and writes after the restart keep adding versions
    s3.put_object(Bucket="versioned", Key="model.tar.gz", Body=b"v3")
    backend.restart()
    objects, _ = _versions(backend.client("s3"))
    assert [o[4] for o in objects if o[0] == "model.tar.gz"].count(True) == 1
    assert len([o for o in objects if o[0] == "model.tar.gz"]) == 3
