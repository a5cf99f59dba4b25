"""Load that outgrows one machine: catkit's traffic shapes run by Locust, master and workers.

:mod:`catkit.whatif.load` drives an endpoint from one process. Real load tests against AWS can need
more clients than one laptop has, so the same shapes also run as a Locust test
(:mod:`catkit.whatif.locustfile`: a ``LoadTestShape`` and a SigV4 ``InvokeEndpoint`` user class) in
Locust's distributed mode. This module owns the part that needs no Locust:

- :class:`RatePlan` - a shape turned into Locust terms: how many users at time ``t`` and how long
  each waits between requests so that all users together send the shape's rate (users x per-user
  rate; time scale applied like :mod:`catkit.whatif.load`);
- :func:`run_locust` - starts a master and ``workers`` worker processes on this machine (plus any
  started elsewhere with ``locust -f <locustfile> --worker --master-host HOST``), waits for the run
  to end and returns the same :class:`~catkit.whatif.load.LoadResult` as ``run_load``: one row per
  request, gathered from every worker by the master;
- :func:`result_from_rows` - the per-request rows (CSV the master writes) as a ``LoadResult``;
- :func:`locustfile_path` - where the locustfile is, for ``locust -f``.

Rates differ from the open-loop generator in one way: a Locust user waits for its answer before the
next request, so a user whose request takes longer than ``1 / per_user_rps`` sends less; keep
``per_user_rps`` below one over the endpoint's latency (the default, 1 request per second per user,
allows up to a second).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catkit.whatif.load import LoadResult, Target, as_target, backend_info, mark_cold
from catkit.whatif.shapes import Shape, as_shape

#: Columns of the per-request rows, as in ``LoadResult.frame`` (plus the worker that sent each).
ROW_COLUMNS = ["time", "sent_delay_ms", "latency_ms", "status", "error", "variant", "target_model", "worker"]


@dataclass(frozen=True)
class RatePlan:
    """A shape in Locust's terms. ``t`` is real seconds since the start of the run.

    At time scale ``S`` the shape's emulated time is ``S * t`` and its rate ``S * rate`` real
    requests per second (as :func:`catkit.whatif.load.arun_load` compresses it). Users:
    ``ceil(real rate / per_user_rps)`` (at least one while the rate is above zero, at most
    ``max_users``); each waits ``users / real rate`` between the starts of its requests, so all
    users together send the shape's rate.
    """

    shape: Shape
    duration_s: float  # in the shape's (emulated) time
    time_scale: float = 1.0
    per_user_rps: float = 1.0
    max_users: int = 10_000

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if not self.per_user_rps > 0:
            raise ValueError(f"per_user_rps must be > 0, got {self.per_user_rps}")
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")

    @property
    def real_duration_s(self) -> float:
        return self.duration_s / self.time_scale

    def real_rate(self, t: float) -> float:
        """Requests per real second at real time ``t`` (0 outside the run)."""
        if t < 0 or t >= self.real_duration_s:
            return 0.0
        return float(self.shape.rate(t * self.time_scale)) * self.time_scale

    def users(self, t: float) -> int:
        rate = self.real_rate(t)
        if rate <= 0:
            return 0
        return max(1, min(self.max_users, math.ceil(rate / self.per_user_rps - 1e-9)))

    def interval(self, t: float) -> float | None:
        """Seconds between one user's request starts at ``t``; None when the rate is zero."""
        rate = self.real_rate(t)
        if rate <= 0:
            return None
        return self.users(t) / rate

    def tick(self, t: float) -> tuple[int, float] | None:
        """``LoadTestShape.tick``: (users, spawn rate) at ``t``; None once the run is over."""
        if t >= self.real_duration_s:
            return None
        users = self.users(t)
        return users, float(max(10, users))  # spawn (or stop) them within about a second


def locustfile_path() -> str:
    """The locustfile to give ``locust -f`` (master and workers alike)."""
    return str(Path(__file__).with_name("locustfile.py"))


def result_from_rows(
    frame: Any,
    *,
    endpoint_name: str,
    shape: Shape,
    duration_s: float,
    time_scale: float,
    start_timestamp: float,
    real_seconds: float,
    meta: dict[str, Any] | None = None,
) -> LoadResult:
    """A :class:`LoadResult` from the master's per-request rows (:data:`ROW_COLUMNS`), ordered by
    send time, with ``timestamp`` (in the backend's time) and ``cold`` added as ``run_load`` does."""
    import pandas as pd

    f = pd.DataFrame(frame).copy()
    for column in ROW_COLUMNS:
        if column not in f:
            f[column] = pd.Series(dtype=object)
    f = f.sort_values("time", kind="stable").reset_index(drop=True)
    f["status"] = f["status"].fillna(0).astype("int32")
    for column in ("error", "variant", "worker"):
        f[column] = f[column].fillna("").astype(str)
    f["target_model"] = f["target_model"].where(f["target_model"].notna() & (f["target_model"] != ""), None)
    f.insert(1, "timestamp", start_timestamp + f["time"].astype(float))
    mark_cold(f)
    return LoadResult(
        frame=f,
        endpoint_name=endpoint_name,
        time_scale=time_scale,
        start_timestamp=start_timestamp,
        real_seconds=real_seconds,
        shape=shape,
        planned=round(shape.expected_requests(duration_s)),
        meta={"runner": "locust", **(meta or {})},
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run_locust(
    session_or_target: Any,
    endpoint_name: str | None = None,
    shape: Shape | float = 1.0,
    *,
    duration_s: float,
    workers: int = 2,
    external_workers: int = 0,
    bind_host: str = "127.0.0.1",
    master_port: int | None = None,
    time_scale: float | str = "auto",
    per_user_rps: float = 1.0,
    max_users: int = 10_000,
    payload: bytes | str = b"{}",
    content_type: str = "application/json",
    accept: str | None = None,
    target_models: Sequence[str] | None = None,
    timeout_s: float | None = None,
    log_dir: str | os.PathLike[str] | None = None,
) -> LoadResult:
    """Run ``shape`` against an endpoint with Locust (a master, ``workers`` local workers and
    ``external_workers`` started elsewhere) and return the same :class:`LoadResult` as
    :func:`catkit.whatif.load.run_load`.

    ``shape``: any :class:`~catkit.whatif.shapes.Shape` or a constant rate (requests/s, the shape's
    time); the master reads it as per-second rates (a ``.npy`` file) and sends them to the workers.
    Workers sign requests with their own AWS credentials (boto3's chain, so refreshing credentials
    keep working; for the local backend this process's dummy keys are passed on) against the same
    runtime URL (the local gateway, or the region's endpoint). ``bind_host``: where the master
    listens for workers (loopback unless workers run on other machines). ``timeout_s`` bounds the
    whole run (default: the real duration plus 120 s); the processes are stopped if it passes.
    Locust's logs go to ``log_dir`` (a temporary directory by default, kept in
    ``result.meta["log_dir"]``).
    """
    import numpy as np

    target = as_target(session_or_target, endpoint_name)
    shape_obj = as_shape(shape)
    if workers < 0 or external_workers < 0 or workers + external_workers < 1:
        raise ValueError("need at least one worker (workers + external_workers >= 1)")
    info = backend_info(target.url) if target.local else None
    if time_scale == "auto":
        scale = float(info.get("time_scale") or 1.0) if info else 1.0
    else:
        scale = float(time_scale)
    plan = RatePlan(shape_obj, duration_s, scale, per_user_rps, max_users)  # validates the numbers

    logs = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="catkit-locust-"))
    logs.mkdir(parents=True, exist_ok=True)
    rows_csv = logs / "rows.csv"
    meta_json = logs / "run.json"
    port = master_port or _free_port(bind_host)
    body_file = logs / "payload.bin"
    body_file.write_bytes(payload.encode() if isinstance(payload, str) else bytes(payload))
    rates_file = logs / "rates.npy"
    np.save(rates_file, shape_obj.per_second(duration_s))
    catkit_args = [
        "--catkit-endpoint", target.endpoint_name,
        "--catkit-rates", str(rates_file),
        "--catkit-duration", repr(float(duration_s)),
        "--catkit-time-scale", repr(scale),
        "--catkit-per-user-rps", repr(float(per_user_rps)),
        "--catkit-max-users", str(int(max_users)),
        "--catkit-payload", str(body_file),
        "--catkit-content-type", content_type,
        "--catkit-region", target.region,
        "--catkit-url", target.url,
    ]
    if accept:
        catkit_args += ["--catkit-accept", accept]
    for model in target_models or []:
        catkit_args += ["--catkit-target-model", model]
    env = dict(os.environ)
    if target.local and target.credentials is not None:  # the local backend's dummies (any key signs)
        frozen = target.credentials.get_frozen_credentials()
        env.update({"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key})
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
    locust = [sys.executable, "-m", "locust", "-f", locustfile_path(), "--skip-log-setup"]
    bound = timeout_s if timeout_s is not None else plan.real_duration_s + 120.0
    master_cmd = [
        *locust, "--headless", "--master", "--master-bind-host", bind_host, "--master-bind-port", str(port),
        "--expect-workers", str(workers + external_workers), "--expect-workers-max-wait", str(int(bound)),
        "--run-time", f"{math.ceil(plan.real_duration_s + 30)}s", "--stop-timeout", "10", "--host", target.url,
        *catkit_args, "--catkit-out", str(rows_csv), "--catkit-meta", str(meta_json),
    ]
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        with open(logs / "master.log", "wb") as out:
            procs.append(subprocess.Popen(master_cmd, stdout=out, stderr=subprocess.STDOUT, env=env))
        master_host = "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host
        for i in range(workers):
            with open(logs / f"worker-{i}.log", "wb") as out:
                procs.append(subprocess.Popen(
                    [*locust, "--worker", "--master-host", master_host, "--master-port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, env=env,
                ))
        try:
            code = procs[0].wait(timeout=bound)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the Locust run did not finish within {bound:.0f} s; logs in {logs}") from None
        for p in procs[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=20)
    finally:
        for p in procs:
            _stop(p)
    real_seconds = time.monotonic() - started
    if not rows_csv.is_file():
        tail = (logs / "master.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the Locust master (exit {code}) wrote no results; its log ends:\n{tail}")
    import json

    import pandas as pd

    frame = pd.read_csv(rows_csv, keep_default_na=False, na_values={"target_model": [""], "latency_ms": [""]})
    run = json.loads(meta_json.read_text()) if meta_json.is_file() else {}
    start_ts = float(run.get("start_timestamp", time.time()))
    return result_from_rows(
        frame,
        endpoint_name=target.endpoint_name,
        shape=shape_obj,
        duration_s=duration_s,
        time_scale=scale,
        start_timestamp=start_ts,
        real_seconds=float(run.get("real_seconds", real_seconds)),
        meta={"url": target.url, "workers": workers + external_workers, "per_user_rps": per_user_rps,
              "master_exit": code, "log_dir": str(logs)},
    )


__all__ = ["ROW_COLUMNS", "RatePlan", "Target", "locustfile_path", "result_from_rows", "run_locust"]
