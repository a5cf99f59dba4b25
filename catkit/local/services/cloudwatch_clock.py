"""Clients on the wall clock, a backend on an emulated one: now-anchored CloudWatch times.

The local backend's clock is the wall clock at time scale 1 (the default of ``catkit local
start``, ``catkit.use_local()``, ``catkit.Session(backend="local")`` and the pytest plugin), so code
that asks CloudWatch for ``datetime.now() - 60 min`` .. ``datetime.now()`` gets what AWS would give.
With a time scale above 1 (opted into for demos), or after a scaled run left the clock ahead,
emulated time runs ahead of the wall clock. Once it is at least an hour ahead (at time scale 60,
after one real minute), a time a request gives that is *anchored to the wall clock's now* - within
five minutes of it - is read as relative to the emulated now: GetMetricStatistics' and GetMetricData's StartTime/EndTime
and PutMetricData's Timestamps move by the clock offset, and the datapoint timestamps of such an
answer move back, so the client's own checks (``start <= t <= end``) hold. "The last hour" is then
the last emulated hour. Times anchored to the emulated clock (``catkit.Session.now()``, the
``now`` of ``/_catkit/info``, timestamps the backend returned) are taken as they are; with the
clocks less than an hour apart nothing is moved (a time near both clocks is ambiguous), so a
wall-clock client of a freshly started scaled backend can miss the last few emulated minutes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

from catkit.timeconv import to_epoch

ANCHOR_LIMIT_S = 300.0  # a wall-anchored time lies within this of the wall clock's now
MIN_OFFSET_S = 3600.0  # clocks closer than this are not told apart


def anchor_shift(t: float, emulated_now: float, wall_now: float | None = None) -> float:
    """Seconds to add to time ``t`` of a request: the emulated clock's lead over the wall clock if
    ``t`` is anchored to the wall clock (see the module docstring), else 0."""
    wall_now = time.time() if wall_now is None else wall_now
    offset = emulated_now - wall_now
    if abs(offset) < MIN_OFFSET_S:
        return 0.0
    if abs(t - wall_now) <= ANCHOR_LIMIT_S:
        return offset
    return 0.0


def window(params: Mapping[str, Any], now: Callable[[], float]) -> tuple[float, float, float]:
    """``(start, end, shift)``: a request's StartTime/EndTime in emulated time, and the shift
    applied (0 unless the window ends at the wall clock's now)."""
    start, end = to_epoch(params["StartTime"]), to_epoch(params["EndTime"])
    shift = anchor_shift(end, now())
    return start + shift, end + shift, shift


def shift_back(value: Any, shift: float) -> Any:
    """A response timestamp (datetime or epoch) moved back into the caller's frame."""
    if not shift:
        return value
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=shift)
    return value - shift


def anchor_metric_data(params: dict[str, Any], now: Callable[[], float]) -> None:
    """PutMetricData: move each wall-anchored Timestamp into emulated time (in place)."""
    emulated_now, wall_now = now(), time.time()
    if abs(emulated_now - wall_now) < MIN_OFFSET_S:
        return
    for key in ("MetricData",):
        for datum in params.get(key) or []:
            if datum.get("Timestamp") is not None:
                t = to_epoch(datum["Timestamp"])
                shift = anchor_shift(t, emulated_now, wall_now)
                if shift:
                    datum["Timestamp"] = dt.datetime.fromtimestamp(t + shift, dt.UTC)
    for entity in params.get("EntityMetricData") or []:
        anchor_metric_data(entity, now)


__all__ = ["ANCHOR_LIMIT_S", "anchor_metric_data", "anchor_shift", "shift_back", "window"]
