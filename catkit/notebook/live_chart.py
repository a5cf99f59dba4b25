"""The live monitor's chart as a small inline SVG: cheap enough to redraw every second.

The monitor runs in the kernel beside :func:`catkit.whatif.load.run_load`, whose event loop shares
the interpreter. A matplotlib redraw every second held the GIL for ~120-170 ms and delayed the load
generator's requests by as much (measured on this project's 2-core machine under load, 20 emulated
minutes at time scale 120: sent-delay p99 6 -> 29 ms and 11 -> 336 ms, max 10 -> 52 ms and
15 -> 542 ms, i.e. over a minute of emulated time). This hand-made SVG takes the whole refresh
(API calls included) to ~20 ms and left the load generator as it was (p99 3.7 -> 4.4 ms, max
7.4 -> 7.7 ms); matplotlib draws only the final figure once the load is over
(:func:`catkit.notebook.plots.plot_fleet_live`).

:func:`fleet_svg` draws invocations per instance (left axis, blue), instances in service (red)
and desired (red, dashed) as steps (right axis), the target as a dotted line and each scaling
activity as a dashed vertical line labelled with its new desired count.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

WIDTH, HEIGHT = 860, 290
LEFT, RIGHT, TOP, BOTTOM = 58, 52, 30, 40
BLUE, RED, GREEN, ORANGE, GREY = "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#888"


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value.timestamp())


def fleet_svg(
    samples: Sequence[dict[str, Any]],
    per_instance: Sequence[tuple[Any, float]] = (),
    activities: Sequence[tuple[Any, int | None, str]] = (),
    *,
    start: Any,
    now: Any,
    target_value: float | None = None,
) -> str:
    """SVG of the monitor's state. ``samples``: dicts with ``timestamp``, ``current``, ``desired``;
    ``per_instance``: (timestamp, invocations per instance) per metric period; ``activities``:
    (start time, new desired count or None, status); ``start``/``now``: the x range (service clock)."""
    t0, t1 = _epoch(start), max(_epoch(now), _epoch(start) + 60)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for _, v in per_instance]
    y_top = max([*values, target_value or 0, 1.0]) * 1.15
    counts = [max(int(s["current"]), int(s["desired"])) for s in samples] or [1]
    n_top = max(counts) * 1.3 + 0.5

    def x(t: Any) -> float:
        return LEFT + (min(max(_epoch(t), t0), t1) - t0) / (t1 - t0) * plot_w

    def y_left(v: float) -> float:
        return TOP + plot_h - v / y_top * plot_h

    def y_right(n: float) -> float:
        return TOP + plot_h - n / n_top * plot_h

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
           f"viewBox='0 0 {WIDTH} {HEIGHT}' font-family='sans-serif' font-size='11' class='catkit-live-chart'>",
           f"<rect x='{LEFT}' y='{TOP}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#999'/>"]
    step = _nice_step((t1 - t0) / 60, 6) * 60  # x ticks in whole minutes since the start
    tick = 0.0
    while tick <= t1 - t0 + 1e-6:
        px = LEFT + tick / (t1 - t0) * plot_w
        out.append(f"<line x1='{px:.1f}' y1='{TOP + plot_h}' x2='{px:.1f}' y2='{TOP + plot_h + 4}' stroke='#999'/>"
                   f"<text x='{px:.1f}' y='{TOP + plot_h + 16}' text-anchor='middle'>{tick / 60:g}</text>")
        tick += step
    out.append(f"<text x='{LEFT + plot_w / 2}' y='{HEIGHT - 6}' text-anchor='middle'>minutes since the monitor "
               "started (service clock)</text>")
    v_step = _nice_step(y_top, 5)
    v = 0.0
    while v <= y_top:
        out.append(f"<text x='{LEFT - 6}' y='{y_left(v) + 4:.1f}' text-anchor='end' fill='{BLUE}'>{v:g}</text>")
        v += v_step
    for n in range(0, math.floor(n_top) + 1, max(1, math.ceil(n_top / 6))):
        out.append(f"<text x='{LEFT + plot_w + 6}' y='{y_right(n) + 4:.1f}' fill='{RED}'>{n}</text>")
    if target_value is not None:
        out.append(f"<line x1='{LEFT}' x2='{LEFT + plot_w}' y1='{y_left(target_value):.1f}' "
                   f"y2='{y_left(target_value):.1f}' stroke='{BLUE}' stroke-dasharray='2,3'/>")
    previous = int(samples[0]["desired"]) if samples else None
    for when, desired, status in activities:
        color = RED if status != "Successful" else (ORANGE if previous is not None and desired is not None
                                                    and desired < previous else GREEN)
        px = x(when)
        out.append(f"<line x1='{px:.1f}' x2='{px:.1f}' y1='{TOP}' y2='{TOP + plot_h}' stroke='{color}' "
                   "stroke-dasharray='5,4'/>")
        if desired is not None:
            out.append(f"<text x='{px + 3:.1f}' y='{TOP + 11}' fill='{color}'>→{desired}</text>")
            if status == "Successful":
                previous = desired
    if per_instance:
        points = " ".join(f"{x(t):.1f},{y_left(val):.1f}" for t, val in per_instance)
        out.append(f"<polyline points='{points}' fill='none' stroke='{BLUE}' stroke-width='1.6'/>")
    for key, dash in (("current", ""), ("desired", " stroke-dasharray='6,3' opacity='0.6'")):
        steps: list[tuple[float, float]] = []
        for sample in samples:
            px, py = x(sample["timestamp"]), y_right(int(sample[key]))
            if steps:
                steps.append((px, steps[-1][1]))  # hold the previous count until this sample
            steps.append((px, py))
        if steps:
            steps.append((x(now), steps[-1][1]))
            points = " ".join(f"{px:.1f},{py:.1f}" for px, py in steps)
            out.append(f"<polyline points='{points}' fill='none' stroke='{RED}' stroke-width='1.8'{dash}/>")
    legend = [(BLUE, "", "invocations / instance / period"), (RED, "", "instances in service"),
              (RED, "6,3", "desired")] + ([(BLUE, "2,3", f"target {target_value:g}")] if target_value is not None else [])
    lx = LEFT
    for color, dash, label in legend:
        out.append(f"<line x1='{lx}' x2='{lx + 18}' y1='{TOP - 12}' y2='{TOP - 12}' stroke='{color}' "
                   f"stroke-width='2' stroke-dasharray='{dash or 'none'}'/>"
                   f"<text x='{lx + 22}' y='{TOP - 8}'>{html.escape(label)}</text>")
        lx += 30 + 6.2 * len(label)
    out.append("</svg>")
    return "".join(out)


__all__ = ["fleet_svg"]
