"""The live monitor (ipywidgets): instances and invocations per instance while traffic runs.

:class:`LiveMonitor` samples one endpoint variant every ``interval`` seconds on a daemon thread -
DescribeEndpoint (instances in service and desired), CloudWatch ``InvocationsPerInstance`` and
DescribeScalingActivities - and redraws a chart with each scaling activity marked, so a step in
load can be watched as the autoscaler answers it. The live chart is a small SVG
(:mod:`.live_chart`), cheap enough not to slow a load generator running in the same kernel; the
final chart is drawn once with matplotlib (:func:`catkit.notebook.plots.plot_fleet_live`).
Use it around a load run::

    with LiveMonitor(session, endpoint, target_value=20) as monitor:
        run = load.run_load(session, endpoint, shape, duration_s=...)
    monitor.final        # the last sample: {"current": 2, "desired": 2, ...}

It only runs between ``start()`` and ``stop()`` (the ``with`` block), and never longer than
``max_seconds``. When it stops, the output is updated with the final chart as a plain image, so
a saved notebook and its HTML export keep it.
"""

from __future__ import annotations

import base64
import html
import threading
from datetime import timedelta
from typing import Any

from catkit import metrics, scaling
from catkit.names import DEFAULT_VARIANT
from catkit.notebook._live import LiveRefresh, PanelDisplay, endpoint_state, message_html, plain_error
from catkit.notebook.live_chart import fleet_svg
from catkit.notebook.plots import figure_png, plot_fleet_live
from catkit.session import Session

PER_INSTANCE = ("AWS/SageMaker", "InvocationsPerInstance", "Sum")


class LiveMonitor(PanelDisplay):
    """Watch one endpoint variant: a summary line, a chart and the scaling activities, live.

    ``interval``: real seconds between samples; ``target_value``: drawn as the target line;
    ``period``: CloudWatch period of the invocations metric (60 s, as the scaling alarms use).
    ``samples`` holds every DescribeEndpoint reading (``history`` as a DataFrame).
    """

    def __init__(
        self,
        session: Session,
        endpoint: str,
        variant: str = DEFAULT_VARIANT,
        *,
        interval: float = 2.0,
        max_seconds: float = 3600.0,
        target_value: float | None = None,
        period: int = 60,
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.endpoint = endpoint
        self.variant = variant
        self.target_value = target_value
        self.period = period
        self.samples: list[dict[str, Any]] = []
        self.metrics: Any = None
        self.activities: Any = None
        self.started_at: Any = None
        self.error: str | None = None
        self._png: bytes | None = None
        self._handle: Any = None
        self._lock = threading.Lock()
        self.summary = w.HTML(value="not started")
        self.chart = w.HTML()
        self.activity_list = w.HTML()
        self.widget = w.VBox(
            [w.HTML(value=f"<b>Live</b> {html.escape(endpoint)} / {html.escape(variant)}"), self.summary,
             self.chart, self.activity_list],
            layout=w.Layout(border="1px solid #ccc", padding="6px"),
        )
        self.widget.add_class("catkit-live-monitor")
        self.live = LiveRefresh(self.widget, self._tick, interval=interval, max_seconds=max_seconds,
                                name=f"catkit-monitor-{endpoint}", only_while_shown=False, immediately=True)

    def __repr__(self) -> str:
        return f"LiveMonitor({self.endpoint}/{self.variant}: {len(self.samples)} samples)"

    # -- running -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.live.running

    def start(self, *, display: bool = True) -> LiveMonitor:
        """Show the monitor and start sampling (no-op when already running)."""
        if self.running:
            return self
        self.started_at = self.session.now()
        if display:
            try:
                from IPython import get_ipython
                from IPython.display import display as show
            except ImportError:
                pass
            else:
                if get_ipython() is not None:
                    self._handle = show(self, display_id=True)
        self.live.start()
        return self

    def _tick(self) -> bool:
        self._safe_refresh()
        return True  # keep sampling until stopped (or max_seconds)

    def stop(self) -> None:
        """Stop sampling, take a last sample and leave the final chart in the output."""
        self.live.stop()
        if self.started_at is None:
            return
        self._safe_refresh()
        try:
            fig = plot_fleet_live(self.history, self.metrics, self.activities, target_value=self.target_value,
                                  title=f"{self.endpoint}: instances and invocations per instance")
            self._png = figure_png(fig, dpi=80)
        except Exception as exc:  # the live view already shows the data; say why the figure is missing
            self.error = plain_error(exc)
        if self._handle is not None:
            self._handle.update(self)  # the saved notebook keeps the final chart as an image

    def __enter__(self) -> LiveMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sampling ----------------------------------------------------------------------------
    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # keep watching through a passing error; say what it was
            self.error = plain_error(exc)
            self.summary.value = message_html(f"could not refresh: {html.escape(self.error)}", "warn")

    def refresh(self) -> dict[str, Any]:
        """Take one sample and redraw; returns the sample."""
        with self._lock:
            now = self.session.now()
            if self.started_at is None:
                self.started_at = now
            state = endpoint_state(self.session, self.endpoint, self.variant)
            sample = {"timestamp": now, "status": state.status or "deleted",
                      "current": state.current or 0, "desired": state.desired or 0}
            self.samples.append(sample)
            since = self.started_at - timedelta(seconds=2 * self.period)
            if now > since:
                self.metrics = metrics.endpoint_metrics(self.session, self.endpoint, self.variant,
                                                        metrics=[PER_INSTANCE], start=since, end=now,
                                                        period=self.period)
            try:
                history = scaling.scaling_activities(self.session, self.endpoint, self.variant)
                self.activities = history[history["start_time"] >= self.started_at].reset_index(drop=True)
            except Exception:  # no scaling registered (or not allowed): nothing to mark
                self.activities = None
            self._draw(now, sample)
            return sample

    @property
    def history(self) -> Any:
        """The samples as a DataFrame (timestamp, status, current, desired)."""
        import pandas as pd

        return pd.DataFrame(self.samples, columns=["timestamp", "status", "current", "desired"])

    @property
    def final(self) -> dict[str, Any]:
        """The last sample (empty before the first one)."""
        return dict(self.samples[-1]) if self.samples else {}

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self, now: Any, sample: dict[str, Any]) -> None:
        minutes = (now - self.started_at).total_seconds() / 60
        per = None
        if self.metrics is not None and not self.metrics.empty:
            per = float(self.metrics["value"].iloc[-1])
        parts = [f"{minutes:.1f} min (service clock)",
                 f"instances <b>{sample['current']}</b> in service, {sample['desired']} desired",
                 html.escape(sample["status"])]
        if per is not None:
            parts.append(f"{per:g} invocations / instance in the last period")
        self.summary.value = " · ".join(parts)
        per_instance: list[tuple[Any, float]] = []
        if self.metrics is not None and not self.metrics.empty:
            per_instance = list(self.metrics.groupby("timestamp")["value"].sum().items())
        marks = [] if self.activities is None else [
            (a.start_time, _int_or_none(a.desired_capacity), str(a.status))
            for a in self.activities.itertuples()]
        self.chart.value = fleet_svg(self.samples, per_instance, marks, start=self.started_at, now=now,
                                     target_value=self.target_value)
        acts = self.activities
        if acts is not None and len(acts):
            items = "".join(
                f"<li>{a.start_time:%H:%M:%S} → {_int_or_none(a.desired_capacity) or '?'} ({html.escape(str(a.status))})</li>"
                for a in acts.itertuples())
            self.activity_list.value = f"<small>scaling activities:<ul>{items}</ul></small>"

    def snapshot_html(self) -> str:
        image = (f"<img src='data:image/png;base64,{base64.b64encode(self._png).decode()}'/>"
                 if self._png else self.chart.value)
        return f"<div>{self.summary.value}</div>{image}{self.activity_list.value}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = super()._repr_mimebundle_(include, exclude)
        if self._png:
            data["image/png"] = base64.b64encode(self._png).decode()
        return data


def _int_or_none(value: Any) -> int | None:
    return None if value is None or value != value else int(value)  # NaN != NaN


__all__ = ["LiveMonitor"]
