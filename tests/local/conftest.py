"""Fixtures for tests that talk to a real local backend over HTTP with real boto3 clients.

Each backend is a separate process (``catkit.local.lifecycle.start``, the same code path as
``catkit local start``) on a free 127.0.0.1 port with its own temporary ``CATKIT_HOME``, so
tests get real wire behaviour, process isolation (moto state is per process) and can restart or
kill -9 it. Teardown always stops it (SIGTERM, then SIGKILL) and deletes the home.

Fixtures:

- ``local_backend`` (module scope): one backend shared by the tests of a module, all components.
  ``local_backend.url``, ``.home``, ``.pid``, ``.client("sagemaker")`` (boto3 client with
  ``endpoint_url``, region us-east-1, dummy credentials, no retries), ``.info()``
  (``/_catkit/info``).
- ``fresh_local_backend`` (function scope): a backend of its own for one test.
- ``local_backend_factory`` (function scope): ``factory(time_scale=None, components=None,
  home=None)`` starts more backends (e.g. ``time_scale=60``, or ``components=()`` for only
  s3/sts/iam); all are stopped at teardown.
- ``module_backend_factory``: the same, module scope.
- ``start_local_backend(home, ...)`` is a plain function for session-scoped fixtures of your own;
  call ``.close()`` on the result.

``LocalBackend`` also offers ``stop()``, ``start()`` (same home; the previous port is reused when
it is free, so ``url`` normally stays the same), ``restart()`` and ``kill()`` (SIGKILL, like a
crash; waits until the crash is detectable) for durability tests. Set ``CATKIT_LOCAL_COMPONENTS``
or pass ``components=()`` for a backend with only s3/sts/iam (no endpoint/metrics components).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from catkit.local import lifecycle

DUMMY_CREDENTIALS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "dummy-secret"}
REGION = "us-east-1"


class LocalBackend:
    """Handle on one backend process in a temp ``CATKIT_HOME``."""

    def __init__(
        self,
        home: Path,
        *,
        time_scale: float | None = None,
        components: Sequence[str] | None = None,
        owns_home: bool = True,
    ) -> None:
        self.home = Path(home)
        self.time_scale = time_scale
        self.components = None if components is None else tuple(components)
        self.owns_home = owns_home
        self.url = ""
        self.pid = 0

    def start(self, port: int | None = None) -> str:
        self.url = lifecycle.start(self.home, port, self.time_scale, components=self.components)
        doc = lifecycle.read_state(self.home) or {}
        self.pid = int(doc.get("pid") or 0)
        return self.url

    def stop(self) -> None:
        lifecycle.stop(self.home, timeout=15)

    def restart(self) -> str:
        self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL the backend, like a crash; waits until its lock is released."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(self.pid, os.WNOHANG)
            if lifecycle.status(self.home) is None:
                return
            time.sleep(0.02)
        raise AssertionError(f"backend pid {self.pid} still holds its lock after SIGKILL")

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` aimed at this backend (override any argument)."""
        args: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "config": Config(retries={"max_attempts": 1, "mode": "standard"}),
            **DUMMY_CREDENTIALS,
        }
        args.update(kwargs)
        return boto3.client(service, **args)

    def info(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_catkit/info", timeout=5) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.owns_home:
                shutil.rmtree(self.home, ignore_errors=True)


def start_local_backend(
    home: Path | None = None,
    *,
    time_scale: float | None = None,
    components: Sequence[str] | None = None,
) -> LocalBackend:
    """Start a backend (a temp home unless given); the caller must ``close()`` it."""
    owns = home is None
    root = Path(tempfile.mkdtemp(prefix="catkit-test-home-")) if home is None else Path(home)
    backend = LocalBackend(root, time_scale=time_scale, components=components, owns_home=owns)
    try:
        backend.start()
    except BaseException:
        backend.close()
        raise
    return backend


@pytest.fixture(scope="module")
def local_backend() -> Iterator[LocalBackend]:
    """One backend (all components) shared by a test module."""
    backend = start_local_backend()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATKIT_HOME", str(backend.home))
        try:
            yield backend
        finally:
            backend.close()


@pytest.fixture
def fresh_local_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    """A backend (all components) of its own for one test."""
    backend = start_local_backend()
    monkeypatch.setenv("CATKIT_HOME", str(backend.home))
    try:
        yield backend
    finally:
        backend.close()


def _factory_fixture() -> Iterator[Callable[..., LocalBackend]]:
    started: list[LocalBackend] = []

    def factory(
        time_scale: float | None = None, components: Sequence[str] | None = None, home: Path | None = None
    ) -> LocalBackend:
        backend = start_local_backend(home, time_scale=time_scale, components=components)
        started.append(backend)
        return backend

    try:
        yield factory
    finally:
        for backend in reversed(started):
            with contextlib.suppress(Exception):
                backend.close()


@pytest.fixture
def local_backend_factory() -> Iterator[Callable[..., LocalBackend]]:
    """``factory(time_scale=None, components=None, home=None) -> LocalBackend``; all closed at teardown."""
    yield from _factory_fixture()


@pytest.fixture(scope="module")
def module_backend_factory() -> Iterator[Callable[..., LocalBackend]]:
    """Module-scoped ``local_backend_factory``: backends live until the module's tests are done."""
    yield from _factory_fixture()
