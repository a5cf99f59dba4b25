"""Serving profiles of the TensorFlow Serving and Hugging Face inference containers.

Both need their framework (``catkit[tensorflow]``, ``catkit[huggingface]``); the fleet fails
CreateEndpoint at once when it is missing (:func:`catkit.serving.containers.missing_framework`).
Every rule below cites the file and function of AWS's container it follows; all of them run in
``make test-frameworks`` (tests/local/sagemaker/test_framework_containers_e2e.py, with TensorFlow
and transformers installed) and the pure conversions also in ``make test`` (tests/serving/test_containers.py).

- **TensorFlow Serving** (aws/sagemaker-tensorflow-serving-container ``docker/build_artifacts/sagemaker/``):
  without ``code/inference.py``, nginx's ``tensorflowServing.js`` ``invocations`` answers: exactly
  ``application/json``/``application/jsonlines``/``application/jsons`` or ``text/csv`` (else 415
  ``{"error": "Unsupported Media Type: ..."}``), converted to a TFS REST request by ``json_request``
  / ``json_lines_request`` / ``generic_json_request`` / ``csv_request`` (:func:`tfs_request`), sent
  to the model ``parse_custom_attributes`` names (``tfs-model-name``/``-version``/``-method``), TFS's
  status and body passed through; the Content-Type is the first Accept entry when the Accept names
  a JSON type, else nginx's ``default_type application/json`` (``tfs_json_request``). The models
  and the predict call are :mod:`catkit.serving.tfs_rest`. With ``code/inference.py``
  (``serve.py`` ``_need_python_service``) every request goes to ``python_service.py``: the script's
  ``handler(data, context)``, or ``input_handler`` -> ``requests.post(context.rest_uri)`` ->
  ``output_handler`` (``_import_handlers``, ``_make_handler``), with ``tfs_utils.Context``;
  ``rest_uri`` points at a loopback TFS REST server (gRPC is not emulated: ``grpc_port`` is None);
  any exception is 500 ``{"error": ...}`` (``_handle_invocation_post``). ``model_fn``/``input_fn``...
  in the script are ignored, as the container ignores them.
- **Hugging Face** (aws/sagemaker-huggingface-inference-toolkit ``src/sagemaker_huggingface_inference_toolkit/``):
  ``handler_service.HuggingFaceHandlerService.load`` (``HF_TASK``, else the task from
  ``config.json``'s architecture: ``transformers_utils.infer_task_from_model_architecture``) builds
  ``transformers_utils.get_pipeline`` (``pipeline(task, model=model_dir, tokenizer=model_dir)``);
  ``preprocess`` refuses CSV for zero-shot-classification / table-question-answering and decodes
  with ``decoder_encoder.decode`` (JSON; CSV with a ``question``/``context``/``inputs`` header; NPY;
  images; audio); ``predict`` pops ``inputs`` and ``parameters`` from the decoded dict;
  ``postprocess`` encodes with ``decoder_encoder.encode`` (JSON, CSV, NPY, images) in the Accept,
  which ``handle`` makes ``application/json`` when missing or ``*/*``. Any failure is
  ``PredictionException(str(e), 400)``, which the model server (MMS) answers as
  ``{"code": 400, "type": "InternalServerException", "message": ...}``. ``HF_MODEL_ID``
  (``mms_model_server.start_model_server`` downloads it from the Hub) loads from the local Hugging
  Face cache only: the local backend has no Hub.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import namedtuple
from pathlib import Path
from typing import Any

from catkit.serving import toolkit_codecs as tc
from catkit.serving.errors import ModelLoadError, ServingError
from catkit.serving.frameworks import Profile
from catkit.serving.tfs_rest import TfsError, TfsModels, find_models

_TFS_JSON = ("application/json", "application/jsonlines", "application/jsons")


# ------------------------------------------------------------------ TensorFlow Serving
def tfs_request(body: str, content_type: str | None) -> str:
    """The TFS REST request body tensorflowServing.js builds (``invocations`` -> ``json_request``,
    ``csv_request``); 415 ServingError for any other Content-Type."""
    if content_type in _TFS_JSON:
        if re.search(r'"(instances|inputs|examples)"\s*:', body):  # is_tfs_json
            return body
        if re.search(r"[}\]]\s*[\[{]", body):  # is_json_lines -> json_lines_request
            lines = re.split(r"\r?\n", body.strip())
            items = [line.strip() for line in lines if line.strip()]
            inner = ",".join(items)
            return '{"instances":' + (inner if len(lines) == 1 else f"[{inner}]") + "}"
        data = body if re.match(r"^\s*\[\s*\[", body) else f"[{body}]"  # generic_json_request
        return '{"instances":' + data + "}"
    if content_type == tc.CSV:
        needs_quotes = re.search(r'^\s*("|[\d.Ee+\-]+.*)', body) is None
        rows = []
        for line in (x.strip() for x in re.split(r"\r?\n", body.strip())):
            if not line:
                continue
            # JS String.replace with a string pattern replaces the first match only.
            item = '"' + line.replace('"', '\\"', 1).replace(",", '","', 1) + '"' if needs_quotes else line
            rows.append(f"[{item}]" if "," in line else item)
        return '{"instances":[' + ",".join(rows) + "]}"
    raise ServingError(json.dumps({"error": f"Unsupported Media Type: {content_type or 'Unknown'}"}), status=415)


def tfs_attributes(header: str | None) -> dict[str, str]:
    """``tfs-...=value`` pairs of X-Amzn-SageMaker-Custom-Attributes (``parse_custom_attributes``)."""
    pairs = (m.split("=") for m in re.findall(r"tfs-[a-z\-]+=[^,]+", header or ""))
    return {p[0]: p[1] for p in pairs if len(p) == 2}


def tfs_response_type(accept: str | None) -> str:
    """The answer's Content-Type (``tfs_json_request``): the first Accept entry when the Accept names
    application/json or application/jsonlines (``accept.trim().replace(" ", "")`` drops the first
    space only), else nginx's ``default_type application/json``."""
    if accept is not None:
        types = accept.strip().replace(" ", "", 1).split(",")
        if "application/jsonlines" in types or "application/json" in types:
            return types[0]
    return tc.JSON


def saved_model_dir(model_dir: str) -> Path:
    """The SavedModel directory TFS serves by default from an unpacked archive (highest version of
    the first model ``tfs_utils.find_models`` finds)."""
    models = find_models(model_dir)
    if not models:
        raise FileNotFoundError(f"No SavedModel (<model name>/<version>/saved_model.pb) under {model_dir}.")
    versions = next(iter(models.values()))
    return versions[max(versions)]


Context = namedtuple(  # tfs_utils.Context
    "Context",
    "model_name, model_version, method, rest_uri, grpc_port, channel, "
    "custom_attributes, request_content_type, accept_header, content_length",
)


class TensorFlowServingProfile(Profile):
    family = "tfs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler: Any = None
        self._python_service = False

    def defaults(self) -> dict[str, Any]:
        return {"model_fn": lambda model_dir: TfsModels(model_dir, self.env)}

    def script_functions(self, functions: dict[str, Any]) -> dict[str, Any]:
        """The container calls none of the toolkit functions (model_fn, input_fn, ...) of a script."""
        return dict.fromkeys(functions)

    def bind(self, module: Any) -> None:
        """``python_service._import_handlers`` on ``code/inference.py`` (``handler``, else
        ``input_handler`` + ``output_handler``, else NotImplementedError)."""
        if module is None:
            return
        self._python_service = True
        if hasattr(module, "handler"):
            self._handler = module.handler
        elif hasattr(module, "input_handler") and hasattr(module, "output_handler"):
            self._handler = _make_handler(module.input_handler, module.output_handler)
        else:
            raise ModelLoadError("NotImplementedError: Handlers are not implemented correctly in user script.")

    def transform(self, model: TfsModels, body: bytes, content_type: str | None, accept: str | None,
                  custom_attributes: str | None = None) -> tuple[bytes | str, str]:
        attrs = tfs_attributes(custom_attributes)
        if self._python_service:
            return self._python_service_call(model, body, content_type, accept, custom_attributes, attrs)
        request = tfs_request(body.decode("utf-8", errors="replace"), content_type)
        try:
            answer = model.predict(request, attrs.get("tfs-model-name"), attrs.get("tfs-model-version"),
                                   attrs.get("tfs-method") or "predict")
        except TfsError as exc:
            raise ServingError(exc.body(), status=exc.status) from exc
        return json.dumps(answer), tfs_response_type(accept)

    def _python_service_call(self, model: TfsModels, body: bytes, content_type: str | None, accept: str | None,
                             custom_attributes: str | None, attrs: dict[str, str]) -> tuple[bytes | str, str]:
        # tfs_utils.parse_request / make_tfs_uri, then python_service._handle_invocation_post.
        uri = f"http://127.0.0.1:{model.rest_port()}/v1/models/{attrs.get('tfs-model-name', model.default_name)}"
        if attrs.get("tfs-model-version"):
            uri += "/versions/" + attrs["tfs-model-version"]
        uri += ":" + attrs.get("tfs-method", "predict")
        context = Context(attrs.get("tfs-model-name"), attrs.get("tfs-model-version"), attrs.get("tfs-method"), uri,
                          None, None, custom_attributes, content_type or tc.JSON, accept or tc.JSON, len(body))
        try:
            result, response_type = self._handler(io.BytesIO(body), context)
        except Exception as exc:
            raise ServingError(json.dumps({"error": str(exc)}), status=500) from exc
        return result, str(response_type)


def _make_handler(input_handler: Any, output_handler: Any) -> Any:
    """``python_service._make_handler``: input_handler -> POST to TFS -> output_handler."""
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment

    def handler(data: Any, context: Any) -> Any:
        processed_input = input_handler(data, context)
        response = session.post(context.rest_uri, data=processed_input)
        return output_handler(response, context)

    return handler


# ------------------------------------------------------------------ Hugging Face
HF_TASK_ENV = "HF_TASK"
# transformers_utils.ARCHITECTURES_2_TASK (the last matching suffix wins, as in the loop there)
ARCHITECTURES_2_TASK = {
    "TapasForQuestionAnswering": "table-question-answering",
    "ForQuestionAnswering": "question-answering",
    "ForTokenClassification": "token-classification",
    "ForSequenceClassification": "text-classification",
    "ForMultipleChoice": "multiple-choice",
    "ForMaskedLM": "fill-mask",
    "ForCausalLM": "text-generation",
    "ForConditionalGeneration": "text2text-generation",
    "MTModel": "text2text-generation",
    "EncoderDecoderModel": "text2text-generation",
    "GPT2LMHeadModel": "text-generation",
    "T5WithLMHeadModel": "text2text-generation",
}
_FEATURE_EXTRACTOR_TASKS = {"automatic-speech-recognition", "image-segmentation", "image-classification",
                            "audio-classification", "object-detection", "zero-shot-image-classification"}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/bmp", "image/gif", "image/webp", "image/x-image")
_AUDIO_TYPES = ("audio/x-flac", "audio/mpeg", "audio/wave", "audio/ogg", "audio/x-audio")
_CSV_HEADER = "You need to provide the correct CSV with Header columns to use it with the inference toolkit default handler."


def infer_task(config_path: str | Path) -> str:
    """``transformers_utils.infer_task_from_model_architecture`` (sets HF_TASK, as it does)."""
    config = json.loads(Path(config_path).read_text())
    architecture = config.get("architectures", [None])[0]
    task = None
    for suffix, candidate in ARCHITECTURES_2_TASK.items():
        if architecture is not None and architecture.endswith(suffix):
            task = candidate
    if task is None:
        raise ValueError(
            f"Task couldn't be inferenced from {architecture}.Inference Toolkit can only inference tasks from "
            f"architectures ending with {list(ARCHITECTURES_2_TASK)}.Use env `HF_TASK` to define your task.")
    os.environ[HF_TASK_ENV] = task
    return task


def _hf_model_fn(model_dir: str) -> Any:
    """``HuggingFaceHandlerService.load`` + ``transformers_utils.get_pipeline`` on the CPU (device -1)."""
    from transformers import pipeline

    model_id = os.environ.get("HF_MODEL_ID")
    task = os.environ.get(HF_TASK_ENV)
    listing = os.listdir(model_dir)
    if model_id:
        # mms_model_server.start_model_server: HF_MODEL_ID is downloaded from the Hub, the archive unused.
        if not task:
            raise ValueError("HF_MODEL_ID without HF_TASK: AWS asks the Hub for the task "
                             "(infer_task_from_hub), which the local backend cannot reach; set HF_TASK.")
        try:
            return pipeline(task=task, model=model_id, device=-1)
        except Exception as exc:
            raise RuntimeError(f"HF_MODEL_ID={model_id}: {exc} (the local backend has no Hugging Face Hub: the model "
                               "must be in the local Hugging Face cache, or its files in model.tar.gz)") from exc
    if not task and "config.json" in listing:
        task = infer_task(Path(model_dir) / "config.json")
    elif not task and "model_index.json" in listing:
        raise ValueError("text-to-image (model_index.json, diffusers) is not emulated by the local backend.")
    elif not task:
        from transformers.pipelines import SUPPORTED_TASKS

        raise ValueError(f"You need to define one of the following {list(SUPPORTED_TASKS.keys())} or text-to-image "
                         "as env 'HF_TASK'.", 403)
    key = "feature_extractor" if task in _FEATURE_EXTRACTOR_TASKS else "tokenizer"
    return pipeline(task=task, model=model_dir, device=-1, **{key: model_dir})


def hf_decode(body: bytes | str, content_type: str | None) -> Any:
    """``HuggingFaceHandlerService.preprocess`` + ``decoder_encoder.decode``."""
    task = os.environ.get(HF_TASK_ENV)
    if task in ("zero-shot-classification", "table-question-answering") and content_type == tc.CSV:
        raise ValueError(f"content type {content_type} not support with {task}, use different content_type")
    if content_type == tc.JSON:
        return json.loads(body)
    if content_type == tc.CSV:  # decode_csv
        text = body if isinstance(body, str) else body.decode("utf-8")
        if not any(h in text.splitlines()[0].lower() for h in ("question", "context", "inputs")):
            raise ValueError(_CSV_HEADER)
        rows = list(csv.DictReader(io.StringIO(text)))
        if "inputs" in rows[0]:
            return {"inputs": [r["inputs"] for r in rows]}
        return {"inputs": rows}
    if content_type == tc.NPY:
        return tc.toolkit_decode(body, content_type)
    if content_type in _IMAGE_TYPES:  # decode_image
        from PIL import Image

        return {"inputs": Image.open(io.BytesIO(body)).convert("RGB")}
    if content_type in _AUDIO_TYPES:  # decode_audio
        return {"inputs": bytes(body) if not isinstance(body, str) else body.encode("latin-1")}
    raise tc.UnsupportedFormatError(content_type)


def _hf_predict(data: Any, model: Any) -> Any:
    """``HuggingFaceHandlerService.predict``: ``data.pop`` (so a JSON body that is not an object
    fails as on AWS: ``'str' object has no attribute 'pop'``)."""
    inputs = data.pop("inputs", data)
    parameters = data.pop("parameters", None)
    return model(inputs, **parameters) if parameters is not None else model(inputs)


def _json_default(obj: Any) -> Any:
    # decoder_encoder._JSONEncoder.default
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "save") and hasattr(obj, "mode"):  # PIL.Image: base64 PNG
        import base64

        with io.BytesIO() as out:
            obj.save(out, format="PNG")
            return base64.b64encode(out.getvalue()).decode("utf-8")
    return str(obj)


def _hf_output(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    """``HuggingFaceHandlerService.postprocess`` + ``decoder_encoder.encode``; answered as ``accept``."""
    if accept == tc.JSON:
        return json.dumps(prediction, ensure_ascii=False, allow_nan=False, indent=None, default=_json_default,
                          separators=(",", ":")), accept
    if accept == tc.CSV:  # encode_csv: a DictWriter over the result's dicts
        rows = prediction if isinstance(prediction, list) else list(prediction)
        stream = io.StringIO()
        writer = csv.DictWriter(stream, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
        return stream.getvalue(), accept
    if accept == tc.NPY:  # encode_npy: np.save, as the inference toolkit's encoder
        return tc.toolkit_encode(prediction, tc.NPY), accept
    if accept in _IMAGE_TYPES:  # encode_image
        fmt = "PNG" if accept == "image/x-image" else accept.split("/")[-1].upper()
        with io.BytesIO() as out:
            prediction.save(out, format=fmt)
            return out.getvalue(), accept
    raise tc.UnsupportedFormatError(accept)


def mms_error(status: int, message: str) -> str:
    """The body MMS's frontend answers a PredictionException with: Gson pretty-printed with HTML
    escaping (``'`` is ``\\u0027``), as seen in users' ModelError messages."""
    text = json.dumps({"code": status, "type": "InternalServerException", "message": message}, indent=2)
    for ch in "'<>&=":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text + "\n"


class HuggingFaceProfile(Profile):
    family = "huggingface"

    def defaults(self) -> dict[str, Any]:
        return {"model_fn": _hf_model_fn, "input_fn": hf_decode, "predict_fn": _hf_predict, "output_fn": _hf_output}

    def accept(self, header: str | None) -> str:
        return tc.JSON if not header or header == tc.ANY else header  # handler_service.handle

    def failure(self, exc: BaseException, *, default_input: bool, default_output: bool) -> ServingError:
        message = exc.message if isinstance(exc, ServingError) else str(exc)
        return ServingError(mms_error(400, message), status=400)  # handle: PredictionException(str(e), 400)


__all__ = ["ARCHITECTURES_2_TASK", "Context", "HuggingFaceProfile", "TensorFlowServingProfile", "hf_decode",
           "infer_task", "mms_error", "saved_model_dir", "tfs_attributes", "tfs_request", "tfs_response_type"]
