"""invoke: serializers, response parsing, latency, batch (runtime client stubbed)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY

from catkit import invoke as inv

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def _response(body: bytes, ctype="application/json", variant="AllTraffic"):
    return {"Body": _body(body), "ContentType": ctype, "InvokedProductionVariant": variant}


@pytest.mark.parametrize(
    ("data", "ctype"),
    [
        ({"x": 1}, "application/json"),
        ([1, 2], "application/json"),
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
        (b"\x00\x01", "application/octet-stream"),
        ("hello", "text/plain"),
        (np.arange(3), "application/x-npy"),
    ],
)
def test_serialize_guesses_content_type(data, ctype):
    body, got = inv.serialize(data)
    assert got == ctype
    assert isinstance(body, bytes)


def test_explicit_serializers_round_trip():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    body, ctype = inv.serialize(arr, "npy")
    assert ctype == "application/x-npy"
    np.testing.assert_array_equal(inv.deserialize(body, ctype), arr)
    body, ctype = inv.serialize(arr, inv.JSONSerializer)
    assert json.loads(body) == arr.tolist()
    body, ctype = inv.serialize([[1, 2], [3, 4]], "csv")
    assert (body, ctype) == (b"1,2\n3,4\n", "text/csv")
    with pytest.raises(ValueError, match="unknown serializer"):
        inv.serialize(1, "yaml")


def test_image_serializer_accepts_path_and_pil(tmp_path):
    from PIL import Image

    img = Image.new("RGB", (4, 4), "red")
    body, ctype = inv.ImageSerializer()(img)
    assert ctype == "image/png" and body.startswith(b"\x89PNG")
    path = tmp_path / "cat.png"
    path.write_bytes(body)
    assert inv.ImageSerializer()(str(path)) == (body, "image/png")
    with pytest.raises(ValueError, match="unrecognised image"):
        inv.ImageSerializer()(b"nope")


def test_deserialize_by_content_type():
    assert inv.deserialize(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert inv.deserialize(b'{"a": 1}\n{"a": 2}\n', "application/jsonlines") == [{"a": 1}, {"a": 2}]
    assert inv.deserialize(b"a,b\n1,2\n", "text/csv") == [["a", "b"], ["1", "2"]]
    assert inv.deserialize(b"hi", "text/plain") == "hi"
    assert inv.deserialize(b"\x00", "application/octet-stream") == b"\x00"


def test_invoke_returns_parsed_prediction_with_latency(session, stubs):
    stubs["sagemaker-runtime"].add_response(
        "invoke_endpoint",
        {**_response(b'{"label": "cat-with-hat", "p": 0.93}'), "CustomAttributes": "trace=1"},
        {"EndpointName": "ep1", "Body": PNG, "ContentType": "image/png", "Accept": "application/json",
         "CustomAttributes": "trace=1"},
    )
    pred = inv.invoke(session, "ep1", PNG, custom_attributes="trace=1")
    assert pred.value == {"label": "cat-with-hat", "p": 0.93}
    assert pred.variant == "AllTraffic"
    assert pred.latency_ms >= 0 and pred.ok
    assert pred.custom_attributes == "trace=1"
    stubs.verify()


def test_invoke_target_model_and_variant(session, stubs):
    stubs["sagemaker-runtime"].add_response(
        "invoke_endpoint",
        _response(b"[0.1]", variant="B"),
        {"EndpointName": "ep1", "Body": ANY, "ContentType": "application/json", "Accept": "application/json",
         "TargetModel": "cat-v2.tar.gz", "TargetVariant": "B"},
    )
    pred = inv.invoke(session, "ep1", [1], target_model="cat-v2.tar.gz", target_variant="B")
    assert pred.value == [0.1] and pred.target_model == "cat-v2.tar.gz" and pred.variant == "B"


def test_invoke_rejects_payload_over_6mb(session):
    with pytest.raises(ValueError, match="6 MB"):
        inv.invoke(session, "ep1", b"\x00" * (6 * 1024 * 1024 + 1))


def test_model_error_propagates(session, stubs):
    from botocore.exceptions import ClientError

    stubs["sagemaker-runtime"].add_client_error(
        "invoke_endpoint", "ModelError", "Received client error (400) from primary", 424,
        modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": "bad input"},
    )
    with pytest.raises(ClientError, match="ModelError"):
        inv.invoke(session, "ep1", {"x": 1})


def test_invoke_batch_keeps_order_and_captures_errors(session, stubs):
    rt = stubs["sagemaker-runtime"]
    rt.add_response("invoke_endpoint", _response(b"1"))
    rt.add_client_error("invoke_endpoint", "ModelError", "boom", 424)
    rt.add_response("invoke_endpoint", _response(b"3"))
    # one worker: stubbed responses are consumed in call order
    preds = inv.invoke_batch(session, "ep1", [{"i": 1}, {"i": 2}, {"i": 3}], max_workers=1, progress=False)
    assert [p.value for p in preds] == [1, None, 3]
    assert preds[1].error and "ModelError" in preds[1].error and not preds[1].ok
    frame = inv.predictions_frame(preds)
    assert list(frame.columns) == ["value", "latency_ms", "variant", "target_model", "error"]
    assert frame["error"].notna().sum() == 1
    stubs.verify()


def test_invoke_batch_raise_errors(session, stubs):
    from botocore.exceptions import ClientError

    stubs["sagemaker-runtime"].add_client_error("invoke_endpoint", "ModelError", "boom", 424)
    with pytest.raises(ClientError):
        inv.invoke_batch(session, "ep1", [1], max_workers=1, raise_errors=True, progress=False)
