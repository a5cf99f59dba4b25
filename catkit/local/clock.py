"""The local backend's one clock: emulated epoch seconds that can run faster than real time.

With ``time_scale`` S, one emulated second lasts 1/S real seconds. Provisioning delays, metric
periods, alarm evaluation and cooldowns all read this clock, so a 15-minute scale-in plays out in
15 real seconds at S=60. Emulated time is monotonic and continues from ``start`` (epoch seconds).
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Emulated wall clock. ``now()`` is epoch seconds in emulated time."""

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)
        self._start_emulated = time.time() if start is None else float(start)
        self._start_real = time.monotonic()

    def now(self) -> float:
        """Current emulated time, epoch seconds."""
        return self._start_emulated + (time.monotonic() - self._start_real) * self.time_scale

    def rebase(self, start: float) -> None:
        """Let emulated time continue from ``start`` (epoch seconds) now - a reset of the backend,
        which has dropped everything that held emulated timestamps."""
        self._start_emulated = float(start)
        self._start_real = time.monotonic()

    def real_seconds(self, emulated_seconds: float) -> float:
        """How many real seconds an emulated duration lasts."""
        return max(0.0, emulated_seconds) / self.time_scale

    def emulated_seconds(self, real_seconds: float) -> float:
        """How many emulated seconds a real duration covers."""
        return max(0.0, real_seconds) * self.time_scale

    async def sleep(self, emulated_seconds: float) -> None:
        """Sleep for an emulated duration."""
        await asyncio.sleep(self.real_seconds(emulated_seconds))

    async def sleep_until(self, emulated_timestamp: float) -> None:
        """Sleep until the emulated clock reaches ``emulated_timestamp``."""
        await asyncio.sleep(self.real_seconds(emulated_timestamp - self.now()))


class FakeClock(Clock):
    """A clock tests move by hand; ``sleep`` advances it instantly."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        super().__init__(1.0, start)
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def rebase(self, start: float) -> None:
        self._now = float(start)

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, emulated_seconds: float) -> None:
        self._now += max(0.0, emulated_seconds)
        await asyncio.sleep(0)

    async def sleep_until(self, emulated_timestamp: float) -> None:
        self._now = max(self._now, emulated_timestamp)
        await asyncio.sleep(0)
