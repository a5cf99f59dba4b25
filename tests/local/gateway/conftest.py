"""An in-process backend for gateway tests that need to register their own (fake) services.

``inproc_backend_factory(services={"sagemaker": svc})`` runs a ``Backend`` (no components) on
an event loop in a background thread and returns it with ``.url`` and ``.run_sync(coro)`` (runs a
coroutine on the backend's loop); it is stopped at teardown.
moto's state is per process, so only one in-process backend runs at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from catkit.local.backend import Backend


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def inproc_backend_factory(tmp_path, monkeypatch) -> Iterator[Callable[..., Backend]]:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "home"))
    runner = _LoopThread()
    started: list[Backend] = []

    def factory(services: dict[str, Any] | None = None, **kwargs: Any) -> Backend:
        kwargs.setdefault("components", ())
        backend = Backend(tmp_path / "home", **kwargs)
        for name, service in (services or {}).items():
            backend.add_service(name, service)
        runner.run(backend.start())
        backend.run_sync = runner.run  # run a coroutine on the backend's loop, e.g. backend.stop()
        started.append(backend)
        return backend

    try:
        yield factory
    finally:
        for backend in started:
            runner.run(backend.stop())
        runner.close()
