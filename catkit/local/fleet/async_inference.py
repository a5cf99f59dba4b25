"""Asynchronous inference: InvokeEndpointAsync, a queue per endpoint, results in S3, backlog metrics.

An endpoint whose configuration has ``AsyncInferenceConfig`` takes requests through
InvokeEndpointAsync (sagemaker-runtime). :class:`AsyncInference` owns one :class:`EndpointQueue`
per such endpoint: a request is queued at once (the call answers 202 with ``InferenceId``,
``OutputLocation`` and ``FailureLocation``); a dispatcher hands queued requests to the variant's
serving instances, at most ``MaxConcurrentInvocationsPerInstance`` at a time per instance, through
the fleet's data plane (:meth:`catkit.local.fleet.invoke.DataPlane.invoke` with the asynchronous
limits); the answer is written to ``S3OutputPath`` as ``<InferenceId>.out`` and a failure to
``S3FailurePath`` as ``<InferenceId>-error.out``. With zero instances requests wait in the queue
until capacity comes back (scale to zero).

AWS behaviour followed (sources):

* payload up to 1 GB, processing up to one hour; ``InvocationTimeoutSeconds`` at most 3600, default
  15 minutes; inline ``Body`` up to 128,000 bytes instead of ``InputLocation``
  (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html ;
  https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-invoke-endpoint.html);
  ``RequestTTLSeconds`` 60..21600 (botocore's model; default 6 h = the maximum, ASSUMPTION);
* instances of an asynchronous endpoint can scale to zero; requests received meanwhile are queued
  (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html);
* metrics in ``AWS/SageMaker`` with dimension ``EndpointName`` (async-inference-monitor.md):
  ``ApproximateBacklogSize`` (queued + being processed), ``ApproximateBacklogSizePerInstance``
  (backlog / instances; not emitted at zero instances - ASSUMPTION, it would divide by zero),
  ``ApproximateAgeOfOldestRequest`` (seconds) and ``HasBacklogWithoutCapacity`` (1 when requests
  wait and no instance serves, else 0). Invocations, InvocationsPerInstance and OverheadLatency are
  not published for asynchronous endpoints (same page);
* SNS success/error notifications are RECORDED here (:attr:`AsyncInference.notifications`, and
  the log), not delivered: the local backend has no SNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from catkit.local.errors import AwsError
from catkit.local.fleet.state import Endpoint
from catkit.local.validation import runtime_endpoint_not_found
from catkit.names import SAGEMAKER_METRICS
from catkit.s3_urls import parse_s3_url

log = logging.getLogger("catkit.local.fleet.async_inference")

MAX_PAYLOAD = 1024**3  # 1 GB (async-inference.html)
MAX_INLINE_BODY = 128_000  # inline Body (async-inference-invoke-endpoint.html; botocore max 128000)
MAX_TIMEOUT_S = 3600  # InvocationTimeoutSeconds maximum (one hour)
DEFAULT_TIMEOUT_S = 15 * 60  # "by default the request times out at 15 minutes"
DEFAULT_TTL_S = 6 * 3600  # RequestTTLSeconds default: ASSUMPTION (botocore: 60..21600)
#: MaxConcurrentInvocationsPerInstance when not given: AWS "chooses an optimal value" (ASSUMPTION: 4).
DEFAULT_MAX_CONCURRENT = 4
BACKLOG_METRICS = (
    "ApproximateBacklogSize", "ApproximateBacklogSizePerInstance", "ApproximateAgeOfOldestRequest",
    "HasBacklogWithoutCapacity",
)


@dataclass
class AsyncRequest:
    """One queued InvokeEndpointAsync request."""

    inference_id: str
    received: float  # emulated time
    input_location: str | None
    body: bytes | None
    headers: dict[str, str | None]
    output_location: str
    failure_location: str | None
    timeout_s: float
    expires: float
    started: float | None = None


@dataclass
class EndpointQueue:
    """The queue of one asynchronous endpoint and what it is processing."""

    name: str
    queued: deque[AsyncRequest] = field(default_factory=deque)
    in_flight: dict[str, AsyncRequest] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return len(self.queued) + len(self.in_flight)


def async_config(ep: Endpoint) -> dict[str, Any] | None:
    """The endpoint's AsyncInferenceConfig (snapshotted from its configuration), or None."""
    return ep.doc.get("AsyncInferenceConfig")


def check_async_config(cfg: dict[str, Any]) -> None:
    """CreateEndpointConfig checks of AsyncInferenceConfig beyond botocore's model (ValidationException)."""
    out = cfg.get("OutputConfig") or {}
    for key in ("S3OutputPath", "S3FailurePath"):
        url = out.get(key)
        if url is not None:
            try:
                parse_s3_url(url)
            except ValueError as e:
                raise AwsError("ValidationException", f"AsyncInferenceConfig.OutputConfig.{key}: {e}.") from None
    if not out.get("S3OutputPath"):  # ASSUMPTION: AWS requires an output path for results
        raise AwsError("ValidationException", "AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")


def _join(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *[p.strip("/") for p in parts if p]])


class AsyncInference:
    """InvokeEndpointAsync and the queues of the fleet's asynchronous endpoints.

    ``fleet`` is the :class:`~catkit.local.fleet.endpoints.EndpointManager` (its ``endpoint_doc``,
    ``invoke`` and live endpoints); ``s3`` the backend's S3 (get/put); ``metrics`` returns the
    metric store. ``poll_real`` is how often (real seconds) a dispatcher with queued requests and
    no free capacity looks again."""

    def __init__(self, fleet: Any, endpoints: Any, s3: Callable[[], Any], metrics: Callable[[], Any],
                 clock: Any, region: str, account_id: str) -> None:
        self.fleet = fleet
        self.endpoints = endpoints  # the live mapping: lower-case name -> Endpoint
        self.s3 = s3
        self.metrics = metrics
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self.queues: dict[str, EndpointQueue] = {}
        self.notifications: list[dict[str, Any]] = []  # SNS messages recorded, not delivered
        self.poll_real = 0.05
        self._closing = False
        self._work: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the API
    async def invoke_async(self, endpoint_name: str, *, input_location: str | None = None, body: bytes | None = None,
                           content_type: str | None = None, accept: str | None = None,
                           custom_attributes: str | None = None, inference_id: str | None = None,
                           request_ttl_seconds: int | None = None, invocation_timeout_seconds: int | None = None,
                           output_path_extension: str | None = None, filename: str | None = None) -> dict[str, Any]:
        """InvokeEndpointAsync: queue the request; returns InferenceId, OutputLocation, FailureLocation."""
        ep = self.endpoints.get(endpoint_name.lower())
        if ep is None or ep.status in ("Creating", "Failed", "Deleting"):
            raise runtime_endpoint_not_found(endpoint_name, self.account_id)
        cfg = async_config(ep)
        if cfg is None:
            raise AwsError(
                "ValidationError",
                f"Endpoint {ep.name} of account {self.account_id} is not an asynchronous endpoint: create its "
                "endpoint configuration with AsyncInferenceConfig to call InvokeEndpointAsync.",
            )
        if (input_location is None) == (body is None):
            raise AwsError("ValidationError", "Specify exactly one of InputLocation and Body.")
        if body is not None and len(body) > MAX_INLINE_BODY:
            raise AwsError("ValidationError", f"Body must be at most {MAX_INLINE_BODY} bytes; use InputLocation.")
        if input_location is not None:
            try:
                bucket, key = parse_s3_url(input_location)
            except ValueError as e:
                raise AwsError("ValidationError", f"InputLocation: {e}.") from None
            head = await self.s3().head_object(bucket, key)
            if head is None:  # ASSUMPTION: AWS checks the object at call time (wording unconfirmed)
                raise AwsError("ValidationError", f"Could not find the input object at {input_location}.")
            if int(head["ContentLength"]) > MAX_PAYLOAD:
                raise AwsError("ValidationError", f"The input at {input_location} is larger than 1 GB.")
        timeout = int(invocation_timeout_seconds or DEFAULT_TIMEOUT_S)
        ttl = int(request_ttl_seconds or DEFAULT_TTL_S)
        iid = inference_id or str(uuid.uuid4())
        out = cfg["OutputConfig"]
        name = filename or iid
        output = _join(out["S3OutputPath"], output_path_extension or "", f"{name}.out")
        failure_path = out.get("S3FailurePath")
        failure = _join(failure_path, output_path_extension or "", f"{name}-error.out") if failure_path else None
        now = self.clock.now()
        req = AsyncRequest(
            iid, now, input_location, body,
            {"content_type": content_type, "accept": accept, "custom_attributes": custom_attributes},
            output, failure, float(min(timeout, MAX_TIMEOUT_S)), now + ttl,
        )
        q = self.queues.setdefault(ep.name.lower(), EndpointQueue(ep.name))
        q.queued.append(req)
        self._kick(q)
        result = {"InferenceId": iid, "OutputLocation": output}
        if failure:
            result["FailureLocation"] = failure
        return result

    # ------------------------------------------------------------------ dispatch
    def _kick(self, q: EndpointQueue) -> None:
        q.wake.set()
        if (q.task is None or q.task.done()) and not self._closing:
            q.task = asyncio.ensure_future(self._dispatch(q))

    def capacity(self, ep: Endpoint) -> tuple[int, int]:
        """(serving instances, concurrent requests they take) of ``ep``."""
        cfg = async_config(ep) or {}
        per = int((cfg.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance") or DEFAULT_MAX_CONCURRENT)
        n = sum(v.current_count for v in ep.variants)
        return n, n * per

    async def _dispatch(self, q: EndpointQueue) -> None:
        while q.queued and not self._closing:
            ep = self.endpoints.get(q.name.lower())
            if ep is None or ep.status == "Deleting":
                return
            now = self.clock.now()
            while q.queued and q.queued[0].expires <= now:  # RequestTTLSeconds passed in the queue
                req = q.queued.popleft()
                await self._fail(ep, req, "Request expired: it waited longer than RequestTTLSeconds in the queue.")
            _, slots = self.capacity(ep)
            while q.queued and len(q.in_flight) < slots:
                req = q.queued.popleft()
                req.started = now
                q.in_flight[req.inference_id] = req
                task = asyncio.ensure_future(self._process(ep, q, req))
                self._work.add(task)
                task.add_done_callback(self._work.discard)
                task.add_done_callback(lambda t, q=q: self._kick(q))
            q.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(q.wake.wait(), self.poll_real)

    async def _process(self, ep: Endpoint, q: EndpointQueue, req: AsyncRequest) -> None:
        s3 = self.s3()
        try:
            if req.body is not None:
                body = req.body
            else:
                assert req.input_location is not None
                try:
                    body = await s3.get_object(*parse_s3_url(req.input_location))
                except AwsError as e:
                    await self._fail(ep, req, f"Could not download the input from {req.input_location}: {e.message}",
                                     metric="RequestDownloadFailures")
                    return
                if not req.headers["content_type"]:
                    # ASSUMPTION: without ContentType the input object's Content-Type is used (the
                    # SageMaker SDK's AsyncPredictor sets only the object's, not the request's).
                    head = await s3.head_object(*parse_s3_url(req.input_location))
                    req.headers["content_type"] = (head or {}).get("ContentType")
            h = req.headers
            t0 = time.perf_counter()
            try:
                res = await self.fleet.invoke(
                    ep.name, body, content_type=h["content_type"], accept=h["accept"],
                    custom_attributes=h["custom_attributes"], inference_id=req.inference_id,
                    max_body=MAX_PAYLOAD, timeout=self.clock.real_seconds(req.timeout_s), asynchronous=True,
                )
            except AwsError as e:
                await self._fail(ep, req, e.message)
                return
            bucket, key = parse_s3_url(req.output_location)
            try:
                await s3.put_object(bucket, key, bytes(res["Body"]), res.get("ContentType"))
            except AwsError as e:
                await self._fail(ep, req, f"Could not upload the response: {e.message}", metric="ResponseUploadFailures")
                return
            self._record(ep, "TotalProcessingTime", (self.clock.now() - req.received) * 1000, "Milliseconds")
            self._record(ep, "TimeInBacklog", ((req.started or req.received) - req.received) * 1000, "Milliseconds")
            self._record(ep, "InvocationsProcesssed", 1.0)  # AWS's spelling (async-inference-monitor.md)
            self._notify(ep, req, "Completed", response_type=res.get("ContentType"),
                         elapsed_real=time.perf_counter() - t0)
        finally:
            q.in_flight.pop(req.inference_id, None)

    async def _fail(self, ep: Endpoint, req: AsyncRequest, message: str, metric: str | None = None) -> None:
        log.info("async inference %s on %s failed: %s", req.inference_id, ep.name, message)
        if metric:
            self._record(ep, metric, 1.0)
        if req.failure_location:
            bucket, key = parse_s3_url(req.failure_location)
            with contextlib.suppress(AwsError):
                await self.s3().put_object(bucket, key, message.encode(), "text/plain")
        self._notify(ep, req, "Failed", failure_reason=message)

    def _notify(self, ep: Endpoint, req: AsyncRequest, status: str, **extra: Any) -> None:
        """Record the SNS notification AWS would publish (not delivered: no SNS locally)."""
        topics = ((async_config(ep) or {}).get("OutputConfig") or {}).get("NotificationConfig") or {}
        topic = topics.get("SuccessTopic" if status == "Completed" else "ErrorTopic")
        if not topic:
            return
        message = {
            "awsRegion": self.region,
            "eventTime": dt.datetime.fromtimestamp(self.clock.now(), dt.UTC).isoformat(),
            "receivedTime": dt.datetime.fromtimestamp(req.received, dt.UTC).isoformat(),
            "invocationStatus": status,
            "requestParameters": {"endpointName": ep.name, "inputLocation": req.input_location},
            "responseParameters": {"sageMakerOutputLocation": req.output_location,
                                   "failureLocation": req.failure_location},
            "inferenceId": req.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
            **({"failureReason": extra["failure_reason"]} if "failure_reason" in extra else {}),
        }
        self.notifications.append({"TopicArn": topic, "Message": json.dumps(message)})
        log.info("SNS notification recorded (not delivered) to %s: %s", topic, status)

    # ------------------------------------------------------------------ metrics
    def _record(self, ep: Endpoint, name: str, value: float, unit: str = "None") -> None:
        store = self.metrics()
        if store is not None:
            store.record(SAGEMAKER_METRICS, name, {"EndpointName": ep.name}, value, self.clock.now(), unit=unit)

    def sample(self, now: float) -> None:
        """Record the backlog metrics of every asynchronous endpoint at ``now`` (the scheduler
        calls this every 10 s; the metric store keeps them at 1-minute resolution like AWS)."""
        store = self.metrics()
        if store is None:
            return
        for ep in list(self.endpoints.values()):
            if async_config(ep) is None or ep.status not in ("InService", "Updating"):
                continue
            q = self.queues.get(ep.name.lower())
            backlog = q.backlog if q else 0
            n, _ = self.capacity(ep)
            dims = {"EndpointName": ep.name}
            store.record(SAGEMAKER_METRICS, "ApproximateBacklogSize", dims, float(backlog), now)
            if n:
                store.record(SAGEMAKER_METRICS, "ApproximateBacklogSizePerInstance", dims, backlog / n, now)
            store.record(SAGEMAKER_METRICS, "HasBacklogWithoutCapacity", dims, 1.0 if backlog and not n else 0.0, now)
            oldest = min((r.received for r in [*(q.queued if q else ()), *(q.in_flight.values() if q else ())]),
                         default=None)
            store.record(SAGEMAKER_METRICS, "ApproximateAgeOfOldestRequest", dims,
                         0.0 if oldest is None else now - oldest, now, unit="Seconds")

    def backlog(self, endpoint_name: str) -> int:
        """Requests queued or being processed for ``endpoint_name``."""
        q = self.queues.get(endpoint_name.lower())
        return q.backlog if q else 0

    def forget(self, endpoint_name: str) -> None:
        """The endpoint is gone: drop its queue (queued requests are lost, as on AWS)."""
        q = self.queues.pop(endpoint_name.lower(), None)
        if q is not None and q.task is not None:
            q.task.cancel()

    async def shutdown(self) -> None:
        """Stop the dispatchers and requests in progress. Queued requests are not persisted across
        a restart of the local backend (a limitation, said in docs/contracts.md)."""
        self._closing = True
        tasks = [*(q.task for q in self.queues.values() if q.task is not None), *self._work]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t


__all__ = [
    "BACKLOG_METRICS",
    "DEFAULT_MAX_CONCURRENT",
    "MAX_INLINE_BODY",
    "MAX_PAYLOAD",
    "MAX_TIMEOUT_S",
    "AsyncInference",
    "AsyncRequest",
    "EndpointQueue",
    "async_config",
    "check_async_config",
]
