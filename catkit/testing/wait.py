"""Polling with a deadline, for tests that wait for something a process or a clock will do.

Owns :func:`wait_until` (blocking) and :func:`wait_until_async` (for coroutines on an event loop).
A test that would otherwise sleep a fixed time and then assert polls the condition instead: it
goes on as soon as the condition holds and fails, naming what it waited for, only after a generous
deadline, so it neither wastes time on an idle machine nor flakes on a loaded one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class _Deadline:
    """``timeout`` s from now on ``clock``; :meth:`check` raises once it has passed."""

    def __init__(self, timeout: float, what: str | None, clock: Callable[[], float]) -> None:
        self.timeout, self.what, self.clock = timeout, what, clock
        self.at = clock() + timeout

    def check(self, last: object) -> None:
        if self.clock() >= self.at:
            raise AssertionError(f"timed out after {self.timeout:g} s waiting for {self.what or 'the condition'} "
                                 f"(last value {last!r})")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, *,
               what: str | None = None) -> T:
    """Call ``predicate`` every ``interval`` s until it returns a truthy value and return that value.

    Raises :class:`AssertionError` (naming ``what``) once ``timeout`` s have passed; the predicate
    is always called at least once, and once more at the deadline. Its exceptions propagate.
    """
    deadline = _Deadline(timeout, what, time.monotonic)
    while not (value := predicate()):
        deadline.check(value)
        time.sleep(interval)
    return value


async def wait_until_async(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.02, *,
                           what: str | None = None) -> T:
    """:func:`wait_until` for a coroutine: sleeps with ``asyncio.sleep`` so the event loop keeps running.

    It returns right after the predicate held, without yielding to the loop again, so the caller's
    next statement still sees the state the predicate saw.
    """
    deadline = _Deadline(timeout, what, asyncio.get_running_loop().time)
    while not (value := predicate()):
        deadline.check(value)
        await asyncio.sleep(interval)
    return value
