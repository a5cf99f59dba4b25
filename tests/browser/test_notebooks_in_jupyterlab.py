"""Notebooks 01 and 02 as a data scientist uses them: JupyterLab in headless Chromium, Run All.

Each test copies a notebook into the Lab's folder with its papermill parameters injected (its own
run id, output folder and the shared model cache), opens it, runs all cells from the Run menu and
checks the page: no console or page errors, no "Error displaying widget", no error or stderr
output, every figure an image, the panels rendered. Then it uses the widgets as a person would:
01's deploy panel warns below two instances, Run All works a second time; in 02 the sliders and the
target are changed in the page, Apply registers them (checked with boto3), and after the teardown
cell has run the panel says the endpoint is gone. Waits are on conditions in the page, never fixed
sleeps. Screenshots go to ``out/browser/``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]

RUN_ALL_TIMEOUT_MS = 420_000
DONE_JS = """(minimum) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel || !document.body.innerText.includes('| Idle')) return false;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  const counts = prompts.map(t => (t.match(/^\\[(\\d+)\\]:$/) || [])[1]).map(Number);
  return counts.length > 0 && counts.every(n => n > minimum);
}"""
LOADED_JS = """() => document.body.innerText.includes('| Idle')
  && document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').length > 0"""


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def _prepare(lab: Any, stem: str, model_cache: Path, **params: Any) -> tuple[str, str]:
    """Copy ``notebooks/<stem>.ipynb`` into the Lab's folder with parameters injected as papermill
    does; returns (file name, run id)."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    run_id = f"br{stem[:2]}-{uuid.uuid4().hex[:6]}"
    nb = load_notebook_node(str(REPO / "notebooks" / f"{stem}.ipynb"))
    nb = parameterize_notebook(nb, {"run_id": run_id, "out_dir": str(lab.root / "out" / stem),
                                    "model_cache": str(model_cache), **params})
    name = f"{stem}.ipynb"
    nbformat.write(nb, lab.root / name)
    return name, run_id


def _open(page: Any, lab: Any, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.wait_for_function(LOADED_JS, timeout=120_000, polling=250)


def _prompt_numbers(page: Any) -> list[int]:
    texts = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    return [int(m.group(1)) for t in texts if (m := re.match(r"\[(\d+)\]:", t.strip()))]


def _run_all(page: Any, shots: Path | None = None, label: str | None = None) -> None:
    """Run > Run All Cells, then wait until every code cell has run (a new execution count) and
    the kernel is idle. With ``label``, the wall time is added to ``shots/run_all_seconds.json``."""
    before = max(_prompt_numbers(page), default=0)
    started = time.monotonic()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
    page.locator(".lm-Menu").get_by_text("Run All Cells", exact=True).click()
    page.wait_for_function(DONE_JS, arg=before, timeout=RUN_ALL_TIMEOUT_MS, polling=500)
    if shots is not None and label is not None:
        record = shots / "run_all_seconds.json"
        times = json.loads(record.read_text()) if record.exists() else {}
        times[label] = round(time.monotonic() - started, 1)
        record.write_text(json.dumps(times, indent=1))


def _assert_clean(page: Any) -> None:
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert page.get_by_text("Error displaying widget").count() == 0
    stderr = notebook.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert stderr.count() == 0, stderr.all_inner_texts()[:3]
    assert page.problems == [], page.problems


def _figures(page: Any) -> Any:
    """The figures in the notebook's outputs (image/png outputs), each checked to have loaded."""
    images = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedImage img")
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), f"figure {i} did not load"
    return images


def _set_slider(panel: Any, label: str, value: int) -> None:
    """Type ``value`` into the slider's readout (as a person does to set an exact number)."""
    slider = panel.locator(".widget-slider", has=panel.page.locator("label", has_text=re.compile(f"^{label}$")))
    readout = slider.locator(".widget-readout")
    readout.click()
    panel.page.keyboard.press("Control+A")
    panel.page.keyboard.type(str(value))
    panel.page.keyboard.press("Enter")


def _readout(panel: Any, label: str) -> Any:
    slider = panel.locator(".widget-slider", has=panel.page.locator("label", has_text=re.compile(f"^{label}$")))
    return slider.locator(".widget-readout")


def test_01_run_all_twice_with_deploy_panel_and_pictures(lab, page, model_cache, shots) -> None:
    from playwright.sync_api import expect

    name, _ = _prepare(lab, "01_deploy_and_invoke", model_cache)
    _open(page, lab, name)
    _run_all(page, shots, "01_deploy_and_invoke")
    _assert_clean(page)
    figures = _figures(page)
    assert figures.count() == 2  # the two cats with their predictions, the latency histogram
    figures.first.scroll_into_view_if_needed()
    figures.first.screenshot(path=str(shots / "01_cats.png"))

    deploy_panel = page.locator(".catkit-deploy-panel")
    expect(deploy_panel).to_have_count(1)
    expect(deploy_panel).to_contain_text("/hour")
    expect(deploy_panel).to_contain_text("InService")
    warning = deploy_panel.locator(".catkit-ha-warning")
    expect(warning).not_to_contain_text("single point of failure")
    _set_slider(deploy_panel, "instances", 1)  # the kernel answers with the HA warning
    expect(warning).to_contain_text("single point of failure", timeout=30_000)
    deploy_panel.scroll_into_view_if_needed()
    deploy_panel.screenshot(path=str(shots / "01_deploy_panel_ha_warning.png"))

    _run_all(page, shots, "01_deploy_and_invoke (second Run All)")  # again, in the same kernel
    _assert_clean(page)
    assert _figures(page).count() == 2
    expect(page.locator(".catkit-deploy-panel")).to_contain_text("InService")
    page.screenshot(path=str(shots / "01_after_second_run_all.png"))


def test_02_scaling_panel_apply_and_teardown(lab, page, model_cache, shots) -> None:
    from playwright.sync_api import expect

    from catkit.session import Session

    name, run_id = _prepare(lab, "02_autoscaling", model_cache, teardown=False)
    endpoint = f"cat-hat-scaling-{run_id}"
    _open(page, lab, name)
    _run_all(page, shots, "02_autoscaling")
    _assert_clean(page)
    assert _figures(page).count() == 2  # instances vs load, 1-minute vs high resolution
    monitor = page.locator(".catkit-live-monitor")
    expect(monitor).to_have_count(1)
    expect(monitor).to_contain_text("in service")
    expect(monitor.locator("svg.catkit-live-chart polyline")).to_have_count(3)  # metric, in service, desired
    monitor.scroll_into_view_if_needed()
    monitor.screenshot(path=str(shots / "02_live_monitor.png"))

    panel = page.locator(".catkit-scaling-panel")
    expect(panel).to_have_count(1)
    expect(panel).to_contain_text(re.compile(r"instances: \d+ \(desired \d+\)"))
    for label in ("min instances", "max instances", "target value", "scale-out cooldown (s)",
                  "scale-in cooldown (s)"):
        box = panel.locator("label", has_text=re.compile(f"^{re.escape(label)}$"))
        assert box.evaluate("l => l.scrollWidth <= l.clientWidth"), f"label {label!r} is cut"
    _set_slider(panel, "max instances", 7)
    expect(_readout(panel, "max instances")).to_have_text("7", timeout=30_000)
    _set_slider(panel, "min instances", 9)  # above max: the sliders keep min <= max
    expect(_readout(panel, "max instances")).to_have_text("9", timeout=30_000)
    _set_slider(panel, "min instances", 2)
    _set_slider(panel, "max instances", 7)
    expect(_readout(panel, "max instances")).to_have_text("7", timeout=30_000)
    target = panel.locator(".widget-text input")
    target.fill("25")
    target.press("Enter")
    panel.get_by_role("button", name="Apply").click()  # waits until enabled (not while Updating)
    expect(panel).to_contain_text("applied: 2..7 instances, target 25", timeout=60_000)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(shots / "02_scaling_panel_applied.png"))

    session = Session(backend="local", home=str(lab.home))
    aas = session.client("application-autoscaling")
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    target_desc = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in target_desc["ScalableTargets"]] == [(2, 7)]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingPolicies"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [25.0]

    # Teardown as a user does it: a new cell above the teardown cell sets teardown = True, then both run.
    teardown_cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell",
                                 has_text="if teardown:")
    teardown_cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.keyboard.type("teardown = True")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    expect(teardown_cell).to_contain_text("deleted: endpoint:", timeout=120_000)
    expect(panel).to_contain_text("no longer exists", timeout=60_000)
    expect(panel.get_by_role("button", name="Apply")).to_be_disabled()
    _assert_clean(page)
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(shots / "02_scaling_panel_after_teardown.png"))
