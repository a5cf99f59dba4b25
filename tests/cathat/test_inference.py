"""The SageMaker handler (code/inference.py): model_fn -> input_fn -> predict_fn -> output_fn."""

from __future__ import annotations

import ast
import base64
import io
import json
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from catkit.examples.cathat.data import make_image
from catkit.examples.cathat.train import TrainResult

ALLOWED_IMPORTS = {
    "__future__", "base64", "binascii", "hashlib", "importlib", "io", "json", "sys", "pathlib", "typing",
    "joblib", "numpy", "PIL", "sklearn",
}  # fmt: skip


def _encode(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _invoke(
    handler: ModuleType, model: object, body: bytes | str, content_type: str, accept: str = "application/json"
):
    data = handler.input_fn(body, content_type)
    out, out_type = handler.output_fn(handler.predict_fn(data, model), accept)
    assert out_type == "application/json"
    return json.loads(out)


@pytest.mark.parametrize("name", ["inference.py", "features.py"])
def test_shipped_code_imports_no_catkit(trained: TrainResult, name: str) -> None:
    tree = ast.parse((trained.model_dir / "code" / name).read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules <= ALLOWED_IMPORTS, modules - ALLOWED_IMPORTS


def test_png_and_jpeg_round_trip(handler: ModuleType, model: object) -> None:
    correct = 0
    for seed in range(40):
        hat = seed % 2 == 0
        image = make_image(900_000 + seed, hat)
        body = _encode(image) if seed % 4 < 2 else _encode(image, "JPEG", quality=90)
        ctype = "image/png" if seed % 4 < 2 else "image/jpeg"
        result = _invoke(handler, model, body, ctype)
        assert set(result) == {"label", "confidence"}
        assert result["label"] in ("hat", "no_hat")
        assert 0.5 <= result["confidence"] <= 1.0
        correct += result["label"] == ("hat" if hat else "no_hat")
    assert correct >= 36


def test_json_forms(handler: ModuleType, model: object) -> None:
    image = make_image(424242, True)
    b64 = base64.b64encode(_encode(image)).decode()
    expected = _invoke(handler, model, _encode(image), "image/png")
    assert _invoke(handler, model, json.dumps(b64), "application/json") == expected
    assert _invoke(handler, model, json.dumps({"image": b64}), "application/json; charset=utf-8") == expected
    data_url = "data:image/png;base64," + b64
    assert _invoke(handler, model, json.dumps({"image": data_url}).encode(), "application/json") == expected


def test_batch_returns_a_list_in_order(handler: ModuleType, model: object) -> None:
    images = [make_image(500 + i, i % 2 == 0) for i in range(6)]
    singles = [_invoke(handler, model, _encode(img), "image/png") for img in images]
    body = json.dumps({"instances": [base64.b64encode(_encode(img)).decode() for img in images]})
    assert _invoke(handler, model, body, "application/json") == singles


def test_other_sizes_and_modes_are_resized(handler: ModuleType, model: object) -> None:
    image = make_image(77, True, size=128).convert("RGBA")
    result = _invoke(handler, model, _encode(image), "image/png", accept="*/*")
    assert result["label"] in ("hat", "no_hat")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"a,b,c", "text/csv", "^Unsupported content type"),
        (b"\x89PNG", "", "^Unsupported content type"),
        (b"", "image/png", "empty"),
        (b"GIF89a....", "image/png", "not a PNG or JPEG"),
        (b"{not json", "application/json", "not valid JSON"),
        (b'"***not base64***"', "application/json", "not valid base64"),
        (b'{"image": 42}', "application/json", "base64 string"),
        (b'{"instances": []}', "application/json", "non-empty list"),
        (b'{"foo": "bar"}', "application/json", "JSON body must be"),
        (b"[1, 2]", "application/json", "JSON body must be"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(
    handler: ModuleType, body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        handler.input_fn(body, content_type)


def test_too_many_instances_and_too_many_pixels(handler: ModuleType) -> None:
    tiny = base64.b64encode(_encode(make_image(1, True, size=16))).decode()
    with pytest.raises(ValueError, match="at most"):
        handler.input_fn(json.dumps({"instances": [tiny] * (handler.MAX_IMAGES + 1)}), "application/json")
    huge = _encode(Image.new("L", (4200, 4200)))
    with pytest.raises(ValueError, match="pixels"):
        handler.input_fn(huge, "image/png")


def test_unsupported_accept(handler: ModuleType, model: object) -> None:
    data = handler.input_fn(_encode(make_image(3, False)), "image/png")
    prediction = handler.predict_fn(data, model)
    with pytest.raises(ValueError, match=r"^Unsupported content type"):
        handler.output_fn(prediction, "text/csv")


def test_model_fn_refuses_mismatched_feature_code(trained: TrainResult, tmp_path: Path) -> None:
    import shutil

    from .conftest import load_handler

    copy = tmp_path / "model"
    shutil.copytree(trained.model_dir, copy)
    features_py = copy / "code" / "features.py"
    features_py.write_text(features_py.read_text().replace("FEATURE_VERSION = ", "FEATURE_VERSION = 100 + "))
    other = load_handler(copy, "cathat_handler_mismatch")
    with pytest.raises(ValueError, match="feature version"):
        other.model_fn(str(copy))


def test_exif_rotated_jpeg_is_turned_upright(handler: ModuleType, model: object) -> None:
    image = make_image(2024, True)
    upright = _invoke(handler, model, _encode(image, "JPEG", quality=95), "image/jpeg")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: stored rotated, display needs 90 degrees clockwise
    stored = image.transpose(Image.Transpose.ROTATE_90)
    rotated = _invoke(handler, model, _encode(stored, "JPEG", quality=95, exif=exif.tobytes()), "image/jpeg")
    assert rotated["label"] == upright["label"]
    assert abs(rotated["confidence"] - upright["confidence"]) < 0.1
