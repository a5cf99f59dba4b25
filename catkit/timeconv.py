"""Epoch seconds <-> datetimes, the one converter every catkit layer uses.

botocore hands timestamps over as ``datetime`` (aware or naive UTC) or as epoch numbers; catkit's
engine, stores and clocks count epoch seconds (floats). ``to_epoch`` and ``from_epoch`` turn one
into the other; naive datetimes are read as UTC, as botocore does. No catkit imports, no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_epoch(value: datetime | float | int) -> float:
    """Epoch seconds of a datetime (naive means UTC) or of a number (returned as float)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.timestamp()
    return float(value)


def to_epoch_or_none(value: Any) -> float | None:
    """:func:`to_epoch` for optional request values: None stays None."""
    return None if value is None else to_epoch(value)


def from_epoch(seconds: float) -> datetime:
    """The aware UTC datetime of ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)
