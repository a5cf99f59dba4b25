"""Persistence of the local backend's CloudWatch alarms and metric data.

Owns the two state rows of CloudWatch (``cloudwatch/alarms``: the AlarmBook's definitions, states
and history; ``cloudwatch/alarm-extras``: what the book does not keep, per alarm: tags and
EvaluateLowSampleCountPercentile), reading them back at start-up (:func:`load_alarm_book`,
:class:`AlarmPersistence`) and writing them only when something changed; and the metric data of a
scope's metric store in ``metrics.bin`` of the scope's directory (:class:`MetricPersistence`),
saved every few real seconds when anything was recorded and on stop (a kill -9 loses at most the
last :data:`METRICS_SAVE_EVERY_S` seconds of datapoints).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from catkit.autoscaling.alarms import AlarmBook

log = logging.getLogger("catkit.local.cloudwatch")

STATE_KIND = "cloudwatch"
STATE_KEY_ALARMS = "alarms"
STATE_KEY_EXTRAS = "alarm-extras"
METRICS_FILE = "metrics.bin"
METRICS_SAVE_EVERY_S = 5.0  # real seconds


def load_alarm_book(state: Any, region: str, account_id: str) -> AlarmBook:
    """The persisted alarm book of this backend, or a new one."""
    doc = state.get(STATE_KIND, STATE_KEY_ALARMS) if state is not None else None
    if doc:
        try:
            return AlarmBook.from_dict(doc)
        except Exception:
            backup = f"{STATE_KEY_ALARMS}.unreadable"
            state.put(STATE_KIND, backup, doc)
            log.exception(
                "stored CloudWatch alarms could not be read; starting with none. The stored document was "
                "copied to state row (%r, %r) for inspection.",
                STATE_KIND,
                backup,
            )
    return AlarmBook(region=region, account_id=account_id)


class AlarmPersistence:
    """Saves an AlarmBook and its per-alarm extras to a state store (None: keep nothing).

    ``extras`` maps alarm name -> ``{"Tags": {...}, "EvaluateLowSampleCountPercentile": ...}``;
    it is loaded from the store here and mutated in place by the CloudWatch operations.
    """

    def __init__(self, alarms: AlarmBook, state: Any = None) -> None:
        self.alarms = alarms
        self.state = state
        self.extras: dict[str, dict[str, Any]] = {}
        self._saved_signature: Any = None
        if state is not None:
            doc = state.get(STATE_KIND, STATE_KEY_EXTRAS)
            if doc:
                self.extras = {k: dict(v) for k, v in doc.get("alarms", {}).items()}
            self._saved_signature = self._signature()

    def _signature(self) -> Any:
        """What a save would change: each alarm's state, configuration and history length, and the extras."""
        return (
            tuple(
                (
                    a.name,
                    a.state_value,
                    a.state_updated,
                    a.configuration_updated,
                    len(a.history),
                    a.history[-1].timestamp if a.history else None,
                    a.spec.actions_enabled,
                )
                for a in self.alarms.list()
            ),
            json.dumps(self.extras, sort_keys=True),
        )

    def persist(self, force: bool = False) -> None:
        """Save alarm definitions, state, history and extras if anything changed (or ``force``)."""
        if self.state is None:
            return
        signature = self._signature()
        if not force and signature == self._saved_signature:
            return
        self.state.put(STATE_KIND, STATE_KEY_ALARMS, self.alarms.to_dict())
        self.state.put(STATE_KIND, STATE_KEY_EXTRAS, {"alarms": self.extras})
        self._saved_signature = signature


class MetricPersistence:
    """Keeps a metric store's data in ``<directory>/metrics.bin`` (atomic replace, owner-only)."""

    def __init__(self, store: Any, directory: Path) -> None:
        self.store = store
        self.path = Path(directory) / METRICS_FILE
        self._saved = -1
        self._lock = threading.Lock()

    def load(self) -> bool:
        """Read the saved data into the store; False when there is none (or it cannot be read)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        try:
            self.store.loads(data)
        except ValueError:
            log.exception("saved metric data %s could not be read; starting without it", self.path)
            return False
        self._saved = self.store.changes
        return True

    def save(self, force: bool = False) -> None:
        """Write the store's data if anything was recorded since the last save (blocking)."""
        with self._lock:
            changes = self.store.changes
            if not force and changes == self._saved:
                return
            data = self.store.dumps()
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._saved = changes
