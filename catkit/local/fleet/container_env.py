"""Which container ``Environment`` variables a model may give its model-server process: an allowlist.

A container definition's ``Environment`` becomes the environment of a real process on this machine,
so a name that makes the C library, Python, OpenSSL or another runtime load code (``LD_PRELOAD``,
``PYTHONPATH``, ``OPENSSL_CONF``...) would run code from outside the model archive. A variable is
allowed when it is:

1. one AWS documents for its inference containers - any ``SAGEMAKER_*`` (sagemaker-inference-toolkit,
   sagemaker-containers), ``SM_*``, ``HF_*`` (Hugging Face DLCs), ``MMS_*`` / ``TS_*`` (Multi Model
   Server, TorchServe), ``OPTION_*`` / ``SERVING_*`` (DJL/LMI), ``OMP_*`` / ``MKL_*`` thread counts,
   ``CATKIT_*`` (catkit's own per-model settings) - or one of a few harmless interpreter switches
   (:data:`HARMLESS`); or
2. any other name the user picked that matches AWS's key pattern ``[a-zA-Z_][a-zA-Z0-9_]*`` and is not
   a loader or runtime hook (:data:`HOOK_NAMES`, :data:`HOOK_PREFIXES`, compared case-insensitively).

Everything else is refused at CreateModel with a ValidationException naming the variable
(:func:`check_environment`); the instance launcher applies the same rule again
(:func:`allowed_environment`) for models stored before the rule existed. AWS's limits are kept too:
botocore's ``ContainerDefinition.Environment`` shape (EnvironmentMap: at most 100 entries, keys and
values up to 1024 characters, key pattern above) and the API reference's 32 KB for all keys and
values of a CreateModel request combined (ContainerDefinition "Environment").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from catkit.local.errors import AwsError

log = logging.getLogger("catkit.local.fleet.container_env")

#: Prefixes of the variables AWS's inference containers document (see the module docstring).
DOCUMENTED_PREFIXES = ("SAGEMAKER_", "SM_", "HF_", "MMS_", "TS_", "OPTION_", "SERVING_", "OMP_", "MKL_",
                       "CATKIT_")
#: Interpreter switches that change buffering/encoding only (AWS's own Dockerfiles set the first two).
HARMLESS = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "PYTHONHASHSEED",
                      "PYTHONUTF8", "PYTHONFAULTHANDLER"})
#: Families of loader/runtime hooks: the dynamic loader (glibc, macOS), Python's startup/import
#: hooks, OpenSSL's configuration and provider modules, glibc's malloc tuning.
HOOK_PREFIXES = ("LD_", "DYLD_", "PYTHON", "OPENSSL_", "MALLOC_")
#: Single hook variables: glibc (iconv modules, locale/message catalogues, tunables, resolver
#: files), other runtimes' option/library variables (Node, Perl, Ruby, Java, GLib/GTK modules,
#: coverage's start-up hook), the program search path and bash's start-up hooks.
HOOK_NAMES = frozenset({
    "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",
    "TZDIR", "NODE_OPTIONS", "NODE_PATH", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "GIO_MODULE_DIR", "GTK_PATH",
    "GTK_MODULES", "COVERAGE_PROCESS_START", "PATH", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4",
})

_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_ENTRIES = 100
MAX_LENGTH = 1024
MAX_TOTAL = 32 * 1024


def refusal(name: str) -> str | None:
    """Why ``name`` may not be set for the model server, or None if it may."""
    if not _KEY.fullmatch(name):
        return "does not match the pattern [a-zA-Z_][a-zA-Z0-9_]*"
    upper = name.upper()
    if upper in HARMLESS or upper.startswith(DOCUMENTED_PREFIXES):
        return None
    if upper in HOOK_NAMES or upper.startswith(HOOK_PREFIXES):
        return ("is a loader or runtime hook: it could make the model server load code from outside "
                "the model archive")
    return None


def check_environment(containers: Iterable[Mapping[str, Any]]) -> None:
    """Raise ValidationException for the first container ``Environment`` the local backend refuses."""
    total = 0
    for i, container in enumerate(containers):
        env = container.get("Environment") or {}
        if not isinstance(env, Mapping):
            raise AwsError("ValidationException", "Environment must be a map of strings to strings.")
        if len(env) > MAX_ENTRIES:
            raise AwsError("ValidationException", f"Environment has {len(env)} entries; at most {MAX_ENTRIES} "
                                                  "are allowed.")
        where = container.get("ContainerHostname") or ("PrimaryContainer" if i == 0 else f"container {i + 1}")
        for key, value in env.items():
            if len(key) > MAX_LENGTH or len(str(value)) > MAX_LENGTH:
                raise AwsError("ValidationException", f"Environment variable {key[:64]!r} of {where}: keys and "
                                                      f"values are at most {MAX_LENGTH} characters.")
            total += len(key) + len(str(value))
            reason = refusal(key)
            if reason is not None:
                raise AwsError(
                    "ValidationException",
                    f"Environment variable {key!r} of {where} {reason}. The local backend accepts the "
                    "variables AWS documents for its containers (SAGEMAKER_*, SM_*, HF_*, MMS_*, TS_*, ...) "
                    "and your own names that are not loader or runtime hooks (LD_*, PYTHON*, OPENSSL_*, "
                    "GCONV_PATH, NODE_OPTIONS, MALLOC_*, PATH, ...); see docs/contracts.md.",
                )
    if total > MAX_TOTAL:
        raise AwsError("ValidationException", f"The Environment maps of this model hold {total} characters; "
                                              f"at most {MAX_TOTAL} (32 KB) are allowed in total.")


def allowed_environment(env: Mapping[str, Any]) -> dict[str, str]:
    """``env`` without the variables :func:`refusal` refuses (each dropped one is logged)."""
    out: dict[str, str] = {}
    for key, value in env.items():
        reason = refusal(key)
        if reason is None:
            out[key] = str(value)
        else:
            log.warning("ignoring container environment variable %s: it %s", key, reason)
    return out


__all__ = ["DOCUMENTED_PREFIXES", "HARMLESS", "HOOK_NAMES", "HOOK_PREFIXES", "allowed_environment",
           "check_environment", "refusal"]
