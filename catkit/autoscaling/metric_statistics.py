"""CloudWatch statistics over a bucket's values: the value distribution and extended statistics.

Owns the maths the metric store (:mod:`catkit.autoscaling.metrics_store`) uses beyond
SampleCount, Sum, Minimum, Maximum and Average:

- :class:`Distribution` - weighted values, exact while few (up to 32), then a mergeable
  log-bucketed histogram (DDSketch-like) with 1 % relative accuracy; nearest-rank quantiles clamped
  to the exact minimum and maximum.
- Extended statistics: :func:`parse_extended_statistic` reads CloudWatch's names (``p99``,
  ``p99.9``, ``tm90``, ``tm(10%:90%)``, ``wm``, ``tc``, ``ts``, ``TM(a:b)``, ``PR(a:b)``, ``IQM``);
  :func:`extended_value` computes one over a distribution.

Pure: no I/O, no clock, no locks (the store holds its own).
"""

from __future__ import annotations

import math
import re
from array import array

__all__ = [
    "STANDARD_STATISTICS",
    "Distribution",
    "ExtendedStatistic",
    "extended_value",
    "is_extended_statistic",
    "is_percentile_statistic",
    "parse_extended_statistic",
]

#: The statistics a datapoint aggregate answers without a value distribution.
STANDARD_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
#: A parsed extended statistic: ``(kind, low, high, absolute)``, see :func:`parse_extended_statistic`.
ExtendedStatistic = tuple[str, float | None, float | None, bool]

_PCT = r"(?:\d{1,2}(?:\.\d{1,10})?|100(?:\.0{1,10})?)"
_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_PERCENTILE_RE = re.compile(rf"^p({_PCT})$")
_SHORT_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts)({_PCT})$", re.IGNORECASE)
_PERCENT_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts)\(({_PCT})?%:({_PCT})?%\)$", re.IGNORECASE)
_ABSOLUTE_RANGE_RE = re.compile(rf"^(tm|wm|tc|ts|pr)\(({_NUM})?:({_NUM})?\)$", re.IGNORECASE)
_RAW_LIMIT = 32  # exact values kept per bucket before switching to the histogram
_ALPHA = 0.01  # relative accuracy of the histogram
_GAMMA = (1 + _ALPHA) / (1 - _ALPHA)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_MAX_BINS = 2048  # per sign: a value range of 1.02**2048 (~1e17) at full accuracy
_BIN_SLACK = 8


def is_percentile_statistic(stat: str) -> bool:
    """True for CloudWatch percentile statistics ``pNN`` / ``pNN.NN`` (``p0`` .. ``p100``)."""
    return bool(_PERCENTILE_RE.match(stat))


def parse_extended_statistic(stat: str) -> ExtendedStatistic | None:
    """Parse a CloudWatch extended statistic into ``(kind, low, high, absolute)``, None if invalid.

    Kinds: ``p`` (percentile, ``high`` = NN), ``tm`` trimmed mean, ``wm`` winsorized mean,
    ``tc`` trimmed count, ``ts`` trimmed sum (``tm90`` = ``tm(0%:90%)``, ``tm(10%:90%)``, or
    absolute bounds ``TM(150:1000)``), ``pr`` percent rank ``PR(:300)`` and ``IQM`` (``tm(25%:75%)``).
    Percent bounds are in percent; absolute bounds select ``low < value <= high``.
    """
    if stat == "IQM":
        return ("tm", 25.0, 75.0, False)
    m = _PERCENTILE_RE.match(stat)
    if m:
        return ("p", None, float(m.group(1)), False)
    m = _SHORT_RANGE_RE.match(stat)
    if m:
        return (m.group(1).lower(), 0.0, float(m.group(2)), False)
    m = _PERCENT_RANGE_RE.match(stat)
    if m:
        lo = float(m.group(2)) if m.group(2) else 0.0
        hi = float(m.group(3)) if m.group(3) else 100.0
        return (m.group(1).lower(), lo, hi, False) if lo < hi else None
    m = _ABSOLUTE_RANGE_RE.match(stat)
    if m and (m.group(2) or m.group(3)):
        lo = float(m.group(2)) if m.group(2) else None
        hi = float(m.group(3)) if m.group(3) else None
        if lo is not None and hi is not None and not lo < hi:
            return None
        return (m.group(1).lower(), lo, hi, True)
    return None


def is_extended_statistic(stat: str) -> bool:
    """True for any extended statistic :func:`parse_extended_statistic` understands."""
    return parse_extended_statistic(stat) is not None


class _Bins:
    """Dense log-histogram counts of one sign: ``counts[i]`` belongs to bin ``offset + i``.

    A contiguous ``array('d')`` costs 8 bytes per bin (a dict ~70); when the range of bins would
    exceed ``_MAX_BINS`` the lowest bins are collapsed, so upper percentiles stay accurate.
    """

    __slots__ = ("counts", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.counts = array("d")

    def add(self, key: int, weight: float) -> None:
        i = key - self.offset
        counts = self.counts
        if 0 <= i < len(counts):
            counts[i] += weight
        else:
            self._grow_and_add(key, weight)

    def _grow_and_add(self, key: int, weight: float) -> None:
        old, offset = self.counts, self.offset
        if not old:
            lo, hi = key - _BIN_SLACK, key + _BIN_SLACK
        else:
            lo = min(offset, key - _BIN_SLACK) if key < offset else offset
            hi = (
                max(offset + len(old) - 1, key + _BIN_SLACK)
                if key >= offset + len(old)
                else offset + len(old) - 1
            )
        lo = max(lo, hi - _MAX_BINS + 1)
        new = array("d", bytes(8 * (hi - lo + 1)))
        for j, c in enumerate(old):
            if c:
                new[max(offset + j, lo) - lo] += c
        new[max(key, lo) - lo] += weight
        self.offset, self.counts = lo, new

    def merge(self, other: _Bins) -> None:
        for j, c in enumerate(other.counts):
            if c:
                self.add(other.offset + j, c)

    def items(self) -> list[tuple[int, float]]:
        """Non-empty ``(bin, count)`` in ascending bin order."""
        offset = self.offset
        return [(offset + j, c) for j, c in enumerate(self.counts) if c]

    def total(self) -> float:
        return math.fsum(self.counts)


class Distribution:
    """Weighted values: exact while small, then a log-bucketed histogram (DDSketch-like)."""

    __slots__ = ("neg", "pos", "raw_values", "raw_weights", "zero")

    def __init__(self) -> None:
        self.raw_values: array | None = array("d")
        self.raw_weights: array | None = None  # None: every raw value has weight 1
        self.pos: _Bins | None = None
        self.neg: _Bins | None = None
        self.zero = 0.0

    def add(self, value: float, count: float = 1.0) -> None:
        raw = self.raw_values
        if raw is not None:
            if count != 1.0 and self.raw_weights is None:
                self.raw_weights = array("d", [1.0]) * len(raw)
            raw.append(value)
            if self.raw_weights is not None:
                self.raw_weights.append(count)
            if len(raw) > _RAW_LIMIT:
                self._to_histogram()
            return
        self._bin(value, count)

    def add_values(self, values: list[float]) -> None:
        """``add(value)`` for each of ``values`` (weight 1), in order."""
        raw = self.raw_values
        if raw is not None:
            if self.raw_weights is not None:
                for value in values:
                    self.add(value)
                return
            raw.extend(values)
            if len(raw) > _RAW_LIMIT:
                self._to_histogram()
            return
        pos, neg, zero = self.pos, self.neg, self.zero  # _bin(value, 1.0) of each, inlined
        for value in values:
            if value > 0.0:
                pos.add(math.ceil(math.log(value) * _INV_LOG_GAMMA), 1.0)  # type: ignore[union-attr]
            elif value < 0.0:
                neg.add(math.ceil(math.log(-value) * _INV_LOG_GAMMA), 1.0)  # type: ignore[union-attr]
            else:
                zero += 1.0
        self.zero = zero

    def _bin(self, value: float, count: float) -> None:
        if value > 0.0:
            self.pos.add(math.ceil(math.log(value) * _INV_LOG_GAMMA), count)  # type: ignore[union-attr]
        elif value < 0.0:
            self.neg.add(math.ceil(math.log(-value) * _INV_LOG_GAMMA), count)  # type: ignore[union-attr]
        else:
            self.zero += count

    def _raw_pairs(self) -> list[tuple[float, float]]:
        values = self.raw_values or array("d")
        weights = self.raw_weights if self.raw_weights is not None else [1.0] * len(values)
        return list(zip(values, weights, strict=True))

    def _to_histogram(self) -> None:
        pairs = self._raw_pairs()
        self.raw_values = self.raw_weights = None
        self.pos, self.neg = _Bins(), _Bins()
        for v, c in pairs:
            self._bin(v, c)

    def merge(self, other: Distribution) -> None:
        if other.raw_values is not None:
            for v, c in other._raw_pairs():
                self.add(v, c)
            return
        if self.raw_values is not None:
            self._to_histogram()
        self.pos.merge(other.pos)  # type: ignore[union-attr,arg-type]
        self.neg.merge(other.neg)  # type: ignore[union-attr,arg-type]
        self.zero += other.zero

    def pairs(self, minimum: float, maximum: float) -> list[tuple[float, float]]:
        """``(value, weight)`` ascending; histogram bins stand for their representative value."""
        if self.raw_values is not None:
            return sorted(self._raw_pairs())
        out = [(-_representative(k), c) for k, c in reversed(self.neg.items())]  # type: ignore[union-attr]
        if self.zero:
            out.append((0.0, self.zero))
        out.extend((_representative(k), c) for k, c in self.pos.items())  # type: ignore[union-attr]
        return [(min(max(v, minimum), maximum), w) for v, w in out]

    def quantile(self, q: float, minimum: float, maximum: float) -> float:
        """Nearest-rank quantile (``q`` in [0, 1]), clamped to the exact [minimum, maximum]."""
        if q <= 0.0:
            return minimum
        if q >= 1.0:
            return maximum
        pairs = self.pairs(minimum, maximum)
        rank = q * math.fsum(w for _, w in pairs)
        acc = 0.0
        for v, w in pairs:
            acc += w
            if acc >= rank - 1e-9:
                return v
        return maximum


def _representative(key: int) -> float:
    """The value a histogram bin stands for: within ``_ALPHA`` of every value in the bin."""
    return 2.0 * _GAMMA**key / (_GAMMA + 1.0)


def extended_value(
    spec: ExtendedStatistic, dist: Distribution, minimum: float, maximum: float
) -> float | None:
    """One extended statistic over a period's distribution whose exact extremes are ``minimum`` and
    ``maximum``; None when no value qualifies."""
    kind, lo, hi, absolute = spec
    if kind == "p":
        return dist.quantile((hi or 0.0) / 100.0, minimum, maximum)
    pairs = dist.pairs(minimum, maximum)
    total = sum(w for _, w in pairs)
    if total <= 0:
        return None
    if absolute:
        inside = [(v, w) for v, w in pairs if (lo is None or v > lo) and (hi is None or v <= hi)]
        weight = sum(w for _, w in inside)
        weighted = sum(v * w for v, w in inside)
        if kind == "pr":
            return 100.0 * weight / total
        if kind == "wm":
            low = minimum if lo is None else lo
            high = maximum if hi is None else hi
            return sum(min(max(v, low), high) * w for v, w in pairs) / total
    else:
        lo_rank, hi_rank = (lo or 0.0) / 100.0 * total, (hi if hi is not None else 100.0) / 100.0 * total
        weight = weighted = 0.0
        acc = 0.0
        for v, w in pairs:
            overlap = min(acc + w, hi_rank) - max(acc, lo_rank)
            if overlap > 0:
                weight += overlap
                weighted += v * overlap
            acc += w
        if kind == "wm":
            v_lo = dist.quantile((lo or 0.0) / 100.0, minimum, maximum)
            v_hi = dist.quantile((hi if hi is not None else 100.0) / 100.0, minimum, maximum)
            return (weighted + lo_rank * v_lo + (total - hi_rank) * v_hi) / total
    if kind == "tc":
        return weight
    if kind == "ts":
        return weighted if weight > 0 else None
    return weighted / weight if weight > 0 else None
