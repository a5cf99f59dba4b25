"""The scaling panel (ipywidgets): min/max instances, target, cooldowns, Apply, the live instance count.

:class:`ScalingPanel` shows a :class:`~catkit.autoscaling.config.ScalingConfig` (``panel.config``)
and applies it with :func:`catkit.scaling.configure_scaling`; ``apply()`` and ``refresh()`` are
plain methods, so tests and headless papermill runs use the panel without a frontend. Rendering is
a single ``display()``; while the panel is on screen it refreshes the instance count every few
seconds (bounded, see :class:`catkit.notebook._live.LiveRefresh`), and it disables itself with a
plain message when its endpoint is deleted or not InService. The deploy panel and the live load
monitor are in :mod:`.deploy_panel` and :mod:`.monitor`.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any

from catkit import scaling
from catkit.autoscaling.config import HIGH_RES_METRIC, INVOCATIONS_METRIC, ScalingConfig
from catkit.deploy import EndpointNotFoundError
from catkit.names import DEFAULT_VARIANT
from catkit.notebook._live import (
    LABEL_STYLE,
    ROW_WIDTH,
    EndpointState,
    LiveRefresh,
    PanelDisplay,
    endpoint_state,
    message_html,
    not_ready_message,
    plain_error,
    rows_html,
)
from catkit.session import Session

TARGET_UNITS = {  # shown beside the target box, so the label itself stays short
    INVOCATIONS_METRIC: "invocations per instance per minute",
    HIGH_RES_METRIC: "concurrent requests per model (10-second metric)",
}


class EndpointNotInServiceError(RuntimeError):
    """The panel's endpoint exists but is not InService (Creating, Updating, Deleting, ...)."""


class ScalingPanel(PanelDisplay):
    """Target-tracking controls for one endpoint variant.

    Widgets: ``min_instances``, ``max_instances`` (IntSlider; moving one past the other moves the
    other along, so min <= max always holds), ``target_value`` (FloatText; its unit, e.g.
    invocations per instance per minute, is written beside it in ``target_unit``), ``scale_out_cooldown``, ``scale_in_cooldown`` (IntSlider,
    seconds), ``apply_button``, ``refresh_button``, ``instances`` (live count) and ``status``
    (last result, or why the panel is disabled).

    ``load=True`` starts from the variant's current scalable target and target-tracking policy
    when there is one (else the seed defaults of :class:`~catkit.autoscaling.config.ScalingConfig`:
    2..10, 1000/min, 60 s out, 300 s in) and reads the instance count at once. ``metric``: a
    predefined metric name or alias. ``refresh_interval`` / ``refresh_for``: seconds between live
    refreshes while the panel is shown, and for how long at most (default 5 s for 30 minutes).
    """

    def __init__(
        self,
        session: Session,
        endpoint: str,
        variant: str = DEFAULT_VARIANT,
        *,
        metric: str = INVOCATIONS_METRIC,
        max_slider: int = 20,
        load: bool = True,
        refresh_interval: float = 5.0,
        refresh_for: float = 1800.0,
    ) -> None:
        import ipywidgets as w

        start = ScalingConfig(metric=metric)
        self.session = session
        self.endpoint = endpoint
        self.variant = variant
        self.metric = start.metric
        self.last_policy: scaling.ScalingPolicy | None = None
        self.state: EndpointState | None = None
        if load:
            start = dataclasses.replace(start, **self._current_settings())
        top = max(max_slider, start.max_capacity)
        row = {"style": LABEL_STYLE, "layout": w.Layout(width=ROW_WIDTH)}
        self.min_instances = w.IntSlider(value=start.min_capacity, min=1, max=top, description="min instances", **row)
        self.max_instances = w.IntSlider(value=start.max_capacity, min=1, max=top, description="max instances", **row)
        self.target_value = w.BoundedFloatText(
            value=float(start.target_value), min=0.001, max=1e9, description="target value",
            style=LABEL_STYLE, layout=w.Layout(width="24em"),
        )
        self.target_unit = w.HTML(value=f"<small>{html.escape(TARGET_UNITS.get(self.metric, self.metric))}</small>")
        self.scale_out_cooldown = w.IntSlider(
            value=start.scale_out_cooldown, min=0, max=3600, step=10, description="scale-out cooldown (s)", **row
        )
        self.scale_in_cooldown = w.IntSlider(
            value=start.scale_in_cooldown, min=0, max=3600, step=10, description="scale-in cooldown (s)", **row
        )
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.instances = w.HTML(value="instances: reading…")
        self.status = w.HTML(value="")
        self.min_instances.observe(self._keep_min_below_max, names="value")
        self.max_instances.observe(self._keep_max_above_min, names="value")
        self.apply_button.on_click(lambda _b: self._safe(self.apply))
        self.refresh_button.on_click(lambda _b: self._safe(self._manual_refresh))
        self.controls = [self.min_instances, self.max_instances, self.target_value, self.scale_out_cooldown,
                         self.scale_in_cooldown, self.apply_button]
        self.widget = w.VBox(
            [
                w.HTML(value=f"<b>Auto scaling</b> {html.escape(endpoint)} / {html.escape(variant)} "
                             f"<small>({html.escape(self.metric)})</small>"),
                self.min_instances,
                self.max_instances,
                w.HBox([self.target_value, self.target_unit]),
                self.scale_out_cooldown,
                self.scale_in_cooldown,
                w.HBox([self.apply_button, self.refresh_button, self.instances]),
                self.status,
            ],
            layout=w.Layout(border="1px solid #ccc", padding="6px", width="fit-content"),
        )
        self.widget.add_class("catkit-scaling-panel")
        self.live = LiveRefresh(self.widget, self._live_tick, interval=refresh_interval, max_seconds=refresh_for,
                                name=f"catkit-panel-{endpoint}")
        if load:
            self._safe(self.refresh)

    def __repr__(self) -> str:
        return f"ScalingPanel({self.endpoint}/{self.variant}: {self.settings()})"

    # -- validation in the sliders -------------------------------------------------------------
    def _keep_min_below_max(self, change: dict[str, Any]) -> None:
        if change["new"] > self.max_instances.value:
            self.max_instances.value = change["new"]

    def _keep_max_above_min(self, change: dict[str, Any]) -> None:
        if change["new"] < self.min_instances.value:
            self.min_instances.value = change["new"]

    # -- state -------------------------------------------------------------------------------
    def _current_settings(self) -> dict[str, Any]:
        """ScalingConfig fields of the variant's scalable target and target-tracking policy on
        this panel's metric (none when not registered)."""
        found: dict[str, Any] = {}
        target = scaling.describe_target(self.session, self.endpoint, self.variant)
        if target is not None:
            found["min_capacity"], found["max_capacity"] = target["MinCapacity"], target["MaxCapacity"]
        for policy in scaling.describe_policies(self.session, self.endpoint, self.variant):
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            if not config:
                continue
            predefined = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            if predefined not in (None, self.metric):
                continue
            found["target_value"] = config["TargetValue"]
            for key, name in (("ScaleOutCooldown", "scale_out_cooldown"), ("ScaleInCooldown", "scale_in_cooldown")):
                if key in config:
                    found[name] = config[key]
            break
        return found

    def settings(self) -> dict[str, Any]:
        """The values currently in the controls."""
        return {
            "min_capacity": int(self.min_instances.value),
            "max_capacity": int(self.max_instances.value),
            "target_value": float(self.target_value.value),
            "scale_out_cooldown": int(self.scale_out_cooldown.value),
            "scale_in_cooldown": int(self.scale_in_cooldown.value),
        }

    @property
    def config(self) -> ScalingConfig:
        """The controls as a :class:`~catkit.autoscaling.config.ScalingConfig` (ValueError when
        min is above max, which the sliders themselves prevent)."""
        values = self.settings()
        if values["min_capacity"] > values["max_capacity"]:
            raise ValueError(
                f"min instances ({values['min_capacity']}) is above max instances ({values['max_capacity']}); "
                "raise max or lower min"
            )
        return ScalingConfig(metric=self.metric, **values)

    def _show_state(self, state: EndpointState) -> None:
        """Put ``state`` in the count label and enable or disable the controls to match it."""
        previous, self.state = self.state, state
        self.instances.value = state.describe()
        usable = state.in_service
        for control in self.controls:  # gone: everything off; busy: only Apply waits
            control.disabled = state.gone or (control is self.apply_button and not usable)
        if not usable:
            kind = "warn" if not state.gone else "error"
            self.status.value = message_html(not_ready_message(state, "Apply"), kind)
        elif previous is not None and not previous.in_service:
            self.status.value = message_html(f"endpoint is {state.status} again: Apply is available", "info")

    # -- actions -----------------------------------------------------------------------------
    def apply(self) -> scaling.ScalingPolicy:
        """Register/update the scalable target and the target-tracking policy from the controls.

        Raises :class:`~catkit.deploy.EndpointNotFoundError` if the endpoint is gone and
        :class:`EndpointNotInServiceError` while it is not InService (the button is then disabled).
        """
        config = self.config
        state = self._read_state()
        if state.gone:
            raise EndpointNotFoundError(f"endpoint {self.endpoint!r} no longer exists (deleted)")
        if not state.in_service:
            raise EndpointNotInServiceError(
                f"endpoint {self.endpoint!r} is {state.status}; apply again once it is InService"
            )
        policy = scaling.configure_scaling(self.session, self.endpoint, config, self.variant)
        self.last_policy = policy
        self.status.value = message_html(
            f"applied: {config.min_capacity}..{config.max_capacity} instances, target "
            f"{config.target_value:g}, cooldowns {config.scale_out_cooldown}/{config.scale_in_cooldown} s", "ok")
        return policy

    def refresh(self) -> dict[str, Any]:
        """Read the variant's instance counts and the endpoint status into the panel (also kept as
        ``panel.state``); returns ``{"status", "current", "desired"}``, status None once deleted."""
        state = self._read_state()
        return {"status": state.status, "current": state.current, "desired": state.desired}

    def _read_state(self) -> EndpointState:
        state = endpoint_state(self.session, self.endpoint, self.variant)
        self._show_state(state)
        return state

    def _manual_refresh(self) -> None:
        if self._read_state().in_service and not self.live.running:
            self.live.start()  # the endpoint is back (deployed again): follow it again

    def _live_tick(self) -> bool:
        try:
            return self.refresh()["status"] is not None  # nothing left to follow once it is deleted
        except Exception as exc:  # keep refreshing through a passing network error
            self.status.value = message_html(f"could not refresh: {html.escape(plain_error(exc))}", "warn")
            return True

    def start_auto_refresh(self, interval: float | None = None) -> ScalingPanel:
        """Refresh the live instance count every ``interval`` seconds while the panel is shown.

        Called by ``display()``; bounded by ``refresh_for`` and stopped once the endpoint is gone.
        """
        if interval is not None:
            if interval <= 0:
                raise ValueError(f"interval must be > 0 seconds, got {interval}")
            self.live.interval = interval
        self.live.start()
        return self

    def stop_auto_refresh(self) -> None:
        """Stop the live refresh (no-op when it is not running)."""
        self.live.stop()

    @property
    def _auto_thread(self) -> Any:  # kept for callers of the first version
        return self.live._thread

    def _safe(self, action: Any) -> None:
        try:
            action()
        except Exception as exc:  # shown in the panel as one sentence; programmatic calls raise
            self.status.value = message_html(html.escape(plain_error(exc)), "error")

    # -- rendering ---------------------------------------------------------------------------
    def _on_display(self) -> None:
        self.live.start()

    def snapshot_html(self) -> str:
        s = self.settings()
        rows = [
            ("min .. max instances", f"{s['min_capacity']} .. {s['max_capacity']}"),
            ("target value", f"{s['target_value']:g} {html.escape(TARGET_UNITS.get(self.metric, ''))}"),
            ("cooldowns out / in (s)", f"{s['scale_out_cooldown']} / {s['scale_in_cooldown']}"),
            ("now", self.instances.value),
        ]
        return rows_html(rows, f"Auto scaling {html.escape(self.endpoint)} / {html.escape(self.variant)}") + (
            f"<div>{self.status.value}</div>" if self.status.value else "")


__all__ = ["EndpointNotInServiceError", "ScalingPanel"]
