"""The SageMaker Runtime data-plane API of the local backend: InvokeEndpoint (rest-json).

A thin adapter: the codec hands over botocore-shaped params (header-bound members already
unpacked by the names in botocore's model), and :meth:`EndpointManager.invoke` routes the request
to an instance and records the invocation metrics. Kept minimal because it is the hot path.
"""

from __future__ import annotations

from typing import Any

from catkit.local.fleet.endpoints import EndpointManager
from catkit.local.services.base import BaseService, RequestContext


class RuntimeService(BaseService):
    """``sagemaker-runtime``: InvokeEndpoint."""

    service_name = "sagemaker-runtime"

    def __init__(self, manager: EndpointManager) -> None:
        self.manager = manager

    async def invoke_endpoint(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        body = params.get("Body") or b""
        if not isinstance(body, bytes | bytearray):
            body = body.read() if hasattr(body, "read") else str(body).encode()
        get = params.get
        return await self.manager.invoke(
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
