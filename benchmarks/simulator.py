"""Simulator speed: simulated seconds per wall second, and the simulator's cost over the bare engine.

Run: ``.venv/bin/python benchmarks/simulator.py [--days 30]``

Simulates ``--days`` days (best of ``--repeat`` runs) at 1-second resolution of a diurnal + daily-spike traffic (weekends
lighter) with three configurations - the seed's 1-minute target tracking, the 10-second
high-resolution metric, and the seed plus a night schedule - and prints for each the wall time,
simulated seconds per wall second and engine ticks. As a yardstick it then ticks a bare
``catkit.autoscaling.Engine`` the same number of times with a trivial metric reader (the engine's
own cost, which the simulator cannot go below) and prints the ratio. The brief's goal: 30 days at
1-second resolution in under 2 s (seed config).
"""

from __future__ import annotations

import argparse
import time

import pandas  # noqa: F401 - imported up front (as in a notebook) so the first run does not pay for it

from catkit.autoscaling import AlarmBook, Engine
from catkit.whatif import load
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.simulate import SEED_CONFIG, NightSchedule, ScalingConfig, simulate

RID = "endpoint/bench/variant/AllTraffic"
DIM = "sagemaker:variant:DesiredInstanceCount"


class _ConstantReader:
    def statistics(self, namespace, name, dimensions, start, end, period, statistics):
        b = (start // period) * period
        rows = []
        while b < end:
            rows.append({"Timestamp": float(b), **dict.fromkeys(statistics, 500.0)})
            b += period
        return rows


def bare_engine_seconds(ticks: int, step: float, config: ScalingConfig) -> float:
    eng = Engine(AlarmBook())
    eng.register_scalable_target("sagemaker", RID, DIM, 0.0, min_capacity=2, max_capacity=10)
    eng.put_scaling_policy("p", "sagemaker", RID, DIM, 0.0, policy_type="TargetTrackingScaling",
                           target_tracking_config=config.policy_configuration())
    reader = _ConstantReader()
    t0 = time.perf_counter()
    for k in range(ticks):
        eng.tick(step * (k + 1), reader, lambda rid: 2)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs per configuration; the best is shown")
    args = ap.parse_args()
    duration = args.days * 86400
    svc = ServiceModel(max_rps=40, workers=4, base_p50_ms=25, base_p99_ms=60)
    shape = load.Diurnal(low_rps=10, high_rps=200, weekend_factor=0.5) + load.Spike(
        at_s=9 * 3600, duration_s=1800, extra_rps=150, rise_s=300, every_s=86400)
    t = time.perf_counter()
    rates = shape.per_second(duration)
    shape_s = time.perf_counter() - t
    print(f"traffic: {args.days:g} days at 1 s = {len(rates):,} seconds, shape evaluated in {shape_s:.2f} s")
    configs = {
        "seed (1-minute metric)": SEED_CONFIG,
        "high-resolution (10 s)": ScalingConfig(metric="high_resolution", target_value=svc.concurrency_target(0.5)),
        "seed + night schedule": ScalingConfig(night=NightSchedule(night_min=2)),
    }
    print(f"{'configuration':<26}{'wall s':>9}{'sim s / wall s':>16}{'ticks':>9}{'events':>8}"
          f"{'engine-only s':>15}{'sim / engine':>14}")
    for name, cfg in configs.items():
        wall = engine_s = float("inf")
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            res = simulate(shape, cfg, svc, duration_s=duration)
            wall = min(wall, time.perf_counter() - t)
            engine_s = min(engine_s, bare_engine_seconds(res.ticks, float(res.meta["eval_every_s"]), cfg))
        events = int((res.serving[1:] != res.serving[:-1]).sum())
        print(f"{name:<26}{wall:>9.2f}{duration / wall:>16,.0f}{res.ticks:>9,}{events:>8}"
              f"{engine_s:>15.2f}{wall / engine_s:>14.2f}")
    print("(wall includes evaluating the shape; 'engine-only' ticks a bare Engine as often with a trivial reader)")


if __name__ == "__main__":
    main()
