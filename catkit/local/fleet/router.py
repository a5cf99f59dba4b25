"""Request routing for InvokeEndpoint: weighted choice of a production variant, then the
least-outstanding-requests instance of that variant.

Pure and synchronous (no I/O): callers pass anything with the small attributes below, so the
rules are unit-tested with plain objects. SageMaker's default routing for real-time endpoints is
random across instances; its ``RoutingConfig`` option LEAST_OUTSTANDING_REQUESTS is what catkit
does for every variant, since it is what a user would expect from a local emulator (written down
here so it is easy to change).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar


class RoutableInstance(Protocol):
    outstanding: int

    @property
    def routable(self) -> bool: ...


class RoutableVariant(Protocol):
    name: str
    current_weight: float


InstT = TypeVar("InstT", bound=RoutableInstance)
V = TypeVar("V", bound=RoutableVariant)


def choose_variant(variants: Sequence[V], rng: random.Random | None = None) -> V | None:
    """Pick a variant with probability proportional to its current weight.

    All-zero weights (AWS allows DesiredWeight 0 on every variant) fall back to a uniform choice so
    traffic is not silently dropped. Returns None for an empty list.
    """
    if not variants:
        return None
    if len(variants) == 1:
        return variants[0]
    r = rng or random
    total = 0.0
    for v in variants:
        total += max(0.0, v.current_weight)
    if total <= 0:
        return variants[int(r.random() * len(variants)) % len(variants)]
    point = r.random() * total
    acc = 0.0
    for v in variants:
        acc += max(0.0, v.current_weight)
        if point < acc:
            return v
    return variants[-1]


def find_variant(variants: Sequence[V], name: str) -> V | None:
    """The variant named ``name`` (TargetVariant), case-sensitive like AWS."""
    for v in variants:
        if v.name == name:
            return v
    return None


def least_outstanding(instances: Sequence[InstT], rng: random.Random | None = None) -> InstT | None:
    """The routable instance with the fewest in-flight requests; ties broken at random so load
    spreads evenly at concurrency 1. None when no instance is routable."""
    best: list[InstT] = []
    low = None
    for inst in instances:
        if not inst.routable:
            continue
        n = inst.outstanding
        if low is None or n < low:
            low = n
            best = [inst]
        elif n == low:
            best.append(inst)
    if not best:
        return None
    if len(best) == 1:
        return best[0]
    return best[int((rng or random).random() * len(best)) % len(best)]
