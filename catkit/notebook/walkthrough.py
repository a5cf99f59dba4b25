"""HTML walkthroughs of executed notebooks: read the tutorial in a browser without running anything.

:func:`render_html` turns an executed notebook (as ``make demo`` leaves it in ``out/``) into one
self-contained HTML page (nbconvert's lab template; figures are embedded as base64 PNG). Widgets
cannot run in a static page, so each widget output is replaced by a static rendering of the
widget's **final** state, which the executed notebook keeps in its metadata: panels show their last
values and messages, progress bars their last text, the live monitor its last chart. Cells tagged
``run-record`` (test bookkeeping) are left out, and so are the CDN scripts (require.js, MathJax)
the page does not need, so it reads offline. :func:`write_index` writes ``index.html`` linking
every walkthrough with its status, run time and headline.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
RECORD_TAG = "run-record"
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""
_BOXES = {"HBoxModel": "row", "VBoxModel": "column", "BoxModel": "column", "GridBoxModel": "column"}
_VALUE_MODELS = {"IntSliderModel", "FloatSliderModel", "IntRangeSliderModel", "FloatRangeSliderModel",
                 "BoundedFloatTextModel", "BoundedIntTextModel", "FloatTextModel", "IntTextModel",
                 "TextModel", "CheckboxModel", "ToggleButtonModel"}


def _ref(value: Any) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


def static_widget_html(models: Mapping[str, Any], model_id: str, _depth: int = 0) -> str:
    """Static HTML for widget ``model_id`` from a notebook's saved widget state ("" if unknown)."""
    model = models.get(model_id)
    if model is None or _depth > 20:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    label = html.escape(str(state.get("description") or ""))
    prefix = f"<span class='catkit-static-label'>{label}</span> " if label else ""
    if name in _BOXES:
        children = "".join(static_widget_html(models, _ref(c) or "", _depth + 1) for c in state.get("children", []))
        direction = _BOXES[name]
        return f"<div style='display:flex;flex-direction:{direction};gap:4px;align-items:flex-start'>{children}</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{prefix}{state.get('value', '')}</div>"  # the widget's own HTML, as the live view shows it
    if name == "LabelModel":
        return f"<div>{prefix}{html.escape(str(state.get('value', '')))}</div>"
    if name in ("FloatProgressModel", "IntProgressModel"):
        return (f"{prefix}<progress value='{state.get('value', 0)}' max='{state.get('max', 1)}' "
                "style='width:12em'></progress>")
    if name in _VALUE_MODELS:
        return f"<div>{prefix}<b>{html.escape(str(state.get('value')))}</b></div>"
    if name == "DropdownModel":
        labels, index = state.get("_options_labels") or [], state.get("index")
        chosen = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
        return f"<div>{prefix}<b>{html.escape(str(chosen))}</b></div>"
    if name == "ButtonModel":
        muted = " (disabled)" if state.get("disabled") else ""
        return (f"<span style='border:1px solid #999;border-radius:3px;padding:1px 8px'>{label}</span>"
                f"<small>{muted}</small>")
    if name == "ImageModel":
        data = next((b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
        fmt = html.escape(str(state.get("format", "png")))
        return f"<img src='data:image/{fmt};base64,{data}' style='max-width:100%'/>" if data else ""
    if name == "OutputModel":
        parts = []
        for out in state.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                parts.append(static_widget_html(models, data[WIDGET_VIEW].get("model_id", ""), _depth + 1))
            elif "text/html" in data:
                parts.append(str(data["text/html"]))
            elif "text/plain" in data or "text" in out:
                parts.append(f"<pre>{html.escape(str(data.get('text/plain', out.get('text', ''))))}</pre>")
        return "".join(parts)
    return ""


def static_notebook(nb: Any) -> Any:
    """A copy of ``nb`` with every widget output replaced by its static rendering, no widget
    state in the metadata and no ``run-record`` cells."""
    nb = copy.deepcopy(nb)
    models = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.pop(WIDGET_VIEW, None)
            if view is None:
                continue
            rendered = static_widget_html(models, view.get("model_id", ""))
            if rendered:
                data["text/html"] = f"<div class='catkit-static-widget'>{rendered}</div>"
    nb.metadata.pop("widgets", None)
    nb.cells = [c for c in nb.cells if RECORD_TAG not in c.get("metadata", {}).get("tags", [])]
    return nb


def render_html(notebook: str | Path, html_path: str | Path | None = None) -> Path:
    """Write the static HTML walkthrough of an executed notebook; returns its path
    (default: next to the notebook, ``.html``)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    target = Path(html_path) if html_path is not None else notebook.with_suffix(".html")
    nb = static_notebook(nbformat.read(notebook, as_version=4))
    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"catkit.html.j2": _TEMPLATE})],
                            template_file="catkit.html.j2")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    target.write_text(body, encoding="utf-8")
    return target


def write_index(out_root: str | Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """``index.html`` in ``out_root``: one row per notebook. Each entry: ``name``, ``html`` (path),
    ``ok``, ``seconds``, ``headline``, ``figures`` (paths)."""
    out_root = Path(out_root)
    rows = []
    for e in entries:
        link = Path(e["html"]).relative_to(out_root).as_posix() if e.get("html") else None
        title = f"<a href='{html.escape(link)}'>{html.escape(e['name'])}</a>" if link else html.escape(e["name"])
        figs = ", ".join(
            f"<a href='{html.escape(Path(f).relative_to(out_root).as_posix())}'>{html.escape(Path(f).stem)}</a>"
            for f in e.get("figures", []))
        status = "ok" if e.get("ok") else "<b style='color:#b71c1c'>failed</b>"
        rows.append(f"<tr><td>{title}</td><td>{status}</td><td>{e.get('seconds', 0):.0f} s</td>"
                    f"<td>{html.escape(str(e.get('headline') or ''))}</td><td>{figs}</td></tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>catkit walkthroughs</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left;"
        "vertical-align:top;border-bottom:1px solid #ddd}</style></head><body>"
        "<h1>catkit: the notebooks, executed</h1><p>Each page is a notebook as <code>make demo</code> ran it "
        "against the local backend, with every figure and the final state of every panel.</p>"
        "<table><tr><th>notebook</th><th>run</th><th>time</th><th>headline</th><th>figures (PNG)</th></tr>"
        + "".join(rows) + "</table></body></html>"
    )
    index = out_root / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


__all__ = ["render_html", "static_notebook", "static_widget_html", "write_index"]
