"""Every way to name an S3 object or prefix, read as ``(bucket, key)``.

SageMaker accepts ``ModelDataUrl`` (and multi-model prefixes, async inference output and failure
paths, batch transform locations) as ``s3://bucket/key`` or as an HTTPS URL (botocore's pattern
``^(https|s3)://([^/]+)/?(.*)$``), and AWS's own examples use both, e.g. the multi-model samples'
``https://s3-<region>.amazonaws.com/<bucket>/<prefix>/``. The HTTPS forms are S3's (AWS S3 User
Guide, "Methods for accessing a bucket" and "Virtual hosting of buckets"):

- virtual-hosted: ``https://<bucket>.s3.<region>.amazonaws.com/<key>``, legacy
  ``https://<bucket>.s3.amazonaws.com/<key>`` and ``https://<bucket>.s3-<region>.amazonaws.com/<key>``;
- path-style: ``https://s3.<region>.amazonaws.com/<bucket>/<key>``, ``https://s3.amazonaws.com/...``,
  ``https://s3-<region>.amazonaws.com/...``;
- the same with ``dualstack``/``fips``/``accelerate`` labels, and ``amazonaws.com.cn`` in China.

HTTPS keys are percent-decoded (they are URLs); ``s3://`` keys are taken as written. Pure, shared by
the helpers (:mod:`catkit.mme`, :mod:`catkit.deploy`) and the local backend, which resolves every
form to its own S3.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_REGION = r"[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}"
_LABELS = rf"(?:[.-](?:dualstack|fips|accelerate|external-1|{_REGION}))*"
_S3_HOST = re.compile(
    rf"^(?:(?P<bucket>[a-z0-9][a-z0-9.\-]*[a-z0-9])\.)?s3{_LABELS}\.amazonaws\.com(?:\.cn)?$"
)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of an S3 URL in any of the forms above (``key`` may be ``""`` for a
    bucket, or end in ``/`` for a prefix); ValueError naming the URL for anything else."""
    text = (url or "").strip()
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in S3 URL {url!r}")
        return bucket, key
    parts = urlsplit(text)
    match = _S3_HOST.match((parts.hostname or "").lower()) if parts.scheme in ("https", "http") else None
    if match is None:
        raise ValueError(
            f"{url!r} is not an S3 URL: use s3://bucket/key, https://bucket.s3.region.amazonaws.com/key "
            "or https://s3.region.amazonaws.com/bucket/key"
        )
    path = unquote(parts.path.lstrip("/"))
    if match.group("bucket"):
        return match.group("bucket"), path
    bucket, _, key = path.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in S3 URL {url!r}")
    return bucket, key


def is_s3_url(url: str) -> bool:
    """Whether :func:`parse_s3_url` reads ``url``."""
    try:
        parse_s3_url(url)
    except ValueError:
        return False
    return True


def to_s3_uri(url: str) -> str:
    """The ``s3://bucket/key`` form of any S3 URL."""
    bucket, key = parse_s3_url(url)
    return f"s3://{bucket}/{key}"




def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of an object URL in any S3 form (``s3://``, path-style or virtual-hosted
    https, see :mod:`catkit.s3_urls`); ValueError naming the URL otherwise."""
    try:
        bucket, key = parse_s3_url(url)
    except ValueError:
        bucket = key = ""
    if not bucket or not key or key.endswith("/"):
        raise ValueError(f"ModelDataUrl must name an S3 object such as s3://bucket/key.tar.gz, got {url!r}")
    return bucket, key


__all__ = ["is_s3_url", "parse_s3_url", "split_s3_url", "to_s3_uri"]
