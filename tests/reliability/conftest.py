"""Fixtures for the reliability suite: each test gets its own CATKIT_HOME; the backends themselves
are :class:`catkit.testing.LocalBackend` processes started by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
