"""What every notebook sets up in its first code cell: session, output folder, results record.

Each notebook takes the papermill parameters ``backend``, ``region``, ``time_scale``, ``out_dir``,
``run_id`` and ``model_cache`` (see :mod:`.runner`). :func:`start_notebook` turns the first four
into the session, the output folder and the :class:`Results` of the run. A notebook's last cell
(its "run record", outside the tutorial) calls ``results.record(name=value, ...)``, which writes
``<out_dir>/results.json`` - what ``make demo`` summarises and the notebook tests assert on.
:func:`run_name` names what a run creates, :func:`upload_cathat` stages the cat-hat model under
the run's S3 prefix and :func:`deploy_cathat` deploys it for the run (tagged ``catkit:run-id``,
which the runner sweeps afterwards), reusing the endpoint when it already runs, so a cell can be
run twice.
"""

from __future__ import annotations

import atexit
import json
from pathlib import Path
from typing import Any, NamedTuple

from catkit.build import upload_model
from catkit.deploy import EndpointNotFoundError, delete_endpoint, deploy, describe_endpoint, wait_for_endpoint
from catkit.notebook._live import BUSY
from catkit.notebook.runner import RUN_TAG_KEY
from catkit.session import Session


class Results(dict[str, Any]):
    """The values a notebook computed, kept for ``<out_dir>/results.json``."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def save(self) -> Path:
        """Write the values as JSON (anything JSON cannot hold as its ``str``); returns the path."""
        self.path.write_text(json.dumps(self, indent=2, default=str))
        return self.path

    def record(self, **values: Any) -> None:
        """Add ``values`` and write the file; returns nothing, so the cell shows no stray result."""
        self.update(values)
        self.save()


class NotebookStart(NamedTuple):
    """``session, out, results = start_notebook(...)``."""

    session: Session
    out: Path
    results: Results


def start_notebook(
    out_dir: str | Path, *, backend: str = "local", region: str | None = None, time_scale: float | None = None
) -> NotebookStart:
    """Create the output folder and the :class:`~catkit.session.Session` of one notebook run."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    session = Session(backend=backend, region=region, time_scale=time_scale)
    return NotebookStart(session, out, Results(out / "results.json"))


def run_name(stem: str, run_id: str) -> str:
    """A SageMaker resource name for this run, ``<stem>-<run_id>``, cut to 63 characters."""
    return f"{stem}-{run_id}"[:63].rstrip("-")


def upload_cathat(session: Session, model_cache: str | Path, run_id: str) -> str:
    """The cat-hat model archive (trained once, then reused from ``model_cache``) uploaded to
    ``s3://<session bucket>/catkit/<run_id>/cathat/model.tar.gz``; returns that URL."""
    from catkit.examples.cathat import build_cathat_archive

    archive = build_cathat_archive(Path(model_cache))
    return upload_model(archive, session.s3, session.bucket, cathat_key(run_id))


def cathat_key(run_id: str) -> str:
    """The S3 key (in the session bucket) :func:`upload_cathat` uses for this run."""
    return f"catkit/{run_id}/cathat/model.tar.gz"


_CLEANUPS: set[str] = set()


def delete_at_exit(session: Session, name: str) -> None:
    """Delete endpoint ``name`` when the kernel exits, if it still exists (registered once per name)."""
    if name in _CLEANUPS:
        return
    _CLEANUPS.add(name)

    def cleanup() -> None:
        try:
            delete_endpoint(session, name, progress=False)
        except Exception:  # already deleted, or the backend is gone: nothing to clean
            pass

    atexit.register(cleanup)


def deploy_cathat(
    session: Session,
    model_cache: str | Path,
    run_id: str,
    stem: str,
    *,
    instance_type: str,
    instance_count: int,
    tags: dict[str, str] | None = None,
    progress: bool = True,
    **deploy_options: Any,
) -> str:
    """Deploy the cat-hat model as endpoint ``run_name(stem, run_id)``, tagged with the run id and
    deleted when the kernel exits; returns the endpoint name once it is InService.
    ``deploy_options`` go to :func:`catkit.deploy.deploy` (``serverless=``, ``async_inference=``).

    An endpoint of that name that already exists (the cell ran before) is reused, not redeployed."""
    name = run_name(stem, run_id)
    delete_at_exit(session, name)
    if not endpoint_exists(session, name, progress=progress):
        model_data = upload_cathat(session, model_cache, run_id)
        deploy(session, model_data, name=name, instance_type=instance_type, instance_count=instance_count,
               tags={RUN_TAG_KEY: run_id, **(tags or {})}, poll=0.5, progress=progress, **deploy_options)
    return name


def endpoint_exists(session: Session, name: str, *, progress: bool = True) -> bool:
    """True if endpoint ``name`` exists (waiting, with a bar, while it is still being created or
    updated), so a notebook cell can deploy only when it has not done so before."""
    try:
        status = describe_endpoint(session, name)["EndpointStatus"]
    except EndpointNotFoundError:
        return False
    if status in BUSY:
        wait_for_endpoint(session, name, poll=0.5, progress=progress)
    return True


__all__ = ["NotebookStart", "Results", "cathat_key", "delete_at_exit", "deploy_cathat", "endpoint_exists", "run_name", "start_notebook", "upload_cathat"]
