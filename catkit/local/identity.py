"""Who the caller is, locally: a SageMaker execution role, as inside a SageMaker notebook.

Local credentials are dummies, so STS ``GetCallerIdentity`` is answered here as the assumed role
``arn:aws:sts::<account>:assumed-role/SageMakerExecutionRole/catkit`` and IAM role
``SageMakerExecutionRole`` (trust policy for ``sagemaker.amazonaws.com``) is created in moto at
start-up. That is exactly what SageMaker Python SDK v2's ``get_execution_role()`` needs: it calls
STS GetCallerIdentity, rewrites the assumed-role ARN into ``arn:aws:iam::<account>:role/<name>``,
then IAM ``GetRole`` for the role's path. Callers using credentials that moto itself issued
(``AssumeRole``) or IAM user keys created in moto are passed through to moto unchanged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

log = logging.getLogger("catkit.local.identity")

EXECUTION_ROLE_NAME = "SageMakerExecutionRole"
ROLE_SESSION_NAME = "catkit"
_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_AKID_RE = re.compile(r"Credential=([^/,\s]+)/")

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def execution_role_arn(account_id: str) -> str:
    """``arn:aws:iam::<account>:role/SageMakerExecutionRole``."""
    return f"arn:aws:iam::{account_id}:role/{EXECUTION_ROLE_NAME}"


def caller_arn(account_id: str) -> str:
    """The assumed-role ARN GetCallerIdentity answers with."""
    return f"arn:aws:sts::{account_id}:assumed-role/{EXECUTION_ROLE_NAME}/{ROLE_SESSION_NAME}"


def ensure_execution_role(account_id: str) -> str:
    """Create the execution role in moto's IAM if missing; returns its ARN."""
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["aws"]
    try:
        role = iam.get_role(EXECUTION_ROLE_NAME)
    except Exception:  # moto raises IAMNotFoundException
        role = iam.create_role(
            role_name=EXECUTION_ROLE_NAME,
            assume_role_policy_document=json.dumps(TRUST_POLICY),
            path="/",
            permissions_boundary=None,
            description="SageMaker execution role of the catkit local backend",
            tags=[],
            max_session_duration="3600",
        )
    return role.arn


def _role_id(account_id: str) -> str:
    from moto.iam.models import iam_backends

    try:
        return iam_backends[account_id]["aws"].get_role(EXECUTION_ROLE_NAME).id
    except Exception:
        return "AROACATKITLOCALROLE00"


def access_key_id(headers: Mapping[str, str], query: Mapping[str, Any]) -> str | None:
    """The access key id of a SigV4-signed request (header or presigned query)."""
    match = _AKID_RE.search(headers.get("Authorization", "") or "")
    if match:
        return match.group(1)
    cred = query.get("X-Amz-Credential")
    if isinstance(cred, list):
        cred = cred[0] if cred else None
    return cred.split("/", 1)[0] if cred else None


def _moto_knows(access_key: str | None, account_id: str) -> bool:
    if not access_key:
        return False
    try:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        if sts_backends[account_id]["aws"].get_assumed_role_from_access_key(access_key):
            return True
        return iam_backends[account_id]["aws"].get_user_from_access_key_id(access_key) is not None
    except Exception:
        return False


def sts_action(method: str, query: Mapping[str, Any], body: bytes) -> str | None:
    """The STS query-protocol ``Action`` of a request (form body or query string)."""
    action = query.get("Action")
    if isinstance(action, list):
        action = action[0] if action else None
    if action:
        return str(action)
    if method == "POST" and body:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        values = form.get("Action")
        return values[0] if values else None
    return None


def answer_get_caller_identity(
    method: str,
    headers: Mapping[str, str],
    query: Mapping[str, Any],
    body: bytes,
    account_id: str,
    request_id: str,
) -> tuple[int, dict[str, str], bytes] | None:
    """The STS response for GetCallerIdentity as the execution role, or None to pass to moto."""
    if sts_action(method, query, body) != "GetCallerIdentity":
        return None
    if _moto_knows(access_key_id(headers, query), account_id):
        return None
    xml = (
        f'<GetCallerIdentityResponse xmlns="{_STS_NS}">'
        "<GetCallerIdentityResult>"
        f"<Arn>{escape(caller_arn(account_id))}</Arn>"
        f"<UserId>{escape(_role_id(account_id))}:{ROLE_SESSION_NAME}</UserId>"
        f"<Account>{escape(account_id)}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml
