"""Framework-agnostic HTTP request/response values exchanged between the gateway and the codecs.

The gateway copies what aiohttp received into a :class:`RawRequest` and writes a
:class:`RawResponse` back; the codecs never see the web framework.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header mapping (keys are compared lower-cased).

    Built from any mapping (a dict, aiohttp's ``CIMultiDictProxy``, another ``Headers``);
    for repeated headers the last value wins, as botocore never repeats one.
    """

    __slots__ = ("_items",)

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        if isinstance(source, Headers):
            self._items: dict[str, tuple[str, str]] = dict(source._items)
            return
        items: dict[str, tuple[str, str]] = {}
        if source:
            for key, value in source.items():
                items[key.lower()] = (key, value)
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def get(self, key: str, default: Any = None) -> Any:  # faster than Mapping.get
        item = self._items.get(key.lower())
        return default if item is None else item[1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(slots=True)
class RawRequest:
    """One HTTP request as received.

    ``path`` is the request path without the query string, percent-encoded as on the wire
    (a decoded path works too: labels are unquoted once). ``query`` maps each query
    parameter to its value, or to a list of values when repeated. ``headers`` may be any
    mapping; it is wrapped in a case-insensitive :class:`Headers`.
    """

    method: str
    path: str
    query: Mapping[str, str | list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            self.headers = Headers(self.headers)
        if self.body is None:
            self.body = b""
        elif not isinstance(self.body, bytes):
            self.body = bytes(self.body)

    def query_value(self, name: str) -> str | None:
        """The (last) value of query parameter ``name``, or None."""
        value = self.query.get(name)
        if isinstance(value, list):
            return value[-1] if value else None
        return value


@dataclass(slots=True)
class RawResponse:
    """One HTTP response to send: status, headers (exact names) and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
