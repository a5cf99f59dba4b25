"""Who the caller is, locally: an account, and a SageMaker execution role as inside a notebook.

The account of a request (:func:`account_for`) comes from its access key, as in moto: keys that
moto issued (IAM CreateAccessKey, STS AssumeRole) belong to their account; a 12-digit access key
*is* the account id (LocalStack's convention, handy for tests of several accounts); any other key
belongs to the backend's default account (``123456789012`` unless configured, moto's default).

Local credentials are dummies, so STS ``GetCallerIdentity`` is answered here as the assumed role
``arn:aws:sts::<account>:assumed-role/SageMakerExecutionRole/catkit`` and IAM role
``SageMakerExecutionRole`` (trust policy for ``sagemaker.amazonaws.com``) is created in moto at
start-up. That is exactly what SageMaker Python SDK v2's ``get_execution_role()`` needs: it calls
STS GetCallerIdentity, rewrites the assumed-role ARN into ``arn:aws:iam::<account>:role/<name>``,
then IAM ``GetRole`` for the role's path. Callers using credentials that moto itself issued
(``AssumeRole``) or IAM user keys created in moto are passed through to moto unchanged.
"""

from __future__ import annotations

import contextlib
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
_SIGV2_AKID_RE = re.compile(r"^AWS ([^:\s]+):")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROLE_ACCOUNT_RE = re.compile(r"^arn:aws[a-z-]*:(?:sts|iam)::(\d{12}):")
_accounts_by_key: dict[str, str | None] = {}  # access key -> moto's account for it (None: moto does not know it)
_roles_made: set[str] = set()  # accounts whose execution role exists in moto

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

    _roles_made.add(account_id)

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
    """The access key id of a signed request (SigV4 header or presigned query; SigV2 for S3)."""
    auth = headers.get("Authorization", "") or ""
    match = _AKID_RE.search(auth) or _SIGV2_AKID_RE.match(auth)
    if match:
        return match.group(1)
    cred = query.get("X-Amz-Credential") or query.get("AWSAccessKeyId")
    if isinstance(cred, list):
        cred = cred[0] if cred else None
    return cred.split("/", 1)[0] if cred else None


def _moto_account(access_key: str) -> str | None:
    """The account moto issued ``access_key`` in (IAM user keys, AssumeRole credentials), or None."""
    try:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends
    except ImportError:  # pragma: no cover - moto is a dependency
        return None
    for account, backends in list(iam_backends.items()):
        with contextlib.suppress(Exception):
            if access_key in backends["aws"].access_keys:
                return str(account)
    for _account, backends in list(sts_backends.items()):
        with contextlib.suppress(Exception):
            role = backends["aws"].get_assumed_role_from_access_key(access_key)
            if role is not None:
                match = _ROLE_ACCOUNT_RE.match(getattr(role, "arn", "") or "")
                if match:
                    return match.group(1)
    return None


def account_for(headers: Mapping[str, str], query: Mapping[str, Any], default: str) -> str:
    """The account a request acts in (see the module docstring); ``default`` when the key says nothing."""
    return account_for_key(access_key_id(headers, query), default)


def account_for_key(key: str | None, default: str) -> str:
    """The account of access key ``key`` (:func:`account_for` once the key is known)."""
    if not key:
        return default
    if _ACCOUNT_RE.match(key):
        return key
    if key not in _accounts_by_key:  # moto's keys are new strings: a key never changes account
        if len(_accounts_by_key) >= 4096:
            _accounts_by_key.clear()
        _accounts_by_key[key] = _moto_account(key)
    return _accounts_by_key[key] or default


def ensure_account(account_id: str) -> None:
    """Make sure ``account_id`` has the execution role (once per account, again after a reset)."""
    if account_id not in _roles_made:
        ensure_execution_role(account_id)


def forget_accounts() -> None:
    """After a reset (moto's IAM/STS emptied): drop what is known about keys and roles."""
    _accounts_by_key.clear()
    _roles_made.clear()


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


_IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def _form(method: str, query: Mapping[str, Any], body: bytes) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {k: (v if isinstance(v, list) else [v]) for k, v in query.items()}
    if method == "POST" and body:
        try:
            for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items():
                form.setdefault(key, []).extend(values)
        except UnicodeDecodeError:
            pass
    return form


def _members(form: Mapping[str, list[str]], name: str) -> list[str]:
    """``Name.member.1``, ``Name.member.2``, ... of a query-protocol list, in order."""
    prefix = f"{name}.member."
    items = [(int(k[len(prefix):]), v[0]) for k, v in form.items() if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [value for _, value in sorted(items)]


def answer_simulate_principal_policy(
    method: str, query: Mapping[str, Any], body: bytes, account_id: str, request_id: str
) -> tuple[int, dict[str, str], bytes] | None:
    """IAM ``SimulatePrincipalPolicy`` for the execution role: every action ``allowed``; else None.

    The local backend authorises nothing (any credentials may do anything), so for the execution
    role every simulated action is allowed. SageMaker Python SDK v3 asks this before it creates a
    model (``sagemaker.core.helper.iam_role_resolver.resolve_and_validate_role``, called by
    ``ModelBuilder.build``); moto does not implement the operation. Response shape: botocore's IAM
    model (``SimulatePolicyResponse``: one ``EvaluationResults`` member per action and resource,
    ``EvalResourceName`` ``*`` without ``ResourceArns``), as documented for
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html.
    Other principals go on to moto unchanged.
    """
    if sts_action(method, query, body) != "SimulatePrincipalPolicy":
        return None
    form = _form(method, query, body)
    source = (form.get("PolicySourceArn") or [""])[0]
    if source not in (execution_role_arn(account_id), caller_arn(account_id)):
        return None
    resources = _members(form, "ResourceArns") or ["*"]
    results = "".join(
        "<member>"
        f"<EvalActionName>{escape(action)}</EvalActionName>"
        f"<EvalResourceName>{escape(resource)}</EvalResourceName>"
        "<EvalDecision>allowed</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/>"
        "</member>"
        for action in _members(form, "ActionNames")
        for resource in resources
    )
    xml = (
        f'<SimulatePrincipalPolicyResponse xmlns="{_IAM_NS}">'
        "<SimulatePrincipalPolicyResult>"
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult>"
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    ).encode()
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, xml
