"""Assembly of the local backend: its core, its components, the gateway, start and stop.

``Backend`` owns what every part shares - ``home``, ``clock``, ``state``, ``s3`` and the one
scheduler (``scheduler``) - and one :class:`~catkit.local.scopes.Scope` per ``(account, region)``
(:meth:`Backend.scope`, created on a scope's first request): its metric store, alarm book, scaling
driver, and the components of :mod:`catkit.local.components` (``cloudwatch``, ``sagemaker``,
``application-autoscaling``) installed into it, which set its ``cloudwatch``, ``endpoints`` and
``autoscaling``. ``backend.metrics``, ``alarms``, ``driver``, ``endpoints``, ``services``... are
the *default* scope's (the backend's ``account_id`` and ``region``). Components register services
(``add_service``), one-shot background coroutines (``add_background``, started once the gateway
listens, cancelled on stop), shutdown hooks (``add_shutdown``, awaited in reverse) and periodic
jobs on ``scheduler``; the scheduler is the only periodic task. Every 10 emulated seconds it runs
each scope's driver step: concurrency samples and idle zeros, alarm evaluation, scaling
decisions, apply, settle. :meth:`Backend.reset` forgets everything in well under a second.

The emulated clock continues monotonically across restarts: a high-water mark of emulated time is
persisted in the state store while running (ahead of ``now`` by a margin, so even a kill -9 cannot
make the next start go back in time) and exactly on a graceful stop. ``stop()`` first closes the
port and lets in-flight requests finish, then stops background tasks and components.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import catkit
from catkit.local import components as builtin
from catkit.local.clock import Clock
from catkit.local.errors import AwsError
from catkit.local.gateway import Gateway, check_loopback
from catkit.local.paths import catkit_home, ensure_private_dir
from catkit.local.scheduler import Scheduler
from catkit.local.scopes import (
    MAX_SCOPES,
    FanOut,
    Scope,
    ScopeKey,
    check_scope,
    persisted_scopes,
    spawn_later,
)
from catkit.local.services.cloudwatch_store import METRICS_FILE
from catkit.local.storage.replay import IamJournal
from catkit.local.storage.s3 import LocalS3
from catkit.local.storage.state import StateStore

if TYPE_CHECKING:
    pass

log = logging.getLogger("catkit.local.backend")

#: The components a backend is built of, in install order (see :mod:`catkit.local.components`).
COMPONENTS: tuple[str, ...] = builtin.DEFAULT_COMPONENTS

_CLOCK_KIND = "backend"
_CLOCK_KEY = "clock"
_HOME_SCOPE_KEY = "home-scope"  # the (account, region) whose documents use the plain kinds
_CLOCK_PERSIST_EVERY_S = 1.0  # real seconds


def _from_default_scope(name: str, doc: str) -> Any:
    return property(lambda self: getattr(self.default_scope, name), doc=doc)


class Backend:
    """The local backend of one ``CATKIT_HOME``.

    ``Backend(home, port=0, time_scale=1.0, region="us-east-1", account_id="123456789012")``;
    ``await start()`` returns the URL, ``await stop()`` shuts down gracefully. ``clock`` may be
    injected (e.g. a ``FakeClock`` in tests); ``components`` overrides :data:`COMPONENTS`.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        port: int = 0,
        time_scale: float = 1.0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        *,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
        components: tuple[str, ...] | None = None,
    ) -> None:
        self.home: Path = ensure_private_dir(catkit_home(home))
        ensure_private_dir(self.home / "logs")
        self.host = check_loopback(host)
        self.port = int(port)
        self.region = region
        self.account_id = account_id
        self.state = StateStore(self.home / "state.sqlite")
        self.clock: Clock = clock if clock is not None else self._resume_clock(time_scale)
        self.time_scale = self.clock.time_scale
        self.s3 = LocalS3(self.home / "s3", account_id=account_id)
        self.iam_journal = IamJournal(self.state)  # IAM changes, replayed into moto at start
        # The core: one scheduler; per (account, region) a Scope with its metric store, alarm
        # book, scaling driver, fleet and services (catkit.local.scopes).
        self.scheduler = Scheduler(self.clock)
        self.components: tuple[str, ...] = COMPONENTS if components is None else tuple(components)
        self.url: str | None = None
        self.started_at: float | None = None  # wall clock, for uptime
        self._backgrounds: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        self._shutdowns: list[Callable[[], Awaitable[Any]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._gateway: Gateway | None = None
        self._running = False
        self._stopped = False
        self._installed = False
        self._scopes: dict[ScopeKey, Scope] = {}
        self._global_services: dict[str, Any] = {}
        self._fans: dict[str, FanOut] = {}
        self._scope_backgrounds: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        self._spawn_for_scopes = spawn_later(self._tasks, lambda: self._running, self._scope_backgrounds,
                                             _log_task_failure)
        self.max_scopes = int(os.environ.get("CATKIT_MAX_SCOPES") or MAX_SCOPES)
        saved_home = self.state.get(_CLOCK_KIND, _HOME_SCOPE_KEY)
        if saved_home is None:
            saved_home = {"account_id": account_id, "region": region}
            self.state.put(_CLOCK_KIND, _HOME_SCOPE_KEY, saved_home)
        self.home_scope_key: ScopeKey = (saved_home["account_id"], saved_home["region"])

    # -- scopes: (account, region) -> everything kept for it -----------------------------------
    @property
    def default_scope(self) -> Scope:
        """The scope of the backend's own account and region (unsigned requests, ``info()``)."""
        return self.scope(self.account_id, self.region)

    def scope(self, account_id: str, region: str) -> Scope:
        """The scope of ``(account_id, region)``, created (and installed, once the backend is
        assembled) on first use; AwsError for an invalid region or beyond ``CATKIT_MAX_SCOPES``."""
        key = (account_id, region)
        found = self._scopes.get(key)
        if found is not None:
            return found
        check_scope(account_id, region)
        if len(self._scopes) >= self.max_scopes:
            raise AwsError(
                "LimitExceededException",
                f"The catkit local backend already serves {len(self._scopes)} account/region pairs "
                f"({', '.join(f'{a}/{r}' for a, r in self._scopes)}); raise CATKIT_MAX_SCOPES to serve "
                f"{account_id}/{region} too.",
                400,
            )
        created = Scope(
            key, home=self.home, clock=self.clock, store=self.state, s3=self.s3, scheduler=self.scheduler,
            fans=self._fans, spawn=self._spawn_for_scopes, home_scope=key == self.home_scope_key,
        )
        self._scopes[key] = created
        for name, service in self._global_services.items():
            created.add_service(name, service)
        if self._installed:
            self._install_scope(created)
        log.info("serving account %s in region %s", account_id, region)
        return created

    def scopes(self) -> list[Scope]:
        """Every scope served so far."""
        return list(self._scopes.values())

    def scope_services(self, account_id: str, region: str) -> dict[str, Any]:
        """The services of one (account, region) - what the gateway dispatches a request to."""
        return self.scope(account_id, region).services

    # The default scope's parts, as the backend offered them before scopes existed.
    services = _from_default_scope("services", "The default scope's services by routing key.")
    metrics = _from_default_scope("metrics", "The default scope's metric store.")
    alarms = _from_default_scope("alarms", "The default scope's alarm book.")
    alarm_store = _from_default_scope("alarm_store", "The default scope's alarm persistence.")
    driver = _from_default_scope("driver", "The default scope's scaling driver.")
    cloudwatch = _from_default_scope("cloudwatch", "The default scope's CloudWatch service (or None).")
    endpoints = _from_default_scope("endpoints", "The default scope's fleet (or None).")
    autoscaling = _from_default_scope("autoscaling", "The default scope's autoscaling controller (or None).")
    installed_components = _from_default_scope("installed_components", "Components installed in each scope.")

    def __getattr__(self, name: str) -> Any:
        """Anything else a component set on the scope it was installed into (default scope)."""
        if name.startswith("_") or "_scopes" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.default_scope, name)

    # -- registry used by components ---------------------------------------------------------
    def add_service(self, name: str, service: Any) -> None:
        """Serve ``service`` for routing key ``name`` in every scope - one object that finds the
        account and region in each request's context (components install a service per scope)."""
        for scope in self._scopes.values():
            scope.add_service(name, service)
        self._global_services[name] = service

    def add_background(self, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``factory()`` once the gateway listens (or now, if it already does); cancelled on stop."""
        self._backgrounds.append(factory)
        if self._running:
            self._spawn(factory)

    def add_shutdown(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Await ``fn()`` on stop, after background tasks are cancelled (reverse registration order)."""
        self._shutdowns.append(fn)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> str:
        """Reset moto, replay S3, install components, listen; returns the gateway URL."""
        if self._running:
            raise RuntimeError(f"backend already running at {self.url}")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._start_moto)
        buckets, objects = await loop.run_in_executor(None, self.s3.replay)
        log.info("restored %d S3 bucket(s), %d object(s) from %s", buckets, objects, self.s3.disk.root)
        from catkit.local.identity import ensure_execution_role

        ensure_execution_role(self.account_id)
        replayed = await loop.run_in_executor(None, self.iam_journal.replay)
        log.info("restored %d IAM change(s)", replayed)
        self._install_components()
        self._gateway = Gateway(self, self.host, self.port)
        try:
            self.url = await self._gateway.start()
        except BaseException:
            await self._gateway.stop()
            raise
        self.port = self._gateway.port
        self.started_at = time.time()
        self._running = True
        margin = self.clock.emulated_seconds(3 * _CLOCK_PERSIST_EVERY_S)
        self._save_clock(self.clock.now() + margin)  # then every real second, from the scheduler
        self._spawn(self.scheduler.run)
        for factory in [*self._backgrounds, *self._scope_backgrounds]:
            self._spawn(factory)
        self._scope_backgrounds.clear()
        log.info(
            "catkit local backend listening on %s (home %s, time scale %g)",
            self.url,
            self.home,
            self.time_scale,
        )
        return self.url

    async def stop(self) -> None:
        """Graceful stop, in this order: close the port and let in-flight requests finish (up to
        10 s), cancel background tasks, await shutdown hooks (reverse), save the clock, close the
        state store."""
        if self._stopped or (not self._running and self._gateway is None):
            return
        self._stopped = True
        self._running = False
        if self._gateway is not None:
            await self._gateway.stop()
            self._gateway = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for fn in reversed(self._shutdowns):
            try:
                await fn()
            except Exception:
                log.exception("shutdown hook %r failed", fn)
        await asyncio.get_running_loop().run_in_executor(None, self.s3.close)
        self._save_clock(self.clock.now())
        self.state.close()
        log.info("catkit local backend stopped")

    def info(self) -> dict[str, Any]:
        """What ``/_catkit/info`` reports."""
        return {
            "version": catkit.__version__,
            "pid": os.getpid(),
            "url": self.url,
            "home": str(self.home),
            "time_scale": self.time_scale,
            "now": self.clock.now(),
            "region": self.region,
            "account_id": self.account_id,
            "scopes": [{"account_id": a, "region": r} for a, r in self._scopes],
            "services": sorted({*self.services, "s3", "sts", "iam"}),
            "components": list(self.installed_components),
            "started": self.started_at,
            "uptime_s": None if self.started_at is None else time.time() - self.started_at,
        }

    # -- internals ---------------------------------------------------------------------------
    def _spawn(self, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        task = asyncio.get_running_loop().create_task(factory())
        task.add_done_callback(_log_task_failure)
        self._tasks.append(task)

    def _install_components(self) -> None:
        """The backend's own periodic job (saving the clock), then the scopes: the default one,
        the home one and every scope with persisted documents, each with the core's jobs and the
        components."""
        self.scheduler.every("clock-save", self.clock.emulated_seconds(_CLOCK_PERSIST_EVERY_S), self._persist_clock,
                             order=builtin.ORDER_SAVE_ALARMS + 1)
        self.add_shutdown(self._close_scopes)
        self._installed = True
        for scope in list(self._scopes.values()):
            self._install_scope(scope)
        for key in [(self.account_id, self.region), self.home_scope_key, *persisted_scopes(self.state)]:
            self.scope(*key)

    def _install_scope(self, scope: Scope) -> None:
        scope.install(self.components, builtin.INSTALLERS, builtin.ALIASES, importlib.import_module,
                      builtin.ORDER_STEP)

    async def _close_scopes(self, *, kill: bool = False) -> None:
        scopes, self._scopes = list(self._scopes.values()), {}
        await asyncio.gather(*(s.close(kill=kill) for s in scopes))

    # -- reset -------------------------------------------------------------------------------
    async def reset(self) -> dict[str, Any]:
        """Forget everything, as a fresh home would have it, without restarting: every instance is
        killed, every scope's resources (models, endpoint configs, endpoints, scalable targets,
        policies, alarms, metrics) and all S3/IAM/STS state are dropped, the emulated clock starts
        again at the wall clock and the default scope is rebuilt. The port, time scale and log
        files stay. What ``POST /_catkit/reset``, ``POST /moto-api/reset`` and ``catkit local
        reset`` do."""
        from catkit.local import identity

        started = time.perf_counter()
        counts = {"scopes": len(self._scopes), "endpoints": sum(
            len(s.endpoints.endpoint_names()) for s in self._scopes.values() if s.endpoints is not None)}
        await self._close_scopes(kill=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._wipe)
        identity.forget_accounts()
        await loop.run_in_executor(None, identity.ensure_execution_role, self.account_id)
        self.clock.rebase(time.time())
        self.scheduler.realign()
        self._save_clock(self.clock.now() + self.clock.emulated_seconds(3 * _CLOCK_PERSIST_EVERY_S))
        if self._installed:
            for key in [(self.account_id, self.region), self.home_scope_key]:
                self.scope(*key)
        seconds = time.perf_counter() - started
        log.info("reset: dropped %(scopes)d scope(s) with %(endpoints)d endpoint(s)", counts)
        return {"status": "ok", **counts, "seconds": round(seconds, 4)}

    def _wipe(self) -> None:
        """The stores' part of :meth:`reset` (blocking): state rows, S3 (moto and disk), IAM/STS,
        leftover instance directories."""
        self.state.clear(keep_kinds=(_CLOCK_KIND,))
        self.s3.reset()
        (self.home / METRICS_FILE).unlink(missing_ok=True)  # the home scope's metric data
        for leftover in (self.home / "scopes", self.home / "instances"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _start_moto(self) -> None:
        """Start moto from the persisted state only (its state is per process). moto serves
        in-process behind the gateway (:class:`catkit.local.moto_proxy.MotoProxy`): no port."""
        from moto.core.base_backend import BackendDict

        BackendDict.reset()
        shutil.rmtree(self.home / "s3" / ".incoming", ignore_errors=True)  # uploads a crash cut short

    def _resume_clock(self, time_scale: float) -> Clock:
        saved = self.state.get(_CLOCK_KIND, _CLOCK_KEY) or {}
        high_water = float(saved.get("emulated", 0.0))
        return Clock(time_scale, start=max(time.time(), high_water))

    def _save_clock(self, emulated: float) -> None:
        with contextlib.suppress(Exception):
            self.state.put(_CLOCK_KIND, _CLOCK_KEY, {"emulated": emulated, "time_scale": self.time_scale})

    async def _persist_clock(self, now: float) -> None:
        margin = self.clock.emulated_seconds(3 * _CLOCK_PERSIST_EVERY_S)
        await asyncio.get_running_loop().run_in_executor(None, self._save_clock, self.clock.now() + margin)


def _log_task_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc)
