"""How notebooks show things: show_and_save (inline + PNG), pictures, the live chart, progress bars
that show a status or wait on the service's clock, and the static HTML walkthrough."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import matplotlib
import nbformat
import pandas as pd
import pytest

matplotlib.use("Agg")

from catkit.notebook import plots
from catkit.notebook.walkthrough import render_html, static_notebook, static_widget_html, write_index
from catkit.progress import StatusBar, wait_on_clock

T = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
VIEW = "application/vnd.jupyter.widget-view+json"


def test_show_and_save_writes_the_png_and_closes_pyplot_figures(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    assert plots.show_and_save(fig, tmp_path / "sub" / "line.png") is None  # no stray cell result
    assert (tmp_path / "sub" / "line.png").read_bytes().startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)  # the inline backend will not draw it a second time
    own, ax = plots.new_axes()
    ax.plot([1, 2])
    plots.show_and_save(own, tmp_path / "own.png")
    assert (tmp_path / "own.png").stat().st_size > 0


def test_plot_images_titles_each_picture():
    from PIL import Image

    fig = plots.plot_images([Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "red")], ["Hat: 99%", "No hat"],
                            title="cats")
    assert [ax.get_xlabel() for ax in fig.axes] == ["Hat: 99%", "No hat"]
    assert plots.figure_png(fig).startswith(b"\x89PNG")


def test_plot_fleet_live_draws_counts_metric_and_activities():
    samples = pd.DataFrame({"timestamp": [T, T + timedelta(minutes=3), T + timedelta(minutes=6)],
                            "current": [2, 2, 5], "desired": [2, 5, 5]})
    metrics = pd.DataFrame({"timestamp": [T, T + timedelta(minutes=1)], "metric": "InvocationsPerInstance",
                            "stat": "Sum", "value": [10.0, 48.0]})
    acts = pd.DataFrame({"start_time": [pd.Timestamp(T + timedelta(minutes=2))], "status": ["Successful"],
                         "desired_capacity": [5]})
    fig = plots.plot_fleet_live(samples, metrics, acts, target_value=20)
    assert [t.get_text() for t in fig.axes[0].texts] == ["→5"]
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"target 20", "in service", "desired", "invocations / instance / period"} <= labels
    assert plots.figure_png(plots.plot_fleet_live(samples.iloc[:0])).startswith(b"\x89PNG")  # nothing yet


def test_fleet_svg_draws_steps_metric_target_and_activities():
    from catkit.notebook.live_chart import fleet_svg

    samples = [{"timestamp": T + timedelta(minutes=m), "current": c, "desired": d}
               for m, c, d in ((0, 2, 2), (3, 2, 5), (9, 5, 5))]
    svg = fleet_svg(samples, [(T, 10.0), (T + timedelta(minutes=1), 48.0)],
                    [(T + timedelta(minutes=3), 5, "Successful"), (T + timedelta(minutes=8), 2, "Failed")],
                    start=T, now=T + timedelta(minutes=10), target_value=20)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 3 and "→5" in svg and "→2" in svg and "target 20" in svg
    assert "#2ca02c" in svg and "#d62728" in svg  # green scale-out, red failed
    empty = fleet_svg([], start=T, now=T)
    assert "<polyline" not in empty and empty.endswith("</svg>")


class FakeClock:
    """A service clock that moves 60 s per reading."""

    def __init__(self) -> None:
        self.t = T

    def now(self) -> datetime:
        self.t += timedelta(seconds=60)
        return self.t


def test_wait_on_clock_waits_on_the_service_clock():
    assert wait_on_clock(FakeClock(), 300, progress=False, poll=0.0) >= 300
    with pytest.raises(ValueError):
        wait_on_clock(FakeClock(), -1)

    class Stopped:
        def now(self) -> datetime:
            return T

    with pytest.raises(TimeoutError, match="moved 0 of 5 s"):
        wait_on_clock(Stopped(), 5, progress=False, poll=0.0, timeout=0.05)


def test_status_bar_shows_the_status_not_a_poll_count(capsys):
    with StatusBar("ep1") as bar:
        bar.show("Creating")
        bar.show("Creating")
        bar.done("InService")
    err = capsys.readouterr().err
    assert "InService" in err and "poll" not in err and "100%" not in err
    with StatusBar("ep2", enabled=False) as quiet:
        quiet.done("InService")
    assert capsys.readouterr().err == ""


def _widget_state() -> dict:
    def m(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
                "state": state}

    return {
        "box": m("VBoxModel", children=["IPY_MODEL_title", "IPY_MODEL_slider", "IPY_MODEL_row"]),
        "title": m("HTMLModel", value="<b>Auto scaling</b> ep1"),
        "slider": m("IntSliderModel", description="max instances", value=7),
        "row": m("HBoxModel", children=["IPY_MODEL_button", "IPY_MODEL_bar", "IPY_MODEL_pic"]),
        "button": m("ButtonModel", description="Apply", disabled=True),
        "bar": m("FloatProgressModel", value=3.0, max=4.0),
        "pic": {**m("ImageModel", format="png"), "buffers": [{"path": ["value"], "encoding": "base64", "data": "iVBO"}]},
    }


def test_static_widget_html_renders_the_final_state():
    out = static_widget_html(_widget_state(), "box")
    assert "<b>Auto scaling</b> ep1" in out and "max instances" in out and "<b>7</b>" in out
    assert "Apply" in out and "(disabled)" in out and "<progress value='3.0' max='4.0'" in out
    assert "data:image/png;base64,iVBO" in out
    assert static_widget_html(_widget_state(), "missing") == ""


def _executed_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    widget = nbformat.v4.new_code_cell("panel.display()")
    widget.outputs = [nbformat.v4.new_output("display_data", data={
        VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "VBox(...)"})]
    record = nbformat.v4.new_code_cell("results.record(x=1)", metadata={"tags": ["run-record"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), widget, record]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": _widget_state(), "version_major": 2, "version_minor": 0}}
    return nb


def test_static_notebook_replaces_widgets_and_drops_the_run_record():
    nb = static_notebook(_executed_notebook())
    assert "widgets" not in nb.metadata and len(nb.cells) == 2
    data = nb.cells[1].outputs[0]["data"]
    assert VIEW not in data and "max instances" in data["text/html"]


def test_render_html_and_index(tmp_path):
    path = tmp_path / "02_demo.ipynb"
    nbformat.write(_executed_notebook(), path)
    page = render_html(path)
    text = page.read_text()
    assert page == tmp_path / "02_demo.html"
    assert "max instances" in text and "results.record" not in text
    assert "widget-state" not in text and "require.js" not in text and "MathJax.js" not in text
    (tmp_path / "02_demo").mkdir()
    (tmp_path / "02_demo" / "fig.png").write_bytes(b"\x89PNG")
    index = write_index(tmp_path, [{"name": "02_demo", "html": page, "ok": True, "seconds": 12.3,
                                    "headline": "scaled 2 -> 5", "figures": [tmp_path / "02_demo" / "fig.png"]}])
    html = index.read_text()
    assert "href='02_demo.html'" in html and "scaled 2 -&gt; 5" in html and "href='02_demo/fig.png'" in html
