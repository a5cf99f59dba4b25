"""TensorFlow Serving's REST predict API over the SavedModels of an archive (TFS container emulation).

What ``tensorflow_model_server`` does behind the SageMaker TensorFlow Serving container's nginx,
run in process with ``tf.saved_model.load`` instead of a TFS binary:

- **Which models** (aws/sagemaker-tensorflow-serving-container ``docker/build_artifacts/sagemaker/
  tfs_utils.py`` ``find_models``/``find_model_versions``, ``serve.py`` ``_create_tfs_config``): every
  ``saved_model.pb`` whose parent directory is a number (the version) makes the directory above it a
  model named after it (``model`` when the versions sit at the archive root); none at all fails
  the container with ``no SavedModel bundles found!``. The default model is the first one found, or
  ``SAGEMAKER_TFS_DEFAULT_MODEL_NAME``; a request without a version gets the highest one.
- **The predict call** (tensorflow/serving ``tensorflow_serving/g3doc/api_rest.md``, "Predict API"):
  ``{"signature_name": ..., "instances": [...]}`` (row format: one entry per example; an entry is
  the value of the only input or an object of named inputs) answers ``{"predictions": [...]}``
  (one value per example for a single output, else one object per example); ``{"inputs": ...}``
  (columnar) answers ``{"outputs": ...}``. ``{"b64": "..."}`` is a binary string. JSON numbers
  take the signature's input dtype. Every failure is ``{"error": "..."}`` with a 4xx status.

:class:`TfsModels` serves it to the container profile (:mod:`catkit.serving.hub_profiles`) directly
and, for a ``code/inference.py`` whose handlers post to TFS themselves, over loopback HTTP
(:meth:`TfsModels.rest_port`), as ``python_service.py`` does with ``requests``.

Not emulated (refused with a message saying so): the ``classify``/``regress`` methods, gRPC, batching.
Whitespace in answers differs (TFS pretty-prints; the container's nginx strips newlines when the
Accept is JSON), the JSON values do not; float32 outputs are printed at float32 precision as TFS does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL_ENV = "SAGEMAKER_TFS_DEFAULT_MODEL_NAME"


class TfsError(Exception):
    """A TFS REST error: ``status`` and the ``{"error": message}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> str:
        return json.dumps({"error": self.message})


def find_models(model_dir: str | Path) -> dict[str, dict[int, Path]]:
    """Model name -> {version: SavedModel directory} (``tfs_utils.find_models``: a ``saved_model.pb``
    in a numeric directory; the model is the directory above, ``model`` at the archive root)."""
    root = Path(model_dir)
    models: dict[str, dict[int, Path]] = {}
    for pb in sorted(root.rglob("saved_model.pb")):
        version_dir = pb.parent
        if not re.fullmatch(r"\d+", version_dir.name) or version_dir == root:
            continue
        model_path = version_dir.parent
        name = "model" if model_path == root else model_path.name
        models.setdefault(name, {})[int(version_dir.name)] = version_dir
    return models


def _float32_text(values: np.ndarray) -> Any:
    # TFS prints float32 at float32 precision (0.1, not 0.10000000149011612).
    flat = [float(str(v)) for v in values.reshape(-1)]
    return np.array(flat, dtype=object).reshape(values.shape).tolist() if values.ndim else flat[0]


def _to_json(value: Any) -> Any:
    array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    if array.dtype in (np.float32, np.float16):
        return _float32_text(array)
    if array.dtype.kind in ("S", "O"):
        decode = np.vectorize(lambda b: b.decode("utf-8", "replace") if isinstance(b, bytes) else b, otypes=[object])
        return decode(array).tolist() if array.size else array.tolist()
    return array.tolist()


def _from_json(value: Any, spec: Any, name: str) -> Any:
    import tensorflow as tf

    def unwrap(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            raise TfsError(400, f"Input {name}: an object is only allowed as {{\"b64\": ...}}")
        if isinstance(v, list):
            return [unwrap(x) for x in v]
        return v

    try:
        return tf.constant(unwrap(value), dtype=spec.dtype)
    except TfsError:
        raise
    except Exception as exc:  # type/shape mismatch: TFS answers 400 (INVALID_ARGUMENT)
        raise TfsError(400, f"Input {name}: {exc}") from exc


class _Loaded:
    """One SavedModel version: its signatures and their input names."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self.path = path
        self.module = tf.saved_model.load(str(path))
        self.signatures = dict(self.module.signatures)

    def signature(self, name: str | None) -> Any:
        key = name or "serving_default"
        if key not in self.signatures:
            raise TfsError(400, f'Serving signature name: "{key}" not found in signature def')
        return self.signatures[key]


class TfsModels:
    """The models TFS would serve from one unpacked archive, answering REST predict requests."""

    def __init__(self, model_dir: str | Path, env: dict[str, str] | None = None) -> None:
        found = find_models(model_dir)
        if not found:
            # serve.py _create_tfs_config: raise ValueError("no SavedModel bundles found!")
            raise ValueError(
                "no SavedModel bundles found! (TensorFlow Serving expects model.tar.gz/<model name>/<version>/"
                f"saved_model.pb, the version a number; nothing like it under {model_dir})"
            )
        self.models = {name: {v: _Loaded(p) for v, p in versions.items()} for name, versions in found.items()}
        environ = env if env is not None else os.environ
        default = environ.get(DEFAULT_MODEL_ENV, "None")
        self.default_name = default if default != "None" else next(iter(found))
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- the predict API ------------------------------------------------------------------
    def _version(self, name: str | None, version: str | None) -> _Loaded:
        name = name or self.default_name
        versions = self.models.get(name)
        if not versions:
            raise TfsError(404, f"Servable not found for request: Latest({name})")
        if version is None:
            return versions[max(versions)]
        if not version.isdigit() or int(version) not in versions:
            raise TfsError(404, f"Servable not found for request: Specific({name}, {version})")
        return versions[int(version)]

    def predict(self, body: str | bytes, name: str | None = None, version: str | None = None,
                method: str = "predict") -> dict[str, Any]:
        """The JSON answer of ``POST /v1/models/<name>[/versions/<version>]:<method>``; raises
        :class:`TfsError`."""
        if method != "predict":
            raise TfsError(400, f"tfs-method={method}: the local TensorFlow Serving emulation runs the predict "
                                "method only (classify/regress need tensorflow_model_server).")
        loaded = self._version(name, version)
        try:
            doc = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise TfsError(400, f"JSON Parse error: {exc}") from exc
        if not isinstance(doc, dict):
            raise TfsError(400, "JSON Value is not an object: the request must be {\"instances\": ...} "
                                "or {\"inputs\": ...}")
        signature = loaded.signature(doc.get("signature_name"))
        specs = signature.structured_input_signature[1]
        names = sorted(specs)
        if "instances" in doc and "inputs" in doc:
            raise TfsError(400, "Not both 'instances' and 'inputs' can be specified in the request.")
        if "instances" in doc:
            kwargs = self._rows(doc["instances"], names, specs)
        elif "inputs" in doc:
            kwargs = self._columns(doc["inputs"], names, specs)
        else:
            raise TfsError(400, "Missing 'inputs' or 'instances' key")
        try:
            outputs = signature(**kwargs)
        except Exception as exc:  # shape or value errors inside the graph: INVALID_ARGUMENT
            raise TfsError(400, f"{type(exc).__name__}: {exc}") from exc
        values = {k: _to_json(v) for k, v in sorted(outputs.items())}
        if "inputs" in doc:
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        if len(values) == 1:
            return {"predictions": next(iter(values.values()))}
        count = len(next(iter(values.values())))
        return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(count)]}

    @staticmethod
    def _rows(instances: Any, names: list[str], specs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(instances, list):
            raise TfsError(400, "Expecting 'instances' to be an list/array")
        if len(names) == 1 and not (instances and isinstance(instances[0], dict) and set(instances[0]) != {"b64"}):
            return {names[0]: _from_json(instances, specs[names[0]], names[0])}
        columns: dict[str, list[Any]] = {n: [] for n in names}
        for row in instances:
            if not isinstance(row, dict) or set(row) != set(names):
                raise TfsError(400, f"Expecting object with named inputs {names} in each of 'instances', got {row!r}")
            for n in names:
                columns[n].append(row[n])
        return {n: _from_json(columns[n], specs[n], n) for n in names}

    @staticmethod
    def _columns(inputs: Any, names: list[str], specs: dict[str, Any]) -> dict[str, Any]:
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            if set(inputs) != set(names):
                raise TfsError(400, f"'inputs' must name the signature's inputs {names}, got {sorted(inputs)}")
            return {n: _from_json(inputs[n], specs[n], n) for n in names}
        if len(names) != 1:
            raise TfsError(400, f"The signature has several inputs {names}: 'inputs' must be an object naming them")
        return {names[0]: _from_json(inputs, specs[names[0]], names[0])}

    def status(self, name: str) -> dict[str, Any]:
        """``GET /v1/models/<name>`` (GetModelStatusResponse)."""
        versions = self.models.get(name)
        if not versions:
            raise TfsError(404, f"Could not find any versions of model {name}")
        return {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for v in sorted(versions, reverse=True)]}

    # -- loopback REST server (python_service.py posts to it with requests) -------------
    def rest_port(self) -> int:
        """Start (once) a REST server on 127.0.0.1 answering ``/v1/models/...`` like TFS's
        ``--rest_api_port``; returns its port."""
        with self._lock:
            if self._server is None:
                self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
                self._server.daemon_threads = True
                threading.Thread(target=self._server.serve_forever, name="tfs-rest", daemon=True).start()
            return self._server.server_address[1]

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None


_URI = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(?::([a-z]+))?$")


def _handler_class(models: TfsModels) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            m = _URI.match(self.path)
            try:
                if not m or m.group(3):
                    raise TfsError(404, "Not Found")
                self._answer(200, models.status(m.group(1)))
            except TfsError as exc:
                self._answer(exc.status, {"error": exc.message})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            m = _URI.match(self.path)
            try:
                if not m or not m.group(3):
                    raise TfsError(404, "Not Found")
                self._answer(200, models.predict(body, m.group(1), m.group(2), m.group(3)))
            except TfsError as exc:
                self._answer(exc.status, {"error": exc.message})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


__all__ = ["DEFAULT_MODEL_ENV", "TfsError", "TfsModels", "find_models"]
