"""The SageMaker-contract model server (one process per endpoint instance) and handler loading.

``python -m catkit.serving.server MODEL --port P`` / ``catkit serve``; see :mod:`.server`,
:mod:`.handler` (``code/inference.py`` contract), :mod:`.multimodel` (MME API), :mod:`.codecs`.
Names are imported lazily so ``python -m catkit.serving.server`` does not import itself twice.
"""

from __future__ import annotations

from catkit._lazy import by_module, lazy_exports

_EXPORTS = by_module(
    {
        "catkit.serving.handler": ("InvocationContext", "InvocationResult", "ModelHandler"),
        "catkit.serving.server": ("ModelServer", "ServerConfig", "check_loopback", "serve"),
    }
)
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
