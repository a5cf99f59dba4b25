"""The local backend's durable resource store: one sqlite row per resource, JSON documents.

``StateStore(path)`` keeps ``(kind, key) -> dict`` in ``CATKIT_HOME/state.sqlite`` (WAL journal,
``synchronous=FULL``, file mode 0600). A ``put`` is committed and fsynced before it returns, so a
resource survives ``catkit local stop`` and a kill -9 of the backend. Calls are short and
serialised by a lock, which is enough for one event loop plus a few helper threads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)
"""


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("StateStore documents are JSON; encode bytes (e.g. base64) before put()")
    raise TypeError(f"StateStore cannot store a value of type {type(value).__name__}")


class StateStore:
    """Durable ``(kind, key) -> JSON document`` store on sqlite."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Create owner-only before sqlite opens it, so the file is never world-readable.
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute(_SCHEMA)
        for suffix in ("", "-wal", "-shm"):
            sidecar = Path(str(self.path) + suffix)
            if sidecar.exists():
                try:
                    sidecar.chmod(0o600)
                except OSError:
                    pass

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace one document; durable once this returns."""
        text = json.dumps(doc, default=_json_default, sort_keys=True)
        with self._lock:
            self._conn.execute(
                "INSERT INTO resources(kind, key, doc) VALUES (?, ?, ?) "
                "ON CONFLICT(kind, key) DO UPDATE SET doc = excluded.doc",
                (kind, key, text),
            )

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document stored under ``(kind, key)``, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT doc FROM resources WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def delete(self, kind: str, key: str) -> bool:
        """Remove ``(kind, key)``; True if it existed."""
        with self._lock:
            cur = self._conn.execute("DELETE FROM resources WHERE kind = ? AND key = ?", (kind, key))
        return cur.rowcount > 0

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """All ``(key, doc)`` pairs of one kind, ordered by key."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, doc FROM resources WHERE kind = ? ORDER BY key", (kind,)
            ).fetchall()
        return [(key, json.loads(doc)) for key, doc in rows]

    def clear(self, keep_kinds: tuple[str, ...] = ()) -> int:
        """Delete every document except those of ``keep_kinds``; returns how many went."""
        marks = ",".join("?" * len(keep_kinds))
        where = f"WHERE kind NOT IN ({marks})" if keep_kinds else ""
        with self._lock:
            cur = self._conn.execute(f"DELETE FROM resources {where}", keep_kinds)
        return cur.rowcount

    def kinds(self) -> Iterator[str]:
        """The kinds that have at least one document."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT kind FROM resources ORDER BY kind").fetchall()
        return iter([r[0] for r in rows])

    def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()
