"""Serving profiles: how each emulated AWS container runs a request through the user's functions.

A :class:`Profile` is what :class:`catkit.serving.handler.ModelHandler` follows for one container
(:mod:`catkit.serving.containers` picks the kind from the image URI): which script it imports,
its default ``model_fn``/``input_fn``/``predict_fn``/``output_fn``, how it reads Content-Type and
Accept, and which HTTP status each failure gets. Each rule cites the AWS file it follows:

- :class:`ToolkitProfile` - sagemaker-inference-toolkit (``transformer.py``,
  ``default_inference_handler.py``): custom images, PyTorch (``default_pytorch_inference_handler.py``)
  and every multi-model framework container (scikit-learn's and XGBoost's ``handler_service.py``).
  Any failure is a 500 whose body is the message and the traceback (``Transformer.handle_error``).
- :class:`ContainersProfile` - sagemaker-containers (``_transformer.py``, ``_worker.py``):
  scikit-learn (``serving.py``) and XGBoost (``serving.py``) single-model serving with a user
  script. An unsupported request type is a 415, an unsupported Accept a 406, both with the JSON
  error body of ``Transformer._error_response``; other failures are 500s.
- The XGBoost built-in algorithm (no ``SAGEMAKER_PROGRAM``) is :mod:`catkit.serving.xgboost_algorithm`,
  TensorFlow Serving and Hugging Face are :mod:`catkit.serving.hub_profiles`; :mod:`catkit.serving.profiles`
  picks the profile of a container kind.
"""

from __future__ import annotations

import json
import os
import textwrap
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from catkit.serving import toolkit_codecs as tc
from catkit.serving.containers import ContainerKind, user_program
from catkit.serving.errors import ServingError

DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"

_MODEL_FN_MISSING = textwrap.dedent(
    """
    Please provide a model_fn implementation.
    See documentation for model_fn at https://sagemaker.readthedocs.io/en/stable/
    """
)
_PREDICT_FN_MISSING = textwrap.dedent(
    """
    Please provide a predict_fn implementation.
    See documentation for predict_fn at https://sagemaker.readthedocs.io/en/stable/
    """
)


def no_model_fn(model_dir: str) -> Any:
    """``DefaultInferenceHandler.default_model_fn`` (and scikit-learn's, XGBoost's): there is none."""
    raise NotImplementedError(_MODEL_FN_MISSING)


def no_predict_fn(data: Any, model: Any) -> Any:
    """``DefaultInferenceHandler.default_predict_fn``: there is none."""
    raise NotImplementedError(_PREDICT_FN_MISSING)


class Profile:
    """The serving rules of one container kind (see the module docstring)."""

    family = "toolkit"

    def __init__(self, kind: ContainerKind, env: Mapping[str, str] | None = None, *,
                 multi_model: bool = False) -> None:
        self.kind = kind
        self.env = dict(env if env is not None else os.environ)
        self.multi_model = multi_model

    @property
    def program(self) -> str | None:
        """The user script's file name (None: the container imports none)."""
        return user_program(self.kind, self.env, self.multi_model)

    def defaults(self) -> dict[str, Callable[..., Any]]:
        """Default handler functions by name (model_fn, input_fn, predict_fn, output_fn)."""
        raise NotImplementedError

    def accept(self, header: str | None) -> str:
        return tc.default_accept(header, self.env.get(DEFAULT_ACCEPT_ENV))

    def content_type(self, header: str | None) -> str | None:
        return header

    def missing_program(self) -> str:
        """Why the container cannot start without ``SAGEMAKER_PROGRAM``."""
        return f"The {self.kind.label} container needs SAGEMAKER_PROGRAM."

    def script_missing(self, script: str) -> str | None:
        """What happens when the user script file is absent: None = run on the defaults
        (the toolkit's ``find_spec`` finds nothing), else the load error message."""
        return None

    def failure(self, exc: BaseException, *, default_input: bool, default_output: bool) -> ServingError:
        """The HTTP error a failed invocation answers with."""
        if isinstance(exc, ServingError):
            return exc
        # Transformer.handle_error: GenericInferenceToolkitError(500, str(e)); body "message\ntrace".
        message = getattr(exc, "message", None) or str(exc)
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return ServingError(f"{message}\n{trace}", status=500)


class ToolkitProfile(Profile):
    """sagemaker-inference-toolkit containers (custom, PyTorch, multi-model framework containers)."""

    family = "toolkit"

    def defaults(self) -> dict[str, Callable[..., Any]]:
        name = self.kind.name
        if name == "pytorch":
            return {"model_fn": _torch_model_fn, "input_fn": _torch_input_fn,
                    "predict_fn": _torch_predict_fn, "output_fn": _torch_output_fn}
        if name == "sklearn":  # sagemaker_sklearn_container/handler_service.py (multi-model serving)
            return {"model_fn": no_model_fn, "input_fn": _sklearn_toolkit_input_fn,
                    "predict_fn": _model_predict, "output_fn": _encode_as_accept}
        if name == "xgboost":  # sagemaker_xgboost_container/handler_service.py (multi-model serving)
            return {"model_fn": no_model_fn, "input_fn": xgb_decode,
                    "predict_fn": _xgb_predict, "output_fn": _xgb_toolkit_output_fn}
        # default_inference_handler.DefaultInferenceHandler
        return {"model_fn": no_model_fn, "input_fn": tc.toolkit_decode,
                "predict_fn": no_predict_fn, "output_fn": tc.toolkit_output}


class ContainersProfile(Profile):
    """sagemaker-containers serving: scikit-learn and XGBoost single-model containers with a script."""

    family = "containers"

    def defaults(self) -> dict[str, Callable[..., Any]]:
        if self.kind.name == "xgboost":  # sagemaker_xgboost_container/serving.py
            return {"model_fn": no_model_fn, "input_fn": xgb_decode,
                    "predict_fn": _xgb_predict, "output_fn": _containers_output_fn}
        # sagemaker_sklearn_container/serving.py
        return {"model_fn": no_model_fn, "input_fn": _sklearn_input_fn,
                "predict_fn": _model_predict, "output_fn": _containers_output_fn}

    def content_type(self, header: str | None) -> str | None:
        # _worker.Request.content_type: the header, else application/json.
        return header or tc.JSON

    def missing_program(self) -> str:
        # sagemaker_containers _env.ServingEnv.module_name is None without SAGEMAKER_PROGRAM, and
        # serving.main's importlib.import_module(None) fails on the first request, /ping included.
        return (
            f"The {self.kind.label} container imports the script named by SAGEMAKER_PROGRAM, which is not set "
            "(AWS's container fails its first /ping with: 'NoneType' object has no attribute 'startswith'). "
            "Set SAGEMAKER_PROGRAM=inference.py and SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code (the "
            "script inside the archive's code/) or an s3:// sourcedir.tar.gz, as the SageMaker SDK does for "
            "entry_point."
        )

    def script_missing(self, script: str) -> str | None:
        # _modules.import_module -> ImportModuleError(No module named ...).
        return f"ImportModuleError: No module named '{script.removesuffix('.py')}' in the submitted code directory."

    def failure(self, exc: BaseException, *, default_input: bool, default_output: bool) -> ServingError:
        stage = getattr(exc, "stage", None)
        if isinstance(exc, tc.UnsupportedFormatError) and (
            (stage == "input" and default_input) or (stage == "output" and default_output)
        ):
            # _transformer._default_transform_fn: 415 from the default input_fn, 406 from output_fn.
            status = 415 if stage == "input" else 406
            body = json.dumps({"error": "UnsupportedFormatError", "error-message": exc.message,
                               "stack-trace": "".join(traceback.format_exception(exc))})
            return ServingError(body, status=status)
        if isinstance(exc, ServingError):
            return exc
        # AWS's Flask worker answers a generic "500 Internal Server Error" page; catkit keeps the
        # exception (type and message) so the caller sees why, and the log has the traceback.
        return ServingError(f"{type(exc).__name__}: {exc}", status=500)


# ------------------------------------------------------------------ shared defaults
def _model_predict(data: Any, model: Any) -> Any:
    return model.predict(data)


def _encode_as_accept(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    # sklearn handler_service.default_output_fn: encoder.encode(prediction, accept), accept
    return tc.toolkit_encode(prediction, accept), accept


def _containers_output_fn(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    # serving.default_output_fn: worker.Response(encoders.encode(prediction, accept), mimetype=accept)
    try:
        return tc.containers_encode(prediction, accept), accept
    except tc.UnsupportedFormatError as exc:
        exc.stage = "output"  # type: ignore[attr-defined]
        raise


def _sklearn_input_fn(input_data: Any, content_type: str) -> Any:
    # sagemaker_sklearn_container/serving.py default_input_fn
    try:
        np_array = tc.containers_decode(input_data, content_type)
    except tc.UnsupportedFormatError as exc:
        exc.stage = "input"  # type: ignore[attr-defined]
        raise
    return np_array.astype(np.float32) if content_type in tc.UTF8_TYPES else np_array


def _sklearn_toolkit_input_fn(input_data: Any, content_type: str) -> Any:
    # sagemaker_sklearn_container/handler_service.py default_input_fn (1-D -> one row)
    np_array = tc.toolkit_decode(input_data, content_type)
    if len(np_array.shape) == 1:
        np_array = np_array.reshape(1, -1)
    return np_array.astype(np.float32) if content_type in tc.UTF8_TYPES else np_array


# ------------------------------------------------------------------ XGBoost framework mode
def csv_to_dmatrix(text: str | bytes, dtype: Any = None) -> Any:
    # sagemaker_xgboost_container/encoder.py csv_to_dmatrix
    import csv

    import xgboost as xgb

    csv_string = text.decode() if isinstance(text, bytes) else text
    sniffed = csv.Sniffer().sniff(csv_string.split("\n")[0][:512]).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in csv_string.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(dtype))


def _libsvm_to_dmatrix(text: str | bytes) -> Any:
    # sagemaker_xgboost_container/encoder.py libsvm_to_dmatrix
    import xgboost as xgb

    string_like = text.decode("utf-8") if isinstance(text, bytes | bytearray) else text
    rows = []
    for line in string_like.strip().split("\n"):
        row = {}
        for token in line.strip().split():
            if ":" in token:
                idx, val = token.split(":", 1)
                row[int(idx)] = float(val)
        rows.append(row)
    if not rows or not any(rows):
        return xgb.DMatrix(np.empty((0, 0)))
    min_idx = min(idx for row in rows for idx in row)
    offset = 1 if min_idx >= 1 else 0
    max_col = max(idx for row in rows for idx in row) - offset + 1
    data = np.zeros((len(rows), max_col))
    for i, row in enumerate(rows):
        for idx, val in row.items():
            data[i, idx - offset] = val
    return xgb.DMatrix(data)


def xgb_decode(input_data: Any, content_type: str) -> Any:
    """``sagemaker_xgboost_container.encoder.decode``: CSV and LIBSVM (media type, parameters
    ignored) to a DMatrix. RecordIO-protobuf is not emulated locally."""
    media = (content_type or "").split(";", 1)[0].strip()
    if media == tc.CSV:
        return csv_to_dmatrix(input_data)
    if media in ("text/libsvm", "text/x-libsvm"):
        return _libsvm_to_dmatrix(input_data)
    error = tc.UnsupportedFormatError(media)
    error.stage = "input"  # type: ignore[attr-defined]
    raise error


def _xgb_predict(input_data: Any, model: Any) -> Any:
    return model.predict(input_data, validate_features=False)


def _xgb_toolkit_output_fn(prediction: Any, accept: str) -> bytes | str:
    # xgboost handler_service.default_output_fn: sagemaker-containers encoders, CSV as bytes
    encoded = tc.containers_encode(prediction, accept)
    return encoded.encode("utf-8") if accept == tc.CSV and isinstance(encoded, str) else encoded


# ------------------------------------------------------------------ PyTorch
def _torch_model_fn(model_dir: str) -> Any:
    # default_pytorch_inference_handler.default_model_fn (no Elastic Inference)
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_path = os.path.join(model_dir, "model.pt")
    if not os.path.exists(model_path):
        model_files = [f for f in os.listdir(model_dir)
                       if os.path.isfile(os.path.join(model_dir, f)) and os.path.splitext(f)[1] in (".pt", ".pth")]
        if len(model_files) != 1:
            raise ValueError(f"Exactly one .pth or .pt file is required for PyTorch models: {model_files}")
        model_path = os.path.join(model_dir, model_files[0])
    try:
        model = torch.jit.load(model_path, map_location=device)
    except RuntimeError as e:
        raise RuntimeError(f"Failed to load {model_path}. Please ensure model is saved using torchscript.") from e
    return model.to(device)


def _torch_input_fn(input_data: Any, content_type: str) -> Any:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    np_array = tc.toolkit_decode(input_data, content_type)
    tensor = torch.FloatTensor(np_array) if content_type in tc.UTF8_TYPES else torch.from_numpy(np_array)
    return tensor.to(device)


def _torch_predict_fn(data: Any, model: Any) -> Any:
    import torch

    with torch.no_grad():
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model = model.to(device)
        model.eval()
        return model(data.to(device))


def _torch_output_fn(prediction: Any, accept: str) -> bytes | str:
    import torch

    if type(prediction) is torch.Tensor:
        prediction = prediction.detach().cpu().numpy().tolist()
    for content_type in tc.parse_accept(accept):
        if content_type in tc.TOOLKIT_ENCODINGS:
            encoded = tc.toolkit_encode(prediction, content_type)
            return encoded.encode("utf-8") if content_type == tc.CSV and isinstance(encoded, str) else encoded
    raise tc.UnsupportedFormatError(accept)


__all__ = [
    "DEFAULT_ACCEPT_ENV",
    "ContainersProfile",
    "Profile",
    "ToolkitProfile",
    "csv_to_dmatrix",
    "no_model_fn",
    "no_predict_fn",
    "xgb_decode",
]
