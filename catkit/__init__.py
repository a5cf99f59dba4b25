"""catkit: build -> deploy -> invoke -> scale -> observe -> cost -> tear down SageMaker endpoints.

Public API only (re-exports). The same helpers run against AWS or the embedded local backend;
only the endpoint URL differs.

``catkit.deploy`` and ``catkit.invoke`` are the modules (``catkit.deploy.deploy(...)``,
``catkit.invoke.invoke(...)``), so a function never shadows its module.

Names are imported lazily on first use (PEP 562), so ``import catkit`` stays cheap for the model
server and the local backend, which live in subpackages of this package.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from catkit import _moved
from catkit._lazy import lazy_exports

__version__ = "0.1.0"
_moved.install()  # old module paths (catkit.simulate, catkit.local.endpoints, ...) keep working

_EXPORTS: dict[str, str] = {
    # local backend (AWS wire protocols on 127.0.0.1)
    "use_local": "catkit.local",
    "ensure_running": "catkit.local",
    # session
    "Session": "catkit.session",
    "SessionError": "catkit.session",
    # deploy
    "wait_for_endpoint": "catkit.deploy",
    "describe_endpoint": "catkit.deploy",
    "set_instance_count": "catkit.deploy",
    "update_model": "catkit.deploy",
    "delete_endpoint": "catkit.deploy",
    "delete_tagged_endpoints": "catkit.deploy",
    "list_endpoints": "catkit.deploy",
    "DeployedEndpoint": "catkit.deploy",
    "HighAvailabilityWarning": "catkit.deploy",
    "EndpointFailedError": "catkit.deploy",
    "EndpointWaitTimeout": "catkit.deploy",
    "EndpointNotFoundError": "catkit.deploy",
    # endpoint kinds (serverless, asynchronous)
    "Serverless": "catkit.endpoint_kinds",
    "AsyncInference": "catkit.endpoint_kinds",
    # invoke
    "invoke_batch": "catkit.invoke",
    "invoke_async": "catkit.invoke",
    "wait_for_async_result": "catkit.invoke",
    "AsyncResult": "catkit.invoke",
    "Prediction": "catkit.invoke",
    "predictions_frame": "catkit.invoke",
    "JSONSerializer": "catkit.invoke",
    "NumpySerializer": "catkit.invoke",
    "CSVSerializer": "catkit.invoke",
    "ImageSerializer": "catkit.invoke",
    # scaling (the policy vocabulary, and sending it)
    "ScalingConfig": "catkit.autoscaling.config",
    "NightSchedule": "catkit.autoscaling.config",
    "apply_config": "catkit.scaling",
    "configure_scaling": "catkit.scaling",
    "configure_target_tracking": "catkit.scaling",
    "configure_high_resolution_scaling": "catkit.scaling",
    "configure_step_scaling": "catkit.scaling",
    "register_scalable_target": "catkit.scaling",
    "schedule_night_scaling": "catkit.scaling",
    "put_scheduled_action": "catkit.scaling",
    "scaling_activities": "catkit.scaling",
    "remove_scaling": "catkit.scaling",
    "configure_scale_to_zero": "catkit.scaling",
    "configure_provisioned_concurrency_scaling": "catkit.scaling",
    # metrics
    "endpoint_metrics": "catkit.metrics",
    "high_resolution_metrics": "catkit.metrics",
    "publish_metric": "catkit.metrics",
    "MetricPublisher": "catkit.metrics",
    # cost
    "price_per_hour": "catkit.cost",
    "monthly_cost": "catkit.cost",
    "endpoint_cost": "catkit.cost",
    "find_idle_endpoints": "catkit.cost",
    "night_schedule_savings": "catkit.cost",
    "serverless_cost": "catkit.cost",
    "async_cost": "catkit.cost",
    # multi-model
    "deploy_multi_model": "catkit.mme",
    "add_model": "catkit.mme",
    "list_models": "catkit.mme",
    "remove_model": "catkit.mme",
    "invoke_model": "catkit.mme",
    # plots / widgets
    "plot_instances_vs_load": "catkit.notebook.plots",
    "plot_latency": "catkit.notebook.plots",
    "plot_prediction_latency": "catkit.notebook.plots",
    "plot_cost": "catkit.notebook.plots",
    "plot_schedule_savings": "catkit.notebook.plots",
    "plot_scaling_history": "catkit.notebook.plots",
    "plot_images": "catkit.notebook.plots",
    "show_and_save": "catkit.notebook.plots",
    "ScalingPanel": "catkit.notebook.widgets",
    "DeployPanel": "catkit.notebook.deploy_panel",
    "LiveMonitor": "catkit.notebook.monitor",
    # progress
    "wait_on_clock": "catkit.progress",
}

__all__ = ["__version__", *_EXPORTS]


_SUBMODULES = (
    "session", "deploy", "invoke", "endpoint_kinds", "scaling", "metrics", "cost", "mme", "build", "names", "examples",
    "whatif", "notebook",
)
#: Modules that moved into a group; ``catkit.simulate`` still reaches ``catkit.whatif.simulate``.
_MOVED_SUBMODULES = {
    "load": "catkit.whatif.load",
    "calibrate": "catkit.whatif.calibrate",
    "simulate": "catkit.whatif.simulate",
    "recommend": "catkit.whatif.recommend",
    "plots": "catkit.notebook.plots",
    "widgets": "catkit.notebook.widgets",
}


_export = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"catkit.{name}")
    if name in _MOVED_SUBMODULES:
        return import_module(_MOVED_SUBMODULES[name])
    value = _export(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
