"""The AWS serving toolkits' own request decoders and response encoders, byte for byte.

Two families, because AWS's framework containers use two toolkits:

- **sagemaker-inference-toolkit** (custom containers, PyTorch, every multi-model framework
  container): :func:`toolkit_decode` / :func:`toolkit_encode` follow
  ``src/sagemaker_inference/decoder.py`` and ``encoder.py`` (JSON -> ``np.array(json.loads(s))``,
  CSV -> ``np.genfromtxt(s, delimiter=",")`` so one row is 1-D, NPY, NPZ -> a scipy sparse matrix;
  out: ``json.dumps`` with ``tolist``, ``np.savetxt(fmt="%s")``, ``np.save``), :func:`parse_accept`
  follows ``utils.parse_accept`` (split on commas, no quality values) and the 500-status
  ``UnsupportedFormatError`` text is ``errors.py``'s.
- **sagemaker-containers** (scikit-learn and XGBoost single-model serving, gunicorn + Flask):
  :func:`containers_decode` / :func:`containers_encode` follow
  ``src/sagemaker_containers/_encoders.py`` (CSV read with ``csv.reader`` then ``squeeze()``, so
  one row is 1-D and one column is 1-D; CSV out with ``csv.writer``, a 1-D array as one column).

Media types are matched exactly, as both toolkits do: ``application/json; charset=utf-8`` is not
``application/json``. One deliberate difference: NPY request bodies are loaded with
``allow_pickle=False`` (the toolkits pass ``True``): a request body must never run code locally.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from typing import Any

import numpy as np

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"
ANY = "*/*"
UTF8_TYPES = (JSON, CSV)  # sagemaker_inference/content_types.py, sagemaker_containers/_content_types.py


class UnsupportedFormatError(Exception):
    """``sagemaker_inference.errors.UnsupportedFormatError`` (same message; the toolkit answers 500,
    sagemaker-containers 415 for a request type and 406 for an Accept type)."""

    def __init__(self, content_type: str | None) -> None:
        self.content_type = content_type
        self.message = textwrap.dedent(
            f"""Content type {content_type} is not supported by this framework.

            Please implement input_fn to to deserialize the request data or an output_fn to
            serialize the response. For more information, see the SageMaker Python SDK README."""
        )
        super().__init__(self.message)


def _npy(body: bytes | str) -> np.ndarray:
    data = body.encode("latin-1") if isinstance(body, str) else body
    return np.load(io.BytesIO(data), allow_pickle=False)


def _npz(body: bytes | str) -> Any:
    import scipy.sparse  # a scikit-learn dependency, so always present

    data = body.encode("latin-1") if isinstance(body, str) else body
    return scipy.sparse.load_npz(io.BytesIO(data))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return json.JSONEncoder().default(value)


# ------------------------------------------------------------------ sagemaker-inference-toolkit
def toolkit_decode(body: bytes | str, content_type: str | None) -> Any:
    """``sagemaker_inference.decoder.decode``: exact media types JSON, CSV, NPY, NPZ."""
    if content_type == JSON:
        return np.array(json.loads(body))
    if content_type == CSV:
        text = body if isinstance(body, str) else body.decode("utf-8")
        return np.genfromtxt(io.StringIO(text), delimiter=",")
    if content_type == NPY:
        return _npy(body)
    if content_type == NPZ:
        return _npz(body)
    raise UnsupportedFormatError(content_type)


def toolkit_encode(value: Any, content_type: str) -> bytes | str:
    """``sagemaker_inference.encoder.encode``: JSON and CSV as ``str``, NPY as bytes."""
    if content_type == JSON:
        return json.dumps(value, default=_default)
    if content_type == CSV:
        stream = io.StringIO()
        np.savetxt(stream, value, delimiter=",", fmt="%s")
        return stream.getvalue()
    return _npy_out(value, content_type)


def _npy_out(value: Any, content_type: str) -> bytes:
    """NPY out (``np.save``, both toolkits), or UnsupportedFormatError for any other type."""
    if content_type != NPY:
        raise UnsupportedFormatError(content_type)
    buffer = io.BytesIO()
    np.save(buffer, value)
    return buffer.getvalue()


TOOLKIT_ENCODINGS = (NPY, CSV, JSON)  # encoder.SUPPORTED_CONTENT_TYPES


def parse_accept(accept: str) -> list[str]:
    """``sagemaker_inference.utils.parse_accept``: ``accept.replace(" ", "").split(",")``."""
    return accept.replace(" ", "").split(",")


def toolkit_output(prediction: Any, accept: str) -> tuple[bytes | str, str]:
    """``DefaultInferenceHandler.default_output_fn``: the first Accept entry the encoder supports."""
    for content_type in parse_accept(accept):
        if content_type in TOOLKIT_ENCODINGS:
            return toolkit_encode(prediction, content_type), content_type
    raise UnsupportedFormatError(accept)


def default_accept(accept: str | None, env_default: str | None) -> str:
    """Both toolkits: a missing Accept or exactly ``*/*`` becomes
    ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default ``application/json``); anything else is kept
    as sent (``transformer.py`` / ``_worker.Request.accept``)."""
    if not accept or accept == ANY:
        return env_default or JSON
    return accept


# ------------------------------------------------------------------ sagemaker-containers
def containers_decode(body: bytes | str, content_type: str | None) -> Any:
    """``sagemaker_containers._encoders.decode``: exact media types JSON, CSV, NPY."""
    if content_type == JSON:
        return np.array(json.loads(body))
    if content_type == CSV:
        return _csv_to_numpy(body if isinstance(body, str) else body.decode("utf-8"))
    if content_type == NPY:
        return _npy(body)
    raise UnsupportedFormatError(content_type)


def _csv_to_numpy(text: str) -> np.ndarray:
    # _encoders.csv_to_numpy: rows of strings, squeezed, then astype(None) (float64); a value that
    # is not a number leaves the string array as it is (the ValueError is swallowed when dtype is None).
    try:
        reader = csv.reader(io.StringIO(text), delimiter=",", quotechar='"', doublequote=True, strict=True)
        array = np.array(list(reader)).squeeze()
    except Exception as exc:
        raise ValueError(f"Error while decoding csv: {exc}") from exc
    try:
        return array.astype(None)
    except ValueError:
        return array


def containers_encode(value: Any, content_type: str) -> bytes | str:
    """``sagemaker_containers._encoders.encode``: JSON, CSV (``csv.writer``; 1-D -> one column), NPY."""
    if content_type == JSON:
        return json.dumps(value, default=_default)
    if content_type == CSV:
        array = np.array(value)
        if len(array.shape) == 1:
            array = np.reshape(array, (array.shape[0], 1))
        stream = io.StringIO()
        writer = csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True)
        writer.writerows(array)
        return stream.getvalue()
    return _npy_out(value, content_type)


__all__ = [
    "ANY",
    "CSV",
    "JSON",
    "NPY",
    "NPZ",
    "TOOLKIT_ENCODINGS",
    "UTF8_TYPES",
    "UnsupportedFormatError",
    "containers_decode",
    "containers_encode",
    "default_accept",
    "parse_accept",
    "toolkit_decode",
    "toolkit_encode",
    "toolkit_output",
]
