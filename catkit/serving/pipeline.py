"""Inference pipelines and multi-container endpoints inside one model-server process.

A SageMaker model with several ``Containers`` runs them all on each instance; its
``InferenceExecutionConfig.Mode`` says how a request flows:

- ``Serial`` (the default): the request goes to the first container, each container's response
  (body and Content-Type) is the next one's request, and the last one's response is the answer.
  The caller's Accept reaches the last container only; the others get none, so they answer in
  their ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` - which is why AWS's scikit-learn -> XGBoost
  pipeline examples set it to ``text/csv`` on the preprocessing container. (ASSUMPTION: AWS's docs
  describe the chaining but not which headers the middle containers get; this is the behaviour
  their examples rely on.)
- ``Direct``: the caller names one container with ``TargetContainerHostname``
  (``X-Amzn-SageMaker-Target-Container-Hostname``) and only it runs.

Each container keeps its own serving profile (its image's toolkit), code directory and
``Environment`` (read by catkit's profiles); they share the process, so ``os.environ`` is the
union of their environments (first container wins on a clash). The fleet writes the spec file
(:func:`write_spec`) and starts ``python -m catkit.serving.server --pipeline FILE``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catkit.serving.errors import ServingError
from catkit.serving.handler import InvocationResult, ModelHandler
from catkit.serving.profiles import profile_for

SERIAL = "Serial"
DIRECT = "Direct"


class ContainerFailed(ServingError):
    """A container of a pipeline failed; ``hostname`` names it (the ModelError names it too)."""

    def __init__(self, hostname: str, error: ServingError) -> None:
        super().__init__(error.message, status=error.status)
        self.hostname = hostname


@dataclass
class ContainerSpec:
    """One container of a pipeline as the model server loads it."""

    hostname: str
    model: str  # unpacked model directory
    container: str = "custom"  # catkit.serving.containers kind
    code_dir: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


def write_spec(path: Path, mode: str, containers: Sequence[ContainerSpec]) -> None:
    """Write the ``--pipeline`` spec file."""
    doc = {"mode": mode, "containers": [vars(c) for c in containers]}
    Path(path).write_text(json.dumps(doc))


def read_spec(path: str | Path) -> tuple[str, list[ContainerSpec]]:
    """Read a ``--pipeline`` spec file: (mode, containers)."""
    doc = json.loads(Path(path).read_text())
    mode = doc.get("mode") or SERIAL
    if mode not in (SERIAL, DIRECT):
        raise ValueError(f"pipeline mode must be Serial or Direct, got {mode!r}")
    containers = [ContainerSpec(**c) for c in doc["containers"]]
    if not containers:
        raise ValueError("a pipeline needs at least one container")
    return mode, containers


def union_environment(containers: Sequence[ContainerSpec]) -> dict[str, str]:
    """The process environment a pipeline's containers share (first container wins)."""
    env: dict[str, str] = {}
    for c in containers:
        for key, value in c.environment.items():
            env.setdefault(key, value)
    return env


class Pipeline:
    """The loaded containers of one instance and the request flow between them."""

    def __init__(self, mode: str, handlers: Sequence[tuple[str, ModelHandler]]) -> None:
        self.mode = mode
        self.handlers = list(handlers)

    @classmethod
    def load(cls, mode: str, containers: Sequence[ContainerSpec]) -> Pipeline:
        """Load every container's model (in order); ModelLoadError names the failing container."""
        handlers = []
        for c in containers:
            profile = profile_for(c.container, c.environment)
            try:
                handler = ModelHandler.load(c.model, keep_code_on_path=False, profile=profile, code_dir=c.code_dir)
            except ServingError as exc:
                exc.message = f"container {c.hostname}: {exc.message}"
                raise
            handlers.append((c.hostname, handler))
        return cls(mode, handlers)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               custom_attributes: str | None = None, *, target_container: str | None = None,
               inference_id: str | None = None) -> InvocationResult:
        """Run one request through the pipeline (Serial) or the named container (Direct)."""
        if self.mode == DIRECT:
            chosen = [(h, m) for h, m in self.handlers if h == target_container]
            if not target_container or not chosen:
                names = ", ".join(h for h, _ in self.handlers)
                raise ServingError(
                    f"This endpoint's containers run in Direct mode: name one of them ({names}) with "
                    f"TargetContainerHostname; got {target_container!r}.", status=400)
            steps = chosen
        else:
            steps = self.handlers
        result: InvocationResult | None = None
        for index, (hostname, handler) in enumerate(steps):
            last = index == len(steps) - 1
            try:
                result = handler.invoke(body, content_type, accept if last else None, custom_attributes,
                                        inference_id=inference_id)
            except ServingError as exc:
                raise ContainerFailed(hostname, exc) from exc
            except Exception as exc:
                raise ContainerFailed(hostname, ServingError(f"{type(exc).__name__}: {exc}", status=500)) from exc
            body, content_type = result.body, result.content_type
        assert result is not None
        return result


def container_specs(raw: Sequence[Mapping[str, Any]]) -> list[ContainerSpec]:
    """ContainerSpecs from plain dicts (the fleet's launch plan)."""
    return [ContainerSpec(**dict(c)) for c in raw]


__all__ = ["DIRECT", "SERIAL", "ContainerFailed", "ContainerSpec", "Pipeline", "container_specs", "read_spec",
           "union_environment", "write_spec"]
