"""Assembly of the local backend: its core, its components, the gateway, start and stop.

``Backend`` owns the core every part shares - ``home``, ``clock``, ``state``, ``s3``, ``region``,
``account_id``, the one metric store (``metrics``), the one alarm book (``alarms``, saved by
``alarm_store``), the one scheduler (``scheduler``) and the one scaling driver (``driver``) - and
installs the components of :mod:`catkit.local.components` (``cloudwatch``, ``sagemaker``,
``application-autoscaling``), which set the typed attributes ``cloudwatch``, ``endpoints`` and
``autoscaling``. Components register services (``add_service``), one-shot background coroutines
(``add_background``, started once the gateway listens, cancelled on stop), shutdown hooks
(``add_shutdown``, awaited in reverse) and periodic jobs on ``scheduler``; the scheduler is the
only periodic task. Every 10 emulated seconds it runs the driver's step: concurrency samples and
idle zeros, alarm evaluation, scaling decisions, apply, settle.

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
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import catkit
from catkit.autoscaling.driver import TICK_S, ScalingDriver
from catkit.autoscaling.engine import Engine
from catkit.autoscaling.metrics_store import MetricStore
from catkit.local import components as builtin
from catkit.local.clock import Clock
from catkit.local.gateway import Gateway, check_loopback
from catkit.local.paths import catkit_home, ensure_private_dir
from catkit.local.scheduler import Scheduler
from catkit.local.services.cloudwatch_store import AlarmPersistence, load_alarm_book
from catkit.local.storage.s3 import LocalS3
from catkit.local.storage.state import StateStore

if TYPE_CHECKING:
    from catkit.local.components import AutoscalingController
    from catkit.local.fleet.endpoints import EndpointManager
    from catkit.local.services.cloudwatch import CloudWatchService

log = logging.getLogger("catkit.local.backend")

#: The components a backend is built of, in install order (see :mod:`catkit.local.components`).
COMPONENTS: tuple[str, ...] = builtin.DEFAULT_COMPONENTS

_CLOCK_KIND = "backend"
_CLOCK_KEY = "clock"
_CLOCK_PERSIST_EVERY_S = 1.0  # real seconds


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
        self.services: dict[str, Any] = {}
        # The core: one metric store, one alarm book, one scheduler, one scaling driver.
        self.scheduler = Scheduler(self.clock)
        self.metrics = MetricStore(now=self.clock.now)
        self.alarms = load_alarm_book(self.state, region, account_id)
        self.alarm_store = AlarmPersistence(self.alarms, self.state)
        self.driver = ScalingDriver(Engine(self.alarms, region, account_id), self.metrics)
        # Set by components (None while the component is not installed):
        self.cloudwatch: CloudWatchService | None = None
        self.endpoints: EndpointManager | None = None
        self.autoscaling: AutoscalingController | None = None
        self.components: tuple[str, ...] = COMPONENTS if components is None else tuple(components)
        self.installed_components: list[str] = []
        self.url: str | None = None
        self.started_at: float | None = None  # wall clock, for uptime
        self._backgrounds: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        self._shutdowns: list[Callable[[], Awaitable[Any]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._gateway: Gateway | None = None
        self._moto: Any = None
        self._running = False
        self._stopped = False

    # -- registry used by components ---------------------------------------------------------
    def add_service(self, name: str, service: Any) -> None:
        """Serve ``service`` for routing key ``name`` (``sagemaker``, ``cloudwatch``, ...)."""
        if name in ("s3", "sts", "iam"):
            raise ValueError(f"{name!r} is served by the embedded moto server; pick another routing key")
        if name in self.services and self.services[name] is not service:
            raise ValueError(f"a service is already registered for {name!r}")
        if not getattr(service, "service_name", ""):
            with contextlib.suppress(AttributeError):
                service.service_name = name
        self.services[name] = service

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
        """Start moto, replay S3, install components, listen; returns the gateway URL."""
        if self._running:
            raise RuntimeError(f"backend already running at {self.url}")
        loop = asyncio.get_running_loop()
        moto_url = await loop.run_in_executor(None, self._start_moto)
        buckets, objects = await loop.run_in_executor(None, self.s3.replay)
        log.info("restored %d S3 bucket(s), %d object(s) from %s", buckets, objects, self.s3.disk.root)
        from catkit.local.identity import ensure_execution_role

        ensure_execution_role(self.account_id)
        self._install_components()
        self._gateway = Gateway(self, self.host, self.port)
        try:
            self.url = await self._gateway.start(moto_url)
        except BaseException:
            await self._gateway.stop()
            await loop.run_in_executor(None, self._stop_moto)
            raise
        self.port = self._gateway.port
        self.started_at = time.time()
        self._running = True
        margin = self.clock.emulated_seconds(3 * _CLOCK_PERSIST_EVERY_S)
        self._save_clock(self.clock.now() + margin)  # then every real second, from the scheduler
        self._spawn(self.scheduler.run)
        for factory in list(self._backgrounds):
            self._spawn(factory)
        log.info(
            "catkit local backend listening on %s (home %s, time scale %g)",
            self.url,
            self.home,
            self.time_scale,
        )
        return self.url

    async def stop(self) -> None:
        """Graceful stop, in this order: close the port and let in-flight requests finish (up to
        10 s), cancel background tasks, await shutdown hooks (reverse), stop moto, save the
        clock, close the state store."""
        if self._stopped or (not self._running and self._gateway is None and self._moto is None):
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
        await asyncio.get_running_loop().run_in_executor(None, self._stop_moto)
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
        """The core's periodic jobs, then each component (built-in names, their old module names,
        or an extension module with ``install(backend)``)."""
        self.scheduler.every("scaling-step", TICK_S, self.driver.step, order=builtin.ORDER_STEP)
        self.scheduler.every("alarms-save", TICK_S, lambda now: self.alarm_store.persist(),
                             order=builtin.ORDER_SAVE_ALARMS)
        self.scheduler.every("clock-save", self.clock.emulated_seconds(_CLOCK_PERSIST_EVERY_S), self._persist_clock,
                             order=builtin.ORDER_SAVE_ALARMS + 1)
        self.add_shutdown(self._save_alarms)
        for name in self.components:
            key = builtin.ALIASES.get(name, name)
            if key is None:
                continue  # a part of the core now
            install = builtin.INSTALLERS.get(key)
            if install is None:
                try:
                    module = importlib.import_module(name)
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

    async def _save_alarms(self) -> None:
        with contextlib.suppress(Exception):
            self.alarm_store.persist(force=True)

    def _start_moto(self) -> str:
        """moto's werkzeug app on a free loopback port in a thread (like ThreadedMotoServer, but
        with a short poll interval so stop() is quick)."""
        import threading

        from moto.core.base_backend import BackendDict
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        BackendDict.reset()  # moto state is per process; start from the persisted state only
        if self.account_id != "123456789012":  # moto's default; pin every request to our account
            os.environ["MOTO_ACCOUNT_ID"] = self.account_id
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="catkit-moto", daemon=True
        )
        thread.start()
        self._moto = (server, thread)
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    def _stop_moto(self) -> None:
        if self._moto is not None:
            (server, thread), self._moto = self._moto, None
            server.shutdown()
            server.server_close()
            thread.join(10)

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
