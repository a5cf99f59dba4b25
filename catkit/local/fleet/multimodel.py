"""Multi-model endpoints (MME) in the local backend: placement, download, load, eviction, metrics.

A production variant whose container has ``Mode: MultiModel`` runs its instances as empty
multi-model servers (``--multi-model``). Each InvokeEndpoint carries ``TargetModel``, a path
relative to the container's ``ModelDataUrl`` S3 prefix. :meth:`MultiModelManager.acquire` - called
by :meth:`catkit.local.fleet.endpoints.EndpointManager.invoke` - picks an instance and makes sure the
model is loaded there, then hands back a :class:`ModelLease` whose ``url`` is the container's
``POST /models/{model_name}/invoke``. ``model_name`` is an opaque id (as on AWS); the original
TargetModel travels in the ``X-Amzn-SageMaker-Target-Model`` header.

What happens, following AWS (shared/aws-facts.md §5 and ``how-multi-mode-endpoints-work``):

- Placement: requests for a model go to the instances that hold it (least outstanding first); when
  every holder has ``spread_at`` or more requests in flight and another instance is less busy, the
  request goes there and that instance loads the model too (hot models spread). Otherwise an
  instance that still has the model on its volume, else the least busy instance.
- Cold path: ``HeadObject`` + ``GetObject`` of ``prefix + TargetModel``, safe extraction
  (:func:`catkit.build.safe_extract`) into ``<instance dir>/models/<model_name>/model`` (the server
  only loads from there: ``--models-root``), then ``POST /models``. Concurrent first requests for a
  model on an instance share one download and one load. A request that waits longer than
  ``load_wait_seconds`` (real, default 60 s like AWS) gets ``ModelNotReadyException``; the load goes on
  for up to ``load_timeout_seconds`` (360 s).
- Warm path: the per-instance table (:mod:`catkit.local.fleet.model_cache`) says the model is loaded:
  no S3 call, no container call besides the invocation.
- Budgets: memory = 90% of the instance type's memory (also the server's ``--memory-budget-mb``,
  whose 507 is honoured), disk = the instance type's ``disk_gib``; ``CATKIT_MME_MEMORY_BUDGET_MB`` and
  ``CATKIT_MME_DISK_BUDGET_MB`` shrink them (tests, benchmarks, demos with small models). Unused
  models are unloaded least recently used first when memory is needed (they stay on disk and reload
  without a download); unused models are deleted from disk, LRU first, when the volume is full.
- ``MultiModelConfig.ModelCacheSetting = Disabled``: a model is unloaded and deleted after each
  invocation (once no request uses it).
- New archives under the prefix are servable at once (nothing is listed in advance). An
  overwritten archive is picked up the way AWS does it: instances that still hold the old version
  (loaded or on their volume) keep serving it; instances that download it afresh get the new one.
  AWS documents exactly this ("Don't overwrite model artifacts ... the old version of the model
  might still be loaded"), so catkit does not re-check S3 on warm requests.
- Metrics (AWS/SageMaker, EndpointName+VariantName): ModelCacheHit (1/0 per request),
  ModelLoadingWaitTime (per request that waited), ModelDownloadingTime (S3 fetch + unpack),
  ModelLoadingTime (``POST /models``), ModelUnloadingTime (``DELETE /models``); per emulated minute
  and instance (/aws/sagemaker/Endpoints): LoadedModelCount and DiskUtilization (model volume use
  against the disk budget). Durations are real microseconds, like ModelLatency.

Errors, with AWS's codes: TargetModel on a single-model endpoint and a missing TargetModel on a
multi-model one (``ValidationError``, AWS's messages), absolute or ``..`` paths
(``ValidationError``), a TargetModel absent from the prefix (``ValidationError`` "Failed to
download model data..." - message as reported by users, unconfirmed), archives that cannot be
unpacked or loaded (``ModelError`` with the container's status and message). A failed model is
dropped from the instance (disk included) so a fixed archive is picked up by the next request; the
endpoint keeps serving the other models.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import shutil
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from catkit.build import ArchiveTooLarge
from catkit.local.errors import AwsError
from catkit.local.fleet.instances import Instance, InstanceState
from catkit.local.fleet.launch_plan import too_large_hint, unpacked_cap_bytes
from catkit.local.fleet.mme_rules import (
    ENV_DISK_BUDGET,
    ENV_MEMORY_BUDGET,
    MODE,
    MODEL_MEMORY_FRACTION,
    check_target_model,
    disk_budget_bytes,
    env_number,
    memory_budget_bytes,
    models_root,
    server_arguments,
    server_environment,
    split_prefix,
)
from catkit.local.fleet.model_cache import CachedModel, InstanceModels, ModelState
from catkit.local.fleet.state import Endpoint, Variant
from catkit.names import ENDPOINT_INSTANCE_METRICS, SAGEMAKER_METRICS

log = logging.getLogger("catkit.local.fleet.multimodel")

ENV_LOAD_WAIT = "CATKIT_MME_LOAD_WAIT_SECONDS"
ENV_SPREAD_AT = "CATKIT_MME_SPREAD_AT"
MODEL_NOT_READY = (
    "Either a serverless endpoint variant's resources are still being provisioned, or a multi-model "
    "endpoint is still downloading or loading the target model. Wait and try your request again."
)


def _unpack(data: bytes, dest: Path, max_bytes: int) -> int:
    """Write the archive beside ``dest``, extract it safely into ``dest``; bytes on disk."""
    from catkit.build import safe_extract
    from catkit.serving.handler import dir_size_bytes

    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.parent / "model.tar.gz"
    archive.write_bytes(data)
    try:
        safe_extract(archive, dest, max_bytes=max_bytes, replace=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()
    return dir_size_bytes(dest)


class Fleet(Protocol):
    """What the multi-model router uses of the endpoint fleet: the public API of
    :class:`catkit.local.fleet.endpoints.EndpointManager`."""

    backend: Any  # ``s3`` for downloads, ``metrics`` (or None)
    clock: Any
    settings: Any  # InstanceSettings (``max_unpacked_mb``)

    async def wait_for_capacity(self, ep: Endpoint, variant: Variant, pinned: bool) -> tuple[Variant, Instance]: ...

    def record_invocation(self, variant: Variant, status: int, error: str | None = None,
                          model_us: float = 0.0, overhead_us: float = 0.0) -> None: ...

    def model_error(self, ep: Endpoint, status: int, payload: bytes, error: str | None = None) -> AwsError: ...

    def variant_of(self, inst: Instance) -> Variant | None: ...


# ---------------------------------------------------------------------------------------- leases
@dataclass(eq=False)
class ModelLease:
    """A routed MME request: the instance, the container URL to POST to, and the model it pins
    (a pinned model is never evicted). Call :meth:`release` exactly once when the request ends."""

    instance: Instance
    url: str
    entry: CachedModel
    manager: MultiModelManager
    cache_disabled: bool = False
    cache_hit: bool = True

    def release(self) -> None:
        e = self.entry
        e.inflight = max(0, e.inflight - 1)
        if self.cache_disabled and e.inflight == 0:
            self.manager._spawn(self.manager._discard_locked(self.instance, e))


@dataclass
class LoadRecord:
    """Timings of one cold load (real seconds), kept for benchmarks and diagnostics."""

    endpoint: str
    instance_id: str
    target: str
    download_s: float = 0.0
    unpack_s: float = 0.0
    load_s: float = 0.0
    total_s: float = 0.0


class MultiModelManager:
    """MME behaviour for every multi-model variant of one fleet (see :class:`Fleet`)."""

    def __init__(
        self,
        endpoints: Fleet,
        *,
        load_wait_seconds: float | None = None,
        load_timeout_seconds: float = 360.0,
        spread_at: int | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.backend = endpoints.backend
        self.clock = endpoints.clock
        self.load_wait_seconds = float(load_wait_seconds or env_number(ENV_LOAD_WAIT, 60.0))
        self.load_timeout_seconds = float(load_timeout_seconds)
        self.spread_at = int(spread_at or env_number(ENV_SPREAD_AT, 4))
        self.loads: collections.deque[LoadRecord] = collections.deque(maxlen=10_000)
        self._tables: weakref.WeakKeyDictionary[Instance, InstanceModels] = weakref.WeakKeyDictionary()
        self._download_slots: weakref.WeakKeyDictionary[Instance, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ tables
    def table(self, inst: Instance) -> InstanceModels:
        """The model table of ``inst`` (created on first use)."""
        t = self._tables.get(inst)
        if t is None:
            t = InstanceModels(
                models_root(inst.dir),
                memory_budget_bytes(inst.spec.instance_type, inst.spec.environment),
                disk_budget_bytes(inst.spec.instance_type, inst.spec.environment),
            )
            self._tables[inst] = t
        return t

    def loaded_models(self, inst: Instance) -> list[str]:
        """TargetModels loaded on ``inst``, least recently used first."""
        t = self._tables.get(inst)
        if t is None:
            return []
        return [e.target for e in sorted(t.entries.values(), key=lambda m: m.last_used) if e.loaded]

    # ------------------------------------------------------------------ placement
    def place(self, variant: Variant, target: str) -> Instance | None:
        """The instance that serves ``target`` next (see the module docstring); None if no
        instance of the variant is in service."""
        routable = [i for i in variant.instances if i.state is InstanceState.IN_SERVICE]
        if not routable:
            return None
        holders: list[Instance] = []
        on_disk: list[Instance] = []
        for inst in routable:
            t = self._tables.get(inst)
            e = t.entries.get(target) if t is not None else None
            if e is None:
                continue
            if e.state in (ModelState.LOADED, ModelState.LOADING, ModelState.DOWNLOADING, ModelState.NEW):
                holders.append(inst)
            elif e.on_disk:
                on_disk.append(inst)
        if holders:
            best = min(holders, key=lambda i: i.outstanding)
            if best.outstanding >= self.spread_at and len(holders) < len(routable):
                others = [i for i in routable if i not in holders]
                other = min(others, key=lambda i: (i.outstanding, self._memory_used(i)))
                if other.outstanding < best.outstanding:
                    return other
            return best
        pool = on_disk or routable
        return min(pool, key=lambda i: (i.outstanding, self._memory_used(i)))

    def _memory_used(self, inst: Instance) -> int:
        t = self._tables.get(inst)
        return t.memory_used if t is not None else 0

    # ------------------------------------------------------------------ request path
    async def acquire(self, ep: Endpoint, variant: Variant, target_model: str | None) -> ModelLease:
        """Route one request of a multi-model variant and make sure its model is loaded.

        Counts the request on the instance (``begin_request``); the caller ends it and calls
        :meth:`ModelLease.release`. Raises AwsError (ValidationError, ModelNotReadyException,
        ModelError, ServiceUnavailable) like AWS.
        """
        if variant.props.get("Mode") != MODE:
            raise AwsError(
                "ValidationError",
                f"Endpoint {ep.name} is not a multi-model endpoint and does not support target model header.",
            )
        if not target_model:
            raise AwsError("ValidationError", f"Request {uuid.uuid4()} is missing a target model header.")
        target = check_target_model(target_model)
        inst = self.place(variant, target)
        if inst is None:
            await self.endpoints.wait_for_capacity(ep, variant, True)
            inst = self.place(variant, target)
            if inst is None:
                raise AwsError("ServiceUnavailable", "The service is unavailable. Try your call again.", 503)
        table = self.table(inst)
        cache_disabled = _cache_disabled(variant)
        inst.begin_request()
        try:
            e = table.get(target)
            hit = e is not None and e.loaded
            if not hit:
                started = time.perf_counter()
                e = await self._wait_loaded(ep, variant, inst, table, target)
                self._metric(variant, "ModelLoadingWaitTime", (time.perf_counter() - started) * 1e6, "Microseconds")
            assert e is not None
            e.inflight += 1
            e.touch()
        except BaseException as exc:
            inst.end_request()
            if isinstance(exc, AwsError) and exc.code == "ModelError":
                self._record_model_failure(variant, exc)
            raise
        self._metric(variant, "ModelCacheHit", 1.0 if hit else 0.0)
        url = f"{inst.url}/models/{e.model_id}/invoke"
        return ModelLease(inst, url, e, self, cache_disabled, hit)

    async def _wait_loaded(
        self, ep: Endpoint, variant: Variant, inst: Instance, table: InstanceModels, target: str
    ) -> CachedModel:
        deadline = time.monotonic() + self.load_wait_seconds
        while True:
            e = table.get(target)
            if e is not None and e.loaded:
                return e
            if e is None or e.task is None or e.task.done():
                e = table.entry(target)
                e.task = self._spawn(self._load(ep, variant, inst, table, e))
            task = e.task
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AwsError("ModelNotReadyException", MODEL_NOT_READY, 429)
            try:
                await asyncio.wait_for(asyncio.shield(task), remaining)
            except TimeoutError:
                raise AwsError("ModelNotReadyException", MODEL_NOT_READY, 429) from None
            # Loaded (or evicted again in between by another load: go round once more).

    # ------------------------------------------------------------------ cold path
    async def _load(
        self, ep: Endpoint, variant: Variant, inst: Instance, table: InstanceModels, e: CachedModel
    ) -> CachedModel:
        record = LoadRecord(ep.name, inst.id, e.target)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.load_timeout_seconds):
                while True:
                    if not e.on_disk:
                        await self._download(ep, variant, inst, table, e, record)
                    async with table.lock:
                        if not e.on_disk:  # deleted from the volume while this load waited
                            continue
                        if table.get(e.target) is not e:
                            table.entries[e.target] = e
                        await self._make_disk_room(ep, variant, inst, table, e)
                        await self._load_into_container(ep, variant, inst, table, e, record)
                        break
        except BaseException as exc:
            if not e.loaded:  # drop it, files included: a fixed archive is downloaded afresh
                if table.get(e.target) is e:
                    table.forget(e.target)
                e.state = ModelState.NEW
                self._remove_dir(e.path.parent)
            if isinstance(exc, TimeoutError):
                raise AwsError(
                    "ModelError",
                    f"Model {e.target} could not be downloaded and loaded within "
                    f"{self.load_timeout_seconds:g} seconds.",
                    424,
                    fields={"OriginalStatusCode": 0, "OriginalMessage": "load timed out"},
                ) from None
            raise
        record.total_s = time.perf_counter() - started
        self.loads.append(record)
        return e

    async def _download(
        self, ep: Endpoint, variant: Variant, inst: Instance, table: InstanceModels, e: CachedModel,
        record: LoadRecord,
    ) -> None:
        try:
            bucket, prefix = split_prefix(variant.props.get("ModelDataUrl") or "")
        except ValueError as exc:
            raise AwsError(
                "ValidationError",
                f"Model {variant.props.get('ModelName')} of endpoint {ep.name} has no usable model prefix: {exc}. "
                "Create the model with PrimaryContainer.ModelDataUrl='s3://bucket/prefix/' and Mode='MultiModel'.",
            ) from None
        key = prefix + e.target
        missing = AwsError(
            "ValidationError",
            f"Failed to download model data(bucket: {bucket}, key: {key}). Please ensure that there is an "
            "object located at the URL and that the role passed to CreateModel has permissions to download "
            "the object.",
        )
        e.state = ModelState.DOWNLOADING
        slots = self._download_slots.get(inst)
        if slots is None:
            slots = self._download_slots[inst] = asyncio.Semaphore(max(1, inst.vcpu))
        async with slots:
            t0 = time.perf_counter()
            s3 = self.backend.s3
            head = await s3.head_object(bucket, key)
            if head is None:
                raise missing
            try:
                data = await s3.get_object(bucket, key)
            except AwsError:
                raise missing from None
            t1 = time.perf_counter()
            itype = inst.spec.instance_type
            cap = min(table.disk_budget, unpacked_cap_bytes(itype, self.endpoints.settings.max_unpacked_mb))
            try:
                size = await asyncio.to_thread(_unpack, data, e.path, cap)
            except (ValueError, OSError) as exc:  # ArchiveError/UnsafeArchiveError are ValueErrors
                hint = f" {too_large_hint(itype, cap)}" if isinstance(exc, ArchiveTooLarge) else ""
                raise self._model_error(
                    ep, 500, f"Failed to extract model data for TargetModel {e.target} "
                    f"(s3://{bucket}/{key}): {exc}.{hint}",
                ) from None
            t2 = time.perf_counter()
        e.disk_bytes = size
        e.etag = head.get("ETag")
        e.state = ModelState.ON_DISK
        record.download_s, record.unpack_s = t1 - t0, t2 - t1
        self._metric(variant, "ModelDownloadingTime", (t2 - t0) * 1e6, "Microseconds")
        log.info("%s/%s: downloaded %s (%d bytes unpacked) in %.3f s", ep.name, inst.id, e.target, size, t2 - t0)

    async def _make_disk_room(
        self, ep: Endpoint, variant: Variant, inst: Instance, table: InstanceModels, e: CachedModel
    ) -> None:
        if e.disk_bytes > table.disk_budget:
            raise self._model_error(
                ep, 507, f"Model {e.target} needs {e.disk_bytes / 2**20:.1f} MiB on the instance volume, more "
                f"than its {table.disk_budget / 2**20:.1f} MiB for models.",
            )
        for victim in table.disk_victims(0, exclude=e):
            await self._discard(inst, victim, variant)
        if table.disk_used > table.disk_budget:
            log.warning("%s/%s: model volume over budget (%d > %d bytes): the other models are in use",
                        ep.name, inst.id, table.disk_used, table.disk_budget)

    async def _load_into_container(
        self, ep: Endpoint, variant: Variant, inst: Instance, table: InstanceModels, e: CachedModel,
        record: LoadRecord,
    ) -> None:
        e.state = ModelState.LOADING
        for victim in table.unload_victims(max(e.disk_bytes, e.memory_bytes), exclude=e):
            await self._unload(inst, victim, variant)
        session = await self._session_get()
        body = {"model_name": e.model_id, "url": str(e.path)}
        headers = {"X-Amzn-SageMaker-Target-Model": e.target, **inst.auth_headers}
        while True:
            t0 = time.perf_counter()
            async with session.post(f"{inst.url}/models", json=body, headers=headers) as r:
                status, text = r.status, await r.text()
            elapsed = time.perf_counter() - t0
            if status == 200 or status == 409:  # 409: already in the container (table rebuilt)
                doc = _json(text)
                if status == 409:
                    async with session.get(f"{inst.url}/models/{e.model_id}", headers=inst.auth_headers) as r:
                        doc = _json(await r.text())
                # A re-load can measure less than the first load did (freed heap pages get
                # reused); keep the largest measurement of this model on this instance.
                e.memory_bytes = max(int(doc.get("memoryBytes") or e.disk_bytes), e.memory_bytes)
                e.state = ModelState.LOADED
                e.touch()
                record.load_s = elapsed
                self._metric(variant, "ModelLoadingTime", elapsed * 1e6, "Microseconds")
                log.info("%s/%s: loaded %s as %s (%.1f MiB) in %.3f s", ep.name, inst.id, e.target, e.model_id,
                         e.memory_bytes / 2**20, elapsed)
                return
            if status == 507:
                victim = table.lru_unused_loaded(exclude=e)
                if victim is not None:
                    await self._unload(inst, victim, variant)
                    continue
            raise self._model_error(ep, status, text)

    async def _unload(self, inst: Instance, e: CachedModel, variant: Variant | None = None) -> None:
        """Unload ``e`` from the container (it stays on disk) unless a request took it meanwhile."""
        if e.state is not ModelState.LOADED or e.busy:
            return
        e.state = ModelState.UNLOADING
        t0 = time.perf_counter()
        try:
            session = await self._session_get()
            async with session.delete(f"{inst.url}/models/{e.model_id}", headers=inst.auth_headers) as r:
                await r.read()
                if r.status not in (200, 404):
                    log.warning("unloading %s from %s: HTTP %s", e.target, inst.id, r.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("unloading %s from %s failed: %s", e.target, inst.id, exc)
        finally:
            e.state = ModelState.ON_DISK
        elapsed = time.perf_counter() - t0
        self._metric(variant or self.endpoints.variant_of(inst), "ModelUnloadingTime", elapsed * 1e6,
                     "Microseconds")
        log.info("%s/%s: unloaded %s in %.3f s", inst.spec.endpoint, inst.id, e.target, elapsed)

    async def _discard(self, inst: Instance, e: CachedModel, variant: Variant | None = None) -> None:
        """Unload ``e`` if loaded and delete it from the instance volume (unless it got busy)."""
        if e.busy:
            return
        await self._unload(inst, e, variant)
        if e.busy or e.state is not ModelState.ON_DISK:
            return
        t = self._tables.get(inst)
        if t is not None and t.get(e.target) is e:
            t.forget(e.target)
        e.state = ModelState.NEW
        self._remove_dir(e.path.parent)

    async def _discard_locked(self, inst: Instance, e: CachedModel) -> None:
        """:meth:`_discard` outside a load (ModelCacheSetting Disabled), under the instance's lock."""
        t = self._tables.get(inst)
        if t is None:
            return
        async with t.lock:
            await self._discard(inst, e)

    def _remove_dir(self, path: Path) -> None:
        """Move ``path`` aside at once (a new download of the same model may start right away),
        then delete it on a thread."""
        trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        except OSError:
            trash = path
        self._spawn(asyncio.to_thread(shutil.rmtree, trash, True))

    # ------------------------------------------------------------------ metrics
    def _metric(self, variant: Variant | None, name: str, value: float, unit: str = "None") -> None:
        metrics = getattr(self.backend, "metrics", None)
        if metrics is None or variant is None:
            return
        metrics.record(SAGEMAKER_METRICS, name, variant.dims, value, self.clock.now(), unit=unit)

    def _record_model_failure(self, variant: Variant, exc: AwsError) -> None:
        """A model that failed to download/unpack/load counts as an invocation with a model error
        (Invocations, Invocation4XX/5XXErrors, InvocationModelErrors), like a failing handler."""
        status = int(exc.fields.get("OriginalStatusCode") or 500)
        with contextlib.suppress(Exception):
            self.endpoints.record_invocation(variant, status if status >= 400 else 500)

    def sample_minute(self, timestamp: float) -> None:
        """LoadedModelCount and DiskUtilization per in-service multi-model instance."""
        metrics = getattr(self.backend, "metrics", None)
        if metrics is None:
            return
        for inst, t in list(self._tables.items()):
            if inst.state is not InstanceState.IN_SERVICE:
                continue
            dims = {"EndpointName": inst.spec.endpoint, "VariantName": inst.spec.variant}
            metrics.record(ENDPOINT_INSTANCE_METRICS, "LoadedModelCount", dims, float(t.loaded_count), timestamp)
            disk = 100.0 * t.disk_used / t.disk_budget if t.disk_budget else 0.0
            metrics.record(ENDPOINT_INSTANCE_METRICS, "DiskUtilization", dims, min(100.0, disk), timestamp, unit="Percent")

    # ------------------------------------------------------------------ plumbing
    def _model_error(self, ep: Endpoint, status: int, message: str) -> AwsError:
        return self.endpoints.model_error(ep, status, message.encode("utf-8"))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: failures reach the waiting requests, not the log

    async def _session_get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=self.load_timeout_seconds),
            )
        return self._session

    async def shutdown(self) -> None:
        """Cancel loads in progress and close the HTTP session."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._session is not None:
            await self._session.close()
            self._session = None


def _cache_disabled(variant: Variant) -> bool:
    config = variant.props.get("MultiModelConfig") or {}
    return str(config.get("ModelCacheSetting", "Enabled")).lower() == "disabled"


def _json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {}
    return doc if isinstance(doc, dict) else {}


__all__ = [
    "ENV_DISK_BUDGET",
    "ENV_MEMORY_BUDGET",
    "MODE",
    "MODEL_MEMORY_FRACTION",
    "Fleet",
    "LoadRecord",
    "ModelLease",
    "MultiModelManager",
    "check_target_model",
    "disk_budget_bytes",
    "memory_budget_bytes",
    "models_root",
    "server_arguments",
    "server_environment",
    "split_prefix",
]
