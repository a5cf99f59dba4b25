"""Fixtures for the model-server tests: tmp model dirs with small handler scripts, an in-process
aiohttp test client, and a subprocess server on a free loopback port (always cleaned up).

The echo handler is :data:`catkit.testing.ECHO_HANDLER` and model directories are written by
:func:`catkit.testing.write_model_dir`; the other handlers here exist for these tests only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from catkit.serving.server import ModelServer, ServerConfig
from catkit.testing import ECHO_HANDLER as ECHO
from catkit.testing import wait_until_async, write_model_dir

ROOT = Path(__file__).resolve().parents[2]

# Echo through the default JSON/CSV/NPY codecs: the model is the identity.
IDENTITY = """
def model_fn(model_dir):
    return lambda data: data
"""

# Sleeps for the number of seconds in the JSON body, then echoes it. Each call first appends a
# line to ``started`` in the model directory, so a test can wait until its calls are in the handler.
SLOW = """
import json, os, time

def model_fn(model_dir):
    return model_dir

def transform_fn(model_dir, body, content_type, accept):
    seconds = float(json.loads(body))
    with open(os.path.join(model_dir, "started"), "a") as f:
        f.write("call\\n")
    time.sleep(seconds)
    return json.dumps({"slept": seconds}), "application/json"
"""


def started_calls(model_dir: Path) -> int:
    """How many calls the ``SLOW`` handler of ``model_dir`` has begun."""
    try:
        return len((model_dir / "started").read_text().splitlines())
    except FileNotFoundError:
        return 0

FAILING = """
def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    if body in (b"boom", "boom"):
        raise RuntimeError("the model exploded on purpose")
    if content_type == "text/plain":
        raise ValueError("Unsupported content type: text/plain (this handler takes JSON)")
    return b"fine", "text/plain"
"""

# Holds ~MB megabytes (touched, so it is resident) read from size_mb.txt.
HUNGRY = """
from pathlib import Path

def model_fn(model_dir):
    mb = int(Path(model_dir, "size_mb.txt").read_text())
    return b"x" * (mb * 1024 * 1024)

def transform_fn(model, body, content_type, accept):
    return str(len(model)).encode(), "text/plain"
"""


@pytest.fixture(autouse=True)
def catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "catkit-home"
    home.mkdir()
    monkeypatch.setenv("CATKIT_HOME", str(home))
    monkeypatch.delenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", raising=False)
    monkeypatch.delenv("SAGEMAKER_MODEL_SERVER_WORKERS", raising=False)
    return home


ModelFactory = Callable[..., Path]


@pytest.fixture
def make_model(tmp_path: Path) -> ModelFactory:
    """``make_model(name, handler_source=None, files={relpath: text})`` -> model dir."""

    def make(name: str, handler: str | None = None, files: dict[str, str] | None = None) -> Path:
        model_dir = tmp_path / "models" / name
        model_dir.mkdir(parents=True)
        return write_model_dir(model_dir, handler, files)

    return make


async def wait_ping(client: TestClient, timeout: float = 20.0) -> None:
    """Until the in-process server's /ping answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.get("/ping")
        if resp.status == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("/ping never returned 200")


async def wait_http_ping(url: str, timeout: float = 20.0) -> None:
    """Until the server process at ``url`` answers 200 on /ping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await http("GET", url + "/ping"))[0] == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url}/ping never returned 200")


def run_in_process(config: ServerConfig, scenario: Callable[[TestClient, ModelServer], Awaitable[Any]],
                   *, wait_ready: bool = True) -> Any:
    """Run ``scenario(client, server)`` against an in-process server on 127.0.0.1."""

    async def main() -> Any:
        server = ModelServer(config)
        async with TestClient(TestServer(server.app, host="127.0.0.1", port=0)) as client:
            if wait_ready and not config.multi_model:
                await wait_ping(client)
            return await scenario(client, server)

    return asyncio.run(main())


class ServerProcess:
    """A ``python -m catkit.serving.server`` subprocess; ``url`` once ready."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None,
                 module: str = "catkit.serving.server") -> None:
        self.ready_file = workdir / f"ready-{time.monotonic_ns()}.json"
        self.log_path = workdir / f"server-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--port", "0",
             "--ready-file", str(self.ready_file)],
            cwd=workdir, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=self._log, stderr=self._log,
        )
        self.port = 0

    def wait_ready(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no ready file after {timeout} s: {self.log()}")
            time.sleep(0.02)
        info = json.loads(self.ready_file.read_text())
        assert info["pid"] == self.proc.pid
        self.port = info["port"]
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def spawn(*args: str, env: dict[str, str] | None = None, module: str = "catkit.serving.server") -> ServerProcess:
        server = ServerProcess(list(args), tmp_path, env, module)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()


async def http(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        return resp.status, dict(resp.headers), await resp.read()


@pytest.fixture
def sv() -> Any:
    """Helpers and handler sources for test modules (pytest's importlib mode can't import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        ECHO=ECHO, IDENTITY=IDENTITY, SLOW=SLOW, FAILING=FAILING, HUNGRY=HUNGRY,
        run_in_process=run_in_process, wait_ping=wait_ping, wait_http_ping=wait_http_ping, http=http,
        started_calls=started_calls, wait_until=wait_until_async, ROOT=ROOT,
    )
