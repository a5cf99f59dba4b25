"""Instance capacity: the service model the simulator uses, and the saturation test that measures it.

:class:`ServiceModel` describes one endpoint instance as a small queue, JSON serialisable:
``max_rps`` (throughput at saturation), ``workers`` (requests served in parallel, ``c``) and the
latency at low load (``base_p50_ms``, ``base_p99_ms``). Latency versus load follows an M/M/c
queue: at ``λ`` requests/s per instance and ``μ = max_rps / workers``, a request waits with
probability ``C(c, λ/μ)`` (Erlang C) and the wait beyond that is exponential with rate
``cμ - λ``; a latency quantile is the base latency quantile plus the wait quantile. At or above
``max_rps`` the instance is overloaded: requests beyond capacity count as overload and their
latency is the timeout (AWS: 60 s).

:func:`calibrate` measures the curve the way AWS's load-testing guidance does: closed-loop
saturation runs against one instance at growing concurrency (1, 2, 4, ...), recording throughput
and latency percentiles per level, then :meth:`ServiceModel.from_points` fits the model
(``max_rps`` = best throughput, base latency from concurrency 1, ``workers`` by Little's law:
``c ≈ max_rps × mean service time``). AWS's rule of thumb for the target value follows from
it: :meth:`ServiceModel.invocations_target` = ``max_rps × safety × 60``.

Time scale: a calibration measures the instance process in real seconds. On the local backend at
time scale ``S`` an instance serves ``max_rps / S`` requests per *emulated* second; use
:meth:`ServiceModel.in_emulated_time` to simulate what the backend's metrics will show.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from catkit.whatif import window_peak

DEFAULT_LEVELS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class ServiceModel:
    """One instance's capacity and latency-versus-load (see the module docstring)."""

    max_rps: float
    workers: int = 1
    base_p50_ms: float | None = None
    base_p99_ms: float | None = None
    instance_type: str = "ml.m5.xlarge"
    timeout_ms: float = 60_000.0
    source: str = "assumed"
    points: tuple[dict[str, float], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (self.max_rps > 0 and math.isfinite(self.max_rps)):
            raise ValueError(f"max_rps must be a positive number of requests/s, got {self.max_rps!r}")
        if int(self.workers) < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers!r}")
        object.__setattr__(self, "workers", int(self.workers))
        service_ms = 1000.0 * self.workers / self.max_rps
        if self.base_p50_ms is None:
            object.__setattr__(self, "base_p50_ms", service_ms)
        if self.base_p99_ms is None:
            object.__setattr__(self, "base_p99_ms", max(float(self.base_p50_ms or 0), service_ms) * 2.0)
        if not 0 < float(self.base_p50_ms or 0) <= float(self.base_p99_ms or 0):
            raise ValueError("need 0 < base_p50_ms <= base_p99_ms")

    # ------------------------------------------------------------------ queue maths
    @property
    def service_rate(self) -> float:
        """μ: requests per second one worker completes."""
        return self.max_rps / self.workers

    def utilisation(self, rps_per_instance: Any) -> np.ndarray:
        """ρ = λ / max_rps (1 = saturated)."""
        return np.asarray(rps_per_instance, dtype=np.float64) / self.max_rps

    def wait_probability(self, rps_per_instance: Any) -> np.ndarray:
        """Erlang C: probability that a request queues (1 at or beyond saturation).

        Computed through the Erlang B recursion ``B_k = a B_{k-1} / (k + a B_{k-1})``, which stays
        finite for any number of workers, then ``C = B_c / (1 - ρ (1 - B_c))``.
        """
        lam = np.asarray(rps_per_instance, dtype=np.float64)
        c = self.workers
        a = lam / self.service_rate
        rho = a / c
        b = np.ones_like(a)
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = b / (1.0 - rho * (1.0 - b))
        return np.where(rho >= 1.0, 1.0, np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0))

    def latency_ms(self, rps_per_instance: Any, q: float = 0.99) -> np.ndarray:
        """Latency quantile ``q`` (ms) at a per-instance load; the timeout when overloaded."""
        if not 0 < q < 1:
            raise ValueError("q must be between 0 and 1")
        lam = np.asarray(rps_per_instance, dtype=np.float64)
        pw = self.wait_probability(lam)
        free = self.max_rps - lam
        with np.errstate(divide="ignore", invalid="ignore"):
            wait_s = np.where(pw > (1 - q), np.log(pw / (1 - q)) / np.maximum(free, 1e-12), 0.0)
        base = self._base_quantile(q)
        out = base + 1000.0 * wait_s
        return np.where(free <= 0, self.timeout_ms, np.minimum(out, self.timeout_ms))

    def exceed_probability(
        self, rps_per_instance: Any, threshold_ms: float, wait: np.ndarray | None = None
    ) -> np.ndarray:
        """P(latency > threshold_ms) with the base latency at its p99 (conservative). ``wait``: the
        :meth:`wait_probability` of these loads when the caller has it (many thresholds, one load)."""
        lam = np.asarray(rps_per_instance, dtype=np.float64)
        slack_s = (threshold_ms - float(self.base_p99_ms or 0)) / 1000.0
        if slack_s <= 0:
            return np.ones_like(lam)
        pw = self.wait_probability(lam) if wait is None else wait
        free = self.max_rps - lam
        p = pw * np.exp(-np.maximum(free, 0.0) * slack_s)
        return np.where(free <= 0, 1.0, np.clip(p, 0.0, 1.0))

    def concurrency(self, rps_per_instance: Any) -> np.ndarray:
        """Mean requests in an instance (served + queued), Little's law; capped when overloaded."""
        lam = np.asarray(rps_per_instance, dtype=np.float64)
        pw = self.wait_probability(lam)
        free = self.max_rps - lam
        with np.errstate(divide="ignore", invalid="ignore"):
            lq = np.where(free > 0, pw * lam / np.maximum(free, 1e-12), np.inf)
        busy = np.minimum(lam / self.service_rate, self.workers)
        cap = self.workers + self.max_rps * self.timeout_ms / 1000.0
        return np.minimum(busy + lq, cap)

    def peak_concurrency(self, rps_per_instance: Any, window_s: float = 10.0) -> np.ndarray:
        """Expected peak of the in-flight count over a ``window_s`` window (what the local backend
        samples as ConcurrentRequestsPerModel: the peak since the previous 10-second sample), for
        this M/M/c queue started in its stationary state - exact up to ``RHO_EXACT`` of saturation
        (:mod:`catkit.whatif.window_peak`); above it the mean times the peak-to-mean ratio found
        there (ASSUMPTION: the last 2 % of load, where both approach the overload cap). Never below
        the mean nor above the cap.
        """
        lam = np.asarray(rps_per_instance, dtype=np.float64)
        mean = self.concurrency(lam)
        flat_lam = np.atleast_1d(lam).astype(np.float64)
        flat_mean = np.atleast_1d(mean).astype(np.float64)
        cap = self.workers + self.max_rps * self.timeout_ms / 1000.0  # requests an instance holds at most
        table = window_peak.peak_table(float(self.max_rps), int(self.workers), float(self.timeout_ms), float(window_s))
        if table is None:
            out = window_peak.poisson_peak(flat_mean, flat_lam, window_s)
        else:  # exact on the grid; above it the mean in the peak-to-mean ratio at the grid's top
            grid, peaks = table
            top = float(grid[-1])
            ratio = float(peaks[-1]) / max(float(self.concurrency(top)), 1e-12)
            out = np.where(flat_lam <= top, np.interp(flat_lam, grid, peaks), flat_mean * ratio)
        out = np.maximum(np.minimum(out, cap), flat_mean)
        return out.reshape(np.shape(mean)) if np.ndim(mean) else out[0]

    def _base_quantile(self, q: float) -> float:
        # Log-linear between p50 and p99 of the base latency (exact at both points).
        p50, p99 = float(self.base_p50_ms or 0), float(self.base_p99_ms or 0)
        if q <= 0.5:
            return p50
        x = math.log(1 - q) - math.log(0.5)
        span = math.log(0.01) - math.log(0.5)
        return p50 + (p99 - p50) * x / span

    # ------------------------------------------------------------------ conversions
    def invocations_target(self, safety: float = 0.5) -> float:
        """AWS's rule: SageMakerVariantInvocationsPerInstance target = max_rps × safety × 60."""
        if not 0 < safety <= 1:
            raise ValueError("safety must be in (0, 1]")
        return self.max_rps * safety * 60.0

    def concurrency_target(self, safety: float = 0.5, statistic: str = "mean") -> float:
        """A ConcurrentRequestsPerModel target at ``safety`` utilisation: the mean concurrency, or
        with ``statistic="peak"`` the expected 10-second peak (:meth:`peak_concurrency`)."""
        if statistic == "peak":
            return float(self.peak_concurrency(self.max_rps * safety))
        if statistic != "mean":
            raise ValueError(f"statistic is 'mean' or 'peak', got {statistic!r}")
        return float(self.concurrency(self.max_rps * safety))

    def in_emulated_time(self, time_scale: float) -> ServiceModel:
        """The same instance seen on a local backend at ``time_scale`` (rates / S, latencies × S)."""
        s = float(time_scale)
        return replace(
            self,
            max_rps=self.max_rps / s,
            base_p50_ms=float(self.base_p50_ms or 0) * s,
            base_p99_ms=float(self.base_p99_ms or 0) * s,
            timeout_ms=self.timeout_ms,
            source=f"{self.source} (emulated time, scale {s:g})",
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [dict(p) for p in self.points]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceModel:
        d = dict(d)
        d["points"] = tuple(dict(p) for p in d.get("points") or ())
        return cls(**d)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ServiceModel:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_points(
        cls, points: Sequence[dict[str, float]], instance_type: str = "ml.m5.xlarge", source: str = "calibrated"
    ) -> ServiceModel:
        """Fit from saturation points ``{"concurrency", "throughput_rps", "p50_ms", "p99_ms", ...}``."""
        pts = sorted((dict(p) for p in points), key=lambda p: p["concurrency"])
        good = [p for p in pts if p.get("throughput_rps", 0) > 0 and p.get("p50_ms", 0) > 0]
        if not good:
            raise ValueError("no usable calibration point (every level had zero throughput)")
        max_rps = max(p["throughput_rps"] for p in good)
        first = good[0]
        mean_ms = first.get("mean_ms") or first["p50_ms"]
        workers = max(1, round(max_rps * mean_ms / 1000.0))
        p50 = first["p50_ms"]
        p99 = max(first.get("p99_ms", p50), p50)
        return cls(max_rps, workers, p50, p99, instance_type, source=source, points=tuple(pts))

    def curve(self, points: int = 50) -> Any:
        """DataFrame of utilisation, load, latency p50/p99 and concurrency over 0..99 % load."""
        import pandas as pd

        lam = np.linspace(0, 0.99 * self.max_rps, points)
        return pd.DataFrame(
            {
                "rps": lam,
                "utilisation": lam / self.max_rps,
                "p50_ms": self.latency_ms(lam, 0.5),
                "p99_ms": self.latency_ms(lam, 0.99),
                "concurrency": self.concurrency(lam),
            }
        )

    def plot(self, ax: Any = None) -> Any:
        """Latency p50/p99 versus throughput (model line, calibration points as markers)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        c = self.curve()
        ax.plot(c["rps"], c["p50_ms"], label="model p50")
        ax.plot(c["rps"], c["p99_ms"], label="model p99")
        if self.points:
            ax.scatter([p["throughput_rps"] for p in self.points], [p["p50_ms"] for p in self.points],
                       marker="o", label="measured p50")
            ax.scatter([p["throughput_rps"] for p in self.points], [p["p99_ms"] for p in self.points],
                       marker="x", label="measured p99")
        ax.axvline(self.max_rps, color="grey", linestyle=":", label="max_rps")
        ax.set_xlabel("requests/s per instance")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{self.instance_type}: {self.max_rps:.1f} req/s, {self.workers} worker(s)")
        ax.legend(fontsize="small")
        return ax.figure


# ====================================================================== saturation test
async def _level(target: Any, concurrency: int, seconds: float, payload: bytes, content_type: str,
                 timeout_s: float) -> dict[str, float]:
    """Closed loop: ``concurrency`` clients send back-to-back for ``seconds`` (real)."""
    import aiohttp

    from catkit.whatif.load import _error_code, _Signer

    signer = _Signer(target)
    url = target.invoke_url
    lat: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        start = time.perf_counter()
        stop = start + seconds

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                headers = signer.headers(0, payload, content_type, None, None)
                t0 = time.perf_counter()
                try:
                    async with http.post(url, data=payload, headers=headers) as r:
                        body = await r.read()
                        if r.status != 200:
                            errors += 1
                            _error_code(r.status, r.headers, body)
                            continue
                except (aiohttp.ClientError, OSError, TimeoutError):
                    errors += 1
                    continue
                lat.append((time.perf_counter() - t0) * 1000.0)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    arr = np.asarray(lat) if lat else np.asarray([math.nan])
    return {
        "concurrency": float(concurrency),
        "requests": float(len(lat)),
        "errors": float(errors),
        "seconds": elapsed,
        "throughput_rps": len(lat) / elapsed if elapsed > 0 else 0.0,
        "mean_ms": float(np.mean(arr)),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
    }


def calibrate(
    session_or_target: Any,
    endpoint_name: str | None = None,
    *,
    levels: Sequence[int] = DEFAULT_LEVELS,
    seconds_per_level: float = 5.0,
    payload: bytes | str = b"{}",
    content_type: str = "application/json",
    instance_type: str | None = None,
    stop_when_flat: float = 0.05,
    timeout_s: float = 70.0,
    progress: bool = True,
) -> ServiceModel:
    """Saturation test against ONE instance; returns the fitted :class:`ServiceModel`.

    Point it at an endpoint with a single instance (AWS's guidance: load-test one instance, then
    set the target value from its maximum throughput). Each level runs ``seconds_per_level`` real
    seconds of closed-loop traffic at that concurrency; levels stop early once throughput grows
    less than ``stop_when_flat`` (5 %) while p50 latency rises (saturated). The measured points
    are kept in ``model.points``.
    """
    from catkit.whatif.load import Target, as_target

    target = as_target(session_or_target, endpoint_name)
    if instance_type is None and not isinstance(session_or_target, Target):
        instance_type = _instance_type(session_or_target, target.endpoint_name)
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    if not levels or any(int(c) < 1 for c in levels):
        raise ValueError("levels must be concurrencies >= 1")
    points: list[dict[str, float]] = []
    from catkit.progress import step_bar

    bar = step_bar(len(levels), f"calibrate {target.endpoint_name}", unit="level", enabled=progress)

    async def run_all() -> None:
        for c in levels:
            p = await _level(target, int(c), seconds_per_level, body, content_type, timeout_s)
            points.append(p)
            bar.set_postfix_str(
                f"{int(c)} clients: {p['throughput_rps']:.1f} req/s, p99 {p['p99_ms']:.1f} ms, "
                f"{int(p['errors'])} errors", refresh=False)
            bar.update(1)
            if len(points) >= 2:
                prev, cur = points[-2], points[-1]
                flat = cur["throughput_rps"] < prev["throughput_rps"] * (1 + stop_when_flat)
                if flat and cur["p50_ms"] > prev["p50_ms"]:
                    break

    from catkit.whatif.load import run_coroutine

    try:
        run_coroutine(run_all())
    finally:
        if bar.n < bar.total:  # stopped early: saturated before the last level
            bar.total = bar.n
            bar.refresh()
        bar.close()
    where = f"calibrated against {target.endpoint_name} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    return ServiceModel.from_points(points, instance_type or "ml.m5.xlarge", source=where)


def _instance_type(session: Any, endpoint_name: str) -> str | None:
    try:
        desc = session.sagemaker.describe_endpoint(EndpointName=endpoint_name)
        config = session.sagemaker.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
        variants = config.get("ProductionVariants") or []
        counts = [v.get("CurrentInstanceCount") for v in desc.get("ProductionVariants", [])]
        if counts and counts[0] and counts[0] > 1:
            import warnings

            warnings.warn(
                f"endpoint {endpoint_name} has {counts[0]} instances; calibration measures the whole "
                "endpoint - point it at a one-instance endpoint to measure one instance",
                stacklevel=3,
            )
        return variants[0].get("InstanceType") if variants else None
    except Exception:
        return None
