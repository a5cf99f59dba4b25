"""Snapshots of a :class:`catkit.autoscaling.metrics_store.MetricStore` as bytes, and back.

A pickle of the store's retention tiers, newest timestamp and series, read back by an unpickler
that accepts the store's own classes and nothing else (a file on disk must never run code).
:meth:`MetricStore.dumps` / :meth:`MetricStore.loads` are the public entry points.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["DUMP_FORMAT", "dump", "load"]

DUMP_FORMAT = "catkit-metrics-1"


class _DumpReader(pickle.Unpickler):
    """Unpickles a metric store dump and nothing else: only the store's own classes."""

    _ALLOWED = frozenset({
        ("builtins", "frozenset"), ("builtins", "set"), ("array", "array"), ("array", "_array_reconstructor"),
        ("catkit.autoscaling.metrics_store", "_Bucket"), ("catkit.autoscaling.metrics_store", "_Series"),
        ("catkit.autoscaling.metric_statistics", "Distribution"), ("catkit.autoscaling.metric_statistics", "_Bins"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a metric store dump")
        return super().find_class(module, name)


def dump(retention: tuple[Any, ...], latest: float, series: dict[Any, Any]) -> bytes:
    """The bytes of one snapshot."""
    return pickle.dumps((DUMP_FORMAT, retention, latest, series), protocol=5)


def load(data: bytes, retention: tuple[Any, ...]) -> tuple[float, dict[Any, Any]]:
    """``(latest, series)`` of a snapshot made with the same ``retention``; ValueError otherwise."""
    try:
        fmt, saved_retention, latest, series = _DumpReader(io.BytesIO(data)).load()
    except Exception as exc:
        raise ValueError(f"not a metric store dump: {exc}") from exc
    if fmt != DUMP_FORMAT or tuple(saved_retention) != retention or not isinstance(series, dict):
        raise ValueError("the metric store dump has another format or other retention tiers")
    return float(latest), series
