"""Property-based fuzzing of request bodies through the real gateway: 1,500 requests, zero 5xx.

Documents are drawn from botocore's own input shapes for every operation the local services
implement (so most pass the codec's validation and reach the services' code with odd values:
empty strings, huge numbers, unicode, wrong enums), plus raw random bytes per protocol. Every
answer must be a success or an AWS-shaped 4xx; a 5xx means the gateway or a service broke.
"""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import botocore.session
import cbor2
import pytest
from botocore import xform_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rel_support import error_code, signed

from catkit.local.services.autoscaling import ApplicationAutoScalingService as AutoScalingService
from catkit.local.services.cloudwatch import CloudWatchService
from catkit.local.services.sagemaker import SageMakerService

SESSION = botocore.session.get_session()
CBOR_PATH = "/service/GraniteServiceVersion20100801/operation/"
NAMES = st.sampled_from(["", "a", "ghost", "x" * 63, "x" * 64, "../../etc", "ca\u0301t-\U0001f431", "a\x00b",
                         "endpoint/ghost/variant/v", "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ghost"])
TEXT = st.one_of(st.text(max_size=24), NAMES)


def _implemented(service_model: Any, cls: type) -> list[str]:
    return sorted(op for op in service_model.operation_names if callable(getattr(cls, xform_name(op), None)))


def shape_strategy(shape: Any, *, blob_as: str, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a botocore input shape (JSON- or CBOR-encodable)."""
    t = shape.type_name
    if t == "structure":
        if depth > 4:
            return st.just({})
        members = {name: shape_strategy(m, blob_as=blob_as, depth=depth + 1) for name, m in shape.members.items()}
        required = set(shape.required_members)
        return st.fixed_dictionaries(
            {k: v for k, v in members.items() if k in required},
            optional={k: v for k, v in members.items() if k not in required},
        )
    if t == "list":
        return st.lists(shape_strategy(shape.member, blob_as=blob_as, depth=depth + 1), max_size=3)
    if t == "map":
        return st.dictionaries(TEXT, shape_strategy(shape.value, blob_as=blob_as, depth=depth + 1), max_size=3)
    if t == "string":
        enum = getattr(shape, "enum", None)
        return st.one_of(st.sampled_from(enum), TEXT) if enum else TEXT
    if t in ("integer", "long"):
        return st.one_of(st.integers(-3, 10), st.integers(-(2**63), 2**63 - 1))
    if t in ("float", "double"):
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, -1.0, 1e308]))
    if t == "boolean":
        return st.booleans()
    if t == "timestamp":
        return st.one_of(st.floats(min_value=-1e10, max_value=1e11), st.integers(0, 2**40))
    if t == "blob":
        raw = st.binary(max_size=32)
        return raw.map(lambda b: base64.b64encode(b).decode()) if blob_as == "base64" else raw
    return st.none()


def _json_ops(service: str, cls: type) -> tuple[list[str], Any]:
    model = SESSION.get_service_model(service)
    return _implemented(model, cls), model


SM_OPS, SM_MODEL = _json_ops("sagemaker", SageMakerService)
AAS_OPS, AAS_MODEL = _json_ops("application-autoscaling", AutoScalingService)
CW_OPS, CW_MODEL = _json_ops("cloudwatch", CloudWatchService)


@st.composite
def op_requests(draw: Any, ops: list[str], model: Any, blob_as: str) -> tuple[str, dict[str, Any]]:
    """(operation, input document) for one of ``ops`` of the botocore service ``model``."""
    op = draw(st.sampled_from(ops))
    return op, draw(shape_strategy(model.operation_model(op).input_shape, blob_as=blob_as))


def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _check(answer: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    assert status < 500, (status, body[:500])
    if status >= 400:
        assert error_code(status, headers, body), (status, body[:500])


def test_operations_under_fuzz_are_implemented(served):
    assert len(SM_OPS) >= 15 and len(AAS_OPS) >= 8 and len(CW_OPS) >= 6, (SM_OPS, AAS_OPS, CW_OPS)


def _check_json11(served: Any, service: str, target: str, req: tuple[str, dict[str, Any]]) -> None:
    op, doc = req
    _check(signed(served.url, service, body=json.dumps(doc).encode(), headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{target}.{op}"}))


@fuzz(500)
@given(req=op_requests(SM_OPS, SM_MODEL, "base64"))
def test_sagemaker_documents(served, req):
    _check_json11(served, "sagemaker", "SageMaker", req)


@fuzz(250)
@given(req=op_requests(AAS_OPS, AAS_MODEL, "base64"))
def test_autoscaling_documents(served, req):
    _check_json11(served, "application-autoscaling", "AnyScaleFrontendService", req)


@fuzz(250)
@given(req=op_requests(CW_OPS, CW_MODEL, "bytes"))
def test_cloudwatch_cbor_documents(served, req):
    op, doc = req
    _check(signed(served.url, "cloudwatch", path=CBOR_PATH + op, body=cbor2.dumps(doc), headers={
        "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}))


HEADER_VALUE = st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=40)


@fuzz(150)
@given(
    body=st.binary(max_size=64),
    headers=st.dictionaries(
        st.sampled_from(["Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes",
                         "X-Amzn-SageMaker-Target-Model", "X-Amzn-SageMaker-Target-Variant",
                         "X-Amzn-SageMaker-Inference-Id"]),
        HEADER_VALUE, max_size=4),
    endpoint=st.sampled_from(["single", "multi", "ghost"]),
)
def test_runtime_invocations(served, body, headers, endpoint):
    status, hdrs, data = signed(served.url, "sagemaker-runtime", path=f"/endpoints/{endpoint}/invocations",
                                body=body, headers=headers)
    # 424 ModelError is the model's own answer to odd input (e.g. an Accept it cannot produce).
    assert status < 500 or error_code(status, hdrs, data) == "ServiceUnavailable", (status, data[:500])


@fuzz(150)
@given(
    service=st.sampled_from(["sagemaker", "application-autoscaling", "cloudwatch-cbor", "cloudwatch-query",
                             "s3-xml"]),
    body=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
)
def test_random_bytes_every_protocol(served, service, body):
    if service == "sagemaker":
        answer = signed(served.url, "sagemaker", body=body, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.CreateEndpointConfig"})
    elif service == "application-autoscaling":
        answer = signed(served.url, service, body=body, headers={
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AnyScaleFrontendService.PutScalingPolicy"})
    elif service == "cloudwatch-cbor":
        answer = signed(served.url, "cloudwatch", path=CBOR_PATH + "PutMetricData", body=body, headers={
            "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
    elif service == "cloudwatch-query":
        answer = signed(served.url, "cloudwatch", body=b"Action=PutMetricAlarm&Version=2010-08-01&" + body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        answer = signed(served.url, "s3", method="PUT", path="/models?tagging", body=body)
    _check(answer)


XML_TAG = st.sampled_from(["Tagging", "TagSet", "Tag", "Key", "Value", "Delete", "Object", "Quiet",
                           "LifecycleConfiguration", "Rule", "ID", "Status", "Filter", "Prefix", "Expiration",
                           "Days", "CORSConfiguration", "CORSRule", "AllowedMethod", "AllowedOrigin",
                           "VersioningConfiguration", "CompleteMultipartUpload", "Part", "PartNumber", "ETag"])
XML_TEXT = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "-*/._ ", max_size=12),
                     st.sampled_from(["", "0", "-1", "99999999999999999999", "Enabled", "GET", "true"]))


def xml_tree(depth: int = 0) -> st.SearchStrategy[str]:
    leaf = st.builds(lambda t, v: f"<{t}>{v}</{t}>", XML_TAG, XML_TEXT)
    if depth >= 3:
        return leaf
    node = st.builds(lambda t, kids: f"<{t}>{''.join(kids)}</{t}>", XML_TAG,
                     st.lists(xml_tree(depth + 1), max_size=3))
    return st.one_of(leaf, node)


@fuzz(200)
@given(
    target=st.sampled_from(["/models?tagging", "/models?lifecycle", "/models?cors", "/models?versioning",
                            "/models?delete", "/models/echo/model.tar.gz?tagging"]),
    doc=xml_tree(),
)
def test_s3_well_formed_but_odd_xml(served, target, doc):
    method = "POST" if target.endswith("?delete") else "PUT"
    _check(signed(served.url, "s3", method=method, path=target, body=doc.encode()))


def test_backend_still_serves_after_fuzzing(served):
    rt = served.client("sagemaker-runtime")
    assert rt.invoke_endpoint(EndpointName="single", Body=b"ok", ContentType="text/plain")["Body"].read() == b"ok"
    assert served.healthy()


pytestmark = pytest.mark.slow
