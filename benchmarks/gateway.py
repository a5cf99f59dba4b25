"""Gateway overhead benchmark: InvokeEndpoint through the local gateway vs POST straight to the instance.

Run: ``.venv/bin/python benchmarks/gateway.py [--seconds 5] [--concurrency 1 8] [--payload 64]``

Starts a local backend (its own process, temp CATKIT_HOME, loopback only), deploys a one-instance
echo endpoint, then drives the same payload two ways in one run, at each concurrency:

- direct:  ``POST http://127.0.0.1:<instance-port>/invocations``
- gateway: ``POST <gateway>/endpoints/bench/invocations`` with SigV4 headers made by botocore's
  own signer (the InvokeEndpoint request boto3 sends, pre-signed before the timed loop so the load
  generator's signing cost is not measured).

Both use one pooled keep-alive aiohttp session. Prints p50/p99 latency and invocations/s side by
side, the added latency (gateway - direct) and ratios. The goal in the brief: added p50 <= 1 ms,
added p99 <= 5 ms, >= 1,500 inv/s through the gateway with an echo model on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import botocore.session
import psutil
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.testing import LocalBackend, deploy_endpoint, start_local_backend, upload_model

ENDPOINT = "bench"


def deploy(backend: LocalBackend) -> tuple[str, dict[str, str]]:
    """Deploy the echo endpoint (:func:`catkit.testing.echo_archive`); returns the instance's direct
    URL and the headers carrying its token (the instance refuses requests without it)."""
    d = deploy_endpoint(backend.client("sagemaker"), ENDPOINT, upload_model(backend, bucket="bench"), timeout=120)
    assert d is not None and d["EndpointStatus"] == "InService", d
    ((url, headers),) = backend.instance_clients(ENDPOINT)
    return f"{url}/invocations", headers


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per run (default 5)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--payload", type=int, default=64, help="payload bytes (default 64)")
    args = ap.parse_args(argv)

    with start_local_backend(time_scale=1000.0) as backend:
        url = backend.url
        direct_url, token_headers = deploy(backend)
        body = b"x" * args.payload
        gw_headers = signed_headers(url, body, 2000)
        direct_headers = [{"Content-Type": "application/octet-stream", "Accept": "application/octet-stream",
                           **token_headers}]
        backend_proc = psutil.Process(backend.pid)
        (instance_pid,) = backend.instance_pids(ENDPOINT)
        instance_proc = psutil.Process(instance_pid)
        rows, cpu_rows = [], []
        for c in args.concurrency:
            i0 = _cpu(instance_proc)
            d_lat, d_el, d_err = asyncio.run(drive(direct_url, body, direct_headers, c, args.seconds))
            i1, b1 = _cpu(instance_proc), _cpu(backend_proc)
            g_lat, g_el, g_err = asyncio.run(drive(f"{url}/endpoints/{ENDPOINT}/invocations", body, gw_headers, c,
                                                   args.seconds))
            i2, b2 = _cpu(instance_proc), _cpu(backend_proc)
            # CPU per request (includes the 50-request warm-up of each run): contention-independent.
            d_n, g_n = len(d_lat) + 50 * c, len(g_lat) + 50 * c
            cpu_rows.append((c, (i1 - i0) / d_n * 1e6, (i2 - i1) / g_n * 1e6, (b2 - b1) / g_n * 1e6))
            rows.append((c, d_lat, d_el, d_err, g_lat, g_el, g_err))
        print(f"\nInvokeEndpoint via gateway vs direct POST to the instance ({args.payload}-byte echo, "
              f"{args.seconds:g} s per run, {sys.platform}, {len(os.sched_getaffinity(0))} CPUs)")
        hdr = (f"{'conc':>4} | {'direct p50':>10} {'p99':>8} {'inv/s':>7} | {'gateway p50':>11} {'p99':>8} "
               f"{'inv/s':>7} | {'added p50':>9} {'added p99':>9} | {'p50 x':>5} {'inv/s x':>7} | errors")
        print(hdr)
        print("-" * len(hdr))
        for c, d_lat, d_el, d_err, g_lat, g_el, g_err in rows:
            dp50, dp99, gp50, gp99 = (pct(d_lat, 50) * 1e3, pct(d_lat, 99) * 1e3, pct(g_lat, 50) * 1e3,
                                      pct(g_lat, 99) * 1e3)
            drps, grps = len(d_lat) / d_el, len(g_lat) / g_el
            print(f"{c:>4} | {dp50:>8.2f}ms {dp99:>6.2f}ms {drps:>7.0f} | {gp50:>9.2f}ms {gp99:>6.2f}ms "
                  f"{grps:>7.0f} | {gp50 - dp50:>7.2f}ms {gp99 - dp99:>7.2f}ms | {gp50 / dp50:>5.2f} "
                  f"{grps / drps:>7.2f} | {d_err}/{g_err}")
        print("\nCPU time per request (us; contention-independent):")
        for c, inst_direct, inst_gw, gw in cpu_rows:
            print(f"  c={c}: instance {inst_direct:.0f} (direct) / {inst_gw:.0f} (via gateway); "
                  f"backend process (gateway + codec + router + metrics) {gw:.0f} -> "
                  f"{1e6 / gw:.0f} inv/s per core for the backend alone")
        print("mean latencies (ms): " + ", ".join(
            f"c={c}: direct {statistics.mean(r[1]) * 1e3:.2f} gateway {statistics.mean(r[4]) * 1e3:.2f}" for c, *_ in rows
            for r in [next(x for x in rows if x[0] == c)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
