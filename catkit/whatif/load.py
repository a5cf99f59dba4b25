"""Traffic shapes and the asyncio load generator for SageMaker real-time endpoints.

This module owns two ideas:

* **Traffic shapes** - pure functions of time: ``shape.rate(t)`` is the request rate (requests per
  second) at ``t`` seconds after the start of a run, vectorised over numpy arrays. Shapes compose:
  ``Diurnal(...) + Spike(...)``, ``2 * shape``, ``shape.clip(max_rate=...)``. :class:`Constant`,
  :class:`Ramp`, :class:`Step`, :class:`Spike`, :class:`Diurnal`, :class:`Replay` (from a CSV of
  request timestamps or of per-second rates). Shapes that know the time of day (``Diurnal``) treat
  ``t = 0`` as midnight UTC of the run's first day.
* **The load generator** - :func:`run_load` / :func:`arun_load` send InvokeEndpoint requests
  open-loop at the shape's rate, signed exactly like boto3 (botocore's ``SigV4Auth`` with the
  session's credentials) and sent with one keep-alive aiohttp connection pool, so one process
  drives thousands of requests per second. It stops at ``duration`` or ``max_requests``, whichever
  comes first, shows a tqdm progress bar and returns a :class:`LoadResult` whose ``frame`` has
  one row per request (time, latency, status, variant, cold/warm where known).

Time scale (local backend): a shape is written in *emulated* time. At time scale ``S`` one
emulated second lasts ``1/S`` real seconds, so the generator compresses the shape ``S``-fold: it
sends ``S * shape.rate(t)`` requests per real second, and the backend's metrics read
``60 * shape.rate(t)`` invocations per emulated minute - the same numbers as the shape on AWS.
``time_scale="auto"`` asks the local gateway (``/_catkit/info``) and uses 1 on AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DAY_S = 86400.0
INVOKE_PATH = "/endpoints/{name}/invocations"
DEFAULT_TIMEOUT_S = 70.0  # AWS: containers answer within 60 s; the SDK socket timeout should be 70 s


# ====================================================================== traffic shapes
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


# ====================================================================== load generator
@dataclass
class Target:
    """Where requests go and how they are signed (built by :func:`target_for` from a Session)."""

    url: str  # runtime base URL, e.g. https://runtime.sagemaker.us-east-1.amazonaws.com
    region: str
    credentials: Any  # botocore Credentials (or None: unsigned, for tests against a plain server)
    endpoint_name: str
    local: bool = False

    @property
    def invoke_url(self) -> str:
        return self.url.rstrip("/") + INVOKE_PATH.format(name=urllib.parse.quote(self.endpoint_name, safe=""))


def target_for(session: Any, endpoint_name: str) -> Target:
    """A :class:`Target` for ``endpoint_name`` using ``session``'s runtime client and credentials."""
    client = session.runtime
    boto = getattr(session, "boto_session", None)
    creds = boto.get_credentials() if boto is not None else None
    if creds is None:
        raise RuntimeError(
            "No AWS credentials for signing InvokeEndpoint requests; configure credentials (or use "
            "Session(backend='local'))."
        )
    url = client.meta.endpoint_url
    return Target(url, client.meta.region_name, creds, endpoint_name, local=_is_loopback(url))


def _is_loopback(url: str) -> bool:
    return (urllib.parse.urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def backend_info(url: str) -> dict[str, Any] | None:
    """``/_catkit/info`` of a local gateway (time scale, emulated now), or None."""
    if not _is_loopback(url):
        return None
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_catkit/info", timeout=3.0) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


class _Signer:
    """SigV4 headers exactly as boto3 sends InvokeEndpoint; cached per payload and second."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._cache: dict[tuple[int, str | None, str | None, int], dict[str, str]] = {}
        self._auth = None
        if target.credentials is not None:
            from botocore.auth import SigV4Auth

            frozen = target.credentials.get_frozen_credentials()
            from botocore.credentials import Credentials

            self._auth = SigV4Auth(Credentials(frozen.access_key, frozen.secret_key, frozen.token),
                                   "sagemaker", target.region)

    def headers(self, payload_id: int, body: bytes, content_type: str, target_model: str | None,
                accept: str | None) -> dict[str, str]:
        second = int(time.time())
        key = (payload_id, target_model, accept, second)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if len(self._cache) > 4096:
            self._cache.clear()
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if target_model:
            headers["X-Amzn-SageMaker-Target-Model"] = target_model
        if self._auth is not None:
            from botocore.awsrequest import AWSRequest

            req = AWSRequest(method="POST", url=self.target.invoke_url, data=body, headers=headers)
            self._auth.add_auth(req)
            headers = {k: v for k, v in req.headers.items()}
        self._cache[key] = headers
        return headers


@dataclass
class LoadResult:
    """Outcome of a load run. ``frame`` has one row per request, in send order:

    ``time`` (s since start, the shape's time; emulated on the local backend), ``timestamp``
    (epoch s, emulated on the local backend), ``sent_delay_ms`` (how late the request left
    because ``max_in_flight`` was reached), ``latency_ms`` (real milliseconds, client side),
    ``status`` (HTTP status; 0 = connection error/timeout), ``error`` (AWS error code or
    exception name, "" when OK), ``variant`` (x-Amzn-Invoked-Production-Variant), ``target_model``
    and ``cold`` (multi-model only: True for the first successful request of a model in this run,
    the one that may have loaded it; None when unknown).
    """

    frame: Any
    endpoint_name: str
    time_scale: float
    start_timestamp: float
    real_seconds: float
    shape: Shape | None = None
    planned: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.frame)

    @property
    def ok(self) -> int:
        return int((self.frame["status"] == 200).sum())

    @property
    def throughput(self) -> float:
        """Requests completed per real second."""
        return self.requests / self.real_seconds if self.real_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Counts, error codes, real throughput and latency percentiles (ms) of successful calls."""
        f = self.frame
        good = f.loc[f["status"] == 200, "latency_ms"]
        q = good.quantile([0.5, 0.9, 0.99]).tolist() if len(good) else [math.nan] * 3
        return {
            "endpoint": self.endpoint_name,
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(f.loc[f["error"] != "", "error"].value_counts()),
            "real_seconds": round(self.real_seconds, 3),
            "requests_per_real_second": round(self.throughput, 1),
            "time_scale": self.time_scale,
            "p50_ms": q[0],
            "p90_ms": q[1],
            "p99_ms": q[2],
        }

    def timeline(self, bucket_s: float = 60.0) -> Any:
        """Requests, errors and latency p50/p99 per ``bucket_s`` of the shape's time."""
        import pandas as pd

        f = self.frame.copy()
        f["bucket"] = (f["time"] // bucket_s) * bucket_s
        g = f.groupby("bucket")
        out = pd.DataFrame(
            {
                "requests": g.size(),
                "errors": g["error"].apply(lambda s: int((s != "").sum())),
                "p50_ms": g["latency_ms"].quantile(0.5),
                "p99_ms": g["latency_ms"].quantile(0.99),
            }
        )
        out["rate"] = out["requests"] / bucket_s
        return out


def _payloads(payload: Any) -> list[bytes]:
    if isinstance(payload, bytes | bytearray):
        return [bytes(payload)]
    if isinstance(payload, str):
        return [payload.encode()]
    if isinstance(payload, Sequence):
        items = [bytes(p) if isinstance(p, bytes | bytearray) else str(p).encode() for p in payload]
        if not items:
            raise ValueError("payload list is empty")
        return items
    raise TypeError("payload must be bytes, str or a list of them")


def _error_code(status: int, headers: Any, body: bytes) -> str:
    code = headers.get("x-amzn-ErrorType") or headers.get("X-Amzn-ErrorType") or ""
    if code:
        return code.split(":")[0]
    with contextlib.suppress(ValueError, AttributeError):
        doc = json.loads(body)
        code = doc.get("__type") or doc.get("code") or doc.get("Code") or ""
        if code:
            return str(code).split("#")[-1]
    return f"HTTP{status}"


async def arun_load(
    target: Target,
    shape: Shape | float,
    *,
    duration_s: float,
    max_requests: int | None = None,
    time_scale: float | str = "auto",
    payload: Any = b"{}",
    content_type: str = "application/json",
    accept: str | None = None,
    target_models: Sequence[str] | None = None,
    max_in_flight: int = 256,
    poisson: bool = False,
    seed: int | None = 0,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: bool = True,
) -> LoadResult:
    """Send InvokeEndpoint requests at ``shape``'s rate for ``duration_s`` (shape time); see :func:`run_load`."""
    import aiohttp
    import pandas as pd

    shape = as_shape(shape)
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be >= 1")
    info = backend_info(target.url) if target.local else None
    info_at = time.monotonic()
    if time_scale == "auto":
        scale = float(info.get("time_scale") or 1.0) if info else 1.0
    else:
        scale = float(time_scale)
        if not scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
    plan = arrival_times(shape, duration_s, max_requests=max_requests, poisson=poisson, seed=seed)
    n = len(plan)
    bodies = _payloads(payload)
    models = list(target_models or [])
    signer = _Signer(target)
    url = target.invoke_url

    sent_delay = np.zeros(n)
    latency = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int32)
    errors: list[str] = [""] * n
    variants: list[str] = [""] * n
    done_count = 0

    bar = None
    if progress:
        with contextlib.suppress(ImportError):
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=f"load {target.endpoint_name}", unit="req")

    sem = asyncio.Semaphore(max_in_flight)
    connector = aiohttp.TCPConnector(limit=max_in_flight, keepalive_timeout=30)
    tmo = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=tmo, auto_decompress=False) as http:

        async def one(i: int) -> None:
            nonlocal done_count
            k = i % len(bodies)
            model = models[i % len(models)] if models else None
            body = bodies[k]
            headers = signer.headers(k, body, content_type, model, accept)
            t0 = time.perf_counter()
            try:
                async with http.post(url, data=body, headers=headers) as r:
                    data = await r.read()
                    status[i] = r.status
                    if r.status == 200:
                        variants[i] = r.headers.get("x-Amzn-Invoked-Production-Variant", "")
                    else:
                        errors[i] = _error_code(r.status, r.headers, data)
            except TimeoutError:
                errors[i] = "Timeout"
            except (aiohttp.ClientError, OSError) as e:
                errors[i] = type(e).__name__
            finally:
                latency[i] = (time.perf_counter() - t0) * 1000.0
                sem.release()
                done_count += 1

        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        real_start = loop.time()
        # The run's t = 0 in the backend's (emulated) time: its clock when asked, moved on to now.
        if info and info.get("now"):
            start_ts = float(info["now"]) + (time.monotonic() - info_at) * scale
        else:
            start_ts = time.time()
        i = 0
        last_bar = 0
        while i < n:
            now = loop.time() - real_start
            due = plan[i] / scale
            if due > now:
                await asyncio.sleep(min(due - now, 0.25))
                if bar is not None and done_count != last_bar:
                    bar.update(done_count - last_bar)
                    last_bar = done_count
                continue
            # Everything due by now goes out (bounded by max_in_flight).
            while i < n and plan[i] / scale <= now:
                await sem.acquire()
                sent_delay[i] = max(0.0, (loop.time() - real_start) - plan[i] / scale) * 1000.0
                task = asyncio.ensure_future(one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if bar is not None and done_count != last_bar:
                bar.update(done_count - last_bar)
                last_bar = done_count
            await asyncio.sleep(0)
        while tasks:
            await asyncio.wait(set(tasks), timeout=0.25)
            if bar is not None and done_count != last_bar:
                bar.update(done_count - last_bar)
                last_bar = done_count
        real_seconds = loop.time() - real_start
    if bar is not None:
        bar.update(done_count - last_bar)
        bar.close()

    frame = pd.DataFrame(
        {
            "time": plan,
            "timestamp": start_ts + plan,
            "sent_delay_ms": sent_delay,
            "latency_ms": latency,
            "status": status,
            "error": errors,
            "variant": variants,
            "target_model": [models[i % len(models)] if models else None for i in range(n)],
        }
    )
    if models:
        ok = frame["status"] == 200
        first = ~frame.loc[ok].duplicated("target_model")
        cold = pd.Series([None] * n, dtype=object)
        cold.loc[first.index] = first.to_numpy()
        frame["cold"] = cold
    else:
        frame["cold"] = None
    return LoadResult(
        frame=frame,
        endpoint_name=target.endpoint_name,
        time_scale=scale,
        start_timestamp=start_ts,
        real_seconds=real_seconds,
        shape=shape,
        planned=n,
        meta={"url": url, "max_in_flight": max_in_flight, "poisson": poisson},
    )


def run_load(
    session_or_target: Any,
    endpoint_name: str | None = None,
    shape: Shape | float = 1.0,
    *,
    duration_s: float,
    **kwargs: Any,
) -> LoadResult:
    """Drive an endpoint with a traffic shape; blocks until done (safe inside Jupyter).

    ``session_or_target``: a :class:`catkit.Session` (plus ``endpoint_name``) or a :class:`Target`.
    ``shape``: a :class:`Shape` or a constant rate (requests/s in the shape's, i.e. emulated, time).
    ``duration_s``: length of the run in the shape's time (real seconds = ``duration_s / time_scale``).
    Other keywords (see :func:`arun_load`): ``max_requests``, ``time_scale`` ("auto" = the local
    backend's scale, 1 on AWS), ``payload`` (bytes/str or a list cycled through),
    ``content_type``, ``accept``, ``target_models`` (multi-model: cycled TargetModel values),
    ``max_in_flight`` (open-loop concurrency cap), ``poisson``, ``seed``, ``timeout_s``, ``progress``.

    Example::

        shape = load.Diurnal(low_rps=2, high_rps=20) + load.Spike(at_s=3600, duration_s=300, extra_rps=30)
        result = load.run_load(session, "my-endpoint", shape, duration_s=2 * 3600)
        result.frame.head(); result.summary()
    """
    if isinstance(session_or_target, Target):
        target = session_or_target
    else:
        if not endpoint_name:
            raise ValueError("endpoint_name is required when a Session is given")
        target = target_for(session_or_target, endpoint_name)
    return run_coroutine(arun_load(target, shape, duration_s=duration_s, **kwargs))


def run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion; inside a running event loop (Jupyter) in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    th = threading.Thread(target=runner, name="catkit-load", daemon=True)
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


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
