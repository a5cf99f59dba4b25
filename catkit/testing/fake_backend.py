"""A base for in-process fake backends: what a component needs from the backend besides its core.

Component tests install one component (``catkit.local.components.install_*``) into a stand-in for
:class:`catkit.local.backend.Backend` without the gateway. :class:`FakeBackendBase` gives that
stand-in the home folder, a real state store in it, the region and account, and a registry that
only records: ``add_service`` keeps the service under its routing key, ``add_background`` and
``add_shutdown`` keep the callables for the test to run (or not). Subclasses add the clock, S3,
metrics and core parts their component uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from catkit.local.storage.state import StateStore

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


class FakeBackendBase:
    """Home, state store, region/account and a recording component registry."""

    def __init__(self, home: Path, region: str = REGION, account_id: str = ACCOUNT_ID) -> None:
        self.home = home
        self.state = StateStore(home / "state.sqlite")
        self.region = region
        self.account_id = account_id
        self.services: dict[str, Any] = {}
        self.backgrounds: list[Callable[[], Any]] = []
        self.shutdowns: list[Callable[[], Any]] = []

    def add_service(self, name: str, service: Any) -> None:
        self.services[name] = service

    def add_background(self, factory: Callable[[], Any]) -> None:
        self.backgrounds.append(factory)

    def add_shutdown(self, fn: Callable[[], Any]) -> None:
        self.shutdowns.append(fn)


__all__ = ["ACCOUNT_ID", "REGION", "FakeBackendBase"]
