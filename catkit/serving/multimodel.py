"""The multi-model registry: load, list, describe and unload named models in one server process.

Implements the state behind SageMaker's multi-model container API (``POST/GET/DELETE /models``).
Loads are serialised (one at a time), which makes concurrent loads of the same name load once
(the others get 409) and keeps the memory measurement clean: a model's ``memory_bytes`` is the
process RSS growth across its load (psutil), never less than its size on disk. A load that would
take the sum of loaded models over ``memory_budget_bytes`` is refused with 507, as a SageMaker
container does when it is out of memory.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from catkit.serving.errors import (
    BadRequest,
    InsufficientMemory,
    ModelAlreadyLoaded,
    ModelNotFound,
)
from catkit.serving.handler import ModelHandler, dir_size_bytes
from catkit.serving.workers import run_in_daemon_thread

log = logging.getLogger("catkit.serving.multimodel")

# Opaque ids as SageMaker sends them (a TargetModel such as "v1/model.tar.gz" works too; in URLs a
# '/' is sent as %2F). Control characters are refused; names never touch the file system.
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,1024}$")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass
class LoadedModel:
    name: str
    url: str
    handler: ModelHandler
    memory_bytes: int
    disk_bytes: int
    loaded_at: float
    load_seconds: float
    last_used_at: float | None = None
    invocations: int = 0

    def touch(self) -> None:
        """Record one invocation (for LRU eviction decisions by the caller)."""
        self.last_used_at = time.time()
        self.invocations += 1

    def describe(self) -> dict[str, Any]:
        return {
            "modelName": self.name,
            "modelUrl": self.url,
            "memoryBytes": self.memory_bytes,
            "diskBytes": self.disk_bytes,
            "loadedAt": self.loaded_at,
            "loadSeconds": round(self.load_seconds, 6),
            "lastUsedAt": self.last_used_at,
            "invocationCount": self.invocations,
        }


def validate_model_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BadRequest(
            f"Invalid model_name {name!r}: use 1-1024 characters without control characters "
            "(e.g. the TargetModel or an opaque id derived from it)."
        )
    return name


def _rss() -> int:
    return psutil.Process().memory_info().rss


class ModelRegistry:
    """Named models loaded in this process, with an optional memory budget (bytes)."""

    def __init__(self, memory_budget_bytes: int | None = None, models_root: str | Path | None = None,
                 profile: Callable[[], Any] | None = None) -> None:
        """``profile`` makes the serving profile of each loaded model (an emulated AWS container,
        :func:`catkit.serving.frameworks.profile_for`); None = catkit's defaults."""
        self.memory_budget_bytes = memory_budget_bytes
        self.make_profile = profile
        self.models_root = Path(models_root).resolve() if models_root is not None else None
        self._models: dict[str, LoadedModel] = {}
        self._load_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._models)

    @property
    def used_bytes(self) -> int:
        return sum(m.memory_bytes for m in self._models.values())

    def get(self, name: str) -> LoadedModel:
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(f"Model {name!r} is not loaded; load it with POST /models first.")
        return model

    def _check_budget(self, name: str, need: int, what: str) -> None:
        budget = self.memory_budget_bytes
        if budget is None:
            return
        used = self.used_bytes
        if used + need > budget:
            raise InsufficientMemory(
                f"Cannot load model {name!r}: its {what} of {need / 2**20:.1f} MiB plus the "
                f"{used / 2**20:.1f} MiB used by {len(self._models)} loaded model(s) exceeds the "
                f"memory budget of {budget / 2**20:.1f} MiB. Unload a model (DELETE /models/NAME) first."
            )

    async def load(self, name: str, url: str) -> LoadedModel:
        """Load the unpacked model at ``url`` (a local directory) under ``name``."""
        name = validate_model_name(name)
        if not isinstance(url, str) or not url:
            raise BadRequest("POST /models needs \"url\": the local directory of the unpacked model.")
        path = Path(url).expanduser()
        if not path.is_dir():
            raise BadRequest(f"Model url {url!r} is not a directory; pass the unpacked model directory.")
        if self.models_root is not None and not path.resolve().is_relative_to(self.models_root):
            raise BadRequest(
                f"Model url {url!r} is outside the models root {str(self.models_root)!r}; this server "
                "only loads models unpacked under --models-root."
            )
        if name in self._models:
            raise ModelAlreadyLoaded(f"Model {name!r} is already loaded.")
        async with self._load_lock:
            if name in self._models:
                raise ModelAlreadyLoaded(f"Model {name!r} is already loaded.")
            disk = await run_in_daemon_thread(dir_size_bytes, path)
            self._check_budget(name, disk, "size on disk")
            started = time.perf_counter()
            before = _rss()
            handler = await run_in_daemon_thread(
                lambda: ModelHandler.load(path, keep_code_on_path=False, model_name=name,
                                          profile=self.make_profile() if self.make_profile else None))
            grown = max(0, _rss() - before)
            memory = max(grown, disk)
            try:
                self._check_budget(name, memory, "measured memory")
            except InsufficientMemory:
                del handler
                gc.collect()
                raise
            model = LoadedModel(name, url, handler, memory, disk, time.time(), time.perf_counter() - started)
            self._models[name] = model
        log.info("loaded model %r from %s (%.1f MiB, %.3f s)", name, url, memory / 2**20, model.load_seconds)
        return model

    def unload(self, name: str) -> LoadedModel:
        model = self._models.pop(name, None)
        if model is None:
            raise ModelNotFound(f"Model {name!r} is not loaded.")
        log.info("unloaded model %r", name)
        gc.collect()
        return model

    def page(self, limit: Any = None, token: str | None = None) -> dict[str, Any]:
        """One page of ``{"models": [...], "nextPageToken"?}`` sorted by name."""
        try:
            size = DEFAULT_PAGE_SIZE if limit in (None, "") else int(limit)
        except (TypeError, ValueError):
            raise BadRequest(f"limit must be an integer 1-{MAX_PAGE_SIZE}, got {limit!r}.") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise BadRequest(f"limit must be an integer 1-{MAX_PAGE_SIZE}, got {size}.")
        after = _decode_token(token) if token else None
        names = sorted(self._models)
        if after is not None:
            names = [n for n in names if n > after]
        chosen = names[:size]
        page: dict[str, Any] = {
            "models": [{"modelName": n, "modelUrl": self._models[n].url} for n in chosen]
        }
        if len(names) > size:
            page["nextPageToken"] = _encode_token(chosen[-1])
        return page

    def close(self) -> None:
        self._models.clear()


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        name = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        name = ""
    if not name:
        raise BadRequest(f"Invalid next_page_token {token!r}; pass the nextPageToken of a previous page.")
    return name
