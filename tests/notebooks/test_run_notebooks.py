"""Run every notebook headless with papermill against a local backend; assert on what each recorded
and on what a reader sees in the executed notebook.

One backend (temp CATKIT_HOME) and one model cache serve the whole module, as in ``make demo``.
Each notebook's run-record cell writes ``results.json`` with the values it computed; the
assertions below read those. :func:`_check_outputs` reads the executed notebook itself: every
figure saved to ``out_dir`` is also an inline image, no cell shows an error or stderr, and no cell
ends in a bare number or path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from catkit.local.sdk import sdk_generation
from catkit.notebook.runner import NotebookRun, notebook_paths, run_notebook

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

FIGURES = {
    "01_deploy_and_invoke": {"cats.png", "latency.png"},
    "02_autoscaling": {"instances_vs_load.png", "one_minute_vs_high_resolution.png"},
    "03_multi_model": {"cold_vs_warm.png"},
    "04_cost_and_teardown": {"cost.png", "night_savings.png"},
    "05_load_test_and_simulation": {"capacity_curve.png", "simulated_day.png", "simulated_vs_emulated.png",
                                    "recommendation.png"},
    "06_idle_cost": {"idle_day.png"},
}
LIVE_IMAGES = {"02_autoscaling": 1}  # the live monitor leaves its final chart as an image
BARE = re.compile(r"-?[\d_.,]+(e[+-]?\d+)?|(Posix|Windows)?Path\(.*\)|None|True|False")


def _check_outputs(run: NotebookRun) -> None:
    nb = nbformat.read(run.output_notebook, as_version=4)
    images, problems = 0, []
    for n, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            kind, data = out["output_type"], out.get("data", {})
            images += "image/png" in data
            if kind == "error":
                problems.append(f"cell {n}: {out['ename']}: {out['evalue']}")
            elif kind == "stream" and out["name"] == "stderr":
                problems.append(f"cell {n}: stderr {out['text'][:200]!r}")
            elif kind == "execute_result" and BARE.fullmatch(data.get("text/plain", "").strip()):
                problems.append(f"cell {n}: bare result {data['text/plain']!r}")
    assert not problems, problems
    saved = {p.name for p in run.out_dir.glob("*.png")}
    assert saved == FIGURES[run.name], saved
    assert images == len(saved) + LIVE_IMAGES.get(run.name, 0), f"{images} inline images for {sorted(saved)}"


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out_root = tmp_path_factory.mktemp("notebooks-out")
    home = tmp_path_factory.mktemp("catkit-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CATKIT_HOME", str(home))
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        mp.delenv(var, raising=False)
    try:
        yield out_root
    finally:
        from catkit.local import lifecycle

        try:
            lifecycle.stop(home=str(home))
        finally:
            mp.undo()


def _run(name: str, out_root: Path) -> NotebookRun:
    (path,) = notebook_paths([name])
    run = run_notebook(path, out_root, {"model_cache": str(out_root / "model-cache")})
    assert run.ok, f"{name} failed: {run.error}"
    _check_outputs(run)
    return run


def test_01_deploy_and_invoke(notebook_env: Path) -> None:
    r = _run("01_deploy_and_invoke", notebook_env).results
    assert r["endpoint_status"] == "InService"
    assert r["instances"] == 2
    assert re.fullmatch(r"Hat: \d{1,3}\.\d% confidence", r["hat_line"]), r["hat_line"]
    assert re.fullmatch(r"No hat: \d{1,3}\.\d% confidence", r["plain_line"]), r["plain_line"]
    assert r["hat_prediction"]["label"] == "hat"
    assert r["plain_prediction"]["label"] == "no_hat"
    assert r["batch_accuracy"] >= 0.9
    assert r["train_accuracy"] >= 0.95
    assert r["ha_warning"] is True
    assert any(d.startswith("endpoint:") for d in r["deleted"])
    assert (notebook_env / "01_deploy_and_invoke" / "latency.png").stat().st_size > 0
    assert r["sdk"] == sdk_generation()  # the SDK cell ran the installed generation's code (or said none)
    if r["sdk"] is not None:
        assert r["sdk_prediction"]["label"] == "hat"


def test_02_autoscaling(notebook_env: Path) -> None:
    r = _run("02_autoscaling", notebook_env).results
    assert r["alarms"] == 2  # AlarmHigh + AlarmLow of the target-tracking policy
    assert r["load"]["ok"] == r["load"]["requests"] > 0
    assert r["max_instances"] > 2, "the step in load must scale the endpoint out"
    assert r["final_instances"] == 2, "after the load drops it must scale back in to MinCapacity"
    assert all(2 <= c <= 10 for c in r["capacities"]), r["capacities"]
    # AlarmHigh needs 3 one-minute datapoints above target: never sooner than ~2 minutes after the step
    assert r["scale_out_after_step_s"] >= 120
    # AlarmLow needs 15 one-minute datapoints below 90 % of the target: the first scale-in comes at
    # least 15 minutes after the fleet grew (before, every instance was far above the target) ...
    step_length_s = 10 * 60
    assert r["scale_in_after_step_s"] + step_length_s - r["scale_out_after_step_s"] >= 15 * 60
    # ... and, with 5 instances still above the threshold during the step, only once 15 complete
    # minutes after the step are below it: at least 14 minutes after the step's end (the minute in
    # which the step ends may already read below the threshold when the step ends early in it)
    assert r["scale_in_after_step_s"] >= 14 * 60
    sim = r["sim_first_extra_instance_s"]
    assert sim["high-resolution"] < sim["1-minute"], sim
    assert r["custom_metric_datapoints"] == 5
    out = notebook_env / "02_autoscaling"
    assert (out / "instances_vs_load.png").exists() and (out / "one_minute_vs_high_resolution.png").exists()


def test_03_multi_model(notebook_env: Path) -> None:
    r = _run("03_multi_model", notebook_env).results
    # 4 models called twice each: the first call of each is a miss, the second a hit
    assert (r["cache_hits"], r["cache_requests"]) == (4.0, 8.0)
    assert r["cold_ms_median"] > r["warm_ms_median"]
    assert r["labels"] == ["hat"]
    # the budget holds ~2 models: a sweep over all variants misses every one of them ...
    assert r["misses_in_sweep"] == 6.0
    # ... evicting the least recently used, while the most recent one stays warm
    assert r["first_after_sweep_warm"] is False
    assert r["last_after_sweep_warm"] is True
    assert r["new_model_label"] == "hat"  # copied under the prefix, served without touching the endpoint
    assert (notebook_env / "03_multi_model" / "cold_vs_warm.png").exists()


def test_04_cost_and_teardown(notebook_env: Path) -> None:
    r = _run("04_cost_and_teardown", notebook_env).results
    idle = r["idle_endpoints"]
    assert any("-dev-" in name for name in idle), idle
    assert not any("-prod-" in name for name in idle), idle
    assert all(v > 0 for v in r["cost_so_far"].values())
    assert 0 < r["night_savings_fraction"] < 1
    assert len(r["deleted"]) == 2
    assert r["left_after_teardown"] == []


def test_05_load_test_and_simulation(notebook_env: Path) -> None:
    r = _run("05_load_test_and_simulation", notebook_env).results
    assert r["service_model"]["max_rps"] > 0
    assert r["agreement_max_diff_s"] is not None and r["agreement_max_diff_s"] <= 60
    assert r["sim_day"]["max_instances"] >= 2
    assert r["recommendation"], "some setting must meet the SLO on this traffic"
    assert r["recommendation_table_rows"] > 0
    assert any(d.startswith("endpoint:") for d in r["deleted"])


def test_06_idle_cost(notebook_env: Path) -> None:
    r = _run("06_idle_cost", notebook_env).results
    day = r["simulated_day"]
    costs = [day[k]["cost_usd"] for k in ("real-time 24/7", "real-time, night schedule", "async, scale to zero",
                                          "serverless")]
    assert costs == sorted(costs, reverse=True) and costs[-1] > 0, costs  # each answer to idle cost costs less
    assert day["async, scale to zero"]["p99_ms"] > day["real-time 24/7"]["p99_ms"]  # waiting for an instance
    assert day["async, scale to zero"]["cold_starts"] >= 4 and day["serverless"]["cold_starts"] >= 4
    assert set(r["async_labels"]) == {"hat", "no_hat"}
    assert r["async_woken_status"] == "Completed" and r["async_cold_s"] >= 240  # the provisioning delay at least
    assert r["serverless_cold_starts"] == 1 and r["serverless_cold_start_s"] >= 5
    assert r["serverless_first_ms"] > r["serverless_warm_p50_ms"]
    assert len(r["deleted"]) == 3 and r["left_after_teardown"] == []
