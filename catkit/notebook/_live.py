"""What the notebook panels share: the endpoint's state, plain error messages, a bounded refresh
that runs only while a panel is on screen, and a display that keeps a static copy for saved notebooks.

* :func:`endpoint_state` reads DescribeEndpoint into an :class:`EndpointState` (``gone`` when the
  endpoint no longer exists), so a panel can say "deleted" instead of showing a ClientError.
* :func:`plain_error` turns an exception into one readable sentence (the AWS error message).
* :class:`LiveRefresh` calls a function every few seconds on a daemon thread while the widget has a
  view in a frontend (ipywidgets' ``_view_count``), for at most ``max_seconds``; the function
  returns False to stop it (e.g. the endpoint is gone).
* :class:`PanelDisplay` is the base of the panels: ``display()`` / rich display show the live
  widget and add a ``text/html`` copy of its current state, which the HTML export shows where no
  widget can run.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catkit._periodic import PeriodicThread
from catkit.deploy import EndpointNotFoundError, describe_endpoint
from catkit.names import DEFAULT_VARIANT

IN_SERVICE = "InService"
BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack")  # settles by itself: wait for it
LABEL_STYLE = {"description_width": "15em"}  # room for "scale-out cooldown (s)" without cutting it
ROW_WIDTH = "34em"


@dataclass(frozen=True)
class EndpointState:
    """One DescribeEndpoint reading of a variant (``status`` is None when the endpoint is gone)."""

    endpoint: str
    status: str | None
    current: int | None = None
    desired: int | None = None
    instance_type: str | None = None

    @property
    def gone(self) -> bool:
        return self.status is None

    @property
    def in_service(self) -> bool:
        return self.status == IN_SERVICE

    def describe(self) -> str:
        """The state as a short HTML line, e.g. ``instances: <b>2</b> (desired 2) · InService``."""
        if self.gone:
            return f"endpoint <b>{html.escape(self.endpoint)}</b> no longer exists"
        return f"instances: <b>{self.current}</b> (desired {self.desired}) · {self.status}"


def endpoint_state(session: Any, endpoint: str, variant: str = DEFAULT_VARIANT) -> EndpointState:
    """DescribeEndpoint for ``variant`` (a missing endpoint gives a state with ``gone``)."""
    try:
        desc = describe_endpoint(session, endpoint)
    except EndpointNotFoundError:
        return EndpointState(endpoint, None)
    v = next((v for v in desc.get("ProductionVariants", []) if v["VariantName"] == variant), {})
    return EndpointState(endpoint, desc["EndpointStatus"], v.get("CurrentInstanceCount"),
                         v.get("DesiredInstanceCount"), v.get("CurrentInstanceType") or v.get("InstanceType"))


def not_ready_message(state: EndpointState, action: str) -> str:
    """The plain sentence a panel shows instead of acting on an endpoint that is gone or busy."""
    name = html.escape(state.endpoint)
    if state.gone:
        return (f"Endpoint <b>{name}</b> no longer exists (deleted), so there is nothing to {action}. "
                "Deploy it again and create a new panel.")
    return f"Endpoint <b>{name}</b> is {state.status}: {action} is available again once it is InService."


def plain_error(exc: BaseException) -> str:
    """One readable sentence for ``exc``: the AWS error message of a ClientError, else the text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        return f"{error.get('Message') or error.get('Code')} ({error.get('Code', 'error')})"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (ValueError, EndpointNotFoundError)) else f"{type(exc).__name__}: {text}"


def message_html(text: str, kind: str = "info") -> str:
    """``text`` (already HTML) in the panels' message style: info, ok, warn or error."""
    color = {"info": "#37474f", "ok": "#2e7d32", "warn": "#8d6e00", "error": "#b71c1c"}[kind]
    return f"<span class='catkit-message catkit-{kind}' style='color:{color}'>{text}</span>"


class LiveRefresh:
    """Call ``fn()`` every ``interval`` seconds while ``widget`` is shown in a frontend.

    Bounded: the thread ends after ``max_seconds``, when ``fn`` returns False, or on :meth:`stop`.
    Without a view (a headless papermill run, a closed notebook) ``fn`` is not called at all,
    unless ``only_while_shown=False`` (the live monitor, which records what it sees).
    ``immediately``: the first call at once rather than after one interval.
    """

    def __init__(self, widget: Any, fn: Callable[[], bool], *, interval: float, max_seconds: float, name: str,
                 only_while_shown: bool = True, immediately: bool = False) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.widget = widget
        self.fn = fn
        self.interval = interval
        self.max_seconds = max_seconds
        self.name = name
        self.only_while_shown = only_while_shown
        self.immediately = immediately
        self.calls = 0
        self._thread: PeriodicThread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def visible(self) -> bool:
        """True while at least one frontend view shows the widget."""
        return bool(getattr(self.widget, "_view_count", 0))

    def start(self) -> LiveRefresh:
        with self._lock:
            if self.running:
                return self
            if getattr(self.widget, "_view_count", None) is None:
                self.widget._view_count = 0  # ask the frontend to count its views
            deadline = time.monotonic() + self.max_seconds
            thread: PeriodicThread

            def tick() -> None:
                if time.monotonic() > deadline:
                    thread.stop()
                    return
                if self.only_while_shown and not self.visible():
                    return
                self.calls += 1
                if self.fn() is False:
                    thread.stop()

            thread = PeriodicThread(tick, self.interval, name=self.name, immediately=self.immediately)
            self._thread = thread
            thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()


class PanelDisplay:
    """Rich display of a panel: the live widget, plus a ``text/html`` copy of its state."""

    widget: Any

    def snapshot_html(self) -> str:
        """Static HTML of what the panel shows now (for saved notebooks and the HTML export)."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = dict(self.widget._repr_mimebundle_() or {})
        data["text/html"] = f"<div class='catkit-panel-snapshot'>{self.snapshot_html()}</div>"
        self._on_display()
        return data

    def display(self) -> Any:
        """Show the panel (non-blocking). Returns the panel itself for chaining."""
        from IPython.display import display

        display(self)
        return self

    def _on_display(self) -> None:
        """Hook: start what must run while the panel is shown (live refresh)."""


def rows_html(rows: list[tuple[str, str]], title: str) -> str:
    """A small two-column HTML table (label, value) under a bold title."""
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<b>{title}</b><table>{body}</table>"


__all__ = [
    "BUSY",
    "EndpointState",
    "LiveRefresh",
    "PanelDisplay",
    "endpoint_state",
    "message_html",
    "not_ready_message",
    "plain_error",
    "rows_html",
]
