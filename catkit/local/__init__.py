"""The embedded local backend: AWS wire protocols on 127.0.0.1, real model-server processes.

Entry points: :func:`ensure_running` (start or reuse the backend of a ``CATKIT_HOME``) and
:func:`use_local` (that, plus pointing boto3 and the SageMaker SDK at it).
"""

from __future__ import annotations

import os


def ensure_running(
    home: str | os.PathLike[str] | None = None,
    port: int | None = None,
    time_scale: float | None = None,
) -> str:
    """Return the URL of the backend of ``home``, starting it (detached) if it is not running -
    then saying where on stderr.

    Idempotent. Raises ``catkit.local.lifecycle.BackendError`` if the running backend has another
    ``time_scale`` (or ``port``) than requested; the message says how to restart it.
    """
    from catkit.local import lifecycle

    return lifecycle.start_announced(home, port, time_scale)


def use_local(
    home: str | os.PathLike[str] | None = None,
    time_scale: float | None = None,
    port: int | None = None,
) -> str:
    """Start/reuse the backend and point boto3 + the SageMaker SDK at it; see ``catkit.local.sdk``."""
    from catkit.local import sdk

    return sdk.use_local(home=home, time_scale=time_scale, port=port)


__all__ = ["ensure_running", "use_local"]
