"""The base of every local AWS service: operation-name dispatch and the per-request context.

A service subclasses :class:`BaseService` and implements one method per operation, named by
botocore's ``xform_name`` (``CreateEndpoint`` -> ``create_endpoint(self, params, ctx)``), sync or
async, returning a botocore-shaped result dict. The gateway calls :meth:`BaseService.dispatch`.
"""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any

from botocore import xform_name

from catkit.local.errors import AwsError

DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass
class RequestContext:
    """Who called and where: region (from the SigV4 credential scope), account, request id."""

    region: str = "us-east-1"
    account_id: str = DEFAULT_ACCOUNT_ID
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    service: str = ""
    headers: Any = None


class BaseService:
    """One AWS service: maps operation names to ``snake_case`` methods."""

    #: routing key of the service (``sagemaker``, ``cloudwatch``...), for error messages.
    service_name: str = ""

    def operation_method(self, operation: str) -> Any | None:
        """The bound method implementing ``operation``, or None."""
        name = _method_names.get(operation)
        if name is None:  # xform_name once per operation name (dispatch is on the hot path)
            if not operation or not operation[0].isalpha():
                return None
            name = xform_name(operation)
            if len(_method_names) < 4096:
                _method_names[operation] = name
        if name.startswith("_") or name in _RESERVED:
            return None
        method = getattr(self, name, None)
        return method if callable(method) else None

    async def dispatch(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """Run ``operation`` with ``params``; raises AwsError UnknownOperationException if missing."""
        method = self.operation_method(operation)
        if method is None:
            where = f" by {self.service_name}" if self.service_name else ""
            raise AwsError(
                "UnknownOperationException",
                f"Operation {operation} is not supported{where} in the catkit local backend.",
                400,
            )
        result = method(params, ctx)
        if type(result) is CoroutineType or inspect.isawaitable(result):
            result = await result
        return {} if result is None else result


_RESERVED = frozenset({"dispatch", "operation_method"})
_method_names: dict[str, str] = {}
