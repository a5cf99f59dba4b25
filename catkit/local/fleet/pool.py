"""Instance pools: launch, retire, scale and health-check the instances of production variants.

:class:`InstancePool` does the work on a variant's instance list that the endpoint state machine
(:mod:`catkit.local.fleet.endpoints`) orders: launch ``n`` instances at once (the first failure
cancels the others), retire one (drain, stop, remove), scale a variant to ``n`` (scale-in drains
not-yet-serving instances first, then the newest, LIFO), stop everything at shutdown, and run one
round of ``/ping``, memory and log-size checks. It does not decide what to replace: the state machine does,
with the instances :meth:`InstancePool.unhealthy` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from catkit.local.fleet import housekeeping
from catkit.local.fleet.instances import Instance, InstanceSettings, InstanceState
from catkit.local.fleet.state import Variant

log = logging.getLogger("catkit.local.fleet.endpoints")


class InstancePool:
    """Instance work for the variants of one fleet. ``s3()`` returns the backend's S3 (read at each
    launch); ``on_exit(instance, returncode)`` runs when a serving instance's process exits."""

    def __init__(self, home: Path, clock: Any, settings: InstanceSettings, s3: Callable[[], Any],
                 on_exit: Callable[[Instance, int], Any]) -> None:
        self.home = home
        self.clock = clock
        self.settings = settings
        self.s3 = s3
        self.on_exit = on_exit
        self._session: aiohttp.ClientSession | None = None  # health checks

    async def session(self) -> aiohttp.ClientSession:
        """The HTTP session for ``/ping`` (created on first use)."""
        if self._session is None or self._session.closed:
            # Idle connections are dropped before the model server drops them (its head timeout: 30 s).
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=15, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def launch(self, endpoint_name: str, v: Variant, *, provision: bool = True) -> Instance:
        """Start one instance of ``v`` (in its list from the start); raises InstanceLaunchError."""
        return await self._start(endpoint_name, v, self._add(endpoint_name, v), provision)

    def _add(self, endpoint_name: str, v: Variant) -> Instance:
        """A new instance of ``v``, in its list at once: whoever counts ``v.active()`` next sees it
        (a replacement and a scale-out deciding at the same moment cannot both launch)."""
        inst = Instance(v.spec(endpoint_name), self.home)
        v.instances.append(inst)
        return inst

    async def _start(self, endpoint_name: str, v: Variant, inst: Instance, provision: bool) -> Instance:
        try:
            await inst.launch(
                self.s3(), self.clock, self.settings, await self.session(),
                provision=provision, on_exit=self.on_exit,
            )
        except BaseException:
            with contextlib.suppress(ValueError):
                v.instances.remove(inst)
            raise
        log.info("instance %s of %s/%s in service on port %s", inst.id, endpoint_name, v.name, inst.port)
        return inst

    async def launch_many(self, endpoint_name: str, v: Variant, n: int, *, provision: bool = True) -> list[Instance]:
        """Start ``n`` instances of ``v`` concurrently; the first failure cancels the rest."""
        if n <= 0:
            return []
        insts = [self._add(endpoint_name, v) for _ in range(n)]  # counted before any await
        try:
            return await run_all([self._start(endpoint_name, v, i, provision) for i in insts])
        except BaseException:
            for inst in insts:  # a start cancelled before it ran never removed its instance
                if inst.state is not InstanceState.IN_SERVICE:
                    with contextlib.suppress(ValueError):
                        v.instances.remove(inst)
            raise

    async def retire(self, v: Variant, inst: Instance, *, drain: bool = True) -> None:
        """Stop ``inst`` (draining first unless told not to) and remove it from ``v``."""
        try:
            await inst.stop(self.clock, self.settings, drain=drain)
        finally:
            with contextlib.suppress(ValueError):
                v.instances.remove(inst)

    async def stop_all(self, variants: Iterable[Variant], *, drain: bool = True) -> None:
        """Retire every instance of ``variants`` concurrently (errors are swallowed)."""
        jobs = [self.retire(v, i, drain=drain) for v in variants for i in list(v.instances)]
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    async def scale(self, endpoint_name: str, v: Variant, n: int) -> None:
        """Launch or drain instances until ``v`` has ``n`` active ones."""
        active = v.active()
        if n > len(active):
            await self.launch_many(endpoint_name, v, n - len(active))
        elif n < len(active):
            # Not-yet-serving instances go first, then the newest ones (LIFO).
            order = sorted(active, key=lambda i: (i.routable, i.launched_at or 0.0), reverse=False)
            victims = [i for i in order if not i.routable]
            serving = sorted((i for i in active if i.routable), key=lambda i: i.launched_at or 0.0, reverse=True)
            victims = (victims + serving)[: len(active) - n]
            for i in victims:
                i.state = InstanceState.DRAINING  # stop routing to it right now
            await asyncio.gather(*(self.retire(v, i) for i in victims), return_exceptions=True)

    async def unhealthy(self, instances: list[Instance]) -> list[Instance]:
        """One round of ``/ping`` (and memory) checks of ``instances``: those that failed
        ``unhealthy_after`` checks in a row, or whose process holds more memory than the instance
        has, in order. Resets the failure count of the healthy ones."""
        session = await self.session()
        results = await asyncio.gather(*(i.ping(session, self.settings.ping_timeout_real) for i in instances))
        cap = int(self.settings.log_cap_mb * 2**20)  # the health round also keeps logs under their cap
        await asyncio.to_thread(lambda: [housekeeping.rotate_log(i.log_path, cap) for i in instances])
        out: list[Instance] = []
        for inst, ok in zip(instances, results, strict=True):
            rss = inst.over_memory() if ok and inst.state is InstanceState.IN_SERVICE else None
            if rss is not None and inst.state is InstanceState.IN_SERVICE:
                log.warning(
                    "instance %s uses %.0f MiB, more than its %.0f MiB of memory (%s); recycling it, as an "
                    "out-of-memory container would be on AWS", inst.id, rss / 2**20, inst.memory_bytes / 2**20,
                    inst.spec.instance_type,
                )
            elif ok:
                inst.health_failures = 0
                continue
            else:
                inst.health_failures += 1
            if rss is not None or (
                inst.health_failures >= self.settings.unhealthy_after and inst.state is InstanceState.IN_SERVICE
            ):
                if rss is None:
                    log.warning("instance %s failed %d health checks; replacing it", inst.id, inst.health_failures)
                out.append(inst)
        return out

    async def stop_now(self, variants: Iterable[Variant], *, kill: bool = False) -> None:
        """Shutdown: every instance of ``variants`` gets a 2-second drain, then stops (``kill``:
        SIGKILL at once, for a reset)."""
        insts = [(v, i) for v in variants for i in list(v.instances)]

        async def stop(v: Variant, i: Instance) -> None:
            with contextlib.suppress(Exception):
                if kill:
                    await i.kill()
                else:
                    await i.drain(2.0)
                    await i.stop(self.clock, self.settings, drain=False)
            with contextlib.suppress(ValueError):
                v.instances.remove(i)

        await asyncio.gather(*(stop(v, i) for v, i in insts))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def run_all(coros: list[Awaitable[Any]]) -> list[Any]:
    """Run concurrently; on the first exception cancel the others, wait for them, re-raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    first = next((t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()), None)
    if first is not None:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        raise first
    return [t.result() for t in tasks]


__all__ = ["InstancePool", "run_all"]
