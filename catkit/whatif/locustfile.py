"""The Locust test of catkit: a traffic shape as a ``LoadTestShape``, SigV4 InvokeEndpoint as a user.

Run by :func:`catkit.whatif.distributed.run_locust` / ``catkit load locust``, or by hand::

    locust -f $(catkit load locustfile) --headless --master --expect-workers 4 \\
        --catkit-endpoint my-endpoint --catkit-shape "diurnal:low_rps=2,high_rps=20" --catkit-duration 3600 \\
        --catkit-out rows.csv
    locust -f $(catkit load locustfile) --worker --master-host MASTER   # on each load machine

The master owns the shape (``--catkit-shape`` in the ``catkit load`` syntax, or ``--catkit-rates``:
a ``.npy`` file of per-second rates) and sends it to every worker as per-second rates when the test
starts, together with the start time; each worker's users pace themselves so that all users
together send the shape's rate (:class:`catkit.whatif.distributed.RatePlan`). Workers sign with
their own AWS credentials (boto3's chain) for ``--catkit-region``; ``--catkit-url`` overrides the
runtime endpoint (the local gateway). Every request becomes a row (send time, latency, status,
error code, variant, target model, worker) that the workers send to the master in batches; the
master writes them to ``--catkit-out`` (CSV) at the end, for
:func:`catkit.whatif.distributed.result_from_rows` - the same frame as ``catkit.whatif.load``.
Locust's own statistics and web UI work as usual.
"""

from __future__ import annotations

import json
import logging
import random
import time
import urllib.parse
from typing import Any

import gevent
from locust import LoadTestShape, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import MasterRunner, WorkerRunner

from catkit.whatif.distributed import ROW_COLUMNS, RatePlan
from catkit.whatif.load import DEFAULT_TIMEOUT_S, INVOKE_PATH, Target, _error_code, _is_loopback, _Signer
from catkit.whatif.shapes import Replay

log = logging.getLogger("catkit.locust")

_FLUSH_EVERY_S = 1.0
_state: dict[str, Any] = {"plan": None, "start": None, "rows": [], "all_rows": [], "target": None}


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("catkit", "catkit's traffic shape and SageMaker endpoint")
    group.add_argument("--catkit-endpoint", default="", help="endpoint to invoke")
    group.add_argument("--catkit-shape", default="", help="traffic shape, catkit load syntax (constant:rps=5)")
    group.add_argument("--catkit-rates", default="", help=".npy file of per-second rates (instead of --catkit-shape)")
    group.add_argument("--catkit-duration", type=float, default=60.0, help="run length in the shape's time (s)")
    group.add_argument("--catkit-time-scale", default="auto", help="'auto' (the local backend's) or a number")
    group.add_argument("--catkit-per-user-rps", type=float, default=1.0, help="requests per second per user")
    group.add_argument("--catkit-max-users", type=int, default=10_000)
    group.add_argument("--catkit-payload", default="", help="file whose bytes are the request body ('{}' if none)")
    group.add_argument("--catkit-content-type", default="application/json")
    group.add_argument("--catkit-accept", default="")
    group.add_argument("--catkit-target-model", action="append", default=[], help="multi-model TargetModel (repeat)")
    group.add_argument("--catkit-region", default="", help="AWS region (default: boto3's)")
    group.add_argument("--catkit-url", default="", help="runtime endpoint URL (default: boto3's for the region)")
    group.add_argument("--catkit-out", default="", help="master: write the per-request rows here (CSV)")
    group.add_argument("--catkit-meta", default="", help="master: write start time and duration here (JSON)")


def _options(environment: Any) -> Any:
    return environment.parsed_options


def _time_scale(opts: Any, url: str) -> float:
    if str(opts.catkit_time_scale) != "auto":
        return float(opts.catkit_time_scale)
    from catkit.whatif.load import backend_info

    info = backend_info(url) if _is_loopback(url) else None
    return float(info.get("time_scale") or 1.0) if info else 1.0


def _rates(opts: Any) -> list[float]:
    """Per-second rates of the shape (the shape's time) for the whole run."""
    if opts.catkit_rates:
        import numpy as np

        return [float(x) for x in np.load(opts.catkit_rates)]
    if not opts.catkit_shape:
        raise ValueError("give --catkit-shape (e.g. constant:rps=5) or --catkit-rates FILE.npy")
    from catkit.whatif.cli import parse_shape

    return [float(x) for x in parse_shape(opts.catkit_shape).per_second(opts.catkit_duration)]


def _plan_message(rates: list[float], opts: Any, scale: float, start: float | None = None) -> dict[str, Any]:
    """Everything a worker needs to pace its users (sent whole: a worker's own options only get the
    master's values with the first spawn message, after this one)."""
    return {"rates": rates, "duration_s": float(opts.catkit_duration), "time_scale": scale,
            "per_user_rps": float(opts.catkit_per_user_rps), "max_users": int(opts.catkit_max_users), "start": start}


def _make_plan(message: dict[str, Any]) -> RatePlan:
    return RatePlan(Replay.from_rates(message["rates"]), message["duration_s"], message["time_scale"],
                    message["per_user_rps"], message["max_users"])


def _target(environment: Any) -> Target:
    """Where requests go and the credentials that sign them (boto3's chain; one per process)."""
    if _state["target"] is None:
        import boto3

        opts = _options(environment)
        session = boto3.session.Session(region_name=opts.catkit_region or None)
        client = session.client("sagemaker-runtime", endpoint_url=opts.catkit_url or None)
        url = client.meta.endpoint_url
        _state["target"] = Target(url, client.meta.region_name, session.get_credentials(), opts.catkit_endpoint,
                                  local=_is_loopback(url))
    return _state["target"]


def _row_sink(environment: Any) -> None:
    rows, _state["rows"] = _state["rows"], []
    if not rows:
        return
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("catkit_rows", rows)
    else:
        _state["all_rows"].extend(rows)


def _flusher(environment: Any) -> None:
    while True:
        gevent.sleep(_FLUSH_EVERY_S)
        _row_sink(environment)


@events.init.add_listener
def _init(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def got_plan(msg: Any, **_kw: Any) -> None:
            _state["plan"] = _make_plan(msg.data)
            _state["start"] = float(msg.data["start"])

        runner.register_message("catkit_plan", got_plan)
        return
    if isinstance(runner, MasterRunner):
        runner.register_message("catkit_rows", lambda msg, **kw: _state["all_rows"].extend(msg.data))
    # The master (or a single process) owns the plan; workers get it when the test starts.
    opts = _options(environment)
    if opts is None or not opts.catkit_endpoint:
        return  # e.g. `locust --list`
    url = opts.catkit_url or _target(environment).url
    _state["message"] = _plan_message(_rates(opts), opts, _time_scale(opts, url))
    _state["plan"] = _make_plan(_state["message"])
    _state["url"] = url
    if environment.shape_class is not None:
        environment.shape_class.plan = _state["plan"]


@events.test_start.add_listener
def _test_start(environment: Any, **_kw: Any) -> None:
    runner = environment.runner
    _state["flusher"] = gevent.spawn(_flusher, environment)
    if isinstance(runner, WorkerRunner):
        return
    if _state["plan"] is None:
        raise ValueError("catkit's locustfile needs --catkit-endpoint and --catkit-shape (or --catkit-rates)")
    # t = 0 of the run, in wall-clock time (workers pace from it) and in the backend's time.
    _state["start"] = time.time()
    from catkit.whatif.load import backend_info

    info = backend_info(_state["url"]) if _is_loopback(_state["url"]) else None
    _state["start_timestamp"] = float(info["now"]) if info and info.get("now") else _state["start"]
    if isinstance(runner, MasterRunner):
        runner.send_message("catkit_plan", {**_state["message"], "start": _state["start"]})


@events.test_stop.add_listener
def _test_stop(environment: Any, **_kw: Any) -> None:
    flusher = _state.pop("flusher", None)
    if flusher is not None:
        flusher.kill(block=False)
    _row_sink(environment)
    if not isinstance(environment.runner, WorkerRunner):
        _write_results(environment)


def _write_results(environment: Any) -> None:
    opts = _options(environment)
    if not opts.catkit_out or _state["start"] is None:
        return
    import csv

    with open(opts.catkit_out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROW_COLUMNS)
        for row in _state["all_rows"]:
            writer.writerow([row.get(c, "") if row.get(c) is not None else "" for c in ROW_COLUMNS])
    if opts.catkit_meta:
        with open(opts.catkit_meta, "w") as f:
            json.dump({"start_timestamp": _state.get("start_timestamp", _state["start"]),
                       "real_seconds": time.time() - _state["start"], "requests": len(_state["all_rows"])}, f)
    log.info("catkit: %d requests written to %s", len(_state["all_rows"]), opts.catkit_out)


class CatkitShape(LoadTestShape):
    """The catkit shape: users over time from :class:`RatePlan` (set when the test starts)."""

    plan: RatePlan | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.plan is None:
            return None  # no --catkit-endpoint/--catkit-shape: nothing to run
        return self.plan.tick(self.get_run_time())


class InvokeEndpointUser(FastHttpUser):
    """One SageMaker client: SigV4-signed InvokeEndpoint requests at the plan's per-user pace."""

    insecure = False  # verify TLS (FastHttpUser's default does not)
    network_timeout = DEFAULT_TIMEOUT_S
    connection_timeout = 10.0
    host = "http://127.0.0.1"  # replaced by --host or the target's URL

    def on_start(self) -> None:
        opts = _options(self.environment)
        self.target = _target(self.environment)
        self.host = self.environment.host or self.target.url
        self.signer = _Signer(self.target)
        body = b"{}"
        if opts.catkit_payload:
            with open(opts.catkit_payload, "rb") as f:
                body = f.read()
        self.body = body
        self.models = list(opts.catkit_target_model or [])
        self.path = INVOKE_PATH.format(name=urllib.parse.quote(self.target.endpoint_name, safe=""))
        self.count = 0
        self.next_at: float | None = None
        runner = self.environment.runner
        self.worker = str(getattr(runner, "worker_index", "")) if isinstance(runner, WorkerRunner) else "local"
        plan, start = _state["plan"], _state["start"]
        interval = plan.interval(time.time() - start) if plan is not None and start is not None else None
        if interval:  # spread the users' first requests over one interval instead of a burst
            gevent.sleep(random.uniform(0.0, interval))

    def wait_time(self) -> float:
        """Until this user's next request is due (0 when late); polls while the rate is zero."""
        plan, start = _state["plan"], _state["start"]
        if plan is None or start is None:
            return 0.05
        now = time.time()
        interval = plan.interval(now - start)
        if interval is None:
            self.next_at = None
            return 0.1
        if self.next_at is None:
            self.next_at = now
        self.next_at += interval
        return max(0.0, self.next_at - now)

    @task
    def invoke(self) -> None:
        opts = _options(self.environment)
        plan, start = _state["plan"], _state["start"]
        if plan is None or start is None or plan.interval(time.time() - start) is None:
            return  # not started, or no traffic now (rate zero, or the run is over)
        model = self.models[self.count % len(self.models)] if self.models else None
        self.count += 1
        headers = self.signer.headers(0, self.body, opts.catkit_content_type, model, opts.catkit_accept or None)
        sent = time.time()
        late_ms = max(0.0, (sent - self.next_at) * 1000.0) if self.next_at is not None else 0.0
        t0 = time.perf_counter()
        status, error, variant = 0, "", ""
        with self.client.post(self.path, data=self.body, headers=headers, catch_response=True,
                              name=f"InvokeEndpoint {self.target.endpoint_name}") as resp:
            status = int(resp.status_code or 0)
            if status == 200:
                variant = resp.headers.get("x-Amzn-Invoked-Production-Variant", "") if resp.headers else ""
                resp.success()
            elif status:
                error = _error_code(status, resp.headers or {}, resp.content or b"")
                resp.failure(error)
            else:
                error = type(resp.error).__name__ if resp.error is not None else "ConnectionError"
                resp.failure(error)
        _state["rows"].append({
            "time": (sent - start) * plan.time_scale,
            "sent_delay_ms": late_ms,
            "latency_ms": (time.perf_counter() - t0) * 1000.0,
            "status": status,
            "error": error,
            "variant": variant,
            "target_model": model,
            "worker": self.worker,
        })
