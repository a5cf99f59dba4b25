"""ipywidgets panels for notebooks: the scaling panel (min/max, target, cooldowns, Apply, live count).

:class:`ScalingPanel` drives :func:`catkit.scaling.configure_target_tracking`; ``apply()`` and
``refresh()`` are plain methods, so tests and headless papermill runs use the panel without a
frontend. Nothing here loops or waits: rendering is a single ``display()``.
"""

from __future__ import annotations

import threading
from typing import Any

from catkit import scaling
from catkit.deploy import DEFAULT_VARIANT
from catkit.session import Session


class ScalingPanel:
    """Target-tracking controls for one endpoint variant.

    Widgets: ``min_instances``, ``max_instances`` (IntSlider), ``target_value`` (FloatText,
    invocations per instance per minute for the default metric), ``scale_out_cooldown``,
    ``scale_in_cooldown`` (IntSlider, seconds), ``apply_button``, ``refresh_button``,
    ``instances`` (live count label) and ``status`` (last result or error).

    ``load=True`` starts from the variant's current scalable target and target-tracking policy
    when there is one (else the seed defaults: 2..10, 1000/min, 60 s out, 300 s in).
    """

    def __init__(
        self,
        session: Session,
        endpoint: str,
        variant: str = DEFAULT_VARIANT,
        *,
        metric: str = scaling.INVOCATIONS_METRIC,
        max_slider: int = 20,
        load: bool = True,
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.endpoint = endpoint
        self.variant = variant
        self.metric = metric
        self.last_policy: scaling.ScalingPolicy | None = None
        self._auto_stop = threading.Event()
        self._auto_thread: threading.Thread | None = None
        values = {
            "min": scaling.DEFAULT_MIN,
            "max": scaling.DEFAULT_MAX,
            "target": scaling.DEFAULT_TARGET,
            "out": scaling.DEFAULT_SCALE_OUT_COOLDOWN,
            "in": scaling.DEFAULT_SCALE_IN_COOLDOWN,
        }
        if load:
            values.update(self._current_settings())
        top = max(max_slider, int(values["max"]))
        self.min_instances = w.IntSlider(value=int(values["min"]), min=1, max=top, description="min instances")
        self.max_instances = w.IntSlider(value=int(values["max"]), min=1, max=top, description="max instances")
        self.target_value = w.BoundedFloatText(
            value=float(values["target"]), min=0.001, max=1e9, description="target value"
        )
        self.scale_out_cooldown = w.IntSlider(
            value=int(values["out"]), min=0, max=3600, step=10, description="scale-out s"
        )
        self.scale_in_cooldown = w.IntSlider(
            value=int(values["in"]), min=0, max=3600, step=10, description="scale-in s"
        )
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.instances = w.HTML(value="instances: ?")
        self.status = w.HTML(value="")
        self.apply_button.on_click(lambda _b: self._safe(self.apply))
        self.refresh_button.on_click(lambda _b: self._safe(self.refresh))
        self.widget = w.VBox(
            [
                w.HTML(value=f"<b>Auto scaling</b> {endpoint} / {variant} ({metric})"),
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
        found: dict[str, Any] = {}
        target = scaling.describe_target(self.session, self.endpoint, self.variant)
        if target is not None:
            found["min"], found["max"] = target["MinCapacity"], target["MaxCapacity"]
        for policy in scaling.describe_policies(self.session, self.endpoint, self.variant):
            config = policy.get("TargetTrackingScalingPolicyConfiguration")
            if not config:
                continue
            predefined = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            if predefined not in (None, self.metric):
                continue
            found["target"] = config["TargetValue"]
            found["out"] = config.get("ScaleOutCooldown", scaling.DEFAULT_SCALE_OUT_COOLDOWN)
            found["in"] = config.get("ScaleInCooldown", scaling.DEFAULT_SCALE_IN_COOLDOWN)
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

    # -- actions -----------------------------------------------------------------------------
    def apply(self) -> scaling.ScalingPolicy:
        """Register/update the scalable target and the target-tracking policy from the controls."""
        values = self.settings()
        if values["min_capacity"] > values["max_capacity"]:
            raise ValueError(
                f"min instances ({values['min_capacity']}) is above max instances ({values['max_capacity']}); "
                "raise max or lower min"
            )
        policy = scaling.configure_target_tracking(
            self.session, self.endpoint, self.variant, metric=self.metric, **values
        )
        self.last_policy = policy
        self.status.value = (
            f"applied: {values['min_capacity']}..{values['max_capacity']} instances, target "
            f"{values['target_value']:g}, cooldowns {values['scale_out_cooldown']}/{values['scale_in_cooldown']} s"
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
        self._auto_stop.clear()

        def loop() -> None:
            while not self._auto_stop.wait(interval):
                self._safe(self.refresh)

        self._auto_thread = threading.Thread(target=loop, name=f"catkit-panel-{self.endpoint}", daemon=True)
        self._auto_thread.start()
        return self

    def stop_auto_refresh(self) -> None:
        """Stop the background refresh started by :meth:`start_auto_refresh` (no-op otherwise)."""
        if self._auto_thread is not None:
            self._auto_stop.set()
            self._auto_thread.join()
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
