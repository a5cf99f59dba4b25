"""Live AWS checks of the helpers (marker ``aws``): only with ``CATKIT_AWS_LIVE=1`` and credentials.

Read-only by default (identity, Pricing API, listings). Set ``CATKIT_AWS_DEPLOY=1`` (and have a
SageMaker execution role) to also deploy a 2-instance ml.m5.large endpoint, invoke it and delete
it; that costs a few cents.
"""

from __future__ import annotations

import os

import boto3
import pytest

from catkit import cost, deploy, scaling
from catkit.session import Session

pytestmark = pytest.mark.aws


def _credentials() -> bool:
    try:
        return boto3.Session().get_credentials() is not None
    except Exception:
        return False


@pytest.fixture(scope="module")
def aws_session() -> Session:
    if os.environ.get("CATKIT_AWS_LIVE") != "1":
        pytest.skip("live AWS checks run only with CATKIT_AWS_LIVE=1 (tests are offline by default)")
    if not _credentials() or os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip("no AWS credentials (or AWS_ENDPOINT_URL points elsewhere)")
    return Session(backend="aws", region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def test_identity_and_listing(aws_session):
    assert len(aws_session.account_id) == 12
    assert isinstance(deploy.list_endpoints(aws_session), list)


def test_pricing_api_price_for_m5_xlarge(aws_session):
    cost.clear_price_cache()
    quote = cost.price_per_hour(aws_session, "ml.m5.xlarge")
    assert quote.source.startswith("AWS Price List API"), quote.note
    assert 0.05 < quote.usd_per_hour < 2.0


@pytest.mark.skipif(os.environ.get("CATKIT_AWS_DEPLOY") != "1", reason="set CATKIT_AWS_DEPLOY=1 to deploy (costs money)")
def test_deploy_scale_delete(aws_session, tmp_path):
    from catkit.testing import echo_archive

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(echo_archive())
    ep = deploy.deploy(aws_session, str(archive), instance_type="ml.m5.large", tags={"catkit:purpose": "live-test"})
    try:
        scaling.configure_target_tracking(aws_session, ep.endpoint_name)
        assert scaling.describe_target(aws_session, ep.endpoint_name)["MinCapacity"] == 2
    finally:
        scaling.remove_scaling(aws_session, ep.endpoint_name)
        deploy.delete_endpoint(aws_session, ep.endpoint_name)
