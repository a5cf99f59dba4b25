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


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the leaf; return it."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        path.chmod(0o700)
    except OSError:
        pass
    return path
