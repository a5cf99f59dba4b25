"""Which AWS service a raw request is for.

Order, as AWS's front door and the gateway contract require: the SigV4 credential scope
(``Authorization`` header, or a presigned URL's ``X-Amz-Credential``), then the
``X-Amz-Target`` prefix, then the path. Signing names are mapped to botocore service names
(``monitoring`` -> ``cloudwatch``; ``sagemaker`` on an invocations path -> ``sagemaker-runtime``,
because the runtime signs as ``sagemaker``).
"""

from __future__ import annotations

import re

from catkit.local.protocols.raw import RawRequest

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]*)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
_SCOPE_RE = re.compile(r"^[^/]*/\d{8}/[^/]+/([^/]+)/aws4_request$")
_RUNTIME_PATH_RE = re.compile(
    r"^/endpoints/[^/]+/(?:invocations|async-invocations|invocations-response-stream)/?$"
)
_CBOR_PATH_PREFIX = "/service/"

# SigV4 signing name -> botocore service name, where they differ.
SIGNING_NAME_TO_SERVICE: dict[str, str] = {"monitoring": "cloudwatch"}

# X-Amz-Target prefix -> botocore service name, for the services the gateway serves itself.
TARGET_PREFIX_TO_SERVICE: dict[str, str] = {
    "SageMaker": "sagemaker",
    "AnyScaleFrontendService": "application-autoscaling",
    "GraniteServiceVersion20100801": "cloudwatch",
}


def _from_signing_name(signing_name: str, path: str) -> str:
    name = signing_name.lower()
    if name == "sagemaker" and _RUNTIME_PATH_RE.match(path):
        return "sagemaker-runtime"
    return SIGNING_NAME_TO_SERVICE.get(name, name)


def _from_cbor_path(path: str) -> str | None:
    # /service/<targetPrefix>/operation/<Operation>
    parts = path.split("/")
    if len(parts) >= 3:
        return TARGET_PREFIX_TO_SERVICE.get(parts[2])
    return None


def detect_service(raw: RawRequest) -> str | None:
    """The botocore service name ``raw`` is addressed to, or None if nothing identifies it.

    Unknown signing names are returned as they are (``s3``, ``sts``, ``iam``, ...), so the
    gateway can forward them to moto.
    """
    auth = raw.headers.get("authorization")
    if auth:
        match = _CREDENTIAL_RE.search(auth)
        if match:
            return _from_signing_name(match.group(4), raw.path)
    credential = raw.query_value("X-Amz-Credential")
    if credential:
        match = _SCOPE_RE.match(credential)
        if match:
            return _from_signing_name(match.group(1), raw.path)
    target = raw.headers.get("x-amz-target")
    if target:
        prefix = target.split(".", 1)[0]
        service = TARGET_PREFIX_TO_SERVICE.get(prefix)
        if service:
            return service
    path = raw.path
    if path.startswith(_CBOR_PATH_PREFIX):
        service = _from_cbor_path(path)
        if service:
            return service
    if _RUNTIME_PATH_RE.match(path):
        return "sagemaker-runtime"
    return None
