"""Pointing boto3 and the SageMaker Python SDK (v2 or v3) at the local backend: ``use_local``.

``use_local()`` makes unchanged AWS code (boto3 clients; SDK v2's ``sagemaker.Session()``,
``get_execution_role()``, ``Session().default_bucket()``; SDK v3's ``sagemaker.core`` resources,
``sagemaker.core.helper.session_helper.Session`` / ``get_execution_role`` and ``ModelBuilder``)
talk to the local backend:

- starts the backend if needed (:func:`catkit.local.ensure_running`);
- sets ``AWS_ENDPOINT_URL`` to the gateway (always; botocore >= 1.31 sends every client there);
- sets ``AWS_DEFAULT_REGION``/``AWS_REGION`` (``us-east-1``) and dummy credentials
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) only where none are set;
- sets ``AWS_EC2_METADATA_DISABLED=true`` and ``SAGEMAKER_SUPPRESS_V2_WARNING=1``, and adds
  loopback to ``NO_PROXY``/``no_proxy`` (an ``HTTPS_PROXY`` must not capture gateway calls);
- patches the SageMaker SDK: both generations build their STS clients with an explicit
  ``endpoint_url=sts_regional_endpoint(region)`` (v2: ``Session.account_id``,
  ``get_caller_identity_arn``, ``default_bucket``, ``get_execution_role``; v3: the same methods of
  ``sagemaker.core.helper.session_helper``), which ``AWS_ENDPOINT_URL`` cannot override. Every
  ``sts_regional_endpoint`` function of the SDK (v2: ``sagemaker.utils``; v3:
  ``sagemaker.core.common_utils`` and its own copy in ``sagemaker.core.helper.session_helper``)
  is replaced in its module and in every loaded ``sagemaker.*`` module that imported it by name,
  so those clients reach the gateway too;
- keeps the SDK's telemetry (an HTTPS GET to an S3 host of AWS, sent with the dummy account by
  decorated calls such as v3's ``ModelBuilder.build`` or v2's ``Estimator.fit``) from leaving the machine: its
  one sender, ``_requests_helper`` (v2 ``sagemaker.telemetry.telemetry_logging``, v3
  ``sagemaker.core.telemetry.telemetry_logging``), is replaced by a no-op.

If the SDK is not imported yet, an import hook patches those modules as soon as they load (no
2 s import here). Nothing else of the SDK is changed: the rest of v3 builds plain boto3 clients,
which follow ``AWS_ENDPOINT_URL``. v3's ``ModelBuilder`` also simulates the execution role's IAM
policy and streams the endpoint's CloudWatch Logs while deploying; the gateway answers both
(``catkit.local.identity``, ``catkit.local.services.logs``).
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

# Modules of the SDK that define a function catkit replaces, by generation:
#   sts_regional_endpoint - v2: sagemaker.utils; v3: sagemaker.core.common_utils and its own copy in
#                           sagemaker.core.helper.session_helper (the STS clients with explicit endpoints)
#   _requests_helper      - the one network call of SDK telemetry (a GET to an S3 host of AWS):
#                           v2 sagemaker.telemetry.telemetry_logging, v3 sagemaker.core.telemetry...
_PATCHED_MODULES = frozenset(
    {
        "sagemaker.utils",
        "sagemaker.core.common_utils",
        "sagemaker.core.helper.session_helper",
        "sagemaker.telemetry.telemetry_logging",
        "sagemaker.core.telemetry.telemetry_logging",
    }
)

# url: the gateway; original: one SDK sts_regional_endpoint (the fallback when no URL is set);
# replaced: (module name, function name) -> the function that module held before patching.
_state: dict[str, Any] = {"url": None, "original": None, "replaced": {}}


def _local_sts_endpoint(region: str | None = None) -> str:
    """Replacement for the SDK's ``sts_regional_endpoint``: the local gateway's URL."""
    url = _state["url"] or os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url
    original = _state["original"]
    return original(region) if original is not None else f"https://sts.{region}.amazonaws.com"


def _no_telemetry(url: str, timeout: Any = None) -> None:
    """Replacement for the SDK's telemetry ``_requests_helper``: against the local backend the
    account is a dummy and the request would leave the machine, so nothing is sent (the SDK
    treats a None response as "not emitted")."""
    return None


#: function name -> its replacement while the local backend is in use.
_REPLACEMENTS: dict[str, Any] = {
    "sts_regional_endpoint": _local_sts_endpoint,
    "_requests_helper": _no_telemetry,
}


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
    """Patches the SDK modules of :data:`_PATCHED_MODULES` right after each is imported, so
    ``use_local()`` need not import the SDK (~2 s) and modules importing those functions later
    get the replacements."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _PATCHED_MODULES:
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


def _sdk_modules() -> list[tuple[str, Any]]:
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if module is not None and (name == "sagemaker" or name.startswith("sagemaker."))
    ]


def _is_sdk_function(value: Any, name: str) -> bool:
    """True for the SDK's own ``name`` function (not catkit's replacement, nor a namesake)."""
    return (
        callable(value)
        and value is not _REPLACEMENTS[name]
        and getattr(value, "__name__", "") == name
        and str(getattr(value, "__module__", "")).startswith("sagemaker")
    )


def _apply_patch() -> bool:
    """Replace the SDK functions of :data:`_REPLACEMENTS` in every loaded ``sagemaker.*`` module
    (where they are defined and where they were imported by name); True if any patched module
    is loaded."""
    if not any(name in sys.modules for name in _PATCHED_MODULES):
        return False
    replaced: dict[tuple[str, str], Any] = _state["replaced"]
    for module_name, module in _sdk_modules():
        for name, replacement in _REPLACEMENTS.items():
            current = getattr(module, name, None)
            if not _is_sdk_function(current, name):
                continue
            if name == "sts_regional_endpoint" and _state["original"] is None:
                _state["original"] = current
            replaced[(module_name, name)] = current
            setattr(module, name, replacement)
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
    """Route the SageMaker SDK's (v2 or v3) explicit-endpoint STS clients to ``url`` and keep its
    telemetry on this machine.

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
    replaced: dict[tuple[str, str], Any] = _state["replaced"]
    for (module_name, name), original in list(replaced.items()):
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, name, None) is _REPLACEMENTS[name]:
            setattr(module, name, original)
    replaced.clear()


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


def sdk_generation() -> int | None:
    """The installed SageMaker Python SDK's major version (2 or 3), or None when it is absent.

    Read from the package metadata, without importing the SDK (its import takes seconds)."""
    from importlib import metadata

    try:
        version = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None
