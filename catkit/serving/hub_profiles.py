"""Serving profiles of the TensorFlow Serving and Hugging Face inference containers.

Both need their framework (``catkit[tensorflow]``, ``catkit[huggingface]``); the fleet fails
CreateEndpoint at once when it is missing (:func:`catkit.serving.containers.missing_framework`).

- **TensorFlow Serving** (aws/sagemaker-tensorflow-serving-container
  ``docker/build_artifacts/sagemaker/tensorflowServing.js`` and ``python_service.py``): JSON bodies
  that already name ``instances``/``inputs`` go to the model as they are, other JSON is wrapped as
  ``{"instances": [...]}``, CSV rows become instances (:func:`tfs_request`); other types 415
  ``{"error": "Unsupported Media Type: ..."}``; the answer is TFS's ``{"predictions": ...}``. The
  model is the SavedModel under the archive (``<name>/<version>/saved_model.pb``), called through its
  ``serving_default`` signature in place of a TFS server. ``code/inference.py`` may define
  ``input_handler(data, context)`` + ``output_handler(response, context)``; a full ``handler`` that
  posts to TFS itself is not emulated (the load fails saying so).
- **Hugging Face** (aws/sagemaker-huggingface-inference-toolkit ``handler_service.py``,
  ``decoder_encoder.py``): ``transformers.pipeline(HF_TASK, model=<model dir>)``, JSON
  ``{"inputs": ..., "parameters": {...}}`` or CSV with an ``inputs``/``question``/``context``
  header, JSON answers; a missing Accept (or ``*/*``) is ``application/json`` whatever
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` says; failures are 400 (``PredictionException``).
  ``HF_MODEL_ID`` (a download from the Hub) cannot work offline and fails the load.

These framework calls are not exercised by the test suite where the frameworks are not installed;
the request/response conversions are (tests/serving/test_containers.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from catkit.serving import toolkit_codecs as tc
from catkit.serving.errors import ModelLoadError, ServingError
from catkit.serving.frameworks import Profile

_TFS_JSON = ("application/json", "application/jsonlines", "application/jsons")


def tfs_request(body: str, content_type: str | None) -> str:
    """The TFS REST request body tensorflowServing.js builds (``json_request`` / ``csv_request``)."""
    if content_type in _TFS_JSON:
        if re.search(r'"(instances|inputs|examples)"\s*:', body):
            return body
        if re.search(r"[}\]]\s*[\[{]", body):  # json lines
            lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
            inner = ",".join(lines)
            return '{"instances":' + (inner if len(lines) == 1 else f"[{inner}]") + "}"
        data = body if re.match(r"^\s*\[\s*\[", body) else f"[{body}]"
        return '{"instances":' + data + "}"
    if content_type == tc.CSV:
        needs_quotes = re.search(r'^\s*("|[\d.Ee+\-]+.*)', body) is None
        rows = []
        for line in (x.strip() for x in body.strip().splitlines()):
            if not line:
                continue
            item = f'"{line.replace(chr(34), chr(92) + chr(34), 1).replace(",", chr(34) + "," + chr(34), 1)}"' \
                if needs_quotes else line
            rows.append(f"[{item}]" if "," in line else item)
        return '{"instances":[' + ",".join(rows) + "]}"
    raise ServingError(json.dumps({"error": f"Unsupported Media Type: {content_type or 'Unknown'}"}), status=415)


def saved_model_dir(model_dir: str) -> Path:
    """The SavedModel directory in an unpacked TFS archive (``saved_model.pb`` at any depth <= 2,
    highest version first)."""
    root = Path(model_dir)
    found = sorted(root.glob("saved_model.pb")) + sorted(root.glob("*/saved_model.pb"), reverse=True) + \
        sorted(root.glob("*/*/saved_model.pb"), reverse=True)
    if not found:
        raise FileNotFoundError(f"No SavedModel (saved_model.pb) under {model_dir}: TensorFlow Serving expects "
                                "model.tar.gz/<model name>/<version>/saved_model.pb.")
    return found[0].parent


class _TfsResponse:
    """What ``output_handler(response, context)`` receives in place of a ``requests.Response``."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content
        self.text = content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class TensorFlowServingProfile(Profile):
    family = "tfs"
    _input_handler: Any = None
    _output_handler: Any = None

    def defaults(self) -> dict[str, Any]:
        return {"model_fn": _load_saved_model}

    def bind(self, module: Any) -> None:
        """Take ``input_handler``/``output_handler`` from the user's ``code/inference.py``
        (``python_service._import_handlers``)."""
        if module is None:
            return
        if hasattr(module, "handler"):
            raise ModelLoadError("code/inference.py defines handler(data, context), which posts to a TensorFlow "
                                 "Serving server itself; the local backend emulates input_handler/output_handler only.")
        if not (hasattr(module, "input_handler") and hasattr(module, "output_handler")):
            raise ModelLoadError("NotImplementedError: Handlers are not implemented correctly in user script.")
        self._input_handler, self._output_handler = module.input_handler, module.output_handler

    def transform(self, model: Any, body: bytes, content_type: str | None,
                  accept: str | None) -> tuple[bytes | str, str]:
        if self._input_handler is None:
            request = tfs_request(body.decode("utf-8"), content_type)
            return json.dumps(_tfs_predict(model, request)), accept or tc.JSON
        context = SimpleNamespace(request_content_type=content_type, accept_header=accept or tc.JSON,
                                  content_length=len(body), method="predict", model_name="model",
                                  model_version=None, custom_attributes=None, rest_uri="local://tfs")
        try:
            request = self._input_handler(io.BytesIO(body), context)
        except Exception as e:
            raise ServingError(json.dumps({"error": str(e)}), status=500) from e
        try:
            response = _TfsResponse(200, json.dumps(_tfs_predict(model, request)).encode())
        except Exception as e:  # TFS answers 400 with {"error": ...} for a request it cannot run
            response = _TfsResponse(400, json.dumps({"error": str(e)}).encode())
        try:
            return self._output_handler(response, context)
        except Exception as e:
            raise ServingError(json.dumps({"error": str(e)}), status=500) from e


def _load_saved_model(model_dir: str) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(saved_model_dir(model_dir))).signatures["serving_default"]


def _tfs_predict(signature: Any, request: str) -> dict[str, Any]:
    import tensorflow as tf

    doc = json.loads(request)
    instances = doc.get("instances", doc.get("inputs"))
    outputs = signature(tf.constant(instances))
    values = {k: v.numpy().tolist() for k, v in outputs.items()}
    return {"predictions": next(iter(values.values())) if len(values) == 1 else values}


def hf_decode(body: bytes | str, content_type: str | None) -> Any:
    """``decoder_encoder.decode`` for JSON and CSV (images and audio are not emulated)."""
    if content_type == tc.JSON:
        return json.loads(body)
    if content_type == tc.CSV:
        text = body if isinstance(body, str) else body.decode("utf-8")
        first = text.splitlines()[0].lower() if text.splitlines() else ""
        if not any(h in first for h in ("question", "context", "inputs")):
            raise ServingError("You need to provide the correct CSV with Header columns to use it with the "
                               "inference toolkit default handler.", status=400)
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and "inputs" in rows[0]:
            return {"inputs": [r["inputs"] for r in rows]}
        return {"inputs": rows}
    raise tc.UnsupportedFormatError(content_type)


def _hf_model_fn(model_dir: str) -> Any:
    import os

    from transformers import pipeline

    task = os.environ.get("HF_TASK")
    if os.environ.get("HF_MODEL_ID") and not any(Path(model_dir).iterdir()):
        raise RuntimeError("HF_MODEL_ID loads a model from the Hugging Face Hub, which the local backend cannot "
                           "reach; put the model files in model.tar.gz instead.")
    if not task:
        raise ValueError("You need to define one of the transformers pipeline tasks as env 'HF_TASK'.")
    return pipeline(task=task, model=model_dir, device=-1)


def _hf_predict(data: Any, model: Any) -> Any:
    inputs = data.pop("inputs", data) if isinstance(data, dict) else data
    parameters = data.pop("parameters", None) if isinstance(data, dict) else None
    return model(inputs, **parameters) if parameters is not None else model(inputs)


def _hf_output(prediction: Any, accept: str) -> tuple[str, str]:
    if accept not in (tc.JSON, "application/json; verbose"):
        raise tc.UnsupportedFormatError(accept)
    return json.dumps(prediction, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)), tc.JSON


class HuggingFaceProfile(Profile):
    family = "huggingface"

    def defaults(self) -> dict[str, Any]:
        return {"model_fn": _hf_model_fn, "input_fn": hf_decode, "predict_fn": _hf_predict, "output_fn": _hf_output}

    def accept(self, header: str | None) -> str:
        return tc.JSON if not header or header == tc.ANY else header  # handler_service.handle

    def failure(self, exc: BaseException, *, default_input: bool, default_output: bool) -> ServingError:
        if isinstance(exc, ServingError):
            return exc
        return ServingError(str(exc), status=400)  # PredictionException(str(e), 400)


__all__ = ["HuggingFaceProfile", "TensorFlowServingProfile", "hf_decode", "saved_model_dir",
           "tfs_request"]
