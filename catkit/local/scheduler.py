"""One scheduler for all periodic work of the local backend, on the backend's clock.

Every periodic job (the scaling driver's step, per-instance metric sampling, health checks) is a
:class:`Job` registered with :meth:`Scheduler.every`: a period in emulated seconds and an order.
One asyncio task sleeps until the next due time and runs every job due then, in ``(time, order)``
order, so two jobs due at the same moment always run in the same sequence (metrics are sampled
before the alarms read them). Jobs are aligned to multiples of their period on the emulated clock
(a 10-second job runs at :00, :10, ...). A job that raises is logged and runs again at its next
time; a backend that fell far behind (a suspended laptop) skips the missed runs instead of
replaying them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from catkit.local.clock import Clock

log = logging.getLogger("catkit.local.scheduler")

#: Missed runs further behind than this many periods are skipped, not replayed.
MAX_BEHIND_PERIODS = 10


@dataclass(order=True)
class Job:
    """``fn(now)`` every ``period`` emulated seconds (sync or async), at multiples of ``period``."""

    due: float
    order: int
    name: str = field(compare=False)
    period: float = field(compare=False)
    fn: Callable[[float], Any] = field(compare=False, repr=False)
    runs: int = field(default=0, compare=False)
    failures: int = field(default=0, compare=False)


class Scheduler:
    """Runs registered jobs on ``clock``; :meth:`run` is the backend's one periodic task."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.jobs: list[Job] = []
        self._wake = asyncio.Event()

    def every(
        self,
        name: str,
        period: float,
        fn: Callable[[float], Any] | Callable[[float], Awaitable[Any]],
        *,
        order: int = 0,
    ) -> Job:
        """Run ``fn(now)`` every ``period`` emulated seconds; lower ``order`` first at equal times."""
        if not period > 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        if any(j.name == name for j in self.jobs):
            raise ValueError(f"a job named {name!r} is already scheduled")
        job = Job(self._next_boundary(self.clock.now(), period), order, name, float(period), fn)
        self.jobs.append(job)
        self._wake.set()
        return job

    def realign(self) -> None:
        """Every job next runs at its first period boundary after the clock's ``now`` (after the
        clock was rebased by a reset)."""
        now = self.clock.now()
        for job in self.jobs:
            job.due = self._next_boundary(now, job.period)
        self._wake.set()

    def next_due(self) -> Job | None:
        return min(self.jobs) if self.jobs else None

    async def run_due(self, now: float) -> list[str]:
        """Run every job due at or before ``now`` once, in order; returns their names."""
        ran = []
        for job in sorted(j for j in self.jobs if j.due <= now):
            at = job.due
            try:
                result = job.fn(at)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                job.failures += 1
                log.exception("periodic job %s failed at %.3f; it runs again in %g emulated s", job.name, at,
                              job.period)
            job.runs += 1
            ran.append(job.name)
            nxt = at + job.period
            if now - nxt > MAX_BEHIND_PERIODS * job.period:
                nxt = self._next_boundary(now, job.period)
            job.due = nxt
        return ran

    async def run(self) -> None:
        """The backend's periodic task: sleep until the next job is due, run what is due, repeat."""
        while True:
            job = self.next_due()
            self._wake.clear()
            if job is None:
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(job.due))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (sleeper, waker):
                    t.cancel()
            if sleeper.done() and not sleeper.cancelled():
                await self.run_due(self.clock.now())

    @staticmethod
    def _next_boundary(now: float, period: float) -> float:
        return (math.floor(now / period) + 1) * period
