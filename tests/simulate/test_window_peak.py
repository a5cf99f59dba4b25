"""The expected window peak of an M/M/c queue against an independent computation.

:func:`catkit.whatif.window_peak.expected_window_peak` inverts Laplace transforms of climb times;
here ``P(max < k)`` comes from the spectrum of the generator killed at ``k`` instead (the chain is
reversible, so the symmetrised generator has an orthonormal eigenbasis):
``P(max < k) = Σ_j (v_j · sqrt(π_<k))² exp(λ_j T)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.window_peak import expected_window_peak


def spectral_peak(lam: float, mu: float, workers: int, window_s: float, states: int = 150) -> float:
    n = np.arange(states + 1)
    deaths = np.minimum(n, workers) * mu
    logpi = np.concatenate(([0.0], np.cumsum(np.log(lam) - np.log(deaths[1:]))))
    pi = np.exp(logpi - logpi.max())
    pi /= pi.sum()
    total = 0.0
    for k in range(1, states + 1):
        diag = -(lam + deaths[:k])
        off = np.sqrt(lam * deaths[1:k])
        values, vectors = np.linalg.eigh(np.diag(diag) + np.diag(off, 1) + np.diag(off, -1))
        stay = float(np.sum((vectors.T @ np.sqrt(pi[:k])) ** 2 * np.exp(values * window_s)))
        total += 1.0 - stay
        if 1.0 - stay < 1e-10:
            break
    return total


@pytest.mark.parametrize(("max_rps", "workers"), [(2.0, 2), (20.0, 4), (5.0, 1)])
def test_window_peak_matches_the_spectral_computation(max_rps, workers):
    mu = max_rps / workers
    loads = np.array([0.02, 0.3, 0.7]) * max_rps
    got = expected_window_peak(loads, mu, workers, cap=10_000, window_s=10.0)
    assert got is not None
    want = [spectral_peak(float(lam), mu, workers, 10.0) for lam in loads]
    assert got == pytest.approx(want, rel=1e-5)


def test_peak_concurrency_is_monotone_bounded_and_above_the_mean():
    m = ServiceModel(max_rps=40, workers=4)
    lam = np.linspace(0, 60, 601)
    peak, mean = m.peak_concurrency(lam), m.concurrency(lam)
    assert (np.diff(peak) >= 0).all() and (peak >= mean).all()
    assert peak.max() <= m.workers + m.max_rps * m.timeout_ms / 1000.0
    # a light load: the peak over 10 s is about the chance of a request in the window
    assert float(m.peak_concurrency(0.01)) == pytest.approx(1 - np.exp(-0.1), rel=0.02)
