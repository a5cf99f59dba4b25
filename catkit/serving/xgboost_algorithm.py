"""The XGBoost built-in algorithm's serving (the sagemaker-xgboost image with no ``SAGEMAKER_PROGRAM``).

Follows aws/sagemaker-xgboost-container ``src/sagemaker_xgboost_container/algorithm_mode/serve.py``
and ``serve_utils.py``:

- the model is every regular, non-dot file at the archive root (``xgboost-model`` from a training
  job), each read with pickle, else ``xgb.Booster().load_model``; several files are an ensemble
  when ``SAGEMAKER_INFERENCE_ENSEMBLE`` is not ``false`` (mean, or the mode for ``multi:softmax`` /
  ``binary:hinge``); a file neither can read fails the load with both errors;
- requests: ``text/csv`` (``label_size`` 1 at most), ``text/libsvm`` / ``text/x-libsvm``, no
  Content-Type = libsvm; anything else 415 with the container's message; an empty body 204; a
  prediction that fails 400 "Unable to evaluate payload provided: ...";
- Accept: missing or ``*/*`` -> ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, default ``text/csv``;
  ``application/json`` -> ``{"predictions": [{"score": p}, ...]}``; ``text/csv`` -> one value per
  line; other types 406.

Not emulated: RecordIO-protobuf and Parquet requests (415 saying so), ``SAGEMAKER_INFERENCE_OUTPUT``
selectable outputs, ``SAGEMAKER_BATCH``.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import numpy as np

from catkit.serving import toolkit_codecs as tc
from catkit.serving.errors import ServingError
from catkit.serving.frameworks import DEFAULT_ACCEPT_ENV, Profile, csv_to_dmatrix

SUPPORTED_ACCEPTS = ["application/json", "application/jsonlines", "application/x-recordio-protobuf", "text/csv"]
_VALID_CONTENT_TYPES = ("csv, libsvm, parquet, recordio-protobuf, text/csv, text/libsvm, text/x-libsvm, "
                        "application/x-parquet, application/x-recordio-protobuf")
_VOTE = ("multi:softmax", "binary:hinge")


def _media(header: str) -> tuple[str, dict[str, str]]:
    # cgi.parse_header
    parts = [p.strip() for p in header.split(";")]
    params = {}
    for p in parts[1:]:
        key, _, value = p.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return parts[0], params


def content_kind(header: str | None) -> str:
    """``data_utils.get_content_type``: csv | libsvm | parquet | recordio-protobuf, else ValueError."""
    if header is None:
        return "libsvm"
    media, params = _media(header.lower())
    if media in ("csv", "text/csv"):
        if params.get("label_size", "1") != "1":
            raise ValueError(f"{header} is not an accepted csv ContentType. Optional parameter label_size must be equal to 1")
        return "csv"
    if media in ("libsvm", "text/libsvm", "text/x-libsvm"):
        return "libsvm"
    if media in ("parquet", "application/x-parquet"):
        return "parquet"
    if media in ("recordio-protobuf", "application/x-recordio-protobuf"):
        return "recordio-protobuf"
    raise ValueError(f"{header} is not an accepted ContentType: {_VALID_CONTENT_TYPES}.")


def _libsvm_matrix(payload: str) -> Any:
    # serve_utils._get_sparse_matrix_from_libsvm
    from scipy.sparse import csr_matrix

    row, col, data = [], [], []
    for row_idx, line in enumerate(payload.split("\n")):
        for item in line.split(" "):
            if ":" in item:
                row.append(row_idx)
                col.append(int(item.split(":")[0]))
                data.append(item.split(":")[1])
    cols = np.array(col).astype(int)
    if len(cols) > 0 and cols.min() >= 1:
        cols = cols - 1
    return csr_matrix((np.array(data).astype(float), (np.array(row), cols)))


def load_boosters(model_dir: str, ensemble: bool) -> tuple[Any, str]:
    """``serve_utils.get_loaded_booster``: (booster or list of boosters, "pkl_format"/"xgb_format")."""
    import xgboost as xgb

    paths = []
    for name in sorted(os.listdir(model_dir)):
        path = os.path.join(model_dir, name)
        if os.path.isfile(path) and not name.startswith("."):
            paths.append(path)
    if not paths:
        raise RuntimeError(
            f"No model file in {model_dir}: the XGBoost algorithm container loads the files at the archive "
            "root (a training job writes xgboost-model)."
        )
    paths = paths if ensemble else paths[:1]
    models, formats = [], []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                booster = pickle.load(fh)
            fmt = "pkl_format"
        except Exception as exp_pkl:
            try:
                booster = xgb.Booster()
                booster.load_model(path)
                fmt = "xgb_format"
            except Exception as exp_xgb:
                raise RuntimeError(
                    f"Model {path} cannot be loaded:\nPickle load error={exp_pkl}\nXGB load model error={exp_xgb}"
                ) from None
        booster.set_param("nthread", 1)
        models.append(booster)
        formats.append(fmt)
    if ensemble and len(models) > 1:
        return models, formats[0]
    return models[0], formats[0]


class XGBoostAlgorithmProfile(Profile):
    """The built-in algorithm's serving (module docstring)."""

    family = "algorithm"

    @property
    def program(self) -> str | None:
        return None

    def defaults(self) -> dict[str, Any]:
        ensemble = self.env.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true") == "true"
        return {"model_fn": lambda model_dir: _Model(*load_boosters(model_dir, ensemble))}

    def transform(self, model: _Model, body: bytes, content_type: str | None,
                  accept: str | None, custom_attributes: str | None = None) -> tuple[bytes | str, str]:
        if len(body) == 0:
            raise ServingError("", status=204)
        kind: str | None = None
        try:
            kind = content_kind(content_type)
            if kind == "csv":
                dtest = csv_to_dmatrix(body.strip().decode("utf-8"), dtype=float)
            elif kind == "libsvm":
                import xgboost as xgb

                dtest = xgb.DMatrix(_libsvm_matrix(body.strip().decode("utf-8")))
            elif kind == "recordio-protobuf":
                raise ValueError("Content-type application/x-recordio-protobuf is not emulated by the local backend.")
            else:
                raise ValueError(f"Content-type {content_type} is not supported.")
        except Exception as e:
            if kind in ("csv", "libsvm"):
                message = (f"Loading {kind} data failed with Exception, please ensure data is in {kind} "
                           f"format:\n {type(e)}\n {e}")
            else:
                message = str(e)
            raise ServingError(message, status=415) from e
        try:
            preds = model.predict(dtest, kind)
        except Exception as e:
            raise ServingError(f"Unable to evaluate payload provided: {e}", status=400) from e
        media, _ = _media(accept or "")
        if not media or media == "*/*":
            media = self.env.get(DEFAULT_ACCEPT_ENV, "text/csv")
        elif media.lower() not in SUPPORTED_ACCEPTS:
            raise ServingError(
                f"Accept type {media} is not supported. Please use supported accept types: {SUPPORTED_ACCEPTS}.",
                status=406,
            )
        media = media.lower()
        preds_list = preds.tolist()
        if media == tc.JSON:
            return json.dumps({"predictions": [{"score": p} for p in preds_list]}), media
        try:
            return tc.containers_encode(preds_list, media), media
        except tc.UnsupportedFormatError as e:  # jsonlines / recordio: sagemaker-containers cannot encode
            raise ServingError(e.message, status=500) from e


class _Model:
    """Loaded booster(s) and their format; ``predict`` follows ``serve_utils.predict``."""

    def __init__(self, booster: Any, fmt: str) -> None:
        self.booster = booster
        self.format = fmt
        first = booster[0] if isinstance(booster, list) else booster
        self.objective = json.loads(first.save_config())["learner"]["objective"]["name"]

    def predict(self, dtest: Any, kind: str) -> Any:
        boosters = self.booster if isinstance(self.booster, list) else [self.booster]
        if self.format == "pkl_format":
            x = boosters[0].num_features()
            y = len(dtest.feature_names) if dtest.feature_names is not None else dtest.num_col()
            if kind == "libsvm" and y > x + 1:
                raise ValueError(f"Feature size of libsvm inference data {y} is larger than feature size of trained model {x}.")
            if kind == "csv" and not (x == y or x == y + 1):
                raise ValueError(f"Feature size of {kind} inference data {y} is not consistent with feature size of trained model {x}.")
        results = [_predict_one(b, dtest) for b in boosters]
        if len(results) == 1:
            return results[0]
        if self.objective in _VOTE:
            from scipy import stats

            return stats.mode(results).mode
        return np.mean(results, axis=0)


def _predict_one(booster: Any, dtest: Any) -> Any:
    best = getattr(booster, "best_iteration", 0) or 0
    try:
        best = int(best)
    except (TypeError, ValueError):
        best = 0
    if best > 0:
        return booster.predict(dtest, iteration_range=(0, best), validate_features=False)
    return booster.predict(dtest, validate_features=False)


__all__ = ["SUPPORTED_ACCEPTS", "XGBoostAlgorithmProfile", "content_kind", "load_boosters"]
