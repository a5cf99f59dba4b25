"""Headless notebook runs: papermill over ``notebooks/*.ipynb`` into an output folder.

Used by ``make demo`` (via :mod:`catkit.notebook.demo`) and by the notebook integration tests. Each
notebook takes the papermill parameters ``out_dir`` (where it writes figures and a
``results.json`` of the values it computed) and ``run_id`` (a tag put on everything it creates).
After each run the runner sweeps whatever still carries that tag, so a notebook that failed
half-way leaves nothing running behind.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
RUN_TAG_KEY = "catkit:run-id"


@dataclass
class NotebookRun:
    """The outcome of one notebook: where its outputs are and what it recorded."""

    name: str
    output_notebook: Path
    out_dir: Path
    seconds: float
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def notebook_paths(names: Iterable[str] | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The ``.ipynb`` notebooks to run, in name order (optionally only ``names``, stems)."""
    paths = sorted(directory.glob("[0-9][0-9]_*.ipynb"))
    if names is not None:
        wanted = set(names)
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise FileNotFoundError(f"no notebook named {sorted(missing)} in {directory}")
    return paths


def run_notebook(
    path: Path,
    out_root: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel_name: str = "python3",
    timeout_s: int = 600,
    progress: bool = False,
) -> NotebookRun:
    """Execute one notebook with papermill; never raises for a failing cell (see ``error``)."""
    import papermill

    name = path.stem
    out_dir = (out_root / name).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"nb{name[:2]}-{uuid.uuid4().hex[:8]}"  # short and valid in SageMaker names
    params = {
        "out_dir": str(out_dir),
        "run_id": run_id,
        "model_cache": str((out_root / "model-cache").resolve()),  # train the cat-hat model once per run
        **dict(parameters or {}),
    }
    output_notebook = out_root / f"{name}.ipynb"
    started = time.monotonic()
    error: str | None = None
    try:
        papermill.execute_notebook(
            str(path),
            str(output_notebook),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(path.parent),
            progress_bar=progress,
            execution_timeout=timeout_s,
            log_output=False,
        )
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell's traceback
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sweep_run(run_id)
    results_file = out_dir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return NotebookRun(name, output_notebook, out_dir, time.monotonic() - started, results, error)


def sweep_run(run_id: str) -> list[str]:
    """Delete endpoints (with their configs and models) still tagged with ``run_id`` on the local backend.

    Only touches an already-running local backend in ``$CATKIT_HOME``; returns what it deleted.
    """
    try:
        from catkit.deploy import delete_tagged_endpoints
        from catkit.local import lifecycle
        from catkit.session import Session
    except ImportError:
        return []
    if lifecycle.status() is None:  # nothing running, nothing to sweep
        return []
    try:
        session = Session(backend="local")
        return list(delete_tagged_endpoints(session, RUN_TAG_KEY, run_id, wait=False))
    except Exception:  # a sweep must never hide the notebook's own result
        return []
