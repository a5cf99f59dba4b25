"""The fleet's documents: endpoints, their variants, and how they are persisted and described.

Models and endpoint configurations are stored documents (kinds :data:`KIND_MODEL`,
:data:`KIND_CONFIG`, written by the SageMaker service); an endpoint is a stored document (kind
:data:`KIND_ENDPOINT`) plus live state - an :class:`Endpoint` holding one :class:`Variant` per
production variant, each with its instance pool. Each variant document carries a snapshot of its
model (image, ModelDataUrl, environment, mode), like AWS, which keeps serving a deployed model after
DeleteModel. This module builds those documents from an endpoint configuration, saves and loads
them, renders DescribeEndpoint and checks update requests against them; it starts nothing (the
state machine is :mod:`catkit.local.fleet.endpoints`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.fleet.instances import Instance, InstanceSpec, InstanceState

KIND_MODEL = "sagemaker.model"
KIND_CONFIG = "sagemaker.endpoint-config"
KIND_ENDPOINT = "sagemaker.endpoint"

#: The emulated instance type (vCPU/memory budget on this machine) a serverless worker runs as.
SERVERLESS_WORKER_TYPE = "ml.m5.large"
#: Endpoint statuses during which UpdateEndpoint / UpdateEndpointWeightsAndCapacities are refused.
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
#: Endpoint statuses whose instances should be serving (relaunched after a restart).
SERVING = ("InService", "Updating", "RollingBack", "SystemUpdating")


@dataclass(frozen=True)
class VariantView:
    """What the autoscaling wiring reads about a production variant."""

    endpoint_name: str
    variant_name: str
    desired_instance_count: int
    current_instance_count: int
    status: str  # the endpoint's status
    instance_type: str
    current_weight: float
    desired_weight: float


class Variant:
    """A live production variant: its persisted properties and its instance pool."""

    __slots__ = ("current_weight", "dims", "instances", "name", "props", "status_entry")

    def __init__(self, endpoint_name: str, props: dict[str, Any]) -> None:
        self.props = props
        self.name: str = props["VariantName"]
        self.current_weight: float = float(props.get("CurrentWeight", props.get("DesiredWeight", 1.0)))
        self.instances: list[Instance] = []
        self.dims = {"EndpointName": endpoint_name, "VariantName": self.name}
        self.status_entry: dict[str, Any] | None = None

    @property
    def desired_count(self) -> int:
        return int(self.props["DesiredInstanceCount"])

    @property
    def current_count(self) -> int:
        return [i.state for i in self.instances].count(InstanceState.IN_SERVICE)  # (per request: no generator)

    def active(self) -> list[Instance]:
        """Instances that count towards capacity (not draining/stopped/failed)."""
        keep = (InstanceState.IN_SERVICE, InstanceState.STARTING, InstanceState.PROVISIONING)
        return [i for i in self.instances if i.state in keep]

    def spec(self, endpoint_name: str) -> InstanceSpec:
        """What an instance of this variant runs."""
        p = self.props
        return InstanceSpec(
            endpoint=endpoint_name,
            variant=self.name,
            instance_type=p["InstanceType"],
            model_data_url=p.get("ModelDataUrl"),
            environment=dict(p.get("Environment") or {}),
            mode=p.get("Mode") or "SingleModel",
            image=p.get("Image"),
            containers=[dict(c) for c in p.get("Containers") or []],
            execution_mode=p.get("ExecutionMode") or "Serial",
        )

    def view(self, endpoint: Endpoint) -> VariantView:
        """The read-only :class:`VariantView` of this variant of ``endpoint``."""
        return VariantView(
            endpoint_name=endpoint.name,
            variant_name=self.name,
            desired_instance_count=self.desired_count,
            current_instance_count=self.current_count,
            status=endpoint.status,
            instance_type=self.props["InstanceType"],
            current_weight=self.current_weight,
            desired_weight=float(self.props["DesiredWeight"]),
        )


class Endpoint:
    """A live endpoint: its document, serving variants, pending (blue/green) variants, and the
    control-plane operation in progress."""

    __slots__ = ("doc", "name", "op", "pending", "variants")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.name: str = doc["EndpointName"]
        self.variants: list[Variant] = [Variant(self.name, p) for p in doc["Variants"]]
        self.pending: list[Variant] | None = None
        self.op: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        return self.doc["EndpointStatus"]

    def all_variants(self) -> list[Variant]:
        """Serving and pending variants."""
        return [*self.variants, *(self.pending or [])]


# ---------------------------------------------------------------------------------- persistence
def state_docs(state: Any, kind: str) -> list[dict[str, Any]]:
    """``state.list(kind)`` as documents, whether the store returns docs, (key, doc) pairs or a dict."""
    items = state.list(kind)
    if isinstance(items, Mapping):
        return [dict(v) for v in items.values()]
    out = []
    for it in items:
        if isinstance(it, tuple | list) and len(it) == 2 and isinstance(it[1], Mapping):
            out.append(dict(it[1]))
        else:
            out.append(dict(it))
    return out


def load_endpoints(state: Any) -> dict[str, Endpoint]:
    """The persisted endpoints, by lower-case name."""
    return {doc["EndpointName"].lower(): Endpoint(doc) for doc in state_docs(state, KIND_ENDPOINT)}


def save_endpoint(state: Any, ep: Endpoint) -> None:
    """Write ``ep``'s document, with its variants' (and pending variants') current properties."""
    ep.doc["Variants"] = [v.props for v in ep.variants]
    if ep.pending is not None:
        ep.doc["PendingVariants"] = [v.props for v in ep.pending]
    else:
        ep.doc.pop("PendingVariants", None)
    state.put(KIND_ENDPOINT, ep.name.lower(), ep.doc)


# ------------------------------------------------------------------------------------ documents
def variant_props(
    config: dict[str, Any],
    get_model: Callable[[str], dict[str, Any]],
    now: float,
    retain_from: Endpoint | None = None,
    exclude: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The variant documents of endpoint configuration ``config`` (models looked up with
    ``get_model``, which raises if one is missing). With ``retain_from`` (UpdateEndpoint's
    RetainAllVariantProperties) a variant of that endpoint with the same name keeps its instance
    count and weight, unless named in ``exclude``."""
    out = []
    for pv in config["ProductionVariants"]:
        model = get_model(pv["ModelName"])
        containers = model.get("Containers") or ([model["PrimaryContainer"]] if model.get("PrimaryContainer") else [])
        if not containers:
            raise AwsError("ValidationException", f"Model \"{model['ModelName']}\" has no container.")
        c = containers[0]
        weight = float(pv.get("InitialVariantWeight", 1.0))
        serverless = pv.get("ServerlessConfig")
        props = {
            "VariantName": pv["VariantName"],
            "ModelName": pv["ModelName"],
            # A serverless variant's workers run as SERVERLESS_WORKER_TYPE; its warm (provisioned)
            # workers are its DesiredInstanceCount (catkit.local.fleet.serverless).
            "InstanceType": SERVERLESS_WORKER_TYPE if serverless else pv["InstanceType"],
            "DesiredInstanceCount": (int(serverless.get("ProvisionedConcurrency") or 0) if serverless
                                     else int(pv.get("InitialInstanceCount", 1))),
            "DesiredWeight": weight,
            "CurrentWeight": weight,
            "Image": c.get("Image"),
            "ModelDataUrl": c.get("ModelDataUrl"),
            "Environment": dict(c.get("Environment") or {}),
            "Mode": c.get("Mode") or "SingleModel",
            "MultiModelConfig": dict(c.get("MultiModelConfig") or {}),
            "ResolutionTime": now,
        }
        if serverless:
            props["ServerlessConfig"] = dict(serverless)
        if len(containers) > 1:  # an inference pipeline / multi-container endpoint
            props["Containers"] = pipeline_containers(containers)
            props["ExecutionMode"] = (model.get("InferenceExecutionConfig") or {}).get("Mode") or "Serial"
        if retain_from is not None:
            old = next((v for v in retain_from.variants if v.name == props["VariantName"]), None)
            if old is not None:
                ex = exclude or set()
                if "DesiredInstanceCount" not in ex:
                    props["DesiredInstanceCount"] = old.desired_count
                if "DesiredWeight" not in ex:
                    props["DesiredWeight"] = props["CurrentWeight"] = float(old.props["DesiredWeight"])
        out.append(props)
    return out


def pipeline_containers(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The container snapshot of a multi-container model. A container without ContainerHostname is
    named ``container-<n>`` (ASSUMPTION: AWS's generated names are not documented)."""
    return [
        {
            "ContainerHostname": c.get("ContainerHostname") or f"container-{i}",
            "Image": c.get("Image"),
            "ModelDataUrl": c.get("ModelDataUrl"),
            "Environment": dict(c.get("Environment") or {}),
        }
        for i, c in enumerate(containers, 1)
    ]


#: Endpoint-level members of an endpoint configuration that the endpoint snapshots (and DescribeEndpoint shows).
ENDPOINT_SETTINGS = ("AsyncInferenceConfig",)


def apply_endpoint_settings(doc: dict[str, Any], config: Mapping[str, Any]) -> None:
    """Snapshot ``config``'s endpoint-level settings (AsyncInferenceConfig) into endpoint ``doc``."""
    for key in ENDPOINT_SETTINGS:
        if config.get(key) is not None:
            doc[key] = config[key]
        else:
            doc.pop(key, None)


def new_endpoint(name: str, endpoint_arn: str, config_name: str, props: list[dict[str, Any]],
                 tags: list[dict[str, str]] | None, now: float) -> Endpoint:
    """A new endpoint (``Creating``, its variants launching) with variant documents ``props``."""
    doc = {
        "EndpointName": name,
        "EndpointArn": endpoint_arn,
        "EndpointConfigName": config_name,
        "EndpointStatus": "Creating",
        "CreationTime": now,
        "LastModifiedTime": now,
        "Tags": list(tags or []),
        "Variants": props,
    }
    ep = Endpoint(doc)
    for v in ep.variants:
        v.status_entry = {"Status": "Creating", "StatusMessage": "Launching instances.", "StartTime": now}
    return ep


def resolved_image(image: str | None) -> str | None:
    """A stable ``image@sha256:...`` for DeployedImages.ResolvedImage (no registry to ask)."""
    if not image:
        return None
    base = image.split("@", 1)[0]
    return f"{base}@sha256:{hashlib.sha256(base.encode()).hexdigest()}"


def variant_summary(v: Variant) -> dict[str, Any]:
    """DescribeEndpoint's ProductionVariantSummary of ``v``."""
    p = v.props
    s: dict[str, Any] = {
        "VariantName": v.name,
        "CurrentWeight": v.current_weight,
        "DesiredWeight": float(p["DesiredWeight"]),
        "CurrentInstanceCount": v.current_count,
        "DesiredInstanceCount": v.desired_count,
    }
    if p.get("ServerlessConfig"):  # no instances: the serverless config instead
        del s["CurrentInstanceCount"], s["DesiredInstanceCount"]
        current = {**p["ServerlessConfig"]}
        if "ProvisionedConcurrency" in current:
            current["ProvisionedConcurrency"] = v.desired_count
        s["CurrentServerlessConfig"] = s["DesiredServerlessConfig"] = current
    images = [c.get("Image") for c in p.get("Containers") or []] or [p.get("Image")]
    if any(images):
        s["DeployedImages"] = [
            {"SpecifiedImage": image, "ResolvedImage": resolved_image(image), "ResolutionTime": p.get("ResolutionTime")}
            for image in images
            if image
        ]
    if v.status_entry:
        s["VariantStatus"] = [dict(v.status_entry)]
    return s


def describe(ep: Endpoint) -> dict[str, Any]:
    """The DescribeEndpoint output of ``ep``."""
    d = ep.doc
    out: dict[str, Any] = {
        "EndpointName": d["EndpointName"],
        "EndpointArn": d["EndpointArn"],
        "EndpointConfigName": d["EndpointConfigName"],
        "EndpointStatus": d["EndpointStatus"],
        "CreationTime": d["CreationTime"],
        "LastModifiedTime": d["LastModifiedTime"],
        "ProductionVariants": [variant_summary(v) for v in ep.variants],
    }
    if d.get("FailureReason"):
        out["FailureReason"] = d["FailureReason"]
    for key in ENDPOINT_SETTINGS:
        if d.get(key) is not None:
            out[key] = d[key]
    if ep.pending is not None and d.get("PendingConfigName"):
        out["PendingDeploymentSummary"] = {
            "EndpointConfigName": d["PendingConfigName"],
            "StartTime": d.get("PendingStartTime", d["LastModifiedTime"]),
            "ProductionVariants": [
                {**variant_summary(v), "InstanceType": v.props["InstanceType"]} for v in ep.pending
            ],
        }
    return out


# ---------------------------------------------------------------------------------- request checks
def check_updatable(ep: Endpoint) -> None:
    """Refuse an update of a Failed or busy endpoint (ValidationException, AWS's messages)."""
    a = ep.doc["EndpointArn"]
    if ep.status == "Failed":
        raise AwsError(
            "ValidationException",
            f'Cannot update failed endpoint "{a}". DeleteEndpoint is the only operation allowed on a '
            "Failed endpoint; delete it and create it again.",
        )
    if ep.status in BUSY:
        raise AwsError("ValidationException", f'Cannot update in-progress endpoint "{a}".')


def check_weights_and_capacities(ep: Endpoint, desired: list[Mapping[str, Any]]) -> int:
    """Validate UpdateEndpointWeightsAndCapacities' DesiredWeightsAndCapacities for ``ep``;
    returns how many instances it adds beyond the variants' current desired counts."""
    by_name = {v.name: v for v in ep.variants}
    seen = set()
    for item in desired:
        vn = item["VariantName"]
        if vn not in by_name:
            raise AwsError(
                "ValidationException",
                f'The variant name(s) "{vn}" is/are not present in the endpoint '
                f'"{ep.doc["EndpointArn"]}". Check the variant names with DescribeEndpoint.',
            )
        if vn in seen:
            raise AwsError("ValidationException", f'Variant "{vn}" appears more than once in the request.')
        seen.add(vn)
        if "DesiredWeight" not in item and "DesiredInstanceCount" not in item:
            raise AwsError(
                "ValidationException",
                f'Specify DesiredWeight and/or DesiredInstanceCount for variant "{vn}".',
            )
        n = item.get("DesiredInstanceCount")
        # Asynchronous endpoints may scale to zero instances (async-inference-autoscale.html).
        if n is not None and int(n) < (0 if ep.doc.get("AsyncInferenceConfig") else 1):
            raise AwsError(
                "ValidationException",
                f"DesiredInstanceCount for variant \"{vn}\" must be at least 1 for instance-based "
                f"variants, got {n}.",
            )
        w = item.get("DesiredWeight")
        if w is not None and (not math.isfinite(float(w)) or float(w) < 0):
            raise AwsError("ValidationException", f'DesiredWeight for variant "{vn}" must be >= 0.')
    return sum(
        max(0, int(i["DesiredInstanceCount"]) - by_name[i["VariantName"]].desired_count)
        for i in desired
        if i.get("DesiredInstanceCount") is not None
    )


__all__ = [
    "BUSY",
    "ENDPOINT_SETTINGS",
    "KIND_CONFIG",
    "KIND_ENDPOINT",
    "KIND_MODEL",
    "SERVERLESS_WORKER_TYPE",
    "SERVING",
    "Endpoint",
    "Variant",
    "VariantView",
    "apply_endpoint_settings",
    "check_updatable",
    "check_weights_and_capacities",
    "describe",
    "load_endpoints",
    "new_endpoint",
    "pipeline_containers",
    "resolved_image",
    "save_endpoint",
    "state_docs",
    "variant_props",
    "variant_summary",
]
