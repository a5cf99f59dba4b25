"""What an instance's model-server process is started with: containers, code, workers, log names.

Pure decisions for :mod:`catkit.local.fleet.instances`, from a variant's container definitions:

- which AWS container each image emulates and whether its framework is installed
  (:func:`check_frameworks`: refused before any provisioning delay, so CreateEndpoint fails at once);
- where the user script comes from (:func:`code_source`): ``SAGEMAKER_SUBMIT_DIRECTORY`` as an
  ``s3://`` sourcedir.tar.gz (what the SDK uploads for ``SKLearnModel``/``XGBoostModel``
  ``entry_point``; downloaded from the backend's S3 and unpacked into the instance's own code
  directory) or ``/opt/ml/model/code`` (the archive's ``code/``, what the SDK sets when it repacks);
  any other path would be a file on this machine, not in the model, and is refused;
- how many handler threads the server runs (:func:`workers_for`): ``SAGEMAKER_MODEL_SERVER_WORKERS``
  when set, else the instance type's vCPUs (the toolkits' default is one worker per CPU:
  sagemaker-containers ``_env.ServingEnv`` ``num_cpus()``, MMS/TorchServe ``default_workers_per_model``),
  never more than the type's vCPUs (``SAGEMAKER_MODEL_SERVER_WORKERS=1000`` would otherwise start
  1,000 threads on this machine; AWS does not cap it - a local resource limit) and capped at
  ``CATKIT_MAX_MODEL_SERVER_WORKERS`` (default 16) so a 96-vCPU type does not start 96 threads on a laptop;
- how many bytes one archive may unpack to (:func:`unpacked_cap_bytes`): ``CATKIT_MAX_UNPACKED_MB``
  (``InstanceSettings.max_unpacked_mb``) when set, else an eighth of the instance type's storage
  volume (3.75 GiB of the usual 30 GiB), so a decompression bomb cannot fill the disk once per instance;
- the CloudWatch Logs names AWS would use (:func:`log_names`): group
  ``/aws/sagemaker/Endpoints/<endpoint>``, stream ``<variant>/<instance-id>``.

Plus two file helpers of an instance: unpacking a downloaded archive and a log file's tail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from catkit.instance_types import get_instance_type
from catkit.names import ENDPOINT_INSTANCE_METRICS
from catkit.serving.containers import (
    MODEL_CODE_DIR,
    SUBMIT_DIR_ENV,
    container_for_image,
    missing_framework,
)

DEFAULT_MAX_WORKERS = 16
MAX_UNPACKED_ENV = "CATKIT_MAX_UNPACKED_MB"
#: One archive may unpack to at most this fraction (1/N) of the instance type's storage volume.
STORAGE_FRACTION = 8
MAX_WORKERS_ENV = "CATKIT_MAX_MODEL_SERVER_WORKERS"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"


@dataclass(frozen=True)
class CodeSource:
    """Where a container's user script lives: ``s3_url`` to download, or the archive's ``code/``."""

    s3_url: str | None = None  # sourcedir.tar.gz to unpack into the instance's code directory


def check_frameworks(images: list[str | None], variant: str) -> None:
    """ValueError (the FailureReason) if a container's framework is not installed here."""
    for image in images:
        kind = container_for_image(image)
        missing = missing_framework(kind)
        if missing:
            raise ValueError(
                f"Failed to start the container for production variant {variant} (image {image}): {missing}"
            )


def code_source(env: Mapping[str, str], container: str) -> CodeSource:
    """The :class:`CodeSource` named by ``SAGEMAKER_SUBMIT_DIRECTORY``; ValueError for a local path."""
    raw = (env.get(SUBMIT_DIR_ENV) or "").strip()
    if not raw or raw.rstrip("/") == MODEL_CODE_DIR:
        return CodeSource()
    if raw.startswith("s3://"):
        return CodeSource(s3_url=raw)
    raise ValueError(
        f'Container "{container}": {SUBMIT_DIR_ENV}={raw!r} is a path on the local machine, not in the model. '
        f"The local backend runs code only from the model archive ({MODEL_CODE_DIR}) or from an s3:// "
        "sourcedir.tar.gz in its S3 (what the SageMaker SDK uploads for entry_point)."
    )


def workers_for(instance_type: str, env: Mapping[str, str] | None = None,
                environ: Mapping[str, str] | None = None) -> int:
    """Handler threads for one instance (see the module docstring)."""
    host = os.environ if environ is None else environ
    cap = DEFAULT_MAX_WORKERS
    if host.get(MAX_WORKERS_ENV):
        try:
            cap = max(1, int(host[MAX_WORKERS_ENV]))
        except ValueError:
            raise ValueError(f"{MAX_WORKERS_ENV} must be a whole number, got {host[MAX_WORKERS_ENV]!r}") from None
    raw = (env or {}).get(WORKERS_ENV)
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            raise ValueError(f"{WORKERS_ENV} must be a whole number, got {raw!r}") from None
        if wanted < 1:
            raise ValueError(f"{WORKERS_ENV} must be at least 1, got {raw!r}")
    vcpu = get_instance_type(instance_type).vcpu
    return max(1, min(wanted if raw else vcpu, vcpu, cap))


def unpacked_cap_bytes(instance_type: str, cap_mb: float | None = None) -> int:
    """Most bytes one model archive may unpack to on an instance of ``instance_type``: ``cap_mb`` MiB
    when set, else the type's storage volume / :data:`STORAGE_FRACTION`."""
    if cap_mb:
        return int(cap_mb * 2**20)
    return get_instance_type(instance_type).disk_gib * 1024**3 // STORAGE_FRACTION


def too_large_hint(instance_type: str, cap_bytes: int) -> str:
    """The sentence a FailureReason / ModelError adds when an archive unpacks past the cap."""
    return (f"The local backend unpacks at most {cap_bytes / 2**20:.0f} MiB per archive on {instance_type} "
            f"(an eighth of its storage volume unless {MAX_UNPACKED_ENV} is set in the backend's environment).")


def log_names(endpoint: str, variant: str, instance_id: str) -> tuple[str, str]:
    """(log group, log stream) of an instance, as AWS names them."""
    return f"{ENDPOINT_INSTANCE_METRICS}/{endpoint}", f"{variant}/{instance_id}"


def where_logs_are(endpoint: str, variant: str, instance_id: str, path: object) -> str:
    """The sentence FailureReason and ModelError end with: the AWS log names and the local file."""
    group, stream = log_names(endpoint, variant, instance_id)
    return f"Logs: CloudWatch group {group}, stream {stream}; locally {path} (catkit local logs {endpoint})."


# --------------------------------------------------------------------- files of an instance
def _write_and_extract(data: bytes, archive: Path, target: Path, max_bytes: int) -> None:
    from catkit.build import safe_extract  # the archive engineer's checked extractor

    archive.write_bytes(data)
    if target.exists():
        shutil.rmtree(target)
    try:
        safe_extract(archive, target, max_bytes=max_bytes)
    finally:
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()


def tail_lines(path: Path, n: int) -> str:
    """Last ``n`` lines of a log file (for failure reasons), '' if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


__all__ = [
    "DEFAULT_MAX_WORKERS",
    "MAX_UNPACKED_ENV",
    "MAX_WORKERS_ENV",
    "CodeSource",
    "check_frameworks",
    "code_source",
    "log_names",
    "tail_lines",
    "too_large_hint",
    "unpacked_cap_bytes",
    "where_logs_are",
    "workers_for",
]
