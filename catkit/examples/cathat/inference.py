"""SageMaker handler for the cat-hat classifier (shipped as ``code/inference.py`` in the archive).

Runs inside any SageMaker scikit-learn style container, so it imports only the standard library,
numpy, Pillow, joblib and scikit-learn - never catkit. The feature code lives in ``features.py``
beside this file and is loaded by file path (no ``sys.path`` or module-name clashes when many
models share one multi-model container).

Requests:
  - ``image/png``, ``image/jpeg`` (also ``image/jpg``, ``application/x-image``): the image bytes.
  - ``application/json``: a base64 string (``"iVBOR..."``), ``{"image": "<b64>"}`` or
    ``{"instances": ["<b64>", ...]}`` (base64 may be a ``data:image/...;base64,`` URL).
Responses (``application/json``): ``{"label": "hat" | "no_hat", "confidence": 0.987}`` for one
image, a list of those for ``instances``.

Errors: an unsupported Content-Type or Accept raises ``ValueError`` whose message starts with
``"Unsupported content type"`` (the model server answers 415); any other bad input raises
``ValueError`` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import joblib
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "application/x-image")
JSON_TYPE = "application/json"
MAX_IMAGES = 256  # per request
MAX_PIXELS = 4096 * 4096  # per image, checked before decoding (decompression bombs)
UNSUPPORTED = "Unsupported content type"


def _load_features(code_dir: Path) -> Any:
    path = code_dir / "features.py"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the cat-hat handler needs features.py beside inference.py"
        )
    source = path.read_bytes()
    name = f"_cathat_features_{hashlib.sha256(source).hexdigest()[:16]}"  # same code, same module
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load ``model.joblib``, ``metadata.json`` and the feature code from the model directory."""
    root = Path(model_dir)
    meta = json.loads((root / "metadata.json").read_text())
    here = Path(__file__).resolve().parent if "__file__" in globals() else root / "code"
    feats = _load_features(here if (here / "features.py").is_file() else root / "code")
    if meta.get("feature_version") != feats.FEATURE_VERSION:
        raise ValueError(
            f"model in {model_dir} was trained with feature version {meta.get('feature_version')} but "
            f"features.py is version {feats.FEATURE_VERSION}; retrain or ship the matching features.py"
        )
    return {
        "classifier": joblib.load(root / "model.joblib"),
        "classes": list(meta["classes"]),
        "image_size": int(meta["image_size"]),
        "features": feats,
        "name": meta.get("name", root.name),
    }


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _decode_image(data: bytes, what: str) -> Image.Image:
    if not data:
        raise ValueError(f"{what} is empty; send PNG or JPEG bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])  # JPEG covers MPO (phone photos)
    except UnidentifiedImageError:
        raise ValueError(f"{what} is not a PNG or JPEG image") from None
    if image.width * image.height > MAX_PIXELS:
        raise ValueError(
            f"{what} is {image.width}x{image.height} pixels; at most {MAX_PIXELS} pixels allowed"
        )
    try:
        return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"{what} could not be decoded: {exc}") from None


def _b64_image(value: Any, what: str) -> Image.Image:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a base64 string, got {type(value).__name__}")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    return _decode_image(data, what)


def input_fn(request_body: bytes | str, content_type: str) -> dict[str, Any]:
    """Decode the request into ``{"images": [PIL.Image, ...], "batch": bool}``."""
    media = _media_type(content_type)
    if isinstance(request_body, str):
        request_body = request_body.encode()
    if media in IMAGE_TYPES:
        return {"images": [_decode_image(request_body, "request body")], "batch": False}
    if media != JSON_TYPE:
        raise ValueError(
            f"{UNSUPPORTED}: {content_type or '(none)'}. Send image/png, image/jpeg or application/json."
        )
    try:
        payload = json.loads(request_body)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("request body is not valid JSON") from None
    if isinstance(payload, str):
        return {"images": [_b64_image(payload, "JSON string")], "batch": False}
    if isinstance(payload, dict) and "image" in payload:
        return {"images": [_b64_image(payload["image"], '"image"')], "batch": False}
    if isinstance(payload, dict) and "instances" in payload:
        items = payload["instances"]
        if not isinstance(items, list) or not items:
            raise ValueError('"instances" must be a non-empty list of base64 images')
        if len(items) > MAX_IMAGES:
            raise ValueError(f'"instances" has {len(items)} images; at most {MAX_IMAGES} per request')
        return {"images": [_b64_image(v, f"instances[{i}]") for i, v in enumerate(items)], "batch": True}
    raise ValueError(
        'JSON body must be a base64 image string, {"image": "<base64>"} or {"instances": ["<base64>", ...]}'
    )


def predict_fn(input_data: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Classify each image: ``{"labels": [...], "confidences": [...], "batch": bool}``."""
    feats = model["features"]
    x = feats.extract(input_data["images"], model["image_size"])
    proba = model["classifier"].predict_proba(x)
    best = proba.argmax(axis=1)
    classes = model["classes"]
    return {
        "labels": [classes[int(i)] for i in best],
        "confidences": [float(proba[row, i]) for row, i in enumerate(best)],
        "batch": bool(input_data.get("batch")),
    }


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[bytes, str]:
    """JSON ``{"label", "confidence"}`` per image (a list for batch requests)."""
    media = _media_type(accept)
    if media not in ("", "*/*", JSON_TYPE, "application/*"):
        raise ValueError(f"{UNSUPPORTED} for Accept: {accept}. This model returns application/json.")
    items = [
        {"label": label, "confidence": round(conf, 4)}
        for label, conf in zip(prediction["labels"], prediction["confidences"], strict=True)
    ]
    body: Any = items if prediction["batch"] else items[0]
    return json.dumps(body).encode(), JSON_TYPE
