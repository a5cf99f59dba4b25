"""The fleet's data plane: route an InvokeEndpoint request, forward it, record its metrics.

:class:`DataPlane` serves InvokeEndpoint for the endpoints of one fleet: it picks the variant
(weights, or TargetVariant) and the instance (least outstanding requests, :mod:`.router`) - or
hands multi-model requests to the multi-model router, which places and loads the TargetModel -
forwards the body over a keep-alive connection (:mod:`.forward`), and records the invocation
metrics (``AWS/SageMaker``: Invocations, InvocationsPerInstance, ModelLatency, OverheadLatency,
Invocation4XX/5XXErrors, InvocationModelErrors). A container that fails, times out or answers
4xx/5xx becomes AWS's ``ModelError`` (424, with OriginalStatusCode, OriginalMessage and
LogStreamArn), naming the container (a pipeline's hostname) and where its log is: AWS's log group
and stream and the local file. ``TargetContainerHostname`` picks the container of a Direct
multi-container endpoint. With no serving instance the request waits briefly for one that is starting, then
gets 503 ``ServiceUnavailable``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from catkit.local.errors import AwsError
from catkit.local.fleet import router
from catkit.local.fleet.forward import KeepAlivePool, split_url
from catkit.local.fleet.instances import Instance, InstanceState
from catkit.local.fleet.state import Endpoint, Variant
from catkit.local.validation import runtime_endpoint_not_found
from catkit.names import ENDPOINT_INSTANCE_METRICS, SAGEMAKER_METRICS

MAX_BODY = 6 * 1024 * 1024  # InvokeEndpoint Body max in the botocore model (6291456)
SERVERLESS_MAX_BODY = 4 * 1024 * 1024  # serverless request/response (serverless-endpoints-invoke.html)
SERVERLESS_TIMEOUT_REAL = 60.0  # serverless /invocations timeout, 1 minute (same page)
#: The request headers the instance gets (those given): content type, accept, custom attributes,
#: inference id, target model, target container - in :meth:`DataPlane.invoke`'s argument order.
_FORWARDED = ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Inference-Id",
              "X-Amzn-SageMaker-Target-Model", "X-Amzn-SageMaker-Target-Container-Hostname")
#: The invocation metrics (name, unit) in the order :meth:`DataPlane.record` gives their values; AWS
#: publishes the last three for real-time endpoints only (async-inference-monitor).
_METRICS = (("ModelLatency", "Microseconds"), ("Invocation4XXErrors", "None"), ("Invocation5XXErrors", "None"),
            ("InvocationModelErrors", "None"), ("Invocations", "None"), ("InvocationsPerInstance", "None"),
            ("OverheadLatency", "Microseconds"))
_ASYNC_METRICS = _METRICS[:4]
#: CloudWatch Logs group prefix of endpoint logs (the same name as the per-instance metric namespace).
LOG_GROUP_PREFIX = ENDPOINT_INSTANCE_METRICS


class ModelRouter(Protocol):
    """What the data plane needs from the multi-model router
    (:class:`catkit.local.fleet.multimodel.MultiModelManager`)."""

    async def acquire(self, ep: Endpoint, variant: Variant, target_model: str | None) -> Any:
        """A lease with ``instance``, ``url`` and ``release()``; the request is begun on the instance."""
        ...


class DataPlane:
    """InvokeEndpoint for the endpoints in ``endpoints`` (the fleet's live mapping, by lower-case
    name). ``metrics()`` returns the metric store (or None); ``resumed()`` says whether the
    persisted endpoints' instances have been relaunched (until then a request waits for capacity).
    ``multimodel`` is set by the fleet once its multi-model router exists."""

    def __init__(
        self,
        endpoints: Mapping[str, Endpoint],
        clock: Any,
        region: str,
        account_id: str,
        *,
        metrics: Callable[[], Any],
        resumed: Callable[[], bool],
        timeout: float = 60.0,
    ) -> None:
        self.endpoints = endpoints
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self.metrics = metrics
        self.resumed = resumed
        self.timeout = float(timeout)  # real seconds an instance has to answer /invocations
        self.capacity_wait_real = 20.0  # real seconds a request waits for a starting instance
        self.multimodel: ModelRouter | None = None
        self.serverless: Any = None  # catkit.local.fleet.serverless.ServerlessPool, set by the backend
        self.http = KeepAlivePool()  # the forwarder (hot path)
        self._batches: dict[tuple[Variant, bool], Any] = {}  # metric batches (MetricStore.batch) per variant
        self._batch_store: Any = None  # the store they record into

    async def invoke(
        self,
        endpoint_name: str,
        body: bytes,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        target_model: str | None = None,
        target_container: str | None = None,
        max_body: int = MAX_BODY,
        timeout: float | None = None,
        asynchronous: bool = False,
    ) -> dict[str, Any]:
        """Route one InvokeEndpoint request; returns the botocore-shaped InvokeEndpoint output.
        The asynchronous queue (:mod:`.async_inference`) passes its own limits (``max_body``,
        ``timeout`` in real seconds) and ``asynchronous`` (no Invocations/InvocationsPerInstance/
        OverheadLatency datapoints: AWS does not publish them for asynchronous endpoints)."""
        t0 = time.perf_counter()
        ep = self.endpoints.get(endpoint_name.lower())
        if ep is None or ep.status in ("Creating", "Failed", "Deleting"):
            # An endpoint that never served (or is going away) answers like an unknown one. AWS's
            # exact answer for Creating/Failed is unconfirmed in shared/aws-facts.md; easy to change.
            raise runtime_endpoint_not_found(endpoint_name, self.account_id)
        if len(body) > max_body:
            raise AwsError(
                "ValidationError",
                f"1 validation error detected: Value at 'body' failed to satisfy constraint: Member must have "
                f"length less than or equal to {max_body}",
                413,
            )
        if target_variant:
            variant = router.find_variant(ep.variants, target_variant)
            if variant is None:
                raise AwsError(
                    "ValidationError",
                    f"The variant {target_variant} was not found for endpoint {ep.name} of account "
                    f"{self.account_id}. Check the variant names with DescribeEndpoint.",
                )
        else:
            variant = router.choose_variant(ep.variants)
        assert variant is not None
        check_target_container(ep, variant, target_container, self.account_id)
        lease = None
        if variant.props.get("ServerlessConfig") and self.serverless is not None:
            # Serverless: 4 MB / 60 s limits, a warm or cold-started worker, throttling (.serverless).
            if len(body) > SERVERLESS_MAX_BODY:
                raise AwsError("ValidationError", f"Serverless endpoints accept payloads up to {SERVERLESS_MAX_BODY} "
                               f"bytes (4 MB); this one is {len(body)} bytes.", 413)
            timeout = min(self.timeout if timeout is None else timeout, SERVERLESS_TIMEOUT_REAL)
            lease = await self.serverless.acquire(ep, variant)
            inst, url = lease.instance, lease.url
        elif target_model is not None or variant.props.get("Mode") == "MultiModel":
            # Multi-model: catkit.local.fleet.multimodel routes by model, loads it, begins the request.
            assert self.multimodel is not None, "the fleet sets its multi-model router"
            lease = await self.multimodel.acquire(ep, variant, target_model)
            inst, url = lease.instance, lease.url
        else:
            inst = router.least_outstanding(variant.instances)
            if inst is None:
                variant, inst = await self.wait_for_capacity(ep, variant, bool(target_variant))
            inst.begin_request()
            url = inst.invocations_url
        headers: dict[str, str] = {}
        for name, value in zip(_FORWARDED, (content_type, accept, custom_attributes, inference_id, target_model,
                                            target_container), strict=True):
            if value:
                headers[name] = value
        headers.update(inst.auth_headers)  # the instance answers only its token (catkit.serving.auth)
        status = 0
        payload = b""
        resp_headers: Mapping[str, str] = {}
        error: str | None = None
        host, port, path = split_url(url)
        t1 = time.perf_counter()
        try:
            status, resp_headers, payload = await self.http.post(
                host, port, path, headers, body, self.timeout if timeout is None else timeout, inst.unix_socket)
        except TimeoutError:
            error = "timeout"
        except OSError as e:  # ConnectionError / ForwardProtocolError: the instance failed us
            error = f"{type(e).__name__}: {e}"
            inst.check_gone()  # a dead process takes no more requests, even before it is reaped
        except ValueError as e:  # a header value HTTP cannot carry (CR/LF/NUL, non-Latin-1)
            raise AwsError("ValidationError", f"Invalid request header: {e}.") from None
        finally:
            t2 = time.perf_counter()
            inst.end_request()
            if lease is not None:
                lease.release()
        model_us = (t2 - t1) * 1e6
        n_active = variant.current_count or 1
        self.record(variant, status, error, model_us, (time.perf_counter() - t0) * 1e6 - model_us, n_active,
                    asynchronous=asynchronous)
        if error is None and status < 400:
            out: dict[str, Any] = {"Body": payload, "InvokedProductionVariant": variant.name}
            ct = resp_headers.get("content-type")
            if ct:
                out["ContentType"] = ct
            ca = resp_headers.get("x-amzn-sagemaker-custom-attributes")
            if ca:
                out["CustomAttributes"] = ca
            return out
        raise self.model_error(ep, status, payload, error, inst=inst,
                               container=resp_headers.get("x-catkit-container"))

    def record(self, v: Variant, status: int, error: str | None, model_us: float, overhead_us: float,
               n_active: int, *, asynchronous: bool = False) -> None:
        """Record one invocation of ``v``: answered with ``status`` (or failed with ``error``),
        ``model_us``/``overhead_us`` microseconds, ``n_active`` in-service instances."""
        metrics = self.metrics()
        if metrics is None:
            return
        if metrics is not self._batch_store or len(self._batches) > 4096:  # a new store (reset), or stale variants
            self._batches, self._batch_store = {}, metrics
        batch = self._batches.get((v, asynchronous))
        if batch is None:
            batch = self._batches[(v, asynchronous)] = metrics.batch(
                SAGEMAKER_METRICS, v.dims, _ASYNC_METRICS if asynchronous else _METRICS)
        e4 = 1.0 if error is None and 400 <= status < 500 else 0.0
        e5 = 1.0 if error is None and status >= 500 else 0.0
        me = 1.0 if (error is not None or status >= 400) else 0.0
        if asynchronous:
            batch.add(self.clock.now(), (model_us, e4, e5, me))
        else:
            batch.add(self.clock.now(), (model_us, e4, e5, me, 1.0, 1.0 / n_active, max(0.0, overhead_us)))

    async def wait_for_capacity(self, ep: Endpoint, variant: Variant, pinned: bool) -> tuple[Variant, Instance]:
        """No serving instance in the chosen variant: use another variant that has one (unless the
        caller pinned TargetVariant), else wait briefly for one that is starting (restart,
        replacement), else 503 ServiceUnavailable like AWS."""
        deadline = time.monotonic() + self.capacity_wait_real
        while True:
            candidates = [variant] if pinned else [variant, *[v for v in ep.variants if v is not variant]]
            for v in candidates:
                inst = router.least_outstanding(v.instances)
                if inst is not None:
                    return v, inst
            # Capacity is on its way while instances start, or a replacement is pending.
            starting = not self.resumed() or any(
                i.state in (InstanceState.STARTING, InstanceState.PROVISIONING) for v in candidates for i in v.instances
            ) or (ep.status in ("InService", "Updating") and any(len(v.active()) < v.desired_count for v in candidates))
            if not starting or time.monotonic() > deadline or ep.status in ("Deleting", "Failed"):
                raise AwsError("ServiceUnavailable", "The service is unavailable. Try your call again.", 503)
            await asyncio.sleep(0.05)

    def model_error(self, ep: Endpoint, status: int, payload: bytes, error: str | None = None, *,
                    inst: Instance | None = None, container: str | None = None) -> AwsError:
        """AWS's ModelError (424) for a container that answered ``status`` with ``payload``, or
        failed with ``error`` ("timeout" or the connection error). AWS ends the message with a
        CloudWatch console link; locally it names the log group and stream and the instance's log
        file instead (``catkit local logs``)."""
        r, a = self.region, self.account_id
        group = f"{LOG_GROUP_PREFIX}/{ep.name}"
        if inst is not None:
            see = f"See {inst.where_logs_are()}"
        else:
            see = f"See CloudWatch log group {group} (locally: catkit local logs {ep.name}) for more information."
        log_arn = f"arn:aws:logs:{r}:{a}:log-group:{group}"
        name = container or "primary"
        if error == "timeout":
            original = (
                f"Your invocation timed out while waiting for a response from container {name}. Review the "
                "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
            )
            msg = f'Received server error (0) from {name} with message "{original}". {see}'
            code = 0
        elif error is not None:
            original = f"The connection to container {name} failed: {error}"
            msg = f'Received server error (0) from {name} with message "{original}". {see}'
            code = 0
        else:
            original = payload.decode("utf-8", errors="replace")
            kind = "client" if status < 500 else "server"
            msg = f'Received {kind} error ({status}) from {name} with message "{original}". {see}'
            code = status
        return AwsError(
            "ModelError", msg, 424,
            fields={"OriginalStatusCode": code, "OriginalMessage": original, "LogStreamArn": log_arn},
        )


def check_target_container(ep: Endpoint, variant: Variant, target: str | None, account_id: str) -> None:
    """Refuse a TargetContainerHostname the variant cannot honour, and a Direct endpoint's request
    that names none (ValidationError; ASSUMPTION: AWS's exact wording is not in the stored sources)."""
    direct = variant.props.get("ExecutionMode") == "Direct"
    if target is None and not direct:
        return  # the usual request: nothing to check
    names = [c["ContainerHostname"] for c in variant.props.get("Containers") or []]
    if target is None:
        if direct:
            raise AwsError(
                "ValidationError",
                f"Endpoint {ep.name} of account {account_id} runs its containers in Direct mode: pass "
                f"TargetContainerHostname (one of {', '.join(names)}).",
            )
        return
    if not direct:
        raise AwsError(
            "ValidationError",
            f"TargetContainerHostname is only valid for an endpoint whose model runs its containers in Direct "
            f"mode (InferenceExecutionConfig); endpoint {ep.name} of account {account_id} does not.",
        )
    if target not in names:
        raise AwsError(
            "ValidationError",
            f"Container {target} was not found for endpoint {ep.name} of account {account_id}; its containers "
            f"are {', '.join(names)}.",
        )


__all__ = ["LOG_GROUP_PREFIX", "MAX_BODY", "DataPlane", "ModelRouter", "check_target_container"]
