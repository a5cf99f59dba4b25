"""Pointing boto3 and the SageMaker Python SDK at the local backend: ``use_local``.

``use_local()`` makes unchanged AWS code (boto3 clients, ``sagemaker.Session()``,
``get_execution_role()``, ``Session().default_bucket()``) talk to the local backend:

- starts the backend if needed (:func:`catkit.local.ensure_running`);
- sets ``AWS_ENDPOINT_URL`` to the gateway (always; botocore >= 1.31 sends every client there);
- sets ``AWS_DEFAULT_REGION``/``AWS_REGION`` (``us-east-1``) and dummy credentials
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) only where none are set;
- sets ``AWS_EC2_METADATA_DISABLED=true`` and ``SAGEMAKER_SUPPRESS_V2_WARNING=1``, and adds
  loopback to ``NO_PROXY``/``no_proxy`` (an ``HTTPS_PROXY`` must not capture gateway calls);
- patches the SageMaker SDK v2: it builds its STS clients with an explicit
  ``endpoint_url=sagemaker.utils.sts_regional_endpoint(region)`` (in ``Session.account_id``,
  ``get_caller_identity_arn``, ``default_bucket``, ``get_execution_role``), which
  ``AWS_ENDPOINT_URL`` cannot override; ``sts_regional_endpoint`` is replaced in
  ``sagemaker.utils`` and in every loaded module that imported it by name
  (``sagemaker.session``), so those clients reach the gateway too. If the SDK is not imported
  yet, an import hook patches ``sagemaker.utils`` as soon as it loads (no 2 s import here).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from typing import Any

_DUMMY_ACCESS_KEY = "AKIACATKITLOCAL00000"
_DUMMY_SECRET_KEY = "catkit-local-dummy-secret-key"

_state: dict[str, Any] = {"url": None, "original": None}


def _local_sts_endpoint(region: str | None = None) -> str:
    """Replacement for ``sagemaker.utils.sts_regional_endpoint``: the local gateway's URL."""
    url = _state["url"] or os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    original = _state["original"]
    return original(region) if original is not None else f"https://sts.{region}.amazonaws.com"


def set_aws_environment(url: str, region: str | None = None) -> None:
    """Set the ``AWS_*`` variables described in the module docstring for gateway ``url``."""
    os.environ["AWS_ENDPOINT_URL"] = url
    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    has_keys = os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY")
    has_profile = os.environ.get("AWS_PROFILE")
    if not has_keys and not has_profile:
        os.environ["AWS_ACCESS_KEY_ID"] = _DUMMY_ACCESS_KEY
        os.environ["AWS_SECRET_ACCESS_KEY"] = _DUMMY_SECRET_KEY
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    _bypass_proxies_for_loopback()
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches ``sagemaker.utils`` right after it is imported, so ``use_local()`` need not import
    the SDK (~2 s) and modules importing ``sts_regional_endpoint`` later get the patched one."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "sagemaker.utils":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        _apply_patch()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


_hook = _PatchOnImport()


def _apply_patch() -> bool:
    utils = sys.modules.get("sagemaker.utils")
    if utils is None:
        return False
    original = getattr(utils, "sts_regional_endpoint", None)
    if original is not None and original is not _local_sts_endpoint:
        _state["original"] = original
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "sagemaker" or name.startswith("sagemaker.")):
            continue
        current = getattr(module, "sts_regional_endpoint", None)
        if current is not None and current is _state["original"]:
            module.sts_regional_endpoint = _local_sts_endpoint
    return True


def _bypass_proxies_for_loopback() -> None:
    """Add loopback to ``NO_PROXY``/``no_proxy`` so botocore doesn't send gateway calls to a proxy."""
    wanted = ["127.0.0.1", "localhost", "::1"]
    for name in ("NO_PROXY", "no_proxy"):
        current = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        if "*" in current:
            continue
        missing = [h for h in wanted if h not in current]
        if missing:
            os.environ[name] = ",".join(current + missing)


def patch_sagemaker_sdk(url: str) -> bool:
    """Route the SageMaker SDK's explicit-endpoint STS clients to ``url``.

    Patches now if the SDK is imported, and in any case on its (later) import. Returns True if
    it patched a loaded SDK.
    """
    _state["url"] = url
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
    return _apply_patch()


def unpatch_sagemaker_sdk() -> None:
    """Undo :func:`patch_sagemaker_sdk` (for tests and for switching back to AWS)."""
    _state["url"] = None
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_hook)
    original = _state["original"]
    if original is None:
        return
    for name, module in list(sys.modules.items()):
        in_sdk = module is not None and (name == "sagemaker" or name.startswith("sagemaker."))
        if in_sdk and getattr(module, "sts_regional_endpoint", None) is _local_sts_endpoint:
            module.sts_regional_endpoint = original


def use_local(
    home: str | os.PathLike[str] | None = None,
    time_scale: float | None = None,
    port: int | None = None,
) -> str:
    """Start (or reuse) the local backend and point boto3 + the SageMaker SDK at it; returns the URL.

    With no ``home``/``port``, a catkit backend that ``AWS_ENDPOINT_URL`` already points at is used
    (:func:`catkit.local.lifecycle.attached`); starting one prints where.

    Environment changes are described in this module's docstring. Existing credentials and
    region are kept; ``AWS_ENDPOINT_URL`` is always set to the gateway.
    """
    from catkit.local import ensure_running
    from catkit.local.lifecycle import attached

    url = attached(home, port, time_scale) or ensure_running(home=home, port=port, time_scale=time_scale)
    set_aws_environment(url)
    patch_sagemaker_sdk(url)
    return url
