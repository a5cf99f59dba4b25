"""The one place that knows whether catkit talks to AWS or to the embedded local backend.

:class:`Session` hands out boto3 clients. Every helper (deploy, invoke, scaling, metrics, cost,
mme, plots, widgets) takes a ``Session`` and only ever calls its clients, so the helpers run one
code path; only this module has local-backend specific code (starting the gateway, pointing the
clients at it, dummy credentials, and reading the emulated clock).

Discovery follows the SageMaker Python SDK: region from the boto3 session, account from STS
GetCallerIdentity, execution role from the caller identity (assumed-role ARN -> role ARN), default
bucket ``sagemaker-{region}-{account}`` created when missing. Each is overridable.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError

from catkit.local.paths import catkit_home

Backend = Literal["local", "aws"]

LOCAL_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "catkitlocal", "aws_secret_access_key": "catkitlocal"}
# The AWS Price List API is served only from these regions; catkit uses the first one unless the
# session's region is one of them.
PRICING_REGIONS = ("us-east-1", "ap-south-1", "eu-central-1")
# Written on SageMaker notebook instances and Studio; names the resource whose role we run as.
NOTEBOOK_METADATA_FILE = "/opt/ml/metadata/resource-metadata.json"

_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


class _ServiceClient:
    """A read-only ``Session`` attribute: the session's cached boto3 client of one service."""

    def __init__(self, service: str, doc: str) -> None:
        self.service = service
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, session: Session | None, owner: type | None = None) -> Any:
        return self if session is None else session.client(self.service)

    def __set__(self, session: Session, value: Any) -> None:
        raise AttributeError(f"Session.{self.name} is read-only (the {self.service} client)")


class SessionError(RuntimeError):
    """The session could not resolve something it needs (region, role, bucket, backend)."""


class Session:
    """boto3 clients for AWS or the local backend, plus region/account/role/bucket discovery.

    Parameters
    ----------
    backend:
        ``"aws"`` (real AWS with the usual credential chain), ``"local"`` (start or reuse the
        embedded backend on 127.0.0.1 and point every client at it) or ``"auto"`` (local when
        ``AWS_ENDPOINT_URL`` is a loopback URL, as ``catkit.local.use_local()`` sets it; else AWS
        when credentials resolve, else local).
    region, role, bucket:
        Override discovery. ``region`` defaults to the boto3 session's region (``us-east-1`` for
        the local backend); ``role`` to the caller's role; ``bucket`` to
        ``sagemaker-{region}-{account}`` (created on first use if missing).
    home, time_scale:
        Local backend only: state directory (``$CATKIT_HOME``) and emulated time scale.
    boto_session:
        A ready ``boto3.Session`` (credentials/profile/region) to build clients from.

    Example
    -------
    >>> s = Session(backend="local")        # doctest: +SKIP
    >>> s.sagemaker.list_endpoints()        # doctest: +SKIP
    """

    def __init__(
        self,
        backend: str = "auto",
        region: str | None = None,
        role: str | None = None,
        bucket: str | None = None,
        home: str | None = None,
        time_scale: float | None = None,
        boto_session: boto3.Session | None = None,
    ) -> None:
        if backend not in ("auto", "aws", "local"):
            raise SessionError(f"backend must be 'auto', 'aws' or 'local', got {backend!r}")
        self._boto = boto_session if boto_session is not None else boto3.Session()
        if backend == "auto":
            if _is_loopback_url(os.environ.get("AWS_ENDPOINT_URL", "")):
                backend = "local"  # catkit.local.use_local() pointed boto3 at the gateway
            else:
                backend = "aws" if _has_credentials(self._boto) else "local"
        self.backend: Backend = backend  # type: ignore[assignment]
        self._home = home
        self._time_scale = time_scale
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._role = role
        self._bucket = bucket
        self._account_id: str | None = None
        self._identity: dict[str, Any] | None = None
        self.endpoint_url: str | None = None

        if self.backend == "local":
            import catkit.local  # lazy: the backend is heavy and optional
            from catkit.local.lifecycle import attached

            # the catkit backend AWS_ENDPOINT_URL points at (a test suite's), else the home's
            self.endpoint_url = attached(home, None, time_scale) or catkit.local.ensure_running(
                home=home, port=None, time_scale=time_scale)
            self.region = region or self._boto.region_name or LOCAL_REGION
            if not _has_credentials(self._boto):
                self._boto = boto3.Session(region_name=self.region, **DUMMY_CREDENTIALS)
        else:
            resolved = region or self._boto.region_name
            if not resolved:
                raise SessionError(
                    "No AWS region configured. Pass Session(region='us-east-1'), set "
                    "AWS_DEFAULT_REGION, or add region to your AWS profile."
                )
            self.region = resolved

    def __repr__(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"Session(backend={self.backend!r}, region={self.region!r}, endpoint={where})"

    # -- clients -------------------------------------------------------------------------------
    def client(self, name: str) -> Any:
        """A cached boto3 client for service ``name`` (e.g. ``"sagemaker"``, ``"cloudwatch"``)."""
        with self._lock:
            cached = self._clients.get(name)
            if cached is None:
                cached = self._make_client(name)
                self._clients[name] = cached
            return cached

    def _make_client(self, name: str) -> Any:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if name == "pricing":
            kwargs["region_name"] = self.region if self.region in PRICING_REGIONS else PRICING_REGIONS[0]
        if self.endpoint_url is not None:
            kwargs["endpoint_url"] = self.endpoint_url
            # The gateway answers instantly; keep retries short so errors surface fast.
            kwargs["config"] = Config(retries={"max_attempts": 3, "mode": "standard"})
        return self._boto.client(name, **kwargs)

    sagemaker = _ServiceClient("sagemaker", "SageMaker control plane client (models, endpoint configs, endpoints).")
    runtime = _ServiceClient("sagemaker-runtime", "SageMaker runtime client (InvokeEndpoint).")
    s3 = _ServiceClient("s3", "S3 client.")
    autoscaling = _ServiceClient("application-autoscaling", "Application Auto Scaling client.")
    cloudwatch = _ServiceClient("cloudwatch", "CloudWatch client (metrics, alarms).")

    @property
    def pricing(self) -> Any | None:
        """AWS Price List client, or ``None`` where there is no Pricing API (the local backend).

        Cost helpers fall back to the bundled price table when this is ``None`` or fails.
        """
        if self.endpoint_url is not None:
            return None
        return self.client("pricing")

    # -- identity ------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        """The 12-digit account id (STS GetCallerIdentity, cached)."""
        if self._account_id is None:
            self._account_id = self._caller_identity()["Account"]
        return self._account_id

    def _caller_identity(self) -> dict[str, Any]:
        if self._identity is not None:
            return self._identity
        try:
            self._identity = self.client("sts").get_caller_identity()
            return self._identity
        except NoCredentialsError as exc:
            raise SessionError(
                "No AWS credentials found. Configure them (aws configure / AWS_PROFILE) or use "
                "Session(backend='local')."
            ) from exc

    @property
    def role(self) -> str:
        """The SageMaker execution role ARN, like the SDK's ``get_execution_role()``.

        On a SageMaker notebook instance or in Studio the role comes from the resource metadata
        file (DescribeNotebookInstance / DescribeUserProfile / DescribeDomain); elsewhere the
        caller identity's assumed-role ARN becomes the role ARN (with its path, via IAM GetRole
        when allowed). Pass ``Session(role=...)`` to choose another.
        """
        if self._role is None:
            self._role = self._discover_role()
        return self._role

    def _discover_role(self) -> str:
        if self.backend == "aws":
            from_metadata = self._role_from_studio_metadata()
            if from_metadata:
                return from_metadata
        arn = self._caller_identity()["Arn"]
        if _ROLE.match(arn):
            return arn
        match = _ASSUMED_ROLE.match(arn)
        if match:
            partition, account, role_name = match.groups()
            try:
                return self.client("iam").get_role(RoleName=role_name)["Role"]["Arn"]
            except ClientError:
                # Console-created SageMaker roles live under /service-role/ (as the SDK assumes).
                path = "service-role/" if "AmazonSageMaker-ExecutionRole" in role_name else ""
                return f"arn:{partition}:iam::{account}:role/{path}{role_name}"
        if self.backend == "local":
            # The local backend accepts any well-formed role; there is no IAM to satisfy.
            return f"arn:aws:iam::{self.account_id}:role/catkit-local-sagemaker-role"
        raise SessionError(
            f"The caller identity {arn} is not an IAM role, so no SageMaker execution role can be "
            "inferred. Pass Session(role='arn:aws:iam::<account>:role/<SageMakerExecutionRole>')."
        )

    def _role_from_studio_metadata(self) -> str | None:
        """Role of a SageMaker notebook instance / Studio user, from its resource metadata file."""
        try:
            meta = json.loads(Path(NOTEBOOK_METADATA_FILE).read_text())
        except (OSError, ValueError):
            return None
        if meta.get("ExecutionRoleArn"):
            return str(meta["ExecutionRoleArn"])
        try:
            if not meta.get("DomainId"):
                if not meta.get("ResourceName"):
                    return None
                desc = self.sagemaker.describe_notebook_instance(NotebookInstanceName=meta["ResourceName"])
                return desc["RoleArn"]
            if meta.get("UserProfileName"):
                profile = self.sagemaker.describe_user_profile(
                    DomainId=meta["DomainId"], UserProfileName=meta["UserProfileName"]
                )
                role = profile.get("UserSettings", {}).get("ExecutionRole")
                if role:
                    return role
            domain = self.sagemaker.describe_domain(DomainId=meta["DomainId"])
            return domain["DefaultUserSettings"]["ExecutionRole"]
        except (ClientError, KeyError):
            return None

    # -- bucket --------------------------------------------------------------------------------
    @property
    def bucket(self) -> str:
        """Default bucket ``sagemaker-{region}-{account}``, created if missing (like the SDK)."""
        if self._bucket is None:
            name = f"sagemaker-{self.region}-{self.account_id}"
            self._ensure_bucket(name)
            self._bucket = name
        return self._bucket

    def _ensure_bucket(self, name: str) -> None:
        try:
            self.s3.head_bucket(Bucket=name, ExpectedBucketOwner=self.account_id)
            return
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise SessionError(
                    f"Bucket {name} exists but is not usable by account {self.account_id} ({code}). "
                    "Pass Session(bucket='<your-bucket>') to use another bucket."
                ) from exc
        kwargs: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "OperationAborted"):
                raise

    @property
    def boto_session(self) -> boto3.Session:
        """The boto3 session the clients are built from (credentials, region)."""
        return self._boto

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Current time as the backend sees it (UTC).

        On AWS this is the wall clock. The local backend may run an emulated clock faster than
        real time (``time_scale``); timestamps it returns (CreationTime, metrics) are emulated,
        so cost and idle computations must use the same clock.
        """
        if self.backend == "local":
            emulated = _local_emulated_now(self.endpoint_url, self._home)
            if emulated is not None:
                return datetime.fromtimestamp(emulated, UTC)
        return datetime.now(UTC)


def _is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def _has_credentials(boto_session: boto3.Session) -> bool:
    try:
        return boto_session.get_credentials() is not None
    except Exception:
        return False


def _local_emulated_now(url: str | None, home: str | None) -> float | None:
    """Emulated epoch seconds of the running local backend, if it can be determined.

    Asks the gateway (``GET {url}/_catkit/info`` -> ``now``); falls back to ``backend.json``
    (``time_scale`` and ``started``), which is exact unless the clock resumed from a later
    high-water mark after a restart.
    """
    if url:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/_catkit/info", timeout=2.0) as resp:
                return float(json.loads(resp.read())["now"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        info = json.loads((catkit_home(home) / "backend.json").read_text())
        scale = float(info.get("time_scale") or 1.0)
        started = float(info["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return started + (time.time() - started) * scale
