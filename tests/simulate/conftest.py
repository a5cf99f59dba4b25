"""Simulator tests run offline with a temp CATKIT_HOME."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))
