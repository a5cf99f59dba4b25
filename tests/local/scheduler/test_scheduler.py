"""The backend's one scheduler: aligned periods, a fixed order at equal times, failures, catching up."""

from __future__ import annotations

import asyncio

import pytest

from catkit.local.clock import FakeClock
from catkit.local.scheduler import MAX_BEHIND_PERIODS, Scheduler

T0 = 1_700_000_003.0  # 3 s past a 10-second boundary


def run(coro):
    return asyncio.run(coro)


def test_jobs_are_aligned_to_their_period_and_ordered_at_equal_times():
    clock = FakeClock(T0)
    s = Scheduler(clock)
    calls: list[tuple[str, float]] = []
    s.every("scale", 10, lambda now: calls.append(("scale", now)), order=10)
    s.every("sample", 10, lambda now: calls.append(("sample", now)), order=0)
    s.every("minute", 60, lambda now: calls.append(("minute", now)), order=5)
    assert [j.due for j in s.jobs] == [T0 + 7, T0 + 7, 1_700_000_040.0]

    async def go():
        for t in (T0 + 7, T0 + 17, T0 + 37):
            clock._now = t
            await s.run_due(t)

    run(go())
    b = T0 + 7  # 1_700_000_010
    assert calls == [
        ("sample", b), ("scale", b),
        ("sample", b + 10), ("scale", b + 10),
        # at b + 30 the 10-second jobs are 10 s late: they run once for b + 20 (and catch up at
        # the next call); the minute job is due exactly then, and runs after them
        ("sample", b + 20), ("scale", b + 20), ("minute", b + 30),
    ]


def test_run_due_runs_each_due_job_once_and_async_jobs_are_awaited():
    clock = FakeClock(T0)
    s = Scheduler(clock)
    seen = []

    async def job(now):
        await asyncio.sleep(0)
        seen.append(now)

    s.every("a", 10, job)
    assert run(s.run_due(T0)) == []  # nothing due yet
    assert run(s.run_due(T0 + 7)) == ["a"]
    assert seen == [T0 + 7]


def test_a_failing_job_is_logged_and_runs_again(caplog):
    clock = FakeClock(T0)
    s = Scheduler(clock)
    n = []

    def boom(now):
        n.append(now)
        raise RuntimeError("boom")

    job = s.every("boom", 10, boom)
    run(s.run_due(T0 + 7))
    run(s.run_due(T0 + 17))
    assert len(n) == 2 and job.failures == 2 and job.runs == 2
    assert "periodic job boom failed" in caplog.text


def test_far_behind_skips_missed_runs_instead_of_replaying_them():
    clock = FakeClock(T0)
    s = Scheduler(clock)
    seen = []
    job = s.every("a", 10, seen.append)
    late = T0 + 7 + (MAX_BEHIND_PERIODS + 5) * 10  # a suspended laptop wakes up
    run(s.run_due(late))
    assert seen == [T0 + 7]  # the overdue run happens once ...
    assert job.due == (late // 10 + 1) * 10  # ... and the next one is the next boundary


def test_duplicate_names_and_bad_periods_are_refused():
    s = Scheduler(FakeClock(T0))
    s.every("a", 10, lambda now: None)
    with pytest.raises(ValueError, match="already scheduled"):
        s.every("a", 10, lambda now: None)
    with pytest.raises(ValueError, match="period"):
        s.every("b", 0, lambda now: None)


def test_run_loop_follows_the_clock_until_cancelled():
    clock = FakeClock(T0)
    s = Scheduler(clock)
    seen = []
    s.every("a", 10, seen.append, order=1)
    s.every("b", 30, lambda now: seen.append(("b", now)), order=0)

    async def go():
        task = asyncio.ensure_future(s.run())
        while len(seen) < 6:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(go())
    b = T0 + 7  # a multiple of 10 and of 30: both due, "b" first (lower order)
    assert seen[:6] == [("b", b), b, b + 10, b + 20, ("b", b + 30), b + 30]
