"""Multi-model rules that need no running fleet: budgets, server settings, TargetModel checks.

What a multi-model instance is given (memory and disk budgets for models, its models root, the
model server's extra arguments and environment) and the checks on what a request names (a
TargetModel path relative to the variant's S3 prefix, the prefix itself). Used by
:mod:`catkit.local.fleet.instances` (to start a multi-model server) and
:mod:`catkit.local.fleet.multimodel` (placement, loading, eviction); pure apart from creating the
models root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from catkit.instance_types import get_instance_type
from catkit.local.errors import AwsError
from catkit.local.fleet.hardware import emulated
from catkit.s3_urls import parse_s3_url

MODE = "MultiModel"
ENV_MEMORY_BUDGET = "CATKIT_MME_MEMORY_BUDGET_MB"
ENV_DISK_BUDGET = "CATKIT_MME_DISK_BUDGET_MB"
MODEL_MEMORY_FRACTION = 0.9  # of the instance's memory, by default, for loaded models


# ---------------------------------------------------------------------------------------- budgets
def _positive(var: str, raw: str, kind: str, too_small: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{var} must be {kind}, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{var} must be {too_small}, got {raw!r}")
    return value


def _env_mb(var: str, environment: Mapping[str, str] | None = None) -> int | None:
    """MiB from the container's ``Environment`` (CreateModel) first, else the backend's environment."""
    raw = (environment or {}).get(var) or os.environ.get(var)
    if not raw:
        return None
    return int(_positive(var, raw, "a number of MiB", "> 0 MiB") * 2**20)


def env_number(var: str, default: float) -> float:
    """A positive number from the backend's environment variable ``var``, else ``default``."""
    raw = os.environ.get(var)
    if not raw:
        return default
    return _positive(var, raw, "a positive number", "a positive number")


def memory_budget_bytes(instance_type: str, environment: Mapping[str, str] | None = None) -> int:
    """Memory a multi-model instance may fill with models: ``CATKIT_MME_MEMORY_BUDGET_MB`` when
    set (in the model's container ``Environment`` or the backend's), else 90% of the instance's
    memory (the instance type's scaled down to this machine, capped by ``CATKIT_INSTANCE_MEMORY_MB``) - the rest is the server's own footprint, so a full model cache
    does not push the process over the instance's memory (where it would be recycled like an
    OOM-killed container)."""
    explicit = _env_mb(ENV_MEMORY_BUDGET, environment)
    if explicit:
        return explicit
    memory = emulated(instance_type).memory_bytes
    cap = _env_mb("CATKIT_INSTANCE_MEMORY_MB")
    if cap:
        memory = min(memory, cap)
    return int(memory * MODEL_MEMORY_FRACTION)


def disk_budget_bytes(instance_type: str, environment: Mapping[str, str] | None = None) -> int:
    """Volume space for downloaded models: the instance type's ``disk_gib``, or
    ``CATKIT_MME_DISK_BUDGET_MB`` when set (container ``Environment`` first, then the backend's).

    The container-environment form lets a notebook emulate a small instance without restarting
    the backend; AWS ignores the variable (the container just sees one more env var)."""
    return _env_mb(ENV_DISK_BUDGET, environment) or get_instance_type(instance_type).disk_gib * 1024**3


def models_root(instance_dir: Path) -> Path:
    """Where an instance keeps its unpacked models (the server's ``--models-root``)."""
    return Path(instance_dir) / "models"


def server_arguments(
    instance_type: str, instance_dir: Path, environment: Mapping[str, str] | None = None
) -> list[str]:
    """Extra model-server arguments for a multi-model instance (creates the models root)."""
    root = models_root(instance_dir)
    root.mkdir(parents=True, exist_ok=True)
    budget_mb = memory_budget_bytes(instance_type, environment) / 2**20
    return ["--models-root", str(root), "--memory-budget-mb", f"{budget_mb:.6f}"]


def server_environment() -> dict[str, str]:
    """Extra environment for a multi-model server process.

    ``MALLOC_MMAP_THRESHOLD_``: glibc otherwise raises its mmap threshold after a large block is
    freed, so the next model's arrays land in reused heap pages and the server's per-model memory
    measurement (RSS growth across a load) reads ~0 after the first unload. A fixed 128 KiB
    threshold keeps large allocations in their own mappings: measured sizes stay right and an
    unloaded model's memory goes back to the OS, as it does in a real container.
    """
    return {"MALLOC_MMAP_THRESHOLD_": "131072"}


# ---------------------------------------------------------------------------------------- checks
def check_target_model(target: str) -> str:
    """``target`` if it is a relative path under the prefix; ValidationError otherwise."""
    parts = target.replace("\\", "/").split("/")
    problem = None
    if target.startswith("/") or target.startswith("\\"):
        problem = "it is an absolute path"
    elif ".." in parts or "." in parts:
        problem = "it contains a '.' or '..' path segment"
    elif "\\" in target:
        problem = "it contains a backslash"
    elif any(ord(c) < 32 or ord(c) == 127 for c in target):
        problem = "it contains control characters"
    if problem:
        raise AwsError(
            "ValidationError",
            f"TargetModel {target!r} is not valid: {problem}. Pass the model's path relative to the "
            "endpoint's ModelDataUrl prefix, e.g. 'cat-v1.tar.gz' or 'group/cat-v1.tar.gz'.",
        )
    return target


def split_prefix(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` (or an https S3 URL, :mod:`catkit.s3_urls`) -> (bucket, "prefix/");
    a prefix without a trailing '/' gets one."""
    try:
        bucket, key = parse_s3_url(url)
    except ValueError:
        raise ValueError(f"ModelDataUrl must be an S3 prefix like s3://bucket/models/, got {url!r}") from None
    if key and not key.endswith("/"):
        key += "/"
    return bucket, key


__all__ = [
    "ENV_DISK_BUDGET",
    "ENV_MEMORY_BUDGET",
    "MODE",
    "MODEL_MEMORY_FRACTION",
    "check_target_model",
    "disk_budget_bytes",
    "env_number",
    "memory_budget_bytes",
    "models_root",
    "server_arguments",
    "server_environment",
    "split_prefix",
]
