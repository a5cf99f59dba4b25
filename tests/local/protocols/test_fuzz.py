"""Property tests: whatever arrives, parse_request raises nothing but AwsError, and what it
accepts also passes botocore's own ParamValidator."""

from __future__ import annotations

import datetime as dt
import json
import string

import cbor2
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catkit.local.errors import AwsError
from catkit.local.protocols import RawRequest, codec_for
from catkit.local.protocols.models import service_model

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SAGEMAKER_OPS = [
    "CreateEndpointConfig",
    "DescribeEndpoint",
    "ListEndpoints",
    "UpdateEndpointWeightsAndCapacities",
]
AUTOSCALING_OPS = ["PutScalingPolicy", "RegisterScalableTarget", "DescribeScalingActivities"]
CLOUDWATCH_OPS = ["PutMetricData", "GetMetricData", "DescribeAlarms", "PutMetricAlarm"]

# Member names of the operations under test, so random documents reach deep into the shapes.
_NAMES = sorted(
    {
        name
        for service, ops in (
            ("sagemaker", SAGEMAKER_OPS),
            ("application-autoscaling", AUTOSCALING_OPS),
            ("cloudwatch", CLOUDWATCH_OPS),
        )
        for op in ops
        for name in service_model(service).operation_model(op).input_shape.members
    }
    | {"VariantName", "InstanceType", "MetricName", "Dimensions", "Value", "Values", "Name", "Timestamp"}
)
keys = st.one_of(st.sampled_from(_NAMES), st.text(max_size=5))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(alphabet=string.printable + "é\u2603", max_size=20),
    st.sampled_from(["NaN", "Infinity", "2026-11-26T10:00:00Z", "ml.m5.large", "sagemaker", "AAAA"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)
cbor_values = st.recursive(
    scalars | st.binary(max_size=10) | st.datetimes(timezones=st.just(dt.UTC)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)


def _parse(service: str, raw: RawRequest):
    codec = codec_for(service, raw)
    try:
        op, params = codec.parse_request(raw)
    except AwsError as err:
        assert err.code and err.message and 400 <= err.status < 600
        return None
    report = ParamValidator().validate(params, codec.model.operation_model(op).input_shape)
    assert not report.has_errors(), report.generate_report()
    return op, params


@SETTINGS
@given(op=st.sampled_from(SAGEMAKER_OPS), document=json_values)
def test_sagemaker_json_documents(op, document):
    raw = RawRequest("POST", "/", {}, {"X-Amz-Target": f"SageMaker.{op}"}, json.dumps(document).encode())
    _parse("sagemaker", raw)


@SETTINGS
@given(op=st.sampled_from(AUTOSCALING_OPS), document=st.dictionaries(keys, json_values, max_size=8))
def test_autoscaling_json_objects(op, document):
    raw = RawRequest(
        "POST", "/", {}, {"X-Amz-Target": f"AnyScaleFrontendService.{op}"}, json.dumps(document).encode()
    )
    _parse("application-autoscaling", raw)


@SETTINGS
@given(target=st.text(max_size=40), body=st.binary(max_size=200))
def test_json_random_bytes(target, body):
    raw = RawRequest("POST", "/", {}, {"X-Amz-Target": target}, body)
    _parse("sagemaker", raw)
    raw = RawRequest("POST", "/", {}, {"X-Amz-Target": "SageMaker.CreateEndpointConfig"}, body)
    _parse("sagemaker", raw)


@SETTINGS
@given(op=st.sampled_from(CLOUDWATCH_OPS), document=st.dictionaries(keys, cbor_values, max_size=8))
def test_cloudwatch_cbor_documents(op, document):
    raw = RawRequest(
        "POST",
        f"/service/GraniteServiceVersion20100801/operation/{op}",
        {},
        {"smithy-protocol": "rpc-v2-cbor"},
        cbor2.dumps(document),
    )
    _parse("cloudwatch", raw)


@SETTINGS
@given(body=st.binary(max_size=300))
def test_cloudwatch_cbor_random_bytes(body):
    raw = RawRequest(
        "POST",
        "/service/GraniteServiceVersion20100801/operation/PutMetricData",
        {},
        {"smithy-protocol": "rpc-v2-cbor"},
        body,
    )
    _parse("cloudwatch", raw)


query_keys = st.lists(
    st.sampled_from(
        [
            "MetricData",
            "member",
            "1",
            "2",
            "0",
            "x",
            "MetricName",
            "Value",
            "Dimensions",
            "Name",
            "Namespace",
            "Timestamp",
            "Values",
            "entry",
            "key",
            "value",
            "StatisticValues",
            "Sum",
        ]
    ),
    min_size=1,
    max_size=6,
).map(".".join)


@SETTINGS
@given(
    op=st.sampled_from(CLOUDWATCH_OPS),
    pairs=st.lists(st.tuples(query_keys, st.text(alphabet=string.printable, max_size=12)), max_size=12),
)
def test_cloudwatch_query_forms(op, pairs):
    from urllib.parse import urlencode

    body = urlencode([("Action", op), ("Version", "2010-08-01"), *pairs]).encode()
    raw = RawRequest("POST", "/", {}, {"Content-Type": "application/x-www-form-urlencoded"}, body)
    _parse("cloudwatch", raw)


@SETTINGS
@given(body=st.binary(max_size=300))
def test_cloudwatch_query_random_bytes(body):
    raw = RawRequest("POST", "/", {}, {"Content-Type": "application/x-www-form-urlencoded"}, body)
    _parse("cloudwatch", raw)


@SETTINGS
@given(
    name=st.text(max_size=70),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Content-Type",
                "Accept",
                "X-Amzn-SageMaker-Custom-Attributes",
                "X-Amzn-SageMaker-Target-Model",
                "X-Amzn-SageMaker-Session-Id",
                "X-Amzn-SageMaker-Inference-Id",
            ]
        ),
        st.text(max_size=30),
    ),
    body=st.binary(max_size=100),
)
def test_runtime_requests(name, headers, body):
    from urllib.parse import quote

    raw = RawRequest("POST", f"/endpoints/{quote(name, safe='')}/invocations", {}, headers, body)
    _parse("sagemaker-runtime", raw)


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_stamps = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=dt.UTC))


@SETTINGS
@given(
    protocol=st.sampled_from(["smithy-rpc-v2-cbor", "json", "query"]),
    results=st.lists(
        st.fixed_dictionaries(
            {
                "Id": _text,
                "Label": _text,
                "Timestamps": st.lists(_stamps, max_size=4),
                "Values": st.lists(_finite, max_size=4),
            }
        ),
        max_size=3,
    ),
    messages=st.lists(st.fixed_dictionaries({"Code": _text, "Value": _text}), max_size=2),
)
def test_cloudwatch_outputs_survive_botocore_parsing(protocol, results, messages):
    from botocore.awsrequest import HeadersDict
    from botocore.parsers import create_parser

    from catkit.local.protocols import get_codec

    codec = get_codec("cloudwatch", protocol)
    result = {"MetricDataResults": results, "Messages": messages}
    response = codec.serialize_response("GetMetricData", result)
    op = codec.model.operation_model("GetMetricData")
    parsed = create_parser(protocol).parse(
        {"status_code": 200, "headers": HeadersDict(response.headers), "body": response.body, "context": {}},
        op.output_shape,
    )
    parsed.pop("ResponseMetadata")
    assert _plain(parsed) == _plain(result, xml=protocol == "query")


def _plain(value, xml=False):
    """Comparable form: aware datetimes as UTC ISO text; for XML, control characters as U+FFFD
    (XML cannot carry them at all)."""
    from catkit.local.protocols.writing import _XML_INVALID

    if isinstance(value, dict):
        return {k: _plain(v, xml) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, xml) for v in value]
    if isinstance(value, str) and xml:
        return _XML_INVALID.sub("\ufffd", value)
    if hasattr(value, "astimezone"):
        return value.astimezone(dt.UTC).isoformat()
    return value
