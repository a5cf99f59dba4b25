"""Where the local backend keeps its state: ``$CATKIT_HOME`` (default ``~/.catkit``).

Everything the backend writes lives under this directory, created with owner-only permissions.
"""

from __future__ import annotations

import os
from pathlib import Path


def catkit_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the state directory: explicit argument, else ``$CATKIT_HOME``, else ``~/.catkit``."""
    raw = home if home is not None else os.environ.get("CATKIT_HOME") or "~/.catkit"
    return Path(raw).expanduser().resolve()


class StateDirError(OSError):
    """The state directory (or one under it) cannot be created or written."""


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the leaf; return it.

    Raises :class:`StateDirError` (an ``OSError``) naming the directory and what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise StateDirError(
            exc.errno,
            f"Cannot use {path} for the catkit local backend's state: {exc.strerror or exc}. "
            "Point CATKIT_HOME (or --home) at a writable directory on a disk with free space.",
        ) from exc
    try:
        path.chmod(0o700)
    except OSError:
        pass
    return path
