"""Traffic shapes: request rate as a pure function of time, composable, vectorised over numpy.

``shape.rate(t)`` is the request rate (requests per second) at ``t`` seconds after the start of a
run. Shapes compose: ``Diurnal(...) + Spike(...)``, ``2 * shape``, ``shape.clip(max_rate=...)``.
:class:`Constant`, :class:`Ramp`, :class:`Step`, :class:`Spike`, :class:`Diurnal`, :class:`Replay`
(from a CSV of request timestamps or of per-second rates). Shapes that know the time of day
(``Diurnal``) treat ``t = 0`` as midnight UTC of the run's first day. :func:`arrival_times` turns a
shape into the send times of one run. Pure: no I/O except :meth:`Replay.from_csv` reading its file.

The load generator (:mod:`catkit.whatif.load`) sends requests at a shape's rate; the simulator
(:mod:`catkit.whatif.simulate`) reads a shape per second.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DAY_S = 86400.0


class Shape:
    """A traffic shape: ``rate(t)`` requests per second at ``t`` seconds (pure, vectorised).

    Subclasses implement :meth:`_rate` on a float64 array. Shapes add (``a + b``), scale
    (``2 * a``) and clip (``a.clip(max_rate=50)``); rates are never negative.
    """

    def _rate(self, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def rate(self, t: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Requests per second at time(s) ``t`` (seconds since the start of the run)."""
        arr = np.asarray(t, dtype=np.float64)
        out = np.maximum(np.broadcast_to(self._rate(arr), arr.shape).astype(np.float64), 0.0)
        return out

    def per_second(self, duration_s: float) -> np.ndarray:
        """Rate of each whole second ``[i, i+1)`` of a run, sampled at its midpoint ``i + 0.5``
        (exact for per-second replays and for steps on whole seconds)."""
        n = math.ceil(duration_s)
        return self.rate(np.arange(n, dtype=np.float64) + 0.5)

    def expected_requests(self, duration_s: float) -> float:
        """Expected number of requests in ``[0, duration_s)``."""
        return float(self.per_second(duration_s).sum())

    def clip(self, min_rate: float = 0.0, max_rate: float = math.inf) -> Shape:
        """This shape bounded to ``[min_rate, max_rate]``."""
        return Clipped(self, min_rate, max_rate)

    def __add__(self, other: Shape | float) -> Shape:
        return Sum((self, as_shape(other)))

    __radd__ = __add__

    def __mul__(self, factor: float) -> Shape:
        return Scaled(self, float(factor))

    __rmul__ = __mul__

    def describe(self) -> str:
        return repr(self)


def as_shape(x: Shape | float) -> Shape:
    """A shape, or a number turned into a :class:`Constant`."""
    if isinstance(x, Shape):
        return x
    if isinstance(x, int | float):
        return Constant(float(x))
    raise TypeError(f"expected a traffic Shape or a number of requests/s, got {type(x).__name__}")


def _check_rate(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number of requests/s >= 0, got {value!r}")
    return v


@dataclass(frozen=True)
class Constant(Shape):
    """``rps`` requests per second all the time."""

    rps: float

    def __post_init__(self) -> None:
        _check_rate("rps", self.rps)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        return np.full(t.shape, self.rps)


@dataclass(frozen=True)
class Ramp(Shape):
    """Linear from ``start_rps`` (until ``start_s``) to ``end_rps`` (from ``start_s + ramp_s`` on)."""

    start_rps: float
    end_rps: float
    ramp_s: float
    start_s: float = 0.0

    def __post_init__(self) -> None:
        _check_rate("start_rps", self.start_rps)
        _check_rate("end_rps", self.end_rps)
        if not self.ramp_s > 0:
            raise ValueError(f"ramp_s must be > 0 seconds, got {self.ramp_s!r}")

    def _rate(self, t: np.ndarray) -> np.ndarray:
        frac = np.clip((t - self.start_s) / self.ramp_s, 0.0, 1.0)
        return self.start_rps + (self.end_rps - self.start_rps) * frac


@dataclass(frozen=True)
class Step(Shape):
    """``before_rps`` until ``at_s``, then ``after_rps``."""

    before_rps: float
    after_rps: float
    at_s: float

    def __post_init__(self) -> None:
        _check_rate("before_rps", self.before_rps)
        _check_rate("after_rps", self.after_rps)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        return np.where(t < self.at_s, self.before_rps, self.after_rps)


@dataclass(frozen=True)
class Spike(Shape):
    """An extra ``extra_rps`` for ``duration_s`` from ``at_s`` (add it to a base shape).

    ``rise_s`` ramps up (and down) linearly; ``every_s`` repeats the spike periodically.
    """

    at_s: float
    duration_s: float
    extra_rps: float
    rise_s: float = 0.0
    every_s: float | None = None

    def __post_init__(self) -> None:
        _check_rate("extra_rps", self.extra_rps)
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s!r}")
        if self.rise_s < 0 or 2 * self.rise_s > self.duration_s:
            raise ValueError("rise_s must be >= 0 and at most half of duration_s")
        if self.every_s is not None and not self.every_s >= self.duration_s:
            raise ValueError("every_s must be >= duration_s")

    def _rate(self, t: np.ndarray) -> np.ndarray:
        x = t - self.at_s
        if self.every_s is not None:
            x = np.where(x >= 0, np.mod(x, self.every_s), x)
        inside = (x >= 0) & (x < self.duration_s)
        if self.rise_s > 0:
            edge = np.minimum(x, self.duration_s - x) / self.rise_s
            level = np.clip(edge, 0.0, 1.0)
        else:
            level = 1.0
        return np.where(inside, self.extra_rps * level, 0.0)


@dataclass(frozen=True)
class Diurnal(Shape):
    """A daily cycle between ``low_rps`` (at ``peak_hour - 12``) and ``high_rps`` (at ``peak_hour``).

    Cosine-shaped; ``t = 0`` is midnight UTC. ``weekend_factor`` scales Saturdays and Sundays
    (day 0 is ``first_weekday``: 0 = Monday ... 6 = Sunday).
    """

    low_rps: float
    high_rps: float
    peak_hour: float = 14.0
    weekend_factor: float = 1.0
    first_weekday: int = 0

    def __post_init__(self) -> None:
        _check_rate("low_rps", self.low_rps)
        _check_rate("high_rps", self.high_rps)
        if self.high_rps < self.low_rps:
            raise ValueError(f"high_rps ({self.high_rps}) must be >= low_rps ({self.low_rps})")
        if not 0 <= self.first_weekday <= 6:
            raise ValueError("first_weekday is 0 (Monday) .. 6 (Sunday)")

    def _rate(self, t: np.ndarray) -> np.ndarray:
        phase = 2 * np.pi * (t / 3600.0 - self.peak_hour) / 24.0
        mid, amp = (self.high_rps + self.low_rps) / 2, (self.high_rps - self.low_rps) / 2
        r = mid + amp * np.cos(phase)
        if self.weekend_factor != 1.0:
            weekday = (np.floor(t / DAY_S).astype(np.int64) + self.first_weekday) % 7
            r = np.where(weekday >= 5, r * self.weekend_factor, r)
        return r


@dataclass(frozen=True)
class Replay(Shape):
    """Replay recorded traffic: rate ``rates[i]`` from ``starts[i]`` until the next start.

    Build it with :meth:`from_timestamps` (one timestamp per request -> per-bin counts),
    :meth:`from_rates` or :meth:`from_csv`. After the last bin the rate is 0, or the recording
    repeats with ``loop=True``.
    """

    starts: tuple[float, ...]
    rates: tuple[float, ...]
    end_s: float
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.starts or len(self.starts) != len(self.rates):
            raise ValueError("Replay needs as many bin starts as rates, at least one")
        if any(b <= a for a, b in zip(self.starts, self.starts[1:], strict=False)):
            raise ValueError("Replay bin starts must be strictly increasing")
        for r in self.rates:
            _check_rate("replayed rate", r)
        if not self.end_s > self.starts[-1]:
            raise ValueError("Replay end_s must be after the last bin start")

    @classmethod
    def from_rates(cls, rates: Sequence[float], step_s: float = 1.0, loop: bool = False) -> Replay:
        """Rates (requests/s) of consecutive bins of ``step_s`` seconds, starting at t = 0."""
        if not len(rates):
            raise ValueError("Replay.from_rates needs at least one rate")
        starts = tuple(i * float(step_s) for i in range(len(rates)))
        return cls(starts, tuple(float(r) for r in rates), len(rates) * float(step_s), loop)

    @classmethod
    def from_timestamps(cls, timestamps: Iterable[float], bin_s: float = 1.0, loop: bool = False) -> Replay:
        """One timestamp (seconds; any origin) per request: counts per ``bin_s`` bin / ``bin_s``."""
        ts = np.sort(np.asarray(list(timestamps), dtype=np.float64))
        if ts.size == 0:
            raise ValueError("Replay.from_timestamps needs at least one timestamp")
        rel = ts - ts[0]
        nbins = int(rel[-1] // bin_s) + 1
        counts = np.bincount((rel // bin_s).astype(np.int64), minlength=nbins)
        return cls.from_rates((counts / bin_s).tolist(), bin_s, loop)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        time_column: str | None = None,
        rate_column: str | None = None,
        bin_s: float = 1.0,
        loop: bool = False,
    ) -> Replay:
        """Read a CSV with a header row.

        * Per-request timestamps: one column (or ``time_column``) of epoch seconds, ISO-8601 times
          or seconds since start; binned per ``bin_s``.
        * Per-second rates: a ``rate`` / ``rps`` / ``requests_per_second`` column (or
          ``rate_column``), optionally with a time column; each row holds until the next.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"traffic CSV {p} does not exist")
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"traffic CSV {p} has no data rows (a header row is required)")
        cols = list(rows[0].keys())
        lower = {c.lower().strip(): c for c in cols}
        if rate_column is None:
            rate_column = next((lower[k] for k in ("rate", "rps", "requests_per_second") if k in lower), None)
        if time_column is None:
            time_column = next(
                (lower[k] for k in ("time", "timestamp", "t", "seconds", "ts") if k in lower), None
            )
            if time_column is None and rate_column is None:
                time_column = cols[0]
        try:
            times = [_parse_time(r[time_column]) for r in rows] if time_column else None
            if rate_column is None:
                return cls.from_timestamps(times or [], bin_s, loop)
            rates = [float(r[rate_column]) for r in rows]
        except KeyError as e:
            raise ValueError(f"traffic CSV {p} has no column {e.args[0]!r}; columns: {cols}") from None
        except ValueError as e:
            raise ValueError(f"traffic CSV {p}: {e}") from None
        if times is None:
            return cls.from_rates(rates, bin_s, loop)
        t0 = times[0]
        starts = tuple(t - t0 for t in times)
        step = (starts[-1] - starts[-2]) if len(starts) > 1 else bin_s
        return cls(starts, tuple(rates), starts[-1] + step, loop)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        starts = np.asarray(self.starts)
        rates = np.asarray(self.rates)
        x = np.mod(t, self.end_s) if self.loop else t
        idx = np.searchsorted(starts, x, side="right") - 1
        out = rates[np.clip(idx, 0, len(rates) - 1)]
        return np.where((idx < 0) | (x >= self.end_s), 0.0, out)


def _parse_time(text: str) -> float:
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    from datetime import UTC, datetime

    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time (seconds or ISO-8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True)
class Sum(Shape):
    """The sum of shapes (``a + b``)."""

    parts: tuple[Shape, ...]

    def _rate(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros(t.shape)
        for p in self.parts:
            out = out + p.rate(t)
        return out


@dataclass(frozen=True)
class Scaled(Shape):
    """A shape times a constant factor (``2 * a``)."""

    shape: Shape
    factor: float

    def __post_init__(self) -> None:
        _check_rate("factor", self.factor)

    def _rate(self, t: np.ndarray) -> np.ndarray:
        return self.shape.rate(t) * self.factor


@dataclass(frozen=True)
class Clipped(Shape):
    """A shape bounded to ``[min_rate, max_rate]``."""

    shape: Shape
    min_rate: float = 0.0
    max_rate: float = math.inf

    def _rate(self, t: np.ndarray) -> np.ndarray:
        return np.clip(self.shape.rate(t), self.min_rate, self.max_rate)


def arrival_times(
    shape: Shape,
    duration_s: float,
    *,
    max_requests: int | None = None,
    poisson: bool = False,
    seed: int | None = 0,
    resolution_s: float | None = None,
) -> np.ndarray:
    """Send times (seconds from start, in the shape's time) of the requests of one run.

    The cumulative rate ``Λ(t)`` is integrated on a fine grid; request ``k`` goes at
    ``Λ⁻¹(k + 0.5)`` (evenly spaced, the default) or at the points of a Poisson process with
    that intensity (``poisson=True``). At most ``max_requests`` times are returned.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    step = resolution_s or max(min(0.05, duration_s / 1000), duration_s / 2_000_000)
    n = math.ceil(duration_s / step)
    grid = np.linspace(0.0, duration_s, n + 1)
    r = shape.rate(grid)
    cum = np.concatenate(([0.0], np.cumsum((r[1:] + r[:-1]) * 0.5 * np.diff(grid))))
    total = cum[-1]
    if poisson:
        rng = np.random.default_rng(seed)
        expect = int(total + 10 * math.sqrt(total + 1) + 10)
        marks = np.cumsum(rng.exponential(1.0, size=expect))
        marks = marks[marks < total]
    else:
        marks = np.arange(0.5, total, 1.0)
    if max_requests is not None:
        marks = marks[: max(0, int(max_requests))]
    # Λ is non-decreasing; where it is flat (rate 0) interp picks the first grid point.
    keep = np.concatenate(([True], np.diff(cum) > 0))
    return np.interp(marks, cum[keep], grid[keep])


def example_workday_traffic(peak_rps: float = 100.0) -> Shape:
    """An illustrative week of traffic for demos (not a measurement): a daily cycle from 5 % of
    ``peak_rps`` at 02:00 to ``peak_rps`` at 14:00 UTC, weekends at 40 %, and a 20-minute morning
    burst of +60 % at 09:00 (2-minute ramps) every day. ``t = 0`` is Monday 00:00 UTC."""
    base = Diurnal(low_rps=0.05 * peak_rps, high_rps=peak_rps, peak_hour=14.0, weekend_factor=0.4)
    burst = Spike(at_s=9 * 3600.0, duration_s=1200.0, extra_rps=0.6 * peak_rps, rise_s=120.0, every_s=DAY_S)
    return base + burst


ShapeFactory = Callable[..., Shape]
SHAPES: dict[str, ShapeFactory] = {
    "constant": Constant,
    "ramp": Ramp,
    "step": Step,
    "spike": Spike,
    "diurnal": Diurnal,
}
