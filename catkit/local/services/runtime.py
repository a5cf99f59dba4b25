"""The SageMaker Runtime data-plane API of the local backend: InvokeEndpoint, InvokeEndpointAsync (rest-json).

A thin adapter: the codec hands over botocore-shaped params (header-bound members already
unpacked by the names in botocore's model), and :meth:`EndpointManager.invoke` routes the request
to an instance and records the invocation metrics. Kept minimal because it is the hot path.
InvokeEndpointAsync queues the request (:class:`catkit.local.fleet.async_inference.AsyncInference`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.fleet.endpoints import EndpointManager
from catkit.local.services.base import BaseService, RequestContext


class RuntimeService(BaseService):
    """``sagemaker-runtime``: InvokeEndpoint, InvokeEndpointAsync."""

    service_name = "sagemaker-runtime"

    def __init__(self, manager: EndpointManager, asynchronous: Any = None) -> None:
        self.manager = manager
        self.asynchronous = asynchronous  # catkit.local.fleet.async_inference.AsyncInference

    async def invoke_endpoint_async(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        if self.asynchronous is None:
            raise AwsError("UnknownOperationException", "InvokeEndpointAsync is not installed in this backend.", 400)
        body = params.get("Body")
        if body is not None and not isinstance(body, bytes | bytearray):
            body = body.read() if hasattr(body, "read") else str(body).encode()
        get = params.get
        return await self.asynchronous.invoke_async(
            params["EndpointName"], input_location=get("InputLocation"),
            body=None if body is None else bytes(body), content_type=get("ContentType"), accept=get("Accept"),
            custom_attributes=get("CustomAttributes"), inference_id=get("InferenceId"),
            request_ttl_seconds=get("RequestTTLSeconds"), invocation_timeout_seconds=get("InvocationTimeoutSeconds"),
            output_path_extension=get("S3OutputPathExtension"), filename=get("Filename"),
        )

    def invoke_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> Awaitable[dict[str, Any]]:
        # not async: dispatch awaits the manager's coroutine itself (one coroutine frame less per request)
        body = params.get("Body") or b""
        if not isinstance(body, bytes | bytearray):
            body = body.read() if hasattr(body, "read") else str(body).encode()
        get = params.get
        return self.manager.invoke(
            params["EndpointName"],
            bytes(body),
            content_type=get("ContentType"),
            accept=get("Accept"),
            custom_attributes=get("CustomAttributes"),
            target_variant=get("TargetVariant"),
            inference_id=get("InferenceId"),
            target_model=get("TargetModel"),
            target_container=get("TargetContainerHostname"),
        )
