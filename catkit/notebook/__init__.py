"""Notebook-facing code: ipywidgets panels, matplotlib figures, the papermill runner, ``make demo``.

The top layer: it uses the AWS helpers and the what-if modules; nothing below imports it.
"""
