"""Old module paths of catkit, kept working after the modules moved (deprecated aliases).

``import catkit.simulate`` (and ``from catkit.simulate import X``) still works and returns the very
module now at ``catkit.whatif.simulate``, with a :class:`DeprecationWarning` naming the new path.
Nothing is copied: the old name and the new one are the same module object, so ``isinstance``
checks and monkeypatching keep working. :func:`install` puts the finder on ``sys.meta_path``;
``catkit/__init__.py`` calls it once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: old dotted path -> new dotted path
MOVED: dict[str, str] = {
    "catkit.load": "catkit.whatif.load",
    "catkit.load_cli": "catkit.whatif.cli",
    "catkit.calibrate": "catkit.whatif.calibrate",
    "catkit.simulate": "catkit.whatif.simulate",
    "catkit.recommend": "catkit.whatif.recommend",
    "catkit.plots": "catkit.notebook.plots",
    "catkit.widgets": "catkit.notebook.widgets",
    "catkit.notebook_runner": "catkit.notebook.runner",
    "catkit.demo": "catkit.notebook.demo",
    "catkit.autoscaling.memory_metrics": "catkit.autoscaling.metrics_store",
    "catkit.local.metrics_store": "catkit.autoscaling.metrics_store",
    "catkit.local.endpoints": "catkit.local.fleet.endpoints",
    "catkit.local.instances": "catkit.local.fleet.instances",
    "catkit.local.multimodel": "catkit.local.fleet.multimodel",
    "catkit.local.model_cache": "catkit.local.fleet.model_cache",
    "catkit.local.router": "catkit.local.fleet.router",
    "catkit.local.autoscaling_controller": "catkit.local.fleet.scaling_port",
    "catkit.local.s3": "catkit.local.storage.s3",
    "catkit.local.state": "catkit.local.storage.state",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new}; import it from there (the old path is deprecated "
            "and will be removed in catkit 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module is the new one, already executed: nothing to run. The import system has
        # just set ``__spec__`` to the alias's spec; give the module its own back.
        module.__spec__ = self._spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
