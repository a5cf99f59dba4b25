"""The cat-hat example: synthetic cat images with/without a tiny hat, a small scikit-learn
classifier, its SageMaker handler (``inference.py``) and model archives.

Public entry points (imported lazily, so ``import catkit.examples.cathat`` stays cheap):
``make_image``, ``make_dataset`` (data), ``train``, ``TrainResult`` (train),
``build_cathat_archive``, ``build_cathat_archives``, ``archive_name`` (package).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "make_image": "data",
    "make_dataset": "data",
    "CLASSES": "data",
    "train": "train",
    "TrainResult": "train",
    "build_cathat_archive": "package",
    "build_cathat_archives": "package",
    "archive_name": "package",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
