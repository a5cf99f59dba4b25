"""Load generator throughput: catkit.whatif.load (aiohttp, SigV4 headers cached per second) vs boto3 in threads.

Run: ``.venv/bin/python benchmarks/loadgen.py [--seconds 3] [--threads 16]``

Starts a minimal runtime-compatible echo server (aiohttp, its own process, 127.0.0.1, free port)
that answers ``POST /endpoints/{name}/invocations`` instantly, then drives it two ways for the same
number of seconds:

- catkit: ``catkit.whatif.load.run_load`` open-loop at a rate far above what one client process can
  send (so the achieved rate is the generator's ceiling), ``max_in_flight`` 64;
- boto3: ``sagemaker-runtime`` ``invoke_endpoint`` from ``--threads`` threads in a closed loop
  (the usual way notebooks generate load).

Prints requests/s of each and the ratio. Both sides sign every request with SigV4 (botocore).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from catkit.whatif import load

SERVER = r"""
import sys
from aiohttp import web

async def handle(request):
    body = await request.read()
    return web.Response(body=body, content_type="application/json",
                        headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"})

app = web.Application()
app.router.add_post("/endpoints/{name}/invocations", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("echo server did not start")


def boto3_threads(url: str, seconds: float, threads: int) -> float:
    client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench",
                          config=Config(retries={"max_attempts": 1}, max_pool_connections=threads))
    count = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        while time.perf_counter() < stop:
            client.invoke_endpoint(EndpointName="bench", Body=b"{}", ContentType="application/json")
            count[k] += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(count) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=16)
    args = ap.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}"
        target = load.Target(url, "us-east-1", Credentials("AKIDBENCH", "bench"), "bench")
        res = load.run_load(target, None, load.Constant(20000), duration_s=args.seconds, time_scale=1,
                            max_in_flight=64, progress=False)
        # The plan asked for 20,000 req/s; everything sent in the run counts over the real time taken.
        catkit_rps = res.throughput
        ok = res.ok / max(res.requests, 1)
        boto_rps = boto3_threads(url, args.seconds, args.threads)
        print(f"cores: {os.cpu_count()}, echo server in its own process, {args.seconds:g} s each")
        print(f"{'client':<34}{'requests/s':>12}")
        print(f"{'catkit.whatif.load (aiohttp, 64 in flight)':<34}{catkit_rps:>12,.0f}   ({ok:.0%} ok, "
              f"p50 {res.summary()['p50_ms']:.1f} ms)")
        print(f"{f'boto3 invoke_endpoint x {args.threads} threads':<34}{boto_rps:>12,.0f}")
        print(f"ratio catkit / boto3: {catkit_rps / boto_rps:.1f}x")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
