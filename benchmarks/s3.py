"""S3 benchmark: GetObject/PutObject through the catkit gateway vs moto's own server, side by side.

Run: ``.venv/bin/python benchmarks/s3.py [--seconds 3] [--concurrency 1 4] [--sizes 1024 1048576]``

Starts, in one run, a catkit local backend (its own process, temp ``CATKIT_HOME``, loopback; S3 is
served in-process behind the gateway and every acknowledged write is fsynced to disk first) and
moto's own server (``python -m moto.server``, its own process, in memory only: nothing is made
durable). For each object size and concurrency it drives the same requests at both: path-style
``PUT /bench/<key>`` and ``GET /bench/<key>`` with SigV4 headers made by botocore's signer (signed
once before the timed loop, so the load generator's signing cost is not measured), over one pooled
keep-alive aiohttp session. Prints p50/p99 latency and requests/s of both and the ratios
(``x`` = catkit requests/s / moto requests/s: above 1 means catkit is faster). Issue 18's goal:
S3 through the gateway at least as fast as moto's server for 1 KiB and 1 MiB get/put.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (default 3)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 1 << 20])
    args = ap.parse_args(argv)

    moto, moto_url = start_moto()
    try:
        with start_local_backend(components=()) as backend:
            targets = {"catkit": backend.url, "moto": moto_url}
            for url in targets.values():
                req = urllib.request.Request(url + f"/{BUCKET}", method="PUT", headers=signed(url, "PUT", f"/{BUCKET}"))
                urllib.request.urlopen(req, timeout=10).read()
            rows = []
            for size in args.sizes:
                body = os.urandom(size)
                for method in ("PUT", "GET"):
                    for c in args.concurrency:
                        got = {}
                        for name, url in targets.items():  # same key for both; PUT first creates it
                            got[name] = asyncio.run(drive(url, method, f"/{BUCKET}/obj-{size}", body, c,
                                                          args.seconds))
                        rows.append((size, method, c, got))
    finally:
        moto.terminate()
        moto.wait(10)

    print(f"\nS3 through the catkit gateway (in-process, fsynced writes) vs moto's own server (in memory), "
          f"{args.seconds:g} s per cell, {len(os.sched_getaffinity(0))} CPUs")
    hdr = (f"{'op':>4} {'size':>7} {'conc':>4} | {'catkit p50':>10} {'p99':>8} {'req/s':>7} | {'moto p50':>9} "
           f"{'p99':>8} {'req/s':>7} | {'req/s x':>7} {'p50 x':>6} | errors")
    print(hdr)
    print("-" * len(hdr))
    for size, method, c, got in rows:
        (k_lat, k_el, k_err), (m_lat, m_el, m_err) = got["catkit"], got["moto"]
        k_rps, m_rps = len(k_lat) / k_el, len(m_lat) / m_el
        k50, m50 = pct(k_lat, 50) * 1e3, pct(m_lat, 50) * 1e3
        print(f"{method:>4} {_size_name(size):>7} {c:>4} | {k50:>8.2f}ms {pct(k_lat, 99) * 1e3:>6.2f}ms {k_rps:>7.0f} | "
              f"{m50:>7.2f}ms {pct(m_lat, 99) * 1e3:>6.2f}ms {m_rps:>7.0f} | {k_rps / m_rps:>7.2f} {m50 / k50:>6.2f} | "
              f"{k_err}/{m_err}")
    print("x > 1: catkit faster than moto's server (requests/s ratio; p50 x = moto p50 / catkit p50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
