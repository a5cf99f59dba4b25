"""Accounts and regions as keys: one :class:`Scope` per ``(account, region)`` of the local backend.

AWS scopes every SageMaker, Application Auto Scaling and CloudWatch resource by account and region;
so does moto (``BackendDict[account][region]``). A scope is everything the backend keeps for one
``(account, region)``: its slice of the state store (:class:`ScopedState`), its metric store, alarm
book, scaling driver and engine, its fleet (:class:`~catkit.local.fleet.endpoints.EndpointManager`)
and the services built over them. It offers the interface components install into
(:class:`catkit.local.components.Backend`), so the components of :mod:`catkit.local.components`
build a scope exactly as they built the whole backend before.

What scopes share: the clock, the state store's file, S3 (bucket names are global on AWS; moto
keys buckets by owning account, see :mod:`catkit.local.storage.s3`) and the one scheduler. Each
periodic job is still one scheduler job (``scaling-step``, ``fleet-health``, ...): a scope's
:class:`ScopeJobs` adds its callable to that job, which runs every scope's in turn
(:class:`FanOut`).

Storage: the backend's *home scope* - the ``(account, region)`` it was first started with, kept
in the state store - stores its documents under their plain kinds and its instances under
``CATKIT_HOME/instances`` (so homes written before scopes existed load unchanged); every other
scope under ``@<account>/<region>/<kind>`` and ``CATKIT_HOME/scopes/<account>/<region>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catkit.autoscaling.driver import TICK_S, ScalingDriver
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local.errors import AwsError
from catkit.local.paths import ensure_private_dir
from catkit.local.services.cloudwatch_store import (
    METRICS_SAVE_EVERY_S,
    AlarmPersistence,
    MetricPersistence,
    load_alarm_book,
)

if TYPE_CHECKING:
    from catkit.local.clock import Clock
    from catkit.local.components import AutoscalingController
    from catkit.local.fleet.endpoints import EndpointManager
    from catkit.local.scheduler import Scheduler
    from catkit.local.services.cloudwatch import CloudWatchService

log = logging.getLogger("catkit.local.scopes")

ScopeKey = tuple[str, str]  # (account id, region)

#: AWS region names: ``us-east-1``, ``us-gov-west-1``, ``cn-north-1``, ``eusc-de-east-1``...
REGION_RE = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-\d{1,2}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
_PREFIX_RE = re.compile(r"^@(\d{12})/([a-z0-9-]+)/")
MAX_SCOPES = 32  # (account, region) pairs one backend serves; CATKIT_MAX_SCOPES raises it
ORDER_SAVE_ALARMS = 40


def state_prefix(key: ScopeKey) -> str:
    """The state-kind prefix of a (non-home) scope: ``@<account>/<region>/``."""
    return f"@{key[0]}/{key[1]}/"


def persisted_scopes(store: Any) -> list[ScopeKey]:
    """The (non-home) scopes that have documents in ``store``."""
    found: list[ScopeKey] = []
    for kind in store.kinds():
        m = _PREFIX_RE.match(kind)
        if m and (m.group(1), m.group(2)) not in found:
            found.append((m.group(1), m.group(2)))
    return found


def check_scope(account_id: str, region: str) -> None:
    """AwsError unless ``account_id`` is 12 digits and ``region`` looks like an AWS region."""
    if not REGION_RE.match(region or ""):
        # ASSUMPTION: AWS has no answer for this (no endpoint exists for such a region); we refuse
        # it rather than create state for any string a client signs with.
        raise AwsError(
            "UnrecognizedClientException",
            f"The catkit local backend does not know the region {region!r} of this request's SigV4 "
            "credential scope; use an AWS region name such as us-east-1 or eu-west-1.",
            400,
        )
    if not ACCOUNT_RE.match(account_id or ""):
        raise AwsError("UnrecognizedClientException", f"Invalid account id {account_id!r}.", 400)


class ScopedState:
    """One scope's slice of the :class:`~catkit.local.storage.state.StateStore`: the same
    ``put/get/delete/list/kinds`` with every kind prefixed (no prefix for the home scope)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    @property
    def path(self) -> Path:
        return self.store.path

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        self.store.put(self.prefix + kind, key, doc)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.store.get(self.prefix + kind, key)

    def delete(self, kind: str, key: str) -> bool:
        return self.store.delete(self.prefix + kind, key)

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return self.store.list(self.prefix + kind)

    def kinds(self) -> Iterator[str]:
        if not self.prefix:
            return iter([k for k in self.store.kinds() if not k.startswith("@")])
        n = len(self.prefix)
        return iter([k[n:] for k in self.store.kinds() if k.startswith(self.prefix)])

    def close(self) -> None:
        """The store is the backend's; it closes it."""


class FanOut:
    """The one scheduler job of one name: runs each scope's callable in turn (a failing scope is
    logged and does not stop the others; the first failure is raised afterwards, so the scheduler
    counts it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fns: dict[ScopeKey, Callable[[float], Any]] = {}

    async def __call__(self, now: float) -> None:
        first: BaseException | None = None
        for key, fn in list(self.fns.items()):
            try:
                result = fn(now)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                if first is None:
                    first = exc
                else:
                    log.exception("periodic job %s failed for %s/%s", self.name, *key)
        if first is not None:
            raise first


class ScopeJobs:
    """A scope's view of the backend's scheduler: ``every(name, period, fn, order=)`` adds ``fn`` to
    the scheduler's one job ``name`` (registered by the first scope that asks for it)."""

    def __init__(self, scheduler: Scheduler, fans: dict[str, FanOut], key: ScopeKey) -> None:
        self.scheduler = scheduler
        self.clock = scheduler.clock
        self._fans = fans
        self.key = key

    @property
    def jobs(self) -> list[Any]:
        return self.scheduler.jobs

    def every(self, name: str, period: float, fn: Callable[[float], Any], *, order: int = 0) -> Any:
        fan = self._fans.get(name)
        if fan is None:
            fan = self._fans[name] = FanOut(name)
            self.scheduler.every(name, period, fan, order=order)
        fan.fns[self.key] = fn
        return next((j for j in self.scheduler.jobs if j.name == name), None)

    def forget(self) -> None:
        """Remove this scope's callables from every job."""
        for fan in self._fans.values():
            fan.fns.pop(self.key, None)


class Scope:
    """Everything one ``(account, region)`` of the backend has (see the module docstring). It is
    what components install into: ``add_service``, ``add_background``, ``add_shutdown`` and
    ``scheduler.every`` as on the backend."""

    def __init__(
        self,
        key: ScopeKey,
        *,
        home: Path,
        clock: Clock,
        store: Any,
        s3: Any,
        scheduler: Scheduler,
        fans: dict[str, FanOut],
        spawn: Callable[[Callable[[], Coroutine[Any, Any, Any]]], None],
        home_scope: bool,
    ) -> None:
        self.key = key
        self.account_id, self.region = key
        self.home_scope = home_scope
        self.home = ensure_private_dir(home if home_scope else home / "scopes" / key[0] / key[1])
        self.clock = clock
        self.state = ScopedState(store, "" if home_scope else state_prefix(key))
        self.s3 = s3
        self.scheduler = ScopeJobs(scheduler, fans, key)
        self._spawn = spawn
        self.metrics = MetricStore(now=clock.now)
        self.metric_store = MetricPersistence(self.metrics, self.home)
        self.metric_store.load()
        self.alarms = load_alarm_book(self.state, self.region, self.account_id)
        self.alarm_store = AlarmPersistence(self.alarms, self.state)
        self.driver = ScalingDriver(Engine(self.alarms, self.region, self.account_id), self.metrics)
        self.services: dict[str, Any] = {}
        self.cloudwatch: CloudWatchService | None = None
        self.endpoints: EndpointManager | None = None
        self.autoscaling: AutoscalingController | None = None
        self.installed_components: list[str] = []
        self._shutdowns: list[Callable[[], Awaitable[Any]]] = []
        self._backgrounds: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<Scope {self.account_id}/{self.region}{' (home)' if self.home_scope else ''}>"

    # -- what components use -----------------------------------------------------------------
    def add_service(self, name: str, service: Any) -> None:
        """Serve ``service`` for routing key ``name`` in this scope."""
        if name in ("s3", "sts", "iam"):
            raise ValueError(f"{name!r} is served by the embedded moto (in-process); pick another routing key")
        if name in self.services and self.services[name] is not service:
            raise ValueError(f"a service is already registered for {name!r}")
        if not getattr(service, "service_name", ""):
            with contextlib.suppress(AttributeError):
                service.service_name = name
        self.services[name] = service

    def add_background(self, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``factory()`` once the backend runs (at once if it does)."""
        self._backgrounds.append(factory)
        self._spawn(factory)

    def add_shutdown(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Await ``fn()`` when the scope closes (backend stop or reset), in reverse order."""
        self._shutdowns.append(fn)

    # -- assembly ----------------------------------------------------------------------------
    def install(self, components: tuple[str, ...], installers: dict[str, Callable[[Any], None]],
                aliases: dict[str, str | None], import_module: Callable[[str], Any],
                order_step: int) -> None:
        """The core's periodic jobs, then each component (built-in names, their old module names,
        or an extension module with ``install(backend)``)."""
        self.scheduler.every("scaling-step", TICK_S, self.driver.step, order=order_step)
        self.scheduler.every("alarms-save", TICK_S, lambda now: self.alarm_store.persist(),
                             order=ORDER_SAVE_ALARMS)
        self.add_shutdown(self._save_alarms)
        self.scheduler.every("metrics-save", self.clock.emulated_seconds(METRICS_SAVE_EVERY_S), self._save_metrics,
                             order=ORDER_SAVE_ALARMS)
        self.add_shutdown(self._save_metrics_now)
        for name in components:
            key = aliases.get(name, name)
            if key is None:
                continue  # a part of the core now
            install = installers.get(key)
            if install is None:
                try:
                    module = import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name == name:
                        log.info("component %s is not available in this build; skipped", name)
                        continue
                    raise
                install = getattr(module, "install", None)
                if install is None:
                    raise RuntimeError(f"component module {name} has no install(backend) function")
            install(self)
            self.installed_components.append(key)

    async def _save_metrics(self, now: float | None = None) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.metric_store.save)
        except OSError as exc:  # disk full: keep serving, try again next time
            log.error("could not save metric data to %s: %s", self.metric_store.path, exc)

    async def _save_metrics_now(self) -> None:
        await self._save_metrics()

    async def _save_alarms(self) -> None:
        with contextlib.suppress(Exception):
            self.alarm_store.persist(force=True)

    async def close(self, *, kill: bool = False) -> None:
        """Leave the scheduler, then run the shutdown hooks (reverse order). With ``kill`` the
        fleet's instances are killed at once instead of drained (reset)."""
        if self.closed:
            return
        self.closed = True
        self.scheduler.forget()
        if kill and self.endpoints is not None:
            await self.endpoints.shutdown(kill=True)
        for fn in reversed(self._shutdowns):
            try:
                await fn()
            except Exception:
                log.exception("shutdown hook %r of %r failed", fn, self)


def spawn_later(tasks: list[asyncio.Task[Any]], running: Callable[[], bool],
                pending: list[Callable[[], Coroutine[Any, Any, Any]]],
                done: Callable[[asyncio.Task[Any]], None]) -> Callable[[Callable[[], Coroutine[Any, Any, Any]]], None]:
    """A spawner for scopes: start the coroutine now if the backend runs, else when it starts."""

    def spawn(factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        if running():
            task = asyncio.get_running_loop().create_task(factory())
            task.add_done_callback(done)
            tasks.append(task)
        else:
            pending.append(factory)

    return spawn


__all__ = [
    "MAX_SCOPES",
    "REGION_RE",
    "FanOut",
    "Scope",
    "ScopeJobs",
    "ScopeKey",
    "ScopedState",
    "check_scope",
    "persisted_scopes",
    "spawn_later",
    "state_prefix",
]
