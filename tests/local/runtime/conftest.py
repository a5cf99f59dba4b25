"""Re-use the SageMaker tests' fixtures (fake backend, echo archive, Harness) for runtime tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "catkit_tests_local_sagemaker_fixtures", Path(__file__).parent.parent / "sagemaker" / "conftest.py"
)
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

home = _fixtures.home
fake_backend = _fixtures.fake_backend
h = _fixtures.h
archive_bytes = _fixtures.archive_bytes
