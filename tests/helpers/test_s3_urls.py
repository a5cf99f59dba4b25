"""Every S3 URL form SageMaker accepts reads as (bucket, key) (catkit.s3_urls)."""

from __future__ import annotations

import pytest

from catkit.s3_urls import is_s3_url, parse_s3_url, to_s3_uri

FORMS = [
    ("s3://my-bucket/models/cat.tar.gz", ("my-bucket", "models/cat.tar.gz")),
    ("s3://my-bucket/prefix/", ("my-bucket", "prefix/")),
    ("s3://my-bucket", ("my-bucket", "")),
    # path-style, with and without a region (AWS's multi-model examples use the s3-<region> form)
    ("https://s3.amazonaws.com/my-bucket/models/cat.tar.gz", ("my-bucket", "models/cat.tar.gz")),
    ("https://s3-us-west-2.amazonaws.com/my-bucket/mme/", ("my-bucket", "mme/")),
    ("https://s3.us-west-2.amazonaws.com/my-bucket/models/cat.tar.gz", ("my-bucket", "models/cat.tar.gz")),
    ("https://s3.dualstack.eu-west-1.amazonaws.com/my-bucket/k", ("my-bucket", "k")),
    ("https://s3.cn-north-1.amazonaws.com.cn/my-bucket/k", ("my-bucket", "k")),
    # virtual-hosted, with and without a region
    ("https://my-bucket.s3.amazonaws.com/models/cat.tar.gz", ("my-bucket", "models/cat.tar.gz")),
    ("https://my-bucket.s3.us-west-2.amazonaws.com/models/cat.tar.gz", ("my-bucket", "models/cat.tar.gz")),
    ("https://my-bucket.s3-us-west-2.amazonaws.com/mme/", ("my-bucket", "mme/")),
    ("https://my.dotted.bucket.s3.eu-central-1.amazonaws.com/k", ("my.dotted.bucket", "k")),
    ("https://my-bucket.s3.fips.us-east-1.amazonaws.com/k", ("my-bucket", "k")),
    # https keys are URL-encoded
    ("https://my-bucket.s3.amazonaws.com/a%20b/c%2Bd.tar.gz", ("my-bucket", "a b/c+d.tar.gz")),
]


@pytest.mark.parametrize(("url", "expected"), FORMS)
def test_every_form_reads_as_bucket_and_key(url, expected):
    assert parse_s3_url(url) == expected
    assert is_s3_url(url)
    assert to_s3_uri(url) == f"s3://{expected[0]}/{expected[1]}"


@pytest.mark.parametrize("url", ["", "/tmp/model.tar.gz", "https://example.com/bucket/key",
                                 "https://s3.amazonaws.com/", "s3:///key", "ftp://s3.amazonaws.com/b/k"])
def test_anything_else_is_refused(url):
    assert not is_s3_url(url)
    with pytest.raises(ValueError):
        parse_s3_url(url)
