"""Notebook-facing code: ipywidgets panels, matplotlib figures, the papermill runner, ``make demo``,
and the set-up every notebook starts with (:mod:`.context`).

The top layer: it uses the AWS helpers and the what-if modules; nothing below imports it.
"""
