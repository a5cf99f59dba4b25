"""What the engine's stored resources share: the persisted dict form and the target they belong to.

Targets, policies, scheduled actions, activities and cooldowns are dataclasses saved as
JSON-compatible dicts (``to_dict`` / ``from_dict``); the first four belong to one scalable target
(namespace, resource id, dimension), which their botocore-shaped ``to_api`` items name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Self


def present(members: Mapping[str, Any]) -> dict[str, Any]:
    """The optional members of an API item that are set (None: left out)."""
    return {key: value for key, value in members.items() if value is not None}


class Record:
    """Mixin for a dataclass stored as a dict: ``to_dict()`` is :func:`dataclasses.asdict`,
    ``from_dict()`` the constructor over the same keys."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(**d)


class TargetRecord(Record):
    """A record of one scalable target: subclasses have ``service_namespace``, ``resource_id``
    and ``scalable_dimension`` fields."""

    service_namespace: str
    resource_id: str
    scalable_dimension: str

    @property
    def key(self) -> tuple[str, str, str]:
        """(service namespace, resource id, scalable dimension)."""
        return (self.service_namespace, self.resource_id, self.scalable_dimension)

    def target_api(self) -> dict[str, Any]:
        """The target's members of a Describe* item."""
        return {
            "ServiceNamespace": self.service_namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.scalable_dimension,
        }
