"""The SageMaker control-plane API of the local backend (JSON 1.1, ``SageMaker.<Op>``).

Models, endpoint configurations and tags live here (persisted in ``backend.state``); endpoint
operations delegate to :class:`catkit.local.fleet.endpoints.EndpointManager`, which owns the endpoint
state machine and the instances. Parameters arrive validated against botocore's model by the codec;
the checks here are the ones AWS makes beyond the model (existence, uniqueness, hosting instance
types), with AWS's codes and messages.

:func:`install` is the backend component: it creates the fleet (``backend.endpoints``) and
registers this service and the ``sagemaker-runtime`` one
(:class:`catkit.local.services.runtime.RuntimeService`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catkit.instance_types import hosting_instance_types
from catkit.local.errors import AwsError
from catkit.local.fleet.async_inference import check_async_config
from catkit.local.fleet.container_env import check_environment
from catkit.local.fleet.endpoints import EndpointManager
from catkit.local.fleet.serverless import check_serverless_variant
from catkit.local.fleet.state import KIND_CONFIG, KIND_ENDPOINT, KIND_MODEL, state_docs
from catkit.local.services.base import BaseService, RequestContext
from catkit.local.services.pagination import offset_page, with_next_token
from catkit.local.validation import arn, check_name, list_page, not_found, parse_arn
from catkit.s3_urls import is_s3_url

_MAX_TAGS = 50
_ENUM_CACHE: dict[str, list[str]] = {}


def _invalid_tags_token() -> AwsError:
    return AwsError("ValidationException", "Invalid NextToken; pass the one from the previous response.")


def _aws_instance_types() -> list[str]:
    """Every hosting instance type AWS accepts (botocore's enum, cached); all are emulated, scaled
    down to this machine (:mod:`catkit.local.fleet.hardware`)."""
    if "types" not in _ENUM_CACHE:
        _ENUM_CACHE["types"] = hosting_instance_types()
    return _ENUM_CACHE["types"]


def _summary(doc: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: doc[k] for k in keys if doc.get(k) is not None}


@dataclass(frozen=True)
class _Stored:
    """A resource this service keeps as a state document: models and endpoint configurations."""

    kind: str  # state kind
    arn_kind: str  # resource type in its ARN
    label: str  # wording in messages
    name_key: str
    arn_key: str
    name_field: str  # the member name AWS's name validation reports
    list_key: str
    optional: tuple[str, ...]  # request members stored when given

    def name_sort(self) -> dict[str, Callable[[Any], Any]]:
        """List* SortBy keys."""
        return {"Name": lambda d: d[self.name_key].lower(), "CreationTime": lambda d: d["CreationTime"]}


_MODEL = _Stored(
    KIND_MODEL, "model", "model", "ModelName", "ModelArn", "modelName", "Models",
    ("PrimaryContainer", "Containers", "ExecutionRoleArn", "VpcConfig", "InferenceExecutionConfig"),
)
_CONFIG = _Stored(
    KIND_CONFIG, "endpoint-config", "endpoint configuration", "EndpointConfigName", "EndpointConfigArn",
    "endpointConfigName", "EndpointConfigs",
    ("DataCaptureConfig", "KmsKeyId", "AsyncInferenceConfig", "ExplainerConfig", "ShadowProductionVariants",
     "ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation"),
)


def _stored_operation(action: str, res: _Stored) -> Callable[..., dict[str, Any]]:
    """Describe*, Delete* or List* of a stored resource (``SageMakerService._<action>``)."""

    def operation(self: SageMakerService, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return getattr(self, f"_{action}")(res, params)

    operation.__doc__ = f"{action.capitalize()} {res.label} documents (request ``params``)."
    return operation


class SageMakerService(BaseService):
    """SageMaker operations for models, endpoint configs, endpoints and tags."""

    service_name = "sagemaker"

    def __init__(self, manager: EndpointManager) -> None:
        self.manager = manager
        self.state = manager.state
        self.clock = manager.clock

    # ------------------------------------------------------------------ helpers
    @property
    def _where(self) -> tuple[str, str]:
        return self.manager.region, self.manager.account_id

    def _arn(self, kind: str, name: str) -> str:
        return arn(kind, name, *self._where)

    def _new_name(self, res: _Stored, params: dict[str, Any]) -> str:
        """The name of a resource to create: valid, and not taken."""
        name = params[res.name_key]
        check_name(name, res.name_field)
        if self.state.get(res.kind, name.lower()) is not None:
            raise AwsError(
                "ValidationException",
                f'Cannot create already existing {res.label} "{self._arn(res.arn_kind, name)}".',
            )
        return name

    def _create(self, res: _Stored, name: str, params: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new resource document: name, ARN, ``fields``, creation time, tags and the
        optional members given; returns the Create* response (the ARN)."""
        doc: dict[str, Any] = {
            res.name_key: name,
            res.arn_key: self._arn(res.arn_kind, name),
            **fields,
            "CreationTime": self.clock.now(),
            "Tags": self._check_tags(params.get("Tags")),
        }
        doc.update({key: params[key] for key in res.optional if params.get(key) is not None})
        self.state.put(res.kind, name.lower(), doc)
        return {res.arn_key: doc[res.arn_key]}

    def _get(self, res: _Stored, name: str) -> dict[str, Any]:
        return self.manager.get_model(name) if res is _MODEL else self.manager.get_config(name)

    def _describe(self, res: _Stored, params: dict[str, Any]) -> dict[str, Any]:
        doc = self._get(res, params[res.name_key])
        return {k: v for k, v in doc.items() if k != "Tags"}

    def _delete(self, res: _Stored, params: dict[str, Any]) -> dict[str, Any]:
        name = params[res.name_key]
        self._get(res, name)
        self.state.delete(res.kind, name.lower())
        return {}

    def _list(self, res: _Stored, params: dict[str, Any]) -> dict[str, Any]:
        docs = state_docs(self.state, res.kind)
        page, token = list_page(docs, params, name_key=res.name_key, sort_keys=res.name_sort())
        keys = (res.name_key, res.arn_key, "CreationTime")
        return with_next_token({res.list_key: [_summary(d, keys) for d in page]}, token)

    @staticmethod
    def _check_tags(tags: list[dict[str, str]] | None) -> list[dict[str, str]]:
        tags = list(tags or [])
        if len(tags) > _MAX_TAGS:
            raise AwsError("ValidationException", f"Too many tags: at most {_MAX_TAGS} tags per resource, got {len(tags)}.")
        for t in tags:
            if t.get("Key", "").lower().startswith("aws:"):
                raise AwsError("ValidationException", f"Tag keys may not start with 'aws:' ({t['Key']!r} is reserved).")
        return tags

    # ------------------------------------------------------------------ models
    def create_model(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = self._new_name(_MODEL, params)
        primary, containers = params.get("PrimaryContainer"), params.get("Containers")
        if primary and containers:
            raise AwsError("ValidationException", "Specify either PrimaryContainer or Containers, not both.")
        if not primary and not containers:
            raise AwsError("ValidationException", "Either PrimaryContainer or Containers must be specified.")
        for c in [primary] if primary else containers:
            url = c.get("ModelDataUrl")
            if url is not None and not is_s3_url(url):  # s3://, path-style or virtual-hosted https
                raise AwsError(
                    "ValidationException",
                    f"ModelDataUrl {url!r} is not an S3 URL; pass s3://bucket/key or "
                    "https://bucket.s3.region.amazonaws.com/key (served from the backend's S3).",
                )
        check_environment([primary] if primary else containers)  # an allowlist (fleet.container_env)
        if containers and len(containers) > 1:
            self._check_pipeline(containers)
        # AWS always returns EnableNetworkIsolation
        isolation = {"EnableNetworkIsolation": bool(params.get("EnableNetworkIsolation", False))}
        return self._create(_MODEL, name, params, isolation)

    @staticmethod
    def _check_pipeline(containers: list[dict[str, Any]]) -> None:
        """A multi-container model (Serial pipeline or Direct): unique hostnames; no multi-model
        container (AWS allows one in a pipeline; the local backend does not emulate that)."""
        hostnames = [c["ContainerHostname"] for c in containers if c.get("ContainerHostname")]
        if len(set(hostnames)) != len(hostnames):
            raise AwsError("ValidationException", f"ContainerHostname values must be unique, got {hostnames}.")
        if any(c.get("Mode") == "MultiModel" for c in containers):
            raise AwsError(
                "ValidationException",
                "A MultiModel container inside a multi-container model is not emulated by the local backend; "
                "deploy the multi-model container as a model of its own.",
            )

    describe_model = _stored_operation("describe", _MODEL)
    delete_model = _stored_operation("delete", _MODEL)
    list_models = _stored_operation("list", _MODEL)

    # ------------------------------------------------------------------ endpoint configs
    def create_endpoint_config(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = self._new_name(_CONFIG, params)
        variants = [dict(v) for v in params["ProductionVariants"]]
        if not variants:
            raise AwsError("ValidationException", "ProductionVariants must contain at least one variant.")
        seen: set[str] = set()
        for i, pv in enumerate(variants, 1):
            vn = pv["VariantName"]
            check_name(vn, f"productionVariants.{i}.member.variantName")
            if vn in seen:
                raise AwsError("ValidationException", f'Variant name "{vn}" is repeated in ProductionVariants.')
            seen.add(vn)
            if not pv.get("ModelName"):
                raise AwsError("ValidationException", f'Variant "{vn}": ModelName is required.')
            if pv.get("ServerlessConfig"):
                check_serverless_variant(pv, vn)
                self.manager.get_model(pv["ModelName"])
                pv.setdefault("InitialVariantWeight", 1.0)
                continue
            itype = pv.get("InstanceType")
            if not itype or pv.get("InitialInstanceCount") is None:
                raise AwsError(
                    "ValidationException",
                    f'Variant "{vn}": InstanceType and InitialInstanceCount are required for instance-based '
                    "production variants.",
                )
            if itype not in _aws_instance_types():
                allowed = ", ".join(_aws_instance_types())
                raise AwsError(
                    "ValidationException",
                    f"1 validation error detected: Value '{itype}' at 'productionVariants.{i}.member.instanceType' "
                    f"failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]",
                )
            if int(pv["InitialInstanceCount"]) < 1:
                raise AwsError("ValidationException", f'Variant "{vn}": InitialInstanceCount must be at least 1.')
            if not pv.get("ModelName"):
                raise AwsError("ValidationException", f'Variant "{vn}": ModelName is required.')
            self.manager.get_model(pv["ModelName"])
            pv.setdefault("InitialVariantWeight", 1.0)
        if params.get("AsyncInferenceConfig") is not None:
            check_async_config(params["AsyncInferenceConfig"])
        return self._create(_CONFIG, name, params, {"ProductionVariants": variants})

    describe_endpoint_config = _stored_operation("describe", _CONFIG)
    delete_endpoint_config = _stored_operation("delete", _CONFIG)
    list_endpoint_configs = _stored_operation("list", _CONFIG)

    # ------------------------------------------------------------------ endpoints
    def create_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        tags = self._check_tags(params.get("Tags"))
        endpoint_arn = self.manager.create_endpoint(params["EndpointName"], params["EndpointConfigName"], tags)
        return {"EndpointArn": endpoint_arn}

    def describe_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self.manager.describe_endpoint(params["EndpointName"])

    def delete_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        self.manager.delete_endpoint(params["EndpointName"])
        return {}

    def update_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        exclude = [p.get("VariantPropertyType") for p in params.get("ExcludeRetainedVariantProperties") or []]
        endpoint_arn = self.manager.update_endpoint(
            params["EndpointName"], params["EndpointConfigName"],
            retain=bool(params.get("RetainAllVariantProperties")), exclude=[e for e in exclude if e],
        )
        return {"EndpointArn": endpoint_arn}

    def update_endpoint_weights_and_capacities(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        endpoint_arn = self.manager.update_weights_and_capacities(
            params["EndpointName"], params["DesiredWeightsAndCapacities"]
        )
        return {"EndpointArn": endpoint_arn}

    def list_endpoints(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        docs = [self.manager.endpoint_doc(n) for n in self.manager.endpoint_names()]
        page, token = list_page(
            docs, params, name_key="EndpointName", status_key="EndpointStatus",
            sort_keys={
                "Name": lambda d: d["EndpointName"].lower(),
                "CreationTime": lambda d: d["CreationTime"],
                "Status": lambda d: d["EndpointStatus"],
            },
        )
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return with_next_token({"Endpoints": [_summary(d, keys) for d in page]}, token)

    # ------------------------------------------------------------------ tags
    def _tagged(self, resource_arn: str) -> tuple[dict[str, Any], Any]:
        """The resource document and a function that saves it."""
        parsed = parse_arn(resource_arn)
        region, account = self._where
        if parsed is None or f":{region}:{account}:" not in resource_arn:
            raise AwsError(
                "ValidationException",
                f"Resource ARN {resource_arn!r} is not a model, endpoint-config or endpoint of this local "
                f"backend (region {region}, account {account}).",
            )
        kind, name = parsed
        if kind == "endpoint":
            doc = self.manager.endpoint_doc(name)
            return doc, lambda d: self.state.put(KIND_ENDPOINT, name, d)
        state_kind = KIND_MODEL if kind == "model" else KIND_CONFIG
        doc = self.state.get(state_kind, name)
        if doc is None:
            raise not_found(kind, name, region, account)
        return doc, lambda d: self.state.put(state_kind, name, d)

    def add_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        doc, save = self._tagged(params["ResourceArn"])
        merged = {t["Key"]: t.get("Value", "") for t in doc.get("Tags") or []}
        for t in self._check_tags(params["Tags"]):
            merged[t["Key"]] = t.get("Value", "")
        doc["Tags"] = self._check_tags([{"Key": k, "Value": v} for k, v in merged.items()])
        save(doc)
        return {"Tags": params["Tags"]}

    def list_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        doc, _ = self._tagged(params["ResourceArn"])
        tags = list(doc.get("Tags") or [])
        size = int(params.get("MaxResults") or 50)
        page, token = offset_page(tags, params.get("NextToken"), size, params["ResourceArn"], _invalid_tags_token)
        return with_next_token({"Tags": page}, token)

    def delete_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        doc, save = self._tagged(params["ResourceArn"])
        drop = set(params["TagKeys"])
        doc["Tags"] = [t for t in doc.get("Tags") or [] if t["Key"] not in drop]
        save(doc)
        return {}
