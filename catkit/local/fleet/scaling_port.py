"""The fleet as the scaling driver's port: endpoint variants seen and resized through the EndpointManager.

:class:`EndpointFleet` implements :class:`catkit.autoscaling.driver.FleetPort` for the local
backend. The data plane records Invocations/InvocationsPerInstance per request as it happens
(:mod:`catkit.local.fleet.invoke`), so ``advance`` has nothing to do; concurrency windows come
from the instances' in-flight peaks (:meth:`EndpointManager.take_concurrency_samples`); a capacity
change is an UpdateEndpointWeightsAndCapacities (instances launch with the provisioning delay and
drain on scale-in), refused with SageMaker's error text when the endpoint refuses it.
"""

from __future__ import annotations

import uuid

from catkit.autoscaling.driver import TICK_S, ConcurrencySample, ScalingRejected, VariantStatus
from catkit.local.errors import AwsError
from catkit.local.fleet.endpoints import EndpointManager
from catkit.names import parse_variant_resource_id


class EndpointFleet:
    """:class:`~catkit.autoscaling.driver.FleetPort` over one :class:`EndpointManager`."""

    def __init__(self, endpoints: EndpointManager) -> None:
        self.endpoints = endpoints
        self._sampled_at: float | None = None

    def advance(self, now: float) -> None:
        """Nothing to catch up: real instances, metrics recorded per request."""

    def variant_status(self, resource_id: str) -> VariantStatus | None:
        names = parse_variant_resource_id(resource_id)
        view = self.endpoints.get_variant(*names) if names else None
        if view is None:
            return None
        reason = None
        if view.status in ("Failed", "InService"):
            try:
                reason = self.endpoints.describe_endpoint(view.endpoint_name).get("FailureReason")
            except AwsError:
                return None
        return VariantStatus(view.status, int(view.desired_instance_count), reason)

    def set_capacity(self, resource_id: str, desired: int) -> None:
        names = parse_variant_resource_id(resource_id)
        if names is None:
            raise ScalingRejected(f"The resource {resource_id} is not a SageMaker endpoint variant.")
        try:
            self.endpoints.set_desired_instance_count(*names, desired)
        except AwsError as e:
            raise ScalingRejected(
                f"{e.message} (Service: AmazonSageMaker; Status Code: {e.status}; Error Code: {e.code}; "
                f"Request ID: {uuid.uuid4()})"
            ) from None

    def concurrency_samples(self, now: float) -> list[ConcurrencySample]:
        """The in-flight peaks since the previous call, as the window that ended ``now``."""
        start = self._sampled_at if self._sampled_at is not None and self._sampled_at < now else now - TICK_S
        self._sampled_at = now
        return [ConcurrencySample(start, dims, values) for dims, values in self.endpoints.take_concurrency_samples()]

    def next_change(self, now: float) -> float | None:
        return None  # real processes change in real time; the backend steps every 10 s
