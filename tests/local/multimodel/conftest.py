"""Fixtures for multi-model endpoint tests: a real backend process with small MME budgets.

Budgets (environment of the backend process): memory 30 MiB per instance (test models hold 8 MiB of
ballast, so three fit and a fourth evicts one), disk 2 MiB (the ``blob_kb`` models fill it),
requests wait at most 3 s for a load before ModelNotReadyException.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make mme_helpers importable

from mme_helpers import DISK_BUDGET_MB, LOAD_WAIT_SECONDS, MEMORY_BUDGET_MB, TIME_SCALE, Mme


@pytest.fixture(scope="module")
def mme(module_backend_factory: Any) -> Iterator[Mme]:
    env = {
        "CATKIT_MME_MEMORY_BUDGET_MB": str(MEMORY_BUDGET_MB),
        "CATKIT_MME_DISK_BUDGET_MB": str(DISK_BUDGET_MB),
        "CATKIT_MME_LOAD_WAIT_SECONDS": str(LOAD_WAIT_SECONDS),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "8",
    }
    yield Mme(module_backend_factory(time_scale=TIME_SCALE, env=env))
