"""recommend_scaling: the grid, the SLO filter, ranking by cost and the emitted arguments."""

from __future__ import annotations

import pytest
from joblib import parallel_config, register_parallel_backend
from joblib._parallel_backends import ThreadingBackend

from catkit.autoscaling.config import SEED_CONFIG, ScalingConfig
from catkit.whatif import shapes
from catkit.whatif.calibrate import ServiceModel
from catkit.whatif.recommend import candidate_configs, recommend_scaling

SVC = ServiceModel(max_rps=40, workers=4, base_p50_ms=20, base_p99_ms=50)
TRAFFIC = shapes.Diurnal(2, 90, peak_hour=12) + shapes.Spike(at_s=9 * 3600, duration_s=900, extra_rps=60, rise_s=120)
DAY = 86400


@pytest.fixture(scope="module")
def rec():
    return recommend_scaling(
        TRAFFIC, SVC, 250, duration_s=DAY, target_fractions=(0.4, 0.7), min_capacities=(2, 3),
        scale_out_cooldowns=(60,), scale_in_cooldowns=(300,), baseline=SEED_CONFIG, processes=1,
        progress=False,
    )


def test_grid_covers_metrics_fractions_mins_cooldowns_and_night():
    grid = candidate_configs(SVC, target_fractions=(0.5,), min_capacities=(1, 2, 3), scale_out_cooldowns=(60, 300),
                             scale_in_cooldowns=(300,))
    cfgs = [c for c, _ in grid]
    assert {c.metric for c in cfgs} == {"SageMakerVariantInvocationsPerInstance",
                                        "SageMakerVariantConcurrentRequestsPerModelHighResolution"}
    assert min(c.lowest_capacity for c in cfgs) == 2  # require_ha drops min 1 and night min 1
    inv = [c for c in cfgs if not c.high_resolution]
    assert {c.target_value for c in inv} == {SVC.invocations_target(0.5)} == {1200.0}
    assert any(c.night is not None and c.night.night_min == 2 and c.min_capacity == 3 for c in cfgs)
    # metrics 2 x mins (2 without night, 3 with and without) 3 x out-cooldowns 2
    assert len(cfgs) == 2 * 3 * 2
    loose = candidate_configs(SVC, target_fractions=(0.5,), metrics=("invocations",), min_capacities=(1,),
                              scale_out_cooldowns=(60,), scale_in_cooldowns=(300,), require_ha=False)
    assert [c.min_capacity for c, _ in loose] == [1]
    with pytest.raises(ValueError, match="no minimum capacity"):
        candidate_configs(SVC, min_capacities=(1,))
    with pytest.raises(ValueError, match="fractions"):
        candidate_configs(SVC, target_fractions=(1.5,))


def test_table_is_ranked_by_cost_among_settings_meeting_the_slo(rec):
    t = rec.table
    assert len(t) == len(rec.configs) == 2 * 2 * 3
    ok = t[t["meets_slo"]]
    assert len(ok) > 0
    assert ok["cost_usd"].is_monotonic_increasing
    assert ok["rank"].tolist() == list(range(1, len(ok) + 1))
    assert (ok["slow_fraction"] <= 0.01).all()
    bad = t[~t["meets_slo"]]
    assert (bad["slow_fraction"] > 0.01).all() and bad["rank"].isna().all()
    # meeting rows come first
    assert t["meets_slo"].tolist() == sorted(t["meets_slo"].tolist(), reverse=True)
    assert t["highly_available"].all()


def test_winner_is_the_cheapest_passing_setting_and_emits_arguments(rec):
    assert rec.best is rec.configs[0]
    row = rec.table.iloc[0]
    assert rec.best.target_value == row["target_value"] and rec.best.min_capacity == row["min_capacity"]
    assert rec.best_result.cost_usd == pytest.approx(row["cost_usd"])
    args = rec.put_scaling_policy_args("my-endpoint")
    assert args["ResourceId"] == "endpoint/my-endpoint/variant/AllTraffic"
    assert args["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == row["target_value"]
    assert rec.register_scalable_target_args("my-endpoint")["MinCapacity"] == row["min_capacity"]
    assert rec.baseline["config"] == SEED_CONFIG.label()
    assert rec.baseline["savings_per_day_usd"] == pytest.approx(
        rec.baseline["cost_per_day_usd"] - row["cost_per_day_usd"])
    assert "Recommended" in rec._repr_html_()
    fig = rec.plot()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_an_impossible_slo_has_no_winner_and_says_what_to_do():
    r = recommend_scaling(shapes.Constant(300), SVC, 60, duration_s=3600, target_fractions=(0.5,),
                          metrics=("invocations",), min_capacities=(2,), scale_out_cooldowns=(60,),
                          scale_in_cooldowns=(300,), night=False, max_capacity=3, progress=False)
    assert r.best is None and not r.table["meets_slo"].any()
    with pytest.raises(LookupError, match="raise max_capacity"):
        r.put_scaling_policy_args("ep")


def test_parallel_and_serial_sweeps_agree():
    kw = dict(duration_s=6 * 3600, target_fractions=(0.5,), metrics=("invocations",), min_capacities=(2, 3),
              scale_out_cooldowns=(60,), scale_in_cooldowns=(300,), progress=False)
    serial = recommend_scaling(TRAFFIC, SVC, 250, processes=1, **kw)
    parallel = recommend_scaling(TRAFFIC, SVC, 250, processes=2, **kw)
    assert serial.table.equals(parallel.table)
    assert serial.meta["joblib_backend"] == "in-process"
    assert parallel.meta["joblib_backend"] == "LokyBackend"  # local worker processes by default


class _CountingBackend(ThreadingBackend):
    """A stand-in for a cluster's joblib backend (Dask, Ray): records that it ran the sweep."""

    batches = 0

    def submit(self, func, callback=None):
        type(self).batches += 1
        return super().submit(func, callback)


def test_sweep_runs_on_the_active_joblib_backend():
    """What a Dask or Ray cluster plugs into: joblib's backend registry and parallel_config."""
    register_parallel_backend("catkit-test-cluster", _CountingBackend)
    kw = dict(duration_s=6 * 3600, target_fractions=(0.4, 0.5), metrics=("invocations",), min_capacities=(2, 3),
              scale_out_cooldowns=(60,), scale_in_cooldowns=(300,), progress=False)
    serial = recommend_scaling(TRAFFIC, SVC, 250, processes=1, **kw)
    with parallel_config(backend="catkit-test-cluster", n_jobs=3):
        clustered = recommend_scaling(TRAFFIC, SVC, 250, **kw)
    assert clustered.meta["processes"] == 3  # n_jobs from the context
    assert clustered.meta["joblib_backend"] == "_CountingBackend"
    assert _CountingBackend.batches >= 1
    assert serial.table.equals(clustered.table)
    # Outside a context, small grids stay in-process as before.
    assert recommend_scaling(TRAFFIC, SVC, 250, **kw).meta["joblib_backend"] == "in-process"


def test_bad_arguments():
    with pytest.raises(ValueError, match="duration_s is required"):
        recommend_scaling(TRAFFIC, SVC, 250)
    with pytest.raises(ValueError, match="slo_p99_ms"):
        recommend_scaling(TRAFFIC, SVC, 0, duration_s=3600)
    assert isinstance(SEED_CONFIG, ScalingConfig)


def test_a_worker_builds_the_tables_of_one_traffic_once_across_chunks():
    from catkit.whatif import recommend as r

    rate = TRAFFIC.per_second(3600)
    grid = candidate_configs(SVC, target_fractions=(0.5,), metrics=("invocations",), min_capacities=(2,),
                             scale_out_cooldowns=(60,), scale_in_cooldowns=(300, 900))
    items = [(k, cfg, frac) for k, (cfg, frac) in enumerate(grid)]
    job = r._Job(rate, SVC, r.DEFAULT_START, r.DEFAULT_PROVISIONING_S, r.DEFAULT_TERMINATION_S, 250.0)
    first = r._run_chunk(job, items[:1], 0.01)
    tables = r._WORKER_TABLES[1]
    assert r._run_chunk(job, items[1:], 0.01)[0][0] == 1
    assert r._WORKER_TABLES[1] is tables  # the second chunk of the sweep read the same tables
    again = r._Job(rate, SVC, r.DEFAULT_START, r.DEFAULT_PROVISIONING_S, r.DEFAULT_TERMINATION_S, 250.0)
    (_, row), = r._run_chunk(again, items[:1], 0.01)  # another sweep: its own tables, the same row
    assert {**row, "_wall_s": 0} == {**first[0][1], "_wall_s": 0}
    assert r._WORKER_TABLES[1] is not tables


def test_worker_tables_do_not_keep_the_memory_map_joblib_passed(tmp_path):
    """joblib maps a large traffic from a file it deletes when the sweep ends, retrying for a second
    while a worker still maps it: tables a worker keeps across chunks hold a copy instead."""
    import numpy as np

    from catkit.whatif import recommend as r

    rate = TRAFFIC.per_second(3600)
    mapped = np.memmap(tmp_path / "rate.dat", dtype=np.float64, mode="w+", shape=rate.shape)
    mapped[:] = rate
    mapped = np.memmap(tmp_path / "rate.dat", dtype=np.float64, mode="r", shape=rate.shape)  # as joblib does
    job = r._Job(mapped, SVC, r.DEFAULT_START, r.DEFAULT_PROVISIONING_S, r.DEFAULT_TERMINATION_S, 250.0)
    try:
        tables = r._worker_tables(job)
        assert np.array_equal(tables.rate, rate) and not tables.rate.flags.writeable
        assert not np.shares_memory(tables.rate, mapped)
    finally:
        r._WORKER_TABLES = None


def test_sweep_chunks_cover_every_setting_once_with_small_pieces_last():
    from catkit.whatif.recommend import _chunks

    items = list(range(1008))
    chunks = _chunks(items, 2)
    assert sorted(k for c in chunks for k in c) == items  # every setting exactly once
    big, small = chunks[:12], chunks[12:]
    # the first sets interleave the whole grid (every kind of setting: the tables a worker keeps)
    assert all(len(c) == 63 and c[0] < 16 and c[-1] > 1000 - 16 for c in big)
    assert small and all(len(c) <= 8 for c in small)  # the end in small pieces: workers finish together
    assert all(len(c) <= 2 for c in small[-8:])  # the very end in pairs
    assert sorted(k for c in _chunks(list(range(5)), 4) for k in c) == [0, 1, 2, 3, 4]  # fewer settings than sets


def test_sweep_rows_with_recycled_count_arrays_equal_fresh_simulations():
    """A sweep gives each run's per-second count arrays back to its tables for the next run: the
    rows stay those of simulations on fresh arrays, and a result handed to a caller is never reused."""
    import numpy as np

    from catkit.whatif import recommend as r
    from catkit.whatif.simulate import simulate
    from catkit.whatif.simulate.tables import TrafficTables

    rate = TRAFFIC.per_second(4 * 3600)
    grid = candidate_configs(SVC, target_fractions=(0.4, 0.7), metrics=("invocations", "high_resolution"),
                             min_capacities=(2,), scale_out_cooldowns=(60,), scale_in_cooldowns=(300,))
    items = [(k, cfg, frac) for k, (cfg, frac) in enumerate(grid)]
    job = r._Job(rate, SVC, r.DEFAULT_START, r.DEFAULT_PROVISIONING_S, r.DEFAULT_TERMINATION_S, 250.0)
    tables = TrafficTables(rate)
    rows = r._run_chunk(job, items, 0.01, tables)
    assert len(tables._spare) == 3  # the last run's serving and item arrays, waiting for the next run
    for (k, row), (key, cfg, frac) in zip(rows, items, strict=True):
        assert k == key
        fresh = simulate(rate, cfg, SVC, duration_s=len(rate), start=r.DEFAULT_START,
                         concurrency_statistic="mean")
        assert {**row, "_wall_s": 0} == {**r._row(fresh, frac, 250.0, 0.01), "_wall_s": 0}
    kept = simulate(None, grid[0][0], SVC, duration_s=len(rate), tables=tables)  # a caller's result
    serving = kept.serving.copy()
    assert all(kept.serving is not a and kept.billed is not a for a in tables._spare) or not tables._spare
    r._run_chunk(job, items, 0.01, tables)  # more runs on the same tables: the caller's arrays untouched
    np.testing.assert_array_equal(kept.serving, serving)
    view = kept.serving[::2]
    tables.recycle(view)  # a view of a caller's array: not taken
    assert all(a is not view and a.base is None for a in tables._spare)
    assert tables.count_array((3,), np.int64).shape == (3,)  # nothing of that kind kept: a new one
