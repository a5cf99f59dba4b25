"""The worker pool: results and errors come back, timeouts don't cost capacity."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from catkit.serving.workers import CallTimeout, WorkerPool
from catkit.testing import wait_until_async


@contextlib.contextmanager
def worker_pool(size: int) -> Iterator[tuple[WorkerPool, threading.Event]]:
    """A pool of ``size`` workers and an event its blocking jobs wait on; on exit the event is set
    (so no job stays blocked) and the pool closed."""
    pool, release = WorkerPool(size), threading.Event()
    try:
        yield pool, release
    finally:
        release.set()
        pool.close()


def test_results_and_exceptions_are_delivered() -> None:
    def boom() -> None:
        raise KeyError("nope")

    async def main(pool: WorkerPool) -> None:
        assert await pool.run(lambda a, b: a + b, 2, 3) == 5
        assert await pool.run(threading.current_thread) is not threading.current_thread()
        with pytest.raises(KeyError):
            await pool.run(boom)

    with worker_pool(2) as (pool, _):
        asyncio.run(main(pool))


def test_timed_out_call_is_replaced_so_capacity_stays() -> None:
    async def main(pool: WorkerPool, release: threading.Event) -> None:
        with pytest.raises(CallTimeout):
            await pool.run(release.wait, 30, timeout=0.1)
        assert pool.stuck == 1
        # the only original worker is stuck; a replacement serves the next call
        assert await pool.run(lambda: "served", timeout=5) == "served"
        release.set()
        await wait_until_async(lambda: pool.stuck == 0, 30, what="the stuck worker to finish")

    with worker_pool(1) as (pool, release):
        asyncio.run(main(pool, release))


def test_job_that_timed_out_in_the_queue_never_runs() -> None:
    ran: list[str] = []

    async def main(pool: WorkerPool, release: threading.Event) -> None:
        blocker = asyncio.ensure_future(pool.run(release.wait, 30))
        await asyncio.sleep(0.05)
        with pytest.raises(CallTimeout):
            await pool.run(ran.append, "late", timeout=0.05)
        release.set()
        await blocker
        assert await pool.run(lambda: "after") == "after"
        assert ran == []

    with worker_pool(1) as (pool, release):
        asyncio.run(main(pool, release))


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        WorkerPool(0)
