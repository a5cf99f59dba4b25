"""The expected peak of an M/M/c queue's in-flight count over a sampling window.

The local backend records ``ConcurrentRequestsPerModel`` per instance as the peak in-flight count
(queued requests included) since the previous 10-second sample (:mod:`catkit.local.fleet.sampling`);
the simulator reads its :class:`~catkit.whatif.calibrate.ServiceModel` (an M/M/c queue) the same
way, so this module computes ``E[max_{0<=t<=T} N(t)]`` for the queue's in-flight count ``N``
started in its stationary distribution (what a window that restarts at the current count sees).

Method (exact up to the numerical inversion, ~1e-8): ``N`` is a birth-death process (births
``λ`` below the cap ``workers + max_rps * timeout``, deaths ``min(n, c) μ``), skip-free upwards, so
the time to climb from ``i`` to ``k`` is a sum of independent one-level passage times whose
Laplace transforms follow ``φ_j(s) = λ / (λ + d_j + s - d_j φ_{j-1}(s))``. Then
``P(max >= k) = P(N(0) >= k) + L^{-1}[Σ_{i<k} π_i Π_{j=i}^{k-1} φ_j(s) / s](T)`` (the sum by a
recursion over ``k``), inverted with the Abate-Whitt Euler algorithm, and
``E[max] = Σ_{k>=1} P(max >= k)``. All of it vectorised over a load grid: milliseconds per model.

Loads up to ``RHO_EXACT`` of saturation are computed on a grid and interpolated (above it,
:meth:`~catkit.whatif.calibrate.ServiceModel.peak_concurrency` scales the mean). Queues too large
for the grid fall back to :func:`poisson_peak`, the earlier approximation (``N`` Poisson,
``1 + T / mean latency`` independent looks).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["RHO_EXACT", "expected_window_peak", "peak_table", "poisson_peak"]

#: Loads (fractions of max_rps) up to which the peak is computed exactly.
RHO_EXACT = 0.98
#: States of the queue the exact computation handles at most (beyond: the approximation).
MAX_STATES = 6000
_EULER_A, _EULER_N, _EULER_M = 18.4, 15, 11  # discretisation error ~ e^-A; N + M + 1 nodes
_GRID = np.unique(np.concatenate((np.geomspace(1e-5, 0.05, 48), np.linspace(0.05, RHO_EXACT, 200))))


def _euler(t: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the Abate-Whitt Euler inversion at ``t``: f(t) ≈ Σ w Re F(s)."""
    k = np.arange(_EULER_N + _EULER_M + 1)
    nodes = (_EULER_A + 2j * np.pi * k) / (2 * t)
    binom = np.array([math.comb(_EULER_M, j) for j in range(_EULER_M + 1)]) / 2.0**_EULER_M
    coef = np.ones(len(k))
    coef[_EULER_N + 1 :] = np.cumsum(binom[::-1])[::-1][1:]  # Euler summation of the tail
    weights = math.exp(_EULER_A / 2) / t * coef * (-1.0) ** k
    weights[0] /= 2
    return nodes, weights


def expected_window_peak(lam: np.ndarray, mu: float, workers: int, cap: int, window_s: float) -> np.ndarray | None:
    """``E[max N]`` over ``window_s`` for each load in ``lam`` (requests/s, all below
    ``workers * mu``), the queue holding at most ``cap`` requests; None when the queue needs more
    than :data:`MAX_STATES` states."""
    lam = np.asarray(lam, dtype=np.float64)
    rho = float(lam.max(initial=0.0)) / (workers * mu)
    a = float(lam.max(initial=0.0)) / mu
    tail = -32.0 / math.log(rho) if 0 < rho < 1 else 0.0  # the queue's geometric tail to ~1e-14
    states = min(int(cap), int(workers + a + 12 * math.sqrt(a + 1) + tail) + 64)
    if states > MAX_STATES:
        return None
    n = np.arange(states + 1)
    deaths = np.minimum(n, workers) * mu
    with np.errstate(divide="ignore"):
        step = np.log(np.maximum(lam, 1e-300))[:, None] - np.log(np.maximum(deaths[1:], 1e-300))[None, :]
    logpi = np.concatenate((np.zeros((len(lam), 1)), np.cumsum(step, axis=1)), axis=1)
    pi = np.exp(logpi - logpi.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    above = np.cumsum(pi[:, ::-1], axis=1)[:, ::-1]  # above[:, k] = P(N >= k)
    nodes, weights = _euler(window_s)
    out = np.zeros(len(lam))
    rows = np.arange(len(lam))  # loads still adding terms (converged ones are dropped)
    births = lam[:, None]
    phi = np.zeros((len(lam), len(nodes)), dtype=np.complex128)
    climb = np.zeros_like(phi)  # Σ_{i<k} π_i Π φ: transform of reaching k from below
    for k in range(1, states + 1):
        d = deaths[k - 1]
        phi = births / (births + d + nodes[None, :] - d * phi)
        climb = (climb + pi[:, k - 1 : k]) * phi
        p = np.clip(above[:, k] + (climb / nodes[None, :]).real @ weights, 0.0, 1.0)
        out[rows] += p
        if k > workers and k % 32 == 0:
            keep = p >= 1e-12
            if not keep.any():
                break
            if not keep.all():
                rows, births, phi, climb, pi, above = rows[keep], births[keep], phi[keep], climb[keep], pi[keep], above[keep]
    out[lam <= 0] = 0.0
    return out


def poisson_peak(mean: np.ndarray, lam: np.ndarray, window_s: float) -> np.ndarray:
    """The approximation: ``N`` Poisson with ``mean``, looked at ``1 + window_s / (mean / lam)``
    independent times; ``E[max] = Σ_k 1 - F(k)^m``, never below the mean."""
    flat = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    lam1 = np.atleast_1d(np.asarray(lam, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        sojourn_s = np.where(lam1 > 0, flat / np.maximum(lam1, 1e-300), 1.0)
    m = 1.0 + window_s / np.maximum(sojourn_s, 1e-9)
    kmax = int(np.nanmax(flat) + 10 * math.sqrt(np.nanmax(flat) + 1) + 20) if flat.size else 0
    log_mean = np.log(np.maximum(flat, 1e-300))
    log_pmf = -flat  # log P(N = 0), in logs so that large means do not underflow
    log_cdf = log_pmf.copy()
    expect = np.zeros_like(flat)
    for k in range(kmax + 1):
        expect += 1.0 - np.exp(np.minimum(log_cdf, 0.0) * m)
        log_pmf = log_pmf + log_mean - math.log(k + 1)
        log_cdf = np.logaddexp(log_cdf, log_pmf)
    return np.maximum(expect, flat)


@functools.lru_cache(maxsize=64)
def peak_table(max_rps: float, workers: int, timeout_ms: float, window_s: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(loads, exact expected peaks) on a grid up to ``RHO_EXACT * max_rps`` (None: too large a
    queue), cached per model."""
    mu = max_rps / workers
    cap = workers + int(max_rps * timeout_ms / 1000.0)
    lam = np.concatenate(([0.0], _GRID * max_rps))
    peaks = expected_window_peak(lam, mu, workers, cap, window_s)
    if peaks is None:
        return None
    lam.flags.writeable = False
    peaks.flags.writeable = False
    return lam, peaks
