"""ipywidgets panels for notebooks: the scaling panel (min/max, target, cooldowns, Apply, live count).

:class:`ScalingPanel` shows a :class:`~catkit.autoscaling.config.ScalingConfig` (``panel.config``)
and applies it with :func:`catkit.scaling.configure_scaling`; ``apply()`` and ``refresh()`` are
plain methods, so tests and headless papermill runs use the panel without a frontend. Nothing here
loops or waits: rendering is a single ``display()``; the optional live refresh runs on a daemon
thread only when asked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from catkit import scaling
from catkit._periodic import PeriodicThread
from catkit.autoscaling.config import INVOCATIONS_METRIC, ScalingConfig
from catkit.names import DEFAULT_VARIANT
from catkit.session import Session


class ScalingPanel:
    """Target-tracking controls for one endpoint variant.

    Widgets: ``min_instances``, ``max_instances`` (IntSlider), ``target_value`` (FloatText,
    invocations per instance per minute for the default metric), ``scale_out_cooldown``,
    ``scale_in_cooldown`` (IntSlider, seconds), ``apply_button``, ``refresh_button``,
    ``instances`` (live count label) and ``status`` (last result or error).

    ``load=True`` starts from the variant's current scalable target and target-tracking policy
    when there is one (else the seed defaults of :class:`~catkit.autoscaling.config.ScalingConfig`:
    2..10, 1000/min, 60 s out, 300 s in). ``metric``: a predefined metric name or alias.
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
    ) -> None:
        import ipywidgets as w

        start = ScalingConfig(metric=metric)
        self.session = session
        self.endpoint = endpoint
        self.variant = variant
        self.metric = start.metric
        self.last_policy: scaling.ScalingPolicy | None = None
        self._auto_thread: PeriodicThread | None = None
        if load:
            start = dataclasses.replace(start, **self._current_settings())
        top = max(max_slider, start.max_capacity)
        self.min_instances = w.IntSlider(value=start.min_capacity, min=1, max=top, description="min instances")
        self.max_instances = w.IntSlider(value=start.max_capacity, min=1, max=top, description="max instances")
        self.target_value = w.BoundedFloatText(
            value=float(start.target_value), min=0.001, max=1e9, description="target value"
        )
        self.scale_out_cooldown = w.IntSlider(
            value=start.scale_out_cooldown, min=0, max=3600, step=10, description="scale-out s"
        )
        self.scale_in_cooldown = w.IntSlider(
            value=start.scale_in_cooldown, min=0, max=3600, step=10, description="scale-in s"
        )
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.instances = w.HTML(value="instances: ?")
        self.status = w.HTML(value="")
        self.apply_button.on_click(lambda _b: self._safe(self.apply))
        self.refresh_button.on_click(lambda _b: self._safe(self.refresh))
        self.widget = w.VBox(
            [
                w.HTML(value=f"<b>Auto scaling</b> {endpoint} / {variant} ({self.metric})"),
                self.min_instances,
                self.max_instances,
                self.target_value,
                self.scale_out_cooldown,
                self.scale_in_cooldown,
                w.HBox([self.apply_button, self.refresh_button, self.instances]),
                self.status,
            ]
        )

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
        min is above max)."""
        values = self.settings()
        if values["min_capacity"] > values["max_capacity"]:
            raise ValueError(
                f"min instances ({values['min_capacity']}) is above max instances ({values['max_capacity']}); "
                "raise max or lower min"
            )
        return ScalingConfig(metric=self.metric, **values)

    # -- actions -----------------------------------------------------------------------------
    def apply(self) -> scaling.ScalingPolicy:
        """Register/update the scalable target and the target-tracking policy from the controls."""
        config = self.config
        policy = scaling.configure_scaling(self.session, self.endpoint, config, self.variant)
        self.last_policy = policy
        self.status.value = (
            f"applied: {config.min_capacity}..{config.max_capacity} instances, target "
            f"{config.target_value:g}, cooldowns {config.scale_out_cooldown}/{config.scale_in_cooldown} s"
        )
        return policy

    def refresh(self) -> dict[str, Any]:
        """Read the variant's current/desired instance count and endpoint status into the label."""
        desc = self.session.sagemaker.describe_endpoint(EndpointName=self.endpoint)
        variant = next(
            (v for v in desc.get("ProductionVariants", []) if v["VariantName"] == self.variant), {}
        )
        info = {
            "status": desc["EndpointStatus"],
            "current": variant.get("CurrentInstanceCount"),
            "desired": variant.get("DesiredInstanceCount"),
        }
        self.instances.value = (
            f"instances: <b>{info['current']}</b> (desired {info['desired']}, {info['status']})"
        )
        return info

    def start_auto_refresh(self, interval: float = 5.0) -> ScalingPanel:
        """Refresh the live instance count every ``interval`` seconds on a daemon thread.

        Never started implicitly (a headless run must not leave threads behind); the kernel stays
        free. Stop it with :meth:`stop_auto_refresh`.
        """
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        if self._auto_thread is not None:
            return self
        self._auto_thread = PeriodicThread(
            lambda: self._safe(self.refresh), interval, name=f"catkit-panel-{self.endpoint}"
        )
        self._auto_thread.start()
        return self

    def stop_auto_refresh(self) -> None:
        """Stop the background refresh started by :meth:`start_auto_refresh` (no-op otherwise)."""
        if self._auto_thread is not None:
            self._auto_thread.stop()
            self._auto_thread = None

    def _safe(self, action: Any) -> None:
        try:
            action()
        except Exception as exc:  # shown in the panel; programmatic calls raise
            self.status.value = f"<span style='color:#b00'>error: {type(exc).__name__}: {exc}</span>"

    # -- rendering ---------------------------------------------------------------------------
    def display(self) -> ScalingPanel:
        """Render once (non-blocking; without a frontend it prints a text representation)."""
        from IPython.display import display

        display(self.widget)
        return self

    def _ipython_display_(self) -> None:
        self.display()
