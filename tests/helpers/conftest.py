"""Fixtures for the helper tests: an AWS-backend Session with dummy credentials and Stubbers.

Every helper is tested on the ``backend="aws"`` path with ``botocore.stub.Stubber``, which checks
each request against the botocore service model and each canned response too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from catkit.session import Session

# --import-mode=importlib: make the shared canned responses (helpers_fakes.py) importable.
sys.path.insert(0, str(Path(__file__).parent))

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"


@pytest.fixture(autouse=True)
def _isolated_env(request, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CATKIT_HOME", str(tmp_path / "catkit-home"))
    if request.node.get_closest_marker("aws"):
        return  # live AWS tests use the real credential chain
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def session() -> Session:
    boto = boto3.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="secret", region_name="us-east-1")
    s = Session(backend="aws", boto_session=boto, role=ROLE, bucket="test-bucket")
    s._account_id = ACCOUNT
    return s


class Stubs:
    """Lazily creates one activated Stubber per service client of the session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stubbers: dict[str, Stubber] = {}

    def __getitem__(self, service: str) -> Stubber:
        if service not in self._stubbers:
            stubber = Stubber(self.session.client(service))
            stubber.activate()
            self._stubbers[service] = stubber
        return self._stubbers[service]

    def verify(self) -> None:
        for stubber in self._stubbers.values():
            stubber.assert_no_pending_responses()

    def close(self) -> None:
        for stubber in self._stubbers.values():
            stubber.deactivate()


@pytest.fixture
def stubs(session: Session) -> Iterator[Stubs]:
    s = Stubs(session)
    yield s
    s.close()


@pytest.fixture
def no_sleep(monkeypatch) -> list[float]:
    """Make deploy's waits instant; returns the list of requested sleeps. Time advances by them."""
    import catkit.deploy as deploy

    slept: list[float] = []
    clock = [0.0]

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(deploy, "_sleep", fake_sleep)
    monkeypatch.setattr(deploy, "_monotonic", lambda: clock[0])
    return slept
