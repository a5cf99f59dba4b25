"""A pytest plugin for your own test suites: one local backend per session, reset before each test.

Registered through the ``pytest11`` entry point (``catkit = catkit.testing.pytest_plugin``), so it
is active wherever catkit is installed; it starts nothing until a test asks for one of its
fixtures. ``-p no:catkit`` turns it off.

Fixtures:

- ``catkit_backend`` (session): a :class:`~catkit.testing.backend.LocalBackend` in a temporary
  ``CATKIT_HOME``, stopped at the end. While it runs, ``AWS_ENDPOINT_URL`` points at it and a
  region and dummy credentials are set where none are, so unchanged boto3 code (and
  ``catkit.use_local()`` / ``catkit.Session(backend="local")``, which reuse it) talks to it.
- ``catkit_local`` (function): the same backend, reset first (``POST /_catkit/reset``: instances
  killed, every resource, object and metric forgotten, in milliseconds), so each test starts empty.
- ``catkit_clients`` (function): ``catkit_local``'s boto3 clients as attributes - ``sagemaker``,
  ``runtime`` (sagemaker-runtime), ``s3``, ``autoscaling`` (application-autoscaling),
  ``cloudwatch``, ``sts``, ``iam`` - plus ``backend``, ``url`` and ``region``.
- ``catkit_sagemaker_session`` (function): a SageMaker Python SDK session on ``catkit_local``
  (v2 ``sagemaker.Session``, else v3's ``sagemaker.core.helper.session_helper.Session``; skipped
  when the SDK is not installed), its STS calls routed to the backend as ``use_local()`` does.

Options: ``--catkit-time-scale`` or the ini value ``catkit_time_scale`` (default 1: the emulated
clock is the wall clock, so ``datetime.now()`` windows work), ``catkit_region`` (default
``us-east-1``) and ``catkit_provisioning_seconds`` (default 0: endpoints are InService as soon as
their model server answers ``/ping``; AWS takes minutes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from catkit.testing.backend import LocalBackend

# Imported lazily: the plugin loads in every pytest run where catkit is installed.

_CLIENTS = {
    "sagemaker": "sagemaker",
    "runtime": "sagemaker-runtime",
    "s3": "s3",
    "autoscaling": "application-autoscaling",
    "cloudwatch": "cloudwatch",
    "sts": "sts",
    "iam": "iam",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("catkit", "catkit local backend")
    group.addoption("--catkit-time-scale", type=float, default=None,
                    help="time scale of the catkit local backend (default: ini catkit_time_scale, or 1)")
    parser.addini("catkit_time_scale", "time scale of the catkit local backend fixture", default="1")
    parser.addini("catkit_region", "region of the catkit fixtures' clients", default="us-east-1")
    parser.addini("catkit_provisioning_seconds",
                  "emulated seconds an instance takes to provision (AWS: minutes; default 0 for tests)", default="0")


def _option(config: pytest.Config, name: str, default: str) -> str:
    try:
        value = config.getini(name)
    except ValueError:  # the plugin's fixtures imported into a conftest without its hooks
        return default
    return str(value or default)


def _time_scale(config: pytest.Config) -> float:
    try:
        given = config.getoption("--catkit-time-scale")
    except ValueError:
        given = None
    return float(given if given is not None else _option(config, "catkit_time_scale", "1"))


@pytest.fixture(scope="session")
def catkit_backend(request: pytest.FixtureRequest) -> Iterator[LocalBackend]:
    """One local backend for the session; AWS_* variables point at it while it runs."""
    from catkit.testing.backend import DUMMY_CREDENTIALS, start_local_backend

    region = _option(request.config, "catkit_region", "us-east-1")
    env = {"CATKIT_PROVISIONING_SECONDS": _option(request.config, "catkit_provisioning_seconds", "0")}
    with start_local_backend(time_scale=_time_scale(request.config), env=env) as backend, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", backend.url)
        mp.setenv("CATKIT_HOME", str(backend.home))
        if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
            mp.setenv("AWS_DEFAULT_REGION", region)
        if not os.environ.get("AWS_ACCESS_KEY_ID"):
            mp.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["aws_access_key_id"])
            mp.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["aws_secret_access_key"])
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        backend.region = region  # type: ignore[attr-defined]
        yield backend


@pytest.fixture
def catkit_local(catkit_backend: LocalBackend) -> LocalBackend:
    """The session's backend, reset before the test: no endpoints, models, objects or metrics."""
    catkit_backend.reset()
    return catkit_backend


@pytest.fixture
def catkit_clients(catkit_local: LocalBackend) -> SimpleNamespace:
    """boto3 clients on the (reset) backend: ``.sagemaker``, ``.runtime``, ``.s3``, ``.autoscaling``,
    ``.cloudwatch``, ``.sts``, ``.iam``; ``.backend``, ``.url``, ``.region``."""
    region = getattr(catkit_local, "region", "us-east-1")
    clients: dict[str, Any] = {attr: catkit_local.client(service, region_name=region)
                               for attr, service in _CLIENTS.items()}
    return SimpleNamespace(backend=catkit_local, url=catkit_local.url, region=region, **clients)


@pytest.fixture
def catkit_sagemaker_session(catkit_clients: SimpleNamespace) -> Iterator[Any]:
    """A SageMaker Python SDK session on the backend (skipped without the SDK)."""
    import boto3

    from catkit.local.sdk import patch_sagemaker_sdk, unpatch_sagemaker_sdk
    from catkit.testing.backend import DUMMY_CREDENTIALS

    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    patch_sagemaker_sdk(catkit_clients.url)
    boto_session = boto3.Session(region_name=catkit_clients.region, **DUMMY_CREDENTIALS)
    try:
        try:
            from sagemaker.session import Session as SdkSession  # v2
        except ImportError:
            try:
                from sagemaker.core.helper.session_helper import Session as SdkSession  # v3
            except ImportError:
                pytest.skip("the SageMaker Python SDK is not installed")
        yield SdkSession(boto_session=boto_session, sagemaker_client=catkit_clients.sagemaker,
                         sagemaker_runtime_client=catkit_clients.runtime)
    finally:
        unpatch_sagemaker_sdk()


__all__ = [
    "catkit_backend",
    "catkit_clients",
    "catkit_local",
    "catkit_sagemaker_session",
    "pytest_addoption",
]
