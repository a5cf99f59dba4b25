"""Fixtures for load-generator tests: a temp CATKIT_HOME and a tiny in-process fake endpoint.

``fake_endpoint(workers=..., service_s=..., status=...)`` starts an aiohttp server on 127.0.0.1
(free port) in a background thread that answers ``POST /endpoints/{name}/invocations`` like a
SageMaker runtime (variant header, AWS error headers), serving at most ``workers`` requests at a
time for ``service_s`` each; it records every request's headers. ``/_catkit/info`` answers like a
local gateway when ``info`` is given. Everything is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))


@dataclass
class FakeEndpoint:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _serve(workers: int, service_s: float, status: int, info: dict | None):
    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        sem = asyncio.Semaphore(workers)

        async def invocations(request: web.Request) -> web.Response:
            body = await request.read()
            seen.append({"headers": dict(request.headers), "body": body, "name": request.match_info["name"]})
            async with sem:
                if service_s:
                    await asyncio.sleep(service_s)
            if status != 200:
                return web.json_response(
                    {"message": "boom"}, status=status, headers={"x-amzn-ErrorType": "ModelError:http://x"}
                )
            return web.Response(body=body, headers={"x-Amzn-Invoked-Production-Variant": "AllTraffic"})

        async def catkit_info(request: web.Request) -> web.Response:
            return web.json_response(info or {})

        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations", invocations)
        if info is not None:
            app.router.add_get("/_catkit/info", catkit_info)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        box["stop"] = asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        await box["stop"].wait()
        await runner.cleanup()

    th = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    th.start()
    assert ready.wait(10), "fake endpoint did not start"
    return th, box, seen


@pytest.fixture
def fake_endpoint() -> Iterator[Any]:
    started = []

    def start(workers: int = 64, service_s: float = 0.0, status: int = 200, info: dict | None = None) -> FakeEndpoint:
        th, box, seen = _serve(workers, service_s, status, info)
        started.append((th, box))
        return FakeEndpoint(f"http://127.0.0.1:{box['port']}", seen)

    try:
        yield start
    finally:
        for th, box in started:
            box["loop"].call_soon_threadsafe(box["stop"].set)
            th.join(10)
