"""Simulator speed: event skipping against ticking every 10 seconds, measured in the same run.

Run: ``.venv/bin/python benchmarks/simulator.py [--days 30] [--candidates 1008]``

Simulates ``--days`` days at 1-second resolution of a diurnal + daily-spike traffic (weekends
lighter; evaluated once, outside the timings) with three configurations - the seed's 1-minute
target tracking, the 10-second high-resolution metric, and the seed plus a night schedule. For each
it prints the wall and CPU time of the simulator as it runs (event skipping: the driver steps only
where something can change), the same simulation stepping the driver every 10 seconds
(``tick_every_grid_point=True``: the previous design), the speed-up between the two and whether
they took the same decisions (activities and per-second capacities). Then it times
``recommend_scaling`` over ``--candidates`` policies on the same traffic (0 to skip).

Goals (issue 18, 2 cores): 30 days in < 0.2 s (1-minute metric) and < 0.5 s (10-second metric);
``recommend_scaling`` over 1,000 candidates x 30 days in < 60 s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas  # noqa: F401 - imported up front (as in a notebook) so the first run does not pay for it

from catkit.whatif import load
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.recommend import recommend_scaling
from catkit.whatif.simulate import SEED_CONFIG, NightSchedule, ScalingConfig, simulate


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``repeat`` calls, and the last result."""
    wall = cpu = float("inf")
    out = None
    for _ in range(max(1, repeat)):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu, out


def _same(a, b) -> bool:
    fa = a.activities.astype(object).where(a.activities.notna(), None)
    fb = b.activities.astype(object).where(b.activities.notna(), None)
    return fa.to_dict("records") == fb.to_dict("records") and np.array_equal(a.serving, b.serving)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3, help="event-skipping runs per configuration; the best is shown")
    ap.add_argument("--candidates", type=int, default=1008, help="recommend_scaling grid size (0: skip)")
    args = ap.parse_args()
    duration = int(args.days * 86400)
    svc = ServiceModel(max_rps=40, workers=4, base_p50_ms=25, base_p99_ms=60)
    shape = load.Diurnal(low_rps=10, high_rps=200, weekend_factor=0.5) + load.Spike(
        at_s=9 * 3600, duration_s=1800, extra_rps=150, rise_s=300, every_s=86400)
    t = time.perf_counter()
    rates = shape.per_second(duration)
    print(f"traffic: {args.days:g} days at 1 s = {len(rates):,} seconds (shape evaluated in "
          f"{time.perf_counter() - t:.2f} s, not counted below); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    configs = {
        "seed (1-minute metric)": SEED_CONFIG,
        "high-resolution (10 s)": ScalingConfig(metric="high_resolution", target_value=svc.concurrency_target(0.5)),
        "seed + night schedule": ScalingConfig(night=NightSchedule(night_min=2)),
    }
    simulate(rates[:3600], SEED_CONFIG, svc, duration_s=3600)  # imports and the concurrency table, once
    print(f"{'configuration':<24}{'skip wall s':>12}{'cpu s':>8}{'steps':>8}{'tick wall s':>12}{'cpu s':>8}"
          f"{'steps':>9}{'speed-up':>10}{'events':>8}  same decisions")
    for name, cfg in configs.items():
        wall, cpu, res = _timed(lambda cfg=cfg: simulate(rates, cfg, svc, duration_s=duration), args.repeat)
        t_wall, t_cpu, ticked = _timed(
            lambda cfg=cfg: simulate(rates, cfg, svc, duration_s=duration, tick_every_grid_point=True), 1)
        events = int((res.serving[1:] != res.serving[:-1]).sum())
        print(f"{name:<24}{wall:>12.3f}{cpu:>8.3f}{res.ticks:>8,}{t_wall:>12.2f}{t_cpu:>8.2f}{ticked.ticks:>9,}"
              f"{t_cpu / cpu:>9.1f}x{events:>8}  {'yes' if _same(res, ticked) else 'NO'}")
    print("(speed-up: CPU time of ticking every 10 s / CPU time of event skipping, same run)")
    if args.candidates <= 0:
        return
    fractions = tuple(float(f) for f in np.linspace(0.3, 0.8, max(1, -(-args.candidates // 56))))
    n = len(fractions) * 56  # 2 metrics x 7 minimum/night settings x 2 x 2 cooldowns per fraction
    t, c = time.perf_counter(), time.process_time()
    rec = recommend_scaling(rates, svc, 500.0, target_fractions=fractions, min_capacities=(2, 3, 4, 5),
                            progress=False)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    assert len(rec.table) == n, (len(rec.table), n)
    per = rec.meta["simulation_cpu_seconds"] / n
    print(f"recommend_scaling: {n:,} candidates x {args.days:g} days in {wall:.1f} s wall "
          f"({rec.meta['processes']} x {rec.meta.get('joblib_backend', '?')}; {per:.3f} s wall per simulation in "
          f"the workers; {cpu:.1f} s CPU in this process); goal < 60 s for 1,000 x 30 days")


if __name__ == "__main__":
    main()
