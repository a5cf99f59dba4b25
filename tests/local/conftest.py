"""Fixtures for tests that talk to a real local backend over HTTP with real boto3 clients.

Each backend is a :class:`catkit.testing.LocalBackend`: a separate process (the code path of
``catkit local start``) on a free 127.0.0.1 port with its own temporary ``CATKIT_HOME``, so tests
get real wire behaviour, process isolation (moto state is per process) and can restart or kill -9
it. Teardown always stops it (SIGTERM, then SIGKILL) and deletes the home.

Fixtures:

- ``local_backend`` (module scope): one backend shared by the tests of a module, all components.
  ``local_backend.url``, ``.home``, ``.pid``, ``.client("sagemaker")`` (boto3 client with
  ``endpoint_url``, region us-east-1, dummy credentials, no retries), ``.info()``
  (``/_catkit/info``).
- ``fresh_local_backend`` (function scope): a backend of its own for one test.
- ``local_backend_factory`` (function scope): ``factory(time_scale=None, components=None,
  home=None, env=None)`` starts more backends (e.g. ``time_scale=60``, or ``components=()`` for only
  s3/sts/iam); all are stopped at teardown.
- ``module_backend_factory``: the same, module scope.
- ``start_local_backend(home, ...)`` (from :mod:`catkit.testing.backend`) is a plain function for
  session-scoped fixtures of your own; call ``.close()`` on the result.

``LocalBackend`` also offers ``stop()``, ``start()`` (same home; the previous port is reused when
it is free, so ``url`` normally stays the same), ``restart()`` and ``kill()`` (SIGKILL, like a
crash; waits until the crash is detectable) for durability tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from catkit.testing.backend import BackendFactory, LocalBackend, start_local_backend


@pytest.fixture(scope="module")
def local_backend() -> Iterator[LocalBackend]:
    """One backend (all components) shared by a test module."""
    with start_local_backend() as backend, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATKIT_HOME", str(backend.home))
        yield backend


@pytest.fixture
def fresh_local_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    """A backend (all components) of its own for one test."""
    with start_local_backend() as backend:
        monkeypatch.setenv("CATKIT_HOME", str(backend.home))
        yield backend


@pytest.fixture
def local_backend_factory() -> Iterator[Callable[..., LocalBackend]]:
    """``factory(time_scale=None, components=None, home=None, env=None) -> LocalBackend``; all closed
    at teardown."""
    factory = BackendFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_backend_factory() -> Iterator[Callable[..., LocalBackend]]:
    """Module-scoped ``local_backend_factory``: backends live until the module's tests are done."""
    factory = BackendFactory()
    try:
        yield factory
    finally:
        factory.close()
