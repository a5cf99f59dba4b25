"""The thread pool that runs handler code off the event loop, with per-call timeouts.

Like ``ThreadPoolExecutor`` + ``run_in_executor``, plus what a model server needs: a call that
exceeds its timeout gives up waiting, its job is skipped if it never started, and if it is stuck
in user code its thread is retired (it exits once the call returns) and replaced, so the pool
keeps its capacity and the server stays usable. Python threads cannot be killed; ``stuck``
counts the retired threads still running.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("catkit.serving.workers")


class CallTimeout(Exception):
    """The call did not finish within its timeout."""


class _Job:
    __slots__ = ("args", "cancelled", "finished", "fn", "future", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                 fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.loop = loop
        self.future = future
        self.fn = fn
        self.args = args
        self.thread: threading.Thread | None = None
        self.cancelled = False
        self.finished = False


def _deliver(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class WorkerPool:
    """``size`` daemon threads running jobs submitted with :meth:`run`."""

    def __init__(self, size: int, *, name: str = "catkit-worker", max_stuck: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"worker pool size must be >= 1, got {size}")
        self.size = size
        self.name = name
        self.max_stuck = max_stuck if max_stuck is not None else max(8, 4 * size)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._retired: set[threading.Thread] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False
        self._serial = 0
        for _ in range(size):
            self._spawn()

    @property
    def stuck(self) -> int:
        """Threads retired after a timeout whose call has not returned yet."""
        with self._lock:
            return len(self._retired)

    @property
    def wedged(self) -> bool:
        """True when every worker thread is stuck in a timed-out call and none may be added
        (more than ``max_stuck`` stuck): the pool cannot run anything any more."""
        with self._lock:
            return not self._closed and not (self._threads - self._retired)

    def _spawn(self) -> None:
        self._serial += 1
        thread = threading.Thread(target=self._work, name=f"{self.name}-{self._serial}", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        get = self._queue.get
        lock = self._lock
        while True:
            job = get()
            if job is None:
                break
            with lock:
                if job.cancelled:
                    continue
                job.thread = me
            try:
                value = job.fn(*job.args)
                ok = True
            except BaseException as exc:  # delivered to the awaiting coroutine
                value, ok = exc, False
            with lock:
                job.finished = True
            try:
                job.loop.call_soon_threadsafe(_deliver, job.future, ok, value)
            except RuntimeError:  # loop closed while the job ran
                pass
            job = value = None
            with lock:
                if me in self._retired:
                    self._retired.discard(me)
                    self._threads.discard(me)
                    log.warning("worker %s finished its timed-out call and exits", me.name)
                    return
        with lock:
            self._threads.discard(me)

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn(*args)`` on a worker thread; :class:`CallTimeout` after ``timeout`` seconds."""
        if self._closed:
            raise RuntimeError("worker pool is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = _Job(loop, future, fn, args)
        self._queue.put(job)
        if timeout is None:
            return await future
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._abandon(job)
            raise CallTimeout(f"call did not finish within {timeout:g} s") from None

    def _abandon(self, job: _Job) -> None:
        with self._lock:
            job.cancelled = True
            thread = job.thread
            if thread is None or job.finished or thread in self._retired:
                return
            self._retired.add(thread)
            stuck = len(self._retired)
            if stuck > self.max_stuck:
                log.error("%d worker threads are stuck in handler calls; not replacing %s",
                          stuck, thread.name)
                return
            self._spawn()
        log.warning("worker %s timed out; replaced it (%d stuck)", thread.name, stuck)

    def close(self) -> None:
        """Let idle workers exit; running calls finish (threads are daemons)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)


async def run_in_daemon_thread(fn: Callable[..., Any], *args: Any, name: str = "catkit-loader") -> Any:
    """Run ``fn(*args)`` on a fresh daemon thread (for rare, possibly long calls such as model loads).

    Unlike ``asyncio.to_thread`` this never delays interpreter or event-loop shutdown: a model
    whose ``model_fn`` hangs cannot keep a SIGTERM'd server alive.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def target() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as exc:
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(_deliver, future, ok, value)
        except RuntimeError:  # loop already closed
            pass

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
