"""The per-instance model table of a multi-model endpoint: what is on disk, what is loaded, LRU.

Pure bookkeeping (no I/O): :class:`InstanceModels` holds one :class:`CachedModel` per
``TargetModel`` an instance has downloaded, with its state, sizes, in-flight count and a
least-recently-used stamp, and answers the eviction questions - which loaded models to unload to
free memory, which downloaded models to delete to free disk. The I/O that acts on the answers lives
in :mod:`catkit.local.fleet.multimodel`.

Eviction rules (AWS, ``how-multi-mode-endpoints-work``): when memory is needed, *unused* models are
unloaded, least recently used first; they stay on the storage volume and reload without a
download. When the volume is full, unused models are deleted from it, least recently used first.
A model is unused when no request is in flight on it and it is not being loaded or unloaded.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path


class ModelState(enum.StrEnum):
    NEW = "New"  # table entry only; nothing on disk yet
    DOWNLOADING = "Downloading"
    ON_DISK = "OnDisk"  # unpacked on the instance's volume, not in the container's memory
    LOADING = "Loading"
    LOADED = "Loaded"
    UNLOADING = "Unloading"


_STAMP = itertools.count(1)


def opaque_model_id(target_model: str) -> str:
    """The container-side ``model_name``: an opaque id (as on AWS), URL- and path-safe."""
    return "m-" + hashlib.sha256(target_model.encode("utf-8")).hexdigest()[:32]


@dataclass(eq=False)
class CachedModel:
    """One TargetModel on one instance."""

    target: str
    model_id: str
    path: Path  # the unpacked model directory (models_root/<model_id>/model)
    state: ModelState = ModelState.NEW
    disk_bytes: int = 0
    memory_bytes: int = 0
    etag: str | None = None
    inflight: int = 0
    last_used: int = 0  # LRU stamp (monotonic counter)
    task: asyncio.Future[CachedModel] | None = field(default=None, repr=False)  # download/load in progress

    @property
    def loaded(self) -> bool:
        return self.state is ModelState.LOADED

    @property
    def on_disk(self) -> bool:
        return self.state in (ModelState.ON_DISK, ModelState.LOADING, ModelState.LOADED, ModelState.UNLOADING)

    @property
    def busy(self) -> bool:
        """In use: requests in flight, a download/load/unload running, or a load wanted."""
        if self.inflight > 0 or self.state in (ModelState.DOWNLOADING, ModelState.LOADING, ModelState.UNLOADING):
            return True
        return self.task is not None and not self.task.done()

    def touch(self) -> None:
        self.last_used = next(_STAMP)


class InstanceModels:
    """The models of one instance, with its memory and disk budgets (bytes)."""

    def __init__(self, models_root: Path, memory_budget: int, disk_budget: int) -> None:
        self.models_root = Path(models_root)
        self.memory_budget = int(memory_budget)
        self.disk_budget = int(disk_budget)
        self.entries: dict[str, CachedModel] = {}
        self.lock = asyncio.Lock()  # serialises make-room + load on this instance

    def get(self, target: str) -> CachedModel | None:
        return self.entries.get(target)

    def entry(self, target: str) -> CachedModel:
        """The entry for ``target``, created (state NEW) if absent."""
        e = self.entries.get(target)
        if e is None:
            mid = opaque_model_id(target)
            e = CachedModel(target, mid, self.models_root / mid / "model")
            self.entries[target] = e
        return e

    def forget(self, target: str) -> None:
        self.entries.pop(target, None)

    @property
    def loaded_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.loaded)

    @property
    def memory_used(self) -> int:
        return sum(e.memory_bytes for e in self.entries.values() if e.state in (ModelState.LOADED, ModelState.UNLOADING))

    @property
    def disk_used(self) -> int:
        return sum(e.disk_bytes for e in self.entries.values() if e.on_disk)

    def unload_victims(self, need: int, exclude: CachedModel | None = None) -> list[CachedModel]:
        """Unused loaded models to unload, least recently used first, so that ``need`` more bytes
        fit in the memory budget. May free less than asked when too few models are unused."""
        over = self.memory_used + need - self.memory_budget
        victims: list[CachedModel] = []
        if over <= 0:
            return victims
        for e in sorted(self.entries.values(), key=lambda m: m.last_used):
            if e is exclude or not e.loaded or e.busy:
                continue
            victims.append(e)
            over -= e.memory_bytes
            if over <= 0:
                break
        return victims

    def lru_unused_loaded(self, exclude: CachedModel | None = None) -> CachedModel | None:
        """The least recently used unused loaded model (for a container's 507), or None."""
        for e in sorted(self.entries.values(), key=lambda m: m.last_used):
            if e is not exclude and e.loaded and not e.busy:
                return e
        return None

    def disk_victims(self, need: int = 0, exclude: CachedModel | None = None) -> list[CachedModel]:
        """Unused downloaded models to delete from the volume, LRU first, so that ``need`` more
        bytes fit the disk budget: models only on disk go first, then unused loaded ones (they
        are unloaded before their files go)."""
        over = self.disk_used + need - self.disk_budget
        victims: list[CachedModel] = []
        if over <= 0:
            return victims
        ordered = sorted(self.entries.values(), key=lambda m: (m.loaded, m.last_used))
        for e in ordered:
            if e is exclude or e.busy or e.state not in (ModelState.ON_DISK, ModelState.LOADED):
                continue
            victims.append(e)
            over -= e.disk_bytes
            if over <= 0:
                break
        return victims
