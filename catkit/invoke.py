"""Invoking endpoints: serializers, timed InvokeEndpoint, parsed predictions, batch invoke.

:func:`invoke` serializes the payload (image bytes, JSON, NumPy, CSV, raw), calls the runtime's
InvokeEndpoint, measures client-side latency and parses the response by its Content-Type into a
:class:`Prediction`. :func:`invoke_batch` runs many invocations on a thread pool.
:func:`invoke_async` calls InvokeEndpointAsync and waits for the answer in S3 (an :class:`AsyncResult`).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catkit.session import Session

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # real-time InvokeEndpoint limit

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


@dataclass
class Prediction:
    """One InvokeEndpoint result.

    ``value`` is the parsed body (JSON -> Python, ``application/x-npy`` -> ndarray, CSV -> list of
    rows, text -> str, else bytes); ``latency_ms`` is measured around the call on the client;
    ``variant`` is ``x-Amzn-Invoked-Production-Variant``; ``raw`` the response body bytes.
    """

    value: Any
    latency_ms: float
    variant: str | None
    raw: bytes
    content_type: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# -- serializers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Serializer:
    """Turns a payload into ``(body_bytes, content_type)``."""

    content_type: str
    encode: Callable[[Any], bytes] = field(repr=False)

    def __call__(self, data: Any) -> tuple[bytes, str]:
        return self.encode(data), self.content_type


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _json_encode(data: Any) -> bytes:
    return json.dumps(data, default=_json_default).encode()


def _npy_encode(data: Any) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(data), allow_pickle=False)
    return buf.getvalue()


def _csv_encode(data: Any) -> bytes:
    import numpy as np

    rows = np.atleast_2d(np.asarray(data)).tolist()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def _image_bytes(data: Any) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str | Path):
        return Path(data).read_bytes()
    if hasattr(data, "save"):  # PIL.Image
        buf = io.BytesIO()
        data.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"cannot turn {type(data).__name__} into image bytes; pass bytes, a path or a PIL image")


def image_content_type(body: bytes) -> str | None:
    """``image/png``, ``image/jpeg``... from the magic bytes, or None."""
    for magic, ctype in _IMAGE_MAGIC:
        if body.startswith(magic):
            return ctype
    return None


class ImageSerializer:
    """Image bytes / file path / PIL image -> body with ``image/png|jpeg|...`` (detected)."""

    def __init__(self, content_type: str | None = None) -> None:
        self.content_type = content_type

    def __call__(self, data: Any) -> tuple[bytes, str]:
        body = _image_bytes(data)
        ctype = self.content_type or image_content_type(body)
        if ctype is None:
            raise ValueError("unrecognised image format; pass ImageSerializer(content_type='image/...')")
        return body, ctype


JSONSerializer = Serializer("application/json", _json_encode)
NumpySerializer = Serializer("application/x-npy", _npy_encode)
CSVSerializer = Serializer("text/csv", _csv_encode)
RawSerializer = Serializer("application/octet-stream", lambda b: bytes(b))

SERIALIZERS: dict[str, Any] = {
    "json": JSONSerializer,
    "npy": NumpySerializer,
    "numpy": NumpySerializer,
    "csv": CSVSerializer,
    "image": ImageSerializer(),
    "raw": RawSerializer,
}


def serialize(data: Any, serializer: Any = None) -> tuple[bytes, str]:
    """Encode ``data``: explicit serializer (object or name in :data:`SERIALIZERS`), else guessed.

    Guessing: image bytes/PIL image -> image; other bytes -> octet-stream; NumPy array -> npy;
    str -> text/plain; anything else -> JSON.
    """
    if isinstance(serializer, str):
        try:
            serializer = SERIALIZERS[serializer]
        except KeyError:
            raise ValueError(f"unknown serializer {serializer!r}; choose from {sorted(SERIALIZERS)}") from None
    if serializer is not None:
        return serializer(data)
    if isinstance(data, bytes | bytearray | memoryview):
        body = bytes(data)
        return body, image_content_type(body) or "application/octet-stream"
    if hasattr(data, "save") and hasattr(data, "mode"):
        return ImageSerializer()(data)
    if type(data).__module__ == "numpy" and hasattr(data, "dtype"):
        return NumpySerializer(data)
    if isinstance(data, str):
        return data.encode(), "text/plain"
    return JSONSerializer(data)


def deserialize(body: bytes, content_type: str | None) -> Any:
    """Parse a response body by Content-Type (JSON, npy, CSV, text; else bytes)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("application/json", "application/jsonlines") or ctype.endswith("+json"):
        if ctype == "application/jsonlines":
            return [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        return json.loads(body) if body else None
    if ctype == "application/x-npy":
        import numpy as np

        return np.load(io.BytesIO(body), allow_pickle=False)
    if ctype == "text/csv":
        return list(csv.reader(io.StringIO(body.decode())))
    if ctype.startswith("text/"):
        return body.decode()
    return body


# -- invoke ------------------------------------------------------------------------------------
def invoke(
    session: Session,
    endpoint: str,
    data: Any,
    *,
    serializer: Any = None,
    accept: str = "application/json",
    target_model: str | None = None,
    target_variant: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
) -> Prediction:
    """Invoke ``endpoint`` with ``data``; return the parsed :class:`Prediction` and its latency.

    ``target_model`` selects a model on a multi-model endpoint (path relative to its S3 prefix,
    e.g. ``"cat-v2.tar.gz"``). Errors are boto3's ``ClientError`` (e.g. ``ModelError`` with the
    container's status and message, ``ValidationError`` for an unknown endpoint).
    """
    body, content_type = serialize(data, serializer)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"payload is {len(body)} bytes; real-time endpoints accept at most {MAX_PAYLOAD_BYTES} "
            "(6 MB). Resize/compress the input or use asynchronous inference."
        )
    optional = {
        "TargetModel": target_model,
        "TargetVariant": target_variant,
        "CustomAttributes": custom_attributes,
        "InferenceId": inference_id,
    }
    kwargs: dict[str, Any] = {
        "EndpointName": endpoint,
        "Body": body,
        "ContentType": content_type,
        "Accept": accept,
        **{key: value for key, value in optional.items() if value},
    }
    start = time.perf_counter()
    response = session.runtime.invoke_endpoint(**kwargs)
    raw = response["Body"].read()
    latency_ms = (time.perf_counter() - start) * 1000.0
    ctype = response.get("ContentType")
    return Prediction(
        value=deserialize(raw, ctype),
        latency_ms=latency_ms,
        variant=response.get("InvokedProductionVariant"),
        raw=raw,
        content_type=ctype,
        custom_attributes=response.get("CustomAttributes"),
        target_model=target_model,
    )


@dataclass
class AsyncResult:
    """One InvokeEndpointAsync request: where its answer goes and, once waited for, the answer.

    ``status`` is ``"InProgress"``, ``"Completed"`` (``value``/``raw`` hold the output object) or
    ``"Failed"`` (``error`` holds the failure object's text); ``latency_s`` is the client-side
    time from the call to the object's appearance."""

    inference_id: str
    output_location: str
    failure_location: str | None
    status: str = "InProgress"
    value: Any = None
    raw: bytes | None = None
    content_type: str | None = None
    error: str | None = None
    latency_s: float | None = None
    started: float = field(default_factory=time.perf_counter, repr=False)


def invoke_async(
    session: Session,
    endpoint: str,
    data: Any = None,
    *,
    input_location: str | None = None,
    serializer: Any = None,
    accept: str = "application/json",
    inference_id: str | None = None,
    invocation_timeout: int | None = None,
    wait: bool = True,
    timeout: float = 3600.0,
    poll: float = 0.5,
    progress: bool = True,
) -> AsyncResult:
    """InvokeEndpointAsync: upload ``data`` to the session bucket (or use ``input_location``),
    queue the request, and (``wait``) wait for its output - or failure - object in S3
    (:func:`wait_for_async_result`). Asynchronous endpoints take payloads up to 1 GB and process
    up to one hour (``invocation_timeout`` seconds, at most 3600;
    https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html)."""
    from catkit.endpoint_kinds import ASYNC_MAX_PAYLOAD

    content_type = None
    if input_location is None:
        body, content_type = serialize(data, serializer)
        if len(body) > ASYNC_MAX_PAYLOAD:
            raise ValueError(f"payload is {len(body)} bytes; asynchronous endpoints accept at most 1 GB")
        key = f"catkit-async-input/{endpoint}/{time.time_ns()}"
        session.s3.put_object(Bucket=session.bucket, Key=key, Body=body, ContentType=content_type)
        input_location = f"s3://{session.bucket}/{key}"
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "InputLocation": input_location, "Accept": accept}
    if content_type:
        kwargs["ContentType"] = content_type
    if inference_id:
        kwargs["InferenceId"] = inference_id
    if invocation_timeout:
        kwargs["InvocationTimeoutSeconds"] = int(invocation_timeout)
    response = session.runtime.invoke_endpoint_async(**kwargs)
    result = AsyncResult(response["InferenceId"], response["OutputLocation"], response.get("FailureLocation"))
    return wait_for_async_result(session, result, timeout=timeout, poll=poll, progress=progress) if wait else result


def _read_s3(session: Session, url: str) -> tuple[bytes, str | None] | None:
    from botocore.exceptions import ClientError

    from catkit.s3_urls import parse_s3_url

    bucket, key = parse_s3_url(url)
    try:
        obj = session.s3.get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return obj["Body"].read(), obj.get("ContentType")


def wait_for_async_result(session: Session, result: AsyncResult, *, timeout: float = 3600.0, poll: float = 0.5,
                          progress: bool = True) -> AsyncResult:
    """Poll S3 for ``result``'s output object (or failure object) until one appears or ``timeout``
    real seconds pass (TimeoutError); a status bar shows the waiting time. Fills ``result``."""
    from catkit.progress import StatusBar

    deadline = time.monotonic() + timeout
    with StatusBar(f"async {result.inference_id[:8]}", enabled=progress) as bar:
        while True:
            got = _read_s3(session, result.output_location)
            if got is not None:
                result.raw, result.content_type = got
                result.value = deserialize(got[0], got[1])
                result.status = "Completed"
                result.latency_s = time.perf_counter() - result.started
                bar.done(f"Completed in {result.latency_s:.1f} s")
                return result
            failed = _read_s3(session, result.failure_location) if result.failure_location else None
            if failed is not None:
                result.error = failed[0].decode("utf-8", "replace")
                result.status = "Failed"
                result.latency_s = time.perf_counter() - result.started
                bar.fail(f"Failed: {result.error[:80]}")
                return result
            if time.monotonic() > deadline:
                bar.fail("timed out")
                raise TimeoutError(f"no output at {result.output_location} after {timeout:.0f} s")
            bar.show(f"queued/processing, {time.perf_counter() - result.started:.0f} s")
            time.sleep(poll)


def invoke_batch(
    session: Session,
    endpoint: str,
    items: Iterable[Any],
    *,
    max_workers: int = 4,
    raise_errors: bool = False,
    progress: bool = True,
    **invoke_kwargs: Any,
) -> list[Prediction]:
    """Invoke once per item on ``max_workers`` threads; results keep the input order.

    A failed call becomes a :class:`Prediction` with ``error`` set (``value`` None) unless
    ``raise_errors=True``. ``invoke_kwargs`` go to :func:`invoke` (serializer, accept, target_model...).
    """
    from tqdm.auto import tqdm

    payloads: Sequence[Any] = list(items)

    def one(data: Any) -> Prediction:
        start = time.perf_counter()
        try:
            return invoke(session, endpoint, data, **invoke_kwargs)
        except Exception as exc:
            if raise_errors:
                raise
            return Prediction(
                value=None,
                latency_ms=(time.perf_counter() - start) * 1000.0,
                variant=None,
                raw=b"",
                target_model=invoke_kwargs.get("target_model"),
                error=f"{type(exc).__name__}: {exc}",
            )

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        results = list(
            tqdm(pool.map(one, payloads), total=len(payloads), desc=endpoint, disable=not progress)
        )
    return results


def predictions_frame(predictions: Sequence[Prediction]) -> Any:
    """A pandas DataFrame (one row per prediction): value, latency_ms, variant, target_model, error."""
    import pandas as pd

    return pd.DataFrame(
        {
            "value": [p.value for p in predictions],
            "latency_ms": [p.latency_ms for p in predictions],
            "variant": [p.variant for p in predictions],
            "target_model": [p.target_model for p in predictions],
            "error": [p.error for p in predictions],
        }
    )
