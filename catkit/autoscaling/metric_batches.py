"""Batched recording into the metric store: several metrics of one namespace and dimension set,
recorded together at one time (an InvokeEndpoint's seven SageMaker invocation metrics).

Placing each of an invocation's datapoints in its storage bucket under the store's lock
(:meth:`MetricStore.record_many`) cost ~5.5 us per request, the largest piece of catkit's own work on
the gateway's hot path (issue 18). A :class:`MetricBatch` (:meth:`MetricStore.batch`, made once per
namespace, dimensions and metric list) takes a row of values in O(1) instead: one append under the
lock. The rows wait in arrival order and are folded into the store by whoever takes the store's
lock next (:class:`FoldingLock`): a query, a dump, a compaction, any other recording. So every
reader sees what it would have seen had each row been recorded when it was added - the same
buckets getting the same values in the same order (sums, minima, maxima, distributions) and
compaction at the same rows - while consecutive rows of one batch in one bucket are added in one
go (:meth:`catkit.autoscaling.metrics_store._Bucket.add_values`).

One rule differs from :meth:`MetricStore.record_many`: a row's own timestamp stands for the
store's "now" when it is placed (retention tier, compaction), where ``record_many`` reads the
store's clock again. The data plane records at the clock's now, so the two are the same moment.
This module is part of the metric store (it calls the store's private placement methods).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FOLD_AT", "FoldingLock", "MetricBatch", "fold_rows"]

#: Rows that wait at most before :meth:`MetricBatch.add` folds them itself.
FOLD_AT = 128

#: One pending row: (batch, timestamp, one value per metric of the batch).
Row = tuple["MetricBatch", float, Sequence[float]]


class FoldingLock:
    """The metric store's lock: whoever takes it folds the pending batch rows into the store first
    (``fold(rows)`` runs with the lock held), so anyone holding it sees every row added before."""

    __slots__ = ("_fold", "lock", "pending")

    def __init__(self, fold: Callable[[list[Row]], None]) -> None:
        self.lock = threading.Lock()
        self.pending: list[Row] = []  # rows of every batch of the store, in arrival order
        self._fold = fold

    def __enter__(self) -> FoldingLock:
        self.lock.acquire()
        if self.pending:
            rows, self.pending = self.pending, []
            try:
                self._fold(rows)
            except BaseException:
                self.lock.release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


class MetricBatch:
    """Rows of datapoints for ``metrics`` (``(name, unit)`` pairs, standard resolution) of one
    namespace and dimension set in one store; :meth:`add` records one row."""

    __slots__ = ("_lock", "_store", "series")

    def __init__(self, store: Any, lock: FoldingLock, namespace: str, dimensions: frozenset[tuple[str, str]],
                 metrics: Sequence[tuple[str, str]]) -> None:
        self._store = store
        self._lock = lock
        #: ((namespace, name, dimensions), unit) of each metric, in the order of a row's values.
        self.series = tuple(((namespace, name, dimensions), unit) for name, unit in metrics)

    def add(self, timestamp: float, values: Sequence[float]) -> None:
        """Record ``values`` (floats, one per metric) at ``timestamp`` (emulated epoch seconds, the
        store's now): as ``record_many`` would, once anyone next reads or writes the store (or
        :data:`FOLD_AT` rows wait: folded then, so no reader pauses long and memory stays bounded)."""
        lock = self._lock
        with lock.lock:
            lock.pending.append((self, float(timestamp), values))
            self._store.changes += 1
            due = len(lock.pending) >= FOLD_AT
        if due:
            with lock:  # folds
                pass


def fold_rows(store: Any, rows: list[Row]) -> None:
    """Add ``rows`` to ``store`` (its lock held) as one ``record_many`` per row, in order, would:
    a run of consecutive rows of one batch landing in the same buckets with no compaction due
    between them is added per metric in one call."""
    run: list[Sequence[float]] = []
    current: tuple[MetricBatch, tuple[int, int] | None] | None = None
    last = 0.0

    def flush() -> None:
        if current is not None and run and current[1] is not None:
            batch, where = current
            for k, (key, unit) in enumerate(batch.series):
                store._bucket_locked(key, unit, last, *where).add_values([values[k] for values in run])
        run.clear()

    for batch, timestamp, values in rows:
        if timestamp > store._latest and timestamp >= store._next_compact:
            flush()  # placing this row compacts: the rows before it go in first
        where = store._place_locked(timestamp, 60, timestamp)
        if current is None or current[0] is not batch or current[1] != where:
            flush()
            current, last = (batch, where), timestamp
        run.append(values)
        if timestamp > last:
            last = timestamp
    flush()
