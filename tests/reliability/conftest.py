"""Fixtures for the reliability suite: real backend processes in temporary CATKIT_HOMEs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make rel_support importable

from rel_support import BackendProc


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def backend_factory() -> Iterator:
    """``factory(time_scale=600, env=None, home=None) -> BackendProc`` (started); all closed at teardown."""
    started: list[BackendProc] = []

    def factory(time_scale: float = 600.0, env: dict[str, str] | None = None,
                home: Path | None = None) -> BackendProc:
        b = BackendProc(home, time_scale=time_scale, env=env)
        started.append(b)
        b.start()
        return b

    yield factory
    for b in reversed(started):
        b.close()
