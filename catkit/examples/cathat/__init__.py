"""The cat-hat example: synthetic cat images with/without a tiny hat, a small scikit-learn
classifier, its SageMaker handler (``inference.py``) and model archives.

Public entry points (imported lazily, so ``import catkit.examples.cathat`` stays cheap):
``make_image``, ``make_dataset`` (data), ``train``, ``TrainResult`` (train),
``build_cathat_archive``, ``build_cathat_archives``, ``archive_name`` (package).
"""

from __future__ import annotations

from catkit._lazy import by_module, lazy_exports

_EXPORTS = by_module(
    {
        f"{__name__}.data": ("make_image", "make_dataset", "CLASSES"),
        f"{__name__}.train": ("train", "TrainResult"),
        f"{__name__}.package": ("build_cathat_archive", "build_cathat_archives", "archive_name"),
    }
)
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
