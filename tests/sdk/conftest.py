"""Fixtures for the SageMaker Python SDK tests: a local backend per module and a clean environment.

These tests run in two environments (CI): the main one (SDK v2, ``catkit[sdk2]``) and one where SDK
v3 was installed before catkit (``make test-sdk3``). Each module says which SDK generation it needs
(``catkit.local.sdk.sdk_generation()``) and is skipped elsewhere; all are marked ``sdk``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from catkit.testing.backend import BackendFactory, LocalBackend

#: AWS settings a subprocess must not inherit (use_local() sets its own).
ENV_KEYS = (
    "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_EC2_METADATA_DISABLED", "SAGEMAKER_SUPPRESS_V2_WARNING",
    "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
)


@pytest.fixture(scope="module")
def sdk_backend() -> Iterator[LocalBackend]:
    """One backend (all components, time scale 600) for a module's SDK tests."""
    factory = BackendFactory()
    try:
        yield factory(time_scale=600)
    finally:
        factory.close()


@pytest.fixture
def run_script(sdk_backend: LocalBackend, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_script(code, *args, timeout=180)``: run ``code`` in a fresh interpreter whose
    ``CATKIT_HOME`` is the module's backend and whose environment has no AWS settings."""

    def run(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        env["CATKIT_HOME"] = str(sdk_backend.home)
        return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)

    return run
