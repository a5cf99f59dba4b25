"""botocore service models for the codecs, loaded once per process and shared.

Loading a model costs tens of milliseconds (SageMaker's is large), so each is loaded on
first use and kept; ``OperationModel``/``Shape`` objects are then stable and the codecs key
their per-shape caches on them.
"""

from __future__ import annotations

import threading

import botocore.session
from botocore.model import OperationModel, ServiceModel

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_models: dict[str, ServiceModel] = {}


def _get_session() -> botocore.session.Session:
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def service_model(service_name: str) -> ServiceModel:
    """botocore's model for ``service_name`` (e.g. ``sagemaker``), cached."""
    model = _models.get(service_name)
    if model is not None:
        return model
    with _lock:
        model = _models.get(service_name)
        if model is None:
            model = _get_session().get_service_model(service_name)
            _models[service_name] = model
    return model


def operation_model(model: ServiceModel, name: str) -> OperationModel | None:
    """The operation called ``name``, or None when the service has no such operation."""
    if name not in _operation_names(model):
        return None
    return model.operation_model(name)


_op_names: dict[int, tuple[ServiceModel, frozenset[str]]] = {}


def _operation_names(model: ServiceModel) -> frozenset[str]:
    entry = _op_names.get(id(model))
    if entry is None or entry[0] is not model:
        entry = (model, frozenset(model.operation_names))
        _op_names[id(model)] = entry
    return entry[1]
