"""The Application Auto Scaling API of the local backend (JSON 1.1, ``AnyScaleFrontendService.<Op>``).

A thin layer over the pure engine (:class:`catkit.autoscaling.engine.Engine`): parameters arrive
validated against botocore's model by the codec; this module adds the checks AWS makes beyond the
model (SageMaker resource ids and dimensions, the endpoint and variant must exist, describe
filters, MaxResults ranges, pagination tokens) and turns engine errors into AWS errors with the
same code. SageMaker endpoint variants (``sagemaker:variant:DesiredInstanceCount``) are the
resources that exist locally; for every other namespace and dimension the API answers as AWS does
for resources it cannot find: Describe* list nothing, RegisterScalableTarget is refused because the
resource does not exist, and Put/Delete* name the missing scalable target (ObjectNotFoundException).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from catkit.autoscaling.engine import Engine
from catkit.autoscaling.errors import ScalingError
from catkit.local.errors import AwsError
from catkit.local.services.base import BaseService, RequestContext
from catkit.local.services.pagination import decode_token, encode_token, offset_page, with_next_token
from catkit.names import AAS_SAGEMAKER, VARIANT_INSTANCE_COUNT
from catkit.timeconv import to_epoch_or_none

NAMESPACE = AAS_SAGEMAKER
VARIANT_DIMENSION = VARIANT_INSTANCE_COUNT
VARIANT_PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"
_VARIANT_RID = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")
# MaxResults ranges from the AAS API reference (DescribeScalingPolicies allows at most 10).
_MAX_RESULTS = {
    "DescribeScalableTargets": 50,
    "DescribeScalingPolicies": 10,
    "DescribeScheduledActions": 50,
    "DescribeScalingActivities": 50,
}
_MAX_TAGS = 50
# Describe* by names: operation -> (engine method, names parameter, response list, token fingerprint kind)
_NAMED_LISTINGS = {
    "DescribeScalingPolicies": ("describe_scaling_policies", "PolicyNames", "ScalingPolicies", "policies"),
    "DescribeScheduledActions": (
        "describe_scheduled_actions", "ScheduledActionNames", "ScheduledActions", "scheduled"
    ),
}


def _aws(err: ScalingError) -> AwsError:
    return AwsError(err.code, err.message, 400)


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message, 400)


def _invalid_token() -> AwsError:
    return _validation("Invalid pagination token: pass the NextToken from the previous response.")


def _invalid_activity_token() -> AwsError:
    return _validation("Invalid NextToken: pass the NextToken from the previous response.")


def parse_variant_resource_id(resource_id: str) -> tuple[str, str]:
    """``endpoint/<endpoint>/variant/<variant>`` -> (endpoint, variant); ValidationException otherwise."""
    m = _VARIANT_RID.match(resource_id or "")
    if not m:
        raise _validation(
            f"Unsupported resource ID {resource_id!r} for scalable dimension {VARIANT_DIMENSION}: "
            "expected endpoint/<endpoint-name>/variant/<variant-name>."
        )
    return m.group("endpoint"), m.group("variant")


class ApplicationAutoScalingService(BaseService):
    """AAS operations over an :class:`Engine`, for SageMaker endpoint variants.

    ``variant_exists(endpoint, variant) -> bool`` answers whether the variant exists now;
    ``now()`` is the emulated clock; ``on_change()`` is called after every successful mutation
    (the controller persists the engine there).
    """

    service_name = "application-autoscaling"

    def __init__(
        self,
        engine: Engine,
        now: Callable[[], float],
        variant_exists: Callable[[str, str], bool],
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.now = now
        self.variant_exists = variant_exists
        self.on_change = on_change or (lambda: None)
        self.tags: dict[str, dict[str, str]] = {}  # scalable target ARN -> tags
        #: ``serverless(endpoint, variant) -> bool`` (set by the controller): a serverless variant
        #: scales its provisioned concurrency (sagemaker:variant:DesiredProvisionedConcurrency)
        #: and has no instance count to scale.
        self.serverless: Callable[[str, str], bool] = lambda endpoint, variant: False

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _namespace(params: Mapping[str, Any]) -> str:
        """The request's ServiceNamespace (botocore's enum is checked by the codec)."""
        return str(params.get("ServiceNamespace") or "")

    def _target_params(self, params: Mapping[str, Any]) -> tuple[str, str, str]:
        ns = self._namespace(params)
        rid = params.get("ResourceId") or ""
        dim = params.get("ScalableDimension") or ""
        if not dim.startswith(f"{ns}:"):
            # AWS's text as moto reproduces it (getmoto/moto#3304); unconfirmed against AWS itself.
            raise _validation("Unsupported service namespace, resource type or scalable dimension")
        if dim in (VARIANT_DIMENSION, VARIANT_PROVISIONED_CONCURRENCY):
            parse_variant_resource_id(rid)
        return ns, rid, dim

    @staticmethod
    def _filters(params: Mapping[str, Any]) -> tuple[str | None, str | None]:
        rid = params.get("ResourceId")
        dim = params.get("ScalableDimension")
        if dim and not rid:
            raise _validation("If you specify ScalableDimension, you must also specify ResourceId.")
        return rid, dim

    @staticmethod
    def _page_size(operation: str, params: Mapping[str, Any]) -> int:
        """MaxResults (default: the operation's limit), validated against that limit."""
        limit = _MAX_RESULTS[operation]
        size = params.get("MaxResults")
        if size is None:
            size = limit
        if not 1 <= int(size) <= limit:
            raise _validation(f"MaxResults must be between 1 and {limit}; got {size}.")
        return int(size)

    @classmethod
    def _page(
        cls, operation: str, items: Sequence[Any], params: Mapping[str, Any], fingerprint: str
    ) -> tuple[list[Any], str | None]:
        size = cls._page_size(operation, params)
        return offset_page(items, params.get("NextToken"), size, fingerprint, _invalid_token)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScalingError as e:
            raise _aws(e) from None

    def _change(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A successful mutation: the engine call (errors mapped), then ``on_change()``."""
        result = self._call(fn, *args, **kwargs)
        self.on_change()
        return result

    def _describe_named(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """DescribeScalingPolicies / DescribeScheduledActions: filter by names, resource and
        dimension, then one page of ``to_api()`` documents."""
        method, names_key, list_key, kind = _NAMED_LISTINGS[operation]
        ns = self._namespace(params)
        rid, dim = self._filters(params)
        items = getattr(self.engine, method)(ns, params.get(names_key), rid, dim)
        fingerprint = f"{kind}:{sorted(params.get(names_key) or [])}:{rid}:{dim}"
        page, token = self._page(operation, items, params, fingerprint)
        return with_next_token({list_key: [item.to_api() for item in page]}, token)

    # ------------------------------------------------------------------ scalable targets
    def register_scalable_target(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        if dim in (VARIANT_PROVISIONED_CONCURRENCY, VARIANT_DIMENSION):
            serverless = self.serverless(*parse_variant_resource_id(rid))
            if serverless != (dim == VARIANT_PROVISIONED_CONCURRENCY):
                # ASSUMPTION (wording unconfirmed): each kind of variant has its own dimension.
                raise _validation(
                    f"Unable to register scalable target {rid} ({dim}): "
                    + ("a serverless variant scales sagemaker:variant:DesiredProvisionedConcurrency."
                       if serverless else "only a serverless variant with provisioned concurrency has "
                       "sagemaker:variant:DesiredProvisionedConcurrency.")
                )
        if dim not in (VARIANT_DIMENSION, VARIANT_PROVISIONED_CONCURRENCY):
            # ASSUMPTION (wording unconfirmed): AWS checks that the resource exists in its service
            # before registering; nothing but SageMaker endpoint variants exists locally.
            raise _validation(
                f"Unable to register scalable target {rid} ({dim}): the resource does not exist. The catkit "
                f"local backend emulates SageMaker endpoint variants ({VARIANT_DIMENSION}) only."
            )
        endpoint, variant = parse_variant_resource_id(rid)
        if not self.variant_exists(endpoint, variant):
            raise _validation(
                f"Unable to register scalable target {rid}: the SageMaker endpoint {endpoint!r} does not exist "
                f"or has no production variant {variant!r}. Create the endpoint first (or check the names "
                "with DescribeEndpoint)."
            )
        tags = params.get("Tags") or {}
        if len(tags) > _MAX_TAGS:
            raise _validation(f"A scalable target can have at most {_MAX_TAGS} tags.")
        target = self._call(
            self.engine.register_scalable_target,
            ns,
            rid,
            dim,
            self.now(),
            min_capacity=params.get("MinCapacity"),
            max_capacity=params.get("MaxCapacity"),
            suspended_state=params.get("SuspendedState"),
            role_arn=params.get("RoleARN")
            or f"arn:aws:iam::{ctx.account_id}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        )
        if tags:
            self.tags.setdefault(target.arn, {}).update(tags)
        self.on_change()
        return {"ScalableTargetARN": target.arn}

    def deregister_scalable_target(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        target = self.engine.targets.get((ns, rid, dim))
        self._call(self.engine.deregister_scalable_target, ns, rid, dim, self.now())
        if target is not None:
            self.tags.pop(target.arn, None)
        self.on_change()
        return {}

    def describe_scalable_targets(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns = self._namespace(params)
        targets = self.engine.describe_scalable_targets(
            ns, params.get("ResourceIds"), params.get("ScalableDimension")
        )
        fp = f"targets:{sorted(params.get('ResourceIds') or [])}:{params.get('ScalableDimension')}"
        page, token = self._page("DescribeScalableTargets", targets, params, fp)
        return with_next_token({"ScalableTargets": [t.to_api() for t in page]}, token)

    # ------------------------------------------------------------------ scaling policies
    def put_scaling_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        if params.get("PredictiveScalingPolicyConfiguration") and ns == NAMESPACE:
            raise _validation("PredictiveScaling policies are not supported for SageMaker endpoint variants.")
        result = self._change(
            self.engine.put_scaling_policy, params["PolicyName"], ns, rid, dim, self.now(),
            policy_type=params.get("PolicyType"),
            target_tracking_config=params.get("TargetTrackingScalingPolicyConfiguration"),
            step_scaling_config=params.get("StepScalingPolicyConfiguration"),
        )
        out: dict[str, Any] = {"PolicyARN": result.policy_arn}
        if result.alarms:
            out["Alarms"] = result.alarms
        return out

    def delete_scaling_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        self._change(self.engine.delete_scaling_policy, params["PolicyName"], ns, rid, dim, self.now())
        return {}

    def describe_scaling_policies(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self._describe_named("DescribeScalingPolicies", params)

    # ------------------------------------------------------------------ scheduled actions
    def put_scheduled_action(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        action = params.get("ScalableTargetAction") or {}
        self._change(
            self.engine.put_scheduled_action, params["ScheduledActionName"], ns, rid, dim, self.now(),
            schedule=params.get("Schedule"),
            timezone=params.get("Timezone"),
            start_time=to_epoch_or_none(params.get("StartTime")),
            end_time=to_epoch_or_none(params.get("EndTime")),
            min_capacity=action.get("MinCapacity"),
            max_capacity=action.get("MaxCapacity"),
        )
        return {}

    def delete_scheduled_action(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns, rid, dim = self._target_params(params)
        self._change(self.engine.delete_scheduled_action, params["ScheduledActionName"], ns, rid, dim)
        return {}

    def describe_scheduled_actions(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return self._describe_named("DescribeScheduledActions", params)

    # ------------------------------------------------------------------ activities
    def describe_scaling_activities(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        ns = self._namespace(params)
        rid, dim = self._filters(params)
        include = bool(params.get("IncludeNotScaledActivities"))
        activities = self.engine.describe_scaling_activities(ns, rid, dim, include)
        # Newest first: new activities would shift offsets, so the token names the next activity.
        size = self._page_size("DescribeScalingActivities", params)
        start = 0
        if params.get("NextToken"):
            ids = [a.activity_id for a in activities]
            try:
                start = ids.index(decode_token(params["NextToken"], "", _invalid_activity_token))
            except ValueError:
                raise _validation(
                    "Invalid NextToken: pass the NextToken from the previous response (the activity it points "
                    "at is no longer listed)."
                ) from None
        page = activities[start : start + size]
        token = encode_token(activities[start + size].activity_id) if start + size < len(activities) else None
        return with_next_token({"ScalingActivities": [a.to_api() for a in page]}, token)

    # ------------------------------------------------------------------ tags
    def _target_by_arn(self, arn: str) -> Any:
        for t in self.engine.targets.values():
            if t.arn == arn:
                return t
        raise AwsError(
            "ResourceNotFoundException",
            f"No scalable target found for ARN {arn}.",
            400,
            fields={"ResourceName": arn},
        )

    def tag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._target_by_arn(arn)
        tags = self.tags.setdefault(arn, {})
        tags.update(params.get("Tags") or {})
        if len(tags) > _MAX_TAGS:
            raise AwsError(
                "TooManyTagsException",
                f"A scalable target can have at most {_MAX_TAGS} tags.",
                400,
                fields={"ResourceName": arn},
            )
        self.on_change()
        return {}

    def untag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._target_by_arn(arn)
        for key in params.get("TagKeys") or []:
            self.tags.get(arn, {}).pop(key, None)
        self.on_change()
        return {}

    def list_tags_for_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = params["ResourceARN"]
        self._target_by_arn(arn)
        return {"Tags": dict(self.tags.get(arn, {}))}
