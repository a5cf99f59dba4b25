"""The asyncio load generator for SageMaker real-time endpoints (SigV4-signed InvokeEndpoint).

:func:`run_load` / :func:`arun_load` send InvokeEndpoint requests open-loop at a traffic shape's
rate (shapes: :mod:`catkit.whatif.shapes`, re-exported here so ``load.Constant`` etc. keep
working), signed exactly like boto3 (botocore's ``SigV4Auth`` with the session's credentials) and
sent with one keep-alive aiohttp connection pool, so one process drives thousands of requests per
second. It stops at ``duration`` or ``max_requests``, whichever comes first, shows a tqdm progress
bar and returns a :class:`LoadResult` whose ``frame`` has one row per request (time, latency,
status, variant, cold/warm where known). This module also owns :class:`Target` (where requests go,
how they are signed) and :func:`run_coroutine` (blocking run that is safe inside Jupyter).

Time scale (local backend): a shape is written in *emulated* time. At time scale ``S`` one
emulated second lasts ``1/S`` real seconds, so the generator compresses the shape ``S``-fold: it
sends ``S * shape.rate(t)`` requests per real second, and the backend's metrics read
``60 * shape.rate(t)`` invocations per emulated minute - the same numbers as the shape on AWS.
``time_scale="auto"`` asks the local gateway (``/_catkit/info``) and uses 1 on AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catkit.whatif.shapes import (  # re-exported: shapes lived here before catkit.whatif.shapes
    DAY_S,
    SHAPES,
    Clipped,
    Constant,
    Diurnal,
    Ramp,
    Replay,
    Scaled,
    Shape,
    ShapeFactory,
    Spike,
    Step,
    Sum,
    arrival_times,
    as_shape,
    example_workday_traffic,
)

INVOKE_PATH = "/endpoints/{name}/invocations"
DEFAULT_TIMEOUT_S = 70.0  # AWS: containers answer within 60 s; the SDK socket timeout should be 70 s


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


def as_target(session_or_target: Any, endpoint_name: str | None = None) -> Target:
    """A :class:`Target` as given, or one for ``endpoint_name`` built from a Session."""
    if isinstance(session_or_target, Target):
        return session_or_target
    if not endpoint_name:
        raise ValueError("endpoint_name is required when a Session is given")
    return target_for(session_or_target, endpoint_name)


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
    mark_cold(frame)
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


def mark_cold(frame: Any) -> None:
    """Add ``cold`` to a per-request frame: for multi-model requests, True for the first successful
    request of each ``target_model`` (the one that may have loaded it), False for later ones, None
    for failed requests; None throughout when no request named a target model."""
    import pandas as pd

    models = frame["target_model"]
    if not models.notna().any():
        frame["cold"] = None
        return
    ok = frame["status"] == 200
    first = ~frame.loc[ok].duplicated("target_model")
    cold = pd.Series([None] * len(frame), dtype=object, index=frame.index)
    cold.loc[first.index] = first.to_numpy()
    frame["cold"] = cold


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
    target = as_target(session_or_target, endpoint_name)
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


__all__ = [
    "DAY_S",
    "DEFAULT_TIMEOUT_S",
    "INVOKE_PATH",
    "SHAPES",
    "Clipped",
    "Constant",
    "Diurnal",
    "LoadResult",
    "Ramp",
    "Replay",
    "Scaled",
    "Shape",
    "ShapeFactory",
    "Spike",
    "Step",
    "Sum",
    "Target",
    "arrival_times",
    "arun_load",
    "as_shape",
    "as_target",
    "backend_info",
    "example_workday_traffic",
    "mark_cold",
    "run_coroutine",
    "run_load",
    "target_for",
]
