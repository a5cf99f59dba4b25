"""Endpoint metrics from CloudWatch as tidy pandas DataFrames, and a 1-second custom-metric publisher.

:func:`endpoint_metrics` reads SageMaker's 1-minute metrics (``AWS/SageMaker`` invocations and
latencies, ``/aws/sagemaker/Endpoints`` CPU/memory) with GetMetricData (paginated) and returns one
row per (timestamp, metric, stat). :func:`high_resolution_metrics` does the same for the 10-second
``ConcurrentRequestsPerModel``. :func:`publish_metric` / :class:`MetricPublisher` put
high-resolution (StorageResolution=1) custom metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from catkit._periodic import PeriodicThread
from catkit.names import DEFAULT_VARIANT, ENDPOINT_INSTANCE_METRICS, SAGEMAKER_METRICS, variant_dimensions
from catkit.session import Session

SAGEMAKER_NS = SAGEMAKER_METRICS
INSTANCE_NS = ENDPOINT_INSTANCE_METRICS
CUSTOM_NS = "catkit/Custom"
MAX_QUERIES_PER_CALL = 500
MAX_DATUMS_PER_PUT = 1000

# metric name -> (namespace, statistics)
KNOWN_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Invocations": (SAGEMAKER_NS, ("Sum",)),
    "InvocationsPerInstance": (SAGEMAKER_NS, ("Sum",)),
    "ModelLatency": (SAGEMAKER_NS, ("Average", "p50", "p90", "p99")),
    "OverheadLatency": (SAGEMAKER_NS, ("Average",)),
    "Invocation4XXErrors": (SAGEMAKER_NS, ("Sum",)),
    "Invocation5XXErrors": (SAGEMAKER_NS, ("Sum",)),
    "InvocationModelErrors": (SAGEMAKER_NS, ("Sum",)),
    "ConcurrentRequestsPerModel": (SAGEMAKER_NS, ("Average", "Maximum")),
    "ModelLoadingWaitTime": (SAGEMAKER_NS, ("Average",)),
    "ModelCacheHit": (SAGEMAKER_NS, ("Average",)),
    "CPUUtilization": (INSTANCE_NS, ("Average",)),
    "MemoryUtilization": (INSTANCE_NS, ("Average",)),
    "DiskUtilization": (INSTANCE_NS, ("Average",)),
    "LoadedModelCount": (INSTANCE_NS, ("Average",)),
}
DEFAULT_METRICS = (
    "Invocations",
    "InvocationsPerInstance",
    "ModelLatency",
    "OverheadLatency",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    "CPUUtilization",
    "MemoryUtilization",
)
HIGH_RES_METRICS = ("ConcurrentRequestsPerModel",)
COLUMNS = ["timestamp", "endpoint", "variant", "namespace", "metric", "stat", "value", "period"]

MetricSpec = str | tuple[str, str, str]  # "ModelLatency" or (namespace, metric, stat)


def _expand(metrics: Iterable[MetricSpec]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for spec in metrics:
        if isinstance(spec, str):
            if spec not in KNOWN_METRICS:
                raise ValueError(
                    f"unknown metric {spec!r}; known: {sorted(KNOWN_METRICS)}, or pass a "
                    "(namespace, metric_name, stat) tuple"
                )
            namespace, stats = KNOWN_METRICS[spec]
            out.extend((namespace, spec, stat) for stat in stats)
        else:
            namespace, name, stat = spec
            out.append((namespace, name, stat))
    return out


def metric_frame(
    session: Session,
    queries: Sequence[tuple[str, str, str]],
    dimensions: Mapping[str, str],
    *,
    start: datetime,
    end: datetime,
    period: int,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """GetMetricData for ``(namespace, metric, stat)`` queries sharing ``dimensions``; tidy frame.

    Paginates and splits into chunks of 500 queries. Columns: ``timestamp`` (UTC), ``namespace``,
    ``metric``, ``stat``, ``value``, ``period`` plus the ``extra`` constant columns.
    """
    import pandas as pd

    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    rows: list[dict[str, Any]] = []
    paginator = session.cloudwatch.get_paginator("get_metric_data")
    for offset in range(0, len(queries), MAX_QUERIES_PER_CALL):
        chunk = queries[offset : offset + MAX_QUERIES_PER_CALL]
        by_id = {f"q{offset + i}": q for i, q in enumerate(chunk)}
        request = [
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims},
                    "Period": int(period),
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for qid, (ns, name, stat) in by_id.items()
        ]
        pages = paginator.paginate(
            MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                ns, name, stat = by_id[result["Id"]]
                for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=False):
                    rows.append(
                        {"timestamp": ts, "namespace": ns, "metric": name, "stat": stat, "value": value}
                    )
    frame = pd.DataFrame(rows, columns=["timestamp", "namespace", "metric", "stat", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype(float)
    frame["period"] = int(period)
    for key, value in (extra or {}).items():
        frame[key] = value
    return frame


def check_period(period: int) -> None:
    """CloudWatch periods: 1, 5, 10, 30 (high resolution) or a multiple of 60 seconds."""
    if period in (1, 5, 10, 30) or (period >= 60 and period % 60 == 0):
        return
    raise ValueError(
        f"period={period}: CloudWatch accepts 1, 5, 10 or 30 seconds (high-resolution metrics) "
        "or a multiple of 60"
    )


def _window(session: Session, start: datetime | None, end: datetime | None, minutes: float) -> tuple:
    end = end or session.now()
    start = start or end - timedelta(minutes=minutes)
    if start >= end:
        raise ValueError(f"start ({start}) must be before end ({end})")
    return start, end


def endpoint_metrics(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    metrics: Iterable[MetricSpec] = DEFAULT_METRICS,
    start: datetime | None = None,
    end: datetime | None = None,
    minutes: float = 60,
    period: int = 60,
) -> Any:
    """Endpoint metrics as a tidy DataFrame, sorted by timestamp.

    Columns: ``timestamp`` (UTC), ``endpoint``, ``variant``, ``namespace``, ``metric``, ``stat``,
    ``value``, ``period``. ``metrics`` are names from :data:`KNOWN_METRICS` (with their usual
    statistics) or ``(namespace, name, stat)`` tuples, stats incl. percentiles like ``"p99"``.
    Window: ``start``..``end`` or the last ``minutes`` (by the session's clock). Latencies are in
    microseconds, as CloudWatch reports them.
    """
    check_period(period)
    start, end = _window(session, start, end, minutes)
    frame = metric_frame(
        session,
        _expand(metrics),
        variant_dimensions(endpoint, variant),
        start=start,
        end=end,
        period=period,
        extra={"endpoint": endpoint, "variant": variant},
    )
    return frame[COLUMNS].sort_values(["timestamp", "metric", "stat"], kind="stable").reset_index(drop=True)


def high_resolution_metrics(
    session: Session,
    endpoint: str,
    variant: str = DEFAULT_VARIANT,
    *,
    metrics: Iterable[MetricSpec] = HIGH_RES_METRICS,
    start: datetime | None = None,
    end: datetime | None = None,
    minutes: float = 15,
    period: int = 10,
) -> Any:
    """Like :func:`endpoint_metrics` at 10-second (or finer, for custom metrics) periods."""
    return endpoint_metrics(
        session, endpoint, variant, metrics=metrics, start=start, end=end, minutes=minutes, period=period
    )


def wide(frame: Any) -> Any:
    """Pivot a tidy metrics frame to one column per ``metric:stat``, indexed by timestamp."""
    if frame.empty:
        import pandas as pd

        return pd.DataFrame()
    keyed = frame.assign(column=frame["metric"] + ":" + frame["stat"])
    return keyed.pivot_table(index="timestamp", columns="column", values="value", aggfunc="last")


def publish_metric(
    session: Session,
    name: str,
    value: float,
    *,
    namespace: str = CUSTOM_NS,
    dimensions: Mapping[str, str] | None = None,
    unit: str = "Count",
    timestamp: datetime | None = None,
    storage_resolution: int = 1,
) -> None:
    """Put one custom datapoint (high resolution by default: ``StorageResolution=1``)."""
    MetricPublisher(
        session, name, namespace=namespace, dimensions=dimensions, unit=unit,
        storage_resolution=storage_resolution,
    ).put(value, timestamp=timestamp).flush()


class MetricPublisher:
    """Buffers datapoints of one custom metric and sends them with PutMetricData.

    ``put(value)`` records a datapoint stamped with the session's clock; ``flush()`` sends them
    in batches of 1000. ``start(sample, interval=1.0)`` runs a daemon thread that calls
    ``sample()`` every ``interval`` seconds and publishes it (a 1-second custom metric);
    ``stop()`` ends it and flushes. Usable as a context manager.
    """

    def __init__(
        self,
        session: Session,
        name: str,
        *,
        namespace: str = CUSTOM_NS,
        dimensions: Mapping[str, str] | None = None,
        unit: str = "Count",
        storage_resolution: int = 1,
    ) -> None:
        if storage_resolution not in (1, 60):
            raise ValueError("storage_resolution is 1 (high resolution) or 60 (standard)")
        self.session = session
        self.name = name
        self.namespace = namespace
        self.dimensions = dict(dimensions or {})
        self.unit = unit
        self.storage_resolution = storage_resolution
        self.sent = 0
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread: PeriodicThread | None = None
        self.last_error: BaseException | None = None

    def put(self, value: float, timestamp: datetime | None = None) -> MetricPublisher:
        datum = {
            "MetricName": self.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Timestamp": timestamp or self.session.now(),
            "Value": float(value),
            "Unit": self.unit,
            "StorageResolution": self.storage_resolution,
        }
        with self._lock:
            self._buffer.append(datum)
        return self

    def flush(self) -> int:
        """Send buffered datapoints; returns how many were sent."""
        with self._lock:
            pending, self._buffer = self._buffer, []
        for offset in range(0, len(pending), MAX_DATUMS_PER_PUT):
            batch = pending[offset : offset + MAX_DATUMS_PER_PUT]
            self.session.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=batch)
            self.sent += len(batch)
        return len(pending)

    def start(self, sample: Callable[[], float], interval: float = 1.0) -> MetricPublisher:
        """Publish ``sample()`` every ``interval`` seconds on a background thread."""
        if self._thread is not None:
            raise RuntimeError("publisher already started; call stop() first")

        def publish() -> None:
            try:
                self.put(sample())
                self.flush()
            except Exception as exc:  # keep sampling; surface the error on stop()
                self.last_error = exc

        self._thread = PeriodicThread(publish, interval, name=f"catkit-metric-{self.name}", immediately=True)
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop the background thread, flush, and return the total number of datapoints sent."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self.flush()
        return self.sent

    def __enter__(self) -> MetricPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
