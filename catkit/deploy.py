"""Endpoint lifecycle helpers: deploy, wait, resize, blue/green model update, delete.

Everything goes through the SageMaker control-plane client of a :class:`catkit.Session`
(CreateModel, CreateEndpointConfig, CreateEndpoint, DescribeEndpoint, UpdateEndpoint,
UpdateEndpointWeightsAndCapacities, Delete*, ListEndpoints, ListTags), so the same calls run on AWS
and on the local backend. Fewer than two instances triggers :class:`HighAvailabilityWarning`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from catkit.endpoint_kinds import AsyncInference, Serverless, production_variant
from catkit.names import DEFAULT_VARIANT
from catkit.s3_urls import is_s3_url
from catkit.serving.containers import script_environment
from catkit.session import Session

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_INSTANCE_COUNT = 2
DEFAULT_TAGS: dict[str, str] = {"catkit:created-by": "catkit", "catkit:purpose": "dev"}
SKLEARN_FRAMEWORK_VERSION = "1.2-1"

# What update_model carries over from the current model / endpoint config.
_CONTAINER_KEYS = ("Image", "ImageConfig", "Mode", "Environment", "MultiModelConfig")
_MODEL_KEYS = ("VpcConfig", "EnableNetworkIsolation")
_CONFIG_KEYS = ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig")

TERMINAL_OK = "InService"
TERMINAL_BAD = ("Failed", "OutOfService", "UpdateRollbackFailed")

# Indirection so tests can run waits without real sleeping.
_sleep: Callable[[float], None] = time.sleep
_monotonic: Callable[[], float] = time.monotonic


class HighAvailabilityWarning(UserWarning):
    """Fewer than two instances: one Availability Zone outage (or one instance) takes it down."""


class EndpointFailedError(RuntimeError):
    """The endpoint reached ``Failed`` (or another terminal bad state); see ``failure_reason``."""

    def __init__(self, endpoint: str, status: str, failure_reason: str | None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.failure_reason = failure_reason
        super().__init__(
            f"Endpoint {endpoint} is {status}: {failure_reason or 'no FailureReason given'}. "
            "Check the endpoint's logs (CloudWatch /aws/sagemaker/Endpoints/"
            f"{endpoint}), fix the model or config, then delete_endpoint({endpoint!r}) and deploy again."
        )


class EndpointWaitTimeout(TimeoutError):
    """The endpoint did not reach the wanted status in time."""


class EndpointNotFoundError(LookupError):
    """No endpoint with that name in this account/region."""


@dataclass
class DeployedEndpoint:
    """What :func:`deploy` created. ``description`` is the last DescribeEndpoint response."""

    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    instance_type: str
    instance_count: int
    variant_name: str
    model_data: str
    multi_model: bool
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    description: dict[str, Any] = field(default_factory=dict)


def warn_if_not_highly_available(count: int, what: str = "instance_count") -> None:
    """Warn (:class:`HighAvailabilityWarning`) when ``count`` < 2."""
    if count < 2:
        warnings.warn(
            f"{what}={count}: SageMaker spreads an endpoint's instances across Availability Zones, "
            "so a single instance is a single point of failure (AZ outage, instance replacement, "
            "deployment). Use 2 or more instances for production endpoints.",
            HighAvailabilityWarning,
            stacklevel=3,
        )


def unique_name(prefix: str) -> str:
    """``prefix-YYYYmmdd-HHMMSS-xxxx``, within SageMaker's 63-character name limit."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{prefix[:40].rstrip('-')}-{stamp}-{uuid.uuid4().hex[:4]}"


def _sklearn_image_tables() -> list[Path]:
    """The scikit-learn image tables to read, best first: the installed SDK's (v2
    ``sagemaker/image_uri_config``, v3 ``sagemaker/core/image_uri_config``), then catkit's copy."""
    import importlib.util

    found: list[Path] = []
    spec = importlib.util.find_spec("sagemaker")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        for sub in ("image_uri_config", "core/image_uri_config"):
            table = Path(root) / sub / "sklearn.json"
            if table.is_file():
                found.append(table)
    found.append(Path(__file__).with_name("sklearn_images.json"))
    return found


def default_image_uri(region: str) -> str:
    """The SageMaker scikit-learn inference image URI for ``region``.

    Read from the SageMaker Python SDK's own image table (``image_uri_config/sklearn.json``; v2 or
    v3) without importing the SDK (its import is slow and probes EC2 metadata off AWS); without an
    SDK, from catkit's copy of that table (``catkit/sklearn_images.json``).
    """
    import json

    version = None
    for table in _sklearn_image_tables():
        with contextlib.suppress(OSError, ValueError, KeyError):
            version = json.loads(table.read_text())["inference"]["versions"][SKLEARN_FRAMEWORK_VERSION]
            break
    if version is None:
        raise RuntimeError("Pass image_uri=...; no scikit-learn image table could be read.")
    account = version["registries"].get(region)
    if account is None:
        raise ValueError(
            f"No SageMaker scikit-learn {SKLEARN_FRAMEWORK_VERSION} image is listed for region {region}; "
            "pass image_uri=... explicitly."
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    tag = f"{SKLEARN_FRAMEWORK_VERSION}-cpu-{version['py_versions'][0]}"
    return f"{account}.dkr.ecr.{region}.{domain}/{version['repository']}:{tag}"


def tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``."""
    return [{"Key": k, "Value": v} for k, v in (tags or {}).items()]


def _resolve_model_data(session: Session, model_data: str, name: str, multi_model: bool) -> str:
    if is_s3_url(model_data):  # s3:// or an https S3 URL (catkit.s3_urls)
        if multi_model and not model_data.endswith("/"):
            raise ValueError(
                f"multi_model=True needs an S3 prefix ending in '/', got {model_data!r} "
                "(models are added under the prefix with catkit.mme.add_model)."
            )
        return model_data
    path = Path(model_data)
    if multi_model or not path.is_file():
        raise ValueError(
            f"model_data must be an s3:// URI or an existing model.tar.gz file, got {model_data!r}. "
            "Build one with catkit.build.pack_model(...)."
        )
    from catkit.build import upload_model

    return upload_model(path, session.s3, session.bucket, f"catkit/models/{name}/{path.name}")


def deploy(
    session: Session,
    model_data: str,
    *,
    name: str | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    instance_count: int = DEFAULT_INSTANCE_COUNT,
    image_uri: str | None = None,
    role: str | None = None,
    multi_model: bool = False,
    environment: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    variant_name: str = DEFAULT_VARIANT,
    wait: bool = True,
    timeout: float = 1800.0,
    poll: float | None = None,
    progress: bool = True,
    serverless: Serverless | None = None,
    async_inference: AsyncInference | None = None,
) -> DeployedEndpoint:
    """Create model, endpoint config and endpoint; optionally wait until ``InService``.

    ``model_data``: ``s3://.../model.tar.gz`` (or a local ``.tar.gz`` which is uploaded to the
    session bucket); with ``multi_model=True`` an S3 prefix ending in ``/``. ``tags`` are added to
    :data:`DEFAULT_TAGS` on all three resources (used by :func:`delete_tagged_endpoints`).
    Warns :class:`HighAvailabilityWarning` for ``instance_count < 2``. ``serverless``
    (:class:`catkit.endpoint_kinds.Serverless`) makes a serverless variant (no instances);
    ``async_inference`` (:class:`catkit.endpoint_kinds.AsyncInference`) an asynchronous endpoint.
    """
    if instance_count < 1:
        raise ValueError(f"instance_count must be >= 1, got {instance_count}")
    if serverless is None and async_inference is None:  # those two are about idling at (near) zero
        warn_if_not_highly_available(instance_count)
    name = name or unique_name("catkit")
    model_url = _resolve_model_data(session, model_data, name, multi_model)
    all_tags = {**DEFAULT_TAGS, **(tags or {})}
    image = image_uri or default_image_uri(session.region)
    container: dict[str, Any] = {
        "Image": image,
        "ModelDataUrl": model_url,
        "Mode": "MultiModel" if multi_model else "SingleModel",
    }
    # Framework containers import the archive's code/inference.py only when told to, as the SDK does.
    env = {} if multi_model else script_environment(image)
    env.update(environment or {})
    if env:
        container["Environment"] = env
    sm = session.sagemaker
    created: list[tuple[Callable[..., Any], dict[str, str]]] = []
    try:
        sm.create_model(
            ModelName=name,
            PrimaryContainer=container,
            ExecutionRoleArn=role or session.role,
            Tags=tag_list(all_tags),
        )
        created.append((sm.delete_model, {"ModelName": name}))
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[production_variant(variant_name, name, instance_type, instance_count, serverless)],
            Tags=tag_list(all_tags),
            **({"AsyncInferenceConfig": async_inference.to_config()} if async_inference else {}),
        )
        created.append((sm.delete_endpoint_config, {"EndpointConfigName": name}))
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name, Tags=tag_list(all_tags))
    except Exception:
        _undo(created)  # leave no orphan model/config behind a failed deploy
        raise
    description: dict[str, Any] = {}
    status = "Creating"
    if wait:
        description = wait_for_endpoint(session, name, timeout=timeout, poll=poll, progress=progress)
        status = description["EndpointStatus"]
    return DeployedEndpoint(
        endpoint_name=name,
        endpoint_config_name=name,
        model_name=name,
        instance_type=instance_type,
        instance_count=instance_count,
        variant_name=variant_name,
        model_data=model_url,
        multi_model=multi_model,
        status=status,
        tags=all_tags,
        description=description,
    )


def _undo(created: list[tuple[Callable[..., Any], dict[str, str]]]) -> None:
    for delete, kwargs in reversed(created):
        try:
            delete(**kwargs)
        except Exception:  # best effort; the original error is what the user needs to see
            pass


def describe_endpoint(session: Session, name: str) -> dict[str, Any]:
    """DescribeEndpoint; raises :class:`EndpointNotFoundError` with a clear message if missing."""
    try:
        return session.sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        if "Could not find endpoint" in message:
            raise EndpointNotFoundError(
                f"No endpoint named {name!r} in {session.region}. List them with "
                "session.sagemaker.list_endpoints()."
            ) from exc
        raise


def _next_poll(poll: float | None, attempt: int) -> float:
    if poll is not None:
        return poll
    return min(15.0, 0.5 * (2**attempt))  # 0.5, 1, 2, 4, 8, 15, 15 ...


def wait_for_endpoint(
    session: Session,
    name: str,
    *,
    timeout: float = 1800.0,
    poll: float | None = None,
    progress: bool = True,
    target: str = TERMINAL_OK,
) -> dict[str, Any]:
    """Poll DescribeEndpoint until ``target`` status (default ``InService``), showing the status on a bar.

    Raises :class:`EndpointFailedError` (with FailureReason) on ``Failed``/``OutOfService``,
    :class:`EndpointWaitTimeout` after ``timeout`` seconds (message has the last status).
    ``poll=None`` backs off from 0.5 s to 15 s between polls.
    """
    from catkit.progress import StatusBar

    start = _monotonic()
    attempt = 0
    bar = StatusBar(name, enabled=progress)  # shows the endpoint's status, not a count of polls
    try:
        while True:
            desc = describe_endpoint(session, name)
            status = desc["EndpointStatus"]
            if status == target:
                bar.done(status)
                return desc
            if status in TERMINAL_BAD:
                bar.fail(status)
                raise EndpointFailedError(name, status, desc.get("FailureReason"))
            bar.show(status)
            elapsed = _monotonic() - start
            if elapsed >= timeout:
                reason = desc.get("FailureReason")
                raise EndpointWaitTimeout(
                    f"Endpoint {name} still {status} after {elapsed:.0f} s (wanted {target})"
                    + (f"; FailureReason: {reason}" if reason else "")
                    + ". Keep waiting with wait_for_endpoint(session, name, timeout=...) or "
                    "inspect it with describe_endpoint()."
                )
            _sleep(min(_next_poll(poll, attempt), max(0.0, timeout - elapsed)))
            attempt += 1
    finally:
        bar.close()


def _variant(desc: Mapping[str, Any], variant: str) -> dict[str, Any]:
    for v in desc.get("ProductionVariants", []):
        if v["VariantName"] == variant:
            return v
    names = [v["VariantName"] for v in desc.get("ProductionVariants", [])]
    raise ValueError(f"Endpoint {desc.get('EndpointName')} has no variant {variant!r}; variants: {names}")


def set_instance_count(
    session: Session,
    endpoint: str,
    count: int,
    *,
    variant: str = DEFAULT_VARIANT,
    wait: bool = True,
    timeout: float = 1800.0,
    poll: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Change a variant's instance count (UpdateEndpointWeightsAndCapacities); returns Describe.

    If the variant is auto-scaled, Application Auto Scaling may change it again within its
    MinCapacity/MaxCapacity; change those with :func:`catkit.scaling.register_scalable_target`.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1 (real-time variants cannot scale to 0), got {count}")
    warn_if_not_highly_available(count, "count")
    session.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": variant, "DesiredInstanceCount": count}],
    )
    if not wait:
        return describe_endpoint(session, endpoint)
    return wait_for_endpoint(session, endpoint, timeout=timeout, poll=poll, progress=progress)


def update_model(
    session: Session,
    endpoint: str,
    new_model_data: str,
    *,
    image_uri: str | None = None,
    wait: bool = True,
    delete_old: bool = False,
    timeout: float = 1800.0,
    poll: float | None = None,
    progress: bool = True,
) -> str:
    """Point every variant at a new model artifact without downtime; returns the new config name.

    Creates a new model (same image, role, mode, environment unless ``image_uri`` is given) and a
    new endpoint config that copies the current variants, then UpdateEndpoint with
    ``RetainAllVariantProperties=True`` (instance counts and auto scaling stay). SageMaker does a
    blue/green deployment: the old fleet serves until the new one passes health checks.
    ``delete_old=True`` removes the previous config and models once the update is InService.
    """
    sm = session.sagemaker
    desc = describe_endpoint(session, endpoint)
    if desc["EndpointStatus"] != "InService":
        raise RuntimeError(
            f"Endpoint {endpoint} is {desc['EndpointStatus']}; update_model needs it InService. "
            "Wait with wait_for_endpoint() first."
        )
    old_config_name = desc["EndpointConfigName"]
    old_config = sm.describe_endpoint_config(EndpointConfigName=old_config_name)
    new_name = unique_name(endpoint)
    renamed: dict[str, str] = {}
    created: list[tuple[Callable[..., Any], dict[str, str]]] = []
    try:
        for variant in old_config["ProductionVariants"]:
            old_model = variant["ModelName"]
            if old_model in renamed:
                continue
            model = sm.describe_model(ModelName=old_model)
            container = dict(model.get("PrimaryContainer") or model["Containers"][0])
            multi = container.get("Mode") == "MultiModel"
            new_container = {k: container[k] for k in _CONTAINER_KEYS if container.get(k) is not None}
            new_container["ModelDataUrl"] = _resolve_model_data(session, new_model_data, new_name, multi)
            if image_uri:
                new_container["Image"] = image_uri
            model_name = new_name if not renamed else f"{new_name}-{len(renamed)}"
            extra = {k: model[k] for k in _MODEL_KEYS if model.get(k) is not None}
            sm.create_model(
                ModelName=model_name,
                PrimaryContainer=new_container,
                ExecutionRoleArn=model["ExecutionRoleArn"],
                Tags=tag_list(_tags_of(session, model["ModelArn"]) or DEFAULT_TAGS),
                **extra,
            )
            created.append((sm.delete_model, {"ModelName": model_name}))
            renamed[old_model] = model_name
        variants = []
        for variant in old_config["ProductionVariants"]:
            current = _variant(desc, variant["VariantName"])
            new_variant = {k: v for k, v in variant.items() if k != "ModelName"}
            new_variant["ModelName"] = renamed[variant["ModelName"]]
            if "InitialInstanceCount" in new_variant:
                new_variant["InitialInstanceCount"] = current.get(
                    "CurrentInstanceCount", variant["InitialInstanceCount"]
                )
            variants.append(new_variant)
        extra_config = {k: old_config[k] for k in _CONFIG_KEYS if old_config.get(k) is not None}
        sm.create_endpoint_config(
            EndpointConfigName=new_name,
            ProductionVariants=variants,
            Tags=tag_list(_tags_of(session, old_config["EndpointConfigArn"]) or DEFAULT_TAGS),
            **extra_config,
        )
        created.append((sm.delete_endpoint_config, {"EndpointConfigName": new_name}))
        sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=new_name, RetainAllVariantProperties=True)
    except Exception:
        _undo(created)
        raise
    if wait:
        final = wait_for_endpoint(session, endpoint, timeout=timeout, poll=poll, progress=progress)
        if final.get("EndpointConfigName") != new_name:
            raise EndpointFailedError(
                endpoint,
                f"rolled back to {final.get('EndpointConfigName')}",
                final.get("FailureReason") or "the new model did not become healthy",
            )
        if delete_old:
            sm.delete_endpoint_config(EndpointConfigName=old_config_name)
            for old_model in renamed:
                _delete_quietly(sm.delete_model, ModelName=old_model)
    return new_name


def _tags_of(session: Session, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in session.sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    return tags


def _delete_quietly(func: Callable[..., Any], **kwargs: Any) -> bool:
    try:
        func(**kwargs)
        return True
    except ClientError as exc:
        if "Could not find" in exc.response.get("Error", {}).get("Message", ""):
            return False
        raise


def delete_endpoint(
    session: Session,
    name: str,
    delete_config: bool = True,
    delete_model: bool = True,
    *,
    wait: bool = False,
    timeout: float = 900.0,
    poll: float | None = None,
    progress: bool = True,
) -> list[str]:
    """Delete an endpoint, then (by default) its endpoint config and the models it used.

    Returns the names deleted, e.g. ``["endpoint:x", "endpoint-config:x", "model:x"]``. Raises
    :class:`EndpointNotFoundError` if the endpoint does not exist. ``wait=True`` polls until
    DescribeEndpoint no longer finds it (``progress``: a bar showing the endpoint's status).
    """
    sm = session.sagemaker
    desc = describe_endpoint(session, name)
    config_name = desc["EndpointConfigName"]
    models: list[str] = []
    if delete_model:
        try:
            config = sm.describe_endpoint_config(EndpointConfigName=config_name)
            models = list(dict.fromkeys(v["ModelName"] for v in config["ProductionVariants"]))
        except ClientError:
            models = []
    sm.delete_endpoint(EndpointName=name)
    deleted = [f"endpoint:{name}"]
    if delete_config and _delete_quietly(sm.delete_endpoint_config, EndpointConfigName=config_name):
        deleted.append(f"endpoint-config:{config_name}")
    for model in models:
        if _delete_quietly(sm.delete_model, ModelName=model):
            deleted.append(f"model:{model}")
    if wait:
        from catkit.progress import StatusBar

        start = _monotonic()
        attempt = 0
        with StatusBar(name, enabled=progress) as bar:
            while True:
                try:
                    bar.show(describe_endpoint(session, name)["EndpointStatus"])
                except EndpointNotFoundError:
                    bar.done("deleted")
                    break
                if _monotonic() - start > timeout:
                    raise EndpointWaitTimeout(f"Endpoint {name} still exists {timeout:.0f} s after DeleteEndpoint.")
                _sleep(_next_poll(poll, attempt))
                attempt += 1
    return deleted


def list_endpoints(session: Session, tag_key: str | None = None, tag_value: str | None = None) -> list[dict]:
    """All endpoints (ListEndpoints, paginated), optionally only those carrying a tag.

    Each item is the EndpointSummary (EndpointName, EndpointArn, CreationTime, EndpointStatus...)
    plus ``Tags`` (dict) when filtering by tag.
    """
    found = []
    for page in session.sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page.get("Endpoints", []):
            if tag_key is None:
                found.append(summary)
                continue
            tags = _tags_of(session, summary["EndpointArn"])
            if tag_key in tags and (tag_value is None or tags[tag_key] == tag_value):
                found.append({**summary, "Tags": tags})
    return found


def delete_tagged_endpoints(
    session: Session,
    tag_key: str,
    tag_value: str | None = None,
    *,
    delete_config: bool = True,
    delete_model: bool = True,
    dry_run: bool = False,
    wait: bool = False,
    timeout: float = 900.0,
    poll: float | None = None,
    progress: bool = True,
) -> list[str]:
    """Delete every endpoint carrying ``tag_key`` (= ``tag_value`` when given); returns their names.

    ``dry_run=True`` only lists what would be deleted. Endpoints that vanish meanwhile are skipped.
    ``wait=True`` returns only once each endpoint is gone (not just ``Deleting``).
    """
    names = [e["EndpointName"] for e in list_endpoints(session, tag_key, tag_value)]
    if dry_run:
        return names
    deleted = []
    for name in names:
        try:
            delete_endpoint(
                session, name, delete_config=delete_config, delete_model=delete_model,
                wait=wait, timeout=timeout, poll=poll,
            )
        except EndpointNotFoundError:
            continue
        deleted.append(name)
    return deleted
