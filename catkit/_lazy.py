"""Lazy package exports: the module-level ``__getattr__`` that imports a public name on first use.

Packages whose public names live in submodules (``catkit``, ``catkit.serving``,
``catkit.examples.cathat``) list them as ``{name: module}`` (or ``{module: names}`` through
:func:`by_module`) and get their ``__getattr__`` here, so
importing the package stays cheap and imports no submodule twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def by_module(modules: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``{module: names}`` -> ``{name: module}`` (the form :func:`lazy_exports` takes)."""
    return {name: module for module, names in modules.items() for name in names}


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``package``: ``exports[name]`` is the dotted module holding ``name``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__
