"""The deploy panel (ipywidgets): instance type and count, the price, the high-availability warning.

:class:`DeployPanel` deploys one model archive as one endpoint with :func:`catkit.deploy.deploy`
(a bar shows the endpoint's status until InService). ``deploy()`` is a plain method, so Run All and
headless runs deploy from code; the **Deploy** button does the same in JupyterLab. Deploying
again is safe: an endpoint that already runs with the chosen type is reused (and resized to the
chosen count), so re-running the cell or Run All twice does not fail on "already existing endpoint".
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping
from typing import Any

from catkit import cost
from catkit.deploy import (
    DEFAULT_INSTANCE_COUNT,
    DEFAULT_INSTANCE_TYPE,
    deploy,
    set_instance_count,
    wait_for_endpoint,
    warn_if_not_highly_available,
)
from catkit.instance_types import INSTANCE_TYPES
from catkit.names import DEFAULT_VARIANT
from catkit.notebook._live import (
    BUSY,
    LABEL_STYLE,
    ROW_WIDTH,
    EndpointState,
    PanelDisplay,
    endpoint_state,
    message_html,
    plain_error,
    rows_html,
)
from catkit.session import Session


def high_availability_warning(count: int) -> str:
    """The :class:`~catkit.deploy.HighAvailabilityWarning` text for ``count`` instances ("" for 2+)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_not_highly_available(count)
    return str(caught[0].message) if caught else ""


def _type_label(name: str) -> str:
    t = INSTANCE_TYPES[name]
    gpu = f", {t.gpus} GPU" if t.gpus else ""
    return f"{name} ({t.vcpu} vCPU, {t.memory_gib:g} GiB{gpu})"


class DeployPanel(PanelDisplay):
    """Choose instance type and count, see the price and the HA warning, deploy.

    Widgets: ``instance_type`` (Dropdown), ``instance_count`` (IntSlider 1..``max_count``),
    ``ha_warning`` (shown below 2 instances), ``price`` (on-demand USD per hour and month),
    ``deploy_button``, ``status`` and ``output`` (the progress bar of a deploy started by the button).
    ``tags`` and ``deploy_kwargs`` (e.g. ``poll``) go to :func:`catkit.deploy.deploy`.
    """

    def __init__(
        self,
        session: Session,
        model_data: str,
        name: str,
        *,
        instance_type: str = DEFAULT_INSTANCE_TYPE,
        instance_count: int = DEFAULT_INSTANCE_COUNT,
        tags: Mapping[str, str] | None = None,
        variant: str = DEFAULT_VARIANT,
        max_count: int = 10,
        **deploy_kwargs: Any,
    ) -> None:
        import ipywidgets as w

        self.session = session
        self.model_data = model_data
        self.endpoint = name
        self.tags = dict(tags or {})
        self.variant = variant
        self.deploy_kwargs = deploy_kwargs
        self.state: EndpointState | None = None
        types = sorted(INSTANCE_TYPES, key=lambda n: (INSTANCE_TYPES[n].gpus, INSTANCE_TYPES[n].price_per_hour))
        if instance_type not in INSTANCE_TYPES:
            types.append(instance_type)
        row = {"style": LABEL_STYLE, "layout": w.Layout(width=ROW_WIDTH)}
        self.instance_type = w.Dropdown(
            options=[(_type_label(t) if t in INSTANCE_TYPES else t, t) for t in types],
            value=instance_type, description="instance type", **row,
        )
        self.instance_count = w.IntSlider(
            value=instance_count, min=1, max=max(max_count, instance_count), description="instances", **row
        )
        self.price = w.HTML()
        self.ha_warning = w.HTML()
        self.ha_warning.add_class("catkit-ha-warning")
        self.deploy_button = w.Button(description="Deploy", button_style="primary", icon="rocket")
        self.status = w.HTML()
        self.output = w.Output()
        self.instance_type.observe(lambda _c: self._update_hints(), names="value")
        self.instance_count.observe(lambda _c: self._update_hints(), names="value")
        self.deploy_button.on_click(lambda _b: self._deploy_from_button())
        self.widget = w.VBox(
            [
                w.HTML(value=f"<b>Deploy</b> {html.escape(name)} <small>({html.escape(variant)})</small>"),
                self.instance_type,
                self.instance_count,
                self.price,
                self.ha_warning,
                w.HBox([self.deploy_button, self.status]),
                self.output,
            ],
            layout=w.Layout(border="1px solid #ccc", padding="6px", width="fit-content"),
        )
        self.widget.add_class("catkit-deploy-panel")
        self._update_hints()

    def __repr__(self) -> str:
        return f"DeployPanel({self.endpoint}: {self.instance_count.value} x {self.instance_type.value})"

    # -- hints -------------------------------------------------------------------------------
    def _update_hints(self) -> None:
        count, itype = int(self.instance_count.value), str(self.instance_type.value)
        try:
            quote = cost.price_per_hour(self.session, itype)
            hourly = quote.usd_per_hour * count
            self.price.value = (f"<small>{count} × {html.escape(itype)}: ${hourly:,.2f}/hour, "
                                f"${cost.monthly_cost(itype, count, session=self.session):,.0f}/month "
                                f"on demand ({html.escape(quote.source.split(':')[0])}, {html.escape(quote.region)})</small>")
        except Exception as exc:  # a price is a hint; never block the panel on it
            self.price.value = f"<small>price unknown: {html.escape(plain_error(exc))}</small>"
        text = high_availability_warning(count)
        self.ha_warning.value = message_html(f"⚠ {html.escape(text)}", "warn") if text else ""

    # -- actions -----------------------------------------------------------------------------
    def deploy(self, *, progress: bool = True) -> EndpointState:
        """Deploy (or reuse and resize) the endpoint with the chosen type and count; wait for InService.

        Returns the endpoint's state once InService. ValueError if an endpoint of that name runs
        another instance type (a new type needs a new endpoint config: delete it or use
        :func:`catkit.deploy.update_model`).
        """
        itype, count = str(self.instance_type.value), int(self.instance_count.value)
        state = endpoint_state(self.session, self.endpoint, self.variant)
        poll = self.deploy_kwargs.get("poll")
        if state.gone:
            self.status.value = message_html(f"deploying {count} × {html.escape(itype)} …")
            deploy(self.session, self.model_data, name=self.endpoint, instance_type=itype, instance_count=count,
                   tags=self.tags, variant_name=self.variant, progress=progress, **self.deploy_kwargs)
        else:
            if state.status in BUSY:
                wait_for_endpoint(self.session, self.endpoint, poll=poll, progress=progress)
            running = self._instance_type_of_endpoint()
            if running is not None and running != itype:
                raise ValueError(
                    f"endpoint {self.endpoint!r} already runs {running}; a new instance type needs a new endpoint "
                    "config: delete the endpoint first (catkit.deploy.delete_endpoint) or use catkit.deploy.update_model"
                )
            state = endpoint_state(self.session, self.endpoint, self.variant)
            if state.in_service and state.desired != count:
                set_instance_count(self.session, self.endpoint, count, variant=self.variant, poll=poll,
                                   progress=progress)
        self.state = state = endpoint_state(self.session, self.endpoint, self.variant)
        kind = "ok" if state.in_service else "warn"
        self.status.value = message_html(f"{html.escape(self.endpoint)}: {state.describe()}", kind)
        return state

    def _instance_type_of_endpoint(self) -> str | None:
        sm = self.session.sagemaker
        desc = sm.describe_endpoint(EndpointName=self.endpoint)
        config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
        return next((v.get("InstanceType") for v in config["ProductionVariants"]
                     if v["VariantName"] == self.variant), None)

    def _deploy_from_button(self) -> None:
        self.deploy_button.disabled = True
        self.output.clear_output()
        try:
            with self.output:  # the status bar goes into the panel, not into whichever cell ran last
                self.deploy()
        except Exception as exc:  # one readable sentence in the panel
            self.status.value = message_html(html.escape(plain_error(exc)), "error")
        finally:
            self.deploy_button.disabled = False

    # -- rendering ---------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        rows = [("instance type", html.escape(str(self.instance_type.value))),
                ("instances", str(self.instance_count.value)), ("price", self.price.value)]
        extra = "".join(f"<div>{v}</div>" for v in (self.ha_warning.value, self.status.value) if v)
        return rows_html(rows, f"Deploy {html.escape(self.endpoint)}") + extra


__all__ = ["DeployPanel", "high_availability_warning"]
