"""S3 benchmark: GetObject/PutObject through the catkit gateway vs moto's own server, side by side.

Run: ``.venv/bin/python benchmarks/s3.py [--seconds 3] [--concurrency 1 4] [--sizes 1024 1048576]``

Starts, in one run, catkit local backends (their own processes, temp ``CATKIT_HOME``, loopback; S3
is served in-process behind the gateway and every acknowledged write is on disk first) and
moto's own server (``python -m moto.server``, its own process, in memory only: nothing is made
durable). For each object size and concurrency it drives the same requests at both: path-style
``PUT /bench/<key>`` and ``GET /bench/<key>`` with SigV4 headers made by botocore's signer (signed
once before the timed loop, so the load generator's signing cost is not measured), over one pooled
keep-alive aiohttp session. catkit runs once per fsync policy (``CATKIT_S3_SYNC``: ``background``,
the default, and ``always``; see :mod:`catkit.local.storage.files`). Prints p50/p99 latency,
requests/s and server CPU time per request of each and the ratios against moto's server (above 1
means catkit is better). CPU per request does not depend on what else the machine runs; latency
does. Issue 18's goal: S3 through the gateway at least as fast as moto's server for 1 KiB and
1 MiB get/put.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import psutil
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from catkit.testing import start_local_backend

BUCKET = "bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's own server (``python -m moto.server``) on a free loopback port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/data.json", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto's server did not start")


def signed(url: str, method: str, path: str, body: bytes = b"") -> dict[str, str]:
    """Headers of one S3 request signed by botocore (what boto3 sends, minus its own retries)."""
    req = AWSRequest(method=method, url=url + path, data=body)
    S3SigV4Auth(Credentials("AKIAIOSFODNN7EXAMPLE", "bench"), "s3", "us-east-1").add_auth(req)
    return dict(req.headers.items())


async def drive(url: str, method: str, path: str, body: bytes, concurrency: int, seconds: float,
                ) -> tuple[list[float], float, int]:
    """Closed-loop ``method path`` for ``seconds``; returns (latencies in s, elapsed s, errors)."""
    headers = signed(url, method, path, body)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    data = body if method == "PUT" else None
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",),
                                     auto_decompress=False) as session:
        async def one() -> bool:
            async with session.request(method, url + path, data=data, headers=headers) as r:
                await r.read()
                return r.status == 200

        for _ in range(5):  # warm the pool
            await asyncio.gather(*(one() for _ in range(concurrency)))
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                ok = await one()
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return latencies, elapsed, errors


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] if s else float("nan")


def _size_name(n: int) -> str:
    return f"{n // (1 << 20)} MiB" if n >= 1 << 20 else f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (default 3)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 1 << 20])
    ap.add_argument("--sync", nargs="+", default=["background", "always"], choices=["background", "always"],
                    help="CATKIT_S3_SYNC policies to measure (default both)")
    args = ap.parse_args(argv)

    moto, moto_url = start_moto()
    backends = []
    try:
        targets: dict[str, tuple[str, int]] = {}
        for mode in args.sync:
            backend = start_local_backend(components=(), env={"CATKIT_S3_SYNC": mode})
            backends.append(backend)
            targets[f"catkit ({mode})"] = (backend.url, backend.pid)
        targets["moto server"] = (moto_url, moto.pid)
        for url, _ in targets.values():
            req = urllib.request.Request(url + f"/{BUCKET}", method="PUT", headers=signed(url, "PUT", f"/{BUCKET}"))
            urllib.request.urlopen(req, timeout=10).read()
        rows = []
        for size in args.sizes:
            body = os.urandom(size)
            for method in ("PUT", "GET"):
                for c in args.concurrency:
                    got = {}
                    for name, (url, pid) in targets.items():  # same key for all; PUT first creates it
                        cpu0 = _cpu(pid)
                        lat, el, err = asyncio.run(drive(url, method, f"/{BUCKET}/obj-{size}", body, c, args.seconds))
                        cpu_us = (_cpu(pid) - cpu0) / max(1, len(lat) + 5 * c) * 1e6  # includes the warm-up
                        got[name] = (lat, el, err, cpu_us)
                    rows.append((size, method, c, got))
    finally:
        for backend in backends:
            backend.close()
        moto.terminate()
        moto.wait(10)

    print(f"\nS3 through the catkit gateway (in-process; CATKIT_S3_SYNC policy in brackets) vs moto's own server "
          f"(in memory, nothing durable); {args.seconds:g} s per cell, {len(os.sched_getaffinity(0))} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    hdr = (f"{'op':>4} {'size':>7} {'conc':>4} {'server':>19} | {'p50':>8} {'p99':>8} {'req/s':>7} {'cpu/req':>9} | "
           f"{'req/s x':>7} {'p50 x':>6} {'cpu x':>6} | errors")
    print(hdr)
    print("-" * len(hdr))
    for size, method, c, got in rows:
        m_lat, m_el, _m_err, m_cpu = got["moto server"]
        m_rps, m50 = (len(m_lat) - _m_err) / m_el, pct(m_lat, 50)
        for name, (lat, el, err, cpu_us) in got.items():
            rps, p50 = (len(lat) - err) / el, pct(lat, 50)
            ratios = (f"{rps / m_rps:>7.2f} {m50 / p50:>6.2f} {m_cpu / cpu_us:>6.2f}" if name != "moto server"
                      else f"{'':>7} {'':>6} {'':>6}")
            print(f"{method:>4} {_size_name(size):>7} {c:>4} {name:>19} | {p50 * 1e3:>6.2f}ms {pct(lat, 99) * 1e3:>6.2f}ms "
                  f"{rps:>7.0f} {cpu_us:>7.0f}us | {ratios} | {err}")
    print("x > 1: catkit better than moto's server (successful req/s ratio; p50 x = moto p50 / catkit p50; cpu x = moto's "
          "server CPU per request / the catkit backend's). moto's server answers concurrent PUTs of one key with "
          "500s (its errors column).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
