"""Fixtures for the bad-input suite: one backend for the table and the fuzzing, with a single-model and a multi-model
endpoint in service, driven over raw HTTP (SigV4-signed) and boto3."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from catkit.testing import LocalBackend, deploy_endpoint, echo_archive, upload_model

sys.path.insert(0, str(Path(__file__).parents[1] / "reliability"))  # rel_support (importlib mode)


@pytest.fixture(autouse=True)
def _catkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))


@pytest.fixture(scope="session")
def served() -> Iterator[LocalBackend]:
    """A backend with endpoint ``single`` (SingleModel) and ``multi`` (MultiModel, prefix
    s3://models/mme/ holding ``a.tar.gz``), both InService."""
    with LocalBackend(time_scale=600) as b:
        b.start()
        url = upload_model(b)
        upload_model(b, "mme/a.tar.gz", echo_archive())
        sm = b.client("sagemaker")
        assert deploy_endpoint(sm, "single", url)["EndpointStatus"] == "InService"
        assert deploy_endpoint(sm, "multi", "s3://models/mme/", mode="MultiModel")["EndpointStatus"] == "InService"
        yield b
