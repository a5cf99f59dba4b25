"""Model-server throughput: requests/s and p50/p99 latency of POST /invocations.

Runs ``python -m catkit.serving.server`` as a subprocess on 127.0.0.1 (port 0) for an echo handler
and for the cat-hat model (when ``catkit.examples.cathat`` can build one), and drives it with an
aiohttp client at 1 and 8 concurrent clients for a fixed time each. Client and server share the
machine, so the numbers are end to end on loopback. Prints a table with ratios side by side.

    .venv/bin/python benchmarks/serving.py [--seconds 3] [--clients 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catkit.testing import ECHO_HANDLER, write_model_dir  # noqa: E402 - after the sys.path line


def make_echo_model(root: Path) -> tuple[Path, bytes, str]:
    """The echo handler (input_fn -> predict_fn -> output_fn) and a small JSON request."""
    model_dir = write_model_dir(root / "echo", ECHO_HANDLER)
    return model_dir, json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode(), "application/json"


def make_cathat_model(root: Path) -> tuple[Path, bytes, str] | str:
    """Train a small cat-hat model (``catkit.examples.cathat.train``) and a PNG request, or say why not."""
    try:
        from catkit.examples.cathat.data import make_image
        from catkit.examples.cathat.train import train
    except ImportError as exc:
        return f"catkit.examples.cathat is not available ({exc})"
    result = train(root / "cathat", n_train=400, n_test=100, n_jobs=1)
    buffer = io.BytesIO()
    make_image(12345, True, 64).save(buffer, format="PNG")
    return Path(result.model_dir), buffer.getvalue(), "image/png"


def start_server(model_dir: Path, workdir: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    ready = workdir / f"ready-{model_dir.name}.json"
    log = open(workdir / f"{model_dir.name}.log", "wb")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "CATKIT_HOME": str(workdir / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "catkit.serving.server", str(model_dir), "--port", "0",
         "--host", "127.0.0.1", "--ready-file", str(ready), *extra],
        cwd=ROOT, env=env, stdout=log, stderr=log,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start; see {workdir / (model_dir.name + '.log')}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())["port"]


async def wait_ping(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(url + "/ping") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url}/ping never returned 200")


async def drive(url: str, body: bytes, content_type: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one_client(stop_at: float, record: bool) -> None:
            nonlocal errors
            perf = time.perf_counter
            while perf() < stop_at:
                started = perf()
                async with session.post(url + "/invocations", data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                if record:
                    latencies.append(perf() - started)

        warm = time.perf_counter() + min(0.5, seconds / 4)
        await asyncio.gather(*(one_client(warm, False) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(one_client(started + seconds, True) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    if not latencies:
        return {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": errors}
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {"rps": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1e3,
            "p99": p99 * 1e3, "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per cell (default 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workers", type=int, default=None, help="server --workers (default: server's)")
    args = parser.parse_args()
    extra = ["--workers", str(args.workers)] if args.workers else []
    rows: list[tuple[str, int, dict[str, float]]] = []
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="catkit-bench-serving-") as tmp:
        workdir = Path(tmp)
        models = [("echo", make_echo_model(workdir))]
        cathat = make_cathat_model(workdir)
        if isinstance(cathat, str):
            skipped.append(f"cat-hat: skipped - {cathat}")
        else:
            models.append(("cat-hat", cathat))
        for label, (model_dir, body, content_type) in models:
            proc, port = start_server(model_dir, workdir, extra)
            url = f"http://127.0.0.1:{port}"
            try:
                asyncio.run(wait_ping(url))
                for clients in args.clients:
                    rows.append((label, clients, asyncio.run(
                        drive(url, body, content_type, clients, args.seconds))))
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=35)
                except subprocess.TimeoutExpired:
                    proc.kill()
    base = {(label, c): r for label, c, r in rows}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"model server /invocations, loopback, {os.cpu_count()} CPUs (load average {load}), "
          f"{args.seconds:g} s per cell, client and server on the same machine")
    header = f"{'model':<8} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} " \
             f"{'x 1 client':>10} {'x echo':>7}"
    print(header)
    print("-" * len(header))
    first = args.clients[0]
    for label, clients, r in rows:
        one = base.get((label, first), r)["rps"] or float("nan")
        echo = base.get(("echo", clients), r)["rps"] or float("nan")
        print(f"{label:<8} {clients:>7} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
              f"{int(r['errors']):>6} {r['rps'] / one:>10.2f} {r['rps'] / echo:>7.2f}")
    for line in skipped:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
