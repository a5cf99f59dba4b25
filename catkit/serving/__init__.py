"""The SageMaker-contract model server (one process per endpoint instance) and handler loading.

``python -m catkit.serving.server MODEL --port P`` / ``catkit serve``; see :mod:`.server`,
:mod:`.handler` (``code/inference.py`` contract), :mod:`.multimodel` (MME API), :mod:`.codecs`.
Names are imported lazily so ``python -m catkit.serving.server`` does not import itself twice.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "InvocationContext": "catkit.serving.handler",
    "InvocationResult": "catkit.serving.handler",
    "ModelHandler": "catkit.serving.handler",
    "ModelServer": "catkit.serving.server",
    "ServerConfig": "catkit.serving.server",
    "check_loopback": "catkit.serving.server",
    "serve": "catkit.serving.server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'catkit.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
