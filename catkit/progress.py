"""Progress bars for the helpers' waits and long runs (tqdm: a widget in Jupyter, text elsewhere).

:class:`StatusBar` shows *what* is being waited for - an endpoint's status (``Creating`` ->
``InService``) and the time so far - instead of a count of polls; :func:`step_bar` counts the
steps of a run (calibration levels); :func:`wait_on_clock` waits a number of seconds on the
service's clock (``session.now()``: the emulated clock of the local backend, the wall clock on
AWS) with a bar, for the moments a tutorial has to let time pass (an alarm window, a cooldown).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

_STATUS_FORMAT = "{desc} {bar} [{elapsed}{postfix}]"


class _Clock(Protocol):
    def now(self) -> Any: ...


def _tqdm(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(**kwargs)


class StatusBar:
    """A one-step bar that shows a status text: empty while waiting, full once done.

    Created lazily on the first :meth:`show`, so the bar's first text (also the fallback a saved
    notebook keeps) is a real status, not an empty line. ``enabled=False`` shows nothing.
    """

    def __init__(self, desc: str, *, enabled: bool = True) -> None:
        self.desc = desc
        self.enabled = enabled
        self.status: str | None = None
        self._bar: Any = None

    def _ensure(self) -> Any:
        if self._bar is None and self.enabled:
            self._bar = _tqdm(total=1, desc=self.desc, bar_format=_STATUS_FORMAT, postfix=self.status, leave=True)
        return self._bar

    def show(self, status: str) -> None:
        """Show ``status`` (only redraws when it changed, and to advance the elapsed time)."""
        self.status = status
        bar = self._ensure()
        if bar is not None:
            bar.set_postfix_str(status, refresh=True)

    def done(self, status: str) -> None:
        """Fill the bar and show the final ``status``."""
        self.show(status)
        if self._bar is not None:
            self._bar.update(1 - self._bar.n)

    def fail(self, status: str) -> None:
        """Show ``status`` on a bar marked as failed (red in Jupyter)."""
        self.show(status)
        if self._bar is not None and hasattr(self._bar, "colour"):
            self._bar.colour = "#c62828"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> StatusBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def step_bar(total: int, desc: str, *, unit: str = "step", enabled: bool = True) -> Any:
    """A tqdm bar over ``total`` steps (``set_postfix_str`` shows the last step's result)."""
    return _tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=True)


def wait_on_clock(
    session: _Clock,
    seconds: float,
    *,
    progress: bool = True,
    desc: str = "waiting",
    poll: float = 0.2,
    timeout: float | None = None,
) -> float:
    """Wait until ``session.now()`` has moved ``seconds`` on; returns the seconds it moved.

    On the local backend ``session.now()`` is the emulated clock (``time_scale`` times faster than
    real time), on AWS the wall clock, so "let 5 minutes pass" means the same to the service in
    both places. The bar counts the service's seconds. ``timeout`` (real seconds, default
    ``seconds + 60``) bounds the wait if the clock stops (a stopped backend): then TimeoutError.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    limit = seconds + 60.0 if timeout is None else timeout
    started_real = time.monotonic()
    start = session.now()
    bar = step_bar(round(seconds), desc, unit="s", enabled=progress)
    moved = 0.0
    try:
        while True:
            moved = (session.now() - start).total_seconds()
            bar.update(max(0, min(int(moved), bar.total) - bar.n))
            if moved >= seconds:
                return moved
            if time.monotonic() - started_real > limit:
                raise TimeoutError(
                    f"the service clock moved {moved:.0f} of {seconds:.0f} s in {limit:.0f} real seconds"
                )
            time.sleep(poll)
    finally:
        bar.close()


__all__ = ["StatusBar", "step_bar", "wait_on_clock"]
