"""A local backend process to test against: :class:`LocalBackend` and the helpers that start it.

Owns the one handle tests and benchmarks use on a real ``catkit local`` backend: a separate
process started with :func:`catkit.local.lifecycle.start` (the code path of ``catkit local start``)
in its own ``CATKIT_HOME`` (a temporary one unless given), on a free 127.0.0.1 port. The handle
offers the URL and home, boto3 clients aimed at it, ``/_catkit/info``, and stop / start / restart /
kill -9 for durability tests; :meth:`LocalBackend.close` stops it and deletes a temporary home.

- :func:`start_local_backend` - start one (the caller closes it, or uses it as a context manager);
- :class:`BackendFactory` - starts backends on demand and closes all of them at the end (what the
  ``*_backend_factory`` fixtures of the test suites yield);
- :func:`process_exited` - whether a backend or instance process is gone (for kill/stop tests).

Plain Python (no pytest), so benchmarks and users' own test suites can import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import psutil
from botocore.config import Config

from catkit.local import lifecycle

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DUMMY_CREDENTIALS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "dummy-secret"}

_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def process_exited(pid: int) -> bool:
    """True once process ``pid`` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _boto3_session() -> boto3.session.Session:
    """One private boto3 session for all test clients (creating one per client costs ~150 ms)."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


class LocalBackend:
    """Handle on one backend process in its own ``CATKIT_HOME``.

    ``home`` defaults to a new temporary directory, which :meth:`close` deletes. ``time_scale``
    and ``components`` are passed to the backend (``components=()``: only s3/sts/iam); ``env``
    holds environment variables for the backend process (set only while it starts).
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        time_scale: float | None = None,
        components: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        owns_home: bool | None = None,
    ) -> None:
        self.owns_home = home is None if owns_home is None else owns_home
        self.home = Path(tempfile.mkdtemp(prefix="catkit-test-home-")) if home is None else Path(home)
        self.time_scale = time_scale
        self.components = None if components is None else tuple(components)
        self.env = dict(env or {})
        self.url = ""
        self.pid = 0

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, port: int | None = None) -> str:
        """Start the backend (same home: its last port is reused when free); returns the URL."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            self.url = lifecycle.start(self.home, port, self.time_scale, components=self.components)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.pid = int((lifecycle.read_state(self.home) or {}).get("pid") or 0)
        return self.url

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s (state on disk survives)."""
        lifecycle.stop(self.home, timeout=20)

    def restart(self, *, kill: bool = False) -> str:
        """Stop (with ``kill``: SIGKILL, like a crash) and start again on the same home; returns the URL."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def kill(self) -> None:
        """SIGKILL the backend, like a crash; waits until its lock is released."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(self.pid, os.WNOHANG)
            if lifecycle.status(self.home) is None:
                return
            time.sleep(0.02)
        raise AssertionError(f"backend pid {self.pid} still holds its lock after SIGKILL")

    def client(self, service: str, **overrides: Any) -> Any:
        """A boto3 client for ``service`` aimed at this backend: region us-east-1, dummy credentials,
        no retries, 90-s read timeout (override any argument). Safe to call from several threads."""
        args: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": REGION,
            "config": Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=90,
                             max_pool_connections=64),
            **DUMMY_CREDENTIALS,
        }
        args.update(overrides)
        with _session_lock:  # creating clients from one session is not thread-safe; using them is
            return _boto3_session().client(service, **args)

    def info(self) -> dict[str, Any]:
        """``/_catkit/info``: services, components, time scale, emulated now."""
        with urllib.request.urlopen(self.url + "/_catkit/info", timeout=5) as resp:
            return json.loads(resp.read())

    def reset(self) -> dict[str, Any]:
        """``POST /_catkit/reset``: forget every resource, instance and object (keeps the process)."""
        request = urllib.request.Request(self.url + "/_catkit/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def healthy(self) -> bool:
        return lifecycle.health(self.url, timeout=5) is not None

    def _ready_docs(self, endpoint: str) -> list[dict[str, Any]]:
        docs = []
        for ready in sorted((self.home / "instances" / endpoint).glob("*/ready.json")):
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(ready.read_text())
                with contextlib.suppress(OSError):
                    doc["token"] = (ready.parent / "auth-token").read_text().strip()
                docs.append(doc)
        return docs

    def instance_pids(self, endpoint: str) -> list[int]:
        """PIDs of the endpoint's model-server processes (from their ready files)."""
        return [int(d["pid"]) for d in self._ready_docs(endpoint) if "pid" in d]

    def instance_urls(self, endpoint: str) -> list[str]:
        """``http://127.0.0.1:<port>`` of each of the endpoint's model servers (reached directly)."""
        return [f"http://127.0.0.1:{d['port']}" for d in self._ready_docs(endpoint) if "port" in d]

    def instance_clients(self, endpoint: str) -> list[tuple[str, dict[str, str]]]:
        """``(url, headers)`` of each of the endpoint's model servers: the headers carry the
        instance's token (the servers refuse requests without it; catkit.serving.auth), so a
        test or benchmark can talk to an instance the way the gateway does."""
        from catkit.serving.auth import TOKEN_HEADER

        return [(f"http://127.0.0.1:{d['port']}", {TOKEN_HEADER: d.get("token", "")})
                for d in self._ready_docs(endpoint) if "port" in d]

    def close(self) -> None:
        """Stop the backend and delete its home if it is a temporary one."""
        try:
            with contextlib.suppress(Exception):
                self.stop()
        finally:
            if self.owns_home:
                shutil.rmtree(self.home, ignore_errors=True)


def start_local_backend(
    home: str | os.PathLike[str] | None = None,
    *,
    time_scale: float | None = None,
    components: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> LocalBackend:
    """Start a backend (in a temporary home unless given); the caller must ``close()`` it."""
    backend = LocalBackend(home, time_scale=time_scale, components=components, env=env)
    try:
        backend.start()
    except BaseException:
        backend.close()
        raise
    return backend


class BackendFactory:
    """``factory(time_scale=..., components=None, home=None, env=None) -> LocalBackend`` (started);
    :meth:`close` closes every backend it started, newest first. ``default_time_scale`` applies
    when a call gives none."""

    def __init__(self, default_time_scale: float | None = None) -> None:
        self.default_time_scale = default_time_scale
        self.started: list[LocalBackend] = []

    def __call__(
        self,
        time_scale: float | None = None,
        components: Sequence[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> LocalBackend:
        scale = self.default_time_scale if time_scale is None else time_scale
        backend = start_local_backend(home, time_scale=scale, components=components, env=env)
        self.started.append(backend)
        return backend

    def close(self) -> None:
        for backend in reversed(self.started):
            with contextlib.suppress(Exception):
                backend.close()
        self.started.clear()
