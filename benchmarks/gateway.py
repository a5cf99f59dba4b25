"""Gateway overhead benchmark: InvokeEndpoint through the local gateway vs POST straight to the instance,
and vs the gateway of an older commit (the previous design), side by side in one run.

Run: ``.venv/bin/python benchmarks/gateway.py [--seconds 5] [--concurrency 1 8] [--payload 64]
[--baseline-ref 8f48e2c | --baseline-ref none] [--time-scale 60] [--slices 4]``

Starts a local backend (its own process, temp CATKIT_HOME, loopback only), deploys a one-instance
echo endpoint, and - unless ``--baseline-ref none`` - a second backend running the catkit source of
``--baseline-ref`` (default: the commit issue 18 measured, extracted with ``git archive`` into a
temporary directory) with the same endpoint. Then drives the same payload, at each concurrency:

- direct:   ``POST http://127.0.0.1:<instance-port>/invocations``
- gateway:  ``POST <gateway>/endpoints/bench/invocations`` with SigV4 headers made by botocore's
  own signer (the InvokeEndpoint request boto3 sends, pre-signed before the timed loop so the load
  generator's signing cost is not measured);
- baseline: the same request to the older commit's gateway, driven in turns with this tree's
  (``--slices``, default 4 turns each) so both see the same machine load.

All use one pooled keep-alive aiohttp session. Prints p50/p99 latency and invocations/s side by
side, the added latency (gateway - direct) and ratios, and the backend process's CPU time per
InvokeEndpoint (user + system; CPU time does not depend on what else the machine runs the way
latency does) of this tree and of the baseline with their ratio. The backends run at
``--time-scale`` (emulated seconds per real second): their periodic jobs (scaling steps, metric
saves) cost CPU in proportion to it whether requests come or not, so the CPU figures are also shown
net of each backend's idle CPU rate, measured before the load. Goals (issue 18): backend CPU per
InvokeEndpoint half the previous design's, added p99 < 5 ms at 8 clients on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import botocore.session
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.local import lifecycle
from catkit.testing import LocalBackend, deploy_endpoint, start_local_backend, upload_model

ENDPOINT = "bench"
ROOT = Path(__file__).resolve().parents[1]
#: The commit issue 18 measured the gateway at (325-457 us of backend CPU per InvokeEndpoint).
DEFAULT_BASELINE = "8f48e2c"


def deploy(backend: LocalBackend, direct: bool = True) -> tuple[str, dict[str, str]]:
    """Deploy the echo endpoint (:func:`catkit.testing.echo_archive`); returns the instance's direct
    URL and the headers carrying its token (the instance refuses requests without it)."""
    d = deploy_endpoint(backend.client("sagemaker"), ENDPOINT, upload_model(backend, bucket="bench"), timeout=300)
    assert d is not None and d["EndpointStatus"] == "InService", d
    if not direct:
        return "", {}
    ((url, headers),) = backend.instance_clients(ENDPOINT)
    return f"{url}/invocations", headers


@contextlib.contextmanager
def baseline_backend(ref: str, time_scale: float):  # type: ignore[no-untyped-def]
    """A backend running the catkit source of git ``ref`` (``git archive`` into a temporary
    directory), started the way ``catkit local start`` starts one, with its own temp home."""
    tmp = Path(tempfile.mkdtemp(prefix="catkit-bench-baseline-"))
    src, home = tmp / "src", tmp / "home"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "catkit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    home.mkdir(mode=0o700)
    env = {**os.environ, "CATKIT_HOME": str(home), "PYTHONPATH": str(src)}
    proc = subprocess.Popen([sys.executable, "-m", "catkit.local.lifecycle", "run", "--home", str(home),
                             "--host", "127.0.0.1", "--time-scale", repr(float(time_scale))],
                            cwd=str(home), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            url = (lifecycle.read_state(home) or {}).get("url")
            if url and lifecycle.health(url) is not None:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the baseline backend ({ref}) did not start")
            time.sleep(0.2)
        backend = start_local_backend(home, time_scale=time_scale)  # attaches to the running one
        try:
            yield backend
        finally:
            backend.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def signed_headers(url: str, body: bytes, n: int) -> list[dict[str, str]]:
    """``n`` InvokeEndpoint header sets signed by botocore's SigV4 signer (service ``sagemaker``)."""
    creds = Credentials("AKIDBENCH", "bench")
    signer = SigV4Auth(creds, "sagemaker", "us-east-1")
    model = botocore.session.get_session().get_service_model("sagemaker-runtime").operation_model("InvokeEndpoint")
    ct_header = model.input_shape.members["ContentType"].serialization["name"]
    out = []
    for _ in range(n):
        req = AWSRequest(method="POST", url=f"{url}/endpoints/{ENDPOINT}/invocations", data=body,
                         headers={ct_header: "application/octet-stream", "Accept": "application/octet-stream"})
        signer.add_auth(req)
        out.append(dict(req.headers.items()))
    return out


async def drive(url: str, body: bytes, headers: list[dict[str, str]], concurrency: int, seconds: float,
                ) -> tuple[list[float], float, int]:
    """Closed-loop load for ``seconds``; returns (latencies in s, elapsed s, errors)."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:
        async def warm() -> None:
            for i in range(50):
                async with session.post(url, data=body, headers=headers[i % len(headers)]) as r:
                    await r.read()

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        stop_at = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < stop_at:
                h = headers[i % len(headers)]
                i += concurrency
                t0 = time.perf_counter()
                async with session.post(url, data=body, headers=h) as r:
                    await r.read()
                    ok = r.status == 200
                latencies.append(time.perf_counter() - t0)
                if not ok:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return latencies, elapsed, errors


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def _idle_rate(proc: psutil.Process, seconds: float = 3.0) -> float:
    """CPU seconds per second the process spends with no request (its periodic jobs)."""
    c0 = _cpu(proc)
    time.sleep(seconds)
    return (_cpu(proc) - c0) / seconds


def _gateway_runs(targets: list[tuple[str, psutil.Process, float]], body: bytes, c: int, seconds: float,
                  slices: int) -> list[tuple[list[float], float, int, float, float]]:
    """Drive each target's InvokeEndpoint (``(url, backend process, idle rate)``) for ``seconds`` in
    all, in ``slices`` turns taken one target after the other, so that a change in what else the
    machine runs falls on every target alike; per target: (latencies, elapsed, errors, CPU us per
    request, CPU us per request net of the idle rate)."""
    headers = [signed_headers(url, body, 2000) for url, _, _ in targets]
    totals = [([], 0.0, 0, 0.0, 0.0) for _ in targets]  # latencies, elapsed, errors, CPU s, wall s
    for _ in range(slices):
        for k, (url, proc, _idle) in enumerate(targets):
            c0, t0 = _cpu(proc), time.monotonic()
            lat, el, err = asyncio.run(drive(f"{url}/endpoints/{ENDPOINT}/invocations", body, headers[k], c,
                                             seconds / slices))
            used, wall = _cpu(proc) - c0, time.monotonic() - t0
            t_lat, t_el, t_err, t_used, t_wall = totals[k]
            totals[k] = (t_lat + lat, t_el + el, t_err + err, t_used + used, t_wall + wall)
    out = []
    for (lat, el, err, used, wall), (_, _, idle) in zip(totals, targets, strict=True):
        n = len(lat) + 50 * c * slices  # includes the 50-request warm-up of each worker in each turn
        out.append((lat, el, err, used / n * 1e6, max(0.0, used - idle * wall) / n * 1e6))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per run (default 5)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--payload", type=int, default=64, help="payload bytes (default 64)")
    ap.add_argument("--baseline-ref", default=DEFAULT_BASELINE,
                    help=f"git commit whose gateway to compare with (default {DEFAULT_BASELINE}; 'none': skip)")
    ap.add_argument("--time-scale", type=float, default=60.0, help="backends' time scale (default 60)")
    ap.add_argument("--slices", type=int, default=4,
                    help="turns this tree's and the baseline's gateway take, one after the other (default 4)")
    args = ap.parse_args(argv)

    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(start_local_backend(time_scale=args.time_scale))
        direct_url, token_headers = deploy(backend)
        old = None
        if args.baseline_ref.lower() != "none":
            old = stack.enter_context(baseline_backend(args.baseline_ref, args.time_scale))
            deploy(old, direct=False)
        body = b"x" * args.payload
        direct_headers = [{"Content-Type": "application/octet-stream", "Accept": "application/octet-stream",
                           **token_headers}]
        backend_proc = psutil.Process(backend.pid)
        old_proc = psutil.Process(old.pid) if old is not None else None
        (instance_pid,) = backend.instance_pids(ENDPOINT)
        instance_proc = psutil.Process(instance_pid)
        idle = _idle_rate(backend_proc)
        old_idle = _idle_rate(old_proc) if old_proc is not None else 0.0
        rows, cpu_rows, old_rows = [], [], {}
        for c in args.concurrency:
            i0 = _cpu(instance_proc)
            d_lat, d_el, d_err = asyncio.run(drive(direct_url, body, direct_headers, c, args.seconds))
            i1 = _cpu(instance_proc)
            targets = [(backend.url, backend_proc, idle)]
            if old is not None and old_proc is not None:
                targets.append((old.url, old_proc, old_idle))
            runs = _gateway_runs(targets, body, c, args.seconds, args.slices)
            g_lat, g_el, g_err, gw, gw_net = runs[0]
            i2 = _cpu(instance_proc)
            d_n, g_n = len(d_lat) + 50 * c, len(g_lat) + 50 * c * args.slices
            cpu_rows.append((c, (i1 - i0) / d_n * 1e6, (i2 - i1) / g_n * 1e6, gw, gw_net))
            rows.append((c, d_lat, d_el, d_err, g_lat, g_el, g_err))
            if len(runs) > 1:
                old_rows[c] = runs[1]
    print(f"\nInvokeEndpoint via gateway vs direct POST to the instance ({args.payload}-byte echo, "
          f"{args.seconds:g} s per run, {sys.platform}, {len(os.sched_getaffinity(0))} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    hdr = (f"{'conc':>4} | {'direct p50':>10} {'p99':>8} {'inv/s':>7} | {'gateway p50':>11} {'p99':>8} "
           f"{'inv/s':>7} | {'added p50':>9} {'added p99':>9} | {'p50 x':>5} {'inv/s x':>7} | errors")
    print(f"{hdr}\n{'-' * len(hdr)}")
    for c, d_lat, d_el, d_err, g_lat, g_el, g_err in rows:
        dp50, dp99, gp50, gp99 = (pct(d_lat, 50) * 1e3, pct(d_lat, 99) * 1e3, pct(g_lat, 50) * 1e3,
                                  pct(g_lat, 99) * 1e3)
        drps, grps = len(d_lat) / d_el, len(g_lat) / g_el
        print(f"{c:>4} | {dp50:>8.2f}ms {dp99:>6.2f}ms {drps:>7.0f} | {gp50:>9.2f}ms {gp99:>6.2f}ms "
              f"{grps:>7.0f} | {gp50 - dp50:>7.2f}ms {gp99 - dp99:>7.2f}ms | {gp50 / dp50:>5.2f} "
              f"{grps / drps:>7.2f} | {d_err}/{g_err}")
    print("\nCPU time per request (us; contention-independent):")
    for c, inst_direct, inst_gw, gw, gw_net in cpu_rows:
        print(f"  c={c}: instance {inst_direct:.0f} (direct) / {inst_gw:.0f} (via gateway); "
              f"backend process (gateway + codec + router + metrics) {gw:.0f} ({gw_net:.0f} net of idle) -> "
              f"{1e6 / gw:.0f} inv/s per core for the backend alone")
    print(f"  backend idle CPU (periodic jobs at time scale {args.time_scale:g}): {idle * 100:.1f}% of a core")
    if old_rows:
        print(f"\nvs the previous design (gateway of {args.baseline_ref}, same run; idle CPU {old_idle * 100:.1f}% "
              "of a core):")
        print(f"{'conc':>4} | {'cpu/inv now':>11} {'before':>7} {'ratio':>6} | {'net now':>8} {'before':>7} "
              f"{'ratio':>6} | {'p50 now':>8} {'before':>7} | {'p99 now':>8} {'before':>7} | errors")
        for (c, _, _, gw, gw_net), row in zip(cpu_rows, rows, strict=True):
            o_lat, _o_el, o_err, o_cpu, o_net = old_rows[c]
            g_lat = row[4]
            print(f"{c:>4} | {gw:>9.0f}us {o_cpu:>5.0f}us {gw / o_cpu:>6.2f} | {gw_net:>6.0f}us {o_net:>5.0f}us "
                  f"{gw_net / max(o_net, 1e-9):>6.2f} | {pct(g_lat, 50) * 1e3:>6.2f}ms {pct(o_lat, 50) * 1e3:>5.2f}ms | "
                  f"{pct(g_lat, 99) * 1e3:>6.2f}ms {pct(o_lat, 99) * 1e3:>5.2f}ms | {o_err}")
        print("ratio < 1: this tree's gateway uses less backend CPU per InvokeEndpoint (goal: <= 0.5)")
    print("mean latencies (ms): " + ", ".join(
        f"c={c}: direct {statistics.mean(r[1]) * 1e3:.2f} gateway {statistics.mean(r[4]) * 1e3:.2f}" for c, *_ in rows
        for r in [next(x for x in rows if x[0] == c)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
