"""Simulator speed: event skipping against ticking every 10 seconds, measured in the same run.

Run: ``.venv/bin/python benchmarks/simulator.py [--days 30] [--candidates 1008] [--old-ref 8b12162] [--sample 8]``

Simulates ``--days`` days at 1-second resolution of a diurnal + daily-spike traffic (weekends
lighter; evaluated once, outside the timings) with three configurations - the seed's 1-minute
target tracking, the 10-second high-resolution metric, and the seed plus a night schedule. For each
it prints the wall and CPU time of the simulator as it runs (event skipping: the driver steps only
where something can change), the same simulation stepping the driver every 10 seconds
(``tick_every_grid_point=True``: the previous design), the speed-up between the two and whether
they took the same decisions (activities and per-second capacities). With ``--old-ref`` (a git
ref of this repository, default ``8b12162``, the commit before these speed-ups; ``""`` to skip) the same simulations run with that
ref's code (``git archive`` into a temporary directory, a subprocess) in the same run, and the
CPU ratio old / new is printed beside each figure. Then it times ``recommend_scaling`` over
``--candidates`` policies on the same traffic (0 to skip; the grid comes in steps of 56 settings, so
1,000 asks for 1,008) and, for the per-candidate ratio, runs ``--sample`` settings of that grid one
by one in this process with both the current and the old code (timed on a second pass over the
sample: per-traffic tables that a design keeps per worker are warm, as over a sweep's hundreds of
candidates per worker).

Goals (issue 18, 2 cores): 30 days in < 0.2 s (1-minute metric) and < 0.5 s (10-second metric);
``recommend_scaling`` over 1,000 candidates x 30 days in < 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

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


def _traffic(days: float) -> tuple[ServiceModel, np.ndarray]:
    svc = ServiceModel(max_rps=40, workers=4, base_p50_ms=25, base_p99_ms=60)
    shape = load.Diurnal(low_rps=10, high_rps=200, weekend_factor=0.5) + load.Spike(
        at_s=9 * 3600, duration_s=1800, extra_rps=150, rise_s=300, every_s=86400)
    return svc, shape.per_second(int(days * 86400))


def _configs(svc: ServiceModel) -> dict[str, ScalingConfig]:
    return {
        "seed (1-minute metric)": SEED_CONFIG,
        "high-resolution (10 s)": ScalingConfig(metric="high_resolution", target_value=svc.concurrency_target(0.5)),
        "seed + night schedule": ScalingConfig(night=NightSchedule(night_min=2)),
    }


def _grid_kwargs(candidates: int) -> dict:
    fractions = tuple(float(f) for f in np.linspace(0.3, 0.8, max(1, -(-candidates // 56))))
    return {"target_fractions": fractions, "min_capacities": (2, 3, 4, 5)}


def _sample_cpu(days: float, candidates: int, sample: int) -> float:
    """CPU seconds per candidate of ``sample`` settings of the grid, one by one in this process
    through recommend's own chunk runner (what each worker does). Timed on a second pass over the
    sample: a design that keeps its per-traffic tables in the worker (as a sweep's workers do over
    hundreds of candidates) reads them warm, one that rebuilds them per chunk pays for that again."""
    from catkit.whatif import recommend as rec

    svc, rates = _traffic(days)
    grid = rec.candidate_configs(svc, **_grid_kwargs(candidates))
    picks = [grid[i] for i in np.linspace(0, len(grid) - 1, sample).astype(int)]
    job = rec._Job(rates, svc, rec.DEFAULT_START, rec.DEFAULT_PROVISIONING_S, rec.DEFAULT_TERMINATION_S, 500.0)
    chunk = [(k, cfg, frac) for k, (cfg, frac) in enumerate(picks)]
    rec._run_chunk(job, chunk, 0.01)  # imports, and the tables where the design keeps them
    c = time.process_time()
    rec._run_chunk(job, chunk, 0.01)
    return (time.process_time() - c) / len(picks)


def _child(days: float, repeat: int, candidates: int, sample: int) -> None:
    """In the old code's subprocess: the figures of this benchmark, as JSON on stdout."""
    svc, rates = _traffic(days)
    duration = len(rates)
    simulate(rates[:3600], SEED_CONFIG, svc, duration_s=3600)
    out = {}
    for name, cfg in _configs(svc).items():
        out[name] = _timed(lambda cfg=cfg: simulate(rates, cfg, svc, duration_s=duration), repeat)[1]
    if candidates > 0 and sample > 0:
        out["per_candidate"] = _sample_cpu(days, candidates, sample)
    print(json.dumps(out))


def _old_figures(ref: str, args: argparse.Namespace) -> dict | None:
    """Run this benchmark's figures with the code of git ``ref`` (None when it cannot)."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "old.tar"
        done = subprocess.run(["git", "-C", str(root), "archive", "-o", str(archive), ref, "catkit"],
                              capture_output=True, text=True)
        if done.returncode:
            print(f"(old design: git archive {ref} failed: {done.stderr.strip()})")
            return None
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
                f"import simulator; simulator._child({args.days!r}, {args.repeat!r}, {args.candidates!r}, "
                f"{args.sample!r})")
        env = dict(os.environ, PYTHONPATH=tmp)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp)
        if done.returncode:
            print(f"(old design failed: {done.stderr.strip()[-400:]})")
            return None
        return json.loads(done.stdout.strip().splitlines()[-1])


def _same(a, b) -> bool:
    fa = a.activities.astype(object).where(a.activities.notna(), None)
    fb = b.activities.astype(object).where(b.activities.notna(), None)
    return fa.to_dict("records") == fb.to_dict("records") and np.array_equal(a.serving, b.serving)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=3, help="event-skipping runs per configuration; the best is shown")
    ap.add_argument("--candidates", type=int, default=1008, help="recommend_scaling grid size (0: skip)")
    ap.add_argument("--old-ref", default="8b12162",
                    help="git ref of the previous design (default: the commit before the issue-18 speed-ups; '' to skip)")
    ap.add_argument("--sample", type=int, default=8, help="settings timed one by one for the per-candidate ratio")
    args = ap.parse_args()
    t = time.perf_counter()
    svc, rates = _traffic(args.days)
    duration = len(rates)
    print(f"traffic: {args.days:g} days at 1 s = {len(rates):,} seconds (shape evaluated in "
          f"{time.perf_counter() - t:.2f} s, not counted below); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    old = _old_figures(args.old_ref, args) if args.old_ref else None
    simulate(rates[:3600], SEED_CONFIG, svc, duration_s=3600)  # imports and the concurrency table, once
    print(f"{'configuration':<24}{'skip wall s':>12}{'cpu s':>8}{'steps':>8}{'tick wall s':>12}{'cpu s':>8}"
          f"{'steps':>9}{'vs tick':>9}{'old cpu s':>10}{'vs old':>8}{'events':>8}  same decisions")
    for name, cfg in _configs(svc).items():
        wall, cpu, res = _timed(lambda cfg=cfg: simulate(rates, cfg, svc, duration_s=duration), args.repeat)
        t_wall, t_cpu, ticked = _timed(
            lambda cfg=cfg: simulate(rates, cfg, svc, duration_s=duration, tick_every_grid_point=True), 1)
        events = int((res.serving[1:] != res.serving[:-1]).sum())
        old_cpu = old.get(name) if old else None
        vs_old = f"{old_cpu / cpu:>7.2f}x" if old_cpu else f"{'-':>8}"
        print(f"{name:<24}{wall:>12.3f}{cpu:>8.3f}{res.ticks:>8,}{t_wall:>12.2f}{t_cpu:>8.2f}{ticked.ticks:>9,}"
              f"{t_cpu / cpu:>8.1f}x{(old_cpu or float('nan')):>10.3f}{vs_old}{events:>8}  "
              f"{'yes' if _same(res, ticked) else 'NO'}")
    print("(vs tick: CPU of stepping the driver every 10 s / CPU of event skipping; vs old: CPU of the "
          f"{args.old_ref or '-'} code / CPU now; all measured in this run)")
    if args.candidates <= 0:
        return
    kwargs = _grid_kwargs(args.candidates)
    n = len(kwargs["target_fractions"]) * 56  # 2 metrics x 7 minimum/night settings x 2 x 2 cooldowns per fraction
    if args.sample > 0:
        per_new = _sample_cpu(args.days, args.candidates, args.sample)
        per_old = old.get("per_candidate") if old else None
        ratio = f"; old {per_old:.3f} s -> {per_old / per_new:.2f}x" if per_old else ""
        print(f"per candidate ({args.sample} settings one by one, CPU): now {per_new:.3f} s{ratio}")
    t, c = time.perf_counter(), time.process_time()
    rec = recommend_scaling(rates, svc, 500.0, progress=False, **kwargs)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    assert len(rec.table) == n, (len(rec.table), n)
    per = rec.meta["simulation_cpu_seconds"] / n
    print(f"recommend_scaling: {n:,} candidates x {args.days:g} days in {wall:.1f} s wall "
          f"({rec.meta['processes']} x {rec.meta.get('joblib_backend', '?')}; {per:.3f} s wall per simulation in "
          f"the workers; {cpu:.1f} s CPU in this process); goal < 60 s for 1,000 x 30 days")


if __name__ == "__main__":
    main()
