"""Security suite fixtures: every test gets its own CATKIT_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))
