"""Bad input through the real gateway, every protocol: AWS's error code and HTTP status, never a 500,
and the backend keeps serving.

Codec-level cases live in tests/local/protocols; these go over HTTP to a running backend, so they
also exercise routing, body limits, the services' own checks beyond the botocore model, the model
servers behind InvokeEndpoint and the embedded S3.
"""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest
from rel_support import error_code, signed

MB = 1024 * 1024
JSON11 = "application/x-amz-json-1.1"
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
CBOR = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012"


def sm(op: str | None, body: Any, target_prefix: str = "SageMaker.") -> dict[str, Any]:
    headers = {"Content-Type": JSON11}
    if op is not None:
        headers["X-Amz-Target"] = f"{target_prefix}{op}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"service": "sagemaker", "path": "/", "headers": headers, "body": raw}


def aas(op: str, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"service": "application-autoscaling", "path": "/", "body": raw,
            "headers": {"Content-Type": JSON11, "X-Amz-Target": f"AnyScaleFrontendService.{op}"}}


def cw_cbor(op: str, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else cbor2.dumps(body)
    return {"service": "cloudwatch", "path": CBOR_PATH + op, "headers": dict(CBOR), "body": raw}


def cw_query(body: bytes) -> dict[str, Any]:
    return {"service": "cloudwatch", "path": "/", "headers": dict(FORM), "body": body}


def invoke(name: str, body: bytes = b"x", **headers: str) -> dict[str, Any]:
    return {"service": "sagemaker-runtime", "path": f"/endpoints/{name}/invocations",
            "headers": {"Content-Type": "text/plain", **headers}, "body": body}


def s3(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    return {"service": "s3", "method": method, "path": path, "headers": headers, "body": body}


TT = {"TargetValue": 70.0, "PredefinedMetricSpecification": {
    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
RID = "endpoint/single/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"
PV = {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}


def policy(config: dict[str, Any]) -> dict[str, Any]:
    return {"PolicyName": "p", "ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIM,
            "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": config}


# (id, request, expected HTTP status, expected AWS error code)
TABLE: list[tuple[str, dict[str, Any], int, str]] = [
    # --- SageMaker control plane (JSON 1.1) ---
    ("sm malformed json", sm("ListModels", b'{"MaxResults": '), 400, "SerializationException"),
    ("sm json not an object", sm("ListModels", b"[1, 2]"), 400, "SerializationException"),
    ("sm json not utf-8", sm("ListModels", b"\xff\xfe{}"), 400, "SerializationException"),
    ("sm missing target", sm(None, {}), 400, "UnknownOperationException"),
    ("sm foreign target", sm("ListTables", {}, "DynamoDB_20120810."), 400, "UnknownOperationException"),
    ("sm unknown action", sm("LaunchRocket", {}), 400, "UnknownOperationException"),
    ("sm oversize body", sm("ListModels", b'{"NameContains": "' + b"a" * (11 * MB) + b'"}'), 413,
     "RequestEntityTooLarge"),
    ("sm wrong member type", sm("ListModels", {"MaxResults": "ten"}), 400, "SerializationException"),
    ("sm missing required", sm("CreateEndpoint", {"EndpointName": "x"}), 400, "ValidationException"),
    ("sm name with underscore", sm("CreateModel", {"ModelName": "bad_name", "ExecutionRoleArn": f"{ARN}:role/r",
                                                   "PrimaryContainer": {"Image": "i"}}), 400, "ValidationException"),
    ("sm unicode name", sm("DescribeEndpoint", {"EndpointName": "caté-🐱"}), 400, "ValidationException"),
    ("sm control char name", sm("DescribeEndpoint", {"EndpointName": "a\x07b\x00"}), 400, "ValidationException"),
    ("sm name too long", sm("DescribeEndpoint", {"EndpointName": "a" * 64}), 400, "ValidationException"),
    ("sm traversal name", sm("DescribeEndpointConfig", {"EndpointConfigName": "../../etc"}), 400,
     "ValidationException"),
    ("sm missing endpoint", sm("DescribeEndpoint", {"EndpointName": "nope"}), 400, "ValidationException"),
    ("sm arn garbage", sm("ListTags", {"ResourceArn": "not-an-arn"}), 400, "ValidationException"),
    ("sm arn other account", sm("ListTags", {"ResourceArn": "arn:aws:sagemaker:us-east-1:999999999999:endpoint/x"}),
     400, "ValidationException"),
    ("sm arn traversal", sm("ListTags", {"ResourceArn": f"{ARN}:endpoint/../../state"}), 400, "ValidationException"),
    ("sm arn unknown kind", sm("ListTags", {"ResourceArn": f"{ARN}:notebook-instance/x"}), 400, "ValidationException"),
    ("sm zero instances", sm("CreateEndpointConfig", {"EndpointConfigName": "c0", "ProductionVariants": [
        {**PV, "InitialInstanceCount": 0}]}), 400, "ValidationException"),
    ("sm unknown instance type", sm("CreateEndpointConfig", {"EndpointConfigName": "c1", "ProductionVariants": [
        {**PV, "InstanceType": "ml.z9.huge"}]}), 400, "ValidationException"),
    ("sm negative weight", sm("UpdateEndpointWeightsAndCapacities", {"EndpointName": "single",
        "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": -1.0}]}), 400,
     "ValidationException"),
    ("sm zero desired count", sm("UpdateEndpointWeightsAndCapacities", {"EndpointName": "single",
        "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}]}), 400,
     "ValidationException"),
    ("sm huge desired count", sm("UpdateEndpointWeightsAndCapacities", {"EndpointName": "single",
        "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 10**6}]}), 400,
     "ResourceLimitExceeded"),
    ("sm unknown variant", sm("UpdateEndpointWeightsAndCapacities", {"EndpointName": "single",
        "DesiredWeightsAndCapacities": [{"VariantName": "Nope", "DesiredWeight": 1.0}]}), 400,
     "ValidationException"),
    ("sm bad pagination token", sm("ListEndpoints", {"NextToken": "garbage!"}), 400, "ValidationException"),
    ("sm bad sort", sm("ListEndpoints", {"SortBy": "Color"}), 400, "ValidationException"),
    # --- Application Auto Scaling (JSON 1.1) ---
    ("aas malformed json", aas("DescribeScalableTargets", b"{,}"), 400, "SerializationException"),
    ("aas unknown action", aas("ScaleEverything", {}), 400, "UnknownOperationException"),
    ("aas negative min", aas("RegisterScalableTarget", {"ServiceNamespace": "sagemaker", "ResourceId": RID,
        "ScalableDimension": DIM, "MinCapacity": -1, "MaxCapacity": 2}), 400, "ValidationException"),
    ("aas max below min", aas("RegisterScalableTarget", {"ServiceNamespace": "sagemaker", "ResourceId": RID,
        "ScalableDimension": DIM, "MinCapacity": 5, "MaxCapacity": 2}), 400, "ValidationException"),
    ("aas bad resource id", aas("RegisterScalableTarget", {"ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/../../x", "ScalableDimension": DIM, "MinCapacity": 1, "MaxCapacity": 2}), 400,
     "ValidationException"),
    ("aas unknown endpoint", aas("RegisterScalableTarget", {"ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/ghost/variant/AllTraffic", "ScalableDimension": DIM, "MinCapacity": 1,
        "MaxCapacity": 2}), 400, "ValidationException"),
    ("aas target value zero", aas("PutScalingPolicy", policy({**TT, "TargetValue": 0.0})), 400,
     "ValidationException"),
    ("aas target value negative", aas("PutScalingPolicy", policy({**TT, "TargetValue": -5.0})), 400,
     "ValidationException"),
    ("aas target value huge", aas("PutScalingPolicy", policy({**TT, "TargetValue": 1e300})), 400,
     "ValidationException"),
    ("aas negative cooldown", aas("PutScalingPolicy", policy({**TT, "ScaleInCooldown": -5})), 400,
     "ValidationException"),
    ("aas wrong type", aas("DescribeScalingPolicies", {"ServiceNamespace": "sagemaker", "MaxResults": "x"}),
     400, "SerializationException"),
    # --- CloudWatch (Smithy RPC v2 CBOR and query) ---
    ("cw malformed cbor", cw_cbor("ListMetrics", b"\xbf\x61"), 400, "SerializationException"),
    ("cw cbor not a map", cw_cbor("ListMetrics", cbor2.dumps([1, 2])), 400, "SerializationException"),
    ("cw cbor unknown op", cw_cbor("MakeItRain", {}), 404, "UnknownOperationException"),  # smithy rpcv2: 404
    ("cw cbor period zero", cw_cbor("PutMetricAlarm", {"AlarmName": "a", "MetricName": "m", "Namespace": "n",
        "Statistic": "Sum", "Period": 0, "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold"}), 400, "InvalidParameterValueException"),
    ("cw cbor wrong type", cw_cbor("PutMetricData", {"Namespace": "n", "MetricData": "nope"}), 400,
     "SerializationException"),
    ("cw cbor infinite value", cw_cbor("PutMetricData", {"Namespace": "n", "MetricData": [
        {"MetricName": "m", "Value": float("inf")}]}), 400, "InvalidParameterValueException"),
    ("cw query unknown action", cw_query(b"Action=MakeItRain&Version=2010-08-01"), 400, "InvalidAction"),
    ("cw query malformed", cw_query(b"Action=PutMetricData&Version=2010-08-01&MetricData.member.x.Value=%zz"),
     400, "InvalidParameterValue"),
    # --- SageMaker Runtime (rest-json) ---
    ("rt unknown endpoint", invoke("ghost"), 400, "ValidationError"),
    ("rt invalid endpoint name", invoke("bad_name"), 400, "ValidationError"),
    ("rt encoded traversal name", invoke("..%2F..%2Fetc"), 400, "ValidationError"),
    ("rt nul in name", invoke("a%00b"), 400, "ValidationError"),
    ("rt oversize body", invoke("single", b"a" * (6 * MB + 1)), 413, "ValidationError"),
    ("rt target model on single", invoke("single", **{"X-Amzn-SageMaker-Target-Model": "a.tar.gz"}), 400,
     "ValidationError"),
    ("rt missing target model", invoke("multi"), 400, "ValidationError"),
    ("rt target model dotdot", invoke("multi", **{"X-Amzn-SageMaker-Target-Model": "../echo/model.tar.gz"}),
     400, "ValidationError"),
    ("rt target model nested dotdot", invoke("multi", **{
        "X-Amzn-SageMaker-Target-Model": "x/../../echo/model.tar.gz"}), 400, "ValidationError"),
    ("rt target model absolute", invoke("multi", **{"X-Amzn-SageMaker-Target-Model": "/etc/passwd"}), 400,
     "ValidationError"),
    ("rt target model encoded", invoke("multi", **{"X-Amzn-SageMaker-Target-Model": "%2e%2e/echo/model.tar.gz"}),
     400, "ValidationError"),
    ("rt target model backslash", invoke("multi", **{"X-Amzn-SageMaker-Target-Model": "..\\echo\\model.tar.gz"}),
     400, "ValidationError"),
    ("rt target model missing", invoke("multi", **{"X-Amzn-SageMaker-Target-Model": "ghost.tar.gz"}), 400,
     "ValidationError"),
    ("rt custom attributes too long", invoke("single", **{"X-Amzn-SageMaker-Custom-Attributes": "a" * 1025}),
     400, "ValidationError"),
    ("rt handler error", invoke("single", b"bad", **{"Content-Type": "application/x-fail"}), 424, "ModelError"),
    # --- S3 (XML, embedded moto) ---
    ("s3 malformed xml", s3("PUT", "/models?tagging", b"<Tagging><TagSet><Tag>"), 400, "MalformedXML"),
    ("s3 invalid bucket name", s3("PUT", "/Bad_Bucket..Name"), 400, "InvalidBucketName"),
    ("s3 missing key", s3("GET", "/models/..%2F..%2Fstate.sqlite"), 404, "NoSuchKey"),
    ("s3 missing bucket", s3("GET", "/no-such-bucket-here/k"), 404, "NoSuchBucket"),
    # moto's management API beyond its reset route stays closed (POST /moto-api/reset is catkit's reset)
    ("s3 moto admin api", s3("GET", "/moto-api/data.json"), 403, "AccessDenied"),
    # --- no recognisable service ---
    ("unsigned unknown request", {"service": "none", "path": "/whatever", "headers": {}, "body": b"hi",
                                  "sign": False}, 400, "UnknownServiceException"),
    ("foreign service scope", {"service": "dynamodb", "path": "/", "body": b"{}",
                               "headers": {"Content-Type": "application/x-amz-json-1.0",
                                           "X-Amz-Target": "DynamoDB_20120810.ListTables"}}, 400,
     "UnknownServiceException"),
]


@pytest.fixture(scope="session")
def registered(served):
    """``single`` registered as a scalable target, so policy checks are reached."""
    served.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="sagemaker", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2)
    return served


@pytest.mark.parametrize(("request_spec", "status", "code"), [pytest.param(r, s, c, id=i) for i, r, s, c in TABLE])
def test_bad_input_gets_aws_error(registered, request_spec, status, code):
    served = registered
    spec = dict(request_spec)
    got_status, headers, body = signed(
        served.url, spec["service"], spec.get("method", "POST"), spec["path"], spec["body"], spec["headers"],
        sign=spec.get("sign", True),
    )
    assert (got_status, error_code(got_status, headers, body)) == (status, code), body[:500]
    assert got_status != 500
    assert served.healthy()


def test_backend_still_serves_after_the_table(served):
    rt = served.client("sagemaker-runtime")
    r = rt.invoke_endpoint(EndpointName="single", Body=b"still here", ContentType="text/plain")
    assert r["Body"].read() == b"still here"
    r = rt.invoke_endpoint(EndpointName="multi", Body=b"mme", ContentType="text/plain", TargetModel="a.tar.gz")
    assert r["Body"].read() == b"mme"
    assert served.client("sagemaker").describe_endpoint(EndpointName="single")["EndpointStatus"] == "InService"
