"""A daemon thread that calls a function every few seconds until stopped.

Used by the notebook-facing helpers that poll or publish in the background
(:class:`catkit.metrics.MetricPublisher`, :class:`catkit.notebook.widgets.ScalingPanel`). Never
started implicitly; :meth:`PeriodicThread.stop` wakes the thread at once and joins it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class PeriodicThread(threading.Thread):
    """Call ``fn()`` every ``interval`` seconds (first call at once when ``immediately``, else after
    one interval) until :meth:`stop`. ``fn`` handles its own errors: one that escapes ends the thread."""

    def __init__(self, fn: Callable[[], object], interval: float, *, name: str, immediately: bool = False) -> None:
        super().__init__(name=name, daemon=True)
        self.fn = fn
        self.interval = interval
        self.immediately = immediately
        self._stopped = threading.Event()

    def run(self) -> None:
        if self.immediately and not self._stopped.is_set():
            self.fn()
        while not self._stopped.wait(self.interval):
            self.fn()

    def stop(self) -> None:
        """Ask the thread to end and wait until it has (from ``fn`` itself: ends after this call)."""
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
